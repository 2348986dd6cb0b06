"""Reads while work runs: the process that holds a database answers reads for it.

DuckDB lets one process at a time hold a file for writing, and a second process cannot even read it. So the
holder — ``nbaprops serve``, or any CLI command that opened the file for writing, such as a long ``predict`` —
listens on a loopback port and writes where it listens, with its pid and a random token, next to the
database (``<db>.endpoint.json``, readable by its owner only), like Jupyter's connection file or Dask's
scheduler file. The token runs writes too, so the record is created through no name another user could have
chosen, only in a folder no other user can write (:func:`unsafe_folder`), and trusted only as this user's
private file; the server drops idle connections (timeouts, a connection cap) and runs operations on a pool.
A CLI command that finds the file locked by that pid sends its operation there instead of
opening the file; the holder runs the very same function (:data:`OPERATIONS`) on its own connection and sends
the result back, so the command prints exactly what it would have printed itself. A holder that is not
nbaprops (no record for the pid in DuckDB's lock error) still gives the lock error, with its pid.

Only the standard library is used here: the CLI needs no extra package to reach a holder.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nbaprops import errors
from nbaprops.config import Settings
from nbaprops.errors import DatabaseHeldError, InputError, NbapropsError, StorageBusyError
from nbaprops.service.operations import OPERATIONS, Operation
from nbaprops.storage.seams import Backend

log = logging.getLogger(__name__)

ENDPOINT_SUFFIX = ".endpoint.json"
SERVE = "nbaprops serve"  # the holder name of the service, which also runs submitted batches
TOKEN_HEADER = "X-Nbaprops-Token"
_LOCK_PID = re.compile(r"\(PID (\d+)\)")
# A holder that is starting or stopping holds the lock for a moment without a record: retry this long.
HANDOVER_SECONDS = 1.5
_POOL_THREADS = 4  # bounded: every thread that touches the database keeps a DuckDB cursor
# Connections are read on their own threads, operations run on the pool: an idle or slow client holds a
# connection slot, never a database thread. Past the cap, the oldest connection still reading its request is
# dropped for the new one; a read that stalls this long is dropped too.
_MAX_CONNECTIONS = 32
_READ_TIMEOUT_SECONDS = 5.0
_MAX_BODY_BYTES = 1 << 20
_MAX_RECORD_BYTES = 64 << 10


# -- the record next to the database -------------------------------------------------------------------------
def endpoint_file(db_path: Path) -> Path:
    """Where the holder of ``db_path`` records its endpoint."""
    return db_path.with_name(db_path.name + ENDPOINT_SUFFIX)


def unsafe_folder(folder: Path) -> str | None:
    """Why another user could plant or swap the endpoint record in ``folder``; None when only its owner can.

    The record holds the token that runs every operation of the holder, so it is written only where no other
    user can create, replace or link names: a folder owned by this user (or root) and writable by no other user
    (nor by a group, unless it is this user's private group). A sticky folder such as ``/tmp`` does not
    qualify: others can still create the name first.
    """
    try:
        info = os.stat(folder)
    except OSError as exc:
        return f"its folder cannot be inspected ({exc.strerror})"
    if info.st_uid not in (os.geteuid(), 0):
        return "its folder belongs to another user"
    if info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and not _private_group(info.st_gid)):
        return (
            "its folder is writable by other users (chmod go-w it, or keep the database in a private folder)"
        )
    return None


def _private_group(gid: int) -> bool:
    """Whether group ``gid`` is this user's own (a user private group, as umask 002 systems make them: no other
    member, no other user's primary group), so that its write permission lets nobody else in."""
    import grp
    import pwd

    me = os.geteuid()
    try:
        name = pwd.getpwuid(me).pw_name
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return False
    others = any(user.pw_gid == gid and user.pw_uid != me for user in pwd.getpwall())
    return gid == os.getegid() and members <= {name} and not others


def _read_record(path: Path) -> dict[str, Any]:
    """The record at ``path`` if it is a regular file of this user's that nobody else can read or write.

    Raises:
        OSError: missing, a symlink, or not this user's own private file.
        ValueError: not a JSON object.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path.name} is not this user's private file")
        record = json.loads(handle.read(_MAX_RECORD_BYTES))
    if not isinstance(record, dict):
        raise ValueError("not a record")
    return record


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

    def __repr__(self) -> str:
        return f"Holder(pid={self.pid}, url={self.url!r}, holder={self.holder!r})"

    @classmethod
    def read(cls, db_path: Path) -> Holder | None:
        """The recorded holder of ``db_path``, if its record exists and its process is alive."""
        try:
            record = _read_record(endpoint_file(db_path))
            holder = cls(int(record["pid"]), str(record["url"]), str(record["holder"]), str(record["token"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return holder if _pid_alive(holder.pid) else None

    def call(self, op: str, args: Mapping[str, Any] | None = None, *, timeout: float = 120.0) -> Any:
        """Run ``op`` in the holder and return its result; its errors are raised here as they were there.

        Raises:
            HolderGoneError: the holder is stopping or no longer listening (open the file again).
            NbapropsError: the operation's own error, of the same class and message.
        """
        body = json.dumps(dict(args or {}), default=str).encode()
        request = urllib.request.Request(
            f"{self.url}/v1/{op}",
            data=body,
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
                payload = {"error": f"holder answered HTTP {exc.code}", "kind": "HolderGoneError"}
            if payload.get("kind") == "HolderGoneError":
                raise HolderGoneError(payload["error"]) from None
            raise rebuild_error(str(payload.get("kind")), str(payload.get("error"))) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise HolderGoneError(f"holder pid {self.pid} is not answering: {exc}") from None


def holder_activity(db_path: Path) -> dict[str, Any] | None:
    """What the nbaprops process holding ``db_path`` says it is doing (see :meth:`Endpoint.doing`); None when
    no live holder answers."""
    holder = Holder.read(db_path)
    if holder is None:
        return None
    try:
        activity = holder.call("activity", timeout=5.0)
    except NbapropsError:
        return None
    return activity if isinstance(activity, dict) else None


class HolderGoneError(StorageBusyError):
    """The recorded holder stopped answering (it is closing, or died): open the file again."""


def rebuild_error(kind: str, message: str) -> NbapropsError:
    """An error of class ``kind`` (from :mod:`nbaprops.errors`) with exactly ``message``: the holder's error as
    this process would have raised it, whatever arguments its class's constructor takes."""
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, NbapropsError)):
        cls = NbapropsError
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc


