"""Stakes: a joint Kelly over each game's bets at their offers' prices, then caps per bet, team, game and night.

Bets on one game move together (the same player's two markets strongly; teammates and opponents a little: the
measured table is :mod:`nbaprops.picks.correlation`), so Kelly sized one bet at a time, as if each were
independent and alone, misjudges them. A bet alone on its game gets its own Kelly stake at its price
(``sized_by="kelly"``). The bets of a game with two or more are sized together (``sized_by="joint"``,
``sized_with`` their number): the stakes that maximise the expected log of the bankroll over their joint
outcomes — each win, push or loss drawn from a Gaussian copula with the measured correlations (sign flipped for an
under against an over), ``SIMULATIONS`` quasi-random draws (Sobol, fixed seed), each bet's win and loss frequencies set
exactly to its probabilities — found by ``scipy.optimize`` (SLSQP) within ``0 ≤ stake`` and a total below the
bankroll. Each gets ``kelly_fraction`` of that full stake (``kelly_stake``; ``kelly_full`` stays the bet's own
full Kelly fraction, for comparison).

The caps are outer limits, as before: best EV first, each bet is cut to what the tightest cap leaves —
``max_bet_fraction`` per bet, ``max_team_fraction`` for one team's bets, ``max_game_fraction`` for one game's,
``max_night_fraction`` for the night — and says which cut it (``cut_by``: ``bet_cap``, ``team_cap``,
``game_cap`` or ``night_cap``; None when its Kelly stake fit). A bet a cap leaves nothing is dropped and counted
under that cap; one the joint Kelly stakes nothing (another bet on the game carries the same risk better) is
counted under ``joint``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.picks.correlation import LATENT, latent_matrix
from nbaprops.systems.betting import payout

CAPS = ("bet_cap", "team_cap", "game_cap", "night_cap")
SIMULATIONS = 1 << 14
"""Joint outcomes drawn per game, a power of two (a scrambled Sobol sequence with the fixed seed :data:`SEED`:
the same bets get the same stakes on every run)."""
SEED = 20
_EPS = 1e-9
_ROOM = 1e-6
"""The joint stakes (full Kelly) leave at least this fraction of the bankroll unstaked: every loss is survivable."""


def kelly(p_win: float, price: float, p_lose: float | None = None) -> float:
    """Full-Kelly fraction of the bankroll on a bet won with probability ``p_win`` and lost with ``p_lose``
    (default ``1 - p_win``; the rest is a push, which refunds) at American odds ``price``:
    ``(b·p_win − p_lose) / (b·(p_win + p_lose))``, ``b`` the profit per unit on a win."""
    b = float(payout(price))  # type: ignore[arg-type]
    lose = 1.0 - p_win if p_lose is None else p_lose
    settles = p_win + lose
    return (b * p_win - lose) / (b * settles) if b > 0 and settles > 0 else 0.0


def kelly_of(p_win: np.ndarray, p_lose: np.ndarray, price: np.ndarray) -> np.ndarray:
    """:func:`kelly` over arrays of bets."""
    b = payout(price)
    settles = p_win + p_lose
    with np.errstate(divide="ignore", invalid="ignore"):
        full = (b * p_win - p_lose) / (b * settles)
    return np.where((b > 0) & (settles > 0), full, 0.0)


@functools.lru_cache(maxsize=64)
def _normals(k: int, draws: int, seed: int) -> np.ndarray:
    """``k`` rows of ``draws`` (a power of two) standard normals, the same on every call (read-only): a scrambled
    Sobol sequence, evenly spread, so the joint frequencies err by about 1/draws, not 1/sqrt(draws)."""
    sobol = stats.qmc.Sobol(k, scramble=True, seed=seed).random_base2(max(draws - 1, 1).bit_length())
    normals = np.ascontiguousarray(special.ndtri(np.clip(sobol, 0.5 / draws, 1 - 0.5 / draws)).T)
    normals.setflags(write=False)
    return normals


def joint_kelly(
    p_win: np.ndarray,
    p_lose: np.ndarray,
    price: np.ndarray,
    correlation: np.ndarray,
    *,
    draws: int = SIMULATIONS,
    seed: int = SEED,
) -> np.ndarray:
    """Full-Kelly fractions of the bankroll on bets settled together: the stakes ``s ≥ 0``, ``Σ s < 1``, that
    maximise ``E log(1 + Σ s_i R_i)``, ``R_i`` the profit per unit of bet ``i`` (``b_i`` on a win, −1 on a loss, 0
    on a push), over ``draws`` joint outcomes of a Gaussian copula with ``correlation`` (bets oriented so that a
    high draw wins). The frequencies of each bet's wins and losses are its probabilities to 1/``draws``."""
    k = len(p_win)
    b = payout(price)
    values, vectors = np.linalg.eigh(correlation)
    normals = _normals(max(k, 16), draws, seed)[:k]  # a Sobol sequence's first k dimensions are one too
    latent = (vectors * np.sqrt(np.clip(values, 0, None))) @ normals  # one row per bet
    n_win = np.rint(p_win * draws).astype(np.int64)
    n_lose = np.minimum(np.rint(p_lose * draws).astype(np.int64), draws - n_win)
    # per bet, the order statistics that leave exactly n_lose draws below and n_win at or above (O(draws))
    low, high = np.full(k, np.inf), np.full(k, np.inf)
    for j in range(k):
        at = [int(i) for i in (n_lose[j], draws - n_win[j]) if i < draws]
        if at:
            cuts = np.partition(latent[j], at)
            low[j] = cuts[n_lose[j]] if n_lose[j] < draws else np.inf
            high[j] = cuts[draws - n_win[j]] if n_win[j] > 0 else np.inf
    state = (
        (latent >= high[:, None]).view(np.int8) - (latent < low[:, None]).view(np.int8) + 1
    )  # 0 lost, 2 won
    if k <= 33:  # one base-3 code per draw (exact in float64): count them, no sort of rows
        powers = 3.0 ** np.arange(k)
        code = (powers @ state).astype(np.int64)
        if k <= 9:
            counts = np.bincount(code, minlength=3**k)
            codes = np.flatnonzero(counts)
            counts = counts[codes]
        else:
            codes, counts = np.unique(code, return_counts=True)
        states = codes[:, None] // 3 ** np.arange(k, dtype=np.int64) % 3
    else:
        states, counts = np.unique(state.T, axis=0, return_counts=True)
    returns = np.where(states == 2, b, np.where(states == 0, -1.0, 0.0))  # one row per distinct joint outcome
    prob = counts / draws

    def loss(s: np.ndarray) -> tuple[float, np.ndarray]:
        wealth = np.maximum(1.0 + returns @ s, 1e-12)
        return float(-prob @ np.log(wealth)), -((prob / wealth) @ returns)

    alone = np.maximum(kelly_of(p_win, p_lose, price), 0.0)
    start = alone * min(1.0, 0.5 / max(alone.sum(), _EPS))
    found = optimize.minimize(
        loss,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "ineq", "fun": lambda s: 1.0 - _ROOM - s.sum(), "jac": lambda s: -np.ones(k)}],
        options={"ftol": 1e-13, "maxiter": 500},
    )
    if not found.success:  # SLSQP can stall on the total's bound (edges no real offer has): the slower solver
        with (
            warnings.catch_warnings()
        ):  # its quasi-Newton notes ("delta_grad == 0") are not the user's business
            warnings.simplefilter("ignore", UserWarning)
            slow = optimize.minimize(
                loss,
                start,
                jac=True,
                method="trust-constr",
                bounds=optimize.Bounds(0.0, 1.0),
                constraints=[optimize.LinearConstraint(np.ones((1, k)), -np.inf, 1.0 - _ROOM)],
            )
        if np.isfinite(slow.x).all() and (not np.isfinite(found.x).all() or slow.fun < found.fun):
            found = slow
    stakes: np.ndarray = np.clip(found.x, 0.0, 1.0) if np.isfinite(found.x).all() else start
    return stakes * min(1.0, (1.0 - _ROOM) / max(float(stakes.sum()), _EPS))


