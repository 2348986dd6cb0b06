"""`nbaprops serve` on the GCP backend: the same /v1 API, with Firestore, BigQuery and Pub/Sub behind it.

The service plans and creates the batch, uploads its inputs to BigQuery and publishes the work; a `nbaprops
worker` (here its loop, in a thread of the test) predicts; the service consolidates into BigQuery. Every answer
the API gives — the batch, its requests, the predictions, the metrics, readiness — must be the cloud's, not
the service's own (empty) database file, which only holds the inputs. A one-game date keeps it short.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from tests.cloud.conftest import SMALL_SLATE, Deployment, assert_cloud_invariants
from tests.service.conftest import KEYS, LiveServer, wait_batch

from nbaprops.clock import SystemClock
from nbaprops.pipeline.queue_worker import QueueWorker, history_window
from nbaprops.storage import open_gcp

pytestmark = [pytest.mark.cloud]
ONE_GAME = SMALL_SLATE  # one game: 31 requests


@pytest.fixture
def server(deployment: Deployment) -> Iterator[LiveServer]:
    settings = deployment.settings.replace(
        api_keys=KEYS, workers=0, poll_interval_seconds=0.0
    )  # a coordinator: the work is the workers'
    with LiveServer(settings) as live:
        yield live


def test_serve_on_gcp_runs_a_batch_through_pubsub_and_answers_from_the_cloud(
    deployment: Deployment, server: LiveServer
) -> None:
    """Without the backend in the service, the batch would run in-process on the file and land there: the
    predictions read back from BigQuery, the Firestore requests and the worker's commits would all be empty."""
    settings = deployment.settings
    stop = threading.Event()
    cloud = open_gcp(settings)  # the worker's own clients, as on another machine
    worker = QueueWorker(
        cloud, settings, SystemClock(), "test-worker", history=lambda day: cloud.history(*history_window(day))
    )
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop}, name="test-gcp-worker", daemon=True)
    thread.start()
    backend = open_gcp(settings)
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client:
            ready = client.get("/health/ready").json()
            assert ready["checks"]["cloud"]["ok"], ready
            started = client.post("/v1/batches", json={"game_date": ONE_GAME})
            assert started.status_code in (200, 201, 202), started.text
            batch_id = started.json()["batch_id"]
            assert [b.batch_id for b in backend.ledger.list_batches()] == [batch_id]  # Firestore has it
            body = wait_batch(client, batch_id, timeout=180)
            assert body["state"] == "complete", body
            done = body["requests"]["done"]
            assert done > 10
            rows = client.get("/v1/predictions", params={"date": ONE_GAME}).json()
            landed = backend.warehouse.active_predictions(date.fromisoformat(ONE_GAME))
            assert len(rows["predictions"]) == landed.num_rows == done  # one market, one system
            listed = client.get("/v1/batches").json()
            assert [b["batch_id"] for b in listed["batches"]] == [batch_id]
            metrics = client.get("/metrics").text
            assert 'nbaprops_batches{state="complete"} 1.0' in metrics, metrics
            assert_cloud_invariants(backend, batch_id)
            # The service's own file holds the inputs only: no batch, request or prediction landed there.
            local = server.runtime.storage
            for table in ("prediction_batches", "prediction_requests", "player_prop_predictions"):
                assert local.scalar(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        stop.set()
        thread.join(60)
        backend.close()
        cloud.close()
    assert worker.stats.committed == body["requests"]["done"] + body["requests"]["skipped"]
