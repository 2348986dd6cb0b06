"""The walk-forward backtest: train only on the past, predict each game day as the daily batch would, grade.

For each step of ``retrain_days`` (default :data:`~nbaprops.backtest.split.DEFAULT_RETRAIN_DAYS`, 7) game days: fit
the systems on games before the step's first day (:func:`~nbaprops.systems.training.train_market`), then for every
day of the step take the players the daily batch would request
(:func:`~nbaprops.pipeline.coordinator.expected_players`: recently active players of the scheduled teams plus anyone
with a line posted by the prediction time), their point-in-time features, the consensus line posted by the
prediction time (:func:`~nbaprops.ingest.lines.select_lines`), and the rows the batch would stage
(:func:`~nbaprops.pipeline.rows.prediction_rows`). Each step is graded as soon as it is predicted; from the step on
which the run's earlier graded rows with a line number at least 50, P(over) is calibrated on them (out of time: all
dated before the step) instead of on the training window's held-out rows. Who is requested is asked for all the days
at once (the daily batch's own queries, given many dates: each date's answer is the one it gets alone), and the
features of all targets are built in one query; each row is as of its own date (the leakage tests prove it equals a
per-day build). LightGBM bins the training set once per process, with boundaries learned on the first step's window,
and every step's ``gbm`` fits take their rows from it (:class:`~nbaprops.systems.gbm.SharedBins`). What is learned
out of sample (each system's error spread, the ensemble's weights, the holdout calibration: the holdout fits) is
learned every ``holdout_every`` steps (default 4) and kept in between; the models are fitted on every step's
window, ``gbm``'s every ``gbm_every`` steps (default 2, serving its last in between).

Grading (:func:`nbaprops.evaluation.grading.grade`, shared with the live ``nbaprops grade``) joins the real box score: a
player without one did not play and his rows are void (never a loss). A bet wins, loses or pushes against the
line it was made at, and its profit is at the offered price.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.backtest._fitting import StepFitter, fit_steps, shared_bins
from nbaprops.backtest.split import (
    DEFAULT_GBM_EVERY,
    DEFAULT_HOLDOUT_EVERY,
    DEFAULT_RETRAIN_DAYS,
    WalkForwardSplit,
)
from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.evaluation.grading import grade
from nbaprops.features.builder import build_features, build_training_set
from nbaprops.features.market import with_availability
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import line_players_by_date, select_lines_by_date
from nbaprops.ingest.schedule import games_for_dates
from nbaprops.markets import MARKET_STAT, validate_market
from nbaprops.pipeline.coordinator import default_as_of, expected_players_by_date
from nbaprops.pipeline.ledger import Lease, PlayerRequest
from nbaprops.pipeline.rows import prediction_rows, with_market_columns
from nbaprops.storage.inputs import Inputs
from nbaprops.systems.base import SystemOutput
from nbaprops.systems.calibration import MIN_ROWS, Calibrator, standardized_edge
from nbaprops.systems.ensemble import predict_shared
from nbaprops.systems.gbm import with_row_ids
from nbaprops.systems.training import (
    DEFAULT_TRAIN_DAYS,
    ModelBundle,
    calibrate_holdout,
    inherit_calibration,
    systems_to_fit,
    training_window,
    with_market_history,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestResult:
    run_id: str
    market: str
    start: date
    end: date
    steps: int
    days: int
    grades: pa.Table
    models: list[dict[str, Any]]


def season_range(storage: Inputs, season: str) -> tuple[date, date]:
    """First and last box-score date of a season label (``2024-25``)."""
    row = storage.fetchone("SELECT min(game_date), max(game_date) FROM box_scores WHERE season = ?", [season])
    if row is None or row[0] is None:
        known = [r[0] for r in storage.fetchall("SELECT DISTINCT season FROM box_scores ORDER BY 1")]
        raise InputError(f"no box scores for season {season!r}; known: {', '.join(known)}")
    return row[0], row[1]


def _as_of(day: date) -> datetime:
    """The prediction time the daily batch uses for ``day`` once it is in the past."""
    return default_as_of(
        day, ManualClock(datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC))
    )


def _requests(
    storage: Inputs, days: Sequence[date], market: str, recent_days: int
) -> dict[date, list[PlayerRequest]]:
    """Who the daily batch would request on each of ``days`` (three queries for all of them)."""
    return expected_players_by_date(
        storage,
        days,
        games_for_dates(storage, days),
        recent_days=recent_days,
        line_players=line_players_by_date(storage, {day: _as_of(day) for day in days}, [market]),
    )


def default_workers() -> int:
    """Processes that fit step models: one per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class _Targets:
    """Who the batch would request on each day, their features (one build for the whole range) and which of
    them each day predicts (those with enough games); rows of ``feats`` for ``day`` start at ``first[day]``."""

    per_day: dict[date, list[PlayerRequest]]
    feats: pa.Table
    first: dict[date, int]
    kept: dict[date, list[int]]


