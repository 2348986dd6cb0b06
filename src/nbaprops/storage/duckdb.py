"""The embedded DuckDB backend: one file, threads with their own cursors.

This is the one place where DuckDB's exceptions become nbaprops errors (:func:`translate`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from nbaprops import schema
from nbaprops.errors import ContractError, NbapropsError, StorageBusyError, TerminalError
from nbaprops.storage._base import Capabilities

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(
    name="duckdb",
    merge_insert_by_name=True,
    transactional_ddl=True,
    multi_process_writers=False,
    asof_join=True,
)


def translate(exc: BaseException) -> NbapropsError:
    """Map a DuckDB exception onto the nbaprops tree (transient: locks and write conflicts)."""
    text = str(exc)
    if isinstance(exc, duckdb.TransactionException) or "Conflict on" in text or "write-write conflict" in text:
        return StorageBusyError(f"database busy, try again: {text}")
    if isinstance(exc, duckdb.IOException) and "lock" in text.lower():
        return StorageBusyError(
            f"the database file is held by another process ({text}); stop it or use another --db"
        )
    if isinstance(exc, duckdb.ConstraintException):
        return ContractError(f"constraint violated: {text}")
    return TerminalError(f"database error: {text}")


class DuckDBStorage:
    """A DuckDB file with the nbaprops tables.

    Each thread gets its own cursor (:meth:`cursor`); DuckDB connections are not shared across threads.
    """

    capabilities = CAPABILITIES

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise translate(exc) from exc
        # Timestamps are stored as TIMESTAMPTZ and read back in UTC whatever the machine's zone.
        self._con.execute("SET TimeZone = 'UTC'")
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        if not read_only:
            self.ensure_schema()

    # -- connections ---------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    def close(self) -> None:
        with self._cursors_lock:
            for cur in self._cursors:
                with contextlib.suppress(duckdb.Error):
                    cur.close()
            self._cursors.clear()
        self._con.close()

    def __enter__(self) -> DuckDBStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statements ----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        try:
            return self.cursor().execute(sql, params) if params is not None else self.cursor().execute(sql)
        except duckdb.Error as exc:
            raise translate(exc) from exc

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        # fetchall, not fetchone: DuckDB keeps a half-read result open on the cursor and refuses the next call.
        rows = self.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def fetch_dicts(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """Run a query and return a ``pyarrow.Table``."""
        try:
            return self.cursor().sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise translate(exc) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """``BEGIN`` … ``COMMIT`` on this thread's cursor; rolls back on any exception.

        DuckDB errors inside are translated, so callers see :class:`StorageBusyError` for conflicts.
        """
        cur = self.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
        except duckdb.Error as exc:
            raise translate(exc) from exc
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise translate(exc) from exc
            raise

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create every contract table; add contract columns an older file lacks (never drop or retype)."""
        with self.transaction() as cur:
            for table in schema.ALL_TABLES:
                cur.execute(table.create_sql())
                present = self._columns(cur, table.name)
                for column in table.columns:
                    if column.name not in present:
                        log.info("adding column %s.%s", table.name, column.name)
                        cur.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.type}')

    @staticmethod
    def _columns(cur: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        rows = cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return {name: type_ for name, type_ in rows}

    def table_columns(self, table: str) -> dict[str, str]:
        """``name -> type`` of a table, in column order (empty when the table does not exist)."""
        try:
            return self._columns(self.cursor(), table)
        except duckdb.Error as exc:
            raise translate(exc) from exc

    def tables_with_prefix(self, prefix: str) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND starts_with(table_name, ?) ORDER BY table_name",
            [prefix],
        )
        return [r[0] for r in rows]
