"""The GCP backend: the three seams on Firestore, BigQuery and Pub/Sub, built from settings.

``open_gcp(settings, features=…)`` returns a :class:`GcpBackend`. The coordinator passes its own DuckDB file
as ``features`` (the inputs it plans from, and which it uploads to BigQuery for the workers); a worker passes
nothing and gets, per game date, an in-memory DuckDB loaded with the slice of history the feature query needs
(:meth:`GcpBackend.history`). Against emulators the clients need no credentials: Firestore and Pub/Sub read
``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST``; BigQuery takes ``bigquery_endpoint``.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

from nbaprops.config import Settings
from nbaprops.storage._base import Capabilities
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.gcp.ledger import FirestoreLedger
from nbaprops.storage.gcp.queue import PubSubNames, PubSubQueue, ensure_pubsub
from nbaprops.storage.gcp.warehouse import BigQueryWarehouse

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(name="gcp", multi_process_writers=True)


def _anonymous_if_emulated(variable: str | None) -> Any:
    """Anonymous credentials against an emulator (no Google account on a test machine), else the default."""
    if variable is None:
        return None
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


class GcpBackend:
    """Ledger (Firestore), warehouse (BigQuery) and queue (Pub/Sub) of one project."""

    capabilities = CAPABILITIES

    def __init__(self, settings: Settings, *, features: DuckDBStorage | None = None) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery, firestore
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

        self.settings = settings
        project = settings.gcp_project
        firestore_emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
        with gcp_errors("connect to Google Cloud"):
            self._firestore = firestore.Client(
                project=project, credentials=_anonymous_if_emulated(firestore_emulator)
            )
            self._bigquery = bigquery.Client(
                project=project,
                credentials=_anonymous_if_emulated(settings.bigquery_endpoint),
                client_options=(
                    ClientOptions(api_endpoint=settings.bigquery_endpoint)
                    if settings.bigquery_endpoint
                    else None
                ),
            )
            self.names = PubSubNames(
                project=project,
                topic=settings.pubsub_topic,
                subscription=f"{settings.pubsub_topic}-workers",
                dead_letter_topic=f"{settings.pubsub_topic}-dead-letter",
                dead_letter_subscription=f"{settings.pubsub_topic}-dead-letter",
            )
            self._publisher = PublisherClient()
            self._subscriber = SubscriberClient()
        self._ledger = FirestoreLedger(self._firestore, settings.firestore_prefix)
        self._warehouse = BigQueryWarehouse(self._bigquery, settings.bigquery_dataset)
        self._queue = PubSubQueue(self.names, publisher=self._publisher, subscriber=self._subscriber)
        self._features = features
        self._history: dict[tuple[date, date], DuckDBStorage] = {}
        self._history_lock = threading.Lock()

    def ensure(self) -> None:
        """Create the topics, subscriptions and dead-letter policy (idempotent); BigQuery's tables are created
        by the warehouse itself."""
        ensure_pubsub(
            self.names,
            publisher=self._publisher,
            subscriber=self._subscriber,
            ack_deadline_seconds=max(10, min(600, int(self.settings.lease_seconds))),
            max_delivery_attempts=self.settings.max_delivery_attempts,
        )

    @property
    def ledger(self) -> FirestoreLedger:
        return self._ledger

    @property
    def warehouse(self) -> BigQueryWarehouse:
        return self._warehouse

    @property
    def queue(self) -> PubSubQueue:
        return self._queue

    @property
    def features(self) -> DuckDBStorage:
        """The coordinator's inputs (a worker has none: it reads :meth:`history` per date)."""
        if self._features is None:
            raise RuntimeError("a GCP worker has no local inputs; use history(game_date)")
        return self._features

    def history(self, since: date, until: date) -> DuckDBStorage:
        """An in-memory DuckDB with the inputs dated ``since`` … ``until``, loaded from BigQuery once per window
        and process (a worker asks for the window of each game date it predicts)."""
        with self._history_lock:
            store = self._history.get((since, until))
            if store is None:
                store = DuckDBStorage(Path(":memory:"))
                counts = self._warehouse.load_history_into(store, since=since, until=until)
                log.info("history %s..%s loaded from BigQuery: %s", since, until, counts)
                self._history[(since, until)] = store
            return store

    def upload_inputs(self) -> dict[str, int]:
        """Push the coordinator's input tables to BigQuery so workers anywhere see the same history."""
        return self._warehouse.upload_inputs(self.features)

    def close(self) -> None:
        for store in self._history.values():
            store.close()
        self._history.clear()
        with gcp_errors("close the Google Cloud clients"):
            self._firestore.close()  # type: ignore[no-untyped-call]
            self._bigquery.close()  # type: ignore[no-untyped-call]
            self._subscriber.close()
        self._publisher.stop()