def _lock_pid(exc: BaseException) -> int | None:
    match = _LOCK_PID.search(str(exc))
    return int(match.group(1)) if match else None


def held_error(db_path: Path, exc: StorageBusyError) -> StorageBusyError:
    """The error to show when opening ``db_path`` failed on its lock.

    A :class:`DatabaseHeldError` naming the holder when the pid in DuckDB's lock error is an nbaprops process
    that recorded its endpoint; otherwise ``exc`` itself (a foreign holder: DuckDB's message names its pid).
    """
    pid = _lock_pid(exc)
    holder = Holder.read(db_path)
    if pid is not None and holder is None and (why := unsafe_folder(db_path.parent)) is not None:
        return StorageBusyError(f"{exc}; an nbaprops holder answers no reads for this database because {why}")
    if pid is None or holder is None or holder.pid != pid:
        return exc
    can = ", ".join(OPERATIONS)
    serve_note = "; `nbaprops predict` submits its batch to it" if holder.holder == SERVE else ""
    return DatabaseHeldError(
        f"the database {db_path} is held by `{holder.holder}` (pid {pid}); {can} reach it from here{serve_note}. "
        f"Wait for it to finish, or stop it, to run this command on this database (or use another --db)",
        pid=pid,
        holder=holder.holder,
    )


