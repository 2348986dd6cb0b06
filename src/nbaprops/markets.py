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

# market -> (lowest, highest) line a book can plausibly post. A line outside is refused at ingest: it is a typo
# (PRA 415 for 41.5) or a placeholder, never an offer. The real PRA lines of 2023-24 and 2024-25 run 3.5-59.5;
# the bounds leave room for any real line (the single-game records are 100 points, 55 rebounds, 30 assists,
# 14 threes).
LINE_RANGE: dict[str, tuple[float, float]] = {
    "points": (0.5, 70.0),
    "rebounds": (0.5, 30.0),
    "assists": (0.5, 25.0),
    "threes": (0.5, 12.0),
    "pra": (0.5, 100.0),
}

# market -> how many points a book's line may sit from the median of the other books' lines for the same
# player, game and market before it is quarantined (stored, reported, never priced or bet). On the real PRA
# lines the largest gap is 10 (2023-24; 7 in 2024-25: late news moves one book before the others), so 12
# quarantines none of them.
BOOK_GAP: dict[str, float] = {
    "points": 10.0,
    "rebounds": 6.0,
    "assists": 6.0,
    "threes": 3.0,
    "pra": 12.0,
}

# market -> how far a line may sit above the player's highest (or below his lowest) value of the market over his
# last ``FORM_GAMES`` games before it is quarantined; checked once he has ``FORM_MIN_GAMES`` of them.
FORM_GAP: dict[str, float] = {
    "points": 15.0,
    "rebounds": 8.0,
    "assists": 8.0,
    "threes": 4.0,
    "pra": 20.0,
}
FORM_GAMES = 20
FORM_MIN_GAMES = 5

# market -> how far one system's prediction may sit from both the median of the other systems' predictions and
# the line before the row is flagged ``stray`` (shown on the board, never priced or bet).
STRAY_GAP: dict[str, float] = {
    "points": 7.0,
    "rebounds": 4.0,
    "assists": 3.5,
    "threes": 2.0,
    "pra": 9.0,
}


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


__all__ = [
    "BOOK_GAP",
    "FORM_GAMES",
    "FORM_GAP",
    "FORM_MIN_GAMES",
    "LINE_RANGE",
    "MARKETS",
    "MARKET_STAT",
    "STRAY_GAP",
    "validate_market",
    "validate_markets",
]
