"""The peak memory of a run, as ``backtest`` and ``daily`` report it.

Both figures are the kernel's high-water marks of resident memory (``getrusage``'s ``ru_maxrss``), so they cost
nothing to keep and miss no short spike between samples: the process's own peak since it started, and the
largest peak of any child process it has waited for (the backtest's model-fitting workers, once they end).
In ``nbaprops serve`` the process is the server, so its peak covers everything the server ran.
"""

from __future__ import annotations

import resource
import sys

# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_UNIT = 1 if sys.platform == "darwin" else 1024


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss * _UNIT / 1_048_576, 1)


def peak_memory() -> dict[str, float | None]:
    """The peaks so far, in MB: ``peak_rss_mb`` of this process, ``peak_worker_rss_mb`` of its largest ended
    child process (``None`` when it has none: in-process worker threads are in the process's own peak)."""
    workers = _peak_mb(resource.RUSAGE_CHILDREN)
    return {"peak_rss_mb": _peak_mb(resource.RUSAGE_SELF), "peak_worker_rss_mb": workers or None}


__all__ = ["peak_memory"]
