"""Graded at the offer taken: each bet of a graded run re-graded at the offer a user would have chosen.

The backtest (and the live grading) settle every bet at the one consensus book ``select_lines`` picked: its
line and its price. A user shops. :func:`grade_at_offers` takes a run's grades and, for each bet, every offer
that existed at the bet's prediction time (:func:`~nbaprops.ingest.lines.date_offers` with ``as_of``: only lines
posted by then, never quarantined, never at or after tip-off), prices them all at once
(:func:`~nbaprops.pricing.price_slate`, the board's settings: equal book weights, the default spread, the
outlier gap ``BOOK_GAP`` and the price guard), chooses one offer on the bet's side and grades the bet there.

Which offer (``rule``):

- ``price``: among the eligible offers on the bet's side at a line **at least as good** as the consensus
  book's (an over at a line no higher, an under at a line no lower), the best price; ties go to the better line,
  then to the consensus book itself, then to the book's name. The consensus book's own offer is a candidate
  whenever it is eligible, so the offer chosen is never worse than it on line or on price: this rule needs no
  model and cannot lose to the consensus book bet for bet, except where the price guard or the user's books
  remove the consensus offer.
- ``ev``: the eligible offer on the bet's side with the highest expected value under the system's own
  probability moved to that offer's line along the fair distribution: ``logit p(L) = logit fair(L) +
  (logit p(L0) − logit fair(L0))`` with ``p(L0)`` the system's P(over | settled) at the consensus book's line
  ``L0`` and ``fair`` the fair P(over | settled); a push (integer line) has the fair distribution's probability
  and refunds the stake. It may move to a worse line at a better price when the system's probability says so.

Eligible: not an outlier line, a price present, the price guard passed (``max_price_gap``, 0.1: an offer whose
own fair P(over) is more than that from the consensus distribution at its line is not bet), and a book the user
can bet at (``books``; empty: all). A bet with no eligible offer is counted (``n_without_offer``) and left out of
both columns of the comparison, which is always on the same bets.

Scopes: ``bets`` are the recommended bets (``recommendation`` OVER / UNDER) with their calibrated P(win);
``edge`` is every lined row on the side of the system's own edge (value above the line: over), with its
uncalibrated P(over): what line shopping would do to the model's leanings when the calibration finds no signal
and nothing is bet. Players who did not play, and rows voided by an invalidation, are left out (refunded).

:func:`offer_metrics` gives per system and market: bets, ROI at the consensus book and at the chosen offer with
95% intervals (percentile bootstrap over game dates with :func:`scipy.stats.bootstrap`; a date's bets move
together) and the interval of their difference, hit rates, the average overround (two-way) and margin paid on
the side taken of the offers taken, hit rate by book, and the calibration (ECE) of the fair probability of the
chosen side. :func:`offers_section` is the ``offers`` section of ``nbaprops backtest --json``; it takes any
graded run, the live one too (``live_grades``), with the prediction times given per date (``as_of``).
:func:`run_offers` prices a run's offers once for several gradings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special, stats

from nbaprops.clock import ManualClock
from nbaprops.errors import InputError
from nbaprops.evaluation.metrics import ece
from nbaprops.ingest.lines import date_offers
from nbaprops.markets import BOOK_GAP
from nbaprops.pipeline.board import PRICE_GUARD, excluded_books
from nbaprops.pipeline.coordinator import default_as_of
from nbaprops.pricing import SlatePricing, decimal_odds, implied_probability, overround, price_slate
from nbaprops.pricing.distribution import line_probabilities
from nbaprops.storage.inputs import Inputs

Rule = Literal["price", "ev"]
Scope = Literal["bets", "edge"]
RULES: tuple[Rule, ...] = ("price", "ev")
SCOPES: tuple[Scope, ...] = ("bets", "edge")
_P_CLIP = 1e-6

OFFER_GRADE_COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "system_id",
    "market",
    "game_date",
    "player_lookup",
    "side",
    "actual_value",
    "consensus_book",
    "consensus_line",
    "consensus_price",
    "consensus_overround",
    "consensus_margin",
    "consensus_profit",
    "book",
    "line",
    "price",
    "overround",
    "margin",
    "fair_p_win",
    "profit",
)
"""One row per bet of the scope that settled (not void): the consensus book's line, price, overround, margin
and profit, then the offer chosen (null without an eligible one): its book, line, price, overround, margin, the
fair P(side wins | settles) at its line and the profit there (0 on a push). ``overround`` is the offer's two-way
margin (``q_over + q_under − 1``); ``margin`` is what the side taken pays: its price's implied probability minus
the fair P(side wins | settles) at its line (negative: a price the fair distribution calls generous)."""


def backtest_as_of(day: date) -> datetime:
    """The backtest's prediction time of a past ``day`` (00:00 UTC after it: the daily batch's, once past)."""
    return default_as_of(
        day, ManualClock(datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC))
    )


def live_as_of(storage: Inputs, grades: pa.Table) -> dict[date, datetime]:
    """The prediction time of each date of live ``grades``: the earliest ``as_of`` of that date's batches, so no
    offer posted after any of its predictions is chosen (a ``line_update`` row may be denied the moved line it
    was made for: the conservative side).

    Raises:
        InputError: the store holds no batch for a graded date (the ledger lives elsewhere, as on GCP).
    """
    days = sorted(set(grades.column("game_date").to_pylist()))
    found: dict[date, datetime] = dict(
        storage.fetchall(
            """SELECT p.game_date, min(b.as_of) FROM player_prop_predictions p
               JOIN prediction_batches b USING (batch_id)
               WHERE list_contains(CAST($days AS DATE[]), p.game_date) GROUP BY p.game_date""",
            {"days": days},
        )
    )
    missing = [d for d in days if d not in found]
    if missing:
        raise InputError(
            f"no batch of {missing[0]} in this database: grading at the offers needs each batch's prediction "
            "time (the embedded backend keeps them)"
        )
    return found


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.cast(table[name], pa.float64()), np.nan), dtype=np.float64)


def _texts(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table[name].to_pylist(), dtype=object)


def _profit(over: np.ndarray, line: np.ndarray, price: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Profit per unit staked: ``decimal − 1`` on a win, −1 on a loss, 0 on a push (integer line hit)."""
    win = np.where(over, actual > line, actual < line)
    return np.where(actual == line, 0.0, np.where(win, decimal_odds(price) - 1.0, -1.0))


