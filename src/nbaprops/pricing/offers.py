"""Bets on offers: the EV of every (book, line, side) and the best over and best under of each player-market.

An offer's EV is per unit staked, from the fair distribution's probabilities at **that offer's line**: a win
pays ``decimal − 1``, a loss costs the stake, a push refunds it (EV 0). The best over (under) of a player-market
is its highest-EV over (under) among the offers a user can take: not an excluded book, not an outlier line
(:mod:`nbaprops.pricing.fair`), not a missing price. ``saving`` is how much EV the best offer gains over the
same side at the consensus book (the book ``select_lines`` would have priced).

:func:`offers_from_arrow` turns an Arrow table of offers (the ``prop_lines`` columns) into
:class:`~nbaprops.pricing.fair.Offers`; :func:`price_slate` is the whole pricing of a slate in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from nbaprops.pricing.devig import Method, decimal_odds, implied_probability, overround
from nbaprops.pricing.fair import (
    DEFAULT_DISPERSION,
    BoolArray,
    Consensus,
    Dispersion,
    FloatArray,
    IntArray,
    Offers,
    fit_consensus,
)

GROUP_KEYS: tuple[str, ...] = ("game_date", "player_lookup", "market")


@dataclass(frozen=True)
class OfferPrices:
    """Each offer's fair probabilities at its own line and the EV of each side (per unit staked)."""

    p_over: FloatArray
    p_under: FloatArray
    p_push: FloatArray
    ev_over: FloatArray
    ev_under: FloatArray
    overround: FloatArray
    eligible: BoolArray


@dataclass(frozen=True)
class BestOffers:
    """Per player-market: index of the best over / under offer (−1: none eligible), its EV and its saving."""

    over: IntArray
    under: IntArray
    ev_over: FloatArray
    ev_under: FloatArray
    saving_over: FloatArray
    saving_under: FloatArray


def expected_value(p_win: FloatArray, p_lose: FloatArray, american: FloatArray) -> FloatArray:
    """EV per unit staked at American odds (a push, the rest of the probability, returns the stake)."""
    return np.asarray(p_win * (decimal_odds(american) - 1.0) - p_lose, dtype=np.float64)


def price_offers(
    offers: Offers,
    consensus: Consensus,
    *,
    excluded_books: Iterable[str] = (),
    max_price_gap: float | None = None,
) -> OfferPrices:
    """EV of both sides of every offer at its own line.

    ``eligible`` leaves out excluded books, outlier lines and, with ``max_price_gap``, suspect prices: an offer
    whose own fair P(over) sits more than ``max_price_gap`` from the consensus distribution's P(over | settled)
    at the same line (a stale price, or a price paired with the wrong line, looks like a gift).
    """
    p_over, p_under, p_push = consensus.distribution.at(offers.group).probabilities(offers.line)
    excluded = np.isin(np.asarray(offers.books, dtype=object), list(excluded_books))
    eligible = (
        ~consensus.outlier
        & ~(excluded[offers.book] if excluded.size else np.zeros(len(offers), dtype=bool))
        & np.isfinite(p_over)
    )
    if max_price_gap is not None:
        settled = p_over / (p_over + p_under)
        # An offer without both prices has no fair probability of its own: nothing to compare, kept.
        own = np.where(np.isfinite(consensus.fair), consensus.fair, settled)
        eligible &= ~(np.abs(own - settled) > max_price_gap)
    return OfferPrices(
        p_over=p_over,
        p_under=p_under,
        p_push=p_push,
        ev_over=expected_value(p_over, p_under, offers.over_price),
        ev_under=expected_value(p_under, p_over, offers.under_price),
        overround=overround(offers.over_price, offers.under_price),
        eligible=eligible,
    )


