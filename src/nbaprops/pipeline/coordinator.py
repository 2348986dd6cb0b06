"""The coordinator: start a batch, run workers, recover stalled work, finish and summarise.

``start`` decides who is predicted using only what was known before the game date: the schedule of the date
(ingested schedule, else the teams named in its lines, else — for past dates — the box scores' games),
the players who played for those teams in the ``recent_days`` before the date, and anyone with a line posted
by ``as_of``. Box scores dated on or after the game date never decide who is predicted.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import ConflictError
from nbaprops.pipeline import janitor, ledger
from nbaprops.pipeline.consolidate import consolidate
from nbaprops.pipeline.injuries import LINE_PLAYER_COLUMNS
from nbaprops.pipeline.ledger import PlayerRequest
from nbaprops.pipeline.owner import (
    process_owner as process_owner,  # re-exported: service/runner.py imports it here
)
from nbaprops.pipeline.queue_worker import QueueWorker
from nbaprops.pipeline.worker import ChunkPredictor, WorkerStats
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.registry import check_workers
from nbaprops.storage.seams import Backend, WorkMessage

log = logging.getLogger(__name__)

UNCLAIMED_REPUBLISH_S = 30.0
"""How long requests may wait pending with no lease held and none finishing before the coordinator publishes them
again (at most ``lease_seconds``; doubled after each republish nothing comes of)."""

ProgressCallback = Callable[[dict[str, int]], None]


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event) -> Iterator[threading.Event]:
    """While workers run, Ctrl-C (SIGINT) sets ``stop`` instead of raising in the main thread.

    A ``KeyboardInterrupt`` raised while worker threads still use the database let the caller close the
    connection under them: ``connection is busy``, then a C++ ``terminate`` (exit -6) in 5 of 13 tries of
    issue 18; DuckDB also turned the signal into ``INTERRUPT Error`` inside the workers' queries, failing
    their chunk. Here the signal only asks the workers to finish their chunk; :meth:`Coordinator.run` raises
    ``KeyboardInterrupt`` once they have returned. Yields the event that records the Ctrl-C. Outside the main
    thread (the service's background batches) nothing is installed: signals are the main thread's.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # an ignored Ctrl-C stays ignored
        yield interrupted
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        stop.set()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def default_as_of(game_date: date, clock: Clock) -> datetime:
    """Prediction time: now for today and later; for a past date, 00:00 UTC after it (7 pm ET).

    Lines posted after this are not used for a past date: the regular evening tip-offs start at 7 pm ET, and
    a line whose ``commence_time`` is known is used only when posted before it
    (:func:`nbaprops.ingest.lines.select_lines`).
    """
    now = clock.now()
    cutoff = datetime(game_date.year, game_date.month, game_date.day, tzinfo=UTC) + timedelta(days=1)
    return min(now, cutoff) if now.date() >= game_date else now


@dataclass(frozen=True)
class StartResult:
    batch_id: str
    created: bool
    requests: int


@dataclass
class BatchSummary:
    batch_id: str
    game_date: date
    state: str
    requests: dict[str, int]
    predictions_staged: int
    active_predictions: int
    staging_tables_left: int
    drift: dict[str, Any]
    duration_s: float
    by_system: dict[str, int] = field(default_factory=dict)
    by_market: dict[str, int] = field(default_factory=dict)
    recommendations: dict[str, int] = field(default_factory=dict)
    missing: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "game_date": self.game_date.isoformat(),
            "state": self.state,
            "requests": self.requests,
            "predictions_staged": self.predictions_staged,
            "active_predictions": self.active_predictions,
            "staging_tables_left": self.staging_tables_left,
            "drift": self.drift,
            "duration_s": round(self.duration_s, 3),
            "by_system": self.by_system,
            "by_market": self.by_market,
            "recommendations": self.recommendations,
            "missing": self.missing,
            "resumed": self.resumed,
        }