def run(
    settings: Settings,
    op: str,
    args: Mapping[str, Any],
    *,
    open_local: Callable[[], AbstractContextManager[Backend]],
) -> Any:
    """Run operation ``op`` on the database here, or in the nbaprops process holding it.

    Args:
        open_local: opens the database here (raising :class:`DatabaseHeldError` when an nbaprops process
            holds it, see :func:`held_error`).

    The holder may be starting or stopping: for :data:`HANDOVER_SECONDS` a lock without an answering holder
    is retried before the lock error is given.
    """
    operation = OPERATIONS[op]
    deadline = time.monotonic() + HANDOVER_SECONDS
    while True:
        try:
            with open_local() as storage:
                return operation(storage, settings, **args)
        except DatabaseHeldError as held:
            holder = Holder.read(settings.db_path)
            if holder is not None and holder.pid == held.pid:
                try:
                    return holder.call(op, args)
                except HolderGoneError:
                    pass
            if time.monotonic() >= deadline:
                raise
        except StorageBusyError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


def submit_batch(
    settings: Settings,
    args: Mapping[str, Any],
    *,
    on_message: Callable[[str], None],
    on_start: Callable[[str, int], None],
    on_progress: Callable[[dict[str, int]], None],
    poll_seconds: float = 0.25,
) -> dict[str, Any]:
    """Run a batch in the ``nbaprops serve`` holding the database and follow it to its end.

    Returns what :func:`nbaprops.pipeline.daily.run_batch` would have returned here (``BatchRun.as_dict``).

    Raises:
        StorageBusyError: the server went away, or stopped before the batch ended (rerun to resume it).
        NbapropsError: the batch's own error (no games on the date, ...), as the server raised it.
    """
    holder = Holder.read(settings.db_path)
    if holder is None or holder.holder != SERVE:
        raise StorageBusyError(f"the server holding {settings.db_path} went away; run the command again")
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
            raise rebuild_error(state["error"]["kind"], state["error"]["error"])
        if state["phase"] == "stopped":
            raise StorageBusyError(
                f"the server stopped before batch {batch_id} ended; run the same command again to resume it"
            )
        time.sleep(poll_seconds)