def _argmax_per_group(group: IntArray, value: FloatArray, n_groups: int) -> IntArray:
    order = np.lexsort((-value, group))
    sorted_group = group[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = sorted_group[1:] != sorted_group[:-1]
    best = np.full(n_groups, -1, dtype=np.int64)
    hit = order[first]
    best[sorted_group[first]] = np.where(np.isfinite(value[hit]), hit, -1)
    return best


def best_offers(offers: Offers, prices: OfferPrices, consensus: Consensus) -> BestOffers:
    """The best eligible over and under of each player-market and their EV gain over the consensus book."""
    n = offers.n_groups
    ev_over = np.where(prices.eligible & np.isfinite(prices.ev_over), prices.ev_over, -np.inf)
    ev_under = np.where(prices.eligible & np.isfinite(prices.ev_under), prices.ev_under, -np.inf)
    over = _argmax_per_group(offers.group, ev_over, n)
    under = _argmax_per_group(offers.group, ev_under, n)
    ref = consensus.consensus_offer
    has_ref = ref >= 0
    safe_ref = np.maximum(ref, 0)

    def pick(index: IntArray, ev: FloatArray) -> FloatArray:
        return np.where(index >= 0, ev[np.maximum(index, 0)], np.nan)

    best_over = pick(over, prices.ev_over)
    best_under = pick(under, prices.ev_under)
    return BestOffers(
        over=over,
        under=under,
        ev_over=best_over,
        ev_under=best_under,
        saving_over=np.where(has_ref, best_over - prices.ev_over[safe_ref], np.nan),
        saving_under=np.where(has_ref, best_under - prices.ev_under[safe_ref], np.nan),
    )


def offers_from_arrow(table: pa.Table, *, keys: tuple[str, ...] = GROUP_KEYS) -> tuple[Offers, pa.Table]:
    """:class:`Offers` of an Arrow table with ``keys``, ``bookmaker``, ``line``, ``over_price``,
    ``under_price`` (and optionally ``is_main``: absent means every offer is a main line), and the table of
    the player-markets (``keys``, in group order)."""
    columns = [pc.cast(table[k], pa.string()) for k in keys]
    joined = pc.binary_join_element_wise(*columns, "\x1f") if len(columns) > 1 else columns[0]
    encoded = pc.dictionary_encode(joined).combine_chunks()
    group = np.asarray(encoded.indices, dtype=np.int64)
    n_groups = len(encoded.dictionary)
    first = np.full(n_groups, -1, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group) - 1, -1, -1)
    book_codes = pc.dictionary_encode(pc.cast(table["bookmaker"], pa.string())).combine_chunks()
    is_main = (
        np.asarray(pc.fill_null(table["is_main"], True), dtype=bool)
        if "is_main" in table.column_names
        else np.ones(table.num_rows, dtype=bool)
    )

    def floats(name: str) -> FloatArray:
        return np.asarray(pc.fill_null(pc.cast(table[name], pa.float64()), np.nan), dtype=np.float64)

    offers = Offers(
        group=group,
        book=np.asarray(book_codes.indices, dtype=np.int64),
        line=floats("line"),
        over_price=floats("over_price"),
        under_price=floats("under_price"),
        is_main=is_main,
        books=tuple(str(b) for b in book_codes.dictionary.to_pylist()),
        n_groups=n_groups,
    )
    return offers, table.select(list(keys)).take(pa.array(first))


@dataclass(frozen=True)
class SlatePricing:
    """A priced slate: ``board`` has one row per player-market, ``offers`` one row per offer."""

    board: pa.Table
    offers: pa.Table
    consensus: Consensus


