"""Fixtures of the service tests: a real server (uvicorn on a loopback port, in a thread of the test process or
as a separate ``nbaprops serve`` process) over a private copy of the loaded database.

Batches use the ``moving_average`` system on 60 days of training, and the models trained for a date are shared
by every test of the session (one artifacts folder), so a slate costs about a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from nbaprops.config import Settings
from nbaprops.service.app import create_app
from nbaprops.service.runtime import Runtime
from nbaprops.service.server import Server

REPO = Path(__file__).resolve().parents[2]
KEYS = ("first-key-3f9a1c7e5b", "second-key-8d2e6b4a0c")
SLATE = "2025-02-12"  # 15 games, about 470 players


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifacts folder for the session: a date's model is trained once."""
    return tmp_path_factory.mktemp("artifacts")


def service_settings(db: Path, artifacts: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_path": db,
        "data_dir": artifacts,
        "systems": ("moving_average",),
        "markets": ("points",),
        "train_days": 60,
        "api_keys": KEYS,
        "upload_limit_mb": 1.0,
        # Tests poll as fast as they like; tests/service/test_reads.py sets the limit it checks.
        "poll_interval_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


def copy_db(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nbaprops.duckdb"
    shutil.copyfile(source, path)
    return path


class LiveServer:
    """The app served by uvicorn on a loopback port from a thread of this process, as ``nbaprops serve`` serves it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = Server(config, self.runtime)  # serve's own: it records its URL for other commands
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.runtime.draining.set()
        self.server.should_exit = True
        self.thread.join(30)


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_batch(client: httpx.Client, batch_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """The batch once it is consolidated and, when this server runs it, its run has ended (the ledger says
    ``complete`` a moment before the runner says ``finished``: under load a test read between the two)."""

    def done() -> dict[str, Any] | None:
        response = client.get(f"/v1/batches/{batch_id}")
        if response.status_code == 429:  # a server with the polling limit on: not yet
            return None
        body: dict[str, Any] = response.json()
        running = (body.get("runner") or {}).get("phase") in ("training", "running")
        return body if body["consolidated_at"] and not running else None

    return dict(wait_for(done, timeout))


@pytest.fixture(scope="module")
def live(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server over a private copy of the loaded database, shared by the tests of one module."""
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("live"))
    with LiveServer(service_settings(db, artifacts)) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live server sending the first API key."""
    with httpx.Client(base_url=live.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous(live: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live server without a key."""
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


class ServeProcess:
    """``nbaprops serve`` as a separate process (for kills, signals and other processes' reads)."""

    def __init__(self, db: Path, artifacts: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
            "NBAPROPS_DATA_DIR": str(artifacts),
            "NBAPROPS_SYSTEMS": "moving_average",
            "NBAPROPS_TRAIN_DAYS": "60",
            "NBAPROPS_API_KEYS": ",".join(KEYS),
            "NBAPROPS_POLL_INTERVAL_SECONDS": "0",
            **(env or {}),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.log = db.parent / f"serve-{self.port}.log"  # a file, not a pipe nobody reads: it cannot fill up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nbaprops.cli", "serve", "--db", str(self.db), "--port", str(self.port)],
            env=self.env,
            cwd=self.db.parent,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, interval=0.1)
        return self

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": KEYS[0]}, timeout=60)

    def signal(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
