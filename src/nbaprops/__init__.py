"""nbaprops: daily NBA player prop predictions, reliably and honestly."""

__version__ = "0.1.0"
