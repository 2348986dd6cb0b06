"""``similarity``'s reference games, on the real box scores (issue 18 item 14)."""

from __future__ import annotations

from datetime import date

import numpy as np

from nbaprops.features.builder import build_features, build_training_set
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.baselines import weighted_recent
from nbaprops.systems.similarity import Similarity


def test_a_ratio_over_a_one_game_baseline_does_not_lift_a_prediction(storage: DuckDBStorage) -> None:
    """Before: Trayce Jackson-Davis's second game (22 PRA over a one-game baseline of 1: a ratio of 22) was one of
    his reference games, and similarity said 32.0 PRA for 2024-01-15 (30.7 with the batch's 730-day window)
    against a baseline of 19.1, the other systems 18-19 and the line 15.5. Now a game counts as a reference only
    once its baseline rests on 5 earlier games."""
    training = build_training_set(storage, date(2023, 10, 24), date(2023, 11, 15))
    actual = np.asarray(training.column("actual_pra").to_numpy(zero_copy_only=False), dtype=np.float64)
    system = Similarity(market="pra").fit(training, actual, version="test")
    target = storage.arrow(
        """SELECT player_id, player_lookup, game_date, team, opponent, is_home FROM box_scores
           WHERE game_date = DATE '2024-01-15' AND player_lookup = 'traycejacksondavis'"""
    )
    features = build_features(storage, target)
    baseline = float(weighted_recent(features, "pra")[0])
    predicted = float(system.predict(features).predicted_value[0])
    assert round(baseline, 1) == 19.1
    assert abs(predicted - baseline) < 2.0, predicted
    assert float(np.max(system.reference_.column("ratio").to_numpy())) < 22.0
