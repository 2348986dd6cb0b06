"""Full-season walk-forward backtest benchmark: all five systems, one or more source trees in one invocation.

    .venv/bin/python benchmarks/backtest.py [--src OLD/src ...] [--runs 3] [--season 2024-25]
                                            [--mae-season 2023-24 ...] [--market points] [--workers N]
                                            [--train-days 730] [--retrain-days N] [--gbm-every N]
                                            [--holdout-every N] [--days N] [--old-runs N] [--baseline K]

Each ``--src`` (an older checkout's ``src``, e.g. of a ``git worktree add --detach``), then this repository's
``src``, is a *tree*. Every run is a subprocess with that tree on ``PYTHONPATH`` running ``run_backtest`` on a
fresh copy of that tree's own seed database (shipped box scores, plus the real PRA lines of the season when
``--market pra`` and ../shared/data is present), timed end to end (features, trainings, predictions, grading).
The trees' runs alternate (tree 1, tree 2, ..., tree 1, ...) so that a change in the machine's load falls on all
of them. ``--retrain-days``, ``--gbm-every`` and ``--holdout-every`` are passed only when given: each tree runs
with its own ``run_backtest`` defaults.
``--old-runs`` adds this tree's serial path (``workers=0``: each step trained in the parent, each day predicted on
its own) as one more tree; it must give the same grades as the default path (tests/backtest checks it too).

Prints each run (wall and CPU seconds, CPU including the fitting processes, the load average at its start), then
per tree the medians of wall and CPU seconds, their ratio to the baseline tree, whether its runs gave identical grades
(every graded column but ids and timestamps, hashed), and the MAE per system of ``--season`` and of each
``--mae-season`` (one more run per tree and season; runs are deterministic) with its difference to the baseline
tree (``--baseline``, default the first). The last line is ``backtest_median_s=<x>`` (this tree's median wall
seconds), preceded by ``backtest_median_cpu_s=<y>`` and, with ``--src``, ``backtest_ratio=<wall ratio to the
baseline>``.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SYSTEMS = ("moving_average", "matchup", "similarity", "gbm", "ensemble")
NOT_COMPARED = {"prediction_id", "run_id", "graded_at"}  # differ by construction between two runs
MAE_TOLERANCE = 0.005


# --- child: runs inside a subprocess with one tree's src on PYTHONPATH (imports only what every tree has) ---


def _child_seed(args: argparse.Namespace) -> None:
    """Write the seed database of this tree: box scores (and the season's PRA lines for ``--market pra``)."""
    # The tree under test is imported here, not at the top: the parent process never imports nbaprops.
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.storage import open_storage

    with open_storage(args.db) as storage:
        ensure_boxscores(storage)
        if args.market == "pra":
            from nbaprops.ingest.lines import ingest_lines  # the tree under test (see above)

            for season in args.seasons:
                lines = SHARED / "prop-lines-pra" / season / "pra_odds.csv"
                if not lines.exists():
                    sys.exit(f"no PRA lines at {lines}; set NBAPROPS_SHARED_DATA")
                ingest_lines(storage, [lines])
        storage.execute("CHECKPOINT")


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children: the fitting workers count once their fork server,
    stopped at the end of each run, has ended."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _child_run(args: argparse.Namespace) -> None:
    """One timed ``run_backtest`` on ``args.db``; prints one JSON line (times, MAE per system, grades hash)."""
    import hashlib
    import time

    # The tree under test (see _child_seed); compute_metrics moved from backtest to evaluation in issue 19.
    from nbaprops.backtest import run_backtest, season_range
    from nbaprops.config import Settings
    from nbaprops.storage import open_storage

    try:
        from nbaprops.evaluation.metrics import compute_metrics
    except ImportError:
        from nbaprops.backtest.metrics import compute_metrics  # type: ignore[no-redef]

    load = os.getloadavg()[0]
    with open_storage(args.db) as storage:
        start, end = season_range(storage, args.season)
        if args.days:
            days = [
                r[0]
                for r in storage.fetchall(
                    "SELECT DISTINCT game_date FROM box_scores WHERE game_date BETWEEN ? AND ? ORDER BY 1",
                    [start, end],
                )
            ]
            start, end = days[0], days[min(args.days, len(days)) - 1]
        extra: dict[str, Any] = {"train_days": args.train_days}
        if args.retrain_days is not None:
            extra["retrain_days"] = args.retrain_days
        if args.gbm_every is not None:
            extra["gbm_every"] = args.gbm_every
        if args.holdout_every is not None:
            extra["holdout_every"] = args.holdout_every
        t0, c0 = time.perf_counter(), _cpu_s()
        result = run_backtest(
            storage,
            Settings(db_path=Path(args.db)),
            market=args.market,
            start=start,
            end=end,
            systems=SYSTEMS,
            workers=args.workers,
            **extra,
        )
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    grades = result.grades
    digest = hashlib.sha256()
    for name in grades.column_names:
        if name not in NOT_COMPARED:
            digest.update(name.encode())
            digest.update(repr(grades.column(name).to_pylist()).encode())
    mae = {m["system_id"]: m["mae"] for m in compute_metrics(grades)}
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "load": load,
                "steps": result.steps,
                "days": result.days,
                "rows": grades.num_rows,
                "mae": mae,
                "digest": digest.hexdigest(),
            }
        ),
        flush=True,
    )


