"""Charts as inline SVG, now :mod:`nbaprops.evaluation.charts`."""

# re-export until the issue-19 branches merge
from nbaprops.evaluation.charts import COLORS, color, empty, figure, legend_outside, svg

__all__ = ["COLORS", "color", "empty", "figure", "legend_outside", "svg"]
