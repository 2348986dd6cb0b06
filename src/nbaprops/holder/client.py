"""The client side: open the database here, or hand the work to the nbaprops process holding it.

:func:`open_or_reach` is the one retry loop. It tries to open the file; on DuckDB's lock error it reads the
record: a live nbaprops holder whose pid is the lock's either answers the work (``reach``) or, when the caller
has no work to hand over, is named in a :class:`DatabaseHeldError` at once. Anything else — a holder that is
starting (locked, no record yet), closing (its record is there, it answers :class:`HolderGoneError`), a
foreign process or a second terminal's brief read — is waited for, up to one total bound, with a short
backoff; then the last reason is raised.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nbaprops.errors import DatabaseHeldError, NbapropsError, StorageBusyError, from_wire
from nbaprops.holder.protocol import GONE, ROUTE, SERVE, TOKEN_HEADER, HolderGoneError
from nbaprops.holder.record import endpoint_file, read_record, unsafe_folder

_LOCK_PID = re.compile(r"\(PID (\d+)\)")
S = TypeVar("S")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """The nbaprops process holding a database, as its record says (the token stays out of reprs)."""

    pid: int
    url: str
    holder: str
    token: str
    commands: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Holder(pid={self.pid}, url={self.url!r}, holder={self.holder!r})"

    @classmethod
    def read(cls, db_path: Path) -> Holder | None:
        """The recorded holder of ``db_path``, if its record is trusted (see :mod:`.record`) and its process is
        alive."""
        try:
            record = read_record(endpoint_file(db_path))
            commands = record.get("commands") or []
            holder = cls(
                int(record["pid"]),
                str(record["url"]),
                str(record["holder"]),
                str(record["token"]),
                tuple(str(c) for c in commands) if isinstance(commands, list) else (),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return holder if _pid_alive(holder.pid) else None

    def call(self, op: str, args: Mapping[str, Any] | None = None, *, timeout: float = 120.0) -> Any:
        """Run ``op`` in the holder and return its result; its errors are raised here as they were there.

        Raises:
            HolderGoneError: the holder is closing or no longer listening (open the file again).
            NbapropsError: the operation's own error, rebuilt with its class and attributes
                (:func:`nbaprops.errors.from_wire`).
        """
        request = urllib.request.Request(
            f"{self.url}{ROUTE}{op}",
            data=json.dumps(dict(args or {}), default=str).encode(),
            method="POST",
            headers={"Content-Type": "application/json", TOKEN_HEADER: self.token},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read())
            except ValueError:
                payload = None
            if not isinstance(payload, dict) or payload.get("kind") == GONE:
                raise HolderGoneError(f"holder pid {self.pid} is closing the database") from None
            raise from_wire(payload) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError) as exc:
            raise HolderGoneError(f"holder pid {self.pid} is not answering ({type(exc).__name__})") from None


def _lock_pid(exc: BaseException) -> int | None:
    match = _LOCK_PID.search(str(exc))
    return int(match.group(1)) if match else None


def _held(db_path: Path, holder: Holder) -> DatabaseHeldError:
    can = ", ".join(holder.commands) or "reads"
    serve_note = "; `nbaprops predict` submits its batch to it" if holder.holder == SERVE else ""
    return DatabaseHeldError(
        f"the database {db_path} is held by `{holder.holder}` (pid {holder.pid}); {can} reach it from here"
        f"{serve_note}. Wait for it to finish, or stop it, to run this command on this database (or use another "
        f"--db)",
        pid=holder.pid,
        holder=holder.holder,
    )


def held_error(db_path: Path, exc: StorageBusyError) -> StorageBusyError:
    """The error to show when opening ``db_path`` failed on its lock.

    A :class:`DatabaseHeldError` naming the holder when the pid in DuckDB's lock error is an nbaprops process
    that recorded its endpoint; the reason no holder answers when its folder is not private; otherwise ``exc``
    itself (a foreign holder: DuckDB's message names its pid).
    """
    return _diagnose(db_path, exc)[0]


def _diagnose(db_path: Path, exc: StorageBusyError) -> tuple[StorageBusyError, Holder | None]:
    """:func:`held_error`, and the holder when it is a recorded nbaprops process holding the lock."""
    pid = _lock_pid(exc)
    holder = Holder.read(db_path)
    if pid is not None and holder is not None and holder.pid == pid:
        return _held(db_path, holder), holder
    if pid is not None and holder is None and (why := unsafe_folder(db_path.parent)) is not None:
        return StorageBusyError(
            f"{exc}; an nbaprops holder answers no reads for this database because {why}"
        ), None
    return exc, None


@dataclass(frozen=True)
class Answered:
    """The holder did the work :func:`open_or_reach` handed to it; ``result`` is what it returned."""

    result: Any


def open_or_reach(
    db_path: Path,
    open_here: Callable[[], S],
    *,
    wait_seconds: float,
    reach: Callable[[Holder], Any] | None = None,
) -> S | Answered:
    """Open the database here or, held by a live nbaprops process, hand it the work (see the module docstring).

    Args:
        open_here: one attempt at opening the file; raises :class:`StorageBusyError` on its lock.
        wait_seconds: the total bound: no attempt starts after it.
        reach: the work to hand to the holder (``lambda holder: holder.call(op, args)``); without it a file
            held by an nbaprops process fails at once.

    Returns:
        What ``open_here`` opened, or :class:`Answered` with what the holder returned.

    Raises:
        DatabaseHeldError: held by a recorded nbaprops process (at once without ``reach``; with it, when the
            holder kept closing past the bound).
        StorageBusyError: still locked by anything else after ``wait_seconds``.
        NbapropsError: the work's own error, as the holder raised it.
    """
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return open_here()
        except StorageBusyError as exc:
            failure, holder = _diagnose(db_path, exc)
            if holder is not None:
                if reach is None:
                    raise failure from exc
                try:
                    return Answered(reach(holder))
                except HolderGoneError:  # closing: the file is free in a moment
                    pass
            if time.monotonic() + delay > deadline:
                raise failure from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def holder_activity(db_path: Path) -> dict[str, Any] | None:
    """What the nbaprops process holding ``db_path`` says it is doing (see :meth:`Holding.doing`); None when
    no live holder answers."""
    holder = Holder.read(db_path)
    if holder is None:
        return None
    try:
        activity = holder.call("activity", timeout=5.0)
    except NbapropsError:
        return None
    return activity if isinstance(activity, dict) else None


def submit_batch(
    db_path: Path,
    args: Mapping[str, Any],
    *,
    on_message: Callable[[str], None],
    on_start: Callable[[str, int], None],
    on_progress: Callable[[dict[str, int]], None],
    poll_seconds: float = 0.25,
) -> dict[str, Any]:
    """Run a batch in the ``nbaprops serve`` holding ``db_path`` and follow it to its end.

    Returns what :func:`nbaprops.pipeline.run.run_batch` would have returned here (``BatchRun.as_dict``).

    Raises:
        StorageBusyError: the server went away, or stopped before the batch ended (rerun to resume it).
        NbapropsError: the batch's own error (no games on the date, ...), as the server raised it.
    """
    holder = Holder.read(db_path)
    if holder is None or holder.holder != SERVE:
        raise StorageBusyError(f"the server holding {db_path} went away; run the command again")
    started = holder.call("submit", args)
    batch_id = str(started["batch_id"])
    on_start(batch_id, int(started["total"]))
    seen = 0
    while True:
        state = holder.call("follow", {"batch_id": batch_id, "messages_from": seen})
        for message in state["messages"]:
            on_message(message)
        seen += len(state["messages"])
        on_progress(state["requests"])
        if state["phase"] == "finished":
            return dict(state["result"])
        if state["phase"] == "failed":
            raise from_wire(state["error"])
        if state["phase"] == "stopped":
            raise StorageBusyError(
                f"the server stopped before batch {batch_id} ended; run the same command again to resume it"
            )
        time.sleep(poll_seconds)


__all__ = ["Answered", "Holder", "held_error", "holder_activity", "open_or_reach", "submit_batch"]
