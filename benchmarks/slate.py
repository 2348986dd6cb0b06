"""Benchmark: one real slate end to end, and its consolidation into a season-sized main table.

Run from the repository root::

    .venv/bin/python benchmarks/slate.py [--runs 5] [--warmup 0] [--keep]

(a) **slate** — the 15-game slate of 2025-02-12 with the ``moving_average`` system and the ``points``
    market: wall time of :func:`nbaprops.pipeline.run.run_batch` on a fresh copy of a seed database per
    run (schedule, expected players, feature query, workers, staging, consolidation, summary). The model is
    trained once before timing and every run reads the same artifacts dir, so training is not timed.

(b) **consolidate** — a copy of the seed whose ``player_prop_predictions`` already holds one full season
    (2023-24) of synthetic-but-shaped rows (one per player-game, ``points`` × ``moving_average``, active,
    one batch per date, with matching ``prediction_batches`` and ``prediction_requests`` rows). Per run the
    2025-02-12 batch is started and its workers run exactly as ``run_batch`` wires them, but without
    finishing; only :func:`nbaprops.pipeline.consolidate` is timed.

Per-run figures go to stdout, progress to stderr. The last line is machine-readable::

    slate_median_s=<x> consolidate_median_s=<y>

Goals on a 2-core machine (reported, not asserted): slate <= 2 s, consolidation <= 0.3 s.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from nbaprops.clock import SystemClock
from nbaprops.config import Settings
from nbaprops.ingest import ensure_boxscores
from nbaprops.pipeline import Coordinator, consolidate, expected_players, ledger
from nbaprops.pipeline.coordinator import default_as_of
from nbaprops.pipeline.run import run_batch
from nbaprops.pipeline.slate import SlatePredictor, request_targets
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.training import ensure_bundles

GAME_DATE = date(2025, 2, 12)
SYSTEMS = ("moving_average",)
MARKETS = ("points",)
TRAIN_DAYS = 730
MAIN_SEASON = "2023-24"
SLATE_GOAL_S = 2.0
CONSOLIDATE_GOAL_S = 0.3


def progress(msg: str) -> None:
    print(f"[slate-bench] {msg}", file=sys.stderr, flush=True)


def settings_for(db: Path, artifacts: Path) -> Settings:
    return Settings(db_path=db, data_dir=artifacts, systems=SYSTEMS, markets=MARKETS)


# -- setup (untimed) -------------------------------------------------------------------------------
def build_seed(seed: Path, artifacts: Path) -> None:
    """Box scores loaded once, the model trained once, the file checkpointed."""
    t = time.perf_counter()
    storage = open_storage(seed)
    try:
        rows = ensure_boxscores(storage)
        progress(f"seed: loaded {rows} box-score rows in {time.perf_counter() - t:.2f}s")
        t = time.perf_counter()
        ensure_bundles(
            storage,
            settings_for(seed, artifacts),
            GAME_DATE,
            list(MARKETS),
            list(SYSTEMS),
            train_days=TRAIN_DAYS,
            on_message=progress,
        )
        progress(f"seed: models ready in {artifacts} ({time.perf_counter() - t:.2f}s)")
        storage.execute("CHECKPOINT")
    finally:
        storage.close()


def build_main(seed: Path, main: Path, season: str) -> int:
    """Copy of the seed holding a full season of predictions in the main table; returns its row count."""
    t = time.perf_counter()
    shutil.copyfile(seed, main)
    storage = open_storage(main)
    try:
        with storage.transaction() as tx:
            # One synthetic batch per date of the season.
            tx.execute(
                """CREATE TEMP TABLE __season AS
                   SELECT b.*, strftime(b.game_date, '%Y%m%d') || '_' || md5('bench' || b.game_date::VARCHAR)[:12]
                              AS batch_id
                   FROM box_scores b WHERE b.season = ?
                   QUALIFY row_number() OVER (PARTITION BY b.game_id, b.player_lookup ORDER BY b.player_id) = 1""",
                [season],
            )
            tx.execute(
                """INSERT INTO prediction_batches BY NAME
                   SELECT batch_id, game_date, 'complete' AS state, ['points'] AS markets,
                          ['moving_average'] AS systems,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS as_of,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS created_at,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 18 HOUR AS deadline_at,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR + INTERVAL 2 SECOND
                              AS consolidated_at,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR + INTERVAL 2 SECOND
                              AS finished_at,
                          NULL AS staging_table, '{}'::JSON AS summary
                   FROM (SELECT DISTINCT batch_id, game_date FROM __season)"""
            )
            tx.execute(
                """INSERT INTO prediction_requests BY NAME
                   SELECT DISTINCT ON (batch_id, player_lookup)
                          batch_id, player_lookup, player_id, player_name, team, opponent, game_id, is_home,
                          'done' AS state, 1 AS attempt, NULL AS lease_owner, NULL AS lease_expires_at,
                          NULL AS error_code, NULL AS error_message, 1 AS rows_staged,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS created_at,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS updated_at
                   FROM __season ORDER BY batch_id, player_lookup, game_id"""
            )
            tx.execute(
                """INSERT INTO player_prop_predictions BY NAME
                   SELECT sha1(batch_id || '|' || game_id || '|' || player_lookup || '|points|moving_average')[:20]
                              AS prediction_id,
                          batch_id, 'moving_average' AS system_id, 'points' AS market, game_id, game_date,
                          player_lookup, player_id, player_name, team, opponent, is_home,
                          greatest(0.0, pts + 4.0 * (hash(game_id, player_id) % 1000 / 1000.0 - 0.5))
                              AS predicted_value,
                          4.0 + (hash(player_id) % 40) / 10.0 AS predicted_std,
                          NULL AS line_value, NULL AS sportsbook, NULL AS over_price, NULL AS under_price,
                          NULL AS edge, NULL AS p_over_raw, 'NO_LINE' AS recommendation,
                          NULL AS confidence_raw, NULL AS confidence_score, 'none' AS calibration_method,
                          NULL AS expected_value, 'fv1' AS feature_version,
                          60.0 + (hash(player_id, season) % 40) AS feature_quality_score,
                          24 AS feature_count, false AS early_season_flag, NULL AS prediction_error_code,
                          'moving_average@points-' || strftime(game_date, '%Y%m%d') || '-bench' AS model_version,
                          1 AS attempt, true AS is_active, NULL AS superseded_by, NULL AS invalidated_at,
                          NULL AS invalidation_reason,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS created_at,
                          game_date::TIMESTAMP AT TIME ZONE 'UTC' + INTERVAL 17 HOUR AS updated_at
                   FROM __season"""
            )
            tx.execute("DROP TABLE __season")
        storage.execute("CHECKPOINT")
        n = int(storage.scalar("SELECT count(*) FROM player_prop_predictions"))
        batches = int(storage.scalar("SELECT count(*) FROM prediction_batches"))
        progress(
            f"main: {n} prediction rows over {batches} batches ({season}) in {time.perf_counter() - t:.2f}s"
        )
        return n
    finally:
        storage.close()


# -- (a) slate ------------------------------------------------------------------------------------
def slate_run(seed: Path, work: Path, artifacts: Path, i: int) -> tuple[float, dict[str, object]]:
    db = work / f"slate_{i}.duckdb"
    shutil.copyfile(seed, db)
    storage = open_storage(db)
    try:
        settings = settings_for(db, artifacts)
        t = time.perf_counter()
        run = run_batch(storage, settings, GAME_DATE, systems=SYSTEMS, markets=MARKETS, force=True)
        elapsed = time.perf_counter() - t
        s = run.summary
        if s.state != "complete":
            progress(f"WARNING: slate run {i} ended {s.state}")
        return elapsed, {
            "state": s.state,
            "games": run.games,
            "requests": sum(s.requests.values()),
            "done": s.requests.get("done", 0),
            "skipped": s.requests.get("skipped", 0),
            "active": s.active_predictions,
        }
    finally:
        storage.close()
        db.unlink(missing_ok=True)
        Path(str(db) + ".wal").unlink(missing_ok=True)


# -- (b) consolidation ----------------------------------------------------------------------------
def start_and_run_workers(storage: DuckDBStorage, settings: Settings) -> str:
    """What ``run_batch`` does up to (not including) ``Coordinator.finish``; returns the batch id."""
    from nbaprops.ingest.lines import line_players, select_lines
    from nbaprops.ingest.schedule import games_for_date

    clock = SystemClock()
    as_of = default_as_of(GAME_DATE, clock)
    games = games_for_date(storage, GAME_DATE)
    lines = select_lines(storage, GAME_DATE, MARKETS, as_of=as_of)
    bundles = ensure_bundles(storage, settings, GAME_DATE, MARKETS, SYSTEMS, train_days=TRAIN_DAYS)
    requests = expected_players(
        storage,
        GAME_DATE,
        games,
        recent_days=settings.recent_days,
        line_players=line_players(storage, GAME_DATE, MARKETS, as_of),
    )
    coordinator = Coordinator(storage, settings, clock=clock)
    start = coordinator.start(GAME_DATE, requests, markets=MARKETS, systems=SYSTEMS, as_of=as_of, force=True)
    info = ledger.get_batch(storage, start.batch_id)
    predictor = SlatePredictor(
        info, bundles, lines, settings, clock, targets=request_targets(requests, GAME_DATE)
    )
    coordinator.run(start.batch_id, predictor)
    return start.batch_id


def consolidate_run(main: Path, work: Path, artifacts: Path, i: int) -> tuple[float, dict[str, object]]:
    db = work / f"consolidate_{i}.duckdb"
    shutil.copyfile(main, db)
    storage = open_storage(db)
    try:
        settings = settings_for(db, artifacts)
        batch_id = start_and_run_workers(storage, settings)
        staged = int(
            storage.scalar(f'SELECT count(*) FROM "{ledger.get_batch(storage, batch_id).staging_table}"')
        )
        before = int(storage.scalar("SELECT count(*) FROM player_prop_predictions"))
        t = time.perf_counter()
        result = consolidate(storage, batch_id, clock=SystemClock())
        elapsed = time.perf_counter() - t
        after = int(storage.scalar("SELECT count(*) FROM player_prop_predictions"))
        if result.state != "complete" or after - before != result.rows_inserted:
            progress(
                f"WARNING: consolidation run {i}: state={result.state} inserted={result.rows_inserted} "
                f"rows {before}->{after}"
            )
        return elapsed, {
            "state": result.state,
            "main_rows_before": before,
            "staged": staged,
            "inserted": result.rows_inserted,
            "superseded": result.rows_superseded,
            "main_rows_after": after,
        }
    finally:
        storage.close()
        db.unlink(missing_ok=True)
        Path(str(db) + ".wal").unlink(missing_ok=True)


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each measurement (default 5)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="untimed runs of each before timing (default 0)"
    )
    parser.add_argument(
        "--season", default=MAIN_SEASON, help=f"season held by the main table ({MAIN_SEASON})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (seed, main, artifacts)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )

    tmp = Path(tempfile.mkdtemp(prefix="nbaprops-slate-bench-"))
    try:
        seed, main_db, artifacts = tmp / "seed.duckdb", tmp / "main.duckdb", tmp / "artifacts"
        build_seed(seed, artifacts)
        main_rows = build_main(seed, main_db, args.season)

        print(
            f"# slate {GAME_DATE}: systems={','.join(SYSTEMS)} markets={','.join(MARKETS)} "
            f"workers={settings_for(seed, artifacts).workers}"
        )
        for w in range(args.warmup):
            progress(f"slate warm-up {w + 1}/{args.warmup}")
            slate_run(seed, tmp, artifacts, -1 - w)
        slate_times = []
        for i in range(args.runs):
            elapsed, info = slate_run(seed, tmp, artifacts, i)
            slate_times.append(elapsed)
            progress(f"slate run {i + 1}/{args.runs}: {elapsed:.3f}s")
            print(f"slate run={i + 1} wall_s={elapsed:.3f} " + " ".join(f"{k}={v}" for k, v in info.items()))

        print(f"# consolidate {GAME_DATE} into a main table of {main_rows} rows ({args.season})")
        for w in range(args.warmup):
            progress(f"consolidation warm-up {w + 1}/{args.warmup}")
            consolidate_run(main_db, tmp, artifacts, -1 - w)
        cons_times = []
        for i in range(args.runs):
            elapsed, info = consolidate_run(main_db, tmp, artifacts, i)
            cons_times.append(elapsed)
            progress(f"consolidation run {i + 1}/{args.runs}: {elapsed:.3f}s")
            print(
                f"consolidate run={i + 1} wall_s={elapsed:.3f} "
                + " ".join(f"{k}={v}" for k, v in info.items())
            )

        slate_med, cons_med = statistics.median(slate_times), statistics.median(cons_times)
        print(
            f"# slate median {slate_med:.3f}s (min {min(slate_times):.3f}, max {max(slate_times):.3f}); "
            f"goal <= {SLATE_GOAL_S:.1f}s: {'met' if slate_med <= SLATE_GOAL_S else 'NOT met'}"
        )
        print(
            f"# consolidate median {cons_med:.3f}s (min {min(cons_times):.3f}, max {max(cons_times):.3f}); "
            f"goal <= {CONSOLIDATE_GOAL_S:.1f}s: {'met' if cons_med <= CONSOLIDATE_GOAL_S else 'NOT met'}"
        )
        print(f"slate_median_s={slate_med:.3f} consolidate_median_s={cons_med:.3f}", flush=True)
    finally:
        if args.keep:
            progress(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
