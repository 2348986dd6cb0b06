"""Storage behind a small interface with a capabilities record.

Generic code reads :class:`Capabilities`, never ``isinstance``. DuckDB is the embedded default; drivers are
imported lazily so that a backend's absence only matters when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nbaprops.storage._base import Capabilities, retry_transient

if TYPE_CHECKING:
    from nbaprops.storage.duckdb import DuckDBStorage


def open_storage(path: Path | str, *, read_only: bool = False) -> DuckDBStorage:
    """Open (creating if needed) the embedded DuckDB store at ``path`` with every table of the contract."""
    from nbaprops.storage.duckdb import DuckDBStorage

    return DuckDBStorage(Path(path), read_only=read_only)


__all__ = ["Capabilities", "open_storage", "retry_transient"]
