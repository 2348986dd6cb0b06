"""The live day replayed over a real week, checked against the walk-forward backtest.

    .venv/bin/python benchmarks/replay_week.py [--from 2024-03-11] [--to 2024-03-17] [--systems moving_average,matchup]
                                               [--train-days 90] [--runs 1]

Per run, on a fresh copy of a seed database (shipped box scores): the real PRA lines of 2023-24 ingested day by
day, the daily batch of each day, one moved line injected and ``refresh`` on the third day, one player ruled out
and ``invalidate`` on the fifth, each day graded the next morning (``tests/replay.py``); then the walk-forward
backtest over the same dates, systems and models (one step: ``retrain_days=7``). Prints the timings, whether
the live grades and the backtest's are the same rows, and whether ``accuracy`` equals the backtest's metrics;
the last line is ``replay_median_s=<x> backtest_median_s=<y> same_rows=<bool> same_metrics=<bool>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.replay import replay  # noqa: E402

from nbaprops.backtest import run_backtest  # noqa: E402
from nbaprops.config import Settings  # noqa: E402
from nbaprops.evaluation.accuracy import accuracy  # noqa: E402
from nbaprops.evaluation.metrics import compute_metrics  # noqa: E402
from nbaprops.ingest import ensure_boxscores  # noqa: E402
from nbaprops.storage import open_storage  # noqa: E402

SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
COLUMNS = (
    "system_id, market, game_date, player_lookup, predicted_value, line_value, actual_value, "
    "recommendation, outcome, profit, p_win, side_won, model_version"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="start", default="2024-03-11")
    parser.add_argument("--to", dest="end", default="2024-03-17")
    parser.add_argument("--systems", default="moving_average,matchup")
    parser.add_argument("--train-days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    lines = SHARED / "prop-lines-pra" / "2023-24" / "pra_odds.csv"
    if not lines.exists():
        sys.exit(f"shared data not found: {lines}; set NBAPROPS_SHARED_DATA")
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    systems = tuple(s for s in args.systems.split(",") if s)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.duckdb"
        with open_storage(seed) as storage:
            ensure_boxscores(storage)
            storage.execute("CHECKPOINT")
        replay_s, backtest_s, same_rows, same_metrics = [], [], True, True
        for run in range(args.runs):
            work = Path(tmp) / f"run{run}"
            work.mkdir()
            shutil.copyfile(seed, work / "db.duckdb")
            settings = Settings(
                db_path=work / "db.duckdb", markets=("pra",), systems=systems, train_days=args.train_days
            )
            with open_storage(settings.db_path) as storage:
                started = time.perf_counter()
                result = replay(
                    storage,
                    settings,
                    days,
                    lines,
                    work,
                    move_on=days[min(2, len(days) - 1)],
                    rule_out_on=days[min(4, len(days) - 1)],
                )
                replay_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                backtest = run_backtest(
                    storage,
                    settings,
                    market="pra",
                    start=start,
                    end=end,
                    systems=systems,
                    retrain_days=7,
                    train_days=args.train_days,
                )
                backtest_s.append(time.perf_counter() - started)
                live_rows = storage.fetchall(
                    f"SELECT {COLUMNS} FROM prediction_grades WHERE run_id = 'live' "
                    "ORDER BY game_date, system_id, player_lookup"
                )
                bt_rows = storage.fetchall(
                    f"SELECT {COLUMNS} FROM prediction_grades WHERE run_id = ? "
                    "ORDER BY game_date, system_id, player_lookup",
                    [backtest.run_id],
                )
                live = accuracy(storage, since=start, until=end)
                same_rows &= live_rows == bt_rows
                same_metrics &= live["metrics"] == compute_metrics(backtest.grades)
            print(
                f"run {run}: replay {replay_s[-1]:.1f}s ({len(days)} days, {live['graded_rows']} graded rows, "
                f"moved {result.moved['player_lookup']} {result.moved['line']} -> {result.moved['new_line']}, "
                f"ruled out {result.ruled_out['player_lookup']}), backtest {backtest_s[-1]:.1f}s"
            )
            for m in live["metrics"]:
                print(
                    f"  {m['system_id']:>15} n={m['n']} void={m['void']} MAE={m['mae']:.3f} "
                    f"line MAE={m['line_mae']:.3f} bets={m['n_bets']} hit={m['hit_rate']} roi={m['roi']}"
                )
    print(
        f"replay_median_s={statistics.median(replay_s):.1f} backtest_median_s={statistics.median(backtest_s):.1f} "
        f"same_rows={same_rows} same_metrics={same_metrics}"
    )


if __name__ == "__main__":
    main()
