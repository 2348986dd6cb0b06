"""How a command opens the database: here, waiting briefly for a reader, or through the process holding it.

A command opened for writing answers other commands' reads while it holds the file (:func:`_storage`); a
read-only command refuses a missing file; the ``gcp`` backend is opened over the file as its inputs
(:func:`_backend`); an operation runs here or in the holder (:func:`_run`); ``predict`` hands its batch to a
``nbaprops serve`` that holds the file (:func:`_run_batch_here_or_in_serve`). The connection-file
protocol itself is :mod:`nbaprops.holder`, below the CLI and the service.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any

from nbaprops import holder
from nbaprops.cli.boundary import replaying
from nbaprops.cli.boundary import state as _state
from nbaprops.cli.render import err
from nbaprops.config import DEFAULT_DB, Settings
from nbaprops.errors import DatabaseHeldError, InputError
from nbaprops.storage import open_backend, open_storage
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend


def _doing(what: str) -> None:
    """Tell other terminals what this process, holding the database, is doing (``nbaprops status`` shows it)."""
    if _state["endpoint"] is not None:
        _state["endpoint"].doing(what)


@contextmanager
def _storage(
    settings: Settings, *, read_only: bool = False, answer: bool = True, opened: Inputs | None = None
) -> Iterator[Inputs]:
    """Open the database (``opened``: already opened by :func:`_open_waiting`). Opened for writing, the process
    answers other commands' operations on it (``answer=False``: the caller does, on the backend it builds over
    the file)."""
    storage = opened if opened is not None else _open_waiting(settings, read_only=read_only)
    assert not isinstance(storage, holder.Answered)  # no work to hand over: opened here, or raised
    try:
        if read_only or not answer:
            yield storage
        else:
            with _answering(settings, storage):
                yield storage
    finally:
        storage.close()


@contextmanager
def _answering(settings: Settings, seams: Inputs | Backend) -> Iterator[None]:
    """While this process holds the file, it answers the operations of other nbaprops commands on ``seams``
    (the file itself, or the backend built over it); the endpoint is in the CLI's state meanwhile."""
    with holder.answer_reads(
        settings.db_path, holder=_command_path(), commands=holder.bind(_operations(), seams, settings)
    ) as holding:
        _state["endpoint"] = holding
        try:
            yield
        finally:
            _state["endpoint"] = None


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
def _backend(
    settings: Settings, *, read_only: bool = False, opened: Inputs | None = None
) -> Iterator[Backend]:
    """The seams a command runs on, opened by :func:`nbaprops.storage.open_backend` over the database file: the
    file itself (embedded), or — ``backend = "gcp"`` — Firestore, BigQuery and Pub/Sub, with the file as the
    inputs the coordinator plans from (a batch uploads them to the warehouse for the workers:
    :func:`nbaprops.pipeline.run.complete_batch`). ``opened``: the file, already opened by
    :func:`_open_waiting`. Opened for writing, the process answers other commands' operations on these seams
    (`status` in a second terminal reads the cloud ledger on GCP, not the file)."""
    with _storage(settings, read_only=read_only, answer=False, opened=opened) as storage:
        backend = open_backend(settings, read_only=read_only, inputs=storage)
        try:
            if read_only:
                yield backend
            else:
                with _answering(settings, backend):
                    yield backend
        finally:
            if (
                not backend.capabilities.ledger_in_inputs
            ):  # the embedded backend is the file, closed by _storage
                backend.close()


def _open_waiting(
    settings: Settings, *, read_only: bool, reach: Callable[[holder.Holder], Any] | None = None
) -> Inputs | holder.Answered:
    """Open the database, or hand the work to the nbaprops process holding it: the one retry loop
    (:func:`nbaprops.holder.open_or_reach`), bounded by ``lock_wait_seconds`` in all.

    A read-only command refuses a missing file instead of creating one. A second terminal's read holds the
    file for a moment; a command started in that moment waits for it instead of failing (a `predict` racing a
    `status` once failed with "database busy"). A database held by a running nbaprops command (it recorded its
    endpoint) answers ``reach``, or without it fails at once, naming that command.
    """
    if read_only and not settings.db_path.exists():
        raise InputError(
            f"no database at {settings.db_path}; run `nbaprops predict --date YYYY-MM-DD` or an "
            f"ingest to create it, or pass the right --db"
        )
    if not read_only:
        _announce_new_store(settings)
    return holder.open_or_reach(
        settings.db_path,
        lambda: open_storage(settings.db_path, read_only=read_only),
        wait_seconds=settings.lock_wait_seconds,
        reach=reach,
    )


def _command_path() -> str:
    """``nbaprops COMMAND`` of this process, to name the holder of a database to the others. (Typer vendors its
    own click, so click's context is not importable from the core install.)"""
    command = next((w for w in sys.argv[1:] if not w.startswith("-")), None)
    return f"nbaprops {command}" if command else "nbaprops"


def _operations() -> Mapping[str, Callable[..., Any]]:
    """The shared operations, imported when a command first runs one."""
    from nbaprops.service.operations import (
        OPERATIONS,  # heavy: the prediction systems and the pricer (lightgbm, scikit-learn, scipy)
    )

    return OPERATIONS


def _run(settings: Settings, op: str, *, read_only: bool = True, **args: Any) -> Any:
    """Run one operation of :data:`nbaprops.service.operations.OPERATIONS` here, or in the nbaprops process
    holding the database (it answers for it, with the same function)."""

    opened = _open_waiting(settings, read_only=read_only, reach=lambda h: h.call(op, args))
    if isinstance(opened, holder.Answered):
        return opened.result
    with _backend(settings, read_only=read_only, opened=opened) as backend:
        return _operations()[op](backend, settings, **args)


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
        if held.holder != holder.SERVE or has_lines or replaying():  # serve runs on its own clock
            raise
        return holder.submit_batch(
            settings.db_path,
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
        activity = holder.holder_activity(settings.db_path) if batch_id is None else None
        if activity is None or not activity.get("doing"):
            raise
        summary = {"batch_id": None, "state": "no batch yet"}
    else:
        activity = holder.holder_activity(settings.db_path) if batch_id is None else None
    if activity is None or not activity.get("doing"):
        return summary, None
    summary["holder"] = activity
    return summary, (
        f"{activity['holder']} (pid {activity['pid']}) is {activity['doing']}, started at {activity['since']}"
    )