def _targets(storage: Inputs, days: list[date], market: str, settings: Settings) -> _Targets:
    per_day = {
        day: [
            r
            for r in requests
            if r.player_id is not None and r.game_id is not None and r.opponent is not None
        ]
        for day, requests in _requests(storage, days, market, settings.recent_days).items()
    }
    targets = pa.table(
        {
            "player_id": pa.array([r.player_id for d in days for r in per_day[d]], pa.int64()),
            "player_lookup": pa.array([r.player_lookup for d in days for r in per_day[d]], pa.string()),
            "game_date": pa.array([d for d in days for _ in per_day[d]], pa.date32()),
            "team": pa.array([r.team for d in days for r in per_day[d]], pa.string()),
            "opponent": pa.array([r.opponent for d in days for r in per_day[d]], pa.string()),
            "is_home": pa.array([r.is_home for d in days for r in per_day[d]], pa.bool_()),
        }
    )
    feats = build_features(storage, targets)
    offsets = np.cumsum([0] + [len(per_day[d]) for d in days])
    games_total = np.asarray(feats.column("games_total").to_numpy(zero_copy_only=False), dtype=np.float64)
    first = {day: int(offsets[i]) for i, day in enumerate(days)}
    kept = {
        day: [j for j in range(int(offsets[i]), int(offsets[i + 1])) if games_total[j] >= settings.min_games]
        for i, day in enumerate(days)
    }
    return _Targets(per_day, feats, first, kept)


def _step_rows(
    storage: Inputs,
    settings: Settings,
    bundle: ModelBundle,
    *,
    systems: Sequence[str],
    market: str,
    run_id: str,
    step_days: list[date],
    found: _Targets,
    season_lines: pa.Table,
    shared: bool,
) -> list[pa.Table]:
    """The rows the daily batch would stage on each of ``step_days`` with the step's models.

    Args:
        shared: predict the step's rows at once, each system once (the parallel path; row by row the same
            values), instead of day by day.
    """
    # Each day's rows with what the market said by its prediction time (line, prices, availability).
    day_lines = {
        day: season_lines.filter(pc.equal(season_lines.column("game_date"), pa.scalar(day, pa.date32())))
        for day in step_days
    }
    day_feats = {
        day: with_market_columns(
            with_availability(
                storage, found.feats.take(pa.array(found.kept[day], pa.int64())), day_lines[day], [market]
            ),
            day_lines[day],
            market,
            [found.per_day[day][j - found.first[day]].player_lookup for j in found.kept[day]],
        )
        for day in step_days
    }
    outputs = (
        predict_shared(bundle.systems, list(systems), pa.concat_tables([day_feats[d] for d in step_days]))
        if shared and step_days
        else None
    )
    tables: list[pa.Table] = []
    done = 0
    for day in step_days:
        keep = found.kept[day]
        leases = [
            Lease(
                run_id,
                r.player_lookup,
                1,
                "backtest",
                r.player_name,
                r.player_id,
                r.team,
                r.opponent,
                r.game_id,
                r.is_home,
            )
            for r in (found.per_day[day][j - found.first[day]] for j in keep)
        ]
        day_outputs = (
            None
            if outputs is None
            else {
                sid: SystemOutput(
                    o.predicted_value[done : done + len(keep)],
                    o.predicted_std[done : done + len(keep)],
                    o.model_version,
                )
                for sid, o in outputs.items()
            }
        )
        done += len(keep)
        tables += prediction_rows(
            bundle=bundle,
            systems=list(systems),
            feats=day_feats[day],
            leases=leases,
            lines=day_lines[day],
            market=market,
            batch_id=run_id,
            game_date=day,
            ev_margin=settings.ev_margin,
            now=datetime.now(UTC),
            outputs=day_outputs,
        )
    return tables