@dataclass
class Sizing:
    """The stakes of a night: each kept bet with ``kelly_full``, ``kelly_stake``, ``sized_by``, ``sized_with``,
    ``stake`` and ``cut_by``; ``dropped`` counts the bets left nothing, by cap (or ``joint``)."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*CAPS, "joint"), 0))


def _checked(bets: list[dict[str, Any]], bankroll: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (isinstance(bankroll, int | float) and np.isfinite(bankroll) and bankroll > 0):
        raise InputError("the bankroll must be a positive number")
    try:
        p_win = np.array([b["p_win"] for b in bets], dtype=np.float64)
        p_lose = np.array([b["p_lose"] for b in bets], dtype=np.float64)
        price = np.array([b["price"] for b in bets], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("a bet's probabilities and price must be numbers") from None
    bad = ~(
        np.isfinite(p_win) & np.isfinite(p_lose) & (p_win >= 0) & (p_lose >= 0) & (p_win + p_lose <= 1 + 1e-9)
    )
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} bet(s) with probabilities of winning and losing that are not between 0 and 1 "
            "or add up to more than 1"
        )
    bad = ~(np.isfinite(price) & (np.abs(price) >= 100))
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} bet(s) at a price that is not American odds (at most -100 or at least +100)"
        )
    return p_win, p_lose, price


def full_stakes(
    bets: list[dict[str, Any]], table: Mapping[tuple[str, str, str], float] = LATENT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bet: its own full-Kelly fraction, the full-Kelly fraction it is sized at (joint over its game's bets
    with a positive one of their own, else its own), and how many bets of its game were sized with it (1: alone).

    Raises:
        InputError: a probability outside [0, 1], a bet's two summing over 1, or a price that is not American odds.
    """
    p_win, p_lose, price = _checked(bets, 1.0)
    own = kelly_of(p_win, p_lose, price)
    sized = np.maximum(own, 0.0)
    together = np.ones(len(bets), dtype=np.int64)
    games: dict[Any, list[int]] = {}
    for i, bet in enumerate(bets):
        if own[i] > _EPS:
            games.setdefault(bet.get("game_id"), []).append(i)
    for game, members in games.items():
        if game is None or len(members) < 2:
            continue
        at = np.array(members)
        correlation = latent_matrix(
            [str(bets[i].get("player_lookup")) for i in members],
            [bets[i].get("team") for i in members],
            [str(bets[i].get("market")) for i in members],
            [str(bets[i].get("side", "over")).lower() == "over" for i in members],
            table,
        )
        sized[at] = joint_kelly(p_win[at], p_lose[at], price[at], correlation)
        together[at] = len(members)
    return own, sized, together


