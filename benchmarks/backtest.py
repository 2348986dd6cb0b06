"""Full-season walk-forward backtest benchmark: weekly retraining, all five systems.

    .venv/bin/python benchmarks/backtest.py [--runs 3] [--market points] [--season 2024-25] [--train-days 730]

Per run: a fresh copy of a seed database (shipped box scores, plus the real PRA lines of the season when
``--market pra`` and ../shared/data is present), then ``run_backtest`` over the whole season, timed end to end
(features, 25-odd trainings, predictions, grading). Prints each run, the metrics of the last run, and as its
last line ``backtest_median_s=<x>``. Goal on a 2-core machine: at most 180 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nbaprops.backtest import compute_metrics, run_backtest, season_range
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import ingest_lines
from nbaprops.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SYSTEMS = ("moving_average", "matchup", "similarity", "gbm", "ensemble")
GOAL_S = 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
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
            storage.execute("CHECKPOINT")
        times = []
        metrics = []
        for run in range(args.runs):
            path = Path(tmp) / f"run{run}.duckdb"
            shutil.copyfile(seed, path)
            with open_storage(path) as storage:
                t0 = time.perf_counter()
                result = run_backtest(
                    storage, Settings(db_path=path), market=args.market, start=start, end=end, systems=SYSTEMS,
                    retrain_days=args.retrain_days, train_days=args.train_days,
                    on_step=lambda k, n, d: print(f"  step {k}/{n} {d}", file=sys.stderr, flush=True),
                )
                elapsed = time.perf_counter() - t0
            times.append(elapsed)
            metrics = compute_metrics(result.grades)
            print(f"run {run + 1}: {elapsed:.1f} s ({result.days} game days, {result.steps} models, "
                  f"{result.grades.num_rows} graded rows)", flush=True)
            path.unlink()
    print(f"{'system':16} {'n':>7} {'MAE':>7} {'RMSE':>7} {'n_line':>7} {'MAE/l':>7} {'lineMAE':>7} "
          f"{'bets':>5} {'hit':>6} {'ROI':>7} {'ECE':>6}")
    for m in metrics:
        def f(x: float | None, d: int = 3) -> str:
            return "-" if x is None else f"{x:.{d}f}"

        print(f"{m['system_id']:16} {m['n']:>7} {f(m['mae']):>7} {f(m['rmse']):>7} {m['n_lined']:>7} "
              f"{f(m['mae_lined']):>7} {f(m['line_mae']):>7} {m['n_bets']:>5} {f(m['hit_rate']):>6} "
              f"{f(m['roi']):>7} {f(m['ece']):>6}")
    median = statistics.median(times)
    print(f"goal: <= {GOAL_S:.0f} s; runs: {', '.join(f'{t:.1f}' for t in times)}")
    print(f"backtest_median_s={median:.1f}")


if __name__ == "__main__":
    main()
