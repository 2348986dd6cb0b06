"""Benchmark: how the cost of the daily operations grows with the history a store holds (issue 21, part 1).

Run from the repository root::

    .venv/bin/python benchmarks/scale.py [--sizes 1,2,5] [--runs 3] [--keep DIR] [--src OLD/src ...]

For each size N a store is built holding the N seasons that end with 2023-24 (from the shipped box scores,
generated in SQL, not by running N real seasons), shaped like a user who ran ``daily`` and ``refresh`` every
night: every player-game × the five markets × the seven systems, one ``daily`` batch per game day, a
``line_update`` batch that supersedes a tenth of the players' rows on every other day, every active row graded
(run ``live``), and two books' lines per player-game and market, stored date after date as nightly use appends
them (the line_update rows after all the daily ones: a slightly worse order than real use). On each store, in a fresh process (so its peak
memory is its own), medians of ``--runs``:

- ``consolidate``: a 15-game slate (2025-02-12, every player expected that day × 5 markets × 7 systems staged)
  merged into the main table — the merge transaction only;
- ``board``: the board of one date (2024-03-12), the ``predictions`` operation the CLI and the API share;
  ``board_api``: the same board as the JSON body of ``GET /v1/predictions?date=`` (without HTTP);
- ``grade``: ``grade_date`` of that night, its grades removed first so every run grades the whole night;
- ``accuracy``: ``accuracy`` over the 2023-24 season, every market and system;
- ``batches``: the ``batches`` operation (the 50 newest); ``status``: the ``status`` operation of the newest;
- the file's size, and the process's peak resident memory (``ru_maxrss``);
- ``open_s``: the first open of the store's copy, in a process of its own before the measuring one: a tree whose
  schema differs from the one the store was built with upgrades the file there (not timed in the others).

Each ``--src`` (an older checkout's ``src``, e.g. a worktree of main) is measured too, before this repository's
``src``, on its own fresh copy of each store, size after size (every tree on one size before the next size, so the
trees share the machine's load): the curves before and after come out of one invocation. Stores are built by this
first tree given (the first ``--src``, else this repository's: an older tree's files are the ones its users hold, which a newer tree upgrades at ``open_s``); ``--keep DIR`` builds them once and reuses them. Per tree and size a line goes to stdout with
the load average, then per tree each operation's curve with the ratio of the largest size to the smallest; the
last line, of this repository's tree, is machine-readable::

    scale_max_ratio=<r> consolidate_5s_s=<x> board_5s_ms=<y> grade_5s_s=<z> accuracy_5s_s=<w> ...

Goals (issue 21): every ratio <= 1.5; at 5 seasons consolidation <= 0.3 s, board <= 100 ms, grade <= 2 s,
accuracy <= 3 s. Reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from nbaprops.clock import SystemClock
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.markets import MARKETS
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

SEASONS = ("2019-20", "2020-21", "2021-22", "2022-23", "2023-24")
SYSTEMS = ("moving_average", "matchup", "similarity", "gbm", "ensemble", "minutes_rate", "market_blend")
BOOKS = ("BookA", "BookB")
SLATE_DATE = date(2025, 2, 12)
BOARD_DATE = date(2024, 3, 12)
SEASON_SPAN = (date(2023, 10, 24), date(2024, 4, 14))
STAT = {
    "points": "pts",
    "rebounds": "reb",
    "assists": "ast",
    "threes": "coalesce(fg3m, 0)",
    "pra": "pts + reb + ast",
}
GOALS = {"consolidate_s": 0.3, "board_ms": 100.0, "grade_s": 2.0, "accuracy_s": 3.0}


def progress(msg: str) -> None:
    print(f"[scale-bench] {msg}", file=sys.stderr, flush=True)


# -- building a store (untimed) ------------------------------------------------------------------------
def _market_rows() -> str:
    return " UNION ALL ".join(f"SELECT '{m}' AS market, {i} AS market_no" for i, m in enumerate(MARKETS))


def _system_rows() -> str:
    return " UNION ALL ".join(f"SELECT '{s}' AS system_id, {i} AS system_no" for i, s in enumerate(SYSTEMS))


def build_store(seed: Path, path: Path, seasons: tuple[str, ...]) -> dict[str, int]:
    """A copy of the seed holding ``seasons`` of daily use (see the module docstring)."""
    shutil.copyfile(seed, path)
    storage = open_storage(path)
    stat_case = "CASE m.market " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in STAT.items()) + " END"
    try:
        with storage.transaction() as tx:
            tx.execute(
                f"""CREATE TEMP TABLE __pg AS
                    SELECT b.*, 'daily_' || strftime(b.game_date, '%Y%m%d') AS batch_id,
                           'refresh_' || strftime(b.game_date, '%Y%m%d') AS update_batch,
                           (day(b.game_date) % 2 = 0 AND hash(b.player_lookup, b.game_date) % 10 = 0) AS moved
                    FROM box_scores b WHERE b.season IN ({", ".join("?" for _ in seasons)})
                    QUALIFY row_number() OVER (PARTITION BY b.game_id, b.player_lookup ORDER BY b.player_id) = 1""",
                list(seasons),
            )
            t0 = "game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR"
            markets_list = "[" + ", ".join(f"'{m}'" for m in MARKETS) + "]"
            systems_list = "[" + ", ".join(f"'{s}'" for s in SYSTEMS) + "]"
            for batch, kind, where, hour in (
                ("batch_id", "daily", "true", 0),
                ("update_batch", "line_update", "moved", 2),
            ):
                tx.execute(
                    f"""INSERT INTO prediction_batches BY NAME
                        SELECT batch_id, game_date, '{kind}' AS kind, 'complete' AS state,
                               {markets_list} AS markets, {systems_list} AS systems,
                               {t0} + INTERVAL {hour} HOUR AS as_of, {t0} + INTERVAL {hour} HOUR AS created_at,
                               {t0} + INTERVAL {hour + 1} HOUR AS deadline_at,
                               {t0} + INTERVAL {hour} HOUR + INTERVAL 30 SECOND AS consolidated_at,
                               {t0} + INTERVAL {hour} HOUR + INTERVAL 30 SECOND AS finished_at,
                               NULL AS staging_table, '{{}}'::JSON AS summary
                        FROM (SELECT DISTINCT {batch} AS batch_id, game_date FROM __pg WHERE {where})"""
                )
                tx.execute(
                    f"""INSERT INTO prediction_requests BY NAME
                        SELECT DISTINCT ON ({batch}, player_lookup)
                               {batch} AS batch_id, player_lookup, player_id, player_name, team, opponent, game_id,
                               is_home, 'done' AS state, 1 AS attempt, {len(MARKETS) * len(SYSTEMS)} AS rows_staged,
                               {t0} AS created_at, {t0} AS updated_at
                        FROM __pg WHERE {where} ORDER BY {batch}, player_lookup, game_id"""
                )
            # Every (player-game, market, system): the daily row, and its line_update replacement when moved.
            for batch, where, active, superseded in (
                ("batch_id", "true", "NOT moved", "CASE WHEN moved THEN sha1(update_batch || key)[:20] END"),
                ("update_batch", "moved", "true", "NULL"),
            ):
                tx.execute(
                    f"""INSERT INTO player_prop_predictions BY NAME
                        SELECT sha1({batch} || key)[:20] AS prediction_id, {batch} AS batch_id, system_id, market,
                               game_id, game_date, player_lookup, player_id, player_name, team, opponent, is_home,
                               greatest(0.0, actual + 4.0 * (hash(key) % 1000 / 1000.0 - 0.5)) AS predicted_value,
                               3.0 + (hash(player_id) % 40) / 10.0 AS predicted_std,
                               line AS line_value, 'BookA' AS sportsbook, -110.0 AS over_price,
                               -110.0 AS under_price, predicted_value - line AS edge, 0.5 AS p_over_raw,
                               0.5 AS p_over, 'PASS' AS recommendation, 0.5 AS confidence_raw,
                               0.5 AS confidence_score, 'no_signal' AS calibration_method,
                               NULL AS expected_value, 'fv3' AS feature_version, 80.0 AS feature_quality_score,
                               24 AS feature_count, false AS early_season_flag,
                               system_id || '@' || market || '-bench' AS model_version, 1 AS attempt,
                               {active} AS is_active, {superseded} AS superseded_by,
                               {t0} AS created_at, {t0} AS updated_at
                        FROM (SELECT p.*, m.market, s.system_id, {stat_case} AS actual,
                                     '|' || p.game_id || '|' || p.player_lookup || '|' || m.market || '|'
                                         || s.system_id AS key,
                                     floor({stat_case} * 0.9 + (hash(p.player_id, m.market) % 5)) + 0.5 AS line
                              FROM __pg p, ({_market_rows()}) m, ({_system_rows()}) s WHERE {where})
                        ORDER BY game_date, game_id, player_lookup, market, system_id"""
                )
            tx.execute(
                f"""INSERT INTO prediction_grades BY NAME
                    SELECT prediction_id, 'live' AS run_id, system_id, market, game_date, player_lookup,
                           predicted_value, line_value, line_value + 1.0 AS actual_value, NULL AS void_reason,
                           recommendation, NULL AS outcome, NULL AS profit, 0.5 AS p_win, 'over' AS side,
                           p_over_raw, true AS side_won, predicted_std, sportsbook, over_price, under_price,
                           model_version, {t0} + INTERVAL 1 DAY AS graded_at, calibration_method
                    FROM player_prop_predictions WHERE is_active ORDER BY game_date"""
            )
            tx.execute(
                f"""INSERT INTO prop_lines BY NAME
                    SELECT p.game_date, p.player_lookup, p.player_name, m.market, k.bookmaker,
                           floor({stat_case} * 0.9 + (hash(p.player_id, m.market) % 5)) + 0.5 + k.shift AS line,
                           -110.0 AS over_price, -110.0 AS under_price, true AS is_main, p.team, p.opponent,
                           CASE WHEN p.is_home THEN p.team ELSE p.opponent END AS home_team,
                           CASE WHEN p.is_home THEN p.opponent ELSE p.team END AS away_team,
                           {t0} - INTERVAL 2 HOUR AS posted_at, 'bench' AS source
                    FROM __pg p, ({_market_rows()}) m,
                         (SELECT 'BookA' AS bookmaker, 0.0 AS shift UNION ALL SELECT 'BookB', 1.0) k
                    ORDER BY p.game_date"""
            )
            tx.execute("DROP TABLE __pg")
        storage.execute("CHECKPOINT")
        return {
            table: int(storage.scalar(f"SELECT count(*) FROM {table}"))
            for table in ("player_prop_predictions", "prediction_grades", "prop_lines", "prediction_batches")
        }
    finally:
        storage.close()


# -- measuring one store (in its own process) ------------------------------------------------------------
def _median(runs: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _stage_slate(storage: DuckDBStorage, settings: Settings) -> str:
    """A started batch of the 15-game slate whose every request is done with its rows staged."""
    from nbaprops.ingest.schedule import games_for_date
    from nbaprops.pipeline import Coordinator, expected_players, ledger

    clock = SystemClock()
    as_of = datetime(2025, 2, 12, 22, 0, tzinfo=UTC)
    games = games_for_date(storage, SLATE_DATE)
    requests = expected_players(storage, SLATE_DATE, games, recent_days=settings.recent_days)
    start = Coordinator(storage, settings, clock=clock).start(
        SLATE_DATE, requests, markets=MARKETS, systems=SYSTEMS, as_of=as_of, force=True
    )
    staging = ledger.get_batch(storage, start.batch_id).staging_table
    assert staging is not None
    with storage.transaction() as tx:
        tx.execute(
            f"""INSERT INTO "{staging}" BY NAME
                SELECT sha1(r.batch_id || r.game_id || r.player_lookup || m.market || s.system_id)[:20]
                           AS prediction_id,
                       r.batch_id, s.system_id, m.market, r.game_id, ?::DATE AS game_date, r.player_lookup,
                       r.player_id, r.player_name, r.team, r.opponent, r.is_home, 10.0 AS predicted_value,
                       4.0 AS predicted_std, 'NO_LINE' AS recommendation, 1 AS attempt, false AS is_active,
                       now() AS created_at, now() AS updated_at
                FROM prediction_requests r, ({_market_rows()}) m, ({_system_rows()}) s
                WHERE r.batch_id = ? AND r.game_id IS NOT NULL""",
            [SLATE_DATE, start.batch_id],
        )
        tx.execute(
            "UPDATE prediction_requests SET state = 'done', attempt = 1, rows_staged = ? "
            "WHERE batch_id = ? AND game_id IS NOT NULL",
            [len(MARKETS) * len(SYSTEMS), start.batch_id],
        )
        tx.execute(
            "UPDATE prediction_requests SET state = 'skipped', error_code = 'no_history' "
            "WHERE batch_id = ? AND game_id IS NULL",
            [start.batch_id],
        )
    return start.batch_id


def _api_board(storage: DuckDBStorage, settings: Settings) -> Callable[[], bytes]:
    """What ``GET /v1/predictions?date=`` computes for its body (the JSON bytes), in this tree or an older one."""
    from nbaprops.service.routers import predictions as route

    if hasattr(route, "board_body"):  # the board written from its Arrow columns
        return lambda: route.board_body(storage, settings, BOARD_DATE)
    from nbaprops.service.operations import OPERATIONS

    return lambda: route.board_json(
        BOARD_DATE, OPERATIONS["predictions"](storage, settings, game_date=BOARD_DATE.isoformat())
    )


def measure(path: Path, runs: int) -> dict[str, Any]:
    from nbaprops.evaluation.accuracy import accuracy
    from nbaprops.evaluation.grading import grade_date
    from nbaprops.pipeline import consolidate
    from nbaprops.service.operations import OPERATIONS

    settings = Settings(db_path=path, markets=MARKETS, systems=SYSTEMS)
    figures: dict[str, Any] = {"size_mb": round(path.stat().st_size / 2**20, 1)}
    storage = open_storage(path)
    try:
        consolidations = []
        for _ in range(runs):
            batch_id = _stage_slate(storage, settings)
            t = time.perf_counter()
            result = consolidate(storage, batch_id, clock=SystemClock())
            consolidations.append(time.perf_counter() - t)
            assert result.rows_inserted > 10_000, result
        figures["consolidate_s"] = statistics.median(consolidations)
        figures["slate_rows"] = result.rows_inserted
        board = OPERATIONS["predictions"]
        figures["board_ms"] = 1000 * _median(
            runs, lambda: board(storage, settings, game_date=BOARD_DATE.isoformat())
        )
        figures["board_rows"] = len(board(storage, settings, game_date=BOARD_DATE.isoformat())["rows"])
        figures["board_api_ms"] = 1000 * _median(runs, _api_board(storage, settings))

        grades = []
        for _ in range(runs):
            storage.execute(
                "DELETE FROM prediction_grades WHERE run_id = 'live' AND game_date = ?", [BOARD_DATE]
            )
            t = time.perf_counter()
            graded = grade_date(storage, BOARD_DATE, clock=SystemClock())
            grades.append(time.perf_counter() - t)
        figures["grade_s"] = statistics.median(grades)
        figures["graded_rows"] = graded.rows
        figures["accuracy_s"] = _median(
            runs, lambda: accuracy(storage, since=SEASON_SPAN[0], until=SEASON_SPAN[1])
        )
        figures["batches_ms"] = 1000 * _median(
            runs, lambda: OPERATIONS["batches"](storage, settings, limit=50)
        )
        figures["status_ms"] = 1000 * _median(runs, lambda: OPERATIONS["status"](storage, settings))
    finally:
        storage.close()
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


# -- main -------------------------------------------------------------------------------------------
TIMED = ("consolidate_s", "board_ms", "board_api_ms", "grade_s", "accuracy_s", "batches_ms", "status_ms")
REPO = Path(__file__).resolve().parents[1]


def build_missing(work: Path, sizes: list[int]) -> dict[str, Any]:
    """The seed and the stores of ``sizes`` seasons in ``work`` that are not there yet."""
    seed = work / "seed.duckdb"
    if not seed.exists():
        storage = open_storage(seed)
        ensure_boxscores(storage)
        storage.execute("CHECKPOINT")
        storage.close()
    built = {}
    for size in sizes:
        path = work / f"store_{size}s.duckdb"
        if not path.exists():
            t = time.perf_counter()
            counts = build_store(seed, path, SEASONS[-size:])
            progress(f"{size} season(s): built in {time.perf_counter() - t:.1f}s: {counts}")
            built[str(size)] = counts
    return built


def open_once(path: Path) -> float:
    """Seconds to open the file and close it again: the tree's schema upgrade of a file built before, if any."""
    t = time.perf_counter()
    open_storage(path).close()
    return time.perf_counter() - t


