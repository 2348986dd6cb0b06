"""The daily run: one batch for one game date, from schedule to consolidated predictions.

:func:`run_batch` resolves the date's games (schedule ∪ lines ∪ past box scores), the expected players
(recently active players of those teams, plus anyone with a line or listed on the injury report), reads the
injury report published by the batch's as-of time (:mod:`nbaprops.pipeline.injuries`: Out players are skipped
``injured_out``, the others flagged), loads the newest model artifacts trained only on games before the date
(training them first when there are none or they are older than ``model_max_age_days``), starts or resumes the
batch, runs the in-process workers with :class:`~nbaprops.pipeline.slate.SlatePredictor` and consolidates.

Its steps are public for the service, which answers as soon as the batch exists and trains in the
background: :func:`plan_batch` (games, lines, injuries, expected players), :func:`start_batch`, then
:func:`complete_batch` (workers and consolidation) once :func:`~nbaprops.systems.training.ensure_bundles` has
the models.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_markets
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import (
    BatchSummary,
    Coordinator,
    StartResult,
    default_as_of,
    expected_players,
)
from nbaprops.pipeline.injuries import SKIP_CODE, TonightInjuries, tonight_injuries, with_line_players
from nbaprops.pipeline.ledger import PlayerRequest
from nbaprops.pipeline.slate import SlatePredictor, request_targets
from nbaprops.storage.seams import Backend
from nbaprops.systems.training import ModelBundle, ensure_bundles, model_info, systems_to_fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRun:
    summary: BatchSummary
    games: int
    games_source: dict[str, int]
    lines_used: int
    models: dict[str, dict[str, Any]]
    injuries: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "games": self.games,
            "games_source": self.games_source,
            "lines_used": self.lines_used,
            "models": self.models,
            "injuries": self.injuries,
        }


@dataclass(frozen=True)
class BatchPlan:
    """What a batch of one date will predict, decided before it starts (see :func:`plan_batch`).

    Attributes:
        running: the batch of the date still running, which starting resumes (``None`` when forced).
        games_source: games of the date by where they came from (schedule, lines, box scores).
        lines: the lines the batch uses (posted by ``as_of``).
        injuries: the injury report published by ``as_of``.
    """

    game_date: date
    markets: tuple[str, ...]
    systems: tuple[str, ...]
    as_of: datetime
    requests: tuple[PlayerRequest, ...]
    games: int
    games_source: dict[str, int]
    lines: pa.Table
    injuries: TonightInjuries
    running: ledger.BatchInfo | None


def plan_batch(
    storage: Backend,
    settings: Settings,
    game_date: date,
    *,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    force: bool = False,
    as_of: datetime | None = None,
    clock: Clock | None = None,
) -> BatchPlan:
    """Games, lines, injuries and expected players of ``game_date``; a running batch's own choices when
    resuming it.

    Raises:
        InputError: an unknown market or system, no game known for the date, or no player expected.
    """
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import line_players, select_lines
    from nbaprops.ingest.schedule import games_for_date

    clock = clock or SystemClock()
    markets = validate_markets(markets or settings.markets)
    systems = tuple(systems or settings.systems)
    systems_to_fit(list(systems))  # validates ids
    data = storage.features  # the inputs and history: the embedded file itself, or the GCP coordinator's own
    ensure_boxscores(data)
    running = None if force else Coordinator(storage, settings, clock=clock).running(game_date)
    if running is not None:
        markets, systems, as_of = running.markets, running.systems, running.as_of
    as_of = as_of or default_as_of(game_date, clock)
    games = games_for_date(data, game_date)
    if games.num_rows == 0:
        raise InputError(f"no games on {game_date} (no schedule, lines or box scores for it)")
    sources = games.column("source").to_pylist()
    lines = select_lines(data, game_date, markets, as_of=as_of)
    injuries = tonight_injuries(data, game_date, as_of)
    requests = expected_players(
        data,
        game_date,
        games,
        recent_days=settings.recent_days,
        line_players=with_line_players(
            line_players(data, game_date, markets, as_of), injuries.listed_players(games)
        ),
    )
    if not requests and running is None:
        raise InputError(
            f"{games.num_rows} game(s) on {game_date} but no player of those teams played in the "
            f"{settings.recent_days} days before it (opening night?); raise recent_days "
            f"(--recent-days or NBAPROPS_RECENT_DAYS) or ingest lines for the date"
        )
    return BatchPlan(
        game_date,
        tuple(markets),
        tuple(systems),
        as_of,
        tuple(requests),
        games.num_rows,
        {s: sources.count(s) for s in dict.fromkeys(sources)},
        lines,
        injuries,
        running,
    )


def start_batch(
    storage: Backend,
    settings: Settings,
    plan: BatchPlan,
    *,
    force: bool = False,
    clock: Clock | None = None,
) -> StartResult:
    """Create the planned batch, or return the running one it resumes (see :meth:`Coordinator.start`)."""
    return Coordinator(storage, settings, clock=clock).start(
        plan.game_date,
        plan.requests,
        markets=plan.markets,
        systems=plan.systems,
        as_of=plan.as_of,
        force=force,
    )


def complete_batch(
    storage: Backend,
    settings: Settings,
    plan: BatchPlan,
    start: StartResult,
    bundles: dict[str, ModelBundle],
    *,
    clock: Clock | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    stop: threading.Event | None = None,
    started: float | None = None,
) -> BatchRun:
    """Run the workers of a started batch and consolidate it.

    When ``stop`` is set the workers commit their current chunk and claim no more; the batch is then left
    running (resumable) and the summary says where it stands.
    """
    coordinator = Coordinator(storage, settings, clock=clock)
    info = ledger.get_batch(storage, start.batch_id)
    predictor = SlatePredictor(
        info,
        bundles,
        plan.lines,
        settings,
        coordinator.clock,
        plan.injuries,
        targets=request_targets(plan.requests, plan.game_date),
    )
    coordinator.run(start.batch_id, predictor, on_progress=on_progress, stop=stop)
    if stop is not None and stop.is_set():
        summary = coordinator.summary(start.batch_id, started=started)
    else:
        summary = coordinator.finish(start.batch_id, started=started)
    summary.resumed = not start.created
    skipped_out = sum(1 for m in summary.missing if m.get("error_code") == SKIP_CODE)
    return BatchRun(
        summary,
        plan.games,
        plan.games_source,
        plan.lines.num_rows,
        {m: model_info(b, plan.game_date) for m, b in bundles.items()},
        plan.injuries.summary(skipped_out),
    )


def run_batch(
    storage: Backend,
    settings: Settings,
    game_date: date,
    *,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    force: bool = False,
    as_of: datetime | None = None,
    train_days: int | None = None,
    clock: Clock | None = None,
    on_message: Callable[[str], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    bundles: dict[str, ModelBundle] | None = None,
    stop: threading.Event | None = None,
) -> BatchRun:
    """Run (or resume) the batch of ``game_date`` end to end and return its summary.

    Raises:
        InputError: no game is known for the date (nothing is stored or trained then), or no player is expected.
    """
    clock = clock or SystemClock()
    started = time.perf_counter()
    plan = plan_batch(
        storage, settings, game_date, markets=markets, systems=systems, force=force, as_of=as_of, clock=clock
    )
    if bundles is None:
        bundles = ensure_bundles(
            storage.features,
            settings,
            game_date,
            plan.markets,
            plan.systems,
            train_days=train_days,
            on_message=on_message,
        )
    start = start_batch(storage, settings, plan, force=force, clock=clock)
    if on_start:
        on_start(start.batch_id, sum(ledger.progress(storage, start.batch_id).values()))
    return complete_batch(
        storage,
        settings,
        plan,
        start,
        bundles,
        clock=clock,
        on_progress=on_progress,
        stop=stop,
        started=started,
    )


__all__ = ["BatchPlan", "BatchRun", "complete_batch", "plan_batch", "run_batch", "start_batch"]
