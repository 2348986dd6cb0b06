"""What the commands print: one JSON object with ``--json``, else Rich tables on stdout and notes on stderr.

Everything printed is the user's text (file names, player names, install hints such as
``pip install 'nbaprops[service]'``), never Rich markup, which would eat every ``[word]`` in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

out = Console(markup=False)
err = Console(stderr=True, markup=False)


def emit(payload: Any, as_json: bool, render: Callable[[], None]) -> None:
    """``payload`` as one JSON object with ``--json``, else what ``render`` prints."""
    if as_json:
        print(json.dumps(payload, default=str, indent=2))
    else:
        render()


def say(message: str) -> None:
    """One line for a person on stderr, never markup."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def cell(value: Any) -> str:
    """A value as one short table cell: counts as ``done 464, skipped 5`` rather than JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v != 0) or "none"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "none"
    if isinstance(value, list) and all(isinstance(v, dict) and v for v in value):
        # Records (an unmatched name and its rows...): the first field, the others in brackets.
        return "; ".join(_record(v) for v in value) or "none"
    return json.dumps(value, default=str)


def _record(record: dict[str, Any]) -> str:
    first, *rest = record.items()
    details = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rest)
    return f"{first[1]} ({details})" if details else str(first[1])


def kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for (
        key,
        value,
    ) in rows.items():  # values quote files and feeds (names, paths): text, never markup
        table.add_row(Text(str(key)), Text(cell(value)))
    return table


def render_summary(title: str, result: dict[str, Any]) -> None:
    """A batch summary (or any result) as a short table: the missing players as a count and a few names."""
    shown = dict(result)
    missing = shown.pop("missing", None)
    finished = shown.pop("finished_batches", None)
    if isinstance(shown.get("drift"), dict) and not any(shown["drift"].values()):
        shown["drift"] = "none"
    if finished is not None:
        # check-stalled reports the summaries of the batches it finished, cleanup-staging their ids
        shown["finished_batches"] = (
            ", ".join(b if isinstance(b, str) else f"{b['batch_id']} ({b['state']})" for b in finished)
            or "none"
        )
    out.print(kv_table(title, shown))
    if missing:
        by_reason: dict[str, int] = {}
        for m in missing:
            by_reason[str(m.get("error_code") or m.get("state"))] = (
                by_reason.get(str(m.get("error_code") or m.get("state")), 0) + 1
            )
        names = ", ".join(str(m.get("player_name") or m.get("player_lookup")) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1]))
        out.print(
            f"{len(missing)} player(s) not predicted ({reasons}): {names}{more}. Full list: --json.",
            soft_wrap=True,
        )


def progress(as_json: bool) -> Progress:
    """A progress bar on stderr, shown only in a terminal and never with ``--json``."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
        transient=True,
    )


def quarantine_lines(quarantined: list[dict[str, Any]]) -> list[str]:
    """One line per quarantined prop line: who, what, where, and why it is not priced."""
    return [
        f"quarantined (never priced or bet): {q['player_name']} {q['market']} {q['line']:g} at {q['bookmaker']} "
        f"on {q['game_date']} — {q['reason']}"
        for q in quarantined
    ]


def no_bets(models: dict[str, Any]) -> None:
    """Why a system priced no bet, per market (a model without calibration, too few graded rows...)."""
    for market, info in models.items():
        for sid, reason in (info.get("no_bets") or {}).items():
            out.print(f"{market} {sid}: no bets — {reason}", highlight=False, soft_wrap=True)


def peak_memory(payload: dict[str, Any]) -> None:
    """The run's peak memory (:func:`nbaprops.memory.peak_memory`'s figures in ``payload``)."""
    if payload.get("peak_rss_mb") is None:
        return
    workers = payload.get("peak_worker_rss_mb")
    largest = f" (largest worker process {workers:.0f} MB)" if workers else ""
    out.print(f"peak memory: {payload['peak_rss_mb']:.0f} MB{largest}", highlight=False)


def f3(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def f2(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def pct(x: float | None, ci: list[float | None] | None = None) -> str:
    """``56% (49-63)``: a proportion or ROI with its interval, in percent."""
    if x is None:
        return "-"
    if not ci or ci[0] is None or ci[1] is None:
        return f"{x:.0%}"
    return f"{x:.0%} ({ci[0] * 100:.0f}..{ci[1] * 100:.0f})"