def expected_players(
    storage: Inputs,
    game_date: date,
    games: pa.Table,
    *,
    recent_days: int,
    line_players: pa.Table | None = None,
) -> list[PlayerRequest]:
    """Players expected on ``game_date``: recently active for a scheduled team, plus anyone with a line.

    Args:
        games: the date's schedule (``game_id, home_team, away_team``).
        line_players: optional ``player_lookup, player_name, team, opponent, home_team, away_team`` of lines.
    """
    lines = (
        line_players
        if line_players is not None
        else pa.table({c: pa.array([], pa.string()) for c in LINE_PLAYER_COLUMNS})
    )
    return expected_players_by_date(
        storage,
        [game_date],
        _dated(games, ("game_id", "home_team", "away_team"), game_date),
        recent_days=recent_days,
        line_players=_dated(lines, LINE_PLAYER_COLUMNS, game_date),
    )[game_date]


def _dated(table: pa.Table, columns: Sequence[str], game_date: date) -> pa.Table:
    """``columns`` of ``table`` after a ``game_date`` column holding ``game_date``."""
    return pa.table(
        {"game_date": pa.array([game_date] * table.num_rows, pa.date32())}
        | {c: table.column(c) for c in columns}
    )


def expected_players_by_date(
    storage: Inputs,
    game_dates: Sequence[date],
    games: pa.Table,
    *,
    recent_days: int,
    line_players: pa.Table,
) -> dict[date, list[PlayerRequest]]:
    """:func:`expected_players` of several dates in one query (the backtest asks for a season's dates at once;
    the daily batch asks for one): each date's players exactly as if it were asked alone.

    Args:
        games: the dates' schedules (``game_date, game_id, home_team, away_team``).
        line_players: ``game_date`` and the :func:`expected_players` columns of the dates' lines.
    """
    with storage.session() as session:
        session.register("__games", games.select(["game_date", "game_id", "home_team", "away_team"]))
        session.register("__line_players", line_players.select(["game_date", *LINE_PLAYER_COLUMNS]))
        rows = session.execute(
            """
            WITH team_games AS (
                SELECT game_date, game_id, home_team AS team, away_team AS opponent, true AS is_home FROM __games
                UNION ALL SELECT game_date, game_id, away_team, home_team, false FROM __games
            ),
            latest AS (  -- every player's most recent game strictly before each date
                SELECT d.game_date, b.player_id, b.team, b.game_date AS last_date, b.player_name, b.player_lookup
                FROM (SELECT unnest(CAST($dates AS DATE[])) AS game_date) d
                CROSS JOIN (SELECT DISTINCT player_id FROM box_scores) p
                ASOF JOIN box_scores b ON b.player_id = p.player_id AND d.game_date > b.game_date
            ),
            by_lookup AS (
                SELECT game_date, player_lookup, arg_max(player_id, last_date) AS player_id,
                       max(last_date) AS last_date
                FROM latest GROUP BY game_date, player_lookup
            ),
            active AS (
                SELECT l.game_date, l.player_lookup, l.player_name, l.player_id, tg.team, tg.opponent, tg.game_id,
                       tg.is_home
                FROM latest l JOIN by_lookup b USING (game_date, player_id)
                JOIN team_games tg ON tg.game_date = l.game_date AND tg.team = l.team
                WHERE l.last_date >= l.game_date - to_days(CAST($recent AS INTEGER))
            ),
            resolved_lines AS (
                SELECT DISTINCT ON (lp.game_date, lp.player_lookup) lp.game_date, lp.player_lookup,
                       lp.player_name, b.player_id, coalesce(l.team, lp.team) AS team,
                       lp.team AS line_team, lp.home_team, lp.away_team, lp.opponent AS line_opponent
                FROM __line_players lp
                LEFT JOIN by_lookup b ON b.game_date = lp.game_date AND b.player_lookup = lp.player_lookup
                LEFT JOIN latest l ON l.game_date = lp.game_date AND l.player_id = b.player_id
                WHERE lp.player_lookup NOT IN (SELECT player_lookup FROM active a WHERE a.game_date = lp.game_date)
                ORDER BY lp.game_date, lp.player_lookup
            ),
            line_only AS (
                SELECT r.game_date, r.player_lookup, coalesce(l.player_name, r.player_name) AS player_name,
                       r.player_id, coalesce(tg.team, r.team) AS team,
                       coalesce(tg.opponent, r.line_opponent) AS opponent, tg.game_id, tg.is_home
                FROM resolved_lines r
                LEFT JOIN latest l ON l.game_date = r.game_date AND l.player_id = r.player_id
                LEFT JOIN team_games tg ON tg.game_date = r.game_date AND tg.team = r.team
            )
            SELECT * FROM active UNION ALL SELECT * FROM line_only ORDER BY game_date, player_lookup
            """,
            {"dates": sorted(set(game_dates)), "recent": recent_days},
        ).fetchall()
    requests: dict[date, list[PlayerRequest]] = {day: [] for day in game_dates}
    seen: set[tuple[date, str]] = set()
    for day, lookup, name, player_id, team, opponent, game_id, is_home in rows:
        # Two players normalising to one lookup: keep the first (most recent id wins above).
        if (day, lookup) in seen:
            continue
        seen.add((day, lookup))
        requests[day].append(PlayerRequest(lookup, name, player_id, team, opponent, game_id, is_home))
    return requests


