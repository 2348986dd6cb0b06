"""Line moves: re-predict only the players whose line moved (or who got a first line) since they were predicted.

:func:`refresh` compares each player's consensus line now (:func:`~nbaprops.ingest.lines.select_lines` as of
the refresh time) with the line his active predictions were made at. A move of at least ``refresh_threshold``
(a setting, 1.0 by default) or a first line makes him a mover; the movers get a batch of kind ``line_update``
with one request each, run through the same steps as every batch (:func:`nbaprops.pipeline.run.complete_batch`:
models, upload, workers, consolidation, alerts), so consolidation
supersedes exactly their rows (the same keys) and every other row stays as it was. A player whose game has
started (tip-off known and past, or the date's evening cutoff past when it is not) is never re-predicted, and
neither is one whose rows were invalidated (ruled out, game postponed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import line_players, select_lines
from nbaprops.ingest.schedule import games_for_date
from nbaprops.markets import validate_markets
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import default_as_of, expected_players
from nbaprops.pipeline.run import BatchPlan, complete_batch, start_batch
from nbaprops.schema import VOID_INVALIDATIONS
from nbaprops.storage.seams import Backend
from nbaprops.systems.training import ModelBundle, systems_to_fit

log = logging.getLogger(__name__)

LINE_UPDATE = "line_update"


@dataclass(frozen=True)
class LineMove:
    """A player's consensus line now against the one his predictions were made at (``None``: he had none)."""

    player_lookup: str
    player_name: str
    market: str
    old_line: float | None
    new_line: float

    @property
    def move(self) -> float | None:
        return None if self.old_line is None else self.new_line - self.old_line

    def as_dict(self) -> dict[str, Any]:
        return {
            "player_lookup": self.player_lookup,
            "player_name": self.player_name,
            "market": self.market,
            "old_line": self.old_line,
            "new_line": self.new_line,
            "move": self.move,
            "first_line": self.old_line is None,
        }


@dataclass
class RefreshResult:
    game_date: date
    as_of: datetime
    threshold: float
    moves: list[LineMove]
    not_repredicted: list[dict[str, Any]] = field(default_factory=list)
    batch: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_date": self.game_date.isoformat(),
            "as_of": self.as_of.isoformat(),
            "threshold": self.threshold,
            "moves": [m.as_dict() for m in self.moves],
            "not_repredicted": self.not_repredicted,
            "batch": self.batch,
        }


def line_moves(
    backend: Backend, game_date: date, markets: Sequence[str], *, as_of: datetime, threshold: float
) -> list[LineMove]:
    """Players whose consensus line (as of ``as_of``) moved by at least ``threshold`` or is their first."""
    storage = backend.features
    lines = select_lines(storage, game_date, markets, as_of=as_of)
    active = backend.warehouse.active_predictions(game_date).select(
        ["player_lookup", "market", "line_value", "created_at", "player_name"]
    )
    with storage.session() as session:
        now_lines = session.temp_name("now_lines")
        session.register(now_lines, lines.select(["player_lookup", "market", "line"]))
        active_rows = session.temp_name("active")
        session.register(active_rows, active)
        rows = session.execute(
            f"""WITH predicted AS (
                    SELECT player_lookup, market, arg_max(line_value, created_at) AS line,
                           arg_max(player_name, created_at) AS player_name
                    FROM {active_rows} GROUP BY ALL
                ),
                names AS (
                    SELECT player_lookup, arg_max(player_name, posted_at) AS player_name
                    FROM prop_lines WHERE game_date = ? GROUP BY ALL
                )
                SELECT n.player_lookup, coalesce(p.player_name, nm.player_name, n.player_lookup), n.market,
                       p.line, n.line
                FROM {now_lines} n LEFT JOIN predicted p USING (player_lookup, market)
                LEFT JOIN names nm USING (player_lookup)
                WHERE p.line IS NULL OR abs(n.line - p.line) >= ? - 1e-9
                ORDER BY n.market, n.player_lookup""",
            [game_date, threshold],
        ).fetchall()
    return [LineMove(lookup, name, market, old, new) for lookup, name, market, old, new in rows]


def _started(commence: datetime | None, game_date: date, now: datetime) -> bool:
    """Has the game started? Unknown tip-off: past the date's evening cutoff (00:00 UTC after it) counts as started."""
    if commence is not None:
        return commence <= now
    return now >= datetime(game_date.year, game_date.month, game_date.day, tzinfo=UTC) + timedelta(days=1)