def price_slate(
    table: pa.Table,
    *,
    dispersion: Dispersion | Mapping[str, Dispersion] = DEFAULT_DISPERSION,
    book_weight: Mapping[str, float] | None = None,
    method: Method = "multiplicative",
    max_gap: float | Mapping[str, float] = np.inf,
    excluded_books: Iterable[str] = (),
    max_price_gap: float | None = None,
) -> SlatePricing:
    """Price every offer of a slate and pick the best over and under of each player-market.

    Args:
        table: offers as Arrow (``game_date``, ``player_lookup``, ``market``, ``bookmaker``, ``line``,
            ``over_price``, ``under_price``, optionally ``is_main``); quarantined rows already left out.
        dispersion: the :class:`~nbaprops.pricing.fair.Dispersion`, one or per market (learned on earlier
            dates; a market missing from the mapping gets the default).
        book_weight: weight per book (learned on earlier dates); None weighs books equally.
        method: de-vig method.
        max_gap: outlier distance from the consensus line, one number or per market
            (``nbaprops.markets.BOOK_GAP``).
        excluded_books: books the user cannot bet at (still part of the consensus: their prices inform it).
        max_price_gap: leave out offers whose own fair probability is this far from the consensus at their
            line (:func:`price_offers`); None keeps every price.

    Returns:
        ``board`` columns: the keys, consensus_line, p_over, p_under, p_push, n_books, spread, mean,
        dispersion, market_mean, consensus_book, then best_over_/best_under_ + book, line, price, ev, saving.
        ``offers`` columns: the input columns plus group, p_over, p_under, p_push, ev_over, ev_under,
        overround, fair (de-vigged), outlier, eligible.
    """
    offers, board_keys = offers_from_arrow(table)
    market = np.asarray(board_keys["market"].to_pylist(), dtype=object)
    per_group_dispersion = (
        [dispersion.get(str(m), DEFAULT_DISPERSION) for m in market]
        if isinstance(dispersion, Mapping)
        else dispersion
    )
    per_group_gap = _per_market(max_gap, market)
    consensus = fit_consensus(
        offers,
        dispersion=per_group_dispersion,
        book_weight=book_weight,
        method=method,
        max_gap=per_group_gap[offers.group] if per_group_gap.size else np.inf,
    )
    prices = price_offers(offers, consensus, excluded_books=excluded_books, max_price_gap=max_price_gap)
    best = best_offers(offers, prices, consensus)
    book_names = np.asarray(offers.books, dtype=object)

    def at(index: IntArray, values: NDArray[Any]) -> list[Any]:
        picked = values[np.maximum(index, 0)]
        return [v if i >= 0 else None for v, i in zip(picked.tolist(), index.tolist(), strict=True)]

    board = board_keys
    board_columns: dict[str, Any] = {
        "consensus_line": consensus.line,
        "p_over": consensus.p_over,
        "p_under": consensus.p_under,
        "p_push": consensus.p_push,
        "n_books": consensus.n_books,
        "spread": consensus.spread,
        "mean": consensus.distribution.mean,
        "dispersion": consensus.distribution.dispersion,
        "market_mean": consensus.market_mean,
        "consensus_book": at(consensus.consensus_offer, book_names[offers.book]),
    }
    for side, index, ev, saving, price in (
        ("over", best.over, best.ev_over, best.saving_over, offers.over_price),
        ("under", best.under, best.ev_under, best.saving_under, offers.under_price),
    ):
        board_columns[f"best_{side}_book"] = at(index, book_names[offers.book])
        board_columns[f"best_{side}_line"] = at(index, offers.line)
        board_columns[f"best_{side}_price"] = at(index, price)
        board_columns[f"best_{side}_ev"] = ev
        board_columns[f"best_{side}_saving"] = saving
    for name, values in board_columns.items():
        board = board.append_column(name, pa.array(values, from_pandas=True))
    offer_table = table
    for name, values in {
        "group": offers.group,
        "p_over": prices.p_over,
        "p_under": prices.p_under,
        "p_push": prices.p_push,
        "ev_over": prices.ev_over,
        "ev_under": prices.ev_under,
        "overround": prices.overround,
        "fair": consensus.fair,
        "outlier": consensus.outlier,
        "eligible": prices.eligible,
    }.items():
        offer_table = offer_table.append_column(name, pa.array(values, from_pandas=True))
    return SlatePricing(board=board, offers=offer_table, consensus=consensus)


def _per_market(value: float | Mapping[str, float], market: NDArray[Any]) -> FloatArray:
    if isinstance(value, Mapping):
        return np.array([value.get(str(m), np.nan) for m in market], dtype=np.float64)
    return np.full(market.shape[0], float(value))


__all__ = [
    "BestOffers",
    "OfferPrices",
    "SlatePricing",
    "best_offers",
    "expected_value",
    "implied_probability",
    "offers_from_arrow",
    "price_offers",
    "price_slate",
]
