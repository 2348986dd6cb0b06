"""Disk full is a state, not a mystery (issue 17, finding 5).

A full disk is made with a file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored so writes fail with EFBIG): a
limit below the database file's size lets the WAL grow only that far, so a commit fails midway through a batch
exactly as on a full disk (DuckDB: "Could not write file …: File too large"); lifting it is freeing space. The
limit is set in this process for the span of a ``with`` (the CLI and the server run here, so each test costs
no interpreter start), or in a subprocess where DuckDB must invalidate the database. Each test names what
happened before.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.pipeline.helpers import assert_invariants
from tests.service.conftest import SLATE, LiveServer, copy_db, service_settings, wait_batch, wait_for
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.holder import endpoint_file
from nbaprops.pipeline import ledger, owner
from nbaprops.storage import open_storage

# The slate of the other service tests (its models are trained once per session); its batch writes about
# 600 kB of WAL, so it stops midway.
WAL_ROOM = 300_000


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """No file written by this process grows past ``limit`` bytes while the block runs (writes fail EFBIG)."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_predict_on_a_full_disk_says_so_in_one_line_and_the_same_command_resumes(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``Error: database busy, try again: TransactionContext Error: Failed to commit: Could not write file
    "/…/nbaprops.duckdb.wal": File too large (in: COMMIT)`` after two worker tracebacks — a full disk passed for a
    lock, with the path and the SQL in the message."""
    db = copy_db(loaded_db_file, tmp_path)
    env = {
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": "moving_average",
        "NBAPROPS_TRAIN_DAYS": "60",
        "NBAPROPS_MARKETS": "points",
    }
    predict = ["predict", "--date", SLATE, "--db", str(db)]
    with file_size_limit(WAL_ROOM):
        full = CliRunner().invoke(app, predict, env=env)
    assert full.exit_code == 1, full.output
    errors = [line for line in full.stderr.splitlines() if line.startswith("Error: ")]
    assert "Traceback" not in full.stderr and len(errors) == 1, full.stderr
    assert errors[0].startswith("Error: the disk holding the database is full (File too large)")
    assert "free space, then run the same command again" in errors[0]
    assert str(tmp_path) not in errors[0] and "COMMIT" not in errors[0]

    with open_storage(db) as storage:  # what is stored: the batch, still running, no request ended failed
        [info] = ledger.list_batches(storage)
        assert info.state == "running"
        counts = ledger.progress(storage, info.batch_id)
        assert counts["failed"] == 0 and counts["pending"] + counts["leased"] > 0, counts

    # Space freed, the same command: in a new process, whose lease owner differs (here: a new owner token),
    # so it takes back at once the leases the stopped run could not give back on the full disk.
    monkeypatch.setattr(owner, "_PROCESS_OWNER", None)
    result = CliRunner().invoke(app, [*predict, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["batch_id"] == info.batch_id and summary["state"] == "complete"
    with open_storage(db) as storage:
        assert_invariants(storage, info.batch_id)


def test_serve_on_a_full_disk_turns_not_ready_ends_the_run_and_a_restart_resumes(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the batch's commit was "database busy, try again" (retried, then the runner said ``failed`` with
    kind ``StorageBusyError`` and the WAL's path in the message) while ``/health/ready`` kept answering 200."""
    db = copy_db(loaded_db_file, tmp_path)
    settings = service_settings(db, artifacts, api_keys=(), markets=("points",))
    with (
        file_size_limit(WAL_ROOM),
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        batch_id = str(client.post("/v1/batches", json={"game_date": SLATE}).json()["batch_id"])

        def ended() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"/v1/batches/{batch_id}").json()
            return body if body["runner"]["phase"] not in ("training", "running") else None

        detail = wait_for(ended, timeout=120)
        assert detail["runner"]["phase"] == "failed", detail["runner"]
        assert detail["runner"]["error"]["kind"] == "StorageFullError"
        assert "free space" in detail["runner"]["error"]["error"]
        assert detail["state"] == "running"  # resumable: the ledger keeps every finished request
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and not ready.json()["ready"]
        storage_check = ready.json()["checks"]["storage"]
        assert not storage_check["ok"] and "disk holding the database is full" in storage_check["detail"]
    assert not endpoint_file(db).exists()  # stopped with the disk still full: the record is gone

    # Space freed: the next start resumes the batch. A restart is a new process, whose lease owner differs
    # (here: a new owner token), so it takes back at once the leases the full disk kept it from giving back.
    monkeypatch.setattr(owner, "_PROCESS_OWNER", None)
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        final = wait_batch(client, batch_id)
        assert client.get("/health/ready").status_code == 200
    assert final["state"] == "complete" and final["requests"]["failed"] == 0
    with open_storage(db) as storage:
        assert_invariants(storage, batch_id)


