"""Fixtures and helpers of the end-to-end tests on the GCP backend: the three emulators, a deployment of our own,
commands run as processes, and the invariants every test ends with.

Every cloud test runs with clients that refuse to create topics, subscriptions, datasets and set-up tables (in
this process and in every command process :func:`start` runs: ``tests/cloud/refusing.py``), as real Google Cloud
does for the roles docs/cloud.md grants; the ``deployment`` fixture creates them first with ``nbaprops gcp
setup``'s function, as an administrator."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.cloud.refusing import creation_allowed, refusing_creation
from tests.emulators.bigquery import BigQueryEmulator, bigquery_emulator
from tests.emulators.google import firestore_emulator, pubsub_emulator
from tests.service.conftest import REPO

from nbaprops import schema
from nbaprops.config import Settings, load_settings
from nbaprops.storage.gcp.backend import GcpBackend
from nbaprops.storage.gcp.queue import Redelivery

__all__ = ["bigquery_emulator", "firestore_emulator", "pubsub_emulator"]

OUTPUTS: dict[int, Path] = {}  # pid -> the file its stdout went to
# The workers' subscription's retry policy in tests: redeliveries spaced like production's (10-600 s), in
# fractions of a second (on the emulator the second delivery comes at once, the later ones after the maximum).
FAST_REDELIVERY = Redelivery(minimum_backoff_s=0.2, maximum_backoff_s=0.6)
SMALL_SLATE = "2025-01-26"  # one game, 31 players: the slate of the fault tests (SLATE has 15 games, ~470)


@dataclass
class Deployment:
    """One test's own GCP deployment on the shared emulators (its own dataset, topic and collections)."""

    env: dict[str, str]
    db: Path

    @property
    def settings(self) -> Settings:
        environ = {**os.environ, **self.env}
        return load_settings({"db_path": self.db}, environ=environ)


@pytest.fixture(scope="session")
def cloud_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models shared by the cloud tests (trained once per date, by the first coordinator)."""
    return tmp_path_factory.mktemp("cloud-artifacts")


@pytest.fixture(autouse=True)
def refuse_creation() -> Iterator[list[str]]:
    """Clients that refuse creation for the whole test (yields what was refused)."""
    with refusing_creation() as refused:
        yield refused


@pytest.fixture
def bare_deployment(
    refuse_creation: list[str],
    pubsub_emulator: str,
    firestore_emulator: str,
    bigquery_emulator: BigQueryEmulator,
    loaded_db_file: Path,
    cloud_artifacts: Path,
    tmp_path: Path,
) -> Iterator[Deployment]:
    suffix = uuid.uuid4().hex[:10]
    db = tmp_path / "inputs.duckdb"
    shutil.copyfile(loaded_db_file, db)
    with _dataset_dropped(bigquery_emulator, f"t_{suffix}"):
        yield _deployment(bigquery_emulator, pubsub_emulator, firestore_emulator, cloud_artifacts, suffix, db)


@contextlib.contextmanager
def _dataset_dropped(emulator: BigQueryEmulator, dataset: str) -> Iterator[None]:
    """Drop the test's BigQuery dataset after it: the emulator looks every table up in its whole catalog, so each
    dataset left behind slowed every later request of the session (two thirds of the emulator's CPU was those
    lookups by the end of a run)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    try:
        yield
    finally:
        client = bigquery.Client(
            project=emulator.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.endpoint),
        )
        try:
            client.delete_dataset(dataset, delete_contents=True, not_found_ok=True, timeout=60)
        finally:
            client.close()


def _deployment(
    bigquery_emulator: BigQueryEmulator,
    pubsub_emulator: str,
    firestore_emulator: str,
    cloud_artifacts: Path,
    suffix: str,
    db: Path,
) -> Deployment:
    return Deployment(
        {
            "NBAPROPS_BACKEND": "gcp",
            "NBAPROPS_GCP_PROJECT": bigquery_emulator.project,
            "NBAPROPS_BIGQUERY_ENDPOINT": bigquery_emulator.endpoint,
            "NBAPROPS_BIGQUERY_READ_ENDPOINT": bigquery_emulator.read_endpoint,
            "NBAPROPS_BIGQUERY_DATASET": f"t_{suffix}",
            "NBAPROPS_FIRESTORE_PREFIX": f"t{suffix}",
            "NBAPROPS_PUBSUB_TOPIC": f"work-{suffix}",
            "PUBSUB_EMULATOR_HOST": pubsub_emulator,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator,
            "NBAPROPS_SYSTEMS": "moving_average",
            "NBAPROPS_MARKETS": "points",
            "NBAPROPS_TRAIN_DAYS": "60",
            "NBAPROPS_DATA_DIR": str(cloud_artifacts),
            "NBAPROPS_CHUNK_SIZE": "32",
        },
        db,
    )


