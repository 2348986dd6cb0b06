"""A system's bet carried to every offer of its player-market, and the best one it can take.

The system decides the **side** (its OVER or UNDER) and its calibrated probability at **its own line** ``L0``
(the line it was priced at, the consensus book's). At another line ``L`` the probability is carried along the
market's fair distribution (the board's NB2 of the player-market) by a constant shift in logit space — the rule
the backtest grades bets with at the offer taken (``ev``, :mod:`nbaprops.evaluation.offers`,
docs/backtest.md), so what the backtest measured is what picks bets:

    logit p(L) = logit fair(L) + (logit p(L0) − logit fair(L0))

``p`` the system's P(over | settled), ``fair`` the fair distribution's. An integer line's push has the fair
probability and refunds. At ``L0`` the pick's probability is the calibrated one, unchanged; elsewhere it moves as
the market's fair probability moves between the two lines, keeping the system's disagreement with the market.

Why not the market's fair probability alone: the consensus book's price is then −EV by construction, and the
only "edges" left are other books' off-consensus prices, which the study found break even at best
(docs/market.md, section 5) — the system would add nothing but a side. Why not the system's probability
unchanged at every line: a 58% over at 30.5 is not a 58% over at 33.5.

An offer can be taken when the board's price guard calls it ``eligible`` (a book the user bets at, not an outlier
line, its price near the consensus; quarantined lines never reach the board) and it has a price on the system's
side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy import special

from nbaprops.pricing import LineDistribution, SlatePricing, expected_value

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
_P_CLIP = 1e-6


@dataclass(frozen=True)
class SystemBets:
    """One system's OVER/UNDER rows as parallel arrays (one entry per player-market)."""

    player_lookup: list[str]
    market: list[str]
    over: BoolArray  # True: the system bets the over; False: the under
    line: FloatArray  # the line the system priced (its own)
    p_win: FloatArray  # its calibrated probability that side wins there
    predicted: FloatArray  # its predicted value

    def __len__(self) -> int:
        return len(self.player_lookup)


@dataclass(frozen=True)
class OfferChoice:
    """Per system bet: the best offer it can take (``offer`` indexes ``pricing.offers``; −1: none) and, there,
    the carried probability of a win and of a loss, the market's fair probability of the side and the EV per
    unit; ``takeable`` counts the offers it could take. ``every`` lists each (bet, offer) of the bet's side with
    the same numbers and whether it could be taken: the EV of every (book, line, side) the system bets."""

    offer: IntArray
    p_win: FloatArray
    p_lose: FloatArray
    fair_p: FloatArray
    ev: FloatArray
    takeable: IntArray
    every: pa.Table


def _logit(p: FloatArray) -> FloatArray:
    return np.asarray(special.logit(np.clip(p, _P_CLIP, 1.0 - _P_CLIP)), dtype=np.float64)