def size(
    bets: Iterable[dict[str, Any]],
    bankroll: float,
    settings: Settings,
    *,
    table: Mapping[tuple[str, str, str], float] = LATENT,
) -> Sizing:
    """Stake ``bets`` (best first; each with ``p_win``, ``p_lose``, ``price``, ``side``, ``market``,
    ``player_lookup``, ``game_id``, ``team``) by a joint Kelly per game within the caps of ``settings`` (module
    docstring). ``table``: the copula correlations, (relation, market, market) -> r (default: the measured one).

    Raises:
        InputError: a bankroll that is not a positive number; a probability outside [0, 1], a bet's two summing
            over 1, or a price that is not American odds.
    """
    bets = list(bets)
    _checked(bets, bankroll)
    own, sized, together = full_stakes(bets, table)
    per_bet = bankroll * settings.max_bet_fraction
    night_left = bankroll * settings.max_night_fraction
    team_left: dict[Any, float] = {}
    game_left: dict[Any, float] = {}
    out = Sizing()
    for i, bet in enumerate(bets):
        wanted = bankroll * settings.kelly_fraction * float(sized[i])
        team = (bet["game_id"], bet["team"])
        limits = {
            "bet_cap": per_bet,
            "team_cap": team_left.get(team, bankroll * settings.max_team_fraction),
            "game_cap": game_left.get(bet["game_id"], bankroll * settings.max_game_fraction),
            "night_cap": night_left,
        }
        tightest = min(CAPS, key=lambda c: limits[c])  # the first of equal caps: the narrowest in scope
        stake = min(wanted, limits[tightest])
        if stake <= _EPS:
            if wanted > _EPS:
                out.dropped[tightest] += 1
            elif own[i] > _EPS:
                out.dropped["joint"] += 1
            continue
        team_left[team] = limits["team_cap"] - stake
        game_left[bet["game_id"]] = limits["game_cap"] - stake
        night_left -= stake
        out.kept.append(
            {
                **bet,
                "kelly_full": round(float(own[i]), 6),
                "kelly_stake": round(wanted, 4),
                "sized_by": "joint" if together[i] > 1 else "kelly",
                "sized_with": int(together[i]),
                "stake": round(stake, 4),
                "cut_by": tightest if wanted > limits[tightest] + _EPS else None,
            }
        )
    return out


__all__ = ["CAPS", "SEED", "SIMULATIONS", "Sizing", "full_stakes", "joint_kelly", "kelly", "kelly_of", "size"]
