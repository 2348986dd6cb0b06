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
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nbaprops import schema
from nbaprops.config import Settings
from nbaprops.errors import ConfigError
from nbaprops.storage._base import Capabilities
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.gcp.ledger import FirestoreLedger
from nbaprops.storage.gcp.queue import (
    REDELIVERY,
    PubSubNames,
    PubSubQueue,
    Redelivery,
    ensure_pubsub,
    subscription_drift,
)
from nbaprops.storage.gcp.warehouse import BigQueryWarehouse
from nbaprops.storage.inputs import Inputs

if TYPE_CHECKING:
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(
    name="gcp",
    multi_process_writers=True,
    remote_workers=True,
    ledger_in_inputs=False,
    retries_writes=True,
)
# What a process does decides what it must find at start (GcpBackend.required).
Role = Literal["coordinator", "worker"]


def _anonymous_if_emulated(variable: str | None) -> Any:
    """Anonymous credentials against an emulator (no Google account on a test machine), else the default."""
    if variable is None:
        return None
    from google.auth.credentials import AnonymousCredentials  # the gcp extra

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


def _read_client(settings: Settings) -> BigQueryReadClient | None:
    """The Storage Read API client workers read history with: Google's (default credentials) unless
    ``bigquery_read_endpoint`` names another (an emulator: plaintext gRPC); None — history through queries —
    against a BigQuery emulator that has no read endpoint set."""
    if settings.bigquery_endpoint and not settings.bigquery_read_endpoint:
        return None
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient  # the gcp extra

    if not settings.bigquery_read_endpoint:  # unset or empty, as bigquery_endpoint is read
        return BigQueryReadClient()  # type: ignore[no-untyped-call]
    import grpc  # the gcp extra (grpcio comes with it)

    # the gcp extra
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    # Google's own channels take messages of any size; a plain channel stops at 4 MB (one Arrow batch is more).
    channel = grpc.insecure_channel(
        settings.bigquery_read_endpoint, options=[("grpc.max_receive_message_length", -1)]
    )
    return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))  # type: ignore[no-untyped-call]


