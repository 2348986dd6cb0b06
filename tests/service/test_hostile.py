"""The service against hostile callers (issue 17, findings 2, 6, 7 and 9): web pages on other origins, DNS
rebinding, errors that would leak internals, a flood of batch submissions, open documentation, short keys.

Each test says in its docstring what the service did before it was fixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.conftest import (
    KEYS,
    SLATE,
    LiveServer,
    copy_db,
    service_settings,
    wait_batch,
    wait_for,
)
from typer.testing import CliRunner

from nbaprops.config import load_settings
from nbaprops.errors import ConfigError, ContractError
from nbaprops.service import runner as runner_module
from nbaprops.service.routers import batches as batches_router

LINES = (
    "game_date,player_name,market,line,bookmaker,over_price,under_price,posted_at\n"
    "2025-02-12,Jayson Tatum,points,27.5,EvilBook,-110,-110,2025-02-12T18:00:00Z\n"
)


@pytest.fixture(scope="module")
def keyless(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server without any API key: open to every caller on loopback, as ``nbaprops serve`` runs by default."""
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("keyless"))
    with LiveServer(service_settings(db, artifacts, api_keys=())) as server:
        yield server


def lines_count(server: LiveServer) -> int:
    return int(server.runtime.storage.scalar("SELECT count(*) FROM prop_lines"))


# -- finding 2: cross-site writes and DNS rebinding ---------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": "http://127.0.0.1:1"},  # another port of this machine is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_page_of_another_origin_cannot_write_to_a_keyless_server(
    keyless: LiveServer, headers: dict[str, str]
) -> None:
    """Before: a multipart upload with ``Origin: http://evil.example`` stored its rows (200), and form posts to
    /v1/check-stalled and /v1/cleanup-staging ran: any page the user visited could write to the service."""
    before = lines_count(keyless)
    with httpx.Client(base_url=keyless.url, headers=headers, timeout=30) as browser:
        upload = browser.post("/v1/ingest/lines", files={"files": ("l.csv", LINES, "text/csv")})
        stalled = browser.post("/v1/check-stalled", data={"stall_minutes": "0"})
        cleanup = browser.post("/v1/cleanup-staging", data={"dry_run": "false"})
        batch = browser.post("/v1/batches", content=b'{"game_date": "2025-02-12"}')
    for response in (upload, stalled, cleanup, batch):
        assert response.status_code == 403, response.text
        assert response.json()["kind"] == "Forbidden" and "cross-site" in response.json()["error"]
    assert lines_count(keyless) == before


