"""Benchmark: another terminal's reads of a database held by ``nbaprops serve`` while the slate runs in it.

Run from the repository root::

    .venv/bin/python benchmarks/holder_reads.py [--src OTHER/src] [--runs 3] [--interval 0.1]

Setup (untimed): the seed of ``benchmarks/service.py`` (shipped box scores, the ``moving_average`` model of the
``points`` market for 2025-02-12), built once. Then, for each source tree (each ``--src`` given, in order, then
this repository's ``src``; pass an older checkout's ``src`` to compare before and after in one invocation): a
keyless ``nbaprops serve`` of that tree over a copy of the seed, a warm-up slate, and ``--runs`` runs. Each run
starts the slate with ``POST /v1/batches`` (``force``) and, while it runs, a process of the same tree calls the
holder's ``status`` operation every ``--interval`` seconds through the protocol ``nbaprops status`` uses from a
second terminal (``nbaprops.holder``, or ``nbaprops.service.remote`` before issue 19): the record's URL and
token, one HTTP request per read. Per tree the last lines are::

    tree=<src> status_p50_ms=<x> status_p99_ms=<y> reads=<n> slate_s=<median>

No goal is asserted: the figures are compared, tree against tree, on the same machine in the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _serve import free_port, start_serve, stop_serve  # benchmarks/_serve.py (run from the repository root)

from service import (
    GAME_DATE,
    MARKETS,
    SYSTEMS,
    build_seed,
    percentile,
    progress,
    slate_seconds,
    wait_consolidated,
)

REPO = Path(__file__).resolve().parents[1]

# The reader: a separate process of the tree under test, as a second terminal is.
READER = """
import json, sys, time
from pathlib import Path
try:
    from nbaprops.holder import Holder
except ImportError:  # before issue 19
    from nbaprops.service.remote import Holder
db, interval, max_seconds = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
holder = Holder.read(db)
assert holder is not None, "no endpoint record"
latencies, started, seen_running = [], time.monotonic(), False
while time.monotonic() - started < max_seconds:
    t = time.perf_counter()
    state = holder.call("status", {})["state"]
    latencies.append((time.perf_counter() - t) * 1000)
    seen_running |= state == "running"
    if seen_running and state != "running":
        break
    time.sleep(interval)
print(json.dumps(latencies))
"""


def one_tree(src: Path, seed: Path, artifacts: Path, tmp: Path, args: argparse.Namespace) -> str:
    db = tmp / f"held-{len(list(tmp.glob('held-*')))}" / "service.duckdb"
    db.parent.mkdir(mode=0o700)
    shutil.copyfile(seed, db)
    port = free_port()
    settings = {
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": ",".join(SYSTEMS),
        "NBAPROPS_MARKETS": ",".join(MARKETS),
    }
    server = start_serve(db, port, db.parent / "serve.log", settings=settings, src=src)
    base = f"http://127.0.0.1:{port}"
    reads: list[float] = []
    slates: list[float] = []
    try:
        for run in range(args.runs + 1):  # the first is a warm-up
            with httpx.Client(base_url=base, timeout=120) as client:
                body = {"game_date": GAME_DATE.isoformat(), "force": True}
                batch_id = client.post("/v1/batches", json=body).json()["batch_id"]
            reader = subprocess.run(
                [sys.executable, "-c", READER, str(db), str(args.interval), str(args.max_seconds)],
                env={**os.environ, "PYTHONPATH": str(src)},
                capture_output=True,
                text=True,
                check=True,
            )

            async def consolidated(batch: str = batch_id) -> float:
                async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                    return slate_seconds(await wait_consolidated(client, batch, args.max_seconds))

            slate_s = asyncio.run(consolidated())
            latencies = json.loads(reader.stdout)
            if run:
                reads += latencies
                slates.append(slate_s)
            progress(
                f"{src}: run={run}{' (warm-up)' if not run else ''} reads={len(latencies)} "
                f"p50_ms={percentile(latencies, 50):.1f} slate_s={slate_s:.3f}"
            )
    finally:
        stop_serve(server)
    return (
        f"tree={src} status_p50_ms={percentile(reads, 50):.1f} status_p99_ms={percentile(reads, 99):.1f} "
        f"reads={len(reads)} slate_s={statistics.median(slates):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src", type=Path, action="append", default=[], help="another tree's src (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tree (3)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two reads (0.1)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound of one slate (120)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.interval < 0:
        parser.error("--runs must be at least 1, --interval not negative")
    tmp = Path(tempfile.mkdtemp(prefix="nbaprops-holder-bench-"))
    tmp.chmod(0o700)  # the endpoint record is written only in a folder no other user can write
    try:
        seed, artifacts = tmp / "seed.duckdb", tmp / "artifacts"
        progress("seed: box scores and the model of the date")
        started = time.monotonic()
        build_seed(seed, artifacts)
        progress(f"seed built in {time.monotonic() - started:.0f} s")
        lines = [one_tree(src.resolve(), seed, artifacts, tmp, args) for src in [*args.src, REPO / "src"]]
        print(f"# holder reads while the slate of {GAME_DATE} runs in serve, every {args.interval:g} s")
        for line in lines:
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
