"""The backtest's HTML report, now :mod:`nbaprops.evaluation.report`."""

# re-export until the issue-19 branches merge
from nbaprops.evaluation.report import (
    GLOSSARY,
    edge_svg,
    profit_svg,
    reliability_svg,
    series_label,
    tier_svg,
    tier_svgs,
    write_report,
)

__all__ = [
    "GLOSSARY",
    "edge_svg",
    "profit_svg",
    "reliability_svg",
    "series_label",
    "tier_svg",
    "tier_svgs",
    "write_report",
]