SCHEDULE = "game_date,home_team,away_team\n2025-04-20,BOS,NYK\n2025-04-20,LAL,DEN\n"


def test_serve_whose_database_duckdb_invalidated_says_so_not_ready_and_stops_cleanly(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Before: an ingest whose checkpoint found the disk full answered 500 (``TerminalError``, DuckDB's text with
    the file's path), every later request 500 ("database has been invalidated because of a previous fatal
    error"), readiness gave no reason of its own, and the stop failed ("Application shutdown failed": the lease
    release raised) before removing the endpoint record."""
    db = copy_db(loaded_db_file, tmp_path)
    settings = service_settings(db, artifacts, api_keys=())
    with file_size_limit(db.stat().st_size), LiveServer(settings) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            # The next commit checkpoints, and the database file cannot grow: DuckDB invalidates the database.
            server.runtime.storage.execute("SET checkpoint_threshold = '1KB'")
            upload = client.post(
                "/v1/ingest/schedule", files={"files": ("playoffs.csv", SCHEDULE, "text/csv")}
            )
            later = client.get("/v1/batches")
            ready = client.get("/health/ready")
        for response in (upload, later):
            assert response.status_code == 507 and response.json()["kind"] == "StorageFullError", (
                response.text
            )
            assert (
                "restart `nbaprops serve`" in response.json()["error"] and str(tmp_path) not in response.text
            )
        assert ready.status_code == 503 and not ready.json()["checks"]["storage"]["ok"]
    assert not endpoint_file(db).exists()
    with open_storage(db) as storage:  # space freed: the file opens, the upload landed whole or not at all
        assert storage.scalar("SELECT count(*) FROM schedule WHERE game_date = DATE '2025-04-20'") in (0, 2)


# Run the rest of the command line under a file-size limit (argv[1] bytes), SIGXFSZ ignored (it survives exec).
LIMITED = (
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1])); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)
INVALIDATE = """
import sys
from pathlib import Path
from nbaprops.errors import NbapropsError
from nbaprops.storage import open_storage

storage = open_storage(Path(sys.argv[1]))
storage.execute("CREATE TABLE marker AS SELECT 42 AS answer")  # committed (to the WAL) before the disk fills
storage.execute("SET checkpoint_threshold = '1KB'")  # every commit checkpoints, and the file cannot grow
for sql in (
    "CREATE TABLE kept AS SELECT range AS n FROM range(50000)",
    "INSERT INTO kept SELECT range FROM range(50000)",
    "SELECT count(*) FROM kept",
):
    try:
        storage.execute(sql)
    except NbapropsError as exc:
        kind = type(exc).__name__
        print(sql.split()[0], kind, getattr(exc, "invalidated", None), getattr(storage, "failure", None) is exc, exc)
"""


def test_a_database_duckdb_invalidated_on_a_full_disk_is_a_storage_full_error_and_loses_nothing(
    loaded_db_file: Path, tmp_path: Path
) -> None:
    """Before: ``database error: FATAL Error: … the autocheckpoint failed … Could not write file "/…": File too
    large``, then on every later statement ``database has been invalidated because of a previous fatal error``,
    both plain :class:`TerminalError` (an HTTP 500), naming the file."""
    db = copy_db(loaded_db_file, tmp_path)
    with open_storage(db) as storage:
        box_scores = storage.scalar("SELECT count(*) FROM box_scores")
        storage.execute("CHECKPOINT")
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, str(db.stat().st_size), "-c", INVALIDATE, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    lines = proc.stdout.splitlines()
    # The commit that could not checkpoint, then every statement after it: the same error, the first one kept.
    assert [line.split()[:4] for line in lines] == [
        ["CREATE", "StorageFullError", "True", "True"],
        ["INSERT", "StorageFullError", "True", "False"],
        ["SELECT", "StorageFullError", "True", "False"],
    ], (proc.stdout, proc.stderr)
    assert all("restart `nbaprops serve`" in line and str(tmp_path) not in line for line in lines)
    with open_storage(db) as storage:  # without the limit: what was committed is there, nothing half-written
        assert storage.scalar("SELECT answer FROM marker") == 42
        assert storage.scalar("SELECT count(*) FROM box_scores") == box_scores
        kept = storage.table_columns("kept") and storage.scalar("SELECT count(*) FROM kept")
        assert kept in ({}, 50_000, 100_000), kept