def _daily_choice(backend: Backend, game_date: date) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Markets and systems of the newest consolidated batch of the date, which a refresh keeps."""
    for info in backend.ledger.list_batches(game_date=game_date):  # newest first
        if info.consolidated_at is not None:
            return info.markets, info.systems
    return None


def _skipped(backend: Backend, game_date: date, active: set[str]) -> dict[str, str | None]:
    """Players without an active row whom the date's newest batch that requested them skipped (no history,
    too few games), with its reason: a refresh would only skip them again."""
    latest: dict[str, tuple[str, str | None]] = {}
    for info in reversed(backend.ledger.list_batches(game_date=game_date)):  # oldest first: newer overwrite
        for request in backend.ledger.requests(info.batch_id):
            latest[request["player_lookup"]] = (request["state"], request["error_code"])
    return {p: code for p, (state, code) in latest.items() if state == "skipped" and p not in active}


def refresh(
    backend: Backend,
    settings: Settings,
    game_date: date,
    *,
    threshold: float | None = None,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    clock: Clock | None = None,
    bundles: dict[str, ModelBundle] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> RefreshResult:
    """Re-predict the movers of ``game_date`` in a ``line_update`` batch (see the module docstring).

    Markets and systems default to those of the date's newest consolidated batch.

    Raises:
        InputError: a bad threshold, a batch of the date still running, or no game on the date.
    """
    started_at = time.perf_counter()
    clock = clock or SystemClock()
    storage = backend.features  # the inputs: lines, schedule, box scores
    threshold = settings.refresh_threshold if threshold is None else threshold
    if not threshold > 0:
        raise InputError("--threshold must be positive")
    chosen = _daily_choice(backend, game_date)
    markets = validate_markets(markets or (chosen[0] if chosen else settings.markets))
    systems = tuple(systems or (chosen[1] if chosen else settings.systems))
    systems_to_fit(list(systems))
    ensure_boxscores(storage)
    running = ledger.running_batch(backend, game_date)
    if running is not None:
        raise InputError(
            f"batch {running} of {game_date} is still running; let it finish (`nbaprops predict "
            f"--date {game_date}` resumes it) before refreshing"
        )
    now = clock.now()
    as_of = default_as_of(game_date, clock)
    moves = line_moves(backend, game_date, markets, as_of=as_of, threshold=threshold)
    result = RefreshResult(game_date, as_of, threshold, moves)
    if not moves:
        return result
    games = games_for_date(storage, game_date)
    if games.num_rows == 0:
        raise InputError(f"no games on {game_date} (no schedule, lines or box scores for it)")
    tip = dict(
        zip(games.column("game_id").to_pylist(), games.column("commence_time").to_pylist(), strict=True)
    )
    rows = backend.warehouse.active_predictions(game_date, invalidated=VOID_INVALIDATIONS).to_pylist()
    invalidated = {r["player_lookup"]: r["invalidation_reason"] for r in rows if not r["is_active"]}
    skipped = _skipped(backend, game_date, {r["player_lookup"] for r in rows if r["is_active"]})
    moved = {m.player_lookup for m in moves}
    requests = []
    for request in expected_players(
        storage,
        game_date,
        games,
        recent_days=settings.recent_days,
        line_players=line_players(storage, game_date, markets, as_of),
    ):
        if request.player_lookup not in moved:
            continue
        if request.player_lookup in invalidated:
            result.not_repredicted.append(
                {"player_lookup": request.player_lookup, "reason": invalidated[request.player_lookup]}
            )
        elif request.player_lookup in skipped:
            result.not_repredicted.append(
                {
                    "player_lookup": request.player_lookup,
                    "reason": f"skipped ({skipped[request.player_lookup]})",
                }
            )
        elif request.game_id is not None and _started(tip.get(request.game_id), game_date, now):
            result.not_repredicted.append({"player_lookup": request.player_lookup, "reason": "game_started"})
        else:
            requests.append(request)
    if not requests:
        return result
    plan = BatchPlan(
        game_date,
        tuple(markets),
        systems,
        as_of,
        tuple(requests),
        games.num_rows,
        {},
        select_lines(storage, game_date, markets, as_of=as_of),
        None,  # a refresh re-prices line moves; the injury report is the daily batch's and invalidate's
        None,
        kind=LINE_UPDATE,
    )
    start = start_batch(backend, settings, plan, clock=clock)
    run = complete_batch(
        backend,
        settings,
        plan,
        start,
        bundles=bundles,
        clock=clock,
        on_message=on_message,
        started=started_at,
    )
    result.batch = {**run.summary.as_dict(), "kind": LINE_UPDATE}
    log.info("refresh %s: %d move(s), batch %s", game_date, len(moves), start.batch_id)
    return result


__all__ = ["LINE_UPDATE", "LineMove", "RefreshResult", "line_moves", "refresh"]