def run_backtest(
    storage: Inputs,
    settings: Settings,
    *,
    market: str,
    start: date,
    end: date,
    systems: Sequence[str],
    retrain_days: int = DEFAULT_RETRAIN_DAYS,
    train_days: int = DEFAULT_TRAIN_DAYS,
    on_step: Callable[[int, int, date], None] | None = None,
    workers: int | None = None,
    gbm_every: int = DEFAULT_GBM_EVERY,
    holdout_every: int = DEFAULT_HOLDOUT_EVERY,
) -> BacktestResult:
    """Walk forward over the game days in ``[start, end]`` and store the grades under a new ``run_id``.

    The steps are the folds of :class:`~nbaprops.backtest.split.WalkForwardSplit` over those days.

    Args:
        workers: processes fitting the steps' models in parallel (default: one per core). ``0`` runs the
            original serial path — each step trained in this process, each day predicted on its own — which
            gives the same grades more slowly; ``benchmarks/backtest.py`` measures one against the other.
        holdout_every: steps between two full fits (default
            :data:`~nbaprops.backtest.split.DEFAULT_HOLDOUT_EVERY`, 4): the holdout fits, which learn each
            system's error spread, the ensemble's weights and the holdout calibration out of sample. The steps in
            between fit the models anew on their own window and keep those.
        gbm_every: steps between two fits of ``gbm``'s model (default
            :data:`~nbaprops.backtest.split.DEFAULT_GBM_EVERY`, 2; divides ``holdout_every``); in between it
            serves its last. The other systems' models are fitted every step. ``gbm_every=1, holdout_every=1``
            fits everything every step.
    """
    validate_market(market)
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
    if retrain_days < 1:
        raise InputError("--retrain-days must be at least 1")
    if gbm_every < 1 or holdout_every < 1 or holdout_every % gbm_every:
        raise InputError(
            "gbm_every and holdout_every must be at least 1, and gbm_every must divide holdout_every"
        )
    system_ids = tuple(systems_to_fit(list(systems)))
    workers = default_workers() if workers is None else workers
    ensure_boxscores(storage)
    storage.ensure_schema()
    days = [
        r[0]
        for r in storage.fetchall(
            "SELECT DISTINCT game_date FROM box_scores WHERE game_date BETWEEN ? AND ? ORDER BY 1",
            [start, end],
        )
    ]
    if not days:
        raise InputError(f"no games with results between {start} and {end}")
    run_id = f"bt_{market}_{start:%Y%m%d}_{end:%Y%m%d}_{uuid.uuid4().hex[:8]}"
    splitter = WalkForwardSplit(retrain_days=retrain_days, train_days=train_days)
    folds = list(splitter.split(days))
    with contextlib.ExitStack() as stack:
        # Parallel path: the fitting processes start now (their imports overlap with the training set's build),
        # then every step's models start fitting while the requests and features are built.
        fitter = stack.enter_context(StepFitter(workers=workers)) if workers > 0 else None
        training = build_training_set(storage, splitter.history_start(days), days[-1] + timedelta(days=1))
        training = with_row_ids(with_market_history(storage, training, market))
        # The serial path's fits take their rows from the same bins as the workers'.
        bins = shared_bins(training, market, folds[0].train_end, system_ids) if fitter is None else None
        if fitter is not None:
            fitter.submit(
                training,
                market,
                [f.train_end for f in folds],
                system_ids=system_ids,
                train_days=train_days,
                holdout_every=holdout_every,
                gbm_every=gbm_every,
            )
        found = _targets(storage, days, market, settings)
        # The consensus line of every day as of its own prediction time (one query; each day's as if alone).
        season_lines = select_lines_by_date(storage, {day: _as_of(day) for day in days}, [market])
        models: list[dict[str, Any]] = []
        graded_steps = 0
        for fold in folds:
            if on_step:
                on_step(fold.step, len(folds), fold.train_end)
            window = training_window(training, fold.train_start, fold.train_end)
            first = fold.step % holdout_every == 0  # the group's full fit (holdout included)
            if fitter is None:
                if first:  # the group's steps, as a worker fits them
                    group = fit_steps(
                        training,
                        market,
                        [f.train_end for f in folds[fold.step : fold.step + holdout_every]],
                        system_ids=system_ids,
                        train_days=train_days,
                        bins=bins,
                        gbm_every=gbm_every,
                    )
                fitted = next(group)
            else:
                fitted = fitter.bundle(fold.step)
            if first:
                bundle = calibrate_holdout(storage, fitted, window)
                anchor = dataclasses.replace(bundle, calibrators=dict(bundle.calibrators))
            else:
                bundle = inherit_calibration(fitted, anchor, window)
            models.append(_calibrate_on_run(storage, bundle, run_id, systems, before=fold.train_end))
            tables = _step_rows(
                storage,
                settings,
                bundle,
                systems=systems,
                market=market,
                run_id=run_id,
                step_days=[d for d in fold.test_dates if found.kept[d]],
                found=found,
                season_lines=season_lines,
                shared=fitter is not None,
            )
            if tables:  # graded now: its results may calibrate the next steps (they are in the past then)
                grade(storage, pa.concat_tables(tables), run_id=run_id, stat=MARKET_STAT[market])
                graded_steps += 1
    if on_step:
        on_step(len(folds), len(folds), days[-1])
    if not graded_steps:
        raise InputError(f"nothing to predict between {start} and {end}")
    grades = storage.arrow(
        "SELECT * FROM prediction_grades WHERE run_id = ? ORDER BY game_date, system_id, player_lookup",
        [run_id],
    )
    return BacktestResult(run_id, market, days[0], days[-1], len(folds), len(days), grades, models)


