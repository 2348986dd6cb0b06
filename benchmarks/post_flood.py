"""Benchmark: 50 clients posting the same date to ``POST /v1/batches`` for 20 s while status reads go on.

Run from the repository root::

    .venv/bin/python benchmarks/post_flood.py [--clients 50] [--seconds 20] [--readers 5] [--src DIR]

Setup (untimed): a seed database with the shipped box scores and the ``moving_average`` model of the
``points`` market trained for 2025-02-12; one ``nbaprops serve`` process (no key, 127.0.0.1, a free port) over a
copy of it. ``--src`` serves another checkout's ``src`` folder (to measure a baseline in the same invocation
style).

Then, for ``--seconds``: ``--clients`` clients each post ``{"game_date": "2025-02-12"}`` again as soon as
their previous answer came (the same inputs every time), and ``--readers`` clients read the status of the
date every 50 ms (``GET /v1/batches/{id}`` of the batch the first 202 named, ``GET /v1/batches?date=…`` before
it). Clients are asyncio in this process, one lean keep-alive connection each (a minimal HTTP/1.1 exchange,
as in ``benchmarks/service.py``), on the same cores as the server.

Last line::

    batches=<n> post_p50_ms=<x> post_p99_ms=<y> status_p50_ms=<a> status_p99_ms=<b> statuses=<code:count,...>

Goals (reported, not asserted): one batch for the date, status p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from _serve import build_seed as seed_with_models
from _serve import free_port, start_serve, stop_serve  # benchmarks/_serve.py (run from the repository root)

REPO = Path(__file__).resolve().parents[1]
GAME_DATE = date(2025, 2, 12)
SYSTEMS = ("moving_average",)
MARKETS = ("points",)
P99_GOAL_MS = 100.0


def progress(msg: str) -> None:
    print(f"[post-flood] {msg}", file=sys.stderr, flush=True)


def build_seed(seed: Path, artifacts: Path) -> None:
    seed_with_models(
        seed, artifacts, game_date=GAME_DATE, markets=MARKETS, systems=SYSTEMS, progress=progress
    )


def start_server(db: Path, artifacts: Path, port: int, log: Path, src: Path) -> subprocess.Popen[bytes]:
    settings = {
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": ",".join(SYSTEMS),
        "NBAPROPS_MARKETS": ",".join(MARKETS),
        # The readers probe status every 50 ms to time it; the polling limit is service.py's to measure.
        "NBAPROPS_POLL_INTERVAL_SECONDS": "0",
    }
    return start_serve(db, port, log, settings=settings, src=src)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Connection:
    """One keep-alive HTTP/1.1 connection on loopback, as lean as a load generator can be (this process shares
    the cores with the server; an httpx client per caller would cost the server most of its CPU)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in answer.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def flood(port: int, *, clients: int, readers: int, seconds: float) -> dict[str, Any]:
    post_ms: list[float] = []
    status_ms: list[float] = []
    after_ms: list[float] = []  # reads once the batch ended and stood (repeats answered 200)
    codes: Counter[str] = Counter()
    batch: dict[str, str] = {}
    end = time.monotonic() + seconds
    body = json.dumps({"game_date": GAME_DATE.isoformat()}).encode()

    async def poster() -> None:
        connection = Connection(port)
        try:
            while time.monotonic() < end:
                started = time.perf_counter()
                try:
                    status, answer = await connection.send("POST", "/v1/batches", body)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    codes[type(exc).__name__] += 1
                    connection.close()
                    continue
                post_ms.append((time.perf_counter() - started) * 1000)
                codes[str(status)] += 1
                if status in (200, 202):
                    batch.setdefault("id", json.loads(answer)["batch_id"])
                if status == 200:
                    batch.setdefault("standing_at", str(time.monotonic()))
        finally:
            connection.close()

    async def reader() -> None:
        connection = Connection(port)
        try:
            while time.monotonic() < end:
                path = f"/v1/batches/{batch['id']}" if "id" in batch else f"/v1/batches?date={GAME_DATE}"
                started = time.perf_counter()
                try:
                    status, _ = await connection.send("GET", path)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    codes[f"read {type(exc).__name__}"] += 1
                    connection.close()
                    continue
                if status == 200:
                    status_ms.append((time.perf_counter() - started) * 1000)
                    if "standing_at" in batch:
                        after_ms.append(status_ms[-1])
                else:
                    codes[f"read {status}"] += 1
                await asyncio.sleep(0.05)
        finally:
            connection.close()

    await asyncio.gather(*(poster() for _ in range(clients)), *(reader() for _ in range(readers)))
    listed = httpx.get(
        f"http://127.0.0.1:{port}/v1/batches",
        params={"date": GAME_DATE.isoformat(), "limit": 1000},
        timeout=60,
    ).json()
    return {
        "post_ms": post_ms,
        "status_ms": status_ms,
        "after_ms": after_ms,
        "codes": codes,
        "batches": len(listed["batches"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the src folder the server runs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nbaprops-flood-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        seed, artifacts = folder / "seed.duckdb", folder / "artifacts"
        progress("building the seed database and model (untimed)")
        build_seed(seed, artifacts)
        db = folder / "served" / "nbaprops.duckdb"
        db.parent.mkdir()
        shutil.copyfile(seed, db)
        port = free_port()
        proc = start_server(db, artifacts, port, folder / "serve.log", args.src.resolve())
        progress(f"server up on 127.0.0.1:{port}; {args.clients} posting clients for {args.seconds:g} s")
        result = asyncio.run(flood(port, clients=args.clients, readers=args.readers, seconds=args.seconds))
        post_ms, status_ms, codes = result["post_ms"], result["status_ms"], result["codes"]
        print(
            f"posts={len(post_ms)} post_p50_ms={statistics.median(post_ms) if post_ms else float('nan'):.1f} "
            f"reads={len(status_ms)} status_max_ms={max(status_ms, default=float('nan')):.1f} "
            f"after_batch: reads={len(result['after_ms'])} status_p50_ms={percentile(result['after_ms'], 50):.1f} "
            f"status_p99_ms={percentile(result['after_ms'], 99):.1f}"
        )
        print(
            f"batches={result['batches']} post_p50_ms={percentile(post_ms, 50):.1f} "
            f"post_p99_ms={percentile(post_ms, 99):.1f} status_p50_ms={percentile(status_ms, 50):.1f} "
            f"status_p99_ms={percentile(status_ms, 99):.1f} "
            f"statuses={','.join(f'{k}:{v}' for k, v in sorted(codes.items()))} goal_status_p99_ms={P99_GOAL_MS:g}"
        )
    finally:
        stop_serve(proc)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
