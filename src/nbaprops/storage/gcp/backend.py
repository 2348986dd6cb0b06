"""The GCP backend: the three seams on Firestore, BigQuery and Pub/Sub, built from settings.

``open_gcp(settings, features=…)`` returns a :class:`GcpBackend`. The coordinator passes its own DuckDB file
as ``features`` (the inputs it plans from, and which it uploads to BigQuery for the workers); a worker passes
nothing and gets, per game date, an in-memory DuckDB loaded with the slice of history the feature query needs
(:meth:`GcpBackend.history`). Against emulators the clients need no credentials: Firestore and Pub/Sub read
``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST``; BigQuery takes ``bigquery_endpoint`` (and
``bigquery_read_endpoint`` for the Storage Read API the history is read with).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbaprops.config import Settings
from nbaprops.storage._base import Capabilities
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.gcp.ledger import FirestoreLedger
from nbaprops.storage.gcp.queue import PubSubNames, PubSubQueue, ensure_pubsub
from nbaprops.storage.gcp.warehouse import BigQueryWarehouse

if TYPE_CHECKING:
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(name="gcp", multi_process_writers=True)


def _anonymous_if_emulated(variable: str | None) -> Any:
    """Anonymous credentials against an emulator (no Google account on a test machine), else the default."""
    if variable is None:
        return None
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


def _read_client(settings: Settings) -> BigQueryReadClient | None:
    """The Storage Read API client workers read history with: Google's (default credentials) unless
    ``bigquery_read_endpoint`` names another (an emulator: plaintext gRPC); None — history through queries —
    against a BigQuery emulator that has no read endpoint set."""
    if settings.bigquery_endpoint and not settings.bigquery_read_endpoint:
        return None
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    if not settings.bigquery_read_endpoint:  # unset or empty, as bigquery_endpoint is read
        return BigQueryReadClient()  # type: ignore[no-untyped-call]
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    # Google's own channels take messages of any size; a plain channel stops at 4 MB (one Arrow batch is more).
    channel = grpc.insecure_channel(
        settings.bigquery_read_endpoint, options=[("grpc.max_receive_message_length", -1)]
    )
    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))  # type: ignore[no-untyped-call]


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
        with gcp_errors("connect to the BigQuery Storage Read API"):
            read_client = _read_client(settings)
        self._warehouse = BigQueryWarehouse(
            self._bigquery, settings.bigquery_dataset, read_client=read_client
        )
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
            if self._warehouse.read_client is not None:
                self._warehouse.read_client.transport.close()  # type: ignore[no-untyped-call]
            self._subscriber.close()
        self._publisher.stop()
