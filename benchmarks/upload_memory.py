"""Benchmark: memory while a 1M-row lines CSV is ingested, through the CLI and through the API.

Run from the repository root::

    .venv/bin/python benchmarks/upload_memory.py [--rows 1000000] [--runs 3] [--old main] [--paths cli,api]
        [--shape offers|snapshots] [--csv FILE] [--keep]

Setup (untimed): a lines CSV of ``--rows`` rows built from the real PRA lines of 2024-25 in ``../shared/data``
(``--shape offers``, the default: the season repeated a year later each round, so every row is a distinct offer
the ingest stores; ``snapshots``: repeated with a later ``posted_at`` each round, so every row after the first
round supersedes one), in a temporary folder (never committed), and a database with the shipped box scores.
``--csv FILE`` measures that lines file instead (one written by an earlier ``--keep`` run, say: writing 10M
rows takes minutes).

* **CLI**: ``nbaprops ingest lines FILE --db COPY`` as a child process; its peak resident memory is the child's
  ``ru_maxrss`` (``os.wait4``). Idle is the same command's peak on the first 1,000 rows of the file (imports,
  opening the file, the box-score checks); after is not measured (the process has ended).
* **API**: one ``nbaprops serve`` (127.0.0.1, a free port) over a copy; once idle its ``VmRSS`` is sampled every
  20 ms while ``POST /v1/ingest/lines`` uploads the file (streamed from disk by the client), until the answer,
  and 5 s after (``after`` is the last sample).

``--old REV`` runs the same measurements on that revision's ``src`` (``git archive``) first, in the same
invocation. Each figure is the median of ``--runs``. One line per tree and path, then the last line::

    rows=<n> upload_mb=<size> cli_peak_over_idle_mb=<new> api_peak_over_idle_mb=<new> api_after_over_idle_mb=<new>
        [old_cli_peak_over_idle_mb=… old_api_peak_over_idle_mb=… old_api_after_over_idle_mb=…] goal_mb=300

Goal (reported, not asserted): both peaks <= 300 MB above idle, and the API's memory back near idle after.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _serve import free_port, start_serve, stop_serve  # benchmarks/_serve.py (run from the repository root)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
LINES = SHARED / "prop-lines-pra" / "2024-25" / "pra_odds.csv"
GOAL_MB = 300.0
HEADER = ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price", "posted_at"]


def progress(msg: str) -> None:
    print(f"[upload-bench] {msg}", file=sys.stderr, flush=True)


def write_lines(target: Path, rows: int, *, shape: str = "offers") -> int:
    """A lines CSV of ``rows`` rows in the ingest's own columns; returns the rows written.

    ``offers``: round k is the season moved 366·k days later (a season spans under a year, so no two rounds
    share a date): every row is an offer of its own. ``snapshots``: round k is the season posted k minutes
    later: every row after the first round is a later snapshot of an offer.
    """
    source = LINES
    with source.open(newline="") as handle:
        real = [r for r in csv.DictReader(handle) if r["over_price"] and r["under_price"]]
    written = 0
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        round_ = 0
        while written < rows:
            for r in real[: rows - written]:
                stamp = dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
                day = dt.date.fromisoformat(r["event_date"])
                if shape == "offers":
                    shift = dt.timedelta(days=366 * round_)
                    day, stamp, book = day + shift, stamp + shift, r["bookmaker"]
                else:
                    stamp += dt.timedelta(minutes=round_)
                    book = f"{r['bookmaker']}{round_ // 60 or ''}"
                posted = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
                row = [day.isoformat(), r["player_name"], "pra", r["line"], book]
                writer.writerow([*row, r["over_price"], r["under_price"], posted])
            written += min(len(real), rows - written)
            round_ += 1
    return written


def head(source: Path, target: Path, rows: int) -> Path:
    with source.open() as src, target.open("w") as out:
        for _, line in zip(range(rows + 1), src, strict=False):
            out.write(line)
    return target


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed_database(seed: Path) -> None:
    """The shipped box scores in ``seed`` (what every ingest checks lines against)."""
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.storage import open_storage

    storage = open_storage(seed)
    try:
        ensure_boxscores(storage)
        storage.execute("CHECKPOINT")
    finally:
        storage.close()


def cli_peak_mb(src: Path, db: Path, csv_path: Path, artifacts: Path) -> tuple[float, float]:
    """Peak resident memory (MB) and seconds of ``nbaprops ingest lines csv_path`` run from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "NBAPROPS_DATA_DIR": str(artifacts)}
    command = [
        sys.executable,
        "-m",
        "nbaprops.cli",
        "ingest",
        "lines",
        str(csv_path),
        "--db",
        str(db),
        "--json",
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def measure_cli(src: Path, folder: Path, seed: Path, big: Path, small: Path) -> dict[str, float]:
    db = folder / "cli.duckdb"
    figures: dict[str, float] = {}
    for name, path in (("idle", small), ("peak", big)):
        shutil.copyfile(seed, db)
        figures[name], seconds = cli_peak_mb(src, db, path, folder / "artifacts")
        shutil.rmtree(folder / "cli.duckdb.tmp", ignore_errors=True)
        db.unlink()
    return {**figures, "after": float("nan"), "seconds": seconds, "status": 0}


def measure_api(src: Path, folder: Path, seed: Path, big: Path) -> dict[str, float]:
    db = folder / "api.duckdb"
    shutil.copyfile(seed, db)
    port = free_port()
    settings = {"NBAPROPS_DATA_DIR": str(folder / "artifacts"), "NBAPROPS_UPLOAD_LIMIT_MB": "4096"}
    proc = start_serve(db, port, folder / "serve.log", settings=settings, src=src, ready_within_s=180)
    try:
        time.sleep(2)
        idle = peak = rss_mb(proc.pid)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with big.open("rb") as handle:
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/ingest/lines",
                files={"files": ("pra_odds.csv", handle, "text/csv")},
                timeout=3600,
            )
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            progress(f"upload answered {response.status_code}: {response.text[:300]}")
        time.sleep(5)
        done.set()
        sampler.join()
        after = rss_mb(proc.pid)
        return {
            "idle": idle,
            "peak": peak,
            "after": after,
            "seconds": seconds,
            "status": response.status_code,
        }
    finally:
        stop_serve(proc)
        shutil.rmtree(folder / "api.duckdb.tmp", ignore_errors=True)
        for path in folder.glob("api.duckdb*"):
            path.unlink(missing_ok=True)


