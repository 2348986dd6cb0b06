"""Test support for the pipeline: a small real predictor, a slate from the real box scores, and the
invariant checker every fault scenario ends with (DESIGN.md I1–I9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pyarrow as pa

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.pipeline import ChunkPrediction, Coordinator, Lease, RequestOutcome, expected_players
from nbaprops.pipeline.rows import staging_rows
from nbaprops.storage.duckdb import DuckDBStorage

SLATE_DATE = date(2025, 2, 12)


def box_score_games(storage: DuckDBStorage, game_date: date) -> pa.Table:
    """The date's games as the box scores record them (a past date)."""
    return storage.arrow(
        """SELECT game_id, any_value(CASE WHEN is_home THEN team END) AS home_team,
                  any_value(CASE WHEN NOT is_home THEN team END) AS away_team
           FROM box_scores WHERE game_date = ? GROUP BY game_id ORDER BY game_id""",
        [game_date],
    )


def start_slate(
    coordinator: Coordinator, game_date: date = SLATE_DATE, *, teams: int | None = None, force: bool = False
) -> str:
    """Start a batch for the real slate of ``game_date`` (optionally only its first ``teams`` games)."""
    games = box_score_games(coordinator.storage, game_date)
    if teams is not None:
        games = games.slice(0, teams)
    requests = expected_players(coordinator.storage, game_date, games, recent_days=21)
    return coordinator.start(
        game_date, requests, markets=["points"], systems=["last10"], force=force
    ).batch_id


class Last10Predictor:
    """Predicts points as the mean of the last 10 games before the date (one query per chunk)."""

    def __init__(self, game_date: date, clock: Clock, batch_id: str, min_games: int = 3) -> None:
        self.game_date = game_date
        self.clock = clock
        self.batch_id = batch_id
        self.min_games = min_games
        self.chunks = 0

    def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
        self.chunks += 1
        ids = pa.table({"player_id": pa.array([lease.player_id for lease in leases], pa.int64())})
        with storage.session() as cur:
            cur.register("__ids", ids)
            rows = cur.execute(
                """SELECT player_id, count(*), avg(pts) FROM (
                       SELECT b.player_id, b.pts, row_number() OVER (PARTITION BY b.player_id ORDER BY b.game_date DESC) k
                       FROM box_scores b SEMI JOIN __ids i ON b.player_id = i.player_id WHERE b.game_date < ?
                   ) WHERE k <= 10 GROUP BY player_id""",
                [self.game_date],
            ).fetchall()
        stats = {pid: (n, avg) for pid, n, avg in rows}
        done: list[Lease] = []
        outcomes: list[RequestOutcome] = []
        for lease in leases:
            n, _ = stats.get(lease.player_id, (0, None))
            if n == 0:
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "skipped", "no_history"))
            elif n < self.min_games:
                outcomes.append(
                    RequestOutcome(lease.player_lookup, lease.attempt, "skipped", "not_enough_games")
                )
            else:
                done.append(lease)
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "done"))
        rows = staging_rows(
            batch_id=self.batch_id,
            game_date=self.game_date,
            leases=done,
            market="points",
            system_id="last10",
            predicted_value=np.array([stats[lease.player_id][1] for lease in done], dtype=np.float64),
            model_version="last10:test",
            feature_version="test",
            now=self.clock.now(),
        )
        return ChunkPrediction(rows, tuple(outcomes))


def main_table_snapshot(storage: DuckDBStorage) -> list[tuple[object, ...]]:
    return storage.fetchall(f"SELECT * FROM {schema.PREDICTIONS.name} ORDER BY prediction_id")


def assert_invariants(
    storage: DuckDBStorage, batch_id: str, *, lease_grace_seconds: float = 0.0, clock: Clock | None = None
) -> None:
    """Assert I1–I8 for a finished batch (I9 is asserted where drift is made)."""
    states = dict(
        storage.fetchall(
            "SELECT state, count(*) FROM prediction_requests WHERE batch_id = ? GROUP BY state", [batch_id]
        )
    )
    # I1: every request ended in exactly one terminal state.
    assert set(states) <= set(schema.TERMINAL_REQUEST_STATES), states
    # I2: every done request has its rows active in the main table; every active row was requested.
    missing = storage.fetchall(
        """SELECT r.player_lookup, r.rows_staged, count(p.prediction_id) FROM prediction_requests r
           LEFT JOIN player_prop_predictions p ON p.batch_id = r.batch_id AND p.player_lookup = r.player_lookup
           WHERE r.batch_id = ? AND r.state = 'done' GROUP BY ALL
           HAVING count(p.prediction_id) = 0 OR count(p.prediction_id) <> coalesce(r.rows_staged, -1)""",
        [batch_id],
    )
    assert not missing, f"done requests without their rows: {missing[:5]}"
    strays = storage.scalar(
        """SELECT count(*) FROM player_prop_predictions p WHERE p.is_active AND NOT EXISTS (
               SELECT 1 FROM prediction_requests r WHERE r.batch_id = p.batch_id
               AND r.player_lookup = p.player_lookup AND r.state = 'done')"""
    )
    assert strays == 0, f"{strays} active rows belong to no done request"
    # I3: at most one active row per key.
    dup = storage.scalar(
        """SELECT count(*) FROM (SELECT game_id, player_lookup, market, system_id FROM player_prop_predictions
           WHERE is_active GROUP BY ALL HAVING count(*) > 1)"""
    )
    assert dup == 0, f"{dup} keys with more than one active row"
    # I4: progress figures are counts of distinct requests.
    from nbaprops.pipeline import ledger

    counts = ledger.progress(storage, batch_id)
    total = storage.scalar(
        "SELECT count(DISTINCT player_lookup) FROM prediction_requests WHERE batch_id = ?", [batch_id]
    )
    assert sum(counts.values()) == total
    # I5: consolidating again changes nothing.
    from nbaprops.clock import SystemClock
    from nbaprops.pipeline import consolidate

    before = main_table_snapshot(storage)
    again = consolidate(storage, batch_id, clock=clock or SystemClock())
    assert again.already_consolidated
    assert main_table_snapshot(storage) == before
    # I6: nothing stays leased.
    assert (
        storage.scalar(
            "SELECT count(*) FROM prediction_requests WHERE state = 'leased' AND batch_id = ?", [batch_id]
        )
        == 0
    )
    # I7: every row in the main table was staged by the attempt that completed its request.
    stale = storage.scalar(
        """SELECT count(*) FROM player_prop_predictions p JOIN prediction_requests r
             ON r.batch_id = p.batch_id AND r.player_lookup = p.player_lookup
           WHERE p.batch_id = ? AND p.attempt IS DISTINCT FROM r.attempt""",
        [batch_id],
    )
    assert stale == 0, f"{stale} rows from a superseded attempt reached the main table"
    # I8: no staging remains for the finished batch.
    staging = schema.staging_table_name(batch_id)
    assert staging not in storage.tables_with_prefix(schema.STAGING_PREFIX)
