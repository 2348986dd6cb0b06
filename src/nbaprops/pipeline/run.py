"""Run one batch: the one place its steps are wired, whoever asks for it.

:func:`run_batch` is ``nbaprops predict``; ``nbaprops daily`` (:mod:`nbaprops.pipeline.day`), ``nbaprops refresh``
(:mod:`nbaprops.pipeline.refresh`) and the service's background runner (:mod:`nbaprops.service.runner`) run
their batches through the same steps, in the same order:

1. **plan** — :func:`plan_batch`: the date's games (schedule ∪ lines ∪ past box scores), the expected players
   (recently active players of those teams, plus anyone with a line or listed on the injury report), the lines
   and the injury report published by the batch's as-of time (:mod:`nbaprops.pipeline.injuries`: Out players
   are skipped ``injured_out``, the others flagged). Optional lines files are ingested first.
2. **start** — :func:`start_batch`: the batch and one request per player, or the running batch it resumes.
3. **models** — the newest artifacts trained only on games before the date, trained first when there are none
   or they are older than ``model_max_age_days`` (:func:`~nbaprops.systems.training.ensure_bundles`).
4. **upload** — the inputs the batch was planned from go to the warehouse, where workers in other processes
   read their history (on the embedded backend the file is the warehouse: nothing is copied).
5. **dispatch** — the workers run :class:`~nbaprops.pipeline.slate.SlatePredictor` over the requests.
6. **consolidate** — staging into the main table; the summary.
7. **alert** — :mod:`nbaprops.alerts`: a partial batch, a failed one.

Steps 3-7 are :func:`complete_batch`, which the service calls on a background thread once it has answered
with the batch id that steps 1-2 gave it; callers pass callbacks (messages, start, progress, upload), never
re-sequence the steps.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from nbaprops.alerts import batch_alert, failure_alert
from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import ingest_lines, line_players, select_lines
from nbaprops.ingest.schedule import games_for_date
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
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend
from nbaprops.systems.training import (
    ModelBundle,
    ensure_bundles,
    model_info,
    save_bundle,
    systems_to_fit,
    train_market,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRun:
    summary: BatchSummary
    games: int
    games_source: dict[str, int]
    lines_used: int
    models: dict[str, dict[str, Any]]
    injuries: dict[str, Any] = field(default_factory=dict)
    lines_ingested: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result = {
            **self.summary.as_dict(),
            "games": self.games,
            "games_source": self.games_source,
            "lines_used": self.lines_used,
            "models": self.models,
            "injuries": self.injuries,
        }
        if self.lines_ingested is not None:
            result["lines_ingested"] = self.lines_ingested
            result["lines_quarantined"] = self.lines_ingested["quarantined"]
        return result


@dataclass(frozen=True)
class BatchPlan:
    """What a batch of one date will predict, decided before it starts (see :func:`plan_batch`).

    Attributes:
        running: the batch of the date still running, which starting resumes (``None`` when forced).
        games_source: games of the date by where they came from (schedule, lines, box scores).
        lines: the lines the batch uses (posted by ``as_of``).
        injuries: the injury report published by ``as_of`` (``None``: the batch reads none, as a refresh).
        kind: the batch's kind (``daily``; ``line_update`` for a refresh).
    """

    game_date: date
    markets: tuple[str, ...]
    systems: tuple[str, ...]
    as_of: datetime
    requests: tuple[PlayerRequest, ...]
    games: int
    games_source: dict[str, int]
    lines: pa.Table
    injuries: TonightInjuries | None
    running: ledger.BatchInfo | None
    kind: str = "daily"


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
        kind=plan.kind,
    )


def complete_batch(
    storage: Backend,
    settings: Settings,
    plan: BatchPlan,
    start: StartResult,
    *,
    bundles: dict[str, ModelBundle] | None = None,
    train_days: int | None = None,
    clock: Clock | None = None,
    on_message: Callable[[str], None] | None = None,
    on_models: Callable[[dict[str, ModelBundle]], None] | None = None,
    on_upload: Callable[[dict[str, int]], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    stop: threading.Event | None = None,
    started: float | None = None,
    alerts: bool = True,
) -> BatchRun:
    """Steps 3-7 of a started batch: models, upload, dispatch, consolidate, alert (see the module docstring).

    Args:
        bundles: the models to use; ``None``: the newest fit for the date, trained first when missing or stale.
        on_models: called with the models once they are ready, before any request is dispatched.
        on_upload: called with the rows uploaded per input table, when workers in other processes read them.
        stop: when set, the workers commit their current chunk and claim no more; the batch is then left
            running (resumable) and the summary says where it stands.
        alerts: send the batch's alerts (a caller that alerts for a larger run of its own passes ``False``).
    """
    try:
        if bundles is None:
            bundles = ensure_bundles(
                storage.features,
                settings,
                plan.game_date,
                plan.markets,
                plan.systems,
                train_days=train_days,
                on_message=on_message,
            )
        if on_models is not None:
            on_models(bundles)
        uploaded = storage.warehouse.upload_inputs(storage.features)
        # Workers in other processes read their history from the warehouse; in-process ones read the file.
        if on_upload is not None and storage.capabilities.multi_process_writers:
            on_upload(uploaded)
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
    except BaseException as exc:
        if alerts:
            failure_alert(
                settings, f"batch {start.batch_id} of {plan.game_date}", exc, batch_id=start.batch_id
            )
        raise
    summary.resumed = not start.created
    skipped_out = sum(1 for m in summary.missing if m.get("error_code") == SKIP_CODE)
    run = BatchRun(
        summary,
        plan.games,
        plan.games_source,
        plan.lines.num_rows,
        {m: model_info(b, plan.game_date) for m, b in bundles.items()},
        plan.injuries.summary(skipped_out) if plan.injuries is not None else {},
    )
    if alerts:
        batch_alert(settings, run.as_dict())  # only a partial batch alerts
    return run


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
    lines: Sequence[Path] = (),
    clock: Clock | None = None,
    on_message: Callable[[str], None] | None = None,
    on_lines: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_upload: Callable[[dict[str, int]], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    bundles: dict[str, ModelBundle] | None = None,
    stop: threading.Event | None = None,
    alerts: bool = True,
) -> BatchRun:
    """Run (or resume) the batch of ``game_date`` end to end and return its summary.

    Args:
        lines: lines files ingested into the inputs first (``on_lines`` gets the ingest's report).
        on_start: called with the batch id and its number of requests once the batch exists.
        alerts: send the batch's alerts, a failure included (see :func:`complete_batch`).

    Raises:
        InputError: no game is known for the date (nothing is stored or trained then), or no player is expected.
    """
    clock = clock or SystemClock()
    started = time.perf_counter()
    ingested = None
    try:
        if lines:
            ingested = ingest_lines(storage.features, lines).as_dict()
            if on_lines is not None:
                on_lines(ingested)
        plan = plan_batch(
            storage,
            settings,
            game_date,
            markets=markets,
            systems=systems,
            force=force,
            as_of=as_of,
            clock=clock,
        )
        start = start_batch(storage, settings, plan, force=force, clock=clock)
    except BaseException as exc:
        if alerts:
            failure_alert(settings, f"the batch of {game_date}", exc)
        raise
    if on_start:
        on_start(start.batch_id, sum(ledger.progress(storage, start.batch_id).values()))
    run = complete_batch(
        storage,
        settings,
        plan,
        start,
        bundles=bundles,
        train_days=train_days,
        clock=clock,
        on_message=on_message,
        on_upload=on_upload,
        on_progress=on_progress,
        stop=stop,
        started=started,
        alerts=alerts,
    )
    if ingested is None:
        return run
    return dataclasses.replace(run, lines_ingested=ingested)


def train_models(
    storage: Inputs,
    settings: Settings,
    through: date,
    *,
    on_market: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """``nbaprops train``: fit every market's trainable systems on games before ``through`` and store the
    versioned artifacts in ``settings.artifacts_dir``; each bundle's metadata with its ``path``.

    Args:
        on_market: called with each market before it is trained.
    """
    ensure_boxscores(storage)
    fit = systems_to_fit(list(settings.systems))
    results = []
    for market in settings.markets:
        if on_market is not None:
            on_market(market)
        bundle = train_market(storage, market, through, system_ids=fit, train_days=settings.train_days)
        path = save_bundle(bundle, settings.artifacts_dir)
        results.append({**bundle.meta, "path": str(path)})
    return results


__all__ = [
    "BatchPlan",
    "BatchRun",
    "complete_batch",
    "plan_batch",
    "run_batch",
    "start_batch",
    "train_models",
]