def old_src(rev: str, folder: Path) -> Path:
    """``rev``'s ``src`` folder, unpacked from git into ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    target = folder / "old"
    target.mkdir()
    archive_path = folder / "old.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per tree and path (medians)")
    parser.add_argument("--old", help="a git revision measured first, in the same invocation (e.g. main)")
    parser.add_argument("--paths", default="cli,api", help="cli, api or both")
    parser.add_argument("--shape", choices=("offers", "snapshots"), default="offers")
    parser.add_argument("--csv", type=Path, help="a lines file to measure instead of writing one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nbaprops-upload-bench-"))
    try:
        big = folder / "pra_odds.csv"
        if args.csv:
            shutil.copyfile(args.csv, big)
            with big.open() as handle:
                rows = sum(1 for _ in handle) - 1
        else:
            rows = write_lines(big, args.rows, shape=args.shape)
        small = head(big, folder / "small_pra_odds.csv", 1000)
        size_mb = big.stat().st_size / 1_048_576
        progress(f"{rows} rows ({args.shape}), {size_mb:.1f} MB; seeding the database")
        seed = folder / "seed.duckdb"
        seed_database(seed)
        trees = ([("old", old_src(args.old, folder))] if args.old else []) + [("new", REPO / "src")]
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        measures: dict[str, Callable[[Path], dict[str, float]]] = {
            "cli": lambda src: measure_cli(src, folder, seed, big, small),
            "api": lambda src: measure_api(src, folder, seed, big),
        }
        summary: dict[str, float] = {}
        for tree, src in trees:
            for path in paths:
                runs = []
                for k in range(args.runs):
                    runs.append(measures[path](src))
                    progress(f"{tree} {path} run {k + 1}: {runs[-1]}")
                m = median_of(runs)
                print(
                    f"tree={tree} path={path} runs={args.runs} idle_rss_mb={m['idle']:.0f} "
                    f"peak_rss_mb={m['peak']:.0f} peak_over_idle_mb={m['peak'] - m['idle']:.0f} "
                    f"after_over_idle_mb={m['after'] - m['idle']:.0f} seconds={m['seconds']:.1f} "
                    f"status={max(r['status'] for r in runs):.0f}",
                    flush=True,
                )
                prefix = "" if tree == "new" else "old_"
                summary[f"{prefix}{path}_peak_over_idle_mb"] = m["peak"] - m["idle"]
                if path == "api":
                    summary[f"{prefix}api_after_over_idle_mb"] = m["after"] - m["idle"]
        figures = " ".join(f"{k}={v:.0f}" for k, v in summary.items())
        print(f"rows={rows} upload_mb={size_mb:.1f} {figures} goal_mb={GOAL_MB:.0f}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
