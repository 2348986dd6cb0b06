"""Benchmark: the service answering 200 polling clients while the 15-game slate runs in it.

Run from the repository root::

    .venv/bin/python benchmarks/service.py [--clients 200] [--profile interval|tight|same-second ...]
        [--interval 1.0] [--runs 3] [--max-seconds 60] [--src OTHER/src ...]

Setup (untimed): a seed database with the shipped box scores and the ``moving_average`` model of the
``points`` market trained for 2025-02-12. Then, for each source tree (each ``--src`` given, in order, then this
repository's ``src``; pass an older checkout's ``src`` to compare before and after in one invocation), one
``nbaprops serve`` process of that tree over a copy of the seed on 127.0.0.1 (a free port; loopback only). The
trees take turns within each run (old alone, old loaded, new alone, new loaded, ...), so that what else the
machine does weighs on each alike.

Each run starts the slate of 2025-02-12 with ``POST /v1/batches`` (``force``: a new batch every run) and
measures ``slate_s``, the batch's own wall time from its creation to its consolidation (the server's clock,
``consolidated_at - created_at``). Runs alternate, per profile:

- **alone** — nothing else talks to the server;
- **under load** — ``--clients`` concurrent clients, each reading ``GET /v1/batches/{id}`` and then
  ``GET /v1/predictions?date=2025-02-12&limit=50`` (the top of the board), like dashboards left open:

  - ``interval``: every ``--interval`` seconds, each at its own phase;
  - ``tight``: in a loop, the next read as soon as the previous answer arrived;
  - ``same-second``: every ``--interval`` seconds, all at the start of the same wall-clock second.

  Every client honours a ``429``'s ``Retry-After`` (the polite client the limit is for; a tree without the
  limit never sends one). They connect and poll the previous batch for two seconds first; the latencies of the
  requests answered while the slate runs are recorded. The loop stops when the batch is consolidated or after
  ``--max-seconds``.

The clients run in this process on the same 2 cores as the server (asyncio, one keep-alive connection each,
a minimal HTTP/1.1 exchange so that the load generator costs the server as little CPU as possible), each from
its own loopback address (127.0.0.2, 127.0.0.3, ...: distinct clients, as dashboards on distinct machines are),
so their own CPU time is part of what the server competes with. Per-run lines go to stdout, progress to stderr;
one summary line per tree and profile::

    tree=<src> profile=<p> slate_alone_s=<x> slate_loaded_s=<y> slowdown=<y/x> status_p50_ms=.. status_p99_ms=..
        predictions_p99_ms=.. answered=<n> refused_429=<n> errors=<n>

(medians of the runs; percentiles over every run under load). Goals on a 2-core machine (reported, not
asserted): status p99 <= 100 ms, slate under load no more than 25% slower than alone, at every profile.
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
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
from _serve import build_seed as seed_with_models
from _serve import free_port, start_serve, stop_serve  # benchmarks/_serve.py (run from the repository root)

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


def start_server(db: Path, artifacts: Path, port: int, log: Path, src: Path) -> subprocess.Popen[bytes]:
    settings = {
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": ",".join(SYSTEMS),
        "NBAPROPS_MARKETS": ",".join(MARKETS),
    }
    return start_serve(db, port, log, settings=settings, src=src)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def wait_consolidated(client: httpx.AsyncClient, batch_id: str, max_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/batches/{batch_id}")
        if response.status_code == 429:
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        body: dict[str, Any] = response.json()
        if body["consolidated_at"]:
            return body
        await asyncio.sleep(0.6)  # slate_s is the server's own clock: the driver need not poll fast
    raise RuntimeError(f"batch {batch_id} not consolidated within {max_seconds} s")


def slate_seconds(batch: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(batch["consolidated_at"]) - datetime.fromisoformat(batch["created_at"])
    ).total_seconds()


class Connection:
    """One keep-alive HTTP/1.1 connection on loopback, as lean as a load generator can be: this process shares
    the 2 cores with the server, so every microsecond spent here is one the server does not get."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.port = port
        self.source = source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, float]:
        """GET ``path``; returns the status and a 429's ``Retry-After`` (0 otherwise; the body is dropped)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(self.source, 0)
            )
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, retry_after = 0, 0.0
        for line in head.split(b"\r\n"):
            name = line.split(b":", 1)[0].lower()
            if name == b"content-length":
                length = int(line.split(b":", 1)[1])
            elif name == b"retry-after" and status == 429:
                retry_after = float(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status, retry_after

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


PROFILES = ("interval", "tight", "same-second")


async def run_slate(
    base: str, port: int, *, clients: int, profile: str, interval: float, max_seconds: float, previous: str
) -> tuple[str, float, list[float], list[float], int, int]:
    """One slate, with ``clients`` pollers (0: alone). Returns id, slate_s, status and board latencies (answered
    reads), 429s, errors."""
    status_ms: list[float] = []
    board_ms: list[float] = []
    errors = refused = 0
    state = {"batch_id": previous, "measuring": False}
    stop = asyncio.Event()
    board = f"/v1/predictions?date={GAME_DATE.isoformat()}&limit=50"

    async def next_tick(tick: float) -> None:
        if profile == "tight":
            await asyncio.sleep(0)
        elif profile == "same-second":  # all together, at the start of the next whole wall-clock second
            await asyncio.sleep(interval - (time.time() % interval))
        else:
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))

    async def poller(i: int) -> None:
        nonlocal errors, refused
        source = f"127.0.0.{2 + i % 250}"
        connection = Connection(port, source)
        try:
            if profile == "interval":
                await asyncio.sleep(random.uniform(0, interval))
            while not stop.is_set():
                tick = time.perf_counter()
                wait = 0.0
                for path, sink in ((f"/v1/batches/{state['batch_id']}", status_ms), (board, board_ms)):
                    measuring = state["measuring"]
                    started = time.perf_counter()
                    try:
                        status, retry_after = await connection.get(path)
                    except (OSError, asyncio.IncompleteReadError, ValueError):
                        connection.close()
                        connection = Connection(port, source)
                        status, retry_after = 0, 0.0
                    elapsed = (time.perf_counter() - started) * 1000
                    wait = max(wait, retry_after)
                    if measuring and state["measuring"]:
                        if status == 429:
                            refused += 1
                        else:
                            sink.append(elapsed)
                            errors += status != 200
                if wait:  # polite: come back when told
                    await asyncio.sleep(wait)
                await next_tick(tick)
        finally:
            connection.close()

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        tasks = [asyncio.create_task(poller(i)) for i in range(clients)]
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
    return batch_id, slate_seconds(batch), status_ms, board_ms, refused, errors


@dataclass
class Tree:
    """One source tree's server and what its runs measured, per profile."""

    src: Path
    port: int
    server: subprocess.Popen[bytes]
    previous: str = ""
    alone: dict[str, list[float]] = field(default_factory=dict)
    loaded: dict[str, list[float]] = field(default_factory=dict)
    status_ms: dict[str, list[float]] = field(default_factory=dict)
    board_ms: dict[str, list[float]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self, profile: str) -> str:
        alone, loaded = statistics.median(self.alone[profile]), statistics.median(self.loaded[profile])
        status, board = self.status_ms[profile], self.board_ms[profile]
        return (
            f"tree={self.src} profile={profile} slate_alone_s={alone:.3f} slate_loaded_s={loaded:.3f} "
            f"slowdown={loaded / alone:.2f} status_p50_ms={percentile(status, 50):.1f} "
            f"status_p99_ms={percentile(status, 99):.1f} predictions_p99_ms={percentile(board, 99):.1f} "
            f"answered={len(status) + len(board)} refused_429={self.refused[profile]} errors={self.errors[profile]}"
        )


