"""What moves `gbm` against `moving_average` on points: one walk-forward per variant of `gbm`.

    .venv/bin/python benchmarks/points_gap.py [--season 2024-25] [--variants base,l2,...] [--train-days 730]

Issue 10 asks for `gbm` 0.25 below `moving_average` on points 2024-25, or the measured reason why not, with
what was tried and how much each idea moved it. Each variant is a subclass of `GradientBoosting` registered as
`gbm` for its run (nothing else changes): the same walk-forward as `nbaprops backtest` (weekly retraining,
730-day windows, the serial path so the variant is fitted in this process), systems `moving_average` and
`gbm`, on a fresh copy of the shipped box scores. Prints, per variant, gbm's MAE and RMSE, moving_average's
MAE on the same rows and the gap, and as its last line ``points_gap_<variant>=<gap>`` for each.

Variants (none is the default unless it is ``base``; defaults were chosen on 2023-24 only):

- ``base``: today's `gbm` (L1, 100 trees, learning rate 0.12, 31 leaves, 63 bins).
- ``l2``: squared-error objective instead of L1 (the mean instead of the median).
- ``more_trees``: 400 trees at learning rate 0.03.
- ``residual``: learns the stat minus its 10-game average (the moving average's own number) instead of the stat.
- ``recency``: training rows weighted by age (half weight at 365 days).
- ``no_availability``: without the box-score availability features (`teammates_out_count`,
  `teammates_out_usage`, `team_games_missed`).
- ``own_stat_only``: only the common features and the predicted stat's own (no other stat's history).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from nbaprops.backtest import run_backtest, season_range
from nbaprops.config import Settings
from nbaprops.evaluation.metrics import compute_metrics
from nbaprops.features.columns import COMMON_FEATURES, FEATURE_COLUMNS, stat_features
from nbaprops.ingest import ensure_boxscores
from nbaprops.storage import open_storage
from nbaprops.systems import REGISTRY
from nbaprops.systems.base import column
from nbaprops.systems.gbm import FIXED, GradientBoosting

AVAILABILITY = ("teammates_out_count", "teammates_out_usage", "team_games_missed")


class _Variant(GradientBoosting):
    """`gbm` with other LightGBM settings, columns, target or weights (each variant overrides a part)."""

    overrides: dict[str, Any] = {}
    columns: tuple[str, ...] = FEATURE_COLUMNS
    half_life_days: float | None = None
    residual = False

    def _x(self, features: pa.Table) -> np.ndarray:
        return np.column_stack([column(features, name) for name in self.columns])

    def _base(self, features: pa.Table) -> np.ndarray:
        return column(features, f"{self.stat}_avg10") if self.residual else np.zeros(features.num_rows)

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        params = {name: value for name, value in self.get_params().items() if name != "market"}
        ok = np.isfinite(actual) & np.isfinite(column(features, f"{self.stat}_avg10"))
        weight = None
        if self.half_life_days is not None:
            dates = features.column("game_date").to_numpy().astype("datetime64[D]").astype(np.int64)
            weight = 0.5 ** ((dates.max() - dates) / self.half_life_days)
            weight = weight[ok]
        model = lgb.LGBMRegressor(**{**params, **self.overrides}, **FIXED)
        model.fit(self._x(features)[ok], (actual - self._base(features))[ok], sample_weight=weight)
        self.model_ = model

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        out = np.asarray(self.model_.predict(self._x(features)), dtype=np.float64) + self._base(features)
        return np.where(np.isfinite(column(features, f"{self.stat}_avg10")), out, np.nan)


def _variant(name: str) -> type[GradientBoosting]:
    attrs: dict[str, Any] = {
        "base": {},
        "l2": {"overrides": {"objective": "l2"}},
        "more_trees": {"overrides": {"n_estimators": 400, "learning_rate": 0.03}},
        "residual": {"residual": True},
        "recency": {"half_life_days": 365.0},
        "no_availability": {"columns": tuple(c for c in FEATURE_COLUMNS if c not in AVAILABILITY)},
        "own_stat_only": {"columns": (*COMMON_FEATURES, *stat_features("pts"))},
    }[name]
    if name == "base":
        return GradientBoosting
    return type(f"GBM_{name}", (_Variant,), attrs)


VARIANTS = ("base", "l2", "more_trees", "residual", "recency", "no_availability", "own_stat_only")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--season", default="2024-25")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--train-days", type=int, default=730)
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    gaps: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="nbaprops-gap-") as tmp:
        seed = Path(tmp) / "seed.duckdb"
        with open_storage(seed) as storage:
            ensure_boxscores(storage)
            start, end = season_range(storage, args.season)
            storage.execute("CHECKPOINT")
        print(f"{'variant':16} {'gbm MAE':>8} {'gbm RMSE':>8} {'MA MAE':>8} {'gap':>7} {'rows':>7} {'s':>6}")
        for name in names:
            REGISTRY["gbm"] = _variant(name)
            path = Path(tmp) / f"{name}.duckdb"
            shutil.copyfile(seed, path)
            t0 = time.perf_counter()
            with open_storage(path) as storage:
                result = run_backtest(
                    storage,
                    Settings(db_path=path),
                    market="points",
                    start=start,
                    end=end,
                    systems=("moving_average", "gbm"),
                    train_days=args.train_days,
                    workers=0,
                )
            path.unlink()
            metrics = {m["system_id"]: m for m in compute_metrics(result.grades)}
            gbm, ma = metrics["gbm"], metrics["moving_average"]
            gaps[name] = ma["mae"] - gbm["mae"]
            print(
                f"{name:16} {gbm['mae']:8.3f} {gbm['rmse']:8.3f} {ma['mae']:8.3f} {gaps[name]:7.3f} "
                f"{gbm['n']:7d} {time.perf_counter() - t0:6.1f}",
                flush=True,
            )
    REGISTRY["gbm"] = GradientBoosting
    for name, gap in gaps.items():
        print(f"points_gap_{name}={gap:.4f}")


if __name__ == "__main__":
    main()
