"""Benchmark: the service answering 200 polling clients while the 15-game slate runs in it.

Run from the repository root::

    .venv/bin/python benchmarks/service.py [--clients 200] [--interval 1.0] [--runs 3] [--max-seconds 60]

Setup (untimed): a seed database with the shipped box scores and the ``moving_average`` model of the
``points`` market trained for 2025-02-12; one ``nbaprops serve`` process over a copy of it on 127.0.0.1 (a free
port; loopback only, never another address).

Each run starts the slate of 2025-02-12 with ``POST /v1/batches`` (``force``: a new batch every run) and
measures ``slate_s``, the batch's own wall time from its creation to its consolidation (the server's clock,
``consolidated_at - created_at``). Runs alternate:

- **alone** — nothing else talks to the server;
- **under load** — ``--clients`` concurrent clients, each polling ``GET /v1/batches/{id}`` and then
  ``GET /v1/predictions?date=2025-02-12&limit=50`` (the top of the board) every ``--interval`` seconds, like
  dashboards left open. They connect and poll the previous batch for two seconds first; the latencies of the
  requests sent while the slate runs are recorded. The loop is bounded: it stops when the batch is consolidated
  or after ``--max-seconds``, whichever comes first.

The clients run in this process on the same 2 cores as the server (asyncio, one keep-alive connection each,
a minimal HTTP/1.1 exchange so that the load generator costs the server as little CPU as possible), so their own
CPU time is part of what the server competes with. Per-run lines go to stdout, progress to stderr; the last line is::

    status_p50_ms=<x> status_p99_ms=<y> slate_s=<z>

with the percentiles over every run under load, ``slate_s`` the median of the runs under load, and before it a
line with ``predictions_p99_ms``, ``slate_alone_s`` and the slowdown. Goals on a 2-core machine (reported, not
asserted): status p99 <= 100 ms, slate under load no more than 25% slower than alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
from _serve import build_seed as seed_with_models
from _serve import free_port, start_serve  # benchmarks/_serve.py (run from the repository root)

GAME_DATE = date(2025, 2, 12)
SYSTEMS = ("moving_average",)
MARKETS = ("points",)
P99_GOAL_MS = 100.0
SLOWDOWN_GOAL = 1.25
REPO = Path(__file__).resolve().parents[1]


def progress(msg: str) -> None:
    print(f"[service-bench] {msg}", file=sys.stderr, flush=True)


def build_seed(seed: Path, artifacts: Path) -> None:
    seed_with_models(
        seed, artifacts, game_date=GAME_DATE, markets=MARKETS, systems=SYSTEMS, progress=progress
    )


def start_server(db: Path, artifacts: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    settings = {
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": ",".join(SYSTEMS),
        "NBAPROPS_MARKETS": ",".join(MARKETS),
    }
    return start_serve(db, port, log, settings=settings)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def wait_consolidated(client: httpx.AsyncClient, batch_id: str, max_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        body: dict[str, Any] = (await client.get(f"/v1/batches/{batch_id}")).json()
        if body["consolidated_at"]:
            return body
        await asyncio.sleep(0.05)
    raise RuntimeError(f"batch {batch_id} not consolidated within {max_seconds} s")


def slate_seconds(batch: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(batch["consolidated_at"]) - datetime.fromisoformat(batch["created_at"])
    ).total_seconds()


class Connection:
    """One keep-alive HTTP/1.1 connection on loopback, as lean as a load generator can be: this process shares
    the 2 cores with the server, so every microsecond spent here is one the server does not get."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        """GET ``path``; returns the status (the body is read and dropped)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_slate(
    base: str, port: int, *, clients: int, interval: float, max_seconds: float, previous: str
) -> tuple[str, float, list[float], list[float], int]:
    """One slate, with ``clients`` pollers (0: alone). Returns id, slate_s, status and board latencies, errors."""
    status_ms: list[float] = []
    board_ms: list[float] = []
    errors = 0
    state = {"batch_id": previous, "measuring": False}
    stop = asyncio.Event()
    board = f"/v1/predictions?date={GAME_DATE.isoformat()}&limit=50"

    async def poller() -> None:
        nonlocal errors
        connection = Connection(port)
        try:
            await asyncio.sleep(random.uniform(0, interval))
            while not stop.is_set():
                tick = time.perf_counter()
                for path, sink in ((f"/v1/batches/{state['batch_id']}", status_ms), (board, board_ms)):
                    measuring = state["measuring"]
                    started = time.perf_counter()
                    try:
                        ok = await connection.get(path) == 200
                    except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError):
                        connection.close()
                        connection = Connection(port)
                        ok = False
                    elapsed = (time.perf_counter() - started) * 1000
                    if measuring and state["measuring"]:
                        sink.append(elapsed)
                        errors += not ok
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))
        finally:
            connection.close()

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        tasks = [asyncio.create_task(poller()) for _ in range(clients)]
        if clients:
            await asyncio.sleep(2.0)  # connect and settle on the previous batch
        response = await client.post("/v1/batches", json={"game_date": GAME_DATE.isoformat(), "force": True})
        response.raise_for_status()
        batch_id = str(response.json()["batch_id"])
        state.update(batch_id=batch_id, measuring=True)
        try:
            batch = await wait_consolidated(client, batch_id, max_seconds)
        finally:
            state["measuring"] = False
            stop.set()
            await asyncio.gather(*tasks)
    if batch["state"] != "complete":
        progress(f"WARNING: batch {batch_id} ended {batch['state']}")
    return batch_id, slate_seconds(batch), status_ms, board_ms, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent polling clients (default 200)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's polls (1.0)")
    parser.add_argument("--runs", type=int, default=3, help="runs alone and under load, alternating (3)")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="bound of one slate and its load (60)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (seed, db, server log)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.clients < 1 or args.interval <= 0:
        parser.error("--runs and --clients must be at least 1, --interval positive")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="nbaprops-service-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        seed, artifacts = tmp / "seed.duckdb", tmp / "artifacts"
        progress("seed: box scores and the model of the date")
        build_seed(seed, artifacts)
        db = tmp / "service.duckdb"
        shutil.copyfile(seed, db)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(db, artifacts, port, tmp / "serve.log")
        progress(f"server ready at {base}; warm-up slate")
        previous, _, _, _, _ = asyncio.run(
            run_slate(
                base, port, clients=0, interval=args.interval, max_seconds=args.max_seconds, previous=""
            )
        )
        print(
            f"# slate {GAME_DATE}: systems={','.join(SYSTEMS)} markets={','.join(MARKETS)}; "
            f"{args.clients} clients polling every {args.interval:g}s under load"
        )
        alone: list[float] = []
        loaded: list[float] = []
        status_all: list[float] = []
        board_all: list[float] = []
        errors_all = 0
        for i in range(args.runs):
            for clients, sink in ((0, alone), (args.clients, loaded)):
                previous, slate_s, status_ms, board_ms, errors = asyncio.run(
                    run_slate(
                        base,
                        port,
                        clients=clients,
                        interval=args.interval,
                        max_seconds=args.max_seconds,
                        previous=previous,
                    )
                )
                sink.append(slate_s)
                line = f"run={i + 1} clients={clients} slate_s={slate_s:.3f}"
                if clients:
                    status_all += status_ms
                    board_all += board_ms
                    errors_all += errors
                    line += (
                        f" status_n={len(status_ms)} status_p50_ms={percentile(status_ms, 50):.1f} "
                        f"status_p99_ms={percentile(status_ms, 99):.1f} "
                        f"predictions_p99_ms={percentile(board_ms, 99):.1f} errors={errors}"
                    )
                print(line, flush=True)
                progress(line)
        alone_med, loaded_med = statistics.median(alone), statistics.median(loaded)
        p50, p99 = percentile(status_all, 50), percentile(status_all, 99)
        slowdown = loaded_med / alone_med
        print(
            f"# status p99 {p99:.1f} ms over {len(status_all)} requests, goal <= {P99_GOAL_MS:.0f} ms: "
            f"{'met' if p99 <= P99_GOAL_MS else 'NOT met'}; slate {loaded_med:.3f}s under load vs "
            f"{alone_med:.3f}s alone (x{slowdown:.2f}), goal <= x{SLOWDOWN_GOAL}: "
            f"{'met' if slowdown <= SLOWDOWN_GOAL else 'NOT met'}; errors {errors_all}"
        )
        print(
            f"predictions_p50_ms={percentile(board_all, 50):.1f} predictions_p99_ms={percentile(board_all, 99):.1f} "
            f"slate_alone_s={alone_med:.3f} slowdown={slowdown:.2f}"
        )
        print(f"status_p50_ms={p50:.1f} status_p99_ms={p99:.1f} slate_s={loaded_med:.3f}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        if args.keep:
            progress(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
