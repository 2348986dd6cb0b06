"""The embedded backend: the seams (ledger, warehouse, queue, inputs) on one DuckDB file, workers in-process.

The ledger and the warehouse are tables of the file; the queue is an :class:`~nbaprops.storage.queue.InProcessQueue`
that the coordinator's own worker threads consume, exactly as workers elsewhere consume Pub/Sub on GCP; the
features read the file itself.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from nbaprops.storage.duckdb.connection import CAPABILITIES, Database
from nbaprops.storage.duckdb.ledger import DuckDBLedger
from nbaprops.storage.duckdb.warehouse import DuckDBWarehouse
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.queue import InProcessQueue

if TYPE_CHECKING:
    from nbaprops.config import Settings


class DuckDBStorage(Database):
    """A DuckDB file with the nbaprops tables, and the embedded backend's seams on it."""

    capabilities = CAPABILITIES

    @functools.cached_property
    def ledger(self) -> DuckDBLedger:
        return DuckDBLedger(self)

    @functools.cached_property
    def warehouse(self) -> DuckDBWarehouse:
        return DuckDBWarehouse(self)

    @functools.cached_property
    def queue(self) -> InProcessQueue:
        """The work of this process's batches: in memory, consumed by the workers inside the process."""
        return InProcessQueue()

    @property
    def features(self) -> DuckDBStorage:
        """The feature query runs on this file itself."""
        return self


def open_backend(
    settings: Settings, *, read_only: bool = False, inputs: Inputs | None = None
) -> DuckDBStorage:
    """The registry's opener (:mod:`nbaprops.storage.registry`): the embedded backend is its inputs file —
    ``inputs`` when the caller has opened it already, else ``settings.db_path``."""
    if isinstance(inputs, DuckDBStorage):
        return inputs
    return DuckDBStorage(settings.db_path, read_only=read_only)
