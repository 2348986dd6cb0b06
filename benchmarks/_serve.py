"""What the service benchmarks (service.py, post_flood.py, upload_memory.py) share: a seed database with trained
models, a free loopback port, and ``nbaprops serve`` started on it and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def build_seed(
    seed: Path,
    artifacts: Path,
    *,
    game_date: date,
    markets: Sequence[str],
    systems: Sequence[str],
    progress: Callable[[str], None],
) -> None:
    """The shipped box scores loaded into ``seed`` and the models of ``game_date`` trained into ``artifacts``."""
    from nbaprops.config import Settings
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.storage import open_storage
    from nbaprops.systems.training import ensure_bundles

    storage = open_storage(seed)
    try:
        ensure_boxscores(storage)
        ensure_bundles(
            storage,
            Settings(db_path=seed, data_dir=artifacts),
            game_date,
            list(markets),
            list(systems),
            on_message=progress,
        )
        storage.execute("CHECKPOINT")
    finally:
        storage.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    db: Path,
    port: int,
    log: Path,
    *,
    settings: Mapping[str, str],
    src: Path = REPO / "src",
    ready_within_s: float = 120.0,
) -> subprocess.Popen[bytes]:
    """A keyless ``nbaprops serve`` of ``db`` on 127.0.0.1:``port`` (``settings``: ``NBAPROPS_*`` variables),
    its output in ``log``; returned once ``/health/ready`` answers 200."""
    env = {**os.environ, "PYTHONPATH": str(src), "NBAPROPS_API_KEYS": "", **settings}
    command = [sys.executable, "-m", "nbaprops.cli", "serve", "--db", str(db), "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + ready_within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server did not become ready within {ready_within_s:g} s")


def stop_serve(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server :func:`start_serve` started (SIGTERM, then SIGKILL after 60 s); nothing if it has exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