@pytest.fixture
def deployment(bare_deployment: Deployment) -> Deployment:
    """A deployment whose resources ``nbaprops gcp setup`` created (as an account allowed to), its retry policy
    :data:`FAST_REDELIVERY`."""
    with creation_allowed():
        backend = GcpBackend(bare_deployment.settings)
        backend.redelivery = FAST_REDELIVERY
        try:
            backend.setup()
        finally:
            backend.close()
    return bare_deployment


# -- commands as processes ---------------------------------------------------------------------------


def start(deployment: Deployment, *args: str, **env: str) -> subprocess.Popen[str]:
    """A command in its own process; what it prints goes to files beside the database (a pipe nobody reads
    while it runs would fill up and block it), read back by :func:`finished` and :func:`logs`. Its clients refuse
    to create resources (``tests/cloud/refusing.py``)."""
    stem = deployment.db.parent / f"{args[0]}-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.cloud.refusing", *args],
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


def worker(deployment: Deployment, idle_exit: float = 20, **env: str) -> subprocess.Popen[str]:
    """``nbaprops worker`` until ``idle_exit`` seconds without a message."""
    return start(deployment, "worker", "--idle-exit", str(idle_exit), "--json", **env)


def predict(deployment: Deployment, game_date: str, **env: str) -> subprocess.Popen[str]:
    """``nbaprops predict`` (the coordinator) of ``game_date`` on the deployment's inputs file."""
    return start(deployment, "predict", "--date", game_date, "--db", str(deployment.db), "--json", **env)


def finished(process: subprocess.Popen[str], timeout: float, deployment: Deployment) -> dict[str, object]:
    """The JSON a command printed, once it exited 0 (fails with every log otherwise)."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{process.args} did not finish in {timeout} s:\n{logs(deployment)}") from None
    assert process.returncode == 0, logs(deployment)
    result: dict[str, object] = json.loads(OUTPUTS[process.pid].read_text())
    return result


def stopped(process: subprocess.Popen[str], deployment: Deployment) -> dict[str, object]:
    """Stop an ``nbaprops worker`` as its operator does (SIGTERM: it finishes its chunk, prints its stats)."""
    process.send_signal(signal.SIGTERM)
    return finished(process, 60, deployment)


# -- invariants ----------------------------------------------------------------------------------------


def assert_cloud_invariants(backend: GcpBackend, batch_id: str) -> None:
    """I1 terminal requests, I2/I7 every done request's rows at its attempt and only those, I3 one active row
    per key, I5 latched once, I8 no staging left."""
    info = backend.ledger.get_batch(batch_id)
    assert info.consolidated_at is not None and info.state in ("complete", "partial")
    requests = backend.ledger.requests(batch_id)
    assert all(r["state"] in schema.TERMINAL_REQUEST_STATES for r in requests)
    rows = backend.warehouse.active_predictions(info.game_date).to_pylist()
    keys = Counter((r["game_id"], r["player_lookup"], r["market"], r["system_id"]) for r in rows)
    assert max(keys.values(), default=1) == 1
    mine = Counter(r["player_lookup"] for r in rows if r["batch_id"] == batch_id)
    done = {r["player_lookup"]: r for r in requests if r["state"] == "done"}
    assert set(mine) == set(done)
    attempts = {(r["player_lookup"], r["attempt"]) for r in rows if r["batch_id"] == batch_id}
    assert attempts == {(p, r["attempt"]) for p, r in done.items()}
    assert all(mine[p] == r["rows_staged"] for p, r in done.items())
    assert backend.warehouse.staging_tables() == []
