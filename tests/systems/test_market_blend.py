"""``market_blend`` on real PRA lines: the line itself until the model has earned a correction, the line-free
model where there is no line, and never a look at a line posted for another row."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nbaprops.features.builder import build_training_set
from nbaprops.features.market import devig_p_over, with_stored_lines
from nbaprops.ingest.lines import ingest_lines, select_lines
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems import make

WINDOW = (date(2023, 12, 1), date(2024, 2, 1))


@pytest.fixture
def lined(storage: DuckDBStorage, pra_lines: dict[str, Path]) -> tuple[pa.Table, np.ndarray]:
    ingest_lines(storage, [pra_lines["2023-24"]])
    rows = build_training_set(storage, *WINDOW)
    dates = sorted(set(rows.column("game_date").to_pylist()))
    rows = with_stored_lines(rows, select_lines(storage, dates, ["pra"], as_of=None))
    return rows, np.asarray(rows.column("actual_pra").to_numpy(), dtype=np.float64)


def test_devig_removes_the_margin() -> None:
    p = devig_p_over(np.array([-110.0, 120.0, np.nan]), np.array([-110.0, -140.0, -110.0]))
    assert p[0] == pytest.approx(0.5)
    assert p[1] == pytest.approx((100 / 220) / (100 / 220 + 140 / 240))
    assert np.isnan(p[2])


def test_without_enough_lined_history_it_predicts_the_line(lined: tuple[pa.Table, np.ndarray]) -> None:
    rows, actual = lined
    system = make("market_blend", "pra", min_lined_rows=10**9).fit(rows, actual)
    out = system.predict(rows).predicted_value
    line = np.asarray(rows.column("market_line").to_numpy(zero_copy_only=False), dtype=np.float64)
    has_line = np.isfinite(line)
    assert 500 < has_line.sum() < rows.num_rows  # the real files cover a part of the games
    np.testing.assert_array_equal(out[has_line], line[has_line])
    gbm = system.base_.predict(rows).predicted_value
    np.testing.assert_array_equal(out[~has_line], gbm[~has_line])


@pytest.mark.parametrize("min_lined_rows", [60, 150])
def test_the_line_moves_only_when_the_move_beat_the_line_out_of_time(
    lined: tuple[pa.Table, np.ndarray],
    min_lined_rows: int,
) -> None:
    """Fitted on the earlier held-out lined rows, the correction is kept only if it beat the line on the later
    ones; kept, its MAE on the held-out lined rows is no worse than the line's; refused, the line is predicted.
    Mutation tried: keeping the correction whatever the validation says — the refused case then moves the line."""
    rows, actual = lined
    system = make("market_blend", "pra", min_lined_rows=min_lined_rows).fit(rows, actual)
    mask = system.holdout_mask_
    line = np.asarray(rows.column("market_line").to_numpy(zero_copy_only=False), dtype=np.float64)[mask]
    ok = np.isfinite(line)
    assert system.lined_rows_ >= min_lined_rows
    v = system.validation_
    assert v["rows"] > 0
    if v["line_mae"] is not None and v["blend_mae"] < v["line_mae"]:
        assert np.any(system.coef_ != 0)
        blend_mae = np.mean(np.abs(system.holdout_pred_[ok] - actual[mask][ok]))
        assert blend_mae <= np.mean(np.abs(line[ok] - actual[mask][ok])) + 1e-9
    else:
        assert not np.any(system.coef_ != 0) and system.intercept_ == 0.0
        np.testing.assert_array_equal(system.holdout_pred_[ok], np.maximum(line[ok], 0.0))


def test_a_regular_without_a_line_counts_as_missing_minutes_for_his_teammates(
    storage: DuckDBStorage, pra_lines: dict[str, Path]
) -> None:
    """Take one regular's line away: each teammate's ``unlined_regulars_min`` grows by his minutes a game,
    his own does not change, and other teams' values stay the same."""
    from nbaprops.features.market import unlined_regulars_min

    ingest_lines(storage, [pra_lines["2023-24"]])
    day = date(2024, 1, 15)
    rows = storage.arrow(
        "SELECT game_date, team, player_id, player_lookup FROM box_scores WHERE game_date = ?", [day]
    )
    lines = select_lines(storage, [day], ["pra"], as_of=None)
    before = unlined_regulars_min(storage, rows, lines)
    assert np.isfinite(before).sum() > 10 and (before[np.isfinite(before)] >= 0).all()
    regular = storage.fetchone(
        """SELECT b.player_lookup, b.team, avg(h.minutes) FROM box_scores b JOIN box_scores h
             ON h.player_id = b.player_id AND h.game_date < b.game_date AND h.game_date >= DATE '2023-11-20'
           WHERE b.game_date = ? AND b.player_lookup IN (SELECT player_lookup FROM prop_lines WHERE game_date = ?)
           GROUP BY ALL HAVING avg(h.minutes) >= 30 ORDER BY 3 DESC LIMIT 1""",
        [day, day],
    )
    assert regular is not None
    lookup, team, _ = regular
    after = unlined_regulars_min(
        storage, rows, lines.filter(pa.compute.not_equal(lines.column("player_lookup"), lookup))
    )
    teams = rows.column("team").to_pylist()
    lookups = rows.column("player_lookup").to_pylist()
    mates = [i for i, t in enumerate(teams) if t == team and lookups[i] != lookup]
    others = [i for i, t in enumerate(teams) if t != team]
    grown = after[mates] - before[mates]
    assert (grown >= 24).all() and np.allclose(grown, grown[0])
    np.testing.assert_array_equal(after[others], before[others])  # bit-identical: ordered aggregates
    me = lookups.index(lookup)
    assert after[me] == pytest.approx(before[me])
