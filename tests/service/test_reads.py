"""Reads never slow the work (issue 21, part 3): a client polling faster than ``poll_interval_seconds`` gets a
polite 429 with ``Retry-After``, status comes from the snapshot the batch's own work keeps, and the dashboard
never asks faster than the limit."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.conftest import KEYS, SLATE, LiveServer, copy_db, service_settings, wait_for

from nbaprops.pipeline import ledger

INTERVAL = 1.0
STATIC = Path(__file__).resolve().parents[2] / "src" / "nbaprops" / "service" / "static"


@pytest.fixture(scope="module")
def limited(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with the polling limit on, as ``nbaprops serve`` runs by default."""
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("limited"))
    with LiveServer(service_settings(db, artifacts, poll_interval_seconds=INTERVAL)) as server:
        yield server


def polite_get(client: httpx.Client, path: str, **options: Any) -> httpx.Response:
    """GET ``path``, waiting as long as a 429's ``Retry-After`` says."""
    while True:
        response = client.get(path, **options)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers["Retry-After"]))


def test_a_fast_poller_gets_429_with_retry_after_in_the_error_shape(limited: LiveServer) -> None:
    with httpx.Client(base_url=limited.url, timeout=30) as client:
        assert client.get("/v1/batches").status_code == 200
        refused = client.get("/v1/batches")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    body = refused.json()
    assert body["kind"] == "TooManyRequests"
    assert "poll_interval_seconds" in body["error"] and set(body) == {"error", "kind"}
    assert refused.headers["X-Request-ID"]  # observed like every response


def test_a_polite_poller_is_never_refused(limited: LiveServer) -> None:
    statuses = []
    with httpx.Client(base_url=limited.url, timeout=30) as client:
        for _ in range(4):
            statuses.append(client.get("/v1/batches", params={"limit": 3}).status_code)
            time.sleep(INTERVAL + 0.05)
    assert statuses == [200] * 4


def test_the_limit_is_per_client_and_url_and_only_on_v1_reads(limited: LiveServer) -> None:
    with (
        httpx.Client(base_url=limited.url, timeout=30) as anonymous,
        httpx.Client(base_url=limited.url, headers={"X-API-Key": KEYS[0]}, timeout=30) as first,
        httpx.Client(base_url=limited.url, headers={"X-API-Key": KEYS[1]}, timeout=30) as second,
    ):
        for _ in range(3):  # probes and pages are never limited
            assert anonymous.get("/health").status_code == 200
            assert anonymous.get("/").status_code == 200
        assert anonymous.get("/v1/batches", params={"limit": 7}).status_code == 200
        # an unknown key is no identity: it shares its address's budget (asked at once, so the budget of
        # INTERVAL cannot have come back even on a loaded machine)
        spoofed = anonymous.get("/v1/batches", params={"limit": 7}, headers={"X-API-Key": "x" * 24})
        assert spoofed.status_code == 429
        # another URL, another client (a configured key): their own budgets
        assert anonymous.get("/v1/batches", params={"limit": 8}).status_code == 200
        assert first.get("/v1/batches", params={"limit": 7}).status_code == 200
        assert second.get("/v1/batches", params={"limit": 7}).status_code == 200


def test_the_snapshot_equals_the_ledger_at_the_end_of_a_real_slate(limited: LiveServer) -> None:
    rt = limited.runtime
    with httpx.Client(base_url=limited.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client:
        started = client.post("/v1/batches", json={"game_date": SLATE, "force": True})
        assert started.status_code == 202, started.text
        batch_id = started.json()["batch_id"]
        versions = {rt.version_of(batch_id)}

        def finished() -> dict[str, Any] | None:
            versions.add(rt.version_of(batch_id))
            body: dict[str, Any] = polite_get(client, f"/v1/batches/{batch_id}").json()
            return body if (body["runner"] or {}).get("phase") == "finished" else None

        detail = wait_for(finished, timeout=120, interval=INTERVAL)
        with client.stream("GET", f"/v1/batches/{batch_id}/events") as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
    job = rt.runner.job(batch_id)
    assert job is not None
    snapshot = job.progress()
    assert snapshot is not None and snapshot["consolidated"] and snapshot["phase"] == "finished"
    counts = ledger.progress(rt.backend, batch_id)
    assert snapshot["requests"] == counts == detail["requests"]
    assert sum(counts.values()) == started.json()["requests"] and counts["pending"] == counts["leased"] == 0
    assert snapshot["state"] == detail["state"] == ledger.get_batch(rt.backend, batch_id).state
    assert json.loads(events[-1][6:])["requests"] == counts  # the stream ends on the same counts
    assert len(versions) > 1  # the work moved the version as it went (reads were refreshed by it)


def test_the_dashboard_never_asks_faster_than_the_limit(limited: LiveServer) -> None:
    script = (STATIC / "app.js").read_text()
    # The dashboard reads /v1 only through event streams: no timer, fetch or XHR polling anything.
    assert not re.search(r"setInterval|fetch\(|XMLHttpRequest", script)
    assert re.findall(r"new EventSource\(([^)]*)\)", script) == ["el.dataset.events"]
    with httpx.Client(base_url=limited.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client:
        standing = ledger.list_batches(limited.runtime.backend, limit=1)
        batch_id = (
            standing[0].batch_id
            if standing
            else client.post("/v1/batches", json={"game_date": SLATE}).json()["batch_id"]
        )
        with client.stream("GET", f"/v1/batches/{batch_id}/events") as stream:
            first = next(stream.iter_lines())
    # A lost stream is reopened by the browser after ``retry`` ms: never sooner than the limit.
    assert first.startswith("retry: ") and int(first.split()[1]) >= INTERVAL * 1000
