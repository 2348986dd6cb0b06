"""Stakes (issue 20, part 2): a joint Kelly over each game's bets with the measured correlations, then the caps.

The bets here are written by hand (probability, price, side, market, player, team, game) so each test controls
the quantity it checks; the correlations are the measured table (``nbaprops.picks.correlation``) unless a test
gives its own. Kelly of independent simultaneous bets is checked against an exact enumeration of their outcomes.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest
from scipy import optimize

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.picks.correlation import LATENT, MEASURED, key, latent_matrix
from nbaprops.picks.stakes import CAPS, _normals, full_stakes, joint_kelly, kelly, size
from nbaprops.systems.betting import payout

LOOSE = Settings(max_bet_fraction=1.0, max_team_fraction=1.0, max_game_fraction=1.0, max_night_fraction=1.0)
NONE: dict[tuple[str, str, str], float] = {}
"""A table without an entry: every pair independent."""


def bet(player: str, p_win: float, price: float = -110.0, **extra: Any) -> dict[str, Any]:
    base = {
        "player_lookup": player,
        "team": "HOU",
        "game_id": "g1",
        "market": "pra",
        "side": "over",
        "p_win": p_win,
        "p_lose": round(1 - p_win, 12),
        "price": price,
    }
    return {**base, **extra}


def exact_independent(p: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Full Kelly of independent simultaneous bets (no push) by enumerating their 2^k outcomes."""
    won = np.array(list(itertools.product([0, 1], repeat=len(p))), dtype=bool)
    prob = np.prod(np.where(won, p, 1 - p), axis=1)
    returns = np.where(won, payout(price), -1.0)
    found = optimize.minimize(
        lambda s: -prob @ np.log(1 + returns @ s), np.full(len(p), 0.01), bounds=[(0, 1)] * len(p)
    )
    return np.asarray(found.x)


def test_independent_bets_get_their_own_kelly_stakes() -> None:
    bets = [bet("a", 0.56), bet("b", 0.55, -105.0), bet("c", 0.58, -120.0, team="PHI"), bet("d", 0.54, 100.0)]
    sized = size(bets, 1000.0, LOOSE, table=NONE)
    assert [p["sized_by"] for p in sized.kept] == ["joint"] * 4 and {p["sized_with"] for p in sized.kept} == {
        4
    }
    own = np.array([kelly(b["p_win"], b["price"], b["p_lose"]) for b in bets])
    stakes = np.array([p["stake"] for p in sized.kept])
    # each within 5% of its own Kelly stake: four bets settled at once are not four bets in turn (the log couples
    # them), which takes 1-2% off here; against the exact optimum of the four together, within 1%
    assert stakes == pytest.approx(1000 * 0.25 * own, rel=0.05)
    exact = exact_independent(np.array([b["p_win"] for b in bets]), np.array([b["price"] for b in bets]))
    assert stakes == pytest.approx(1000 * 0.25 * exact, rel=0.01)
    assert [p["kelly_full"] for p in sized.kept] == pytest.approx(own, abs=1e-6)


def test_a_push_refunds_in_the_joint_sizing_too() -> None:
    """Integer lines push: P(win) 0.5, P(lose) 0.3 is a 5/8 bet on the settled outcomes. Sized with an independent
    bet, each stake is the exact optimum of the two over their nine outcomes (win, push, lose each)."""
    bets = [{**bet("a", 0.5), "p_lose": 0.3}, {**bet("b", 0.45, 120.0), "p_lose": 0.4}]
    sized = size(bets, 1000.0, LOOSE, table=NONE).kept
    p = np.array([[0.5, 0.2, 0.3], [0.45, 0.15, 0.4]])  # win, push, lose
    outcome = np.array(list(itertools.product(range(3), repeat=2)))
    prob = p[0, outcome[:, 0]] * p[1, outcome[:, 1]]
    returns = np.choose(outcome, [payout(np.array([-110.0, 120.0])), np.zeros(2), -np.ones(2)])
    exact = optimize.minimize(
        lambda s: -prob @ np.log(1 + returns @ s), np.full(2, 0.05), bounds=[(0, 0.9)] * 2
    ).x
    assert [p["stake"] for p in sized] == pytest.approx(1000 * 0.25 * exact, rel=0.01)
    assert sized[0]["stake"] == pytest.approx(1000 * 0.25 * kelly(0.5, -110.0, 0.3), rel=0.05)


