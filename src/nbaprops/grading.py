"""Grading and live accuracy, now in :mod:`nbaprops.evaluation`."""

# re-export until the issue-19 branches merge
from nbaprops.evaluation.accuracy import accuracy
from nbaprops.evaluation.grading import (
    LIVE_RUN,
    VOID_INVALIDATIONS,
    GradeResult,
    grade,
    grade_date,
    grade_sql,
    live_grades,
)

__all__ = [
    "LIVE_RUN",
    "VOID_INVALIDATIONS",
    "GradeResult",
    "accuracy",
    "grade",
    "grade_date",
    "grade_sql",
    "live_grades",
]
