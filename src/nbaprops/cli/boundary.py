"""The CLI's one error boundary and what every command shares while it runs: the clock, dates, settings.

Errors cross :func:`errors`: a known error prints ``Error: ...`` on stderr (with ``--json``:
``{"error": ..., "kind": ...}`` on stdout) and exits 1; an unexpected one prints ``Error: internal error: ...``
and exits 2 (the traceback only with ``--debug``); Ctrl-C stops the workers after their current chunk and
exits 130, naming the batch to resume.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from nbaprops.alerts import is_interrupt
from nbaprops.cli.render import err
from nbaprops.clock import Clock, ReplayClock, SystemClock, resolve_day
from nbaprops.config import Settings, load_settings
from nbaprops.errors import InputError, NbapropsError
from nbaprops.storage import capabilities, open_storage

# What the error boundary needs to know beyond the exception: --debug, and the batch a Ctrl-C interrupts;
# `endpoint` is the reads endpoint of a process holding the database (:mod:`nbaprops.cli.opening`).
state: dict[str, Any] = {"debug": False, "batch_id": None, "endpoint": None}


def clock() -> Clock:
    """The command's clock: the wall clock, or a replay from ``--as-of`` / ``NBAPROPS_AS_OF`` (one per run)."""
    if "clock" not in state:
        start = load_settings({"as_of": state.get("as_of")}).as_of
        state["clock"] = ReplayClock(start) if start is not None else SystemClock()
    current: Clock = state["clock"]
    return current


def replaying() -> bool:
    return isinstance(clock(), ReplayClock)


def parse_date(value: str, option: str = "--date") -> date:
    """``YYYY-MM-DD``, or TODAY / TOMORROW (US Eastern days; of the replayed instant under ``--as-of``)."""
    return resolve_day(value, clock(), option)


def split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def existing_files(paths: Sequence[Path]) -> list[Path]:
    """``paths``, once each is known to be a file (``--lines``).

    Raises:
        InputError: naming every path that is not a file.
    """
    missing = [str(f) for f in paths if not f.is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)}")
    return list(paths)


def settings(db: Path | None, **overrides: Any) -> Settings:
    current = load_settings({"db_path": db, **overrides})
    state["settings"] = current
    return current


def _finished(batch_id: str) -> str | None:
    """The state of ``batch_id`` if it already finished (``complete``/``partial``): a Ctrl-C that lands after
    consolidation committed, before the summary printed, leaves nothing to resume. Embedded backend only (the
    ledger is in the file, closed by now and read again here); None when unknown."""
    current: Settings | None = state.get("settings")
    if current is None or not current.db_path.exists():
        return None
    try:
        if not capabilities(current.backend).ledger_in_inputs:
            return None
        with open_storage(current.db_path, read_only=True) as storage:
            found = storage.scalar("SELECT state FROM prediction_batches WHERE batch_id = ?", [batch_id])
    except Exception:  # the file still held, or unreadable: say what a rerun does in general
        return None
    return str(found) if found in ("complete", "partial") else None


def report_path(report: Path, current: Settings) -> Path:
    """Where ``--report`` writes: a bare file name (``report.html``) into the reports folder, which the
    dashboard's ``/reports`` lists (README's ``--report report.html`` never appeared there); a path as given."""
    if report.is_absolute() or report.parent != Path("."):
        return report
    current.reports_path.mkdir(parents=True, exist_ok=True)
    return current.reports_path / report.name


def fail(message: str, kind: str, as_json: bool, code: int) -> typer.Exit:
    if as_json:
        print(json.dumps({"error": message, "kind": kind}))
    else:
        # The message quotes user text (a file's header, a value): never markup.
        err.print(
            Text.assemble(("Error:", "red"), " ", message),
            highlight=False,
            soft_wrap=True,
        )
    return typer.Exit(code)


@contextmanager
def errors(as_json: bool = False) -> Iterator[None]:
    """The one error boundary of the CLI (see the module docstring)."""
    try:
        try:
            yield
        except Exception as exc:
            if is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise
    except NbapropsError as exc:
        raise fail(str(exc), type(exc).__name__, as_json, 1) from None
    except KeyboardInterrupt:
        batch = state["batch_id"]
        finished = _finished(batch) if batch else None
        if finished:
            message = f"interrupted after batch {batch} finished ({finished}); its predictions are stored"
        elif batch:
            message = f"interrupted; run the same command to resume batch {batch}"
        else:
            message = "interrupted; nothing was changed that a rerun cannot redo"
        # Plain writes: the interrupt may have landed inside a Rich print, whose half-flushed buffer would be
        # written again by the next Rich print.
        if as_json:
            sys.stdout.write(json.dumps({"error": message, "kind": "Interrupted", "batch_id": batch}) + "\n")
        else:
            sys.stderr.write(message + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        # The database is closed by now; skip interpreter teardown, where DuckDB's bindings report every
        # object a killed frame still held (dozens of "nanobind: leaked" lines that say nothing to a user).
        os._exit(130)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        # The reader went away (`nbaprops predictions --csv | head`): nothing is wrong and nothing is left to
        # say. Point stdout at /dev/null so the interpreter's final flush does not raise again, and end as a
        # tool killed by SIGPIPE would (128 + 13).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(141) from None
    except Exception as exc:
        if state["debug"]:
            raise
        raise fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            "InternalError",
            as_json,
            2,
        ) from None
