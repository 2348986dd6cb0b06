"""The backtest's line reads over a whole season, as of each day's prediction time: one or more source trees.

    .venv/bin/python benchmarks/lines_as_of.py [--src OLD/src ...] [--runs 3] [--season 2024-25] [--hour 24]

The backtest reads a season's consensus lines with one ``select_lines_by_date`` and who has a line with one
``line_players_by_date``, each date as of its prediction time (``default_as_of``: 00:00 UTC after the date).
Since line selection reads the posting history (``prop_line_snapshots``) for keys posted again after that time,
this measures what that costs; ``--hour`` moves the prediction time (hours after 00:00 UTC of each date) earlier,
where more keys were posted again after it. One seed database (shipped box scores and the season's real PRA lines, ingested
with this repository's ``src``) is read by every tree: each ``--src`` (an older checkout's ``src``, e.g. of
``git worktree add --detach``), then this repository's. Every run is a subprocess with that tree on
``PYTHONPATH`` that times both calls (one untimed warm-up call each, then the median of ``REPEATS`` calls); the trees' runs alternate so that a
change in the machine's load falls on all of them.

Prints each run (seconds of each call, the load average at its start), then per tree the medians, their ratio to
the first tree, and how many (date, player) consensus lines and line players differ from the first tree's (the
lines a later posting had hidden from the older reads). The last line is ``lines_as_of_ratio=<x>`` (this tree's
median of both calls over the first tree's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEATS = 5  # calls of each read per run; a run reports their median
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))


def _child_seed(args: argparse.Namespace) -> None:
    """Write the seed database: box scores and the season's real PRA lines."""
    # This repository's nbaprops, imported in the child only (the parent process never imports nbaprops).
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import ingest_lines
    from nbaprops.storage import open_storage

    lines = SHARED / "prop-lines-pra" / args.season / "pra_odds.csv"
    if not lines.exists():
        sys.exit(f"no PRA lines at {lines}; set NBAPROPS_SHARED_DATA")
    with open_storage(args.db) as storage:
        ensure_boxscores(storage)
        ingest_lines(storage, [lines])
        storage.execute("CHECKPOINT")


def _child_run(args: argparse.Namespace) -> None:
    """Time the two season reads of one tree on ``args.db``; prints one JSON line, writes the results."""
    import time
    from datetime import UTC, datetime, timedelta

    import pyarrow.parquet as pq

    # The tree under test (on PYTHONPATH), imported in the child only.
    from nbaprops.ingest.lines import line_players_by_date, select_lines_by_date
    from nbaprops.storage import open_storage

    with open_storage(args.db, read_only=True) as storage:
        days = [r[0] for r in storage.fetchall("SELECT DISTINCT game_date FROM prop_lines ORDER BY 1")]
        # --hour 24: default_as_of of a past date (the backtest's _as_of), 00:00 UTC after it
        as_of = {d: datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=args.hour) for d in days}
        select_lines_by_date(storage, as_of, ["pra"])
        line_players_by_date(storage, as_of, ["pra"])
        lines_s, players_s = [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            lines = select_lines_by_date(storage, as_of, ["pra"])
            middle = time.perf_counter()
            players = line_players_by_date(storage, as_of, ["pra"])
            lines_s.append(middle - start)
            players_s.append(time.perf_counter() - middle)
    pq.write_table(lines, Path(args.out) / "lines.parquet")
    pq.write_table(players, Path(args.out) / "players.parquet")
    print(
        json.dumps(
            {
                "lines_s": statistics.median(lines_s),
                "players_s": statistics.median(players_s),
                "days": len(days),
            }
        )
    )


def _differ(first: Path, other: Path, name: str, key: tuple[str, ...]) -> int:
    """(date, player) rows of ``name`` present in one tree's results only, or different."""
    import pyarrow.parquet as pq  # the parent reads the children's Parquet files only here

    def rows(folder: Path) -> dict[tuple[object, ...], tuple[object, ...]]:
        table = pq.read_table(folder / name).to_pylist()
        return {tuple(r[k] for k in key): tuple(r.values()) for r in table}

    a, b = rows(first), rows(other)
    return sum(1 for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", action="append", default=[], help="an older tree's src (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--season", default="2024-25")
    parser.add_argument(
        "--hour",
        type=float,
        default=24.0,
        help="prediction time, hours after 00:00 UTC of each date (24: the backtest's; earlier: more keys "
        "posted again after it, read from the history)",
    )
    parser.add_argument("--child", choices=("seed", "run"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "seed":
        _child_seed(args)
        return
    if args.child == "run":
        _child_run(args)
        return
    trees = [Path(s).resolve() for s in args.src] + [REPO / "src"]
    work = Path(tempfile.mkdtemp(prefix="lines_as_of_"))
    try:
        db = work / "seed.duckdb"
        seed = [sys.executable, __file__, "--child", "seed", "--db", str(db), "--season", args.season]
        subprocess.run(seed, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, check=True)
        times: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(trees))}
        for run in range(args.runs):
            for i, tree in enumerate(trees):
                out = work / f"tree{i}"
                out.mkdir(exist_ok=True)
                load = os.getloadavg()[0]
                cmd = [sys.executable, __file__, "--child", "run", "--db", str(db), "--out", str(out)]
                cmd += ["--hour", str(args.hour)]
                done = subprocess.run(
                    cmd,
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                times[i].append(result)
                print(
                    f"run {run + 1} tree {i} ({tree}): select_lines_by_date {result['lines_s']:.3f} s, "
                    f"line_players_by_date {result['players_s']:.3f} s, {result['days']} days, load {load:.2f}"
                )
        base = statistics.median(t["lines_s"] + t["players_s"] for t in times[0])
        for i, tree in enumerate(trees):
            lines = statistics.median(t["lines_s"] for t in times[i])
            players = statistics.median(t["players_s"] for t in times[i])
            both = statistics.median(t["lines_s"] + t["players_s"] for t in times[i])
            changed = _differ(
                work / "tree0", work / f"tree{i}", "lines.parquet", ("game_date", "player_lookup")
            )
            who = _differ(
                work / "tree0", work / f"tree{i}", "players.parquet", ("game_date", "player_lookup")
            )
            print(
                f"tree {i} ({tree}): median select_lines_by_date {lines:.3f} s, line_players_by_date "
                f"{players:.3f} s, both {both:.3f} s, ratio {both / base:.2f}; differ from tree 0: "
                f"{changed} consensus lines, {who} line players"
            )
        last = len(trees) - 1
        print(
            f"lines_as_of_ratio={statistics.median(t['lines_s'] + t['players_s'] for t in times[last]) / base:.3f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
