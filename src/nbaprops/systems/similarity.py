"""``similarity``: what the player did in his past games most like this one.

Each past game of the player (from the training rows, so only games before the training cut-off and with
features as of their own date) is described by its context — opponent defence against the stat, home or away,
rest, the player's recent minutes against his longer run, teammates out, pace — standardised over the training
rows. Its outcome is the ratio of what he did to his baseline then (the moving average); only games whose
baseline rests on at least ``MIN_REFERENCE_GAMES`` earlier games count (a ratio over a one-game baseline is noise). The prediction is
today's baseline times the mean of those ratios weighted by ``exp(-d²/2)`` (``d`` = distance between
contexts) and by recency, shrunk toward 1 by ``shrink`` pseudo-games. The sums run in date order, so a row's
prediction does not depend on which other rows are predicted with it (an unordered sum follows how the rows are
chunked, and differed in the last bits between predicting a day and a week).

The pairs (row, earlier game of the same player) are computed with NumPy, vectorized over all rows: the same
values, bit for bit, as the DuckDB query this replaced (``tests/systems/test_similarity.py`` keeps that query as
the reference) at about a third of its cost — the walk-forward backtest predicts the holdout of every step.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from nbaprops.systems.base import PredictionSystem, column
from nbaprops.systems.baselines import weighted_recent

HALF_LIFE_DAYS = 365.0
MIN_REFERENCE_GAMES = 5  # a past game is a reference only when its baseline rests on this many earlier games


class Similarity(PredictionSystem):
    """Today's baseline times the player's ratio in similar past games (see the module docstring).

    Args:
        shrink: pseudo-games of ratio 1 added to the weighted mean (more: closer to the moving average).
    """

    system_id = "similarity"

    def __init__(self, *, market: str = "points", shrink: float = 3.0) -> None:
        super().__init__(market=market)
        self.shrink = shrink

    def _context(self, features: pa.Table) -> np.ndarray:
        minutes_ratio = column(features, "min_avg3") / np.maximum(column(features, "min_avg10"), 1.0)
        pace = (column(features, "team_pace10") + column(features, "opp_pace10")) / 2.0
        ctx = np.column_stack(
            [
                column(features, f"opp_allowed_{self.stat}_rel"),
                column(features, "is_home"),
                np.minimum(column(features, "rest_days"), 4.0),
                minutes_ratio,
                column(features, "teammates_out_usage"),
                pace,
            ]
        )
        return ctx

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        ctx = self._context(features)
        self.center_ = np.nanmean(ctx, axis=0)
        self.scale_ = np.where(np.nanstd(ctx, axis=0) > 0, np.nanstd(ctx, axis=0), 1.0)
        z = np.nan_to_num((ctx - self.center_) / self.scale_)
        base = weighted_recent(features, self.stat)
        # A ratio against a baseline of one or two games is noise that the weighted mean cannot absorb: Trayce
        # Jackson-Davis's second game (22 PRA over a one-game baseline of 1: ratio 22, the largest of the window)
        # lifted his 2024-01-15 PRA to 30.7 against a baseline of 19.1 (21.3 with this rule; the other systems said 18-19, the line was 15.5).
        games = column(features, "games_total")
        ok = np.isfinite(base) & (base >= 1.0) & np.isfinite(actual) & (games >= MIN_REFERENCE_GAMES)
        cols = {f"z{i}": z[ok, i] for i in range(z.shape[1])}
        self.reference_ = pa.table(
            {
                "player_id": features.column("player_id").filter(pa.array(ok)),
                "game_date": features.column("game_date").filter(pa.array(ok)),
                "ratio": actual[ok] / base[ok],
                **cols,
            }
        )
        self.shrink_ = float(self.shrink)

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        base = weighted_recent(features, self.stat)
        z = np.nan_to_num((self._context(features) - self.center_) / self.scale_)
        ref = self.reference_
        ref_player = np.asarray(ref.column("player_id").to_numpy(), dtype=np.int64)
        ref_day = _days(ref.column("game_date"))
        order = np.lexsort((ref_day, ref_player))  # by player, then date: a row's pairs are one slice
        ref_player, ref_day = ref_player[order], ref_day[order]
        ref_z = np.column_stack([_floats(ref.column(f"z{i}"))[order] for i in range(z.shape[1])])
        ref_ratio = _floats(ref.column("ratio"))[order]
        player = np.asarray(features.column("player_id").to_numpy(zero_copy_only=False), dtype=np.int64)
        day = _days(features.column("game_date"))
        # The player's reference games dated strictly before the row's: [first, last) in the sorted reference.
        first = np.searchsorted(ref_player, player, side="left")
        last = np.searchsorted(_player_day(ref_player, ref_day), _player_day(player, day), side="left")
        count = last - first
        row = np.repeat(np.arange(player.size), count)
        pos = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        pair = np.repeat(first, count) + pos
        # DuckDB's ``^`` is libm's pow, which differs from x*x in the last bit for about 1 value in 1,000; an
        # array exponent makes NumPy call pow too (a scalar 2 takes its squaring shortcut).
        two = np.full(pair.size, 2.0)
        dist = np.power(ref_z[pair, 0] - z[row, 0], two)
        for i in range(1, z.shape[1]):
            dist = dist + np.power(ref_z[pair, i] - z[row, i], two)
        weight = np.exp(-0.5 * dist) * np.power(0.5, (day[row] - ref_day[pair]) / HALF_LIFE_DAYS)
        weighted_ratio = weight * ref_ratio[pair]
        # Sums in date order, one term at a time (as an ordered SQL sum adds them): the k-th term of every row
        # that has one, rows taken by decreasing pair count so those rows are a prefix.
        by_count = np.argsort(-count, kind="stable")
        start = (np.cumsum(count) - count)[by_count]
        remaining = count[by_count]
        ws, wr = np.zeros(player.size), np.zeros(player.size)
        for k in range(int(remaining.max()) if remaining.size else 0):
            n = int(np.searchsorted(-remaining, -k, side="left"))  # rows with more than k pairs
            ws[:n] += weight[start[:n] + k]
            wr[:n] += weighted_ratio[start[:n] + k]
        ratio = np.ones(player.size)
        has = by_count[remaining > 0]
        ratio[has] = (wr[: has.size] + self.shrink_) / (ws[: has.size] + self.shrink_)
        return base * ratio


def _days(dates: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(dates.cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _floats(values: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _player_day(player: np.ndarray, day: np.ndarray) -> np.ndarray:
    """One sortable key per (player, day): ordered as the pair is (player ids and days fit in 31 bits)."""
    return np.asarray(player * (1 << 32) + day, dtype=np.int64)
