"""Evaluation: grading predictions against what happened, the metrics of graded rows, reports and charts.

One package below the backtest and beside ``nbaprops accuracy``: the walk-forward backtest grades the rows it
would have staged through :func:`grade` and the live day grades the consolidated ones through
:func:`grade_date`; both read the same :func:`compute_metrics`, so a backtest and the live accuracy over the
same rows give the same figures. Nothing here imports :mod:`nbaprops.backtest` (it sits on top).
"""

from nbaprops.evaluation.accuracy import accuracy
from nbaprops.evaluation.grading import (
    DID_NOT_PLAY,
    LIVE_RUN,
    GradeResult,
    grade,
    grade_date,
    grade_sql,
    live_grades,
)
from nbaprops.evaluation.metrics import GradeColumns, compute_metrics, cumulative_profit
from nbaprops.evaluation.report import write_report

__all__ = [
    "DID_NOT_PLAY",
    "LIVE_RUN",
    "GradeColumns",
    "GradeResult",
    "accuracy",
    "compute_metrics",
    "cumulative_profit",
    "grade",
    "grade_date",
    "grade_sql",
    "live_grades",
    "write_report",
]