def _child(src: Path, *args: str, progress_shown: bool = False) -> dict[str, Any] | None:
    """Run this script with ``args`` on the tree ``src``; its last line of output, or None when it failed."""
    child = subprocess.run(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=None if progress_shown else subprocess.PIPE,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    if child.returncode != 0:
        progress(f"{src}: {args[0]} failed" + (f": {child.stderr[-3000:]}" if child.stderr else ""))
        return None
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def measure_in_child(store: Path, work: Path, src: Path, runs: int) -> dict[str, Any] | None:
    """The figures of a fresh copy of ``store`` measured by the source tree ``src``: opened once in a process of
    its own first (``open_s``: a tree that upgrades the schema does it there), then measured in another."""
    run_copy = work / f"run_{store.name}"
    shutil.copyfile(store, run_copy)
    try:
        opened = _child(src, "--open", str(run_copy))
        figures = _child(src, "--measure", str(run_copy), "--runs", str(runs))
    finally:
        run_copy.unlink(missing_ok=True)
        Path(f"{run_copy}.wal").unlink(missing_ok=True)
    if opened is None or figures is None:
        return None
    return {"open_s": opened["open_s"], **figures}


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,2,5", help="seasons held by each store (default 1,2,5)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each measurement (default 3)")
    parser.add_argument("--keep", type=Path, help="build the stores in this folder and keep them")
    parser.add_argument(
        "--src",
        type=Path,
        action="append",
        default=[],
        help="another tree's src measured too, before this repository's (repeatable): before and after",
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--open", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.open is not None:
        print(json.dumps({"open_s": open_once(args.open)}))
        return 0
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.runs)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 1 <= s <= len(SEASONS) for s in sizes):
        parser.error(f"sizes are 1..{len(SEASONS)} seasons")
    if args.build is not None:
        print(json.dumps(build_missing(args.build, sizes)))
        return 0
    trees = [src.resolve() for src in args.src] + [REPO / "src"]
    work = args.keep or Path(tempfile.mkdtemp(prefix="nbaprops-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # Built by the first tree: with a --src, the files an existing user of that tree holds.
        if _child(trees[0], "--build", str(work), "--sizes", args.sizes, progress_shown=True) is None:
            return 1
        results: dict[Path, dict[int, dict[str, Any]]] = {tree: {} for tree in trees}
        print(f"load average before: {_load()}", flush=True)
        for size in sizes:
            path = work / f"store_{size}s.duckdb"
            for tree in trees:  # one size after the other, every tree on it: the same load for each
                figures = measure_in_child(path, work, tree, args.runs)
                if figures is None:
                    return 1
                results[tree][size] = figures
                print(
                    f"tree={tree} {size} season(s): "
                    + " ".join(
                        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
                    )
                    + f" load={_load()}",
                    flush=True,
                )
        print(f"load average after: {_load()}", flush=True)
        small, large = min(sizes), max(sizes)
        for tree in trees:
            curve = results[tree]
            ratios = {k: curve[large][k] / curve[small][k] for k in TIMED if curve[small][k] > 0}
            print(f"tree={tree}")
            for k in TIMED:
                points = " ".join(f"{curve[size][k]:.3f}" for size in sizes)
                print(f"  {k:<14} {points}  ratio {large}/{small} = {ratios.get(k, float('nan')):.2f}")
            over = {k: v for k, v in curve[large].items() if k in GOALS and v > GOALS[k]}
            if over:
                print(f"  over the goal at {large} seasons: {over}")
        curve = results[trees[-1]]  # this repository's tree
        ratios = {k: curve[large][k] / curve[small][k] for k in TIMED if curve[small][k] > 0}
        print(
            f"scale_max_ratio={max(ratios.values()):.2f} "
            + " ".join(
                f"{k.rsplit('_', 1)[0]}_{large}s_{k.rsplit('_', 1)[1]}={curve[large][k]:.3f}" for k in TIMED
            )
            + f" size_{large}s_mb={curve[large]['size_mb']} peak_rss_{large}s_mb={curve[large]['peak_rss_mb']}"
        )
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
