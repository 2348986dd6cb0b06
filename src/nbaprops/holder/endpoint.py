"""The holder's side: answer other processes' operations on the database this process holds.

:class:`Holding` is what every holder has: a token, the operations it answers (already bound to its open
database), what it is doing, and its record. It admits a request (token, operation, arguments checked against
the operation's signature), and :func:`failure_answer` turns any failure into the protocol's answer, the same
way whichever server carries it:

- ``nbaprops serve`` records uvicorn's own URL and answers on an internal route of its app
  (:mod:`nbaprops.service.routers.holder`);
- any other command holding the file for writing (a long ``predict``, ``daily``) runs :class:`Endpoint`, a
  small loopback server of the standard library: a thread per connection, at most :data:`MAX_CONNECTIONS`
  (the oldest one still reading its request is dropped for a new one), a socket timeout, operations on a
  fixed pool of threads (each one that touches the database keeps a DuckDB cursor).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import inspect
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nbaprops.errors import InputError, NbapropsError, to_wire
from nbaprops.holder.protocol import GONE, MAX_BODY_BYTES, ROUTE, TOKEN_HEADER, HolderGoneError, encode
from nbaprops.holder.record import remove_record, write_record

log = logging.getLogger(__name__)

Operation = Callable[..., Any]
POOL_THREADS = 4
MAX_CONNECTIONS = 32
READ_TIMEOUT_SECONDS = 5.0


class Refused(Exception):
    """A request the holder does not run: its status and answer."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        self.status = status
        self.payload = {"error": message, "kind": kind}
        super().__init__(message)


class Holding:
    """This process holds ``db_path`` and answers for it.

    Args:
        db_path: the database (the record goes beside it).
        holder: what this process runs, as shown to others (``nbaprops predict``).
        commands: the operations other commands reach it with, bound to the open database
            (``fn(**args)``); their names are listed in the record and in the error other commands show.
        internal: operations it also answers without advertising them (the service's ``submit``, ``follow``).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        holder: str,
        commands: Mapping[str, Operation],
        internal: Mapping[str, Operation] | None = None,
    ) -> None:
        self.db_path = db_path
        self.holder = holder
        self.commands = tuple(commands)
        self.operations: dict[str, Operation] = {**commands, **(internal or {}), "activity": self._activity}
        self.token = secrets.token_urlsafe(32)
        self.closing = threading.Event()
        self.refused: str | None = None  # why no record was written (the database's folder is not private)
        self.url: str | None = None
        self._doing: tuple[str, float] | None = None

    def doing(self, what: str | None) -> None:
        """Say what this holder is doing now (``training models for 2025-02-12``); ``nbaprops status`` in
        another terminal shows it, with when it started and this pid, while no batch says more."""
        self._doing = None if what is None else (what, time.time())

    def _activity(self) -> dict[str, Any]:
        doing = self._doing
        return {
            "holder": self.holder,
            "pid": os.getpid(),
            "doing": doing[0] if doing else None,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(doing[1])) if doing else None,
        }

    # -- the record -------------------------------------------------------------------------------------------
    def publish(self, url: str) -> bool:
        """Record that this process answers at ``url``; False (and :attr:`refused` says why) when the record
        cannot be written safely: the holder runs on, other commands get the lock error with that reason."""
        self.url = url
        record = {
            "pid": os.getpid(),
            "url": url,
            "holder": self.holder,
            "token": self.token,
            "commands": list(self.commands),
            "db": str(self.db_path.resolve()),
            "started_at": time.time(),
        }
        try:
            write_record(self.db_path, record)
        except OSError as exc:
            self.refused = f"the endpoint record was not written: {exc.strerror or exc}"
            log.warning("answering no reads for %s: %s", self.db_path, self.refused)
            return False
        log.debug("answering reads for %s at %s", self.db_path, url)
        return True

    def withdraw(self) -> None:
        """Stop answering (callers see the holder closing and open the file themselves), remove the record."""
        self.closing.set()
        remove_record(self.db_path, self.token)

    # -- one request --------------------------------------------------------------------------------------------
    def admit(self, token: str, op: str) -> Operation:
        """The operation ``op`` if ``token`` is this holder's and it is not closing.

        Raises:
            Refused: a wrong or missing token (403), no such operation (404).
            HolderGoneError: closing.
        """
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise Refused(403, "wrong or missing token", "Forbidden")
        operation = self.operations.get(op)
        if operation is None:
            raise Refused(404, "no such operation", "NotFound")
        if self.closing.is_set():
            raise HolderGoneError("the holder is closing the database")
        return operation

    @staticmethod
    def arguments(operation: Operation, body: bytes) -> dict[str, Any]:
        """The arguments in ``body``, checked against ``operation``'s signature before it runs.

        Raises:
            InputError: too large, not a JSON object, or not this operation's arguments.
        """
        if len(body) > MAX_BODY_BYTES:
            raise InputError("arguments too large")
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            raise InputError("arguments are not JSON") from None
        if not isinstance(args, dict):
            raise InputError("arguments must be a JSON object")
        try:
            inspect.signature(operation).bind(**args)
        except TypeError:
            raise InputError(
                f"not the arguments of this operation: {', '.join(sorted(args)) or 'none'}"
            ) from None
        return args


def failure_answer(op: str, exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and answer for ``exc``, raised while answering ``op``: an nbaprops error as its record (the
    client raises it again, :func:`nbaprops.errors.from_wire`), anything else as ``internal error`` (its text
    goes to this process's log only)."""
    if isinstance(exc, Refused):
        return exc.status, exc.payload
    if isinstance(exc, HolderGoneError):
        return 503, {"error": str(exc), "kind": GONE}
    if isinstance(exc, NbapropsError):
        return 400, to_wire(exc)
    log.error("holder: %s failed: %s: %s", op, type(exc).__name__, exc, exc_info=exc)
    return 500, {"error": "internal error; the holder logged it", "kind": "InternalError"}