def test_a_bet_alone_on_its_game_is_sized_by_its_own_kelly_exactly() -> None:
    bets = [bet("a", 0.56, game_id="g1"), bet("b", 0.57, 120.0, game_id="g2", side="under")]
    sized = size(bets, 1000.0, LOOSE)
    for pick, b in zip(sized.kept, bets, strict=True):
        assert pick["sized_by"] == "kelly" and pick["sized_with"] == 1
        assert pick["stake"] == pytest.approx(1000 * 0.25 * kelly(b["p_win"], b["price"]), abs=1e-4)


@pytest.mark.parametrize("r", [0.2, 0.5])
def test_positively_correlated_bets_stake_less_together(r: float) -> None:
    bets = [bet("a", 0.56), bet("b", 0.57, -105.0)]
    apart = size(bets, 1000.0, LOOSE, table=NONE).kept
    together = size(bets, 1000.0, LOOSE, table={("teammates", "pra", "pra"): r}).kept
    assert sum(p["stake"] for p in together) < sum(p["stake"] for p in apart) - 1.0
    assert all(t["stake"] < a["stake"] for t, a in zip(together, apart, strict=True))
    # an over and an under on such teammates: their outcomes move apart, so more is staked, not less
    hedged = [bet("a", 0.56), bet("b", 0.57, -105.0, side="under")]
    against = size(hedged, 1000.0, LOOSE, table={("teammates", "pra", "pra"): r}).kept
    assert sum(p["stake"] for p in against) > sum(p["stake"] for p in apart) + 1.0


@pytest.mark.parametrize("r", [-0.1, -0.5])
def test_negatively_correlated_bets_stake_at_least_as_much_together(r: float) -> None:
    bets = [bet("a", 0.56), bet("b", 0.57, -105.0, team="PHI")]
    own = [kelly(b["p_win"], b["price"]) for b in bets]
    together = size(bets, 1000.0, LOOSE, table={("opponents", "pra", "pra"): r}).kept
    assert sum(p["stake"] for p in together) >= 1000 * 0.25 * sum(own)


def test_the_measured_table_sizes_one_players_points_and_pra_as_nearly_one_bet() -> None:
    """Over on a player's points and on his PRA (measured phi 0.73, copula r 0.91): together they stake less than
    either would alone plus a little — far less than the two Kelly stakes added."""
    bets = [bet("a", 0.57), bet("a", 0.56, market="points")]
    together = size(bets, 1000.0, LOOSE).kept
    own = [1000 * 0.25 * kelly(b["p_win"], b["price"]) for b in bets]
    assert sum(p["stake"] for p in together) < 0.7 * sum(own)
    # the same player's same market at two books: one bet; the worse offer gets (almost) nothing
    twice = size([bet("a", 0.57), bet("a", 0.56, -115.0)], 1000.0, LOOSE)
    assert len(twice.kept) == 1 and twice.dropped["joint"] == 1
    assert twice.kept[0]["stake"] == pytest.approx(own[0], rel=0.03)


