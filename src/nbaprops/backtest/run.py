"""The walk-forward backtest: train only on the past, predict each game day as the daily batch would, grade.

For each step of ``retrain_days`` (default 7) game days: fit the systems on games before the step's first day
(:func:`~nbaprops.systems.training.train_market`), then for every day of the step take the players the daily
batch would request (:func:`~nbaprops.pipeline.coordinator.expected_players`: recently active players of the
scheduled teams plus anyone with a line posted by the prediction time), their point-in-time features, the
consensus line posted by the prediction time (:func:`~nbaprops.ingest.lines.select_lines`), and the rows the
batch would stage (:func:`~nbaprops.pipeline.rows.prediction_rows`). Each step is graded as soon as it is
predicted; from the step on which the run's earlier graded rows with a line number at least 50, P(over) is
calibrated on them (out of time: all dated before the step) instead of on the training window's held-out rows. Features of all targets are built in
one query; each row is as of its own date (the leakage tests prove it equals a per-day build).

Grading joins the real box score: a player without one did not play and his rows are void (never a loss). A
bet wins, loses or pushes against the line it was made at, and its profit is at the offered price.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.features.builder import build_features, build_training_set
from nbaprops.features.market import with_availability
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import line_players, select_lines
from nbaprops.ingest.schedule import games_for_date
from nbaprops.markets import MARKET_STAT, validate_market
from nbaprops.pipeline.coordinator import default_as_of, expected_players
from nbaprops.pipeline.ledger import Lease, PlayerRequest
from nbaprops.pipeline.rows import prediction_rows
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.calibration import MIN_ROWS, Calibrator
from nbaprops.systems.training import DEFAULT_TRAIN_DAYS, systems_to_fit, train_market

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


def season_range(storage: DuckDBStorage, season: str) -> tuple[date, date]:
    """First and last box-score date of a season label (``2024-25``)."""
    row = storage.fetchone("SELECT min(game_date), max(game_date) FROM box_scores WHERE season = ?", [season])
    if row is None or row[0] is None:
        known = [r[0] for r in storage.fetchall("SELECT DISTINCT season FROM box_scores ORDER BY 1")]
        raise InputError(f"no box scores for season {season!r}; known: {', '.join(known)}")
    return row[0], row[1]


def _as_of(day: date) -> datetime:
    """The prediction time the daily batch uses for ``day`` once it is in the past."""
    return default_as_of(day, ManualClock(datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC)))


def _requests(storage: DuckDBStorage, day: date, market: str, recent_days: int) -> list[PlayerRequest]:
    games = games_for_date(storage, day)
    return expected_players(storage, day, games, recent_days=recent_days,
                            line_players=line_players(storage, day, [market], _as_of(day)))


def run_backtest(
    storage: DuckDBStorage,
    settings: Settings,
    *,
    market: str,
    start: date,
    end: date,
    systems: Sequence[str],
    retrain_days: int = 7,
    train_days: int = DEFAULT_TRAIN_DAYS,
    on_step: Callable[[int, int, date], None] | None = None,
) -> BacktestResult:
    """Walk forward over the game days in ``[start, end]`` and store the grades under a new ``run_id``."""
    validate_market(market)
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
    if retrain_days < 1:
        raise InputError("--retrain-days must be at least 1")
    systems_to_fit(list(systems))
    ensure_boxscores(storage)
    storage.ensure_schema()
    days = [r[0] for r in storage.fetchall(
        "SELECT DISTINCT game_date FROM box_scores WHERE game_date BETWEEN ? AND ? ORDER BY 1", [start, end])]
    if not days:
        raise InputError(f"no games with results between {start} and {end}")
    run_id = f"bt_{market}_{start:%Y%m%d}_{end:%Y%m%d}_{uuid.uuid4().hex[:8]}"
    stat = MARKET_STAT[market]
    training = build_training_set(storage, days[0] - timedelta(days=train_days), days[-1] + timedelta(days=1))

    # Who the batch would request each day, and their features (one query for the whole range).
    per_day: dict[date, list[PlayerRequest]] = {}
    for day in days:
        per_day[day] = [r for r in _requests(storage, day, market, settings.recent_days)
                        if r.player_id is not None and r.game_id is not None and r.opponent is not None]
    targets = pa.table({
        "player_id": pa.array([r.player_id for d in days for r in per_day[d]], pa.int64()),
        "player_lookup": pa.array([r.player_lookup for d in days for r in per_day[d]], pa.string()),
        "game_date": pa.array([d for d in days for _ in per_day[d]], pa.date32()),
        "team": pa.array([r.team for d in days for r in per_day[d]], pa.string()),
        "opponent": pa.array([r.opponent for d in days for r in per_day[d]], pa.string()),
        "is_home": pa.array([r.is_home for d in days for r in per_day[d]], pa.bool_()),
    })
    feats = build_features(storage, targets)
    offsets = np.cumsum([0] + [len(per_day[d]) for d in days])
    games_total = np.asarray(feats.column("games_total").to_numpy(zero_copy_only=False), dtype=np.float64)

    step_starts = days[::retrain_days]
    tables: list[pa.Table] = []
    models: list[dict[str, Any]] = []
    graded_steps = 0
    for k, step_start in enumerate(step_starts):
        if on_step:
            on_step(k, len(step_starts), step_start)
        bundle = train_market(storage, market, step_start, system_ids=systems_to_fit(list(systems)),
                              train_days=train_days, training=training)
        # Calibrate on this run's own graded rows of earlier steps (out of time) once there are enough.
        for sid in systems:
            cal = graded_calibrator(storage, run_id, sid, before=step_start)
            if cal is not None:
                bundle.calibrators[sid] = cal
        bundle.meta = {**bundle.meta, "calibration_used": {sid: bundle.calibrators[sid].method for sid in systems},
                       "calibration_rows": {sid: bundle.calibrators[sid].n for sid in systems}}
        models.append(bundle.meta)
        step_days = days[k * retrain_days:(k + 1) * retrain_days]
        lines_all = {d: select_lines(storage, d, [market], as_of=_as_of(d)) for d in step_days}
        for day in step_days:
            i = days.index(day)
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            keep = [j for j in range(lo, hi) if games_total[j] >= settings.min_games]
            if not keep:
                continue
            reqs = [per_day[day][j - lo] for j in keep]
            leases = [Lease(run_id, r.player_lookup, 1, "backtest", r.player_name, r.player_id, r.team, r.opponent,
                            r.game_id, r.is_home) for r in reqs]
            day_feats = with_availability(storage, feats.take(pa.array(keep, pa.int64())), lines_all[day], [market])
            tables += prediction_rows(
                bundle=bundle, systems=list(systems), feats=day_feats, leases=leases,
                lines=lines_all[day], market=market, batch_id=run_id, game_date=day, ev_margin=settings.ev_margin,
                now=datetime.now(UTC),
            )
        if tables:  # grade the step now: its results may calibrate the next steps (they are in the past then)
            grade(storage, pa.concat_tables(tables), run_id=run_id, stat=stat)
            graded_steps += 1
            tables = []
    if on_step:
        on_step(len(step_starts), len(step_starts), days[-1])
    if not graded_steps:
        raise InputError(f"nothing to predict between {start} and {end}")
    grades = storage.arrow(
        "SELECT * FROM prediction_grades WHERE run_id = ? ORDER BY game_date, system_id, player_lookup", [run_id])
    return BacktestResult(run_id, market, days[0], days[-1], len(step_starts), len(days), grades, models)


def graded_calibrator(storage: DuckDBStorage, run_id: str, system_id: str, *, before: date) -> Calibrator | None:
    """A calibrator fitted on the run's graded rows dated before ``before`` (None below ``MIN_ROWS``)."""
    rows = storage.fetchall(
        """SELECT p_over_raw, CAST(actual_value > line_value AS DOUBLE) FROM prediction_grades
           WHERE run_id = ? AND system_id = ? AND game_date < ? AND p_over_raw IS NOT NULL
             AND actual_value IS NOT NULL AND line_value IS NOT NULL AND actual_value <> line_value""",
        [run_id, system_id, before],
    )
    if len(rows) < MIN_ROWS:
        return None
    data = np.asarray(rows, dtype=np.float64)
    return Calibrator.fit(data[:, 0], data[:, 1])


