"""Storage behind a small interface with a capabilities record.

Generic code reads :class:`Capabilities`, never ``isinstance``. DuckDB is the embedded default; drivers are
imported lazily so that a backend's absence only matters when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nbaprops.storage._base import Capabilities, retry_transient

if TYPE_CHECKING:
    from nbaprops.config import Settings
    from nbaprops.storage.duckdb import DuckDBStorage
    from nbaprops.storage.gcp.backend import GcpBackend


def open_storage(path: Path | str, *, read_only: bool = False) -> DuckDBStorage:
    """Open (creating if needed) the embedded DuckDB store at ``path`` with every table of the contract."""
    from nbaprops.storage.duckdb import DuckDBStorage

    return DuckDBStorage(Path(path), read_only=read_only)


def _gcp_backend(settings: Settings, features: DuckDBStorage | None) -> GcpBackend:
    try:
        from nbaprops.storage.gcp.backend import GcpBackend
    except ImportError as exc:
        from nbaprops.errors import ConfigError

        raise ConfigError(
            f"backend 'gcp' needs the Google Cloud clients: pip install 'nbaprops[gcp]' ({exc})"
        ) from exc
    return GcpBackend(settings, features=features)


def open_gcp(settings: Settings, *, features: DuckDBStorage | None = None) -> GcpBackend:
    """The GCP backend of ``settings`` (Firestore, BigQuery, Pub/Sub), its resources found, none created.

    Args:
        features: the coordinator's own inputs file; a worker passes none (it loads history per date). It
            decides what must exist (:meth:`GcpBackend.required`).

    Raises:
        ConfigError: the Google Cloud clients are not installed (the ``gcp`` extra), or a topic, subscription,
            dataset or table is missing (named, with ``nbaprops gcp setup`` to create it).
    """
    backend = _gcp_backend(settings, features)
    try:
        backend.check("worker" if features is None else "coordinator")
    except BaseException:
        backend.close()
        raise
    return backend


def setup_gcp(settings: Settings, *, location: str | None = None) -> list[str]:
    """Create the topics, subscriptions, dataset and tables of ``settings``' deployment (``nbaprops gcp setup``).

    Returns:
        what was created (what existed is left as it is).
    """
    backend = _gcp_backend(settings, None)
    try:
        return backend.setup(location=location)
    finally:
        backend.close()


__all__ = ["Capabilities", "open_gcp", "open_storage", "retry_transient", "setup_gcp"]
