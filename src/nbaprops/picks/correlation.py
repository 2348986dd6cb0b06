"""How the outcomes of two bets on one game move together: the measured table the joint Kelly sizes with.

Measured by ``benchmarks/correlation.py`` (docs/market.md, "Picks at the offer": the table with both seasons
apart) on the real PRA lines of 2023-24 and 2024-25 and the box scores of both seasons: per pair of picks on one
game — the same player's two markets, two teammates, two opponents — and per market pair, the correlation of
the two bets' outcomes (over wins = 1, under = 0; pushes and players who did not play left out) at the line.
PRA is at its real consensus line (the median of the books' main lines); the other markets have no real line in
the data, so theirs is derived from the PRA consensus and the player's share of the stat in his earlier games
(the benchmark's docstring): those rows measure how the stats move together around a market-like line, not a
book's line.

Each entry: ``(latent r, phi, phi low, phi high, pairs)`` — ``phi`` the correlation of the 0/1 over outcomes
with its 95% interval (bootstrap over games) and the number of pairs; ``latent r`` the correlation of the
Gaussian copula that reproduces the pooled over rates and phi (tetrachoric), which is what the sizing simulates.
The keys are (relation, market, market) with the two markets in :data:`~nbaprops.markets.MARKETS` order. A pair
of different games, measured as a control, came out at phi −0.001 [−0.003, +0.001] (256,704 pairs): games are
sized apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nbaprops.markets import MARKETS

SOURCE = (
    "benchmarks/correlation.py --boot 2000 --seed 20 on ../shared/data: prop-lines-pra 2023-24 and 2024-25 "
    "(real PRA lines; other markets' lines derived), nba-boxscores 2023-24 and 2024-25"
)
RELATIONS = ("same player", "teammates", "opponents")

MEASURED: dict[tuple[str, str, str], tuple[float, float, float, float, int]] = {
    ("same player", "points", "rebounds"): (0.269, 0.173, 0.150, 0.197, 7602),
    ("same player", "points", "assists"): (0.139, 0.088, 0.067, 0.108, 7602),
    ("same player", "points", "threes"): (0.660, 0.453, 0.433, 0.473, 7602),
    ("same player", "points", "pra"): (0.910, 0.728, 0.712, 0.743, 7590),
    ("same player", "rebounds", "assists"): (0.204, 0.131, 0.107, 0.153, 7602),
    ("same player", "rebounds", "threes"): (0.117, 0.074, 0.051, 0.098, 7602),
    ("same player", "rebounds", "pra"): (0.571, 0.386, 0.364, 0.407, 7590),
    ("same player", "assists", "threes"): (0.058, 0.037, 0.014, 0.058, 7602),
    ("same player", "assists", "pra"): (0.427, 0.280, 0.259, 0.300, 7590),
    ("same player", "threes", "pra"): (0.562, 0.374, 0.353, 0.397, 7590),
    ("teammates", "points", "points"): (-0.046, -0.029, -0.039, -0.019, 25956),
    ("teammates", "points", "rebounds"): (-0.014, -0.009, -0.016, -0.002, 51912),
    ("teammates", "points", "assists"): (0.025, 0.016, 0.009, 0.023, 51912),
    ("teammates", "points", "threes"): (-0.039, -0.024, -0.032, -0.017, 51912),
    ("teammates", "points", "pra"): (-0.039, -0.025, -0.033, -0.016, 52264),
    ("teammates", "rebounds", "rebounds"): (-0.040, -0.025, -0.036, -0.015, 25956),
    ("teammates", "rebounds", "assists"): (-0.019, -0.012, -0.020, -0.004, 51912),
    ("teammates", "rebounds", "threes"): (-0.003, -0.002, -0.009, 0.006, 51912),
    ("teammates", "rebounds", "pra"): (-0.025, -0.016, -0.024, -0.008, 52264),
    ("teammates", "assists", "assists"): (-0.033, -0.021, -0.032, -0.010, 25956),
    ("teammates", "assists", "threes"): (0.038, 0.024, 0.017, 0.031, 51912),
    ("teammates", "assists", "pra"): (0.009, 0.006, -0.002, 0.014, 52264),
    ("teammates", "threes", "threes"): (-0.022, -0.013, -0.024, -0.002, 25956),
    ("teammates", "threes", "pra"): (-0.019, -0.012, -0.020, -0.004, 52264),
    ("teammates", "pra", "pra"): (-0.032, -0.020, -0.031, -0.010, 29752),
    ("opponents", "points", "points"): (0.000, 0.000, -0.010, 0.009, 28828),
    ("opponents", "points", "rebounds"): (-0.020, -0.013, -0.019, -0.007, 57656),
    ("opponents", "points", "assists"): (0.001, 0.000, -0.006, 0.007, 57656),
    ("opponents", "points", "threes"): (-0.002, -0.001, -0.009, 0.006, 57656),
    ("opponents", "points", "pra"): (-0.009, -0.006, -0.014, 0.002, 58411),
    ("opponents", "rebounds", "rebounds"): (0.004, 0.003, -0.007, 0.012, 28828),
    ("opponents", "rebounds", "assists"): (-0.014, -0.009, -0.016, -0.002, 57656),
    ("opponents", "rebounds", "threes"): (-0.014, -0.009, -0.016, -0.002, 57656),
    ("opponents", "rebounds", "pra"): (-0.017, -0.011, -0.018, -0.004, 58411),
    ("opponents", "assists", "assists"): (-0.008, -0.005, -0.014, 0.004, 28828),
    ("opponents", "assists", "threes"): (-0.001, -0.001, -0.008, 0.006, 57656),
    ("opponents", "assists", "pra"): (-0.014, -0.009, -0.016, -0.002, 58411),
    ("opponents", "threes", "threes"): (-0.003, -0.002, -0.012, 0.008, 28828),
    ("opponents", "threes", "pra"): (-0.012, -0.007, -0.015, 0.000, 58411),
    ("opponents", "pra", "pra"): (-0.013, -0.008, -0.018, 0.002, 33328),
}
LATENT: dict[tuple[str, str, str], float] = {key: value[0] for key, value in MEASURED.items()}
"""(relation, market, market) -> the copula correlation of two *over* bets; what :func:`latent_matrix` reads."""

SAME_BET = 0.999
"""The copula correlation of one player's two bets on one market (two lines of it): all but the same bet."""


