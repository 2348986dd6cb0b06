"""The embedded backend's connection: one DuckDB file, threads with their own cursors.

This is the one place where DuckDB's exceptions become nbaprops errors (:func:`translate`). The seams on top
of it (ledger, warehouse, queue) are in :mod:`nbaprops.storage.duckdb.backend`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import duckdb

from nbaprops import schema
from nbaprops.errors import (
    ContractError,
    DatabaseInvalidatedError,
    InputError,
    NbapropsError,
    StorageBusyError,
    StorageFullError,
    TerminalError,
)
from nbaprops.storage._base import Capabilities

log = logging.getLogger(__name__)
T = TypeVar("T")

# What one DuckDB file allows: threads of one process write, another process cannot open it meanwhile, so the
# workers run in this process and read the file itself.
CAPABILITIES = Capabilities(
    name="duckdb",
    multi_process_writers=False,
    remote_workers=False,
    ledger_in_inputs=True,
)


# DuckDB's buffers while a file is ingested: `nbaprops ingest lines` of 1M snapshots (76 MB) peaked 743 MB above
# idle under DuckDB's default limit (80% of the machine's memory) and 154 MB under this one, its temporary
# tables spilling to the database's temporary folder (``<file>.tmp`` beside it) instead
# (benchmarks/upload_memory.py --shape snapshots).
INGEST_MEMORY_LIMIT = "200MB"
RELEASE_MEMORY_LIMIT = "16MB"  # set for a moment when a bounded block ends: see Database.bounded_memory


# Tables whose primary key (schema.py) no index keeps: the statements that write them check it on the rows of the
# date they write (consolidation: warehouse.DuckDBWarehouse.merge; grading: evaluation.grading.grade_date), or
# the lines ingest on the rows it adds (ingest.lines._merge adds only keys not stored and refuses a key twice;
# ingest.snapshots.record_snapshots only postings not stored): there the ART was also memory DuckDB's limit
# cannot spill (123 MB for 1M lines added in one ingest, so a large file did not fit the ingest's bound). DuckDB
# keeps a PRIMARY KEY in an ART index over the whole table, and a write into it paid for the seasons stored, not for
# the night written: a process loads the index from the file as the insert walks it with random keys (a hash), so
# the INSERT of a 16k-row slate took 0.47 s at one season and 1.04 s at five (benchmarks/README.md, scale.py).
CHECKED_KEYS = (
    schema.PREDICTIONS.name,
    schema.PREDICTION_GRADES.name,
    schema.PROP_LINES.name,
    schema.PROP_LINE_SNAPSHOTS.name,
)


def _drop_key_index(tx: Session, table: str) -> None:
    """Rebuild ``table`` without its primary key (DuckDB cannot drop one), in the caller's transaction: the same
    columns in the same order, types and NOT NULL constraints, the rows in their stored order. Nothing to do
    when it has none."""
    keyed = tx.scalar(
        """SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database()
           AND schema_name = 'main' AND table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')""",
        [table],
    )
    if not keyed:
        return
    columns = tx.execute(
        """SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE database_name = current_database()
           AND schema_name = 'main' AND table_name = ? ORDER BY column_index""",
        [table],
    ).fetchall()
    log.warning(
        "rebuilding %s without its key index (once; the statements that write it check the key)", table
    )
    rebuilt = _quote(f"__rebuild_{table}")
    ddl = ", ".join(
        f"{_quote(name)} {type_}{'' if nullable else ' NOT NULL'}" for name, type_, nullable in columns
    )
    tx.execute(f"DROP TABLE IF EXISTS {rebuilt}")
    tx.execute(f"CREATE TABLE {rebuilt} ({ddl})")
    tx.execute(f"INSERT INTO {rebuilt} SELECT * FROM {_quote(table)}")
    tx.execute(f"DROP TABLE {_quote(table)}")
    tx.execute(f"ALTER TABLE {rebuilt} RENAME TO {_quote(table)}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _statement_head(sql: str) -> str:
    """The first words of a statement, to say where an error happened without printing a page of SQL."""
    words = " ".join(sql.split())
    return words if len(words) <= 80 else words[:77] + "..."


# How the operating system says a write found no room (ENOSPC, EFBIG under a file-size limit, EDQUOT).
_DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")


def _disk_full(text: str) -> str | None:
    lowered = text.lower()
    return next((reason for reason in _DISK_FULL if reason.lower() in lowered), None)


def translate(
    exc: BaseException, *, statement: str | None = None, source: Path | str | None = None
) -> NbapropsError:
    """Map a DuckDB exception onto the nbaprops tree (transient: locks and write conflicts).

    Args:
        statement: the SQL that failed; its head is named in the message.
        source: the user's file the statement was reading; a failure to read it is an :class:`InputError`.
    """
    text = str(exc).strip()
    where = f" (in: {_statement_head(statement)})" if statement else ""
    # Before the conflicts: a commit that could not write the WAL is a TransactionException too. The messages
    # name neither the file nor the statement (the OS reason is enough to act on).
    invalidated = isinstance(exc, duckdb.FatalException) or "database has been invalidated" in text
    full = _disk_full(text)
    if source is not None:  # the user's file name is theirs to choose: it must not pass for the OS's reason
        full = _disk_full(text.replace(str(source), ""))
    if full is not None:
        if invalidated:
            return StorageFullError(
                f"the disk holding the database is full ({full}): this process can no longer use the open "
                "database (what was committed is kept; the write under way may not be); free space, then run "
                "the same command again (restart `nbaprops serve`): a running batch resumes where it stopped",
                invalidated=True,
            )
        return StorageFullError(
            f"the disk holding the database is full ({full}): the write was rolled back and nothing stored is "
            "lost; free space, then run the same command again: a running batch resumes where it stopped"
        )
    if invalidated:
        return DatabaseInvalidatedError(
            "the database hit a fatal error and this process can no longer use it (what was committed is "
            "kept); run the command again (restart `nbaprops serve`), and see the log if it recurs"
        )
    if (
        isinstance(exc, duckdb.TransactionException)
        or "Conflict on" in text
        or "write-write conflict" in text
    ):
        return StorageBusyError(f"database busy, try again: {text}{where}")
    if isinstance(exc, duckdb.IOException) and "lock" in text.lower():
        return StorageBusyError(
            f"the database file is held by another process ({text}); stop it or use another --db"
        )
    if source is not None:  # the statement reads the user's file: whatever failed, the file could not be read
        return InputError(f"cannot read as CSV, Parquet or JSON: {text}", path=str(source))
    if isinstance(exc, duckdb.ConstraintException):
        return ContractError(f"constraint violated: {text}{where}")
    return TerminalError(f"database error: {text}{where}")


def query_rows(
    rows: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the Arrow table ``rows`` (named ``__rows``) in a scratch in-memory database.

    Returns:
        the result's column names and rows.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("__rows", rows)
        cursor = con.execute(sql, params)
        return [d[0] for d in cursor.description or ()], cursor.fetchall()
    except duckdb.Error as exc:
        raise translate(exc, statement=sql) from exc
    finally:
        con.close()


class Session:
    """This thread's cursor behind nbaprops errors, for multi-statement work on temporary objects.

    Every statement's DuckDB error is translated (:func:`translate`, naming the statement). Names from
    :meth:`temp_name` are unique to the session, so two loads can never collide on a temporary name, and the
    objects behind them, like tables :meth:`register`-ed, are dropped when the session ends.
    """

    def __init__(
        self,
        cursor: duckdb.DuckDBPyConnection,
        *,
        on_error: Callable[[NbapropsError], NbapropsError] | None = None,
    ) -> None:
        self._cur = cursor
        self._on_error = on_error or (lambda error: error)
        self._temp: list[str] = []
        self._registered: list[str] = []
        self._result: duckdb.DuckDBPyConnection | None = None
        self._sql = ""

    def temp_name(self, prefix: str) -> str:
        """A fresh name for a temporary table or view, dropped at the end of the session."""
        name = f"__{prefix}_{uuid.uuid4().hex[:10]}"
        self._temp.append(name)
        return name

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        source: Path | str | None = None,
    ) -> Session:
        """Run one statement; read its result with :meth:`fetchone` / :meth:`fetchall`.

        Args:
            source: the user's file the statement reads (its read errors become :class:`InputError`).
        """
        self._sql = sql
        try:
            self._result = self._cur.execute(sql, params) if params is not None else self._cur.execute(sql)
        except duckdb.Error as exc:
            raise self._on_error(translate(exc, statement=sql, source=source)) from exc
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._result is None:
            return []
        try:
            return self._result.fetchall()
        except duckdb.Error as exc:
            raise self._on_error(translate(exc, statement=self._sql)) from exc

    def column_names(self) -> list[str]:
        """Names of the last statement's result columns."""
        return [d[0] for d in (self._result.description or ())] if self._result is not None else []

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query and return a ``pyarrow.Table``."""
        try:
            return self._cur.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise self._on_error(translate(exc, statement=sql)) from exc

    def columns(self, table: str) -> dict[str, str]:
        """``name -> type`` of a table in the main schema, in column order (empty when it does not exist)."""
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return {name: type_ for name, type_ in rows}

    def register(self, name: str, table: Any) -> None:
        """Expose an Arrow table as ``name`` until the session ends."""
        try:
            self._cur.register(name, table)
        except duckdb.Error as exc:
            raise self._on_error(translate(exc, statement=f"register {name}")) from exc
        self._registered.append(name)

    def unregister(self, name: str) -> None:
        with contextlib.suppress(duckdb.Error):
            self._cur.unregister(name)
        if name in self._registered:
            self._registered.remove(name)

    def close(self) -> None:
        for name in self._registered:
            with contextlib.suppress(duckdb.Error):
                self._cur.unregister(name)
        for name in reversed(self._temp):
            for kind in ("VIEW", "TABLE"):
                with contextlib.suppress(duckdb.Error):
                    self._cur.execute(f"DROP {kind} IF EXISTS {name}")
        self._registered.clear()
        self._temp.clear()


class Database:
    """A DuckDB file with the nbaprops tables (the inputs seam, :class:`~nbaprops.storage.inputs.Inputs`).

    Each thread gets its own cursor (:meth:`cursor`); DuckDB connections are not shared across threads.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise translate(exc) from exc
        # The first disk-full or fatal error met (readiness reports it) until :meth:`writes_resumed`.
        self.failure: StorageFullError | DatabaseInvalidatedError | None = None
        # Timestamps are stored as TIMESTAMPTZ and read back in UTC whatever the machine's zone.
        self._con.execute("SET TimeZone = 'UTC'")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._memory_lock = threading.Lock()
        self._bounded = 0  # blocks running under bounded_memory
        if not read_only:
            self.ensure_schema()

    # -- connections ---------------------------------------------------------------------------
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database (never handed out: see :meth:`session`)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    def _failed(self, error: NbapropsError) -> NbapropsError:
        """Remember a disk-full or fatal error (see :attr:`failure`) and return it to be raised."""
        stays = self.failure is not None and self._invalidated(
            self.failure
        )  # the first fatal one is the cause
        if isinstance(error, StorageFullError | DatabaseInvalidatedError) and not stays:
            self.failure = error
        return error

    def writes_resumed(self) -> None:
        """Forget a disk-full failure: a whole unit of work (a batch) was written since. A small commit going
        through proves nothing — a full disk often takes the few bytes of a lease release — so the service calls
        this when a batch consolidates. An invalidated database stays failed until it is reopened."""
        if self.failure is not None and not self._invalidated(self.failure):
            self.failure = None

    @staticmethod
    def _invalidated(error: NbapropsError) -> bool:
        return isinstance(error, DatabaseInvalidatedError) or getattr(error, "invalidated", False)

    def close(self) -> None:
        with self._cursors_lock:
            for cur in self._cursors:
                with contextlib.suppress(duckdb.Error):
                    cur.close()
            self._cursors.clear()
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A :class:`Session` on this thread's cursor; its temporary objects are dropped at the end."""
        session = Session(self._cursor(), on_error=self._failed)
        try:
            yield session
        finally:
            session.close()

    @contextlib.contextmanager
    def bounded_memory(self) -> Iterator[None]:
        """DuckDB's memory limited to :data:`INGEST_MEMORY_LIMIT` while the block runs (an ingest of a file of
        any size), its temporary tables spilling to the temporary folder beside the file; DuckDB's default is
        back once no such block runs, and what the block used is returned to the system.

        The limit is the database's, so other work meanwhile (a batch in ``nbaprops serve``) is bounded too: it
        spills rather than fails. An in-memory database has nowhere to spill, so it is never bounded.
        """
        if str(self.path) == ":memory:":
            yield
            return
        with self._memory_lock:
            if self._bounded == 0:
                self.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")  # a constant, not input
            self._bounded += 1
        try:
            yield
        finally:
            with self._memory_lock:
                self._bounded -= 1
                if self._bounded == 0:
                    # DuckDB keeps what the block loaded and freed up to its limit: a lower limit for a moment
                    # makes it evict that and give the memory back (3M lines in process: 106 MB above idle after
                    # the ingest, 37 MB after this). A batch holding more than that pinned leaves it as it is.
                    with contextlib.suppress(NbapropsError):
                        self.execute(f"SET memory_limit = '{RELEASE_MEMORY_LIMIT}'")  # a constant, not input
                    with contextlib.suppress(NbapropsError):  # stopping: the database may be closing
                        self.execute("RESET memory_limit")  # DuckDB's default (nothing else sets it)

    @contextlib.contextmanager
    def _one_thread(self) -> Iterator[None]:
        """DuckDB on one thread while the block runs (the whole database's setting), its default after."""
        self.execute("SET threads = 1")
        try:
            yield
        finally:
            with contextlib.suppress(NbapropsError):  # stopping: the database may be closing
                self.execute("RESET threads")

    def within_memory_bound(self, work: Callable[[], T]) -> T:
        """``work()`` under :meth:`bounded_memory`; when DuckDB runs out of memory in it, ``work()`` again under
        the bound on one thread (each DuckDB thread holds its own buffers: DuckDB's out-of-memory guide), and only
        when that fails too, without the bound (logged), so the bound never refuses work the default limit would
        do. In one of two 10M-row uploads through the API the two-thread run did not fit and the unbounded one
        took the server to 14 GB; the one-thread step is there so that it never comes to that.

        What would not fit: DuckDB spills temporary tables, sorts, joins and windows, but not an index (a
        PRIMARY KEY's ART: 123 MB for 1M lines added, so ``prop_lines`` keeps none: :data:`CHECKED_KEYS`) nor, in
        practice, a hash aggregate of holistic aggregates (a median per row after a join). Nor does the bound
        count what DuckDB keeps in memory for what it spilled: about 12 MB per GB of temporary tables spilled
        (measured on 2.0.1), freed when a table is dropped outside a transaction and only at its end inside one
        — so the lines ingest works a large file in pieces of dates (``ingest.lines.PIECE_ROWS``) outside its
        transaction. ``work`` must leave nothing behind when it fails (one transaction).
        """
        try:
            with self.bounded_memory():
                return work()
        except NbapropsError as exc:
            if not isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                raise
            log.warning("did not fit in %s of memory; running it again on one thread", INGEST_MEMORY_LIMIT)
        try:
            with self.bounded_memory(), self._one_thread():
                return work()
        except NbapropsError as exc:
            if not isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                raise
            log.warning(
                "did not fit in %s of memory on one thread; running it again without the bound",
                INGEST_MEMORY_LIMIT,
            )
        try:
            return work()
        finally:
            # Setting the bound again makes DuckDB give back what the unbounded run left cached (it keeps
            # freed buffers up to its limit); best effort, the work is done.
            with contextlib.suppress(NbapropsError), self.bounded_memory():
                pass

    # -- statements ----------------------------------------------------------------------------
    def execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        try:
            return self._cursor().execute(sql, params) if params is not None else self._cursor().execute(sql)
        except duckdb.Error as exc:
            raise self._failed(translate(exc, statement=sql)) from exc

    def fetchall(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        # fetchall, not fetchone: DuckDB keeps a half-read result open on the cursor and refuses the next call.
        rows = self.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def fetch_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query and return a ``pyarrow.Table``."""
        try:
            return self._cursor().sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise self._failed(translate(exc, statement=sql)) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """``BEGIN`` … ``COMMIT`` in a :class:`Session` on this thread's cursor; rolls back on any exception.

        DuckDB errors inside are translated, so callers see :class:`StorageBusyError` for conflicts.
        """
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
        except duckdb.Error as exc:
            raise self._failed(translate(exc, statement="BEGIN TRANSACTION")) from exc
        session = Session(cur, on_error=self._failed)
        try:
            yield session
            session.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            raise
        finally:
            session.close()

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create every contract table; add contract columns an older file lacks (never drop or retype).

        The tables of :data:`CHECKED_KEYS` are created without their primary key, and an older file's are
        rebuilt once without it (:func:`_drop_key_index`).
        """
        with self.transaction() as cur:
            for table in schema.ALL_TABLES:
                keyed = table.name not in CHECKED_KEYS
                cur.execute(table.create_sql(keys=keyed))
                if not keyed:
                    _drop_key_index(cur, table.name)
                present = cur.columns(table.name)
                for column in table.columns:
                    if column.name not in present:
                        log.info("adding column %s.%s", table.name, column.name)
                        cur.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.type}')

    def table_columns(self, table: str) -> dict[str, str]:
        """``name -> type`` of a table, in column order (empty when the table does not exist)."""
        with self.session() as session:
            return session.columns(table)

    def tables_with_prefix(self, prefix: str) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND starts_with(table_name, ?) ORDER BY table_name",
            [prefix],
        )
        return [r[0] for r in rows]