def grade(storage: DuckDBStorage, rows: pa.Table, *, run_id: str, stat: str) -> None:
    """Grade prediction rows against the box scores and store them in ``prediction_grades``."""
    expr = "b.pts + b.reb + b.ast" if stat == "pra" else f"b.{stat}"
    with storage.transaction() as tx:
            tx.register("__rows", rows)
            tx.execute(
                f"""INSERT INTO prediction_grades BY NAME
                    WITH g AS (
                        SELECT r.*, CAST({expr} AS DOUBLE) AS actual,
                               CASE WHEN r.recommendation IN ('OVER', 'UNDER') THEN lower(r.recommendation)
                                    WHEN r.p_over IS NOT NULL THEN CASE WHEN r.p_over >= 0.5 THEN 'over' ELSE 'under' END
                               END AS side
                        FROM __rows r LEFT JOIN box_scores b ON b.player_id = r.player_id AND b.game_date = r.game_date
                    ),
                    s AS (
                        SELECT *, CASE WHEN actual IS NULL OR line_value IS NULL OR side IS NULL OR actual = line_value
                                       THEN NULL ELSE (actual > line_value) = (side = 'over') END AS side_won,
                                  CASE WHEN recommendation = 'OVER' THEN over_price
                                       WHEN recommendation = 'UNDER' THEN under_price END AS price
                        FROM g
                    )
                    SELECT prediction_id, '{run_id}' AS run_id, system_id, market, game_date, player_lookup,
                           predicted_value, line_value, actual AS actual_value,
                           CASE WHEN actual IS NULL THEN 'did_not_play' END AS void_reason,
                           recommendation,
                           CASE WHEN actual IS NULL OR price IS NULL THEN NULL
                                WHEN actual = line_value THEN 'push'
                                WHEN side_won THEN 'win' ELSE 'loss' END AS outcome,
                           CASE WHEN actual IS NULL OR price IS NULL THEN NULL
                                WHEN actual = line_value THEN 0.0
                                WHEN side_won THEN CASE WHEN price > 0 THEN price / 100.0 ELSE 100.0 / abs(price) END
                                ELSE -1.0 END AS profit,
                           confidence_score AS p_win, side, p_over_raw, side_won,
                           predicted_std, sportsbook, over_price, under_price, model_version, now() AS graded_at
                    FROM s"""
            )
