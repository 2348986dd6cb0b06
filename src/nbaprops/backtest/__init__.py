"""Walk-forward backtest: train on the past only, predict through the daily batch's code, grade, report."""

from nbaprops.backtest.run import BacktestResult, calibration_summary, run_backtest, season_range
from nbaprops.backtest.split import DEFAULT_RETRAIN_DAYS, Fold, WalkForwardSplit

__all__ = [
    "DEFAULT_RETRAIN_DAYS",
    "BacktestResult",
    "Fold",
    "WalkForwardSplit",
    "calibration_summary",
    "run_backtest",
    "season_range",
]
