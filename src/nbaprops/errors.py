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
"""

from __future__ import annotations


class NbapropsError(Exception):
    """Base class of every error nbaprops raises on purpose."""


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
