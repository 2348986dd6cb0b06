"""Walk-forward backtest: train on the past only, predict through the daily batch's code, grade, report."""

from nbaprops.backtest.metrics import compute_metrics, cumulative_profit
from nbaprops.backtest.report import write_report
from nbaprops.backtest.run import BacktestResult, calibration_summary, run_backtest, season_range

__all__ = [
    "BacktestResult",
    "calibration_summary",
    "compute_metrics",
    "cumulative_profit",
    "run_backtest",
    "season_range",
    "write_report",
]
