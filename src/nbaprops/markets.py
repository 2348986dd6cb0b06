"""The markets nbaprops predicts: one list, one validator.

A market names a player prop (``points``) and the box-score stat it settles on (``pts``; ``pra`` is
pts + reb + ast). Every module that needs the list or checks a user's choice imports it from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from nbaprops.errors import InputError

# market -> box-score stat it settles on ("pra" = pts + reb + ast)
MARKET_STAT: dict[str, str] = {
    "points": "pts",
    "rebounds": "reb",
    "assists": "ast",
    "threes": "fg3m",
    "pra": "pra",
}
MARKETS: tuple[str, ...] = tuple(MARKET_STAT)


def validate_markets(markets: Iterable[str]) -> tuple[str, ...]:
    """Return ``markets`` without duplicates, in the given order.

    Raises:
        InputError: no market, or an unknown one (the message lists the valid ones).
    """
    chosen = tuple(dict.fromkeys(m.strip() for m in markets if m.strip()))
    unknown = [m for m in chosen if m not in MARKET_STAT]
    if unknown or not chosen:
        raise InputError(
            f"unknown market(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MARKETS)}"
        )
    return chosen


def validate_market(market: str) -> str:
    """One market, checked like :func:`validate_markets`."""
    return validate_markets([market])[0]


__all__ = ["MARKETS", "MARKET_STAT", "validate_market", "validate_markets"]