class GcpBackend:
    """Ledger (Firestore), warehouse (BigQuery) and queue (Pub/Sub) of one project."""

    capabilities = CAPABILITIES

    def __init__(self, settings: Settings, *, features: Inputs | None = None) -> None:
        from google.api_core.client_options import ClientOptions  # the gcp extra
        from google.cloud import bigquery, firestore  # the gcp extra
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient  # the gcp extra

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
        # ensure=False: a process creates nothing at start (`nbaprops gcp setup` does; check() finds it).
        self._warehouse = BigQueryWarehouse(
            self._bigquery, settings.bigquery_dataset, read_client=read_client, ensure=False
        )
        # The workers' subscription's retry policy `setup` makes and `check` expects (tests pass a fast one).
        self.redelivery: Redelivery = REDELIVERY
        self._queue = PubSubQueue(
            self.names,
            publisher=self._publisher,
            subscriber=self._subscriber,
            ack_deadline_s=self.ack_deadline_seconds,
        )
        self._features = features
        self._history: dict[tuple[date, date], DuckDBStorage] = {}
        self._history_lock = threading.Lock()

    @property
    def ack_deadline_seconds(self) -> int:
        """The workers' subscription's ack deadline: the lease, within Pub/Sub's 10–600 s."""
        return max(10, min(600, int(self.settings.lease_seconds)))

    def setup(self, *, location: str | None = None) -> list[str]:
        """Create what the deployment needs and a running process may not create (``nbaprops gcp setup``, run
        once by an account with ``roles/pubsub.editor`` and ``roles/bigquery.user``): the work topic, the
        dead-letter topic, their subscriptions with the dead-letter policy, the BigQuery dataset (in
        ``location``), the main and input tables. Idempotent: what exists is left as it is (tables gain the
        contract columns they lack; the workers' subscription gets the retry policy, ack deadline and delivery
        attempts it should have). The Firestore database and its index are gcloud's (docs/cloud.md).

        Returns:
            what this call created, one ``kind name`` per item.
        """
        created = [
            f"{'subscription' if '/subscriptions/' in path else 'topic'} {path}"
            for path in ensure_pubsub(
                self.names,
                publisher=self._publisher,
                subscriber=self._subscriber,
                ack_deadline_seconds=self.ack_deadline_seconds,
                max_delivery_attempts=self.settings.max_delivery_attempts,
                redelivery=self.redelivery,
            )
        ]
        if location:
            self._warehouse.location = location
        return created + self._warehouse.setup()

    def required(self, role: Role) -> list[tuple[str, Callable[[], object]]]:
        """What a process of ``role`` uses and must find at start, each with the call that reads it.

        A worker pulls from the workers' subscription and reads and stages in the dataset; the coordinator
        publishes to the work topic (which must have the workers' subscription, or its messages are dropped),
        reads dead letters, and merges into the main table. Both need the Firestore database.
        """
        names, timeout = self.names, 30.0
        dataset = self._warehouse.dataset
        main = f"{dataset}.{schema.PREDICTIONS.name}"
        retry = self._warehouse.retry

        def subscription(path: str) -> Callable[[], object]:
            return lambda: self._subscriber.get_subscription(request={"subscription": path}, timeout=timeout)

        probes: list[tuple[str, Callable[[], object]]] = [
            (
                f"Firestore database of project {self.settings.gcp_project}",
                lambda: (
                    self._ledger.client.collection(f"{self.settings.firestore_prefix}_batches")
                    .limit(1)
                    .get(timeout=timeout)
                ),
            ),
            (
                f"BigQuery dataset {dataset}",
                lambda: self._bigquery.get_dataset(dataset, retry=retry, timeout=timeout),
            ),
            (f"Pub/Sub subscription {names.subscription_path}", subscription(names.subscription_path)),
        ]
        if role == "coordinator":
            probes += [
                (
                    f"Pub/Sub topic {names.topic_path}",
                    lambda: self._publisher.get_topic(request={"topic": names.topic_path}, timeout=timeout),
                ),
                (
                    f"Pub/Sub subscription {names.dead_letter_subscription_path}",
                    subscription(names.dead_letter_subscription_path),
                ),
                (
                    f"BigQuery table {main}",
                    lambda: self._bigquery.get_table(main, retry=retry, timeout=timeout),
                ),
            ]
        return probes

    def check(self, role: Role) -> None:
        """Find what a process of ``role`` needs, creating nothing; the coordinator then adds the contract
        columns the main table lacks (dataEditor allows it).

        An account that may not read a resource's metadata (the publisher and subscriber roles do not include
        ``get``; docs/cloud.md grants ``roles/pubsub.viewer`` on each) leaves that resource unchecked, with a
        warning: its first use fails if it is missing.

        Raises:
            ConfigError: one line naming each missing resource and the command that creates it.
        """
        from google.api_core import exceptions as google_errors  # the gcp extra

        missing: list[str] = []
        for label, probe in self.required(role):
            with gcp_errors(f"check {label}"):
                try:
                    found = probe()
                except google_errors.NotFound:
                    missing.append(label)
                except (google_errors.PermissionDenied, google_errors.Forbidden):
                    log.warning("cannot check %s (no permission to read it); not verified at start", label)
                else:
                    if label.endswith(self.names.subscription_path):
                        self.warn_subscription_drift(found)
        if not missing:
            if role == "coordinator":
                self._warehouse.add_contract_columns(schema.PREDICTIONS)
            return
        fixes = []
        if any(not label.startswith("Firestore") for label in missing):
            fixes.append(
                "run `nbaprops gcp setup` once (an account with roles/pubsub.editor and roles/bigquery.user) to "
                "create the topics, subscriptions, dataset and tables"
            )
        if any(label.startswith("Firestore") for label in missing):
            fixes.append("create the database with `gcloud firestore databases create --location=REGION`")
        raise ConfigError(
            f"missing on Google Cloud: {', '.join(missing)}; {' and '.join(fixes)} (docs/cloud.md)"
        )

    def warn_subscription_drift(self, subscription: Any) -> list[str]:
        """Log a warning naming how the workers' subscription differs from what ``nbaprops gcp setup`` makes and
        the command that fixes it (a process does not change it: it may not). Returns the differences."""
        drift = subscription_drift(
            subscription,
            ack_deadline_seconds=self.ack_deadline_seconds,
            max_delivery_attempts=self.settings.max_delivery_attempts,
            redelivery=self.redelivery,
        )
        if drift:
            policy = self.redelivery
            log.warning(
                "Pub/Sub subscription %s: %s; run `nbaprops gcp setup` again, or `gcloud pubsub subscriptions "
                "update %s --ack-deadline=%d --max-delivery-attempts=%d --min-retry-delay=%gs "
                "--max-retry-delay=%gs` (docs/cloud.md)",
                self.names.subscription_path,
                "; ".join(drift),
                self.names.subscription,
                self.ack_deadline_seconds,
                self.settings.max_delivery_attempts,
                policy.minimum_backoff_s,
                policy.maximum_backoff_s,
            )
        return drift

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
    def features(self) -> Inputs:
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
