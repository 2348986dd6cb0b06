"""Stakes: fractional Kelly at the chosen offer, cut by caps per bet, per team, per game and per night.

Bets on one game move together (pace, blowouts, overtime, one player's minutes taken by another's), and bets on
one team more so; Kelly sized one bet at a time, as if each were independent, overbets them. Until a joint
Kelly is fitted (the correlations are not measured yet), the night's bets on one team share
``max_team_fraction`` of the bankroll and those on one game ``max_game_fraction``. Bets are sized best EV first:
each gets ``kelly_fraction`` of its full Kelly stake, cut to what the tightest cap leaves, and says which cap cut
it (``cut_by``: ``bet_cap``, ``team_cap``, ``game_cap`` or ``night_cap``; None when Kelly's own stake fit). A
bet a cap leaves nothing is dropped and counted under that cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nbaprops.config import Settings
from nbaprops.systems.betting import payout

CAPS = ("bet_cap", "team_cap", "game_cap", "night_cap")
_EPS = 1e-9


def kelly(p_win: float, price: float, p_lose: float | None = None) -> float:
    """Full-Kelly fraction of the bankroll on a bet won with probability ``p_win`` and lost with ``p_lose``
    (default ``1 - p_win``; the rest is a push, which refunds) at American odds ``price``:
    ``(b·p_win − p_lose) / (b·(p_win + p_lose))``, ``b`` the profit per unit on a win."""
    b = float(payout(price))  # type: ignore[arg-type]
    lose = 1.0 - p_win if p_lose is None else p_lose
    settles = p_win + lose
    return (b * p_win - lose) / (b * settles) if b > 0 and settles > 0 else 0.0


@dataclass
class Sizing:
    """The stakes of a night: each kept bet with ``kelly_full``, ``kelly_stake``, ``stake`` and ``cut_by``;
    ``dropped`` counts the bets a cap left nothing, by cap."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAPS, 0))


def size(bets: Iterable[dict[str, Any]], bankroll: float, settings: Settings) -> Sizing:
    """Stake ``bets`` (best first; each with ``p_win``, ``p_lose``, ``price``, ``game_id``, ``team``) within
    the caps of ``settings`` (module docstring)."""
    per_bet = bankroll * settings.max_bet_fraction
    night_left = bankroll * settings.max_night_fraction
    team_left: dict[Any, float] = {}
    game_left: dict[Any, float] = {}
    out = Sizing()
    for bet in bets:
        full = kelly(bet["p_win"], bet["price"], bet["p_lose"])
        wanted = bankroll * settings.kelly_fraction * max(full, 0.0)
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
            continue
        team_left[team] = limits["team_cap"] - stake
        game_left[bet["game_id"]] = limits["game_cap"] - stake
        night_left -= stake
        out.kept.append(
            {
                **bet,
                "kelly_full": round(full, 6),
                "kelly_stake": round(wanted, 4),
                "stake": round(stake, 4),
                "cut_by": tightest if wanted > limits[tightest] + _EPS else None,
            }
        )
    return out


__all__ = ["CAPS", "Sizing", "kelly", "size"]
