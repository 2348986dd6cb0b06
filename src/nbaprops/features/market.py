"""What the market says before tip-off, as feature columns: the line and its de-vigged P(over).

A sportsbook line is public before the game, so a system may use it honestly — as long as it is the line
posted by the prediction time (the batch and the backtest pass the lines selected ``as of`` then; training
rows get the lines stored for their own dates). Rows without a line get NaN.

- ``market_line``: the line of the book whose prices are used (the consensus book of
  :func:`~nbaprops.ingest.lines.select_lines`).
- ``market_p_over``: that book's P(over) with its margin removed, ``p_over / (p_over + p_under)`` of the
  implied probabilities of the two prices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

MARKET_COLUMNS: tuple[str, ...] = ("market_line", "market_p_over")


def devig_p_over(over_price: np.ndarray, under_price: np.ndarray) -> np.ndarray:
    """P(over) implied by American odds on both sides, the book's margin removed (NaN without both prices)."""
    def implied(american: np.ndarray) -> np.ndarray:
        a = np.asarray(american, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, 100.0 / (a + 100.0), np.abs(a) / (np.abs(a) + 100.0))

    p_over, p_under = implied(over_price), implied(under_price)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(p_over / (p_over + p_under), dtype=np.float64)


def with_market(feats: pa.Table, line: np.ndarray, over_price: np.ndarray, under_price: np.ndarray) -> pa.Table:
    """``feats`` with :data:`MARKET_COLUMNS` set from per-row line and prices (replacing any already there)."""
    values = {"market_line": np.asarray(line, dtype=np.float64),
              "market_p_over": devig_p_over(over_price, under_price)}
    for name, arr in values.items():
        col = pa.array(arr, pa.float64(), mask=~np.isfinite(arr))
        idx = feats.schema.get_field_index(name)
        feats = feats.set_column(idx, name, col) if idx >= 0 else feats.append_column(name, col)
    return feats


def with_stored_lines(feats: pa.Table, lines: Any | None) -> pa.Table:
    """``feats`` (rows with ``game_date`` and ``player_lookup``) with the market columns of the stored lines.

    Args:
        lines: a ``select_lines`` table of one market (``game_date, player_lookup, book_line, over_price,
            under_price``), or ``None`` when the market has no lines.
    """
    n = feats.num_rows
    line, over, under = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if lines is not None and lines.num_rows:
        keys = {(d, p): i for i, (d, p) in enumerate(zip(lines.column("game_date").to_pylist(),
                                                         lines.column("player_lookup").to_pylist(), strict=True))}
        book_line = lines.column("book_line").to_pylist()
        over_price = lines.column("over_price").to_pylist()
        under_price = lines.column("under_price").to_pylist()
        for i, key in enumerate(zip(feats.column("game_date").to_pylist(),
                                    feats.column("player_lookup").to_pylist(), strict=True)):
            j = keys.get(key)
            if j is not None:
                line[i] = np.nan if book_line[j] is None else book_line[j]
                over[i] = np.nan if over_price[j] is None else over_price[j]
                under[i] = np.nan if under_price[j] is None else under_price[j]
    return with_market(feats, line, over, under)


__all__ = ["MARKET_COLUMNS", "devig_p_over", "with_market", "with_stored_lines"]
