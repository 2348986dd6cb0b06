"""learn_market: weights and spreads as of a date, from the rows before it only."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from nbaprops.pricing import DEFAULT_DISPERSION, american_odds, learn_market


def history(seed: int = 5, days: int = 40, players: int = 30) -> pa.Table:
    """Synthetic offers: book 'sharp' prices the true NB2, book 'blind' posts a coin at the same line."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "game_date",
            "player_lookup",
            "market",
            "bookmaker",
            "line",
            "over_price",
            "under_price",
            "outcome",
        )
    }
    for day in range(days):
        for player in range(players):
            mean = rng.uniform(10, 40)
            outcome = float(rng.negative_binomial(mean / 2.5, 1 / 3.5))
            line = float(np.floor(mean)) + 0.5
            p_over = float(np.mean(rng.negative_binomial(mean / 2.5, 1 / 3.5, 400) > line))
            p_over = min(max(p_over, 0.05), 0.95)
            for book, p in (("sharp", p_over), ("blind", 0.5)):
                rows["game_date"].append(date(2025, 1, 1) + timedelta(days=day))
                rows["player_lookup"].append(f"p{player}")
                rows["market"].append("pra")
                rows["bookmaker"].append(book)
                rows["line"].append(line)
                rows["over_price"].append(float(american_odds(p * 1.02)))
                rows["under_price"].append(float(american_odds((1 - p) * 1.02)))
                rows["outcome"].append(outcome)
    return pa.table(rows)


def test_learn_market_weights_the_sharp_book_and_ignores_the_future() -> None:
    table = history()
    as_of = date(2025, 1, 31)
    model = learn_market(table, as_of)
    assert model.book_weight["sharp"] == 1.0 and model.book_weight["blind"] < 0.8
    assert set(model.dispersion) == {"pra"}
    assert 0.05 < float(model.dispersion["pra"].at(20.0)) < 0.3
    # Every row on or after as_of poisoned: nothing learned moves.
    dates = np.asarray(table["game_date"].to_pylist(), dtype="datetime64[D]")
    future = dates >= np.datetime64(as_of)
    outcome = np.asarray(table["outcome"].to_pylist(), dtype=float)
    outcome[future] = 0.0
    poisoned = table.set_column(table.column_names.index("outcome"), "outcome", pa.array(outcome))
    assert learn_market(poisoned, as_of) == model


def test_learn_market_without_history_gives_the_defaults() -> None:
    model = learn_market(history(days=2), date(2025, 1, 1))
    assert model.book_weight == {} and model.dispersion == {} and model.graded_offers == 0
    assert DEFAULT_DISPERSION.slope == -1.0
