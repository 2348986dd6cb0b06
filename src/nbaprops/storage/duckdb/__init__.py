"""The embedded backend: one DuckDB file holding the inputs, the ledger and the warehouse; workers in-process.

- :mod:`~nbaprops.storage.duckdb.connection` — the file, one cursor per thread, transactions, and
  :func:`translate`, the one place DuckDB's exceptions become nbaprops errors;
- :mod:`~nbaprops.storage.duckdb.ledger` and :mod:`~nbaprops.storage.duckdb.warehouse` — two of the seams;
- :mod:`~nbaprops.storage.duckdb.backend` — :class:`DuckDBStorage`, the file with its seams, and the registry's
  opener.
"""

from __future__ import annotations

from nbaprops.storage.duckdb.backend import DuckDBStorage, open_backend
from nbaprops.storage.duckdb.connection import CAPABILITIES, Database, Session, translate

__all__ = ["CAPABILITIES", "Database", "DuckDBStorage", "Session", "open_backend", "translate"]
