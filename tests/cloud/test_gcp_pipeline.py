"""The whole batch on the GCP backend — Firestore ledger, BigQuery warehouse, Pub/Sub work — through the CLI,
with worker processes as a user runs them, on the emulators. Each test ends with the invariants.

Both run on the one-game slate (the fault tests of ``test_gcp_faults.py`` too): what they prove does not grow
with the slate, their cost does (``benchmarks/cloud.py`` runs the 15-game slate the same way).
"""

from __future__ import annotations

import signal

import pytest
from tests.cloud.conftest import (
    SMALL_SLATE,
    Deployment,
    assert_cloud_invariants,
    finished,
    predict,
    start,
    stopped,
    worker,
)
from tests.service.conftest import wait_for

from nbaprops.storage import open_gcp

pytestmark = [pytest.mark.cloud, pytest.mark.slow]


def test_a_slate_runs_on_worker_processes_and_lands_once(deployment: Deployment) -> None:
    """The coordinator publishes, two `nbaprops worker` processes do the work, the coordinator consolidates.

    The one-game slate in chunks of 4 (8 messages): each worker pulls one message at a time, so both take work.
    The 15-game slate runs through the same path in `benchmarks/cloud.py` (each worker's history load from the
    BigQuery emulator, ~15 s, is most of a test's time, whatever the slate)."""
    chunks = {"NBAPROPS_CHUNK_SIZE": "4"}
    workers = [
        worker(deployment, idle_exit=60, **chunks) for _ in range(2)
    ]  # pulling before anything is published
    coordinator = predict(deployment, SMALL_SLATE, NBAPROPS_WORKERS="0", **chunks)
    backend = open_gcp(deployment.settings)
    try:
        summary = finished(coordinator, 600, deployment)
        assert summary["state"] == "complete", summary
        requests = summary["requests"]
        assert isinstance(requests, dict) and requests["done"] > 20 and requests["pending"] == 0
        assert summary["active_predictions"] == requests["done"]  # one system, one market
        assert summary["staging_tables_left"] == 0
        stats = [stopped(w, deployment) for w in workers]
        assert sum(int(s["committed"]) for s in stats) == requests["done"] + requests["skipped"]
        assert all(int(s["chunks"]) > 0 for s in stats), stats  # both workers took work
        assert_cloud_invariants(backend, str(summary["batch_id"]))
    finally:
        backend.close()
        for process in (coordinator, *workers):
            if process.poll() is None:
                process.kill()


def test_a_worker_killed_mid_batch_loses_nothing(deployment: Deployment) -> None:
    """kill -9 of an ``nbaprops worker`` process holding leases (a worker loads its history, then claims a chunk
    and predicts it): they expire, the coordinator's sweep publishes them again, and a second worker does them;
    every request ends once and the invariants hold."""
    fast_leases = {
        "NBAPROPS_LEASE_SECONDS": "5",
        "NBAPROPS_LEASE_GRACE_SECONDS": "0",
        "NBAPROPS_CHUNK_SIZE": "8",
    }
    doomed = start(deployment, "worker", "--json", **fast_leases)  # pulling before anything is published
    coordinator = predict(deployment, SMALL_SLATE, NBAPROPS_WORKERS="0", **fast_leases)
    backend = open_gcp(deployment.settings)
    rescuer = None
    try:

        def doomed_holds_leases() -> bool:
            batches = backend.ledger.list_batches()
            leased = backend.ledger.requests(batches[0].batch_id, states=["leased"]) if batches else []
            return any(f":{doomed.pid}:" in str(r["lease_owner"]) for r in leased)

        wait_for(doomed_holds_leases, timeout=300, interval=0.02)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        rescuer = worker(deployment, idle_exit=120)
        summary = finished(coordinator, 300, deployment)
        stopped(rescuer, deployment)  # SIGTERM once the batch is done, as its operator would; no idle wait
        assert summary["state"] == "complete", summary
        assert_cloud_invariants(backend, str(summary["batch_id"]))
        attempts = [r["attempt"] for r in backend.ledger.requests(str(summary["batch_id"]))]
        assert max(attempts) >= 2  # the killed worker's chunk was done again
    finally:
        backend.close()
        for process in (doomed, coordinator, rescuer):
            if process is not None and process.poll() is None:
                process.kill()
