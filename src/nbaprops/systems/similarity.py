"""``similarity``: what the player did in his past games most like this one.

Each past game of the player (from the training rows, so only games before the training cut-off and with
features as of their own date) is described by its context — opponent defence against the stat, home or away,
rest, the player's recent minutes against his longer run, teammates out, pace — standardised over the training
rows. Its outcome is the ratio of what he did to his baseline then (the moving average). The prediction is
today's baseline times the mean of those ratios weighted by ``exp(-d²/2)`` (``d`` = distance between
contexts) and by recency, shrunk toward 1 by ``shrink`` pseudo-games. One DuckDB query for all rows; the sums
run in date order, so a row's prediction does not depend on which other rows are predicted with it (an
unordered sum follows the join's chunking, and differed in the last bits between predicting a day and a week).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from nbaprops.systems.base import PredictionSystem, column
from nbaprops.systems.baselines import weighted_recent

HALF_LIFE_DAYS = 365.0


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
        ok = np.isfinite(base) & (base >= 1.0) & np.isfinite(actual)
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
            con.register("ref", self.reference_)
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
        ratio[tid] = (np.asarray(rows["wr"]) + self.shrink_) / (np.asarray(rows["ws"]) + self.shrink_)
        return base * ratio
