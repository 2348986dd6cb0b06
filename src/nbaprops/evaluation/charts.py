"""Charts as inline SVG, drawn by matplotlib: the backtest report and the dashboard share them.

Every chart is a :class:`matplotlib.figure.Figure` (no pyplot, so no global state and no display) saved as SVG
with text kept as text (the page's sans-serif font renders it, and a test can read the title). The SVG is
trimmed to what an HTML page needs inline: no XML prolog, no DOCTYPE, no metadata block, and ``href`` instead of
``xlink:href``, so the document names no address but the SVG namespace and loads nothing. Legends sit outside
the plotting area, so they never cover data; an empty chart says why it is empty.

matplotlib is imported on first use: commands that draw no chart do not pay for it.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
SIZE = (6.2, 3.5)  # inches at 72 dpi in SVG: 446 x 252 points

# matplotlib's text layout caches are not documented as thread-safe; the service draws from worker threads.
_LOCK = threading.RLock()
_RC: Any = {  # typed Any: matplotlib types its keys as a Literal of every rc name
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "legend.frameon": False,
}


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


@contextmanager
def figure(
    title: str, *, xlabel: str = "", ylabel: str = "", size: tuple[float, float] = SIZE
) -> Iterator[tuple[Figure, Axes]]:
    """A figure with one set of axes titled ``title``; the caller draws, :func:`svg` renders.

    The title is a figure-level text drawn first, so it is the SVG's first ``<text>`` element. Call
    :func:`svg` inside the ``with`` block.
    """
    # Heavy library (matplotlib): imported on the first chart, so commands that draw none do not pay for it.
    import matplotlib
    from matplotlib.figure import Figure  # heavy: matplotlib

    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=size, layout="constrained")
        fig.suptitle(title, zorder=-1, fontsize=11, fontweight="bold")
        ax = fig.add_subplot()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_axisbelow(True)
        yield fig, ax


def legend_outside(ax: Axes, **kwargs: Any) -> None:
    """A legend to the right of the axes (never over the data); nothing when no artist is labelled."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def empty(ax: Axes, note: str) -> None:
    """Say on the chart why it has nothing to show."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True, color="#555", transform=ax.transAxes)


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_XLINK_NS = re.compile(r'\s+xmlns:xlink="[^"]*"')


def svg(fig: Figure, *, label: str | None = None) -> str:
    """Render ``fig`` as an inline ``<svg>`` element (see the module docstring).

    Args:
        label: accessible name (``aria-label``) of the chart; its title when omitted.
    """
    buffer = io.StringIO()
    import matplotlib  # heavy library, imported on first use (see figure)

    with _LOCK, matplotlib.rc_context(_RC):
        fig.savefig(
            buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
        )
    text = _PROLOG.sub("", buffer.getvalue(), count=1)
    text = _METADATA.sub("", text)
    text = _XLINK_NS.sub("", text).replace("xlink:href=", "href=")
    name = label if label is not None else fig.get_suptitle() or "chart"
    return text.replace("<svg ", f'<svg role="img" aria-label="{_attr(name)}" ', 1).strip()


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


__all__ = ["COLORS", "color", "empty", "figure", "legend_outside", "svg"]
