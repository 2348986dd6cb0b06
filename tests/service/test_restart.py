"""A server killed or stopped in the middle of a batch: the ledger is the truth, the next start resumes it."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.pipeline.helpers import assert_invariants
from tests.service.conftest import SLATE, ServeProcess, copy_db, wait_batch, wait_for

from nbaprops.holder import endpoint_file
from nbaprops.pipeline import ledger
from nbaprops.storage import open_storage

# One worker claiming 2 requests at a time: the slate takes a few seconds, so it can be stopped midway.
SLOW = {"NBAPROPS_CHUNK_SIZE": "2", "NBAPROPS_WORKERS": "1"}


def progress(server: ServeProcess, batch_id: str) -> dict[str, int]:
    with server.client() as client:
        return dict(client.get(f"/v1/batches/{batch_id}").json()["requests"])


def wait_midway(server: ServeProcess, batch_id: str, at_least: int) -> int:
    """Wait until ``at_least`` requests ended while many are still open; returns how many ended."""

    def midway() -> int:
        counts = progress(server, batch_id)
        assert counts["pending"] + counts["leased"] > 0, "the batch ended before it could be stopped"
        ended = counts["done"] + counts["skipped"]
        return ended if ended >= at_least else 0

    return int(wait_for(midway, timeout=120, interval=0.05))


def test_a_batch_survives_a_kill_and_a_sigterm_and_completes_at_a_later_start(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path
) -> None:
    db = copy_db(loaded_db_file, tmp_path)
    server = ServeProcess(db, artifacts, env=SLOW).start()
    with server.client() as client:
        batch_id = str(client.post("/v1/batches", json={"game_date": SLATE}).json()["batch_id"])
    killed_at = wait_midway(server, batch_id, 20)
    assert server.signal(signal.SIGKILL) == -signal.SIGKILL  # no cleanup at all: leases held, record left
    assert endpoint_file(db).exists()

    # Restarted: the running batch resumes at once (the dead process's leases are released, not waited for).
    server = ServeProcess(db, artifacts, env=SLOW).start()
    stopped_at = wait_midway(server, batch_id, killed_at + 20)
    # SIGTERM: stop claiming, commit the current chunk, give back leases, close. uvicorn re-raises the signal
    # once it stopped cleanly, so the exit status says SIGTERM (143 in a shell).
    assert server.signal(signal.SIGTERM) == -signal.SIGTERM
    assert "stopped; the database is closed" in server.output()
    assert not endpoint_file(db).exists()
    storage = open_storage(db)  # the file is free
    try:
        counts = ledger.progress(storage, batch_id)
        assert (
            counts["leased"] == 0
            and counts["pending"] > 0
            and counts["done"] + counts["skipped"] >= stopped_at
        )
        assert ledger.get_batch(storage, batch_id).state == "running"
    finally:
        storage.close()

    server = ServeProcess(db, artifacts).start()
    try:
        with server.client() as client:
            final = wait_batch(client, batch_id)
        assert final["state"] == "complete" and final["runner"]["phase"] == "finished"
        assert final["requests"]["pending"] == final["requests"]["leased"] == final["requests"]["failed"] == 0
    finally:
        server.stop()
    storage = open_storage(db)
    try:
        assert_invariants(storage, batch_id)
    finally:
        storage.close()
