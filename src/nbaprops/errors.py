"""One exception tree for nbaprops.

::

    NbapropsError                  base of everything this package raises on purpose
    ├── TerminalError              retrying cannot help: record it, never retry
    │   ├── ConfigError            a setting is missing or invalid
    │   ├── InputError             a file or argument is malformed (names file, row, column)
    │   │   └── ConflictError      the request clashes with a batch's state (running, requests open)
    │   ├── UnknownBatchError      no batch with that id
    │   ├── ContractError          a schema or system contract was violated (a bug)
    │   ├── NotFittedError         a prediction system was used before ``fit``
    │   ├── ArtifactError          a stored model artifact is missing or unreadable
    │   ├── StorageFullError       the disk is full: a write failed, nothing committed was lost; free space
    │   ├── DatabaseInvalidatedError  DuckDB gave up on the open database (fatal error): reopen it
    │   └── SourceError            a live source refused the request or answered nonsense (4xx, bad JSON)
    └── TransientError             may succeed later: retry with a cap
        ├── StorageBusyError       the database file is locked or a transaction conflicted
        │   └── DatabaseHeldError  another nbaprops process holds the file (it answers reads for it)
        └── SourceUnavailableError a live source timed out or kept answering 429/5xx after the retries

Driver errors are translated into this tree in one place per backend
(``storage/duckdb/connection.py``) with ``raise … from``; HTTP errors of the live sources in one place too
(``sources/_http.py``).

An error crosses a process boundary (a command answered by the process holding the database) as a record,
:func:`to_wire`, and is rebuilt on the other side through its own constructor, :func:`from_wire`: same class,
same message, same attributes (``batch_id``, ``path``, ``pid``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Self


class NbapropsError(Exception):
    """Base class of every error nbaprops raises on purpose.

    The arguments an error was constructed with are kept (``_arguments``): they are what :func:`to_wire` sends,
    so that :func:`from_wire` can call the same constructor in another process.
    """

    _arguments: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        error = super().__new__(cls, *args)
        error._arguments = (args, dict(kwargs))
        return error


class TerminalError(NbapropsError):
    """Retrying cannot help; the error is recorded and the work item ends."""


class TransientError(NbapropsError):
    """The same call may succeed later; callers retry with a cap."""


class ConfigError(TerminalError):
    """A setting is missing or invalid."""


class InputError(TerminalError):
    """Malformed input. Carries the file, row and column where known.

    Args:
        message: what is wrong and what to do about it.
        path: the input file, when the input came from one.
        row: line number in the file (the header is line 1), when known.
        column: the offending column, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"line {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConflictError(InputError):
    """The request clashes with the current state of a batch: one is running for the date, requests are open.

    Args:
        message: what clashes and what to do.
        batch_id: the batch in the way.
    """

    def __init__(self, message: str, *, batch_id: str | None = None) -> None:
        self.batch_id = batch_id
        super().__init__(message)


