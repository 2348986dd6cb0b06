"""The gcloud SDK's Pub/Sub and Firestore emulators as session-scoped pytest fixtures.

Each fixture starts its emulator once per test session as a background process on a free loopback port, waits
until it answers, exports the standard ``*_EMULATOR_HOST`` variable (the Google clients read it themselves)
and returns that ``host:port``; at the end of the session the process is stopped by its PID, never by name.
The recipe and its traps are in ``../shared/emulators.md``. Where gcloud, the emulator's jar or Java is absent
the tests that use a fixture skip, saying which one is missing.

Use them by importing the fixtures into a test module::

    from tests.emulators.google import firestore_emulator, pubsub_emulator  # noqa: F401

Tests share one emulator, so each test works in its own project id (:func:`unique_project`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0


def unique_project(prefix: str = "test") -> str:
    """A project id no other test uses (the emulators keep one database per project)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@functools.cache
def gcloud_info(*fields: str) -> list[str] | None:
    """The values of ``gcloud info``'s ``fields`` (e.g. ``installation.sdk_root``), or None without gcloud."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", f"--format=value({','.join(fields)})"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if len(out) == len(fields) else None


def _sdk_root() -> Path | None:
    info = gcloud_info("installation.sdk_root")
    return Path(info[0]) if info else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(kind: str, port: int) -> list[str]:
    """The emulator's command line, or skip the test saying what is missing."""
    java = shutil.which("java")
    if java is None:
        pytest.skip(f"the {kind} emulator needs Java on PATH")
    sdk = _sdk_root()
    if sdk is None:
        pytest.skip(f"the {kind} emulator needs the gcloud SDK (`gcloud` not found or `gcloud info` failed)")
    if kind == "pubsub":
        jars = sorted((sdk / "platform" / "pubsub-emulator" / "lib").glob("cloud-pubsub-emulator-*-all.jar"))
        if not jars:
            pytest.skip(
                f"no Pub/Sub emulator jar under {sdk}/platform/pubsub-emulator (google-cloud-cli-pubsub-emulator)"
            )
        return [java, "-jar", str(jars[-1]), "--host=127.0.0.1", f"--port={port}"]
    jar = sdk / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
    if not jar.exists():
        pytest.skip(f"no Firestore emulator jar at {jar} (google-cloud-cli-firestore-emulator)")
    # `java -jar` does not work on this jar; the main class is named instead (emulators.md).
    return [
        java,
        "-Duser.language=en",
        "-cp",
        str(jar),
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--websocket_port={_free_port()}",
    ]


def _answers(host: str) -> bool:
    """Both emulators answer ``GET /`` with ``Ok`` once they serve requests."""
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def _running(kind: str, env_var: str, log_dir: Path) -> Iterator[str]:
    port = _free_port()
    command = _command(kind, port)
    host = f"127.0.0.1:{port}"
    log_path = log_dir / f"{kind}-emulator.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        while not _answers(host):
            if process.poll() is not None:
                pytest.fail(f"the {kind} emulator exited with {process.returncode}; see {log_path}")
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(
                    f"the {kind} emulator did not answer on {host} in {START_TIMEOUT_S:.0f} s; see {log_path}"
                )
            time.sleep(0.1)
        startup_s = time.monotonic() - started
        (log_dir / f"{kind}-startup.txt").write_text(f"{startup_s:.2f}\n")
        previous = os.environ.get(env_var)
        os.environ[env_var] = host
        try:
            yield host
        finally:
            if previous is None:
                os.environ.pop(env_var, None)
            else:
                os.environ[env_var] = previous
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Pub/Sub emulator (``PUBSUB_EMULATOR_HOST`` is set while it runs)."""
    with _running("pubsub", "PUBSUB_EMULATOR_HOST", tmp_path_factory.mktemp("pubsub-emulator")) as host:
        yield host


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Firestore emulator (``FIRESTORE_EMULATOR_HOST`` is set while it runs)."""
    with _running(
        "firestore", "FIRESTORE_EMULATOR_HOST", tmp_path_factory.mktemp("firestore-emulator")
    ) as host:
        yield host