def test_the_table_holds_every_pair_of_markets_in_order_and_the_matrix_flips_for_unders() -> None:
    assert len(MEASURED) == 40 and set(LATENT) == set(MEASURED)
    for (relation, low, high), (r, phi, lo, hi, n) in MEASURED.items():
        assert key(relation, high, low) == (relation, low, high)
        assert lo <= phi <= hi and n > 1000 and abs(r) >= abs(phi) and r * phi >= 0
    assert LATENT[("same player", "points", "pra")] > 0.8
    matrix = latent_matrix(
        ["a", "b", "c"], ["HOU", "HOU", "PHI"], ["pra", "pra", "points"], [True, False, True]
    )
    assert matrix[0, 1] == pytest.approx(-LATENT[("teammates", "pra", "pra")])
    assert matrix[0, 2] == pytest.approx(LATENT[("opponents", "points", "pra")])
    assert matrix[1, 2] == pytest.approx(-LATENT[("opponents", "points", "pra")])
    # a table no set of outcomes could satisfy is moved to the nearest valid one
    hostile = {("teammates", "pra", "pra"): 0.99, ("opponents", "pra", "pra"): -0.99}
    fixed = latent_matrix(["a", "b", "c"], ["HOU", "HOU", "HOU"], ["pra"] * 3, [True, True, False], hostile)
    assert np.linalg.eigvalsh(fixed).min() > -1e-9 and np.diag(fixed) == pytest.approx(1.0)


