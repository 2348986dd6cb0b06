"""Storage behind a small interface with a capabilities record.

Generic code reads :class:`Capabilities`, never ``isinstance``; a backend is picked by name in
:mod:`nbaprops.storage.registry` (:func:`open_backend`). DuckDB is the embedded default; drivers are imported
lazily so that a backend's absence only matters when it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbaprops.storage._base import Capabilities, retry_transient
from nbaprops.storage.registry import backend_module, capabilities, open_backend

if TYPE_CHECKING:
    from nbaprops.config import Settings
    from nbaprops.storage.duckdb import DuckDBStorage
    from nbaprops.storage.gcp.backend import GcpBackend
    from nbaprops.storage.inputs import Inputs


def open_storage(path: Path | str, *, read_only: bool = False) -> DuckDBStorage:
    """Open (creating if needed) the embedded DuckDB store at ``path`` with every table of the contract."""
    # the embedded driver (duckdb), imported when a backend is opened
    from nbaprops.storage.duckdb import DuckDBStorage

    return DuckDBStorage(Path(path), read_only=read_only)


def query_rows(
    rows: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the Arrow table ``rows`` (named ``__rows`` in it; DuckDB's dialect) in a scratch
    in-memory store, whatever the backend: the column names and rows of the result."""
    # the embedded driver (duckdb), imported when a backend is opened
    from nbaprops.storage.duckdb.connection import query_rows as run

    return run(rows, sql, params)


def open_gcp(settings: Settings, *, features: Inputs | None = None) -> GcpBackend:
    """The GCP backend of ``settings`` (Firestore, BigQuery, Pub/Sub), its resources found, none created.

    Args:
        features: the coordinator's own inputs file; a worker passes none (it loads history per date). It
            decides what must exist (:meth:`GcpBackend.required`).

    Raises:
        ConfigError: the Google Cloud clients are not installed (the ``gcp`` extra), or a topic, subscription,
            dataset or table is missing (named, with ``nbaprops gcp setup`` to create it).
    """
    backend: GcpBackend = backend_module("gcp").open_gcp(settings, features=features)
    return backend


def setup_gcp(settings: Settings, *, location: str | None = None) -> list[str]:
    """Create the topics, subscriptions, dataset and tables of ``settings``' deployment (``nbaprops gcp setup``).

    Returns:
        what was created (what existed is left as it is).
    """
    created: list[str] = backend_module("gcp").setup_gcp(settings, location=location)
    return created


__all__ = [
    "Capabilities",
    "capabilities",
    "open_backend",
    "open_gcp",
    "open_storage",
    "query_rows",
    "retry_transient",
    "setup_gcp",
]