def _scope_rows(grades: pa.Table, scope: Scope) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The rows of ``scope`` that settled with a consensus price on their side, their side (True: over) and the
    system's P(over | settled) at the consensus book's line."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    actual = _floats(grades, "actual_value")
    line = _floats(grades, "line_value")
    void = np.asarray(pc.fill_null(pc.is_valid(grades["void_reason"]), False), dtype=bool)
    if scope == "bets":
        rec = _texts(grades, "recommendation")
        keep = np.isin(rec, ["OVER", "UNDER"])
        over = rec == "OVER"
        p_win = _floats(grades, "p_win")
        p_over = np.where(over, p_win, 1.0 - p_win)
    else:
        pred = _floats(grades, "predicted_value")
        keep = np.isfinite(pred) & np.isfinite(line) & (pred != line)
        over = pred > line
        p_over = _floats(grades, "p_over_raw")
    price = np.where(over, _floats(grades, "over_price"), _floats(grades, "under_price"))
    keep &= ~void & np.isfinite(actual) & np.isfinite(line) & np.isfinite(price)
    index = np.flatnonzero(keep)
    return grades.take(pa.array(index, pa.int64())), over[index], p_over[index]


def _day_offers(storage: Inputs, rows: pa.Table, as_of: Callable[[date], datetime | None]) -> pa.Table | None:
    """Every offer of the rows' player-markets posted by each date's prediction time (one query per date)."""
    per_day = (
        rows.group_by("game_date")
        .aggregate([("player_lookup", "distinct"), ("market", "distinct")])
        .sort_by("game_date")
        .to_pylist()
    )
    tables = []
    for day in per_day:
        table = date_offers(
            storage,
            day["game_date"],
            as_of=as_of(day["game_date"]),
            players=sorted(day["player_lookup_distinct"]),
            markets=sorted(day["market_distinct"]),
        )
        if table.num_rows:
            tables.append(table)
    return pa.concat_tables(tables) if tables else None