def _calibrate_on_run(
    storage: Inputs, bundle: ModelBundle, run_id: str, systems: Sequence[str], *, before: date
) -> dict[str, Any]:
    """Calibrate on this run's own graded rows of earlier steps (out of time) once there are enough; returns
    the bundle's meta with the calibration each system uses."""
    for sid in systems:
        cal = graded_calibrator(storage, run_id, sid, before=before)
        if cal is not None:
            bundle.calibrators[sid] = cal
    bundle.meta = {
        **bundle.meta,
        "calibration_used": {sid: bundle.calibrators[sid].summary() for sid in systems},
    }
    return bundle.meta


def calibration_summary(models: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per system: how many steps used each calibration method, and the last step's calibration (its slope,
    interval and the reason rows were or were not bet)."""
    out: dict[str, dict[str, Any]] = {}
    for meta in models:
        for sid, cal in meta.get("calibration_used", {}).items():
            entry = out.setdefault(sid, {"steps": {}, "last": None})
            entry["steps"][cal["method"]] = entry["steps"].get(cal["method"], 0) + 1
            entry["last"] = cal
    return out


def graded_calibrator(storage: Inputs, run_id: str, system_id: str, *, before: date) -> Calibrator | None:
    """A calibrator fitted on the run's graded rows dated before ``before`` (None below ``MIN_ROWS``)."""
    rows = storage.fetchall(
        """SELECT predicted_value, predicted_std, line_value, CAST(actual_value > line_value AS DOUBLE)
           FROM prediction_grades
           WHERE run_id = ? AND system_id = ? AND game_date < ? AND predicted_value IS NOT NULL
             AND predicted_std > 0 AND actual_value IS NOT NULL AND line_value IS NOT NULL
             AND actual_value <> line_value
           ORDER BY game_date, player_lookup""",
        [run_id, system_id, before],
    )
    if len(rows) < MIN_ROWS:
        return None
    data = np.asarray(rows, dtype=np.float64)
    return Calibrator.fit(standardized_edge(data[:, 0], data[:, 1], data[:, 2]), data[:, 3])
