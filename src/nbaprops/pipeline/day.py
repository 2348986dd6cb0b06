"""The game day, ``nbaprops daily``: fetch → retrain if stale → predict → summary and best bets.

:func:`run_day` is what ``nbaprops daily`` runs (from cron, say — docs/operations.md):

1. **fetch** (unless told not to) — box scores of the season through the day before, the season's schedule,
   the injury report published by the batch's prediction time, and tonight's lines when
   ``NBAPROPS_ODDS_API_KEY`` is set. Each lands through its own validated, atomic, idempotent ingest; a
   source that fails stops the run with ``Error:`` naming it (what earlier sources stored stays, and a rerun
   asks only for what is still missing).
2. **no games** — a date without games ends here: outcome ``no_games``, nothing else changes (exit 0).
3. **unchanged?** — a digest of everything the batch would read (games, the lines and injury report visible
   at the prediction time, the box scores before the date, the models, the settings that shape the rows) is
   compared with the last run of the date. Equal, and that run's batch still stands: nothing is predicted
   again (outcome ``unchanged``); the standing batch's summary and best bets are shown. So a second run the
   same day changes nothing unless new lines, a new injury report or new box scores arrived.
4. **predict** — :func:`~nbaprops.pipeline.run.run_batch`, which retrains a market whose newest model is
   older than ``model_max_age_days`` first and says so; Out players are skipped ``injured_out``.
5. **record** — one ``daily_runs`` row (what was fetched, the digest, the batch, the outcome).

A failed source alerts ``fetch_failed``, any other failure ``batch_failed``, a partial batch ``batch_partial``
(:mod:`nbaprops.alerts`). Dates (``TODAY``, ``TOMORROW``) are read by :func:`nbaprops.clock.resolve_day`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from nbaprops.alerts import batch_alert, failure_alert
from nbaprops.clock import Clock, SystemClock, eastern_date
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.injuries import injury_snapshot
from nbaprops.ingest.lines import select_lines
from nbaprops.ingest.schedule import games_for_date
from nbaprops.markets import validate_markets
from nbaprops.memory import peak_memory
from nbaprops.pipeline.coordinator import Coordinator, default_as_of
from nbaprops.pipeline.reads import active_predictions
from nbaprops.pipeline.run import run_batch
from nbaprops.sources import injury_report, nba_stats, odds_api, season_of
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend
from nbaprops.systems import validate_systems
from nbaprops.systems.training import load_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayRun:
    """What one ``daily`` run did.

    Attributes:
        outcome: ``predicted`` (a batch ran), ``unchanged`` (inputs as at the last run: nothing predicted
            again) or ``no_games``.
        message: one line for a person.
        fetches: each source's :class:`~nbaprops.sources.FetchReport` as a dict.
        batch: the summary of the batch that ran, or of the one standing for the date (``None`` without games).
        best_bets: the best recommended bets of the date (highest expected value first).
        peak_memory: the process's peak memory by the end of the run (:func:`~nbaprops.memory.peak_memory`).
    """

    run_id: str
    game_date: date
    outcome: str
    message: str
    inputs_digest: str | None
    fetches: list[dict[str, Any]] = field(default_factory=list)
    batch: dict[str, Any] | None = None
    best_bets: list[dict[str, Any]] = field(default_factory=list)
    peak_memory: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "game_date": self.game_date.isoformat(),
            "outcome": self.outcome,
            "message": self.message,
            "inputs_digest": self.inputs_digest,
            "fetches": self.fetches,
            "batch": self.batch,
            "best_bets": self.best_bets,
            **self.peak_memory,
        }


def _fetch_all(
    storage: Inputs,
    settings: Settings,
    game_date: date,
    as_of: datetime,
    clock: Clock,
    markets: tuple[str, ...],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    season = season_of(game_date)
    reports = []
    until = min(game_date, eastern_date(clock)) - timedelta(days=1)
    steps: list[tuple[str, Callable[[], Any]]] = [
        (
            "box scores",
            lambda: nba_stats.fetch_boxscores(storage, settings, season=season, clock=clock, until=until),
        ),
        ("schedule", lambda: nba_stats.fetch_schedule(storage, settings, season=season, clock=clock)),
        (
            "injury report",
            lambda: injury_report.fetch_injuries(
                storage, settings, clock=clock, game_date=game_date, at=as_of
            ),
        ),
    ]
    if settings.odds_api_key:
        steps.append(
            (
                "lines",
                lambda: odds_api.fetch_lines(
                    storage, settings, game_date=game_date, clock=clock, markets=markets
                ),
            )
        )
    for what, step in steps:
        say(f"fetching {what}…")
        report = step()
        say(f"{what}: {report.message}")
        reports.append(report.as_dict())
    if not settings.odds_api_key:
        say("lines: not fetched (NBAPROPS_ODDS_API_KEY is not set); predictions use the lines already stored")
        reports.append(
            {
                "source": "odds_api",
                "kind": "lines",
                "asked": None,
                "records": 0,
                "rows_added": 0,
                "landed": None,
                "message": "not fetched: NBAPROPS_ODDS_API_KEY is not set",
            }
        )
    return reports


def inputs_digest(
    storage: Inputs,
    settings: Settings,
    game_date: date,
    as_of: datetime,
    markets: tuple[str, ...],
    systems: tuple[str, ...],
) -> str:
    """A digest of everything a batch of ``game_date`` at ``as_of`` would read (see the module docstring)."""

    games = games_for_date(storage, game_date)
    lines = select_lines(storage, game_date, markets, as_of=as_of)
    injuries = injury_snapshot(storage, game_date, as_of)
    box = storage.fetchone(
        "SELECT count(*), max(game_date), sum(pts + reb + ast) FROM box_scores WHERE game_date < ?",
        [game_date],
    )
    models = {
        m: getattr(load_latest(settings.artifacts_dir, m, game_date, system_ids=list(systems)), "path", None)
        for m in markets
    }
    parts = {
        "games": games.select(["game_id", "home_team", "away_team", "commence_time"]).to_pylist(),
        "lines": lines.to_pylist(),
        "injuries": injuries.to_pylist(),
        "box": box,
        "models": models,
        "settings": [
            markets,
            systems,
            settings.ev_margin,
            settings.min_games,
            settings.recent_days,
            settings.train_days,
            settings.model_max_age_days,
        ],
    }
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:16]


def _standing_batch(backend: Backend, game_date: date, batch_id: str | None) -> str | None:
    """``batch_id`` if it is still the batch whose rows are active for the date (nothing superseded it)."""
    if batch_id is None:
        return None
    batches = backend.ledger.list_batches(game_date=game_date)  # newest first
    newest = batches[0] if batches else None
    return (
        batch_id
        if newest is not None and newest.batch_id == batch_id and newest.state == "complete"
        else None
    )


def best_bets(
    storage: Backend, game_date: date, systems: tuple[str, ...], *, limit: int
) -> list[dict[str, Any]]:
    """The date's recommended bets, best expected value first, one per player and market.

    The ensemble's rows when it ran (it combines the others), else every system's.
    """

    system = "ensemble" if "ensemble" in systems else None
    names, rows = active_predictions(storage, game_date, system=system, bets_only=True)
    picks: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    keep = (
        "player_name",
        "team",
        "opponent",
        "market",
        "system_id",
        "recommendation",
        "line_value",
        "sportsbook",
        "over_price",
        "under_price",
        "predicted_value",
        "confidence_score",
        "expected_value",
        "injury_status",
    )
    for row in rows:
        record = dict(zip(names, row, strict=True))
        key = (record["player_lookup"], record["market"])
        if key in seen:
            continue
        seen.add(key)
        picks.append({k: record[k] for k in keep})
        if len(picks) >= limit:
            break
    return picks


def run_day(
    backend: Backend,
    settings: Settings,
    game_date: date,
    *,
    clock: Clock | None = None,
    fetch: bool = True,
    best: int = 10,
    on_message: Callable[[str], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
) -> DayRun:
    """Run one game day end to end (see the module docstring); safe to rerun.

    The inputs, the record of runs and the models are the inputs file's (``backend.features``); the batch and
    its predictions are the backend's (the same file, or — backend gcp — Firestore and BigQuery, the inputs
    uploaded first for the workers).
    """
    batch_ids: list[str] = []

    def started(batch_id: str, total: int) -> None:
        batch_ids.append(batch_id)
        if on_start is not None:
            on_start(batch_id, total)

    try:
        run = _run_day(
            backend,
            settings,
            game_date,
            clock=clock or SystemClock(),
            fetch=fetch,
            best=best,
            on_message=on_message,
            on_start=started,
            on_progress=on_progress,
        )
    except BaseException as exc:
        failure_alert(
            settings, f"the game day {game_date}", exc, batch_id=batch_ids[-1] if batch_ids else None
        )
        raise
    if run.outcome == "predicted" and run.batch is not None:
        batch_alert(settings, run.batch)
    return dataclasses.replace(run, peak_memory=peak_memory())


def _run_day(
    backend: Backend,
    settings: Settings,
    game_date: date,
    *,
    clock: Clock,
    fetch: bool,
    best: int,
    on_message: Callable[[str], None] | None,
    on_start: Callable[[str, int], None],
    on_progress: Callable[[dict[str, int]], None] | None,
) -> DayRun:

    storage = backend.features
    say = on_message or (lambda _m: None)
    markets = validate_markets(settings.markets)
    systems = tuple(validate_systems(settings.systems))
    run_id = f"{game_date:%Y%m%d}_{uuid.uuid4().hex[:10]}"
    started = clock.now()
    ensure_boxscores(storage)
    as_of = default_as_of(game_date, clock)
    fetches = _fetch_all(storage, settings, game_date, as_of, clock, markets, say) if fetch else []

    def record(
        outcome: str,
        message: str,
        digest: str | None,
        batch_id: str | None,
        batch: dict[str, Any] | None,
        bets: list[dict[str, Any]],
    ) -> DayRun:
        run = DayRun(run_id, game_date, outcome, message, digest, fetches, batch, bets)
        storage.execute(
            "INSERT INTO daily_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                game_date,
                started,
                clock.now(),
                digest,
                batch_id,
                outcome,
                json.dumps({"fetches": fetches, "message": message}, default=str),
            ],
        )
        return run

    if games_for_date(storage, game_date).num_rows == 0:
        return record("no_games", f"no games on {game_date}: nothing to predict", None, None, None, [])
    digest = inputs_digest(storage, settings, game_date, as_of, markets, systems)
    last = storage.fetchone(
        "SELECT inputs_digest, batch_id FROM daily_runs WHERE game_date = ? AND batch_id IS NOT NULL "
        "ORDER BY started_at DESC LIMIT 1",
        [game_date],
    )
    standing = _standing_batch(backend, game_date, last[1]) if last and last[0] == digest else None
    if standing is not None:
        summary = Coordinator(backend, settings, clock=clock).summary(standing).as_dict()
        return record(
            "unchanged",
            f"nothing new since the last run: batch {standing} stands",
            digest,
            standing,
            summary,
            best_bets(backend, game_date, systems, limit=best),
        )
    result = run_batch(
        backend,
        settings,
        game_date,
        markets=markets,
        systems=systems,
        clock=clock,
        on_message=say,
        on_start=on_start,
        on_upload=lambda uploaded: say(
            "inputs uploaded to the warehouse: " + ", ".join(f"{t} {n}" for t, n in uploaded.items())
        ),
        on_progress=on_progress,
        alerts=False,  # run_day alerts for the whole day
    )
    batch_id = result.summary.batch_id
    after = inputs_digest(storage, settings, game_date, as_of, markets, systems)  # with the models it trained
    skipped_out = result.injuries.get("skipped_out", 0)
    message = (
        f"batch {batch_id}: {result.summary.requests['done']} player(s) predicted, "
        f"{skipped_out} skipped as Out on the injury report"
    )
    return record(
        "predicted",
        message,
        after,
        batch_id,
        result.as_dict(),
        best_bets(backend, game_date, systems, limit=best),
    )


__all__ = ["DayRun", "best_bets", "inputs_digest", "run_day"]