def start_tree(src: Path, seed: Path, artifacts: Path, tmp: Path, args: argparse.Namespace) -> Tree:
    """A server of the tree ``src`` over its own copy of the seed, after a warm-up slate."""
    folder = Path(tempfile.mkdtemp(prefix="tree-", dir=tmp))
    db = folder / "service.duckdb"
    shutil.copyfile(seed, db)
    port = free_port()
    tree = Tree(src, port, start_server(db, artifacts, port, folder / "serve.log", src))
    progress(f"{src}: server ready on port {port}; warm-up slate")
    tree.previous = asyncio.run(
        run_slate(
            f"http://127.0.0.1:{port}",
            port,
            clients=0,
            profile="interval",
            interval=args.interval,
            max_seconds=args.max_seconds,
            previous="",
        )
    )[0]
    return tree


def measure(tree: Tree, profile: str, run: int, args: argparse.Namespace) -> None:
    """One run of ``profile`` on ``tree``'s server: the slate alone, then under load."""
    for clients, sink in ((0, tree.alone), (args.clients, tree.loaded)):
        tree.previous, slate_s, status_ms, board_ms, refused, errors = asyncio.run(
            run_slate(
                f"http://127.0.0.1:{tree.port}",
                tree.port,
                clients=clients,
                profile=profile,
                interval=args.interval,
                max_seconds=args.max_seconds,
                previous=tree.previous,
            )
        )
        sink.setdefault(profile, []).append(slate_s)
        line = f"tree={tree.src} profile={profile} run={run} clients={clients} slate_s={slate_s:.3f}"
        if clients:
            tree.status_ms.setdefault(profile, []).extend(status_ms)
            tree.board_ms.setdefault(profile, []).extend(board_ms)
            tree.refused[profile] = tree.refused.get(profile, 0) + refused
            tree.errors[profile] = tree.errors.get(profile, 0) + errors
            line += (
                f" status_n={len(status_ms)} status_p50_ms={percentile(status_ms, 50):.1f} "
                f"status_p99_ms={percentile(status_ms, 99):.1f} "
                f"predictions_p99_ms={percentile(board_ms, 99):.1f} refused_429={refused} errors={errors}"
            )
        print(line, flush=True)
        progress(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent polling clients (default 200)")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        action="append",
        help="how the clients poll (repeatable; default: interval)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's polls (1.0)")
    parser.add_argument("--runs", type=int, default=3, help="runs alone and under load, alternating (3)")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="bound of one slate and its load (60)"
    )
    parser.add_argument(
        "--src", type=Path, action="append", default=[], help="another tree's src, run first (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (seed, db, server logs)")
    args = parser.parse_args(argv)
    args.profile = args.profile or ["interval"]
    if args.runs < 1 or args.clients < 1 or args.clients > 250 or args.interval <= 0:
        parser.error(
            "--runs must be at least 1, --clients 1-250 (one loopback address each), --interval positive"
        )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="nbaprops-service-bench-"))
    trees: list[Tree] = []
    try:
        seed, artifacts = tmp / "seed.duckdb", tmp / "artifacts"
        progress("seed: box scores and the model of the date")
        build_seed(seed, artifacts)
        # Every tree's server stands at once (an idle one costs nothing) and the trees take turns within each
        # run, so that a change in what else the machine runs weighs on every tree alike.
        for src in [*args.src, REPO / "src"]:
            trees.append(start_tree(src.resolve(), seed, artifacts, tmp, args))
        for profile in args.profile:
            for run in range(1, args.runs + 1):
                for tree in trees:
                    measure(tree, profile, run, args)
        summaries = [tree.summary(profile) for profile in args.profile for tree in trees]
        print(
            f"# slate {GAME_DATE}: systems={','.join(SYSTEMS)} markets={','.join(MARKETS)}; {args.clients} clients, "
            f"interval {args.interval:g}s; goals: status p99 <= {P99_GOAL_MS:.0f} ms, slowdown <= x{SLOWDOWN_GOAL}"
        )
        for line in summaries:
            print(line, flush=True)
    finally:
        for tree in trees:
            stop_serve(tree.server)
        if args.keep:
            progress(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
