"""What the market has taught so far: the book weights and each market's spread, learned as of a date.

:func:`learn_market` is the one call a daily run makes before pricing date D: it takes the stored offers with
their outcomes, keeps only the rows dated strictly before D (the walk-forward rule), and returns a
:class:`MarketModel` for :func:`~nbaprops.pricing.offers.price_slate`. The past player-markets' implied means
depend on the spread used to fit them, so the spread is learned twice: once from means fitted with the
default spread, then from means refitted with that first answer (a second pass moved the PRA answer by less
than 1%, so two are enough).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from nbaprops.pricing.devig import Method, fair_over
from nbaprops.pricing.fair import (
    DEFAULT_DISPERSION,
    Dispersion,
    fit_consensus,
    learn_book_weights,
    learn_dispersion,
    settle,
)
from nbaprops.pricing.offers import offers_from_arrow


def _dates(column: pa.ChunkedArray) -> NDArray[np.datetime64]:
    return np.asarray(pc.cast(column, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")


@dataclass(frozen=True)
class MarketModel:
    """Book weights and per-market spreads learned from the rows dated before ``as_of``."""

    as_of: date
    book_weight: dict[str, float] = field(default_factory=dict)
    dispersion: dict[str, Dispersion] = field(default_factory=dict)
    graded_offers: int = 0


def learn_market(
    history: pa.Table,
    as_of: date,
    *,
    method: Method = "multiplicative",
    window: int = 5000,
    max_gap: float | Mapping[str, float] = np.inf,
) -> MarketModel:
    """Learn the book weights and each market's :class:`Dispersion` from offers dated before ``as_of``.

    Args:
        history: offers (the columns of ``price_slate``) with ``outcome``, the stat the market settles on
            (NULL for a player who did not play: voided). Rows dated on or after ``as_of`` are ignored.
        as_of: the date to be priced next.
        method: de-vig method (the same one the pricing will use).
        window: the spread of a market is learned on its most recent ``window`` player-markets.
        max_gap: outlier distance from the consensus line, as in ``price_slate``.
    """
    dates = np.asarray(
        pc.cast(history["game_date"], pa.date32()).to_numpy(zero_copy_only=False), "datetime64[D]"
    )
    past = history.filter(pa.array(dates < np.datetime64(as_of, "D")))
    if past.num_rows == 0:
        return MarketModel(as_of)
    offers, keys = offers_from_arrow(past)
    outcome_offer = np.asarray(pc.cast(past["outcome"], pa.float64()).to_numpy(zero_copy_only=False), float)
    fair = fair_over(offers.over_price, offers.under_price, method)
    went_over = settle(outcome_offer, offers.line)
    books = np.asarray(offers.books, dtype=object)[offers.book]
    weights = learn_book_weights(books, fair, went_over)
    graded = int(np.isfinite(went_over + fair).sum())

    # The spread is learned on each market's most recent `window` player-markets: fit only those.
    market = np.asarray(keys["market"].to_pylist(), dtype=object)
    group_date = _dates(keys["game_date"])
    keep_group = np.zeros(offers.n_groups, dtype=bool)
    for name in np.unique(market):
        groups = np.flatnonzero(market == name)
        keep_group[groups[np.argsort(group_date[groups], kind="stable")][-window:]] = True
    recent = past.filter(pa.array(keep_group[offers.group]))
    offers, keys = offers_from_arrow(recent)
    outcome = np.full(offers.n_groups, np.nan)
    outcome[offers.group] = np.asarray(
        pc.cast(recent["outcome"], pa.float64()).to_numpy(zero_copy_only=False), float
    )
    market = np.asarray(keys["market"].to_pylist(), dtype=object)
    gap = (
        max_gap
        if not isinstance(max_gap, Mapping)
        else np.array([max_gap.get(str(m), np.inf) for m in market])
    )
    per_offer_gap = gap[offers.group] if isinstance(gap, np.ndarray) else gap
    spreads = {str(m): DEFAULT_DISPERSION for m in np.unique(market)}
    for _ in range(2):
        consensus = fit_consensus(
            offers,
            dispersion=[spreads[str(m)] for m in market],
            book_weight=weights,
            method=method,
            max_gap=per_offer_gap,
        )
        for name in spreads:
            mine = market == name
            spreads[name] = learn_dispersion(consensus.market_mean[mine], outcome[mine], consensus.line[mine])
    return MarketModel(as_of, weights, spreads, graded)
