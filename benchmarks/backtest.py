"""Full-season walk-forward backtest benchmark: weekly retraining, all five systems.

    .venv/bin/python benchmarks/backtest.py [--runs 3] [--old-runs 1] [--workers N] [--market points]
                                            [--season 2024-25] [--train-days 730] [--retrain-days 7]

Per run: a fresh copy of a seed database (shipped box scores, plus the real PRA lines of the season when
``--market pra`` and ../shared/data is present), then ``run_backtest`` over the whole season, timed end to end
(features, 25-odd trainings, predictions, grading). ``--runs`` times the default path (step models fitted in
``--workers`` processes, default one per core); ``--old-runs`` times the original serial path
(``workers=0``) in the same invocation, for the speed-up, and checks that both paths give identical grades
and metrics (every graded column but ids and timestamps, compared exactly). Prints each run (wall and CPU
seconds, CPU including the worker processes, and the load average, since the machine may be shared), the
metrics of the last run, the speed-up, the median CPU seconds (``backtest_median_cpu_s``: what the run costs
whatever else the machine is doing) and as its last line ``backtest_median_s=<x>``. Runs are deterministic: the
dates of neutral-site games, whose box scores name the home team as its own opponent, used to make who is
requested vary from run to run; if two runs differ again, the comparison says whether every difference is on
such dates. Goal on a 2-core machine: at most 60 s.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbaprops.backtest import BacktestResult, run_backtest, season_range
from nbaprops.config import Settings
from nbaprops.evaluation.metrics import compute_metrics
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import ingest_lines
from nbaprops.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SYSTEMS = ("moving_average", "matchup", "similarity", "gbm", "ensemble")
GOAL_S = 60.0
NOT_COMPARED = {"prediction_id", "run_id", "graded_at"}  # differ by construction between two runs


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children: the fitting workers count once their fork server,
    stopped at the end of each run, has ended."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differences(
    old: BacktestResult, new: BacktestResult, *, skip_dates: frozenset[Any] = frozenset()
) -> list[str]:
    """What differs between two runs' grades (rows dated in ``skip_dates`` left out) and, when no date is
    skipped, their metrics; empty when identical."""
    keep = [i for i, d in enumerate(old.grades.column("game_date").to_pylist()) if d not in skip_dates]
    if old.grades.num_rows != new.grades.num_rows:
        return [f"graded rows {old.grades.num_rows} vs {new.grades.num_rows}"]
    out = []
    for name in old.grades.column_names:
        if name in NOT_COMPARED:
            continue
        a, b = old.grades.column(name).to_pylist(), new.grades.column(name).to_pylist()
        n = sum(not _same(a[i], b[i]) for i in keep)
        if n:
            out.append(f"grades.{name}: {n} row(s)")
    if not skip_dates:
        for m_old, m_new in zip(compute_metrics(old.grades), compute_metrics(new.grades), strict=True):
            out += [
                f"metrics[{m_old['system_id']}].{key}: {m_old[key]} vs {m_new[key]}"
                for key in m_old
                if not _same(m_old[key], m_new[key])
            ]
    return out


def compare(label: str, old: BacktestResult, new: BacktestResult, quirk_dates: frozenset[Any]) -> None:
    """Print whether two runs agree; where they do not, whether every difference is on a quirk date."""
    diffs = differences(old, new)
    if not diffs:
        print(f"{label}: identical grades and metrics")
        return
    print(f"{label}: NOT identical: " + "; ".join(diffs[:8]))
    if quirk_dates:
        rest = differences(old, new, skip_dates=quirk_dates)
        print(
            f"  outside the {len(quirk_dates)} dates whose box scores name a team as its own opponent "
            f"({', '.join(sorted(map(str, quirk_dates)))}): "
            + ("identical grades" if not rest else "NOT identical: " + "; ".join(rest[:8]))
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the default (parallel) path")
    parser.add_argument(
        "--old-runs", type=int, default=1, help="timed runs of the original serial path (0: skip)"
    )
    parser.add_argument("--workers", type=int, default=None, help="fitting processes (default: one per core)")
    parser.add_argument("--market", default="points")
    parser.add_argument("--season", default="2024-25")
    parser.add_argument("--train-days", type=int, default=730)
    parser.add_argument("--retrain-days", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nbaprops-bench-") as tmp:
        seed = Path(tmp) / "seed.duckdb"
        with open_storage(seed) as storage:
            ensure_boxscores(storage)
            lines = SHARED / "prop-lines-pra" / args.season / "pra_odds.csv"
            if args.market == "pra":
                if not lines.exists():
                    sys.exit(f"no PRA lines at {lines}; set NBAPROPS_SHARED_DATA")
                ingest_lines(storage, [lines])
            start, end = season_range(storage, args.season)
            # Neutral-site games whose box scores give the home team itself as opponent: their requests were not
            # deterministic before BOX_GAMES_SQL chose its row in a fixed order; a difference there is named apart.
            quirk_dates = frozenset(
                r[0]
                for r in storage.fetchall(
                    "SELECT DISTINCT game_date FROM box_scores WHERE team = opponent AND game_date BETWEEN ? AND ?",
                    [start, end],
                )
            )
            storage.execute("CHECKPOINT")

        def run(label: str, k: int, workers: int | None) -> tuple[float, float, BacktestResult]:
            path = Path(tmp) / f"{label}{k}.duckdb"
            shutil.copyfile(seed, path)
            load = os.getloadavg()[0]
            with open_storage(path) as storage:
                t0, c0 = time.perf_counter(), _cpu_s()
                result = run_backtest(
                    storage,
                    Settings(db_path=path),
                    market=args.market,
                    start=start,
                    end=end,
                    systems=SYSTEMS,
                    retrain_days=args.retrain_days,
                    train_days=args.train_days,
                    workers=workers,
                    on_step=lambda i, n, d: print(f"  step {i}/{n} {d}", file=sys.stderr, flush=True),
                )
                elapsed, cpu = time.perf_counter() - t0, _cpu_s() - c0
            path.unlink()
            print(
                f"{label} run {k + 1}: {elapsed:.1f} s wall, {cpu:.1f} s CPU, load average {load:.1f} at start "
                f"({result.days} game days, {result.steps} models, {result.grades.num_rows} graded rows)",
                flush=True,
            )
            return elapsed, cpu, result

        old = [run("old (serial)", k, 0) for k in range(args.old_runs)]
        new = [run(f"new (workers={args.workers or 'auto'})", k, args.workers) for k in range(args.runs)]

    metrics = compute_metrics(new[-1][2].grades)
    print(
        f"{'system':16} {'n':>7} {'MAE':>7} {'RMSE':>7} {'n_line':>7} {'MAE/l':>7} {'lineMAE':>7} "
        f"{'bets':>5} {'hit':>6} {'ROI':>7} {'ECE':>6}"
    )
    for m in metrics:

        def f(x: float | None, d: int = 3) -> str:
            return "-" if x is None else f"{x:.{d}f}"

        print(
            f"{m['system_id']:16} {m['n']:>7} {f(m['mae']):>7} {f(m['rmse']):>7} {m['n_lined']:>7} "
            f"{f(m['mae_lined']):>7} {f(m['line_mae']):>7} {m['n_bets']:>5} {f(m['hit_rate']):>6} "
            f"{f(m['roi']):>7} {f(m['ece']):>6}"
        )
    times = [t for t, _, _ in new]
    median = statistics.median(times)
    print(f"goal: <= {GOAL_S:.0f} s; runs: {', '.join(f'{t:.1f}' for t in times)}")
    print(f"backtest_median_cpu_s={statistics.median(c for _, c, _ in new):.1f}")
    if old:
        old_median = statistics.median(t for t, _, _ in old)
        print(
            f"old serial path: {', '.join(f'{t:.1f}' for t, _, _ in old)} s; "
            f"speed-up {old_median / median:.2f}x (median {old_median:.1f} s -> {median:.1f} s)"
        )
        for k, (_, _, result) in enumerate(old[1:], start=2):
            compare(f"old run {k} vs old run 1", old[0][2], result, quirk_dates)
        for k, (_, _, result) in enumerate(new, start=1):
            compare(f"new run {k} vs old run 1", old[0][2], result, quirk_dates)
    print(f"backtest_median_s={median:.1f}")


if __name__ == "__main__":
    main()