# -- the small server of the CLI's holders ------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, holding: Holding) -> None:
        self.holding = holding
        self.pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="nbaprops-holder")
        self._lock = threading.Lock()
        self._open = 0
        self._reading: dict[socket.socket, float] = {}  # connections still reading their request: since when
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if self._open >= MAX_CONNECTIONS:
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
        log.debug("holder: connection from %s ended with an error", client_address, exc_info=True)

    def request_read(self, request: Any) -> None:
        """The request on ``request`` is read: it runs its operation and can no longer be dropped."""
        with self._lock:
            self._reading.pop(request, None)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = READ_TIMEOUT_SECONDS  # on every read and write of the socket: a silent client is let go

    def log_message(self, format: str, *args: Any) -> None:  # never on stderr: it is the CLI's
        log.debug("holder: " + format, *args)

    def _send(self, status: int, payload: Mapping[str, Any]) -> None:
        body = encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        holding = self.server.holding
        op = self.path.removeprefix(ROUTE) if self.path.startswith(ROUTE) else ""
        try:
            operation = holding.admit(self.headers.get(TOKEN_HEADER, ""), op)
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY_BYTES:
                raise InputError("arguments too large")
            args = holding.arguments(operation, self.rfile.read(length))
            self.server.request_read(self.request)
            result = self.server.pool.submit(operation, **args).result()
        except Exception as exc:
            self._send(*failure_answer(op, exc))
        else:
            self._send(200, {"result": result})


class Endpoint:
    """:class:`Holding` over the small loopback server (see the module docstring)."""

    def __init__(self, holding: Holding) -> None:
        self.holding = holding
        self._server: _Server | None = None

    def start(self) -> Endpoint:
        self._server = _Server(self.holding)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="nbaprops-holder",
            daemon=True,
        ).start()
        host, port = self._server.server_address[:2]
        if not self.holding.publish(f"http://{host!s}:{port}"):
            self._stop_server()
        return self

    def close(self) -> None:
        self.holding.withdraw()
        self._stop_server()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.pool.shutdown(wait=True)
            self._server = None


def bind(operations: Mapping[str, Callable[..., Any]], *args: Any) -> dict[str, Operation]:
    """``operations`` with their leading arguments (the open database, the settings) given."""
    return {name: functools.partial(fn, *args) for name, fn in operations.items()}


@contextlib.contextmanager
def answer_reads(
    db_path: Path,
    *,
    holder: str,
    commands: Mapping[str, Operation],
    internal: Mapping[str, Operation] | None = None,
) -> Iterator[Holding]:
    """Answer other commands' operations on ``db_path`` while the block runs (see the module docstring)."""
    endpoint = Endpoint(Holding(db_path, holder=holder, commands=commands, internal=internal)).start()
    try:
        yield endpoint.holding
    finally:
        endpoint.close()


__all__ = ["Endpoint", "Holding", "Operation", "Refused", "answer_reads", "bind", "failure_answer"]