class UnknownBatchError(TerminalError):
    """No batch has this id."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(f"no batch {batch_id!r}; list batches with `nbaprops batches`")


class ContractError(TerminalError):
    """A declared contract (schema, system interface, invariant) was violated."""


class NotFittedError(TerminalError):
    """A prediction system was asked to predict before ``fit``."""


class ArtifactError(TerminalError):
    """A stored model artifact is missing or unreadable."""


class StorageFullError(TerminalError):
    """The disk holding the database is full (or a file-size limit was hit): a write failed.

    Terminal for the work under way — retrying at once fails the same way — but nothing committed is lost: the
    failed transaction was rolled back. Free space and run the same command again; a running batch resumes.

    Args:
        message: what failed and what to do.
        invalidated: DuckDB invalidated the open database (a checkpoint failed): this process cannot use it any
            more and must reopen it (restart ``nbaprops serve``); what was committed is kept (the write under
            way may not be).
    """

    invalidated = False  # an error rebuilt from another process's message keeps the default

    def __init__(self, message: str, *, invalidated: bool = False) -> None:
        self.invalidated = invalidated
        super().__init__(message)


class DatabaseInvalidatedError(TerminalError):
    """DuckDB invalidated the open database after a fatal error other than a full disk: this process cannot use
    it any more; what was committed is kept. Run the command again (restart ``nbaprops serve``)."""


class StorageBusyError(TransientError):
    """The database is locked by another process or a transaction conflicted."""


class DatabaseHeldError(StorageBusyError):
    """Another nbaprops process holds the database file; reads reach it through its recorded endpoint.

    Args:
        message: who holds the file and what still works.
        pid: the holder's process id.
        holder: what the holder runs (``serve``, ``predict``, ...).
    """

    def __init__(self, message: str, *, pid: int, holder: str) -> None:
        self.pid = pid
        self.holder = holder
        super().__init__(message)


class SourceError(TerminalError):
    """A live source refused a request or answered something unreadable; retrying will not help.

    Args:
        source: the source's name (``nba_stats``, ``injury_report``, ``odds_api``).
        message: what happened and what to do.
        status: the HTTP status, when there was a response.
    """

    def __init__(self, source: str, message: str, *, status: int | None = None) -> None:
        self.source = source
        self.status = status
        prefix = f"{source}: HTTP {status}" if status is not None else source
        super().__init__(f"{prefix}: {message}")


class SourceUnavailableError(TransientError):
    """A live source timed out, could not be reached or kept answering 429/5xx after the retries."""

    def __init__(self, source: str, message: str, *, status: int | None = None) -> None:
        self.source = source
        self.status = status
        prefix = f"{source}: HTTP {status}" if status is not None else source
        super().__init__(f"{prefix}: {message}")


# -- errors between processes ------------------------------------------------------------------------------------
_WIRE_SCALARS = (str, int, float, bool, type(None))
UNKNOWN_ERROR = "internal error in the nbaprops process holding the database; its log has the details"


def _wire_value(value: Any) -> Any:
    if isinstance(value, _WIRE_SCALARS):
        return value
    return str(value) if isinstance(value, PurePath) else repr(value)


def _own_class(error: NbapropsError) -> type[NbapropsError]:
    """The nearest class of ``error`` defined in this module (a subclass defined elsewhere is unknown to a
    process that did not import its module)."""
    return next(c for c in type(error).__mro__ if c.__module__ == __name__ and issubclass(c, NbapropsError))


def to_wire(error: NbapropsError) -> dict[str, Any]:
    """``error`` as a JSON-ready record: ``{"kind", "error", "args", "fields"}``.

    ``kind`` is the nearest class of this module, ``error`` the message, ``args`` and ``fields`` the positional
    and keyword arguments of its constructor. A subclass defined elsewhere with a constructor of its own is sent
    as its base class with its message alone.
    """
    cls = _own_class(error)
    args, fields = error._arguments
    if cls is not type(error) and type(error).__init__ is not cls.__init__:
        args, fields = (str(error),), {}
    return {
        "kind": cls.__name__,
        "error": str(error),
        "args": [_wire_value(a) for a in args],
        "fields": {str(k): _wire_value(v) for k, v in fields.items()},
    }


def from_wire(record: Mapping[str, Any]) -> NbapropsError:
    """The error :func:`to_wire` described, rebuilt through its class's constructor.

    A kind this module does not define (another version, or not an nbaprops error at all) becomes a plain
    :class:`NbapropsError` that says only where to look: the text that came with it is not repeated. A known
    kind whose arguments are missing or do not rebuild the same message (an older record, ``{"error", "kind"}``
    only) keeps its message under the nearest class of its tree that takes a message alone, so that it stays
    terminal or transient.
    """
    kind = record.get("kind")
    cls = globals().get(kind) if isinstance(kind, str) else None
    if not (isinstance(cls, type) and issubclass(cls, NbapropsError) and cls.__module__ == __name__):
        return NbapropsError(UNKNOWN_ERROR)
    message = record.get("error")
    message = message if isinstance(message, str) else UNKNOWN_ERROR
    args, fields = record.get("args", [message]), record.get("fields", {})
    if (
        isinstance(args, list)
        and isinstance(fields, dict)
        and all(isinstance(a, _WIRE_SCALARS) for a in args)
        and all(isinstance(k, str) and isinstance(v, _WIRE_SCALARS) for k, v in fields.items())
    ):
        try:
            error = cls(*args, **fields)
        except TypeError:  # not this constructor's arguments
            pass
        else:
            if str(error) == message:
                return error
    plain = next(c for c in cls.__mro__ if issubclass(c, NbapropsError) and "__init__" not in vars(c))
    return plain(message)