def carried(
    bets: SystemBets, distribution: LineDistribution, line: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(P(over), P(under), P(push))`` of each bet at ``line`` (one per bet): the system's P(over | settled) at
    its own line carried by the logit shift along ``distribution`` (the fair one of each bet's player-market),
    the push the fair distribution's."""
    at_own_over, at_own_under, _ = distribution.probabilities(bets.line)
    p_over = np.where(bets.over, bets.p_win, 1.0 - bets.p_win)
    shift = _logit(p_over) - _logit(at_own_over / (at_own_over + at_own_under))
    f_over, f_under, f_push = distribution.probabilities(line)
    settled = special.expit(_logit(f_over / (f_over + f_under)) + shift)
    return settled * (1.0 - f_push), (1.0 - settled) * (1.0 - f_push), f_push


def _group_of(bets: SystemBets, pricing: SlatePricing) -> IntArray:
    """The priced player-market (``pricing.board`` row, = the offers' ``group``) of each bet; −1 without one."""
    board = pricing.board
    keys = pa.table(
        {
            "player_lookup": pc.cast(board["player_lookup"], pa.string()),
            "market": pc.cast(board["market"], pa.string()),
            "group": pa.array(np.arange(board.num_rows, dtype=np.int64)),
        }
    )
    mine = pa.table(
        {
            "player_lookup": pa.array(bets.player_lookup, pa.string()),
            "market": pa.array(bets.market, pa.string()),
            "row": pa.array(np.arange(len(bets), dtype=np.int64)),
        }
    )
    joined = mine.join(keys, ["player_lookup", "market"], join_type="left outer")
    group = np.full(len(bets), -1, dtype=np.int64)
    rows = np.asarray(joined["row"], dtype=np.int64)
    found = np.asarray(pc.fill_null(joined["group"], -1), dtype=np.int64)
    group[rows] = found
    return group


def _best_per_row(row: IntArray, ev: FloatArray, n: int) -> IntArray:
    """Index (into ``row``/``ev``) of the highest finite ``ev`` of each row; −1 where there is none."""
    best = np.full(n, -1, dtype=np.int64)
    if row.size == 0:
        return best
    order = np.lexsort((-ev, row))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = row[order][1:] != row[order][:-1]
    hit = order[first]
    best[row[hit]] = np.where(np.isfinite(ev[hit]), hit, -1)
    return best


def choose_offers(bets: SystemBets, pricing: SlatePricing) -> OfferChoice:
    """Every offer of each bet's side priced with the carried probability, and the best one it can take."""
    n = len(bets)
    offers = pricing.offers
    group = _group_of(bets, pricing)
    bet_of_group = np.full(pricing.board.num_rows, -1, dtype=np.int64)
    bet_of_group[group[group >= 0]] = np.flatnonzero(group >= 0)
    offer_group = np.asarray(offers["group"], dtype=np.int64)
    candidate = np.flatnonzero(bet_of_group[offer_group] >= 0)
    row = bet_of_group[offer_group[candidate]]

    def column(name: str) -> FloatArray:
        values = pc.fill_null(pc.cast(offers[name], pa.float64()), np.nan)
        return np.asarray(values, dtype=np.float64)[candidate]

    line = column("line")
    over = bets.over[row]
    mine = SystemBets(
        [], [], bets.over[row], bets.line[row], bets.p_win[row], bets.predicted[row]
    )  # each (bet, offer) pair as a bet of its own
    p_over, p_under, _ = carried(mine, pricing.consensus.distribution.at(offer_group[candidate]), line)
    p_win = np.where(over, p_over, p_under)
    p_lose = np.where(over, p_under, p_over)
    price = np.where(over, column("over_price"), column("under_price"))
    ev = expected_value(p_win, p_lose, price)
    fair_p = np.where(over, column("p_over"), column("p_under"))
    eligible = np.asarray(pc.fill_null(offers["eligible"], False), dtype=bool)[candidate]
    takeable = eligible & np.isfinite(ev)
    best = _best_per_row(row, np.where(takeable, ev, -np.inf), n)
    has = best >= 0
    at = np.maximum(best, 0)

    def chosen(values: FloatArray) -> FloatArray:
        return np.where(has, values[at] if values.size else np.nan, np.nan)

    every = pa.table(
        {
            "bet": pa.array(row),
            "offer": pa.array(candidate.astype(np.int64)),
            "side": pa.array(np.where(over, "over", "under")),
            "line": pa.array(line),
            "price": pa.array(price),
            "p_win": pa.array(p_win),
            "fair_p": pa.array(fair_p),
            "ev": pa.array(ev),
            "takeable": pa.array(takeable),
        }
    )
    return OfferChoice(
        offer=np.where(has, candidate[at] if candidate.size else -1, -1).astype(np.int64),
        p_win=chosen(p_win),
        p_lose=chosen(p_lose),
        fair_p=chosen(fair_p),
        ev=chosen(ev),
        takeable=np.bincount(row[takeable], minlength=n).astype(np.int64),
        every=every,
    )


__all__ = ["OfferChoice", "SystemBets", "carried", "choose_offers"]