def _key(table: pa.Table) -> pa.Array:
    columns = [pc.cast(table[k], pa.string()) for k in ("game_date", "player_lookup", "market")]
    return pc.binary_join_element_wise(*columns, "\x1f")


def _pairs(group: np.ndarray, offer_group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (bet, offer) of the same player-market: parallel index arrays, bets in order (no Python loop)."""
    order = np.argsort(offer_group, kind="stable")
    counts = np.bincount(offer_group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    per_bet = np.where(group >= 0, counts[np.maximum(group, 0)], 0)
    bet = np.repeat(np.arange(group.shape[0]), per_bet)
    within = np.arange(bet.shape[0]) - np.repeat(np.cumsum(per_bet) - per_bet, per_bet)
    return bet, order[starts[np.maximum(group, 0)][bet] + within]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(special.logit(np.clip(p, _P_CLIP, 1.0 - _P_CLIP)), dtype=np.float64)


def run_offers(
    storage: Inputs,
    grades: pa.Table,
    *,
    books: Sequence[str] = (),
    max_price_gap: float | None = PRICE_GUARD,
    as_of: Callable[[date], datetime | None] | Mapping[date, datetime | None] | None = None,
) -> SlatePricing | None:
    """Every offer of the lined rows' player-markets of ``grades``, posted by each date's prediction time,
    priced in one :func:`~nbaprops.pricing.price_slate` call (None without an offer); what
    :func:`grade_at_offers` chooses from, computed once for every scope and rule.

    Args:
        books: the books the user can bet at (empty: all); the others still inform the fair price.
        max_price_gap: the price guard (None: off).
        as_of: the prediction time of each game date (a function or a mapping; default: the backtest's,
            00:00 UTC after the date). Offers posted later never count.
    """
    when: Callable[[date], datetime | None]
    if as_of is None:
        when = backtest_as_of
    elif isinstance(as_of, Mapping):
        when = as_of.__getitem__
    else:
        when = as_of
    lined = grades.filter(pc.is_valid(grades["line_value"]))
    offers = _day_offers(storage, lined, when) if lined.num_rows else None
    if offers is None:
        return None
    present = [str(b) for b in pc.unique(offers["bookmaker"]).to_pylist()]
    return price_slate(
        offers,
        max_gap=dict(BOOK_GAP),
        excluded_books=excluded_books(present, books),
        max_price_gap=max_price_gap,
    )


def grade_at_offers(
    storage: Inputs,
    grades: pa.Table,
    *,
    rule: Rule = "price",
    scope: Scope = "bets",
    books: Sequence[str] = (),
    max_price_gap: float | None = PRICE_GUARD,
    as_of: Callable[[date], datetime | None] | Mapping[date, datetime | None] | None = None,
    priced: SlatePricing | None = None,
) -> pa.Table:
    """Grade each bet of ``grades`` (``prediction_grades`` rows) at the offer ``rule`` chooses (module
    docstring); columns :data:`OFFER_GRADE_COLUMNS`.

    Args:
        rule: ``price`` (best price at a line at least as good) or ``ev`` (best EV under the system's
            probability moved along the fair distribution).
        scope: ``bets`` (the recommended bets) or ``edge`` (every lined row on its edge's side).
        books, max_price_gap, as_of: see :func:`run_offers`.
        priced: :func:`run_offers` of these grades, already computed (then ``books``, ``max_price_gap`` and
            ``as_of`` are those it was computed with).
    """
    if rule not in RULES:
        raise InputError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    if priced is None:
        priced = run_offers(storage, grades, books=books, max_price_gap=max_price_gap, as_of=as_of)
    rows, over, p_over = _scope_rows(grades, scope)
    n = rows.num_rows
    actual = _floats(rows, "actual_value")
    line0 = _floats(rows, "line_value")
    ref_price = np.where(over, _floats(rows, "over_price"), _floats(rows, "under_price"))
    chosen = np.full(n, -1, dtype=np.int64)
    group = np.full(n, -1, dtype=np.int64)
    fair_ref = np.full(n, np.nan)
    if priced is not None and n:
        board_index = pc.index_in(_key(rows), value_set=_key(priced.board))
        group = np.asarray(pc.fill_null(board_index, -1), dtype=np.int64)
        grouped = group >= 0
        dist = priced.consensus.distribution.at(np.maximum(group, 0))
        r_over, r_under, _ = line_probabilities(dist.mean, dist.dispersion, line0)
        fair_ref = np.where(grouped, np.where(over, r_over, r_under) / (r_over + r_under), np.nan)
        chosen = _choose(priced, rule, group, over, line0, p_over, _texts(rows, "sportsbook"))
    has = chosen >= 0
    pick = np.maximum(chosen, 0)
    c_line = c_price = c_over_round = fair_win = np.full(n, np.nan)
    c_book: list[str | None] = [None] * n
    if priced is not None:
        table = priced.offers
        o_over, o_under = _floats(table, "over_price"), _floats(table, "under_price")
        c_line = np.where(has, _floats(table, "line")[pick], np.nan)
        c_price = np.where(has, np.where(over, o_over[pick], o_under[pick]), np.nan)
        c_over_round = np.where(has, overround(o_over[pick], o_under[pick]), np.nan)
        p_o, p_u = _floats(table, "p_over")[pick], _floats(table, "p_under")[pick]
        fair_win = np.where(has, np.where(over, p_o, p_u) / (p_o + p_u), np.nan)
        o_books = _texts(table, "bookmaker")
        c_book = [str(o_books[i]) if h else None for i, h in zip(pick.tolist(), has.tolist(), strict=True)]
    out: dict[str, Any] = {
        "prediction_id": rows["prediction_id"],
        "system_id": rows["system_id"],
        "market": rows["market"],
        "game_date": rows["game_date"],
        "player_lookup": rows["player_lookup"],
        "side": pa.array(np.where(over, "over", "under").tolist(), pa.string()),
        "actual_value": actual,
        "consensus_book": rows["sportsbook"],
        "consensus_line": line0,
        "consensus_price": ref_price,
        "consensus_overround": overround(_floats(rows, "over_price"), _floats(rows, "under_price")),
        "consensus_margin": implied_probability(ref_price) - fair_ref,
        "consensus_profit": _profit(over, line0, ref_price, actual),
        "book": pa.array(c_book, pa.string()),
        "line": c_line,
        "price": c_price,
        "overround": c_over_round,
        "margin": implied_probability(c_price) - fair_win,
        "fair_p_win": fair_win,
        "profit": np.where(has, _profit(over, c_line, c_price, actual), np.nan),
    }
    return pa.table(
        {k: (pa.array(v, from_pandas=True) if isinstance(v, np.ndarray) else v) for k, v in out.items()}
    )


def _choose(
    priced: SlatePricing,
    rule: Rule,
    group: np.ndarray,
    over: np.ndarray,
    line0: np.ndarray,
    p_over: np.ndarray,
    consensus_book: np.ndarray,
) -> np.ndarray:
    """Index into ``priced.offers`` of the offer each bet takes (−1: none eligible), every bet at once."""
    table = priced.offers
    bet, offer = _pairs(group, np.asarray(table["group"], dtype=np.int64), priced.board.num_rows)
    chosen = np.full(group.shape[0], -1, dtype=np.int64)
    if not bet.size:
        return chosen
    side_over = over[bet]
    at = _floats(table, "line")[offer]
    price = np.where(side_over, _floats(table, "over_price")[offer], _floats(table, "under_price")[offer])
    ok = np.asarray(table["eligible"], dtype=bool)[offer] & np.isfinite(price)
    # Better line for the side: lower for an over, higher for an under.
    goodness = np.where(side_over, -at, at)
    if rule == "price":
        ok &= goodness >= np.where(side_over, -line0[bet], line0[bet])
        score = decimal_odds(price)
    else:
        dist = priced.consensus.distribution.at(group[bet])
        f_over, f_under, f_push = line_probabilities(dist.mean, dist.dispersion, at)
        r_over, r_under, _ = line_probabilities(dist.mean, dist.dispersion, line0[bet])
        shift = _logit(p_over[bet]) - _logit(r_over / (r_over + r_under))
        p_cond = special.expit(_logit(f_over / (f_over + f_under)) + shift)
        p_side = np.where(side_over, p_cond, 1.0 - p_cond)
        score = (1.0 - f_push) * (p_side * (decimal_odds(price) - 1.0) - (1.0 - p_side))
    books_of = _texts(table, "bookmaker")[offer]
    is_ref = (books_of == consensus_book[bet]) & (at == line0[bet])
    score = np.where(ok & np.isfinite(score), score, -np.inf)
    name_rank = np.unique(books_of, return_inverse=True)[1]
    order = np.lexsort((name_rank, ~is_ref, -goodness, -score, bet))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = bet[order][1:] != bet[order][:-1]
    top = order[first]
    top = top[np.isfinite(score[top])]
    chosen[bet[top]] = offer[top]
    return chosen


def _interval(
    values: Sequence[np.ndarray], dates: np.ndarray, reps: int, seed: int
) -> list[list[float | None]]:
    """95% percentile-bootstrap intervals of the ROI of each profit array, resampling game dates with
    :func:`scipy.stats.bootstrap` (a date's bets together); every array sees the same resamples, so the interval
    of a difference of two arrays is a paired one. Fewer than two dates: no interval."""
    labels, index = np.unique(dates, return_inverse=True)
    if labels.size < 2:
        return [[None, None] for _ in values]
    counts = np.bincount(index, minlength=labels.size).astype(np.float64)
    out: list[list[float | None]] = []
    for profit in values:
        sums = np.bincount(index, weights=profit, minlength=labels.size)

        def roi(i: np.ndarray, axis: int = -1, sums: np.ndarray = sums) -> np.ndarray:
            return np.asarray(sums[i].sum(axis=axis) / counts[i].sum(axis=axis))

        # random_state, not rng: SciPy 1.11-1.14 (which pyproject allows) have no rng keyword.
        res = stats.bootstrap(
            (np.arange(labels.size),),
            roi,
            vectorized=True,
            n_resamples=reps,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        low, high = res.confidence_interval
        out.append([float(low), float(high)])
    return out


def _hit(profit: np.ndarray) -> float | None:
    decided = profit != 0
    return float(np.mean(profit[decided] > 0)) if decided.any() else None


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def offer_metrics(table: pa.Table, *, reps: int = 2000, seed: int = 20) -> list[dict[str, Any]]:
    """Per system and market of a :func:`grade_at_offers` table: the consensus book and the chosen offer side
    by side, on the same bets (those with an eligible offer).

    Keys: system_id, market, n (bets that settled), n_without_offer, n_moved (chosen offer not the consensus
    book's own), roi_consensus / roi_offer with ``_ci`` (95%), roi_gain_ci (the interval of their difference),
    hit_consensus / hit_offer (pushes left out), overround_consensus / overround_offer (average two-way margin
    of the offers taken), margin_consensus / margin_offer (average margin paid on the side taken), ece_fair (the fair P(side wins) at the offer's line against the outcome, pushes left out),
    mean_fair_p, by_book ({book: {n, hit_rate, roi}}).
    """
    systems = _texts(table, "system_id")
    markets = _texts(table, "market")
    profit = _floats(table, "profit")
    ref = _floats(table, "consensus_profit")
    dates = np.asarray(table["game_date"].to_pylist(), dtype="datetime64[D]")
    books = _texts(table, "book")
    rows: list[dict[str, Any]] = []
    for sid, market in sorted({(str(s), str(m)) for s, m in zip(systems, markets, strict=True)}):
        mine = (systems == sid) & (markets == market)
        has = mine & np.isfinite(profit)
        p, r, d = profit[has], ref[has], dates[has]
        moved = has & (
            (books != _texts(table, "consensus_book"))
            | (_floats(table, "line") != _floats(table, "consensus_line"))
        )
        ci_offer, ci_ref, ci_gain = _interval([p, r, p - r], d, reps, seed)
        fair = _floats(table, "fair_p_win")[has]
        decided = p != 0
        by_book: dict[str, dict[str, Any]] = {}
        for book in sorted({str(b) for b in books[has]}):
            at = books[has] == book
            by_book[book] = {"n": int(at.sum()), "hit_rate": _hit(p[at]), "roi": float(p[at].mean())}
        rows.append(
            {
                "system_id": sid,
                "market": market,
                "n": int(has.sum()),
                "n_without_offer": int((mine & ~np.isfinite(profit)).sum()),
                "n_moved": int(moved.sum()),
                "roi_consensus": float(r.mean()) if r.size else None,
                "roi_consensus_ci": ci_ref,
                "roi_offer": float(p.mean()) if p.size else None,
                "roi_offer_ci": ci_offer,
                "roi_gain_ci": ci_gain,
                "hit_consensus": _hit(r),
                "hit_offer": _hit(p),
                "overround_consensus": _mean(_floats(table, "consensus_overround")[has]),
                "overround_offer": _mean(_floats(table, "overround")[has]),
                "margin_consensus": _mean(_floats(table, "consensus_margin")[has]),
                "margin_offer": _mean(_floats(table, "margin")[has]),
                "ece_fair": ece(fair[decided], (p[decided] > 0).astype(np.float64)),
                "mean_fair_p": _mean(fair),
                "by_book": by_book,
            }
        )
    return rows


def offers_section(
    storage: Inputs,
    grades: pa.Table,
    *,
    books: Sequence[str] = (),
    max_price_gap: float | None = PRICE_GUARD,
    as_of: Callable[[date], datetime | None] | Mapping[date, datetime | None] | None = None,
    reps: int = 2000,
) -> dict[str, Any]:
    """The ``offers`` section of a graded run: :func:`offer_metrics` of every scope and rule (module
    docstring), each row tagged with its ``scope`` and ``rule``."""
    rows: list[dict[str, Any]] = []
    priced = run_offers(storage, grades, books=books, max_price_gap=max_price_gap, as_of=as_of)
    for scope in SCOPES:
        for rule in RULES:
            table = grade_at_offers(storage, grades, rule=rule, scope=scope, priced=priced)
            rows += [{"scope": scope, "rule": rule, **m} for m in offer_metrics(table, reps=reps)]
    return {
        "price_guard": max_price_gap,
        "books": list(books),
        "rules": list(RULES),
        "scopes": list(SCOPES),
        "metrics": rows,
    }


__all__ = [
    "OFFER_GRADE_COLUMNS",
    "live_as_of",
    "RULES",
    "SCOPES",
    "backtest_as_of",
    "grade_at_offers",
    "offer_metrics",
    "offers_section",
    "run_offers",
]
