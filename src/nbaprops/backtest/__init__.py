"""Walk-forward backtest: train on the past only, predict through the daily batch's code, grade, report."""

from nbaprops.backtest.run import BacktestResult, calibration_summary, run_backtest, season_range
from nbaprops.backtest.split import Fold, WalkForwardSplit

# re-export until the issue-19 branches merge (they live in nbaprops.evaluation now)
from nbaprops.evaluation.metrics import compute_metrics, cumulative_profit
from nbaprops.evaluation.report import write_report

__all__ = [
    "BacktestResult",
    "Fold",
    "WalkForwardSplit",
    "calibration_summary",
    "compute_metrics",
    "cumulative_profit",
    "run_backtest",
    "season_range",
    "write_report",
]