# --- parent ---


class Tree:
    def __init__(self, src: Path, label: str, workers: int | None = None) -> None:
        self.src = src
        self.label = label
        self.workers = workers  # overrides --workers (the serial path of --old-runs: 0)
        self.runs: list[dict[str, Any]] = []
        self.mae: dict[str, dict[str, float]] = {}  # season -> system -> MAE
        self.seed: Path | None = None


def _child(tree: Tree, args: argparse.Namespace, mode: str, db: Path, season: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--db",
        str(db),
        "--season",
        season,
    ]
    cmd += ["--market", args.market, "--train-days", str(args.train_days)]
    cmd += [arg for s in args.all_seasons for arg in ("--mae-season", s)]
    if args.retrain_days is not None:
        cmd += ["--retrain-days", str(args.retrain_days)]
    if args.gbm_every is not None:
        cmd += ["--gbm-every", str(args.gbm_every)]
    if args.holdout_every is not None:
        cmd += ["--holdout-every", str(args.holdout_every)]
    workers = tree.workers if tree.workers is not None else args.workers
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if args.days:
        cmd += ["--days", str(args.days)]
    env = {**os.environ, "PYTHONPATH": str(tree.src)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{tree.label}: {mode} failed:\n{done.stderr[-3000:]}")
    out = done.stdout.strip().splitlines()
    return json.loads(out[-1]) if mode == "run" else {}


def _run(tree: Tree, args: argparse.Namespace, tmp: Path, season: str, k: int) -> dict[str, Any]:
    assert tree.seed is not None
    db = tmp / f"run-{k}.duckdb"
    shutil.copyfile(tree.seed, db)
    try:
        return _child(tree, args, "run", db, season)
    finally:
        db.unlink(missing_ok=True)
        Path(str(db) + ".wal").unlink(missing_ok=True)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--src", action="append", type=Path, default=[], help="another tree's src (repeatable); this one last"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tree")
    parser.add_argument(
        "--baseline",
        type=int,
        default=1,
        help="the tree (1 = the first) that ratios and MAE differences refer to",
    )
    parser.add_argument("--season", default="2024-25", help="the timed season")
    parser.add_argument(
        "--mae-season",
        action="append",
        default=[],
        help="another season whose MAE is measured (one run a tree)",
    )
    parser.add_argument("--workers", type=int, default=None, help="fitting processes (default: one per core)")
    parser.add_argument(
        "--old-runs",
        type=int,
        default=0,
        help="also time this tree's serial path (workers=0) this many times, as one more tree before it",
    )
    parser.add_argument("--market", default="points")
    parser.add_argument("--train-days", type=int, default=730)
    parser.add_argument(
        "--retrain-days", type=int, default=None, help="game days per step (default: each tree's own default)"
    )
    parser.add_argument(
        "--gbm-every",
        type=int,
        default=None,
        help="steps between two gbm fits (default: each tree's own; a tree before issue 21's second pass has none)",
    )
    parser.add_argument(
        "--holdout-every",
        type=int,
        default=None,
        help="steps between two holdout fits (default: each tree's own; as --gbm-every)",
    )
    parser.add_argument(
        "--days", type=int, default=0, help="only the first N game days of the season (0: all)"
    )
    parser.add_argument("--child", choices=("seed", "run"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seasons = [args.season, *args.mae_season]
    if args.child == "seed":
        _child_seed(args)
        return
    if args.child == "run":
        _child_run(args)
        return
    args.all_seasons = args.mae_season  # the seed child ingests PRA lines of every season measured

    trees = [Tree(src.resolve(), f"tree {i + 1} ({src})") for i, src in enumerate(args.src)]
    if args.old_runs:
        trees.append(Tree(REPO / "src", f"tree {len(trees) + 1} (this tree, serial path)", workers=0))
    trees.append(Tree(REPO / "src", f"tree {len(trees) + 1} (this tree)"))
    for tree in trees:
        if not (tree.src / "nbaprops").is_dir():
            sys.exit(f"{tree.src} holds no nbaprops package")
    with tempfile.TemporaryDirectory(prefix="nbaprops-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for i, tree in enumerate(trees):
            tree.seed = tmp / f"seed-{i}.duckdb"
            _child(tree, args, "seed", tree.seed, args.season)
        for k in range(max(args.runs, args.old_runs)):
            for tree in trees:
                if k >= (args.old_runs if tree.workers == 0 else args.runs):
                    continue
                r = _run(tree, args, tmp, args.season, k)
                tree.runs.append(r)
                tree.mae[args.season] = r["mae"]
                print(
                    f"{tree.label} run {k + 1}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, load average "
                    f"{r['load']:.1f} at start ({r['days']} game days, {r['steps']} steps, {r['rows']} graded "
                    f"rows)",
                    flush=True,
                )
        for season in args.mae_season:
            for tree in trees:
                if tree.workers == 0:
                    continue  # the serial path's grades are the default path's
                r = _run(tree, args, tmp, season, 99)
                tree.mae[season] = r["mae"]
                print(
                    f"{tree.label} {season}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, load average "
                    f"{r['load']:.1f} ({r['steps']} steps, {r['rows']} graded rows)",
                    flush=True,
                )

    if not 1 <= args.baseline <= len(trees):
        sys.exit(f"--baseline must be between 1 and {len(trees)}")
    base = trees[args.baseline - 1]
    base_wall = statistics.median(r["wall"] for r in base.runs)
    base_cpu = statistics.median(r["cpu"] for r in base.runs)
    print(f"\n{'tree':40} {'wall med':>9} {'ratio':>6} {'CPU med':>8} {'ratio':>6}  identical runs")
    for tree in trees:
        wall = statistics.median(r["wall"] for r in tree.runs)
        cpu = statistics.median(r["cpu"] for r in tree.runs)
        same = len({r["digest"] for r in tree.runs}) == 1
        print(
            f"{tree.label[:40]:40} {wall:>9.1f} {wall / base_wall:>6.2f} {cpu:>8.1f} {cpu / base_cpu:>6.2f}  "
            f"{'yes' if same else 'NO'} ({len(tree.runs)} runs)"
        )
    within = True
    for season in args.seasons:  # the MAE condition: every tree within the tolerance of the baseline
        print(f"\nMAE {args.market} {season} (difference to tree {args.baseline}; tolerance {MAE_TOLERANCE})")
        for sid in SYSTEMS:
            cells = []
            for tree in trees:
                value = tree.mae.get(season, {}).get(sid)
                ref = base.mae.get(season, {}).get(sid)
                diff = None if value is None or ref is None else value - ref
                if tree is trees[-1] and diff is not None and abs(diff) > MAE_TOLERANCE:
                    within = False
                cells.append(f"{_fmt(value)} ({'+' if (diff or 0) >= 0 else ''}{_fmt(diff)})")
            print(f"  {sid:16} " + "   ".join(cells))
    new = trees[-1]
    wall = statistics.median(r["wall"] for r in new.runs)
    print(
        f"\nthis tree's MAE within {MAE_TOLERANCE} of tree {args.baseline} for every system and season: {within}"
    )
    if len(trees) > 1:
        print(f"backtest_ratio={wall / base_wall:.2f}")
    print(f"backtest_median_cpu_s={statistics.median(r['cpu'] for r in new.runs):.1f}")
    print(f"backtest_median_s={wall:.1f}")


if __name__ == "__main__":
    main()