def test_the_servers_own_pages_and_plain_clients_still_write(keyless: LiveServer) -> None:
    """What a browser sends from the server's own page (same origin), and what a script sends (no Origin)."""
    own = {"Origin": keyless.url, "Sec-Fetch-Site": "same-origin"}
    with httpx.Client(base_url=keyless.url, timeout=30) as client:
        assert client.post("/v1/check-stalled", headers=own).status_code == 200
        assert client.post("/v1/check-stalled").status_code == 200
        assert client.post("/v1/check-stalled", headers={"Sec-Fetch-Site": "none"}).status_code == 200
        localhost = {"Host": f"localhost:{keyless.port}", "Origin": f"http://localhost:{keyless.port}"}
        assert client.post("/v1/check-stalled", headers=localhost).status_code == 200
        # a GET from another origin is not a write (and the browser does not let the page read the answer)
        assert client.get("/v1/batches", headers={"Origin": "http://evil.example"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", ""])
def test_the_server_answers_only_its_own_host_names(keyless: LiveServer, host: str) -> None:
    """Before: any ``Host`` was answered, so a page whose name was rebound to 127.0.0.1 (DNS rebinding) read
    and wrote the service as its own origin."""
    before = lines_count(keyless)
    with httpx.Client(base_url=keyless.url, timeout=30) as client:
        headers = {"Host": host.format(port=keyless.port)}
        read = client.get("/v1/batches", headers=headers)
        write = client.post(
            "/v1/ingest/lines",
            headers={**headers, "Origin": f"http://{headers['Host']}"},
            files={"files": ("l.csv", LINES, "text/csv")},
        )
        for response in (read, write):
            assert response.status_code == 400 and response.json()["kind"] == "BadRequest", response.text
        for own in (f"127.0.0.1:{keyless.port}", f"localhost:{keyless.port}", f"[::1]:{keyless.port}"):
            assert client.get("/v1/batches", headers={"Host": own}).status_code == 200
    assert lines_count(keyless) == before


# -- finding 6: 500 bodies ------------------------------------------------------------------------------------
SECRET = "Binder Error: SELECT secret_col FROM player_prop_predictions WHERE path = '/home/alice/x.duckdb'"


@pytest.mark.parametrize("error", [RuntimeError(SECRET), ContractError(SECRET)])
def test_a_500_says_internal_error_and_a_request_id_the_log_carries(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    """Before: an nbaprops error without a status of its own (a storage or contract failure) was answered 500
    with its text: DuckDB's message with SQL, internal table names and stored values."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setitem(batches_router.OPERATIONS, "batches", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/v1/batches", params={"limit": 7 if isinstance(error, RuntimeError) else 8})
    assert response.status_code == 500
    body = response.json()
    request_id = body["request_id"]
    assert body == {
        "error": f"internal error; the server logged it (request {request_id})",
        "kind": "InternalError",
        "request_id": request_id,
    }
    assert response.headers["X-Request-ID"] == request_id
    for leaked in ("SELECT", "player_prop_predictions", "/home/alice", "secret"):
        assert leaked not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and SECRET in logged[0].getMessage()


# -- finding 7: a flood of POST /v1/batches ----------------------------------------------------------------------
NO_GAMES = [f"2024-07-{day:02d}" for day in range(1, 11)]  # summer: planning ends in 422, cheaply


@pytest.fixture
def planning_blocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every batch planned by the server waits until the event is set (released at the end in any case)."""
    release = threading.Event()
    plan_batch = runner_module.plan_batch

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return plan_batch(*args, **kwargs)

    monkeypatch.setattr(runner_module, "plan_batch", held)
    try:
        yield release
    finally:
        release.set()


def test_a_date_being_planned_answers_409_at_once(
    live: LiveServer, client: httpx.Client, planning_blocked: threading.Event
) -> None:
    """Before: every submission queued behind one global lock while the first planned its batch (50 clients:
    POST p50 11-14 s); now a second submission of the date is refused at once while the first plans."""
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/batches", json={"game_date": NO_GAMES[0]})
        wait = httpx.Client(base_url=live.url, headers={"X-API-Key": KEYS[0]}, timeout=10)
        with wait:
            second = None
            for _ in range(50):  # until the first holds the date
                second = wait.post("/v1/batches", json={"game_date": NO_GAMES[0]})
                if second.status_code == 409:
                    break
        assert second is not None and second.status_code == 409, second and second.text
        assert "being started" in second.json()["error"]
        planning_blocked.set()
        planned = first.result(60)
    assert planned.status_code == 422 and "no games" in planned.json()["error"], planned.text


def test_reads_never_wait_behind_writes_being_planned(
    live: LiveServer, client: httpx.Client, planning_blocked: threading.Event
) -> None:
    """Before: writes and reads shared one pool of 4 database threads, so 4 submissions being planned stalled
    every status read (status up to 18 s under a flood); now reads have their own threads."""
    dates = NO_GAMES  # more writes than any pool has threads
    with ThreadPoolExecutor(len(dates)) as pool:
        writes = [pool.submit(client.post, "/v1/batches", json={"game_date": d}) for d in dates]
        try:
            with httpx.Client(base_url=live.url, headers={"X-API-Key": KEYS[0]}, timeout=5) as reader:
                for path in ("/v1/batches?limit=3", "/health/ready", "/metrics", "/v1/batches?limit=4"):
                    assert reader.get(path).status_code == 200, path
        finally:
            planning_blocked.set()
        answered = [w.result(120) for w in writes]
    assert [r.status_code for r in answered] == [422] * len(dates)  # planned, then: no games


def test_a_repeat_with_nothing_new_returns_the_batch_that_stands_and_force_makes_a_new_one(
    client: httpx.Client,
) -> None:
    """Before: each POST after the batch ended created another one for the same date and inputs (10-12 batches
    of one date in 20 s under a flood); now a repeat answers 200 with the standing batch, as ``daily`` does."""
    first = client.post("/v1/batches", json={"game_date": SLATE})
    assert first.status_code == 202, first.text
    batch_id = first.json()["batch_id"]
    running = client.post("/v1/batches", json={"game_date": SLATE})
    if running.status_code == 409:  # still running: named
        assert running.json()["batch_id"] == batch_id
    wait_batch(client, batch_id)
    wait_for(lambda: client.get(f"/v1/batches/{batch_id}").json()["runner"]["phase"] == "finished", 30)
    for _ in range(3):
        again = client.post("/v1/batches", json={"game_date": SLATE})
        assert again.status_code == 200, again.text
        assert again.json()["batch_id"] == batch_id and again.json()["unchanged"] is True
        assert again.json()["created"] is False and again.json()["requests"] == first.json()["requests"]
    listed = client.get("/v1/batches", params={"date": SLATE}).json()["batches"]
    assert [b["batch_id"] for b in listed].count(batch_id) == 1 and len(listed) == 1
    forced = client.post("/v1/batches", json={"game_date": SLATE, "force": True})
    assert forced.status_code == 202 and forced.json()["batch_id"] != batch_id
    wait_batch(client, forced.json()["batch_id"])
    other = client.post("/v1/batches", json={"game_date": SLATE, "markets": ["rebounds"]})
    assert other.status_code == 202  # other options: another batch
    wait_batch(client, other.json()["batch_id"])


# -- finding 9: smaller holes -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def read_locked(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("read-auth"))
    with LiveServer(service_settings(db, artifacts, read_auth=True)) as server:
        yield server


@pytest.mark.parametrize(
    "path", ["/openapi.json", "/docs", "/static/app.css", "/docs-assets/swagger-ui.css", "/v1/batches"]
)
def test_read_auth_covers_the_documentation_and_static_files(read_locked: LiveServer, path: str) -> None:
    """Before: with ``read_auth`` set, /openapi.json, /docs and /static were still served without a key."""
    assert httpx.get(read_locked.url + path).status_code == 401
    assert httpx.get(read_locked.url + path, headers={"X-API-Key": KEYS[0]}).status_code == 200


def test_readiness_names_no_absolute_path(live: LiveServer) -> None:
    """Before: /health/ready (never behind a key) said ``/home/…/nbaprops.duckdb is open`` and where the
    models live."""
    response = httpx.get(f"{live.url}/health/ready")
    assert response.status_code == 200
    text = response.text
    assert str(live.settings.db_path.parent) not in text and str(live.settings.artifacts_dir) not in text
    assert "/" not in "".join(check["detail"] for check in response.json()["checks"].values())
    assert response.json()["checks"]["database"]["detail"] == "nbaprops.duckdb is open"


@pytest.mark.parametrize("keys", ["k", "good-key-0123456789,short", "fifteen-chars-x"])
def test_a_short_api_key_is_refused_when_settings_load(keys: str) -> None:
    """Before: a 1-character key was accepted (and a guessable key is no key)."""
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        load_settings(environ={"NBAPROPS_API_KEYS": keys}, config_file=None)
    assert load_settings(environ={"NBAPROPS_API_KEYS": "sixteen-chars-xy"}, config_file=None).api_keys


def test_serve_with_a_short_key_says_one_line(tmp_path: Path) -> None:
    from nbaprops.cli import app

    result = CliRunner().invoke(
        app, ["serve", "--db", str(tmp_path / "x.duckdb")], env={"NBAPROPS_API_KEYS": "abc"}
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: api_keys: key 1 is shorter than 16 characters")
    assert "abc" not in result.stderr  # a key is never shown
    assert not (tmp_path / "x.duckdb").exists()


def test_an_upload_is_ingested_under_a_memory_bound(
    client: httpx.Client, live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ingested with DuckDB's default limit (80% of RAM): a 52 MB upload of 1M rows raised the server's
    memory by 1.1 GB and kept it. Now the ingest runs under a bound (DuckDB spills past it) that is lifted after
    (benchmarks/upload_memory.py measures the peak). The bound is the loader's, so it is watched from inside."""
    import nbaprops.ingest.lines

    storage = live.runtime.storage
    before = storage.scalar("SELECT current_setting('memory_limit')")
    seen: list[str] = []
    check = nbaprops.ingest.lines._check

    def watched(*args: Any, **kwargs: Any) -> None:
        seen.append(str(storage.scalar("SELECT current_setting('memory_limit')")))
        check(*args, **kwargs)

    monkeypatch.setattr(nbaprops.ingest.lines, "_check", watched)
    response = client.post("/v1/ingest/lines", files={"files": ("l.csv", LINES, "text/csv")})
    assert response.status_code == 200, response.text
    number, unit = seen[0].split()
    assert unit in ("MiB", "MB", "KiB") and float(number) <= 256, seen
    assert storage.scalar("SELECT current_setting('memory_limit')") == before
