"""Benchmark: the server's memory while it receives and ingests a 1M-row lines CSV over HTTP.

Run from the repository root::

    .venv/bin/python benchmarks/upload_memory.py [--rows 1000000] [--keep]

Setup (untimed): a lines CSV of ``--rows`` rows (the real PRA lines of 2024-25 from ``../shared/data``,
repeated with a later ``posted_at`` each round, so every row is a distinct snapshot of a real offer), and one
``nbaprops serve`` process on 127.0.0.1 (a free port; loopback only) over a new database in a temporary folder.

Once the server is ready and idle, its resident memory (``VmRSS`` of ``/proc/<pid>/status``) is sampled every
20 ms while ``POST /v1/ingest/lines`` uploads the file (streamed from disk by the client), until the answer
comes, and for 5 s after. The last line is::

    upload_mb=<size> rows=<n> idle_rss_mb=<x> peak_rss_mb=<y> peak_over_idle_mb=<y-x> after_mb=<z> status=<code>

Goal (reported, not asserted): ``peak_over_idle_mb`` <= 300.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _serve import free_port, start_serve, stop_serve  # benchmarks/_serve.py (run from the repository root)

REPO = Path(__file__).resolve().parents[1]
LINES = REPO.parent.parent / "shared" / "data" / "prop-lines-pra" / "2024-25" / "pra_odds.csv"
SHARED_LINES = Path("/work/shared/data/prop-lines-pra/2024-25/pra_odds.csv")
GOAL_MB = 300.0


def progress(msg: str) -> None:
    print(f"[upload-bench] {msg}", file=sys.stderr, flush=True)


def write_lines(target: Path, rows: int) -> int:
    """A lines CSV of ``rows`` rows in the ingest's own columns; returns the rows written."""
    source = LINES if LINES.exists() else SHARED_LINES
    with source.open(newline="") as handle:
        real = [r for r in csv.DictReader(handle) if r["over_price"] and r["under_price"]]
    written = 0
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "game_date",
                "player_name",
                "market",
                "line",
                "bookmaker",
                "over_price",
                "under_price",
                "posted_at",
            ]
        )
        round_ = 0
        while written < rows:
            for r in real:
                if written >= rows:
                    break
                # a later snapshot each round: same offer, posted one minute later per round
                stamp = r["timestamp"].replace("Z", "")
                minute = (int(stamp[14:16]) + round_) % 60
                posted = f"{stamp[:14]}{minute:02d}{stamp[16:]}Z"
                writer.writerow(
                    [
                        r["event_date"],
                        r["player_name"],
                        "pra",
                        r["line"],
                        f"{r['bookmaker']}{round_ // 60 or ''}",
                        r["over_price"],
                        r["under_price"],
                        posted,
                    ]
                )
                written += 1
            round_ += 1
    return written


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    settings = {"NBAPROPS_DATA_DIR": str(db.parent / "artifacts"), "NBAPROPS_UPLOAD_LIMIT_MB": "1024"}
    return start_serve(db, port, log, settings=settings, ready_within_s=180)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nbaprops-upload-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        csv_path = folder / "pra_odds.csv"
        rows = write_lines(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1_048_576
        progress(f"{rows} rows, {size_mb:.1f} MB; starting the server")
        port = free_port()
        proc = start_server(folder / "nbaprops.duckdb", port, folder / "serve.log")
        time.sleep(2)
        idle = rss_mb(proc.pid)
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with csv_path.open("rb") as handle:
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/ingest/lines",
                files={"files": ("pra_odds.csv", handle, "text/csv")},
                timeout=600,
            )
        elapsed = time.perf_counter() - started
        progress(f"answered {response.status_code} in {elapsed:.1f} s: {response.text[:300]}")
        time.sleep(5)
        done.set()
        sampler.join()
        after = rss_mb(proc.pid)
        print(
            f"upload_mb={size_mb:.1f} rows={rows} idle_rss_mb={idle:.0f} peak_rss_mb={peak:.0f} "
            f"peak_over_idle_mb={peak - idle:.0f} after_mb={after - idle:.0f} status={response.status_code} "
            f"seconds={elapsed:.1f} goal_mb={GOAL_MB:.0f}"
        )
    finally:
        stop_serve(proc)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