# -- the holder's side -----------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    """A loopback HTTP server: a thread per connection (at most :data:`_MAX_CONNECTIONS`), operations on a
    small fixed pool of threads."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.pool = ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="nbaprops-reads")
        self._lock = threading.Lock()
        self._open = 0
        self._reading: dict[socket.socket, float] = {}  # connections still reading their request: since when
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if self._open >= _MAX_CONNECTIONS:
                # Full: drop the connection that has been reading its request longest. An idle client thus
                # never locks out one that sends its request at once; if every slot runs an operation, refuse.
                oldest = min(self._reading, key=self._reading.__getitem__, default=None)
                if oldest is None:
                    self.shutdown_request(request)
                    return
                del self._reading[oldest]
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)
            self._open += 1
            self._reading[request] = time.monotonic()
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open -= 1
                self._reading.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback on stderr, which is the CLI's: a client that went away (or was
        # dropped at the cap) is no news
        log.debug("reads endpoint: connection from %s ended with an error", client_address, exc_info=True)

    def request_read(self, request: Any) -> None:
        """The request on ``request`` is read: it runs its operation and can no longer be dropped."""
        with self._lock:
            self._reading.pop(request, None)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = _READ_TIMEOUT_SECONDS  # on every read and write of the socket: a silent client is let go

    def log_message(self, format: str, *args: Any) -> None:  # never on stderr: it is the CLI's
        log.debug("reads endpoint: " + format, *args)

    def _send(self, status: int, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        endpoint = self.server.endpoint
        given = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), endpoint.token.encode()):
            self._send(403, {"error": "wrong or missing token", "kind": "Forbidden"})
            return
        op = self.path.removeprefix("/v1/")
        operation = endpoint.operations.get(op)
        if operation is None:
            self._send(404, {"error": f"no operation {op!r}", "kind": "NotFound"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= _MAX_BODY_BYTES:
                raise InputError("arguments too large")
            args = json.loads(self.rfile.read(length) or b"{}")
            self.server.request_read(self.request)
            if not isinstance(args, dict):
                raise InputError("arguments must be a JSON object")
            if endpoint.closing.is_set():
                raise HolderGoneError("the holder is closing the database")
            result = self.server.pool.submit(operation, endpoint.storage, endpoint.settings, **args).result()
        except HolderGoneError as exc:
            self._send(503, {"error": str(exc), "kind": "HolderGoneError"})
        except NbapropsError as exc:
            self._send(400, {"error": str(exc), "kind": type(exc).__name__})
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": f"bad request: {exc}", "kind": "InputError"})
        except Exception as exc:
            log.exception("reads endpoint: %s failed", op)
            self._send(
                500, {"error": f"internal error: {type(exc).__name__}: {exc}", "kind": "InternalError"}
            )
        else:
            self._send(200, {"result": result})


class Endpoint:
    """The loopback endpoint through which the holder of a database answers for it.

    Args:
        storage: the seams the holder runs on: the open database, or (backend gcp) the cloud backend whose
            inputs it is.
        settings: its settings (``db_path`` says where the record goes).
        holder: what this process runs, as shown to others (``nbaprops predict``).
        operations: extra operations (the service adds ``submit`` and ``follow``).
    """

    def __init__(
        self,
        storage: Backend,
        settings: Settings,
        *,
        holder: str,
        operations: Mapping[str, Operation] | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.holder = holder
        self.operations: dict[str, Operation] = {**OPERATIONS, **(operations or {})}
        self.token = secrets.token_urlsafe(32)
        self.closing = threading.Event()
        self.refused: str | None = None  # why no record was written (the database's folder is not private)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._doing: tuple[str, float] | None = None
        self.operations.setdefault("activity", self._activity)

    def doing(self, what: str | None) -> None:
        """Say what this holder is doing now (``training models for 2025-02-12``); ``nbaprops status`` in
        another terminal shows it, with when it started and this pid, while no batch says more."""
        self._doing = None if what is None else (what, time.time())

    def _activity(self, storage: Backend, settings: Settings) -> dict[str, Any]:
        doing = self._doing
        return {
            "holder": self.holder,
            "pid": os.getpid(),
            "doing": doing[0] if doing else None,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(doing[1])) if doing else None,
        }

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Endpoint:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="nbaprops-reads-endpoint",
            daemon=True,
        )
        self._thread.start()
        try:
            self._write_record()
        except OSError as exc:  # the holder runs on; other commands get the lock error, with this reason
            self.refused = f"the endpoint record was not written: {exc.strerror or exc}"
            log.warning("answering no reads for %s: %s", self.settings.db_path, self.refused)
            self._stop_server()
            return self
        log.debug("answering reads for %s at %s", self.settings.db_path, self.url)
        return self

    def _write_record(self) -> None:
        """Write the record where clients look for it, atomically and for this user alone.

        A fresh random name is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 (no name planted
        in advance, no symlink, is ever opened), written, then renamed over the record (a rename replaces a
        symlink, never the file it points to). Only in a folder no other user can write (:func:`unsafe_folder`).

        Raises:
            PermissionError: the folder is writable by others (the reason is the message).
        """
        path = endpoint_file(self.settings.db_path)
        why = unsafe_folder(path.parent)
        if why is not None:
            raise PermissionError(why)
        record = {
            "pid": os.getpid(),
            "url": self.url,
            "holder": self.holder,
            "token": self.token,
            "db": str(self.settings.db_path.resolve()),
            "started_at": time.time(),
        }
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(record, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def close(self) -> None:
        """Stop answering (callers see the holder closing and open the file themselves), remove the record."""
        self.closing.set()
        path = endpoint_file(self.settings.db_path)
        with contextlib.suppress(OSError, ValueError, KeyError):
            if _read_record(path)["token"] == self.token:
                path.unlink()
        self._stop_server()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.pool.shutdown(wait=True)
            self._server = None


@contextlib.contextmanager
def answer_reads(
    storage: Backend,
    settings: Settings,
    *,
    holder: str,
    operations: Mapping[str, Operation] | None = None,
) -> Iterator[Endpoint]:
    """Answer reads for ``storage`` while the block runs (see the module docstring)."""
    endpoint = Endpoint(storage, settings, holder=holder, operations=operations).start()
    try:
        yield endpoint
    finally:
        endpoint.close()


__all__ = [
    "OPERATIONS",
    "SERVE",
    "Endpoint",
    "Holder",
    "HolderGoneError",
    "answer_reads",
    "endpoint_file",
    "held_error",
    "holder_activity",
    "rebuild_error",
    "run",
    "submit_batch",
    "unsafe_folder",
]
