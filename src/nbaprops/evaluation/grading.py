"""Grading: prediction rows against the real box scores, for the backtest and for the live day alike.

One implementation, two callers. :func:`grade` turns any table of prediction rows (the staging contract's
columns) into ``prediction_grades`` rows under a ``run_id``; the walk-forward backtest calls it on the rows it
would have staged, and :func:`grade_date` calls it on the consolidated rows of one game date under run_id
``live``. A player without a box score did not play and his rows are void (never a loss); a row invalidated
because its game was postponed or its player ruled out is void with that reason. A bet wins, loses or pushes
against the line it was made at, and its profit is at the offered price. Metrics over grades come from
:mod:`nbaprops.evaluation.metrics` for both callers too (:func:`~nbaprops.evaluation.accuracy.accuracy`).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nbaprops.clock import Clock, SystemClock
from nbaprops.errors import ContractError, InputError
from nbaprops.markets import MARKET_STAT, validate_market
from nbaprops.schema import VOID_INVALIDATIONS, VoidReason
from nbaprops.storage.inputs import Inputs
from nbaprops.systems import validate_systems

if TYPE_CHECKING:
    from nbaprops.storage.seams import Backend

log = logging.getLogger(__name__)

LIVE_RUN = "live"
DID_NOT_PLAY: VoidReason = "did_not_play"
"""The void reason of a row whose player has no box score for the date."""
# The columns that decide a grade: a regrade replaces a stored grade only when one of them changed.
_GRADE_VALUES = (
    "predicted_value",
    "line_value",
    "actual_value",
    "void_reason",
    "recommendation",
    "outcome",
    "profit",
    "p_win",
    "side",
    "side_won",
)
# One grading of a date at a time in this process (the only one a DuckDB file admits): the grades' key is checked
# by the grading's own statements, which cannot see another transaction's rows.
_GRADING_LOCKS: defaultdict[date, threading.Lock] = defaultdict(threading.Lock)
_GRADING_LOCKS_GUARD = threading.Lock()


def _grading_lock(game_date: date) -> threading.Lock:
    with _GRADING_LOCKS_GUARD:
        return _GRADING_LOCKS[game_date]


def _actual_sql(stat: str | None) -> str:
    """The box-score value a row settles on: one stat, or per row by its market."""

    def one(s: str) -> str:
        return "b.pts + b.reb + b.ast" if s == "pra" else f"b.{s}"

    if stat is not None:
        return one(stat)
    return "CASE r.market " + " ".join(f"WHEN '{m}' THEN {one(s)}" for m, s in MARKET_STAT.items()) + " END"


def grade_sql(source: str, *, stat: str | None = None, voided: bool = False) -> str:
    """``SELECT`` of the grades of the prediction rows in ``source`` (``prediction_grades`` columns); binds
    ``$run_id``, the run the grades belong to.

    Args:
        source: a table or view of prediction rows.
        stat: the stat every row settles on; ``None`` settles each row on its market's stat.
        voided: ``source`` has ``invalidation_reason``; rows invalidated by :data:`VOID_INVALIDATIONS` are void.
    """
    void_when = (
        f"r.invalidation_reason IN ({', '.join(repr(v) for v in VOID_INVALIDATIONS)})" if voided else "false"
    )
    void_reason = "r.invalidation_reason" if voided else "CAST(NULL AS VARCHAR)"
    return f"""
        WITH g AS (
            SELECT r.*, CASE WHEN {void_when} THEN NULL ELSE CAST({_actual_sql(stat)} AS DOUBLE) END AS actual,
                   CASE WHEN {void_when} THEN {void_reason} END AS __void,
                   CASE WHEN r.recommendation IN ('OVER', 'UNDER') THEN lower(r.recommendation)
                        WHEN r.p_over IS NOT NULL THEN CASE WHEN r.p_over >= 0.5 THEN 'over' ELSE 'under' END
                   END AS side
            FROM {source} r LEFT JOIN box_scores b ON b.player_id = r.player_id AND b.game_date = r.game_date
        ),
        s AS (
            SELECT *, CASE WHEN actual IS NULL OR line_value IS NULL OR side IS NULL OR actual = line_value
                           THEN NULL ELSE (actual > line_value) = (side = 'over') END AS side_won,
                      CASE WHEN recommendation = 'OVER' THEN over_price
                           WHEN recommendation = 'UNDER' THEN under_price END AS price
            FROM g
        )
        SELECT prediction_id, CAST($run_id AS VARCHAR) AS run_id, system_id, market, game_date, player_lookup,
               predicted_value, line_value, actual AS actual_value,
               CASE WHEN __void IS NOT NULL THEN __void WHEN actual IS NULL THEN '{DID_NOT_PLAY}' END AS void_reason,
               recommendation,
               CASE WHEN actual IS NULL OR price IS NULL THEN NULL
                    WHEN actual = line_value THEN 'push'
                    WHEN side_won THEN 'win' ELSE 'loss' END AS outcome,
               CASE WHEN actual IS NULL OR price IS NULL THEN NULL
                    WHEN actual = line_value THEN 0.0
                    WHEN side_won THEN CASE WHEN price > 0 THEN price / 100.0 ELSE 100.0 / abs(price) END
                    ELSE -1.0 END AS profit,
               confidence_score AS p_win, side, p_over_raw, side_won,
               predicted_std, sportsbook, over_price, under_price, model_version, calibration_method,
               now() AS graded_at
        FROM s"""


def grade(storage: Inputs, rows: pa.Table, *, run_id: str, stat: str | None = None) -> None:
    """Grade prediction rows against the box scores and store them in ``prediction_grades``.

    Args:
        rows: prediction rows in the staging contract's columns.
        stat: the stat they settle on (``pra`` = pts + reb + ast); ``None``: each row's market's stat.
    """
    with storage.session() as session:
        name = session.temp_name("grade_rows")
        session.register(name, rows)
        session.execute(
            f"INSERT INTO prediction_grades BY NAME {grade_sql(name, stat=stat)}", {"run_id": run_id}
        )


@dataclass(frozen=True)
class GradeResult:
    """What :func:`grade_date` did.

    Attributes:
        game_date: the date graded.
        rows: predictions graded (active or voided by an invalidation).
        added: grades stored for the first time.
        replaced: stored grades replaced because a box score (or the row) changed.
        removed: stored grades of rows no longer graded (superseded since).
        unchanged: stored grades left as they were.
        outcomes: counts of win / loss / push / void / no_bet.
    """

    game_date: date
    rows: int
    added: int
    replaced: int
    removed: int
    unchanged: int
    outcomes: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_date": self.game_date.isoformat(),
            "rows": self.rows,
            "added": self.added,
            "replaced": self.replaced,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "outcomes": self.outcomes,
        }


def grade_date(backend: Backend, game_date: date, *, clock: Clock | None = None) -> GradeResult:
    """Grade every current prediction of ``game_date`` under run_id ``live`` (idempotent).

    The rows graded are the active ones and those voided by an invalidation, read from the backend's warehouse
    (the database file itself, or BigQuery); the box scores and the grades are the inputs file's
    (``backend.features``), where ``accuracy`` reads them. A regrade changes nothing unless a grade's values
    changed (a box score corrected, a row invalidated), and then replaces that grade only.

    Raises:
        InputError: the date is in the future, has no box scores yet, or no prediction.
    """
    today = (clock or SystemClock()).now().date()
    if game_date >= today:
        raise InputError(f"{game_date} is not over yet (today is {today}); grade it the morning after")
    storage = backend.features
    predicted = backend.warehouse.active_predictions(game_date, invalidated=VOID_INVALIDATIONS)
    if not predicted.num_rows:
        raise InputError(f"no prediction for {game_date}; run `nbaprops predict --date {game_date}` first")
    if not storage.scalar("SELECT count(*) FROM box_scores WHERE game_date = ?", [game_date]):
        raise InputError(
            f"no box scores for {game_date} yet; ingest them (`nbaprops ingest boxscores FILE`) and "
            f"grade again"
        )
    values = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in _GRADE_VALUES)
    # Every statement reads the stored grades of this run and date only (a prediction's grades carry its
    # game_date): the zone maps of prediction_grades skip the other dates, so the cost follows the night graded,
    # not the seasons of grades stored (benchmarks/scale.py).
    stored = "(SELECT * FROM prediction_grades WHERE run_id = $run_id AND game_date = $game_date)"
    params = {"run_id": LIVE_RUN, "game_date": game_date}
    with _grading_lock(game_date), storage.transaction() as tx:
        current = tx.temp_name("current")
        fresh = tx.temp_name("fresh")
        tx.register(current, predicted)
        tx.execute(f"CREATE TEMP TABLE {fresh} AS {grade_sql(current, voided=True)}", {"run_id": LIVE_RUN})
        counts = tx.execute(
            f"""SELECT count(*) FILTER (WHERE o.prediction_id IS NULL),
                       count(*) FILTER (WHERE o.prediction_id IS NOT NULL AND ({values})),
                       (SELECT count(*) FROM {stored} g WHERE g.prediction_id NOT IN (SELECT prediction_id FROM {fresh})),
                       count(*)
                FROM {fresh} n LEFT JOIN {stored} o ON o.prediction_id = n.prediction_id""",
            params,
        ).fetchone()
        added, replaced, removed, total = (int(c) for c in counts or (0, 0, 0, 0))
        tx.execute(
            f"""DELETE FROM prediction_grades o WHERE o.run_id = $run_id AND o.game_date = $game_date AND (
                    o.prediction_id NOT IN (SELECT prediction_id FROM {fresh})
                    OR EXISTS (SELECT 1 FROM {fresh} n WHERE n.prediction_id = o.prediction_id AND ({values})))""",
            params,
        )
        tx.execute(
            f"""INSERT INTO prediction_grades BY NAME SELECT * FROM {fresh} n
                WHERE NOT EXISTS (SELECT 1 FROM {stored} o WHERE o.prediction_id = n.prediction_id)""",
            params,
        )
        # The key (run_id, prediction_id) checked on this date's grades, where the rows were written (no table-wide
        # index to maintain; the lock keeps two threads from grading the same night at once).
        doubled = tx.scalar(
            f"SELECT count(*) - count(DISTINCT prediction_id) FROM {stored} g",
            params,
        )
        if doubled:
            raise ContractError(
                f"grading {game_date} would store {doubled} prediction(s) twice; nothing was changed"
            )
        outcomes = dict(
            tx.execute(
                f"""SELECT CASE WHEN void_reason IS NOT NULL THEN 'void' ELSE coalesce(outcome, 'no_bet') END, count(*)
                FROM {fresh} GROUP BY 1 ORDER BY 1"""
            ).fetchall()
        )
    log.info(
        "graded %s: %d rows (%d added, %d replaced, %d removed)", game_date, total, added, replaced, removed
    )
    return GradeResult(game_date, total, added, replaced, removed, total - added - replaced, outcomes)


def live_grades(
    storage: Inputs,
    *,
    since: date | None = None,
    until: date | None = None,
    market: str | None = None,
    system: str | None = None,
    run_id: str = LIVE_RUN,
) -> pa.Table:
    """Stored grades of a run (``live`` by default), filtered, in the backtest's order."""
    if market is not None:
        validate_market(market)
    if system is not None:
        validate_systems([system])
    table: pa.Table = storage.arrow(
        """SELECT * FROM prediction_grades WHERE run_id = ? AND (? IS NULL OR game_date >= ?)
             AND (? IS NULL OR game_date <= ?) AND (? IS NULL OR market = ?) AND (? IS NULL OR system_id = ?)
           ORDER BY game_date, system_id, player_lookup""",
        [run_id, since, since, until, until, market, market, system, system],
    )
    return table


__all__ = [
    "DID_NOT_PLAY",
    "LIVE_RUN",
    "VOID_INVALIDATIONS",
    "GradeResult",
    "grade",
    "grade_date",
    "grade_sql",
    "live_grades",
]