class Coordinator:
    """Owns batches of one storage: start, run, sweep, finish, clean up.

    Args:
        storage: the database.
        settings: leases, attempts, deadlines, workers.
        clock: time source (tests pass a manual clock).
    """

    def __init__(self, storage: Backend, settings: Settings, *, clock: Clock | None = None) -> None:
        self.storage = storage
        self.settings = settings
        self.clock = clock or SystemClock()
        # Owner ids carry a per-process token; on a single-writer backend any other token is a dead process.
        self.owner_prefix = process_owner()
        # Seconds with requests pending, none leased and none finished before they are published again (then
        # twice as long each time nothing comes of it, up to lease_seconds); see _dispatch.
        self.unclaimed_seconds = UNCLAIMED_REPUBLISH_S

    # -- start ---------------------------------------------------------------------------------
    def start(
        self,
        game_date: date,
        requests: Sequence[PlayerRequest],
        *,
        markets: Sequence[str],
        systems: Sequence[str],
        as_of: datetime | None = None,
        force: bool = False,
        kind: str = "daily",
    ) -> StartResult:
        """Create the batch of ``game_date`` — or return the one already running unless ``force``."""
        existing = self.running(game_date)
        if existing is not None and not force:
            counts = ledger.progress(self.storage, existing.batch_id)
            log.info("batch %s already running for %s; resuming it", existing.batch_id, game_date)
            return StartResult(existing.batch_id, False, sum(counts.values()))
        if existing is not None:
            log.warning(
                "--force: finishing running batch %s as partial before starting anew", existing.batch_id
            )
            self.finish(existing.batch_id, force_partial=True)
        batch_id = ledger.create_batch(
            self.storage,
            game_date=game_date,
            requests=requests,
            markets=markets,
            systems=systems,
            as_of=as_of or default_as_of(game_date, self.clock),
            deadline_minutes=self.settings.batch_deadline_minutes,
            clock=self.clock,
            staging_ttl_hours=self.settings.staging_ttl_hours,
            kind=kind,
        )
        # Nothing is published yet: the work goes out when the batch runs (:meth:`run` publishes every pending
        # request), after its models are ready — a worker handed a chunk before that could not predict it.
        return StartResult(batch_id, True, len(requests))

    def publish(self, batch_id: str, players: Sequence[str]) -> int:
        """Queue ``players`` of the batch in chunks of ``chunk_size``."""
        if not players:
            return 0
        size = self.settings.chunk_size
        ordered = sorted(players)
        return self.storage.queue.publish(
            [WorkMessage(batch_id, tuple(ordered[i : i + size])) for i in range(0, len(ordered), size)]
        )

    def running(self, game_date: date) -> ledger.BatchInfo | None:
        """The batch of ``game_date`` that is still running: the one a new start resumes (unless forced)."""
        batch_id = ledger.running_batch(self.storage, game_date)
        return None if batch_id is None else ledger.get_batch(self.storage, batch_id)

    # -- run -----------------------------------------------------------------------------------
    def sweep(self, batch_id: str | None = None) -> ledger.SweepResult:
        single_writer = not self.storage.capabilities.multi_process_writers
        return ledger.sweep(
            self.storage,
            clock=self.clock,
            max_attempts=self.settings.max_attempts,
            grace_seconds=self.settings.lease_grace_seconds,
            batch_id=batch_id,
            foreign_owner_prefix_not=self.owner_prefix if single_writer else None,
        )

    def run(
        self,
        batch_id: str,
        predictor: ChunkPredictor,
        *,
        on_progress: ProgressCallback | None = None,
        poll_seconds: float = 0.2,
        stop: threading.Event | None = None,
    ) -> list[WorkerStats]:
        """Dispatch the batch until every request is terminal or the deadline passes (the one dispatch loop).

        ``settings.workers`` queue workers run in this process, consuming the backend's queue (in memory on the
        embedded backend; Pub/Sub on GCP, where any number more may run as ``nbaprops worker`` elsewhere),
        while this loop sweeps expired leases, publishes what returned to ``pending`` again — and what has waited
        ``pending`` with no lease held and nothing finishing for :data:`UNCLAIMED_REPUBLISH_S` (a lost message) —
        and ends dead-lettered requests ``failed``. Setting ``stop`` (or a ``KeyboardInterrupt`` in the calling thread)
        makes the workers finish their current chunk, commit it and take no more, so a rerun resumes where this
        one stopped.

        Raises:
            StorageFullError: (or any error a worker of this process cannot go on after, see
                :attr:`QueueWorker.fail_fast`) once every worker has stopped; the batch stays resumable.
        """
        stop = stop or threading.Event()
        with _ctrl_c_stops(stop) as interrupted:
            stats = self._dispatch(batch_id, predictor, on_progress, poll_seconds, stop)
        if interrupted.is_set():
            raise KeyboardInterrupt  # now that no worker uses the database: the caller may close it
        return stats

    def _dispatch(
        self,
        batch_id: str,
        predictor: ChunkPredictor,
        on_progress: ProgressCallback | None,
        poll_seconds: float,
        stop: threading.Event,
    ) -> list[WorkerStats]:
        check_workers(self.settings, self.storage.capabilities)
        features = self.storage.features
        # Set when a worker has handled a message: the loop looks at the batch at once, not at the next poll.
        handled = threading.Event()
        workers = []
        for i in range(self.settings.workers):
            worker = QueueWorker(
                self.storage,
                self.settings,
                self.clock,
                f"{self.owner_prefix}:q{i}",
                history=lambda _: features,
                fail_fast=True,
                on_handled=handled.set,
            )
            worker.use(batch_id, predictor, features)
            workers.append(worker)
        halt = threading.Event()
        threads = [
            threading.Thread(
                target=w.run, kwargs={"stop": halt}, name=f"nbaprops-queue-worker-{i}", daemon=True
            )
            for i, w in enumerate(workers)
        ]
        self.sweep(batch_id)  # resume: reclaim leases of a process that died holding this batch
        self.publish_pending(batch_id)  # a resumed batch: pending requests may have no message in flight
        for thread in threads:
            thread.start()
        last_done = -1
        idle_since = time.monotonic()
        next_upkeep = next_sweep = idle_since + poll_seconds  # just swept and published
        # A lease expires after lease_seconds: looking for expired ones more often than a tenth of that finds
        # none sooner that matters, and each look is a ledger read the workers wait behind.
        sweep_every = max(poll_seconds, self.settings.lease_seconds / 10)
        # Requests pending with no lease held and nothing finishing: their messages were lost (Pub/Sub can hand
        # a message to a pull whose process has gone; it comes back only after its ack deadline, the lease).
        unclaimed_wait = first_unclaimed_wait = min(self.unclaimed_seconds, self.settings.lease_seconds)
        info = ledger.get_batch(self.storage, batch_id)  # read again with each sweep (its deadline is fixed)
        try:
            while not stop.is_set():
                handled.clear()  # before looking: a message handled from now on wakes the wait below
                counts = ledger.progress(self.storage, batch_id)
                if on_progress is not None:
                    on_progress(counts)
                if info.consolidated_at is not None or self.clock.now() >= info.deadline_at:
                    break
                if counts["pending"] == 0 and counts["leased"] == 0:
                    break
                if any(w.failure is not None for w in workers):
                    break
                finished = counts["done"] + counts["skipped"] + counts["failed"]
                if finished != last_done:
                    last_done, idle_since = finished, time.monotonic()
                    unclaimed_wait = first_unclaimed_wait
                if counts["leased"] == 0 and time.monotonic() - idle_since > unclaimed_wait:
                    self.publish_pending(batch_id)  # a duplicate is harmless
                    log.warning(
                        "batch %s: %d request(s) pending, none claimed for %.0f s: published again",
                        batch_id, counts["pending"], unclaimed_wait,
                    )  # fmt: skip
                    idle_since = time.monotonic()
                    unclaimed_wait = min(2 * unclaimed_wait, self.settings.lease_seconds)
                # A handled message wakes the loop to see the batch end at once; the upkeep runs once a poll.
                if time.monotonic() >= next_upkeep:
                    self.fail_dead_letters(batch_id)
                    next_upkeep = time.monotonic() + poll_seconds
                if time.monotonic() >= next_sweep:
                    swept = self.sweep(batch_id)
                    if swept.reclaimed or time.monotonic() - idle_since > self.settings.lease_seconds:
                        self.publish_pending(batch_id)
                        idle_since = time.monotonic()
                    info = ledger.get_batch(self.storage, batch_id)
                    next_sweep = time.monotonic() + sweep_every
                handled.wait(max(poll_seconds, 0.005))
        finally:
            halt.set()
            for thread in threads:
                thread.join(timeout=self.settings.lease_seconds)
        failures = [w.failure for w in workers if w.failure is not None]
        if failures:
            # Fail loudly; the batch stays resumable (a new process releases this one's leases at once).
            raise failures[0]
        return [w.stats for w in workers]

    def publish_pending(self, batch_id: str) -> int:
        """Publish every ``pending`` request of the batch again (a duplicate is harmless: a request that is
        no longer pending is not claimed twice)."""
        pending = [r["player_lookup"] for r in self.storage.ledger.requests(batch_id, states=["pending"])]
        return self.publish(batch_id, pending)

    def fail_dead_letters(self, batch_id: str | None = None) -> int:
        """End the requests of dead-lettered messages ``failed`` (``dead_lettered``) — those of other batches
        too, whoever reads them first."""
        failed = 0

        def end(message: WorkMessage) -> bool:
            nonlocal failed
            failed += ledger.fail_requests(
                self.storage,
                message.batch_id,
                players=message.players,
                error_code="dead_lettered",
                error_message=f"gave up after {message.delivery_attempt} delivery attempt(s)",
                clock=self.clock,
            )
            return True

        self.storage.queue.dead_letters(end)
        return failed

    # -- finish --------------------------------------------------------------------------------
    def consolidate(self, batch_id: str) -> BatchSummary:
        """Consolidate a batch whose requests have all ended (a rerun changes nothing).

        Raises:
            ConflictError: requests are still open (``finish`` ends them ``failed`` first).
        """
        info = ledger.get_batch(self.storage, batch_id)
        counts = ledger.progress(self.storage, batch_id)
        open_requests = counts["pending"] + counts["leased"]
        if info.consolidated_at is None and open_requests and self.clock.now() < info.deadline_at:
            raise ConflictError(
                f"batch {batch_id} still has {open_requests} open request(s); let it finish (`nbaprops predict "
                f"--date {info.game_date}` resumes it) or end them failed with `nbaprops finish {batch_id}`",
                batch_id=batch_id,
            )
        return self.finish(batch_id)

    def finish(
        self, batch_id: str, *, force_partial: bool = False, started: float | None = None
    ) -> BatchSummary:
        """Consolidate the batch (ending open requests ``failed`` when forced or past the deadline)."""
        info = ledger.get_batch(self.storage, batch_id)
        if info.consolidated_at is None:
            if force_partial or self.clock.now() >= info.deadline_at:
                code = "forced_finish" if force_partial else "deadline_exceeded"
                ledger.fail_open_requests(self.storage, batch_id, error_code=code, clock=self.clock)
            ledger.check_terminal_states(self.storage, batch_id)
            missing = ledger.missing_players(self.storage, batch_id)
            consolidate(
                self.storage,
                batch_id,
                clock=self.clock,
                summary={"missing": missing, "requests": ledger.progress(self.storage, batch_id)},
            )
        return self.summary(batch_id, started=started)

    def summary(self, batch_id: str, *, started: float | None = None) -> BatchSummary:
        info = ledger.get_batch(self.storage, batch_id)
        rows = self.storage.warehouse.active_predictions(info.game_date)
        mine = rows.filter(pc.equal(rows["batch_id"], batch_id)) if rows.num_rows else rows
        by_system = _counts(mine, "system_id")
        by_market = _counts(mine, "market")
        recs = _counts(mine, "recommendation")
        consolidation_report = (info.summary or {}).get("consolidation", {})
        staged = consolidation_report.get("rows_staged")
        if staged is None:
            staged = sum(
                int(r.get("rows_staged") or 0)
                for r in self.storage.ledger.requests(batch_id, states=["done"])
            )
        duration = (
            (time.perf_counter() - started)
            if started is not None
            else (((info.finished_at or self.clock.now()) - info.created_at).total_seconds())
        )
        return BatchSummary(
            batch_id=batch_id,
            game_date=info.game_date,
            state=info.state,
            requests=ledger.progress(self.storage, batch_id),
            predictions_staged=int(staged or 0),
            active_predictions=int(sum(by_system.values())),
            staging_tables_left=len(janitor.staging_tables(self.storage)),
            drift=consolidation_report.get("drift", {}),
            duration_s=duration,
            by_system=by_system,
            by_market=by_market,
            recommendations=recs,
            missing=ledger.missing_players(self.storage, batch_id),
        )

    # -- operations ----------------------------------------------------------------------------
    def check_stalled(self, *, stall_minutes: float | None = None) -> dict[str, Any]:
        """Reclaim expired leases of every running batch and finish batches past their deadline."""
        now = self.clock.now()
        grace = stall_minutes * 60 if stall_minutes is not None else self.settings.lease_grace_seconds
        single_writer = not self.storage.capabilities.multi_process_writers
        swept = ledger.sweep(
            self.storage,
            clock=self.clock,
            max_attempts=self.settings.max_attempts,
            grace_seconds=grace,
            foreign_owner_prefix_not=self.owner_prefix if single_writer else None,
        )
        finished = []
        for info in ledger.list_batches(self.storage, state="running"):
            if now >= info.deadline_at:
                finished.append(self.finish(info.batch_id).as_dict())
        stale_cutoff = now - timedelta(seconds=grace)
        still_leased = sum(
            1
            for info in ledger.list_batches(self.storage, state="running")
            for r in self.storage.ledger.requests(info.batch_id, states=["leased"])
            if r.get("lease_expires_at") is not None and r["lease_expires_at"] < stale_cutoff
        )
        return {
            "reclaimed": swept.reclaimed,
            "failed": swept.failed,
            "released_from_dead_processes": swept.released_foreign,
            "finished_batches": finished,
            "stalled_leases_left": still_leased,
        }


def _counts(rows: pa.Table, column: str) -> dict[str, int]:
    """Rows per value of ``column``, sorted by value."""
    if not rows.num_rows:
        return {}
    counted = rows.group_by(column).aggregate([(column, "count")]).to_pylist()
    return {str(r[column]): int(r[f"{column}_count"]) for r in sorted(counted, key=lambda r: str(r[column]))}
