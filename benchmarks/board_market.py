"""Benchmark: what pricing every offer adds to reading the board of a 15-game date.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/board_market.py [--runs 7] [--date 2024-04-14]

A temporary database gets the shipped box scores and the real PRA lines of the date (2024-04-14: 15 games, 877
offers from up to 10 books, alternate lines included, from ``../shared/data/prop-lines-pra``); ``predict`` runs
``moving_average`` on ``pra`` once. Then, alternating in one process, the board is read ``--runs`` times each
way: **plain** (``active_predictions``: the board before issue 20) and **priced** (the same rows plus
:func:`nbaprops.pipeline.board.with_market`: the date's offers read, every one priced by ``price_slate``, the
best over and under joined to each row). Wall and CPU medians; CPU because the machine is shared.

The last line is machine-readable::

    board_plain_ms=<x> board_priced_ms=<y> extra_ms=<y-x> ratio=<y/x> cpu_extra_ms=<..> offers=<n> rows=<n>
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.pipeline.board import with_market
from nbaprops.pipeline.reads import active_predictions
from nbaprops.storage import open_backend, open_storage

SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


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
        ["predict", "--date", day, "--markets", "pra", "--systems", "moving_average", "--train-days", "60",
         "--lines", str(lines), "--db", str(db)],
        env={"NBAPROPS_DATA_DIR": str(folder / "artifacts")},
    )  # fmt: skip
    if result.exit_code != 0:
        raise SystemExit(result.stderr)
    return db


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
        backend = open_backend(Settings(db_path=db))
        try:
            plain, priced, plain_cpu, priced_cpu = [], [], [], []
            with_market(backend, day, *_rows(backend, day))  # warm: imports, the first query plan
            for _ in range(args.runs):
                for timings, cpu, price in ((plain, plain_cpu, False), (priced, priced_cpu, True)):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    names, rows = _rows(backend, day)
                    if price:
                        names, rows = with_market(backend, day, names, rows)
                    timings.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
            offers = backend.features.scalar(
                "SELECT count(*) FROM prop_lines WHERE game_date = ? AND quarantine_reason IS NULL", [day]
            )
            games = backend.features.scalar(
                "SELECT count(DISTINCT game_id) FROM player_prop_predictions WHERE game_date = ?", [day]
            )
        finally:
            backend.close()
    a, b = statistics.median(plain), statistics.median(priced)
    ca, cb = statistics.median(plain_cpu), statistics.median(priced_cpu)
    print(f"{games} games, {len(rows)} board rows, {offers} offers, {args.runs} runs each (medians)")
    print(
        f"board_plain_ms={a:.1f} board_priced_ms={b:.1f} extra_ms={b - a:.1f} ratio={b / a:.2f} "
        f"cpu_plain_ms={ca:.1f} cpu_priced_ms={cb:.1f} cpu_extra_ms={cb - ca:.1f} offers={offers} rows={len(rows)}"
    )


def _rows(backend: object, day: date) -> tuple[list[str], list[list[object]]]:
    names, rows = active_predictions(backend, day)  # type: ignore[arg-type]
    return names, [list(r) for r in rows]


if __name__ == "__main__":
    main()
