"""Benchmark: what pricing every offer adds to a 15-game date — to the board's read and to the slate.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/board_market.py [--runs 7] [--date 2024-04-14]

A temporary database gets the shipped box scores and the real PRA lines of the date (2024-04-14: 15 games, 877
offers from up to 10 books, alternate lines included, from ``../shared/data/prop-lines-pra``); ``predict`` runs
``moving_average`` on ``pra`` once (the model is trained there, untimed). Then, alternating in one process,
``--runs`` times each:

- **slate**: the date's batch again (:func:`nbaprops.pipeline.run.run_batch`, ``force``: a new batch that
  supersedes the last), what the board's pricing is weighed against;
- **plain**: the board without the market (:func:`nbaprops.pipeline.reads.active_table`, the board's rows in
  its order);
- **priced**: the board as ``predictions --json`` and the API build it
  (:func:`nbaprops.service.operations.board_of`: the same rows, the offers of the rows read and priced in one
  ``price_slate`` call, the best over and under joined, the line moves of the bets).

Wall and CPU medians; CPU because the machine is shared. The last line is machine-readable::

    slate_ms=<s> board_plain_ms=<x> board_priced_ms=<y> extra_ms=<y-x> share_of_slate=<(y-x)/s>
    cpu_slate_ms=.. cpu_plain_ms=.. cpu_priced_ms=.. cpu_extra_ms=.. cpu_share_of_slate=.. offers=<n> rows=<n>

Goal (issue 20, reported): pricing adds < 20% to the slate's time.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.pipeline.reads import active_table
from nbaprops.pipeline.run import run_batch
from nbaprops.service.operations import board_of
from nbaprops.storage import open_backend, open_storage

SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MARKETS, SYSTEMS, TRAIN_DAYS = ("pra",), ("moving_average",), 60


def _seed(folder: Path, day: str) -> Path:
    db = folder / "board.duckdb"
    storage = open_storage(db)
    ensure_boxscores(storage)
    storage.close()
    season = "2023-24" if day < "2024-07-01" else "2024-25"
    source = SHARED / "prop-lines-pra" / season / "pra_odds.csv"
    lines = folder / "day_pra.csv"
    with source.open(newline="") as handle, lines.open("w", newline="") as out:
        reader = csv.DictReader(handle)
        writer = csv.DictWriter(out, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        writer.writerows(r for r in reader if r["event_date"] == day)
    result = CliRunner().invoke(
        app,
        ["predict", "--date", day, "--markets", ",".join(MARKETS), "--systems", ",".join(SYSTEMS),
         "--train-days", str(TRAIN_DAYS), "--lines", str(lines), "--db", str(db)],
        env={"NBAPROPS_DATA_DIR": str(folder / "artifacts")},
    )  # fmt: skip
    if result.exit_code != 0:
        raise SystemExit(result.stderr)
    return db


def _timed(work: Callable[[], object], wall: list[float], cpu: list[float]) -> object:
    start, start_cpu = time.perf_counter(), time.process_time()
    out = work()
    wall.append((time.perf_counter() - start) * 1000)
    cpu.append((time.process_time() - start_cpu) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--date", default="2024-04-14")
    args = parser.parse_args()
    day = date.fromisoformat(args.date)
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        db = _seed(Path(workdir), args.date)
        print(f"seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        settings = Settings(
            db_path=db,
            data_dir=Path(workdir) / "artifacts",
            systems=SYSTEMS,
            markets=MARKETS,
            train_days=TRAIN_DAYS,
        )
        backend = open_backend(settings)
        try:
            jobs: dict[str, Callable[[], object]] = {
                "slate": lambda: run_batch(
                    backend, settings, day, markets=MARKETS, systems=SYSTEMS, force=True
                ),
                "plain": lambda: active_table(backend, day),
                "priced": lambda: board_of(backend, settings, game_date=day),
            }
            wall: dict[str, list[float]] = {name: [] for name in jobs}
            cpu: dict[str, list[float]] = {name: [] for name in jobs}
            for job in jobs.values():  # warm: imports, the first query plans
                job()
            for i in range(args.runs):
                for name, job in jobs.items():
                    _timed(job, wall[name], cpu[name])
                print(
                    f"run {i + 1}: "
                    + " ".join(f"{n} {wall[n][-1]:.0f} ms ({cpu[n][-1]:.0f} CPU)" for n in jobs),
                    file=sys.stderr,
                )
            table, _ = board_of(backend, settings, game_date=day)
            offers = backend.features.scalar(
                "SELECT count(*) FROM prop_lines WHERE game_date = ? AND quarantine_reason IS NULL", [day]
            )
            games = backend.features.scalar(
                "SELECT count(DISTINCT game_id) FROM player_prop_predictions WHERE game_date = ?", [day]
            )
        finally:
            backend.close()
    w = {n: statistics.median(v) for n, v in wall.items()}
    c = {n: statistics.median(v) for n, v in cpu.items()}
    extra, cpu_extra = w["priced"] - w["plain"], c["priced"] - c["plain"]
    print(f"{games} games, {table.num_rows} board rows, {offers} offers, {args.runs} runs each (medians)")
    print(
        f"slate_ms={w['slate']:.0f} board_plain_ms={w['plain']:.1f} board_priced_ms={w['priced']:.1f} "
        f"extra_ms={extra:.1f} share_of_slate={extra / w['slate']:.3f} "
        f"cpu_slate_ms={c['slate']:.0f} cpu_plain_ms={c['plain']:.1f} cpu_priced_ms={c['priced']:.1f} "
        f"cpu_extra_ms={cpu_extra:.1f} cpu_share_of_slate={cpu_extra / c['slate']:.3f} "
        f"offers={offers} rows={table.num_rows}"
    )


if __name__ == "__main__":
    main()
