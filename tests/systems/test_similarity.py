"""``similarity`` computes in NumPy what its DuckDB query computed (the query is kept here as the reference).

Two promises, kept apart because only one of them holds across machines:

- **The two implementations agree within a few ulps**, on real player-games: a week after the training window,
  and the training window's own last fifth (the holdout every fit predicts). Not bit for bit: NumPy dispatches
  ``exp`` to SIMD kernels chosen by the CPU (AVX-512 on some machines) while DuckDB calls libm, so the last bit
  differs on some machines (137 of 2,709 values on an AVX-512 EPYC, at most 3 ulps) and not on others.
- **Two runs on the same machine are bit-identical**, so a backtest's figures can be compared row by row
  between runs there.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from nbaprops.features.builder import build_training_set
from nbaprops.storage import open_storage
from nbaprops.systems.base import holdout_mask
from nbaprops.systems.baselines import weighted_recent
from nbaprops.systems.similarity import HALF_LIFE_DAYS, Similarity

TRAIN = (date(2024, 10, 22), date(2025, 1, 20))
# Measured: at most 3 ulps between NumPy's SIMD exp and libm's on an AVX-512 machine; 0 on others.
MAX_ULPS = 8
WEEK = (date(2025, 1, 20), date(2025, 1, 27))


def reference_values(system: Similarity, features: pa.Table) -> np.ndarray:
    """The query ``similarity`` ran before it was vectorized (commit 11f6e30)."""
    base = weighted_recent(features, system.stat)
    z = np.nan_to_num((system._context(features) - system.center_) / system.scale_)
    targets = pa.table(
        {
            "__tid": np.arange(features.num_rows),
            "player_id": features.column("player_id"),
            "game_date": features.column("game_date"),
            **{f"z{i}": z[:, i] for i in range(z.shape[1])},
        }
    )
    dist = " + ".join(f"(r.z{i} - t.z{i}) ^ 2" for i in range(z.shape[1]))
    con = duckdb.connect()
    try:
        con.register("ref", system.reference_)
        con.register("tgt", targets)
        rows = con.sql(
            f"""SELECT t.__tid, sum(w * r.ratio ORDER BY r.game_date) AS wr, sum(w ORDER BY r.game_date) AS ws
                FROM tgt t
                JOIN ref r ON r.player_id = t.player_id AND r.game_date < t.game_date,
                LATERAL (SELECT exp(-0.5 * ({dist}))
                         * pow(0.5, date_diff('day', r.game_date, t.game_date) / {HALF_LIFE_DAYS}) AS w)
                GROUP BY t.__tid"""
        ).fetchnumpy()
    finally:
        con.close()
    ratio = np.ones(features.num_rows)
    tid = np.asarray(rows["__tid"], dtype=np.int64)
    ratio[tid] = (np.asarray(rows["wr"]) + system.shrink_) / (np.asarray(rows["ws"]) + system.shrink_)
    return np.asarray(base * ratio, dtype=np.float64)


def ulps_apart(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Units in the last place between two float64 arrays with NaN at the same positions (NaN pairs: 0)."""
    np.testing.assert_array_equal(np.isnan(values), np.isnan(reference))
    both = ~np.isnan(values)
    assert (np.sign(values[both]) == np.sign(reference[both])).all()
    apart = np.zeros(values.shape, dtype=np.int64)
    apart[both] = np.abs(values[both].view(np.int64) - reference[both].view(np.int64))
    return apart


def test_ulps_apart_counts_the_last_bits() -> None:
    one = np.array([1.0, np.nan, 12.252561741047547])
    np.testing.assert_array_equal(
        ulps_apart(one, np.array([np.nextafter(1.0, 2.0), np.nan, 12.252561741047545])), [1, 0, 1]
    )
    with pytest.raises(AssertionError):
        ulps_apart(one, np.array([1.0, 1.0, 12.0]))


@pytest.fixture(scope="module")
def rows(loaded_db_file: Path) -> tuple[pa.Table, np.ndarray, pa.Table]:
    with open_storage(loaded_db_file, read_only=True) as storage:
        train = build_training_set(storage, *TRAIN)
        week = build_training_set(storage, *WEEK)
    return train, np.asarray(train.column("actual_pts").to_numpy(), float), week


def test_values_agree_with_the_reference_query_within_a_few_ulps(
    rows: tuple[pa.Table, np.ndarray, pa.Table],
) -> None:
    train, actual, week = rows
    system = Similarity(market="points").fit(train, actual)
    values = system._predict_values(week)
    assert np.isfinite(values).sum() > 1000
    assert ulps_apart(values, reference_values(system, week)).max() <= MAX_ULPS


def test_two_runs_on_this_machine_are_bit_identical(rows: tuple[pa.Table, np.ndarray, pa.Table]) -> None:
    train, actual, week = rows
    first = Similarity(market="points").fit(train, actual)._predict_values(week)
    second = Similarity(market="points").fit(train, actual)._predict_values(week)
    np.testing.assert_array_equal(first, second)


def test_holdout_values_agree_with_the_reference_query_within_a_few_ulps(
    rows: tuple[pa.Table, np.ndarray, pa.Table],
) -> None:
    train, actual, _ = rows
    mask = holdout_mask(train)
    early = np.flatnonzero(~mask)
    system = Similarity(market="points")
    system._fit(train.take(early), actual[early])
    held = train.filter(pa.array(mask))
    values = system._predict_values(held)
    assert np.isfinite(values).sum() > 1000
    assert ulps_apart(values, reference_values(system, held)).max() <= MAX_ULPS
