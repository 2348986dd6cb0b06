"""The fourth seam: the **inputs** store the features, ingest, training and the backtest read and write.

Box scores, schedule, lines, injuries and aliases live in one SQL store with DuckDB's dialect: the embedded
file itself, or (GCP workers) an in-memory DuckDB holding the slice of history loaded from the warehouse. Code
outside ``storage/`` types against these protocols, never against a concrete backend class, so a backend is
added without editing it (docs/architecture.md).

Every statement's error reaches callers as an nbaprops error (:mod:`nbaprops.errors`), never the driver's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from nbaprops.errors import NbapropsError

Params = Sequence[Any] | dict[str, Any] | None
T = TypeVar("T")


class Result(Protocol):
    """The result of one statement (a DB-API cursor after ``execute``)."""

    @property
    def description(self) -> Any: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...


class InputSession(Protocol):
    """One thread's cursor for multi-statement work; its temporary names and registered tables end with it."""

    def temp_name(self, prefix: str) -> str: ...

    def execute(self, sql: str, params: Params = None, *, source: Any = None) -> InputSession: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def column_names(self) -> list[str]: ...

    def scalar(self, sql: str, params: Params = None) -> Any: ...

    def arrow(self, sql: str, params: Params = None) -> Any: ...

    def columns(self, table: str) -> dict[str, str]: ...

    def register(self, name: str, table: Any) -> None: ...

    def unregister(self, name: str) -> None: ...


class Inputs(Protocol):
    """The inputs store (see the module docstring)."""

    def session(self) -> AbstractContextManager[InputSession]: ...

    def transaction(self) -> AbstractContextManager[InputSession]: ...

    def bounded_memory(self) -> AbstractContextManager[None]:
        """The store's memory bounded while the block runs (an ingest), spilling to disk beyond it."""
        ...

    def within_memory_bound(self, work: Callable[[], T]) -> T:
        """``work()`` under :meth:`bounded_memory`; run again without the bound when it did not fit in it (so
        ``work`` must leave nothing behind when it fails: one transaction)."""
        ...

    def execute(self, sql: str, params: Params = None) -> Result: ...

    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None: ...

    def scalar(self, sql: str, params: Params = None) -> Any: ...

    def fetch_dicts(self, sql: str, params: Params = None) -> list[dict[str, Any]]: ...

    def arrow(self, sql: str, params: Params = None) -> Any: ...

    def ensure_schema(self) -> None: ...

    def table_columns(self, table: str) -> dict[str, str]: ...

    def tables_with_prefix(self, prefix: str) -> list[str]: ...

    def close(self) -> None: ...


class Store(Inputs, Protocol):
    """The database file a process holds (``nbaprops serve``, a command): the inputs store, and its health."""

    @property
    def failure(self) -> NbapropsError | None:
        """The disk-full or fatal error the file last met (None: writes go through)."""
        ...

    def writes_resumed(self) -> None:
        """Forget a disk-full failure once a whole unit of work (a batch) was written since."""
        ...


__all__ = ["InputSession", "Inputs", "Params", "Result", "Store"]
