"""Picks: best expected value first, one per player unless asked, fractional Kelly within both caps."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.picks import kelly, picks
from nbaprops.pipeline.ledger import Lease
from nbaprops.pipeline.rows import staging_rows
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2025, 2, 12)
# player, market, recommendation, P(win), price, expected value
BETS = (
    ("alpha", "points", "OVER", 0.60, -110.0, 0.145),
    ("alpha", "pra", "UNDER", 0.62, -110.0, 0.184),
    ("bravo", "points", "UNDER", 0.56, 120.0, 0.232),
    ("charlie", "points", "OVER", 0.53, -110.0, 0.012),
    ("delta", "points", "PASS", 0.51, -110.0, -0.02),
)


@pytest.fixture
def board(storage: DuckDBStorage) -> DuckDBStorage:
    now = datetime(2025, 2, 12, 18, tzinfo=UTC)
    with storage.session() as session:
        for k, (player, market, rec, p_win, price, ev) in enumerate(BETS):
            lease = Lease("b1", player, 1, "w", player.title(), k, "BOS", "NYK", "g1", True)
            rows = staging_rows(
                batch_id="b1",
                game_date=DAY,
                leases=[lease],
                market=market,
                system_id="ensemble",
                predicted_value=np.array([20.0]),
                model_version="ensemble@points-20250210-abcd1234",
                feature_version="t",
                now=now,
                line_value=np.array([19.5]),
                over_price=np.array([price]),
                under_price=np.array([price]),
                recommendation=[rec],
                confidence_score=np.array([p_win]),
                expected_value=np.array([ev]),
            )
            name = session.temp_name("board")
            session.register(name, rows)
            session.execute(f"INSERT INTO player_prop_predictions BY NAME SELECT * FROM {name}")
    return storage


def test_one_pick_per_player_best_expected_value_first(board: DuckDBStorage) -> None:
    result = picks(board, Settings(), DAY, bankroll=1000.0)
    assert [(p["player_lookup"], p["market"]) for p in result["picks"]] == [
        ("bravo", "points"),
        ("alpha", "pra"),
        ("charlie", "points"),
    ]
    assert result["dropped_correlated"] == 1
    both = picks(board, Settings(), DAY, bankroll=1000.0, correlated=True)
    assert [(p["player_lookup"], p["market"]) for p in both["picks"]] == [
        ("bravo", "points"),
        ("alpha", "pra"),
        ("alpha", "points"),
        ("charlie", "points"),
    ]


def test_stakes_are_fractional_kelly_capped_per_bet_and_per_night(board: DuckDBStorage) -> None:
    settings = Settings(kelly_fraction=0.25, max_bet_fraction=0.02, max_night_fraction=0.03)
    result = picks(board, settings, DAY, bankroll=1000.0)
    stakes = {p["player_lookup"]: p["stake"] for p in result["picks"]}
    # charlie: a quarter of full Kelly is below the per-bet cap, but the night cap is spent by then
    assert stakes == {"bravo": 20.0, "alpha": 10.0}
    assert result["dropped_night_cap"] == 1 and result["staked"] == 30.0
    assert kelly(0.53, -110.0) == pytest.approx(0.53 - 0.47 / (100 / 110))
    loose = picks(board, Settings(max_night_fraction=1.0), DAY, bankroll=1000.0)
    charlie = next(p for p in loose["picks"] if p["player_lookup"] == "charlie")
    assert charlie["stake"] == pytest.approx(1000 * 0.25 * kelly(0.53, -110.0), abs=1e-4)


def test_min_ev_filters_and_picks_carry_their_batch_and_model(board: DuckDBStorage) -> None:
    result = picks(board, Settings(), DAY, min_ev=0.2)
    assert [p["player_lookup"] for p in result["picks"]] == ["bravo"]
    assert result["picks"][0]["batch_id"] == "b1"
    assert result["picks"][0]["trained_through"] == "2025-02-10"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"system": "nope"}, "unknown system"),
        ({"market": "steals"}, "unknown market"),
        ({"bankroll": 0.0}, "--bankroll must be positive"),
    ],
)
def test_bad_choices_are_refused(board: DuckDBStorage, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        picks(board, Settings(), DAY, **kwargs)  # type: ignore[arg-type]


def test_a_date_without_predictions_is_refused(storage: DuckDBStorage) -> None:
    with pytest.raises(InputError, match="no active prediction for 2025-02-12"):
        picks(storage, Settings(), DAY)
