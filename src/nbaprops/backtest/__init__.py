"""backtest package."""
