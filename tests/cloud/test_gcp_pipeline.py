"""The whole batch on the GCP backend — Firestore ledger, BigQuery warehouse, Pub/Sub work — through the CLI,
with worker processes as a user runs them, on the emulators. Each test ends with the invariants."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from tests.cloud.conftest import Deployment
from tests.service.conftest import REPO, SLATE, wait_for

from nbaprops import schema
from nbaprops.storage import open_gcp
from nbaprops.storage.gcp.backend import GcpBackend

pytestmark = [pytest.mark.cloud, pytest.mark.slow]
OUTPUTS: dict[int, Path] = {}  # pid -> the file its stdout went to


def start(deployment: Deployment, *args: str, **env: str) -> subprocess.Popen[str]:
    """A command in its own process; what it prints goes to files beside the database (a pipe nobody reads
    while it runs would fill up and block it), read back by :func:`finished` and :func:`logs`."""
    stem = deployment.db.parent / f"{args[0]}-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", *args],
        env={**os.environ, **deployment.env, **env, "PYTHONPATH": str(REPO / "src")},
        stdout=stem.with_suffix(".out").open("w"),
        stderr=stem.with_suffix(".log").open("w"),
        text=True,
        cwd=REPO,
    )
    OUTPUTS[process.pid] = stem.with_suffix(".out")
    return process


def logs(deployment: Deployment) -> str:
    files = sorted([*deployment.db.parent.glob("*.log"), *deployment.db.parent.glob("*.out")])
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in files)


def worker(deployment: Deployment, idle_exit: float = 20) -> subprocess.Popen[str]:
    return start(deployment, "worker", "--idle-exit", str(idle_exit), "--json")


def predict(deployment: Deployment, **env: str) -> subprocess.Popen[str]:
    return start(deployment, "predict", "--date", SLATE, "--db", str(deployment.db), "--json", **env)


def finished(process: subprocess.Popen[str], timeout: float, deployment: Deployment) -> dict[str, object]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{process.args} did not finish in {timeout} s:\n{logs(deployment)}") from None
    assert process.returncode == 0, logs(deployment)
    result: dict[str, object] = json.loads(OUTPUTS[process.pid].read_text())
    return result


def assert_cloud_invariants(backend: GcpBackend, batch_id: str, game_date: str = SLATE) -> None:
    """I1 terminal requests, I2/I7 every done request's rows and only those, I3 one active row per key,
    I5 latched once, I8 no staging left."""
    info = backend.ledger.get_batch(batch_id)
    assert info.consolidated_at is not None and info.state in ("complete", "partial")
    requests = backend.ledger.requests(batch_id)
    assert all(r["state"] in schema.TERMINAL_REQUEST_STATES for r in requests)
    rows = backend.warehouse.active_predictions(date.fromisoformat(game_date)).to_pylist()
    keys = Counter((r["game_id"], r["player_lookup"], r["market"], r["system_id"]) for r in rows)
    assert max(keys.values(), default=1) == 1
    mine = Counter(r["player_lookup"] for r in rows if r["batch_id"] == batch_id)
    done = {r["player_lookup"]: r for r in requests if r["state"] == "done"}
    assert set(mine) == set(done)
    attempts = {(r["player_lookup"], r["attempt"]) for r in rows if r["batch_id"] == batch_id}
    assert attempts == {(p, r["attempt"]) for p, r in done.items()}
    assert all(mine[p] == r["rows_staged"] for p, r in done.items())
    assert backend.warehouse.staging_tables() == []


def test_a_slate_runs_on_worker_processes_and_lands_once(deployment: Deployment) -> None:
    """The coordinator publishes, two `nbaprops worker` processes do the work, the coordinator consolidates."""
    coordinator = predict(deployment, NBAPROPS_WORKERS="0")
    backend = open_gcp(deployment.settings)
    try:
        wait_for(
            lambda: backend.ledger.list_batches(), timeout=300, interval=0.2
        )  # trained, uploaded, published
        workers = [worker(deployment) for _ in range(2)]
        summary = finished(coordinator, 600, deployment)
        assert summary["state"] == "complete", summary
        requests = summary["requests"]
        assert isinstance(requests, dict) and requests["done"] > 400 and requests["pending"] == 0
        assert summary["active_predictions"] == requests["done"]  # one system, one market
        assert summary["staging_tables_left"] == 0
        stats = [finished(w, 120, deployment) for w in workers]
        assert sum(int(s["committed"]) for s in stats) == requests["done"] + requests["skipped"]
        assert all(int(s["chunks"]) > 0 for s in stats), stats  # both workers took work
        assert_cloud_invariants(backend, str(summary["batch_id"]))
    finally:
        backend.close()
        if coordinator.poll() is None:
            coordinator.kill()


def test_a_worker_killed_mid_batch_loses_nothing(deployment: Deployment) -> None:
    """kill -9 of a worker holding leases: they expire, the coordinator's sweep publishes them again, another
    worker does them; every request ends once and the invariants hold."""
    fast_leases = {"NBAPROPS_LEASE_SECONDS": "8", "NBAPROPS_LEASE_GRACE_SECONDS": "0"}
    doomed = start(deployment, "worker", "--json", **fast_leases)
    coordinator = predict(deployment, NBAPROPS_WORKERS="0", **fast_leases)
    backend = open_gcp(deployment.settings)
    try:

        def leased_or_done() -> bool:
            batches = backend.ledger.list_batches()
            if not batches:
                return False
            counts = backend.ledger.progress(batches[0].batch_id)
            return counts["leased"] > 0 or counts["done"] > 0

        wait_for(leased_or_done, timeout=300, interval=0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        rescuer = worker(deployment, idle_exit=30)
        summary = finished(coordinator, 600, deployment)
        finished(rescuer, 180, deployment)
        assert summary["state"] == "complete", summary
        assert_cloud_invariants(backend, str(summary["batch_id"]))
        attempts = [r["attempt"] for r in backend.ledger.requests(str(summary["batch_id"]))]
        assert max(attempts) >= 2  # the killed worker's chunk was done again
    finally:
        backend.close()
        for process in (doomed, coordinator):
            if process.poll() is None:
                process.kill()