def night_of(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` bets over ``count // 3`` games, best EV first, with probabilities and prices drawn at random."""
    rng = np.random.default_rng(seed)
    games = max(count // 3, 1)
    bets = []
    for i in range(count):
        game = int(rng.integers(games))
        p = float(rng.uniform(0.52, 0.7))
        bets.append(
            bet(
                f"p{i}",
                p,
                float(rng.choice([-140.0, -120.0, -110.0, -100.0, 100.0, 110.0, 130.0])),
                game_id=f"g{game}",
                team=f"t{game}{int(rng.integers(2))}",
                side=str(rng.choice(["over", "under"])),
                market=str(rng.choice(["points", "rebounds", "assists", "threes", "pra"])),
            )
        )
    return bets


@pytest.mark.parametrize("seed", range(5))
def test_stakes_never_exceed_a_cap(seed: int) -> None:
    settings = Settings()  # 2% a bet, 3% a team, 4% a game, 10% a night
    bets = night_of(30, seed)
    sized = size(bets, 500.0, settings)
    kept = sized.kept
    assert kept and sum(sized.dropped.values()) + len(kept) <= len(bets)
    by_team: dict[Any, float] = {}
    by_game: dict[Any, float] = {}
    for pick in kept:
        assert 0 < pick["stake"] <= min(pick["kelly_stake"], 500 * 0.02) + 1e-4
        assert pick["cut_by"] in (None, *CAPS) and (pick["cut_by"] is None) == (
            pick["stake"] == pick["kelly_stake"]
        )
        by_team[(pick["game_id"], pick["team"])] = (
            by_team.get((pick["game_id"], pick["team"]), 0) + pick["stake"]
        )
        by_game[pick["game_id"]] = by_game.get(pick["game_id"], 0) + pick["stake"]
    assert max(by_team.values()) <= 500 * 0.03 + 1e-3 and max(by_game.values()) <= 500 * 0.04 + 1e-3
    assert sum(p["stake"] for p in kept) <= 500 * 0.10 + 1e-3
    positive: dict[str, int] = {}
    for b in bets:
        positive[b["game_id"]] = positive.get(b["game_id"], 0) + (kelly(b["p_win"], b["price"]) > 0)
    assert any(p["sized_by"] == "joint" for p in kept)
    for pick in kept:
        assert pick["sized_with"] == max(positive[pick["game_id"]], 1)
        assert pick["sized_by"] == ("joint" if pick["sized_with"] > 1 else "kelly")


def test_the_same_night_is_sized_the_same_on_every_run_and_quickly() -> None:
    bets = night_of(30, 7)
    first = size(bets, 1000.0, LOOSE)
    _normals.cache_clear()  # the draws made again, as in a new process
    started = time.process_time()
    again = size(bets, 1000.0, LOOSE)
    spent = time.process_time() - started
    assert again.kept == first.kept and again.dropped == first.dropped
    assert spent < 5.0  # about 0.1 s of CPU (docs/market.md); the bound only catches a runaway


def test_even_money_and_certain_or_hopeless_probabilities_are_handled() -> None:
    # +100 and -100 are both even money
    assert kelly(0.55, 100.0) == pytest.approx(kelly(0.55, -100.0)) == pytest.approx(0.1)
    sure = [bet("a", 1.0, 100.0), bet("b", 1.0, -100.0), bet("c", 0.0, -110.0), bet("d", 0.55, -100.0)]
    sized = size(sure, 1000.0, Settings())
    stakes = {p["player_lookup"]: p for p in sized.kept}
    assert "c" not in stakes  # a bet that cannot win is never staked
    assert stakes["a"]["stake"] == 20.0 and stakes["a"]["cut_by"] == "bet_cap"
    assert sum(p["stake"] for p in sized.kept) <= 40.0 + 1e-6  # the game cap
    joint = joint_kelly(np.ones(2), np.zeros(2), np.array([100.0, -100.0]), np.eye(2))
    assert joint.sum() < 1.0 and np.isfinite(joint).all()


@pytest.mark.parametrize(
    ("p_win", "price"),
    [([0.58, 0.81, 0.97], [400.0, -300.0, 400.0]), ([0.82, 0.85, 0.8, 0.5], [-300.0, 400.0, 400.0, 400.0])],
)
@pytest.mark.filterwarnings("ignore:delta_grad")  # the reference solver's quasi-Newton note
def test_edges_no_offer_has_still_reach_the_best_growth(p_win: list[float], price: list[float]) -> None:
    """Full Kelly near the whole bankroll (a 97% bet at +400): the first solver stalls on the total's bound, the
    second finishes; the growth is the exact optimum's (enumerated outcomes, independent bets)."""
    p, odds = np.array(p_win), np.array(price)
    won = np.array(list(itertools.product([0, 1], repeat=len(p))), dtype=bool)
    prob = np.prod(np.where(won, p, 1 - p), axis=1)
    returns = np.where(won, payout(odds), -1.0)

    def growth(s: np.ndarray) -> float:
        return float(prob @ np.log(np.maximum(1 + returns @ s, 1e-300)))

    best = optimize.minimize(
        lambda s: -growth(s),
        np.full(len(p), 0.01),
        method="trust-constr",
        bounds=optimize.Bounds(0, 1),
        constraints=[optimize.LinearConstraint(np.ones((1, len(p))), -np.inf, 1 - 1e-6)],
    ).x
    stakes = joint_kelly(p, 1 - p, odds, np.eye(len(p)))
    assert stakes.sum() < 1 and growth(stakes) == pytest.approx(growth(best), abs=1e-4)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", -50.0),
        ("price", 99.0),
        ("price", 0.0),
        ("price", float("nan")),
        ("price", float("inf")),
        ("price", "a lot"),
        ("p_win", 1.2),
        ("p_win", -0.1),
        ("p_win", float("nan")),
        ("p_lose", 0.9),  # with p_win 0.56: more than 1 together
    ],
)
def test_a_bet_that_is_not_a_bet_is_refused_in_plain_words(field: str, value: Any) -> None:
    bets = [bet("a", 0.56), {**bet("b", 0.56), field: value}]
    with pytest.raises(InputError) as refused:
        size(bets, 1000.0, LOOSE)
    said = str(refused.value)
    if value == "a lot":
        assert said == "a bet's probabilities and price must be numbers"
    else:
        assert ("American odds" if field == "price" else "between 0 and 1") in said and "1 bet(s)" in said


@pytest.mark.parametrize("bankroll", [0.0, -5.0, float("nan"), float("inf")])
def test_a_bankroll_that_is_not_positive_is_refused(bankroll: float) -> None:
    with pytest.raises(InputError, match="bankroll"):
        size([bet("a", 0.56)], bankroll, LOOSE)


def test_full_stakes_says_which_bets_were_sized_together() -> None:
    bets = [bet("a", 0.56), bet("b", 0.45), bet("c", 0.57, game_id="g2"), bet("d", 0.58, game_id="g2")]
    own, sized, together = full_stakes(bets)
    assert own[1] < 0 and sized[1] == 0 and together[1] == 1  # a bet without an edge is not sized with others
    assert together.tolist() == [1, 1, 2, 2] and sized[0] == pytest.approx(own[0])