def key(relation: str, market_a: str, market_b: str) -> tuple[str, str, str]:
    """The table's key of a pair: the two markets in :data:`MARKETS` order (an unknown one sorts last)."""
    order = {m: i for i, m in enumerate(MARKETS)}
    low, high = sorted((market_a, market_b), key=lambda m: (order.get(m, len(order)), m))
    return relation, low, high


def latent_matrix(
    players: Sequence[str],
    teams: Sequence[object],
    markets: Sequence[str],
    over: Sequence[bool] | np.ndarray,
    table: Mapping[tuple[str, str, str], float] = LATENT,
) -> np.ndarray:
    """The copula correlation matrix of one game's bets: the table's entry for each pair's relation and markets
    (0 for a pair it does not hold), its sign flipped when one bet is an under and the other an over (an under
    wins when the stat is low). Positive semi-definite: a table whose entries could not all hold together is
    moved to the nearest such matrix (eigenvalues clipped, unit diagonal restored)."""
    k = len(players)
    matrix = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            if players[i] == players[j]:
                r = (
                    SAME_BET
                    if markets[i] == markets[j]
                    else table.get(key("same player", markets[i], markets[j]))
                )
            else:
                relation = "teammates" if teams[i] == teams[j] else "opponents"
                r = table.get(key(relation, markets[i], markets[j]))
            matrix[i, j] = matrix[j, i] = 0.0 if r is None or not np.isfinite(r) else float(np.clip(r, -1, 1))
    sign = np.where(np.asarray(over, dtype=bool), 1.0, -1.0)
    matrix *= np.outer(sign, sign)
    values, vectors = np.linalg.eigh(matrix)
    if values.min() < 1e-9:
        fixed = (vectors * np.clip(values, 1e-9, None)) @ vectors.T
        scale = np.sqrt(np.diag(fixed))
        matrix = fixed / np.outer(scale, scale)
    return matrix


__all__ = ["LATENT", "MEASURED", "RELATIONS", "SAME_BET", "SOURCE", "key", "latent_matrix"]
