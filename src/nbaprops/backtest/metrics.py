"""Metrics of a graded run, now :mod:`nbaprops.evaluation.metrics`."""

# re-export until the issue-19 branches merge
from nbaprops.evaluation.metrics import (
    EDGE_BUCKETS,
    GradeColumns,
    bet_stats,
    compute_metrics,
    cumulative_profit,
    ece,
    error_figures,
    reliability,
    row_figures,
    wilson,
)

__all__ = [
    "EDGE_BUCKETS",
    "GradeColumns",
    "bet_stats",
    "compute_metrics",
    "cumulative_profit",
    "ece",
    "error_figures",
    "reliability",
    "row_figures",
    "wilson",
]
