"""The BigQuery emulator (``local-bigquery``) for the cloud tests, started once per test session.

``local-bigquery`` 0.4.0 needs Python >= 3.13 and DuckDB 1.5.5 with its extension wheels (DuckDB 2.x would
download extensions at run time, which fails offline), so it lives in its own virtualenv, built here from the
package registry and cached per user under ``$XDG_CACHE_HOME/nbaprops/emulators/`` (``~/.cache`` by default),
so every clone on a machine shares one build (``../shared/emulators.md`` has the measured recipe). A lock file keeps two sessions from building it at once; a ``.ready`` marker says the
build finished. The server gets free loopback ports, its own ``--data-dir`` and is stopped by its PID.

Where Python 3.13 is absent or the build fails (no registry), the tests that need the emulator skip and say
why.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EMULATOR_VERSION = "0.4.0"
DUCKDB_VERSION = "1.5.5"
EXTENSIONS = ("icu", "ducklake", "spatial")
PROJECT = "test-proj"
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "nbaprops"
    / "emulators"
    / f"local-bigquery-{EMULATOR_VERSION}"
)  # per user, not per clone: a build takes ~20 s of CPU
BUILD_TIMEOUT_S = 600
START_TIMEOUT_S = 60


class EmulatorUnavailableError(RuntimeError):
    """The emulator cannot be built or started on this machine (the reason says why)."""


@dataclass(frozen=True)
class BigQueryEmulator:
    """A running emulator: where it answers and the project it serves."""

    endpoint: str
    project: str
    pid: int
    data_dir: Path
    read_endpoint: str  # the Storage Read API (gRPC, plaintext): host:port


def python313() -> Path | None:
    """An interpreter of Python >= 3.13: pyenv's 3.13.x, else ``python3.13`` on PATH."""
    roots = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            roots.append(
                subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=10).stdout.strip()
            )
    roots.append(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv")))
    for root in roots:
        found = sorted(glob.glob(f"{root}/versions/3.1[3-9]*/bin/python"))
        if found:
            return Path(found[-1])
    on_path = shutil.which("python3.13")
    return Path(on_path) if on_path else None


def _run(args: list[str], *, log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=BUILD_TIMEOUT_S)
    if done.returncode != 0:
        tail = log.read_text()[-1500:]
        raise EmulatorUnavailableError(f"{args[0]} {args[1]} exited {done.returncode}; log {log}:\n{tail}")


def build(cache: Path = CACHE) -> Path:
    """The emulator's virtualenv (``cache/venv``) with the DuckDB extensions installed under ``cache/home``.

    Built once and reused; concurrent callers wait on ``cache.lock``. Returns ``cache``.

    Raises:
        EmulatorUnavailableError: no Python 3.13, or the registry could not provide a package.
    """
    ready = cache / ".ready"
    if ready.exists():
        return cache
    py = python313()
    if py is None:
        raise EmulatorUnavailableError("no Python >= 3.13 (pyenv or python3.13 on PATH) for local-bigquery")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with (cache.parent / f"{cache.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():  # another session built it while we waited
            return cache
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        log = cache / "build.log"
        venv = cache / "venv"
        _run([str(py), "-m", "venv", str(venv)], log=log)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, f"local-bigquery=={EMULATOR_VERSION}"], log=log)
        _run(
            [*pip, f"duckdb=={DUCKDB_VERSION}"]
            + [f"duckdb-extension-{name}=={DUCKDB_VERSION}" for name in EXTENSIONS],
            log=log,
        )
        # DuckDB looks for extensions under $HOME/.duckdb: install each wheel's extension file there.
        home = cache / "home"
        home.mkdir()
        install = (
            "import duckdb, glob, sys\n"
            "files = glob.glob(sys.argv[1] + '/lib/python3.*/site-packages/duckdb_extension_*/extensions/*/*"
            ".duckdb_extension')\n"
            "assert files, 'no extension files in the wheels'\n"
            "con = duckdb.connect()\n"
            "[con.execute(f\"INSTALL '{f}'\") for f in files]\n"
            "print(len(files), 'extensions installed')\n"
        )
        _run([str(venv / "bin" / "python"), "-c", install, str(venv)], log=log, env=_env(home))
        ready.write_text(f"local-bigquery {EMULATOR_VERSION}, duckdb {DUCKDB_VERSION}\n")
    return cache


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(endpoint: str, project: str) -> bool:
    try:
        with urllib.request.urlopen(
            f"{endpoint}/bigquery/v2/projects/{project}/datasets", timeout=2
        ) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running(data_dir: Path, *, cache: Path = CACHE, project: str = PROJECT) -> Iterator[BigQueryEmulator]:
    """Start ``local-bigquery serve`` on free loopback ports, wait until it answers, stop it by PID after."""
    root = build(cache)
    data_dir.mkdir(parents=True, exist_ok=True)
    port, grpc_port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(root / "venv" / "bin" / "local-bigquery"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            "--project",
            project,
            "--data-dir",
            str(data_dir / "data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(root / "home"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(endpoint, project):
            if process.poll() is not None:
                raise EmulatorUnavailableError(
                    f"local-bigquery exited {process.returncode}: {(data_dir / 'server.log').read_text()[-1500:]}"
                )
            if time.monotonic() > deadline:
                raise EmulatorUnavailableError(f"local-bigquery did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield BigQueryEmulator(endpoint, project, process.pid, data_dir, f"127.0.0.1:{grpc_port}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    """A running BigQuery emulator for the whole session (skips, saying why, where it cannot run)."""
    try:
        with running(tmp_path_factory.mktemp("bigquery-emulator")) as emulator:
            yield emulator
    except EmulatorUnavailableError as exc:
        pytest.skip(f"BigQuery emulator unavailable: {exc}")
