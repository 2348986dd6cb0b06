"""How a command opens the database: here, waiting briefly for a reader, or through the process holding it.

A command opened for writing answers other commands' reads while it holds the file (:func:`_storage`); a
read-only command refuses a missing file; the ``gcp`` backend is opened over the file as its inputs
(:func:`_backend`); an operation runs here or in the holder (:func:`_run`); ``predict`` hands its batch to a
``nbaprops serve`` that holds the file (:func:`_run_batch_here_or_in_serve`). Kept together, with the names
they had in ``cli.py``, because the holder protocol (:mod:`nbaprops.service.remote`) is reworked in step with
them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from nbaprops.cli.boundary import replaying
from nbaprops.cli.boundary import state as _state
from nbaprops.cli.render import err
from nbaprops.config import DEFAULT_DB, Settings
from nbaprops.errors import DatabaseHeldError, InputError, StorageBusyError
from nbaprops.service import remote
from nbaprops.storage import open_gcp, open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.seams import Backend


def _doing(what: str) -> None:
    """Tell other terminals what this process, holding the database, is doing (``nbaprops status`` shows it)."""
    if _state["endpoint"] is not None:
        _state["endpoint"].doing(what)


@contextmanager
def _storage(settings: Settings, *, read_only: bool = False, answer: bool = True) -> Iterator[DuckDBStorage]:
    """Open the database; a read-only command refuses a missing file instead of creating one. Opened for
    writing, the process answers other commands' reads for it (``answer=False``: the caller does, on the
    backend it builds over the file)."""
    if read_only and not settings.db_path.exists():
        raise InputError(
            f"no database at {settings.db_path}; run `nbaprops predict --date YYYY-MM-DD` or an "
            f"ingest to create it, or pass the right --db"
        )

    if not read_only:
        _announce_new_store(settings)
    storage = _open_waiting(settings, read_only=read_only)
    try:
        if read_only or not answer:
            yield storage
        else:  # while this process holds the file, it answers the reads of other nbaprops commands
            with remote.answer_reads(storage, settings, holder=_command_path()) as endpoint:
                _state["endpoint"] = endpoint
                try:
                    yield storage
                finally:
                    _state["endpoint"] = None
    finally:
        storage.close()


def _announce_new_store(settings: Settings) -> None:
    """Say that a new database is being created, and refuse one whose folder does not exist (as sqlite3 does).

    A mistyped ``--db typo/dir/nb.duckdb`` used to create the folders, load every shipped box score and train,
    silently. Only the default ``var/nbaprops.duckdb`` gets its folder created.
    """
    path = settings.db_path
    if path.exists():
        return
    if not path.parent.is_dir() and path != DEFAULT_DB:
        raise InputError(
            f"no folder {path.parent} for a new database at {path}; create the folder first, or fix --db "
            "(NBAPROPS_DB_PATH)"
        )
    err.print(f"creating a new database at {path}", highlight=False, soft_wrap=True)


@contextmanager
def _backend(settings: Settings, *, read_only: bool = False) -> Iterator[Backend]:
    """The seams a command runs on: the database file itself (embedded), or — ``backend = "gcp"`` — Firestore,
    BigQuery and Pub/Sub, with the file as the inputs the coordinator plans from (a batch uploads them to the
    warehouse for the workers: :func:`nbaprops.pipeline.run.complete_batch`)."""
    if settings.backend == "duckdb":
        with _storage(settings, read_only=read_only) as storage:
            yield storage
        return

    with _storage(settings, read_only=read_only, answer=False) as storage:
        backend = open_gcp(settings, features=storage)
        try:
            if read_only:
                yield backend
            else:  # other commands' reads (`status` in a second terminal) are the cloud ledger's, not the file's
                with remote.answer_reads(backend, settings, holder=_command_path()) as endpoint:
                    _state["endpoint"] = endpoint
                    try:
                        yield backend
                    finally:
                        _state["endpoint"] = None
        finally:
            backend.close()


def _open_waiting(settings: Settings, *, read_only: bool) -> DuckDBStorage:
    """Open the database, waiting up to ``lock_wait_seconds`` while another process holds its lock briefly.

    A second terminal's read holds the file for a moment; a command started in that moment waits for it
    instead of failing (a `predict` racing a `status` once failed with "database busy"). A database held by a
    running nbaprops command (it recorded its endpoint) fails at once, naming that command.
    """

    deadline = time.monotonic() + settings.lock_wait_seconds
    delay = 0.05
    while True:
        try:
            return open_storage(settings.db_path, read_only=read_only)
        except StorageBusyError as exc:
            held = remote.held_error(settings.db_path, exc)
            if held is not exc:
                raise held from exc
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _command_path() -> str:
    """``nbaprops COMMAND`` of this process, to name the holder of a database to the others. (Typer vendors its
    own click, so click's context is not importable from the core install.)"""
    command = next((w for w in sys.argv[1:] if not w.startswith("-")), None)
    return f"nbaprops {command}" if command else "nbaprops"


def _run(settings: Settings, op: str, *, read_only: bool = True, **args: Any) -> Any:
    """Run one operation of :data:`nbaprops.service.operations.OPERATIONS` here, or in the nbaprops process
    holding the database (it answers for it, with the same function)."""

    return remote.run(settings, op, args, open_local=lambda: _backend(settings, read_only=read_only))


def _run_batch_here_or_in_serve(
    settings: Settings,
    game_date: date,
    *,
    force: bool,
    has_lines: bool,
    run_here: Callable[[Backend], dict[str, Any]],
    on_message: Callable[[str], None],
    on_start: Callable[[str, int], None],
    on_progress: Callable[[dict[str, int]], None],
) -> dict[str, Any]:
    """``predict``: run the batch here (``run_here`` on the opened backend), or — the file held by ``nbaprops
    serve`` — in that process, which runs and alerts it, following it to its end."""
    try:
        with _backend(settings) as backend:
            _doing(f"planning the batch for {game_date}")
            return run_here(backend)
    except DatabaseHeldError as held:
        if held.holder != remote.SERVE or has_lines or replaying():  # serve runs on its own clock
            raise
        return remote.submit_batch(
            settings,
            {
                "game_date": game_date.isoformat(),
                "markets": list(settings.markets),
                "systems": list(settings.systems),
                "force": force,
                "train_days": settings.train_days,
            },
            on_message=on_message,
            on_start=on_start,
            on_progress=on_progress,
        )


def _status_with_holder(settings: Settings, batch_id: str | None) -> tuple[dict[str, Any], str | None]:
    """``status``: the batch's summary, with what the process holding the database is doing (the newest batch
    only) and one line saying so; before any batch, "no batch yet" while the holder is about to start one."""
    try:
        summary = _run(settings, "status", batch_id=batch_id)
    except InputError:  # no batch yet: the process holding the file may be about to start one
        activity = remote.holder_activity(settings.db_path) if batch_id is None else None
        if activity is None or not activity.get("doing"):
            raise
        summary = {"batch_id": None, "state": "no batch yet"}
    else:
        activity = remote.holder_activity(settings.db_path) if batch_id is None else None
    if activity is None or not activity.get("doing"):
        return summary, None
    summary["holder"] = activity
    return summary, (
        f"{activity['holder']} (pid {activity['pid']}) is {activity['doing']}, started at {activity['since']}"
    )
