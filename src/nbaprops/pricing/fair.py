"""Fair consensus: every book's de-vigged offer for a player-market → one predictive count distribution.

Books post different lines, so their fair probabilities are not averaged: the distribution's mean is fitted
so that its P(over L_b | settled) matches each book's fair P(over) at that book's own line ``L_b``, in logit
space, weighted by how sharp each book has been:

    sum_b w_b · (logit P_mu(over L_b) − logit p_b) = 0

The NB2 family with a dispersion that does not grow faster than 1/mu is stochastically increasing in its
mean, so the left side increases in ``mu`` and one vectorized bisection (in log ``mu``) solves every
player-market of a slate at once.

Two things are learned, both walk-forward (only on rows dated strictly before the date they price, see
:func:`before`):

- the **spread** of each market (:func:`learn_dispersion`, a :class:`Dispersion`): the NB2 dispersion as a
  function of the mean, ``exp(intercept + slope · log mean)`` (on real PRA the variance grows about linearly
  with the mean, not quadratically: slope ≈ −1), and an optional ``shift`` of the log mean (the market's
  over bias: PRA outcomes came in 0.8 below the books' implied means), all three minimising the log loss of
  the past player-markets at their consensus line and at ±1, ±2, ±3 from it — a proper score of the
  probabilities the board sells;
- the **book weights** (:func:`learn_book_weights`): a softmax of each book's past log loss at its own line
  (shrunk towards the median book by its number of graded offers).

The **consensus line** is the median of the books' main lines (the rule of ``nbaprops.ingest.select_lines``);
the **consensus book** is the book whose main line is closest to it (ties: smaller overround, then the book
listed first). An offer whose line sits more than ``max_gap`` from the consensus line is an **outlier**: it
is kept, reported and neither fitted nor bet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from nbaprops.pricing.devig import Method, fair_over, overround
from nbaprops.pricing.distribution import LineDistribution, line_probabilities, over_given_settled

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Dispersion:
    """A market's learned spread: NB2 dispersion ``exp(intercept + slope · log mean)`` and a log-mean shift.

    ``shift`` moves the fitted market mean to ``mean · exp(shift)`` (0: the market's own centre).
    """

    intercept: float = float(np.log(2.5))
    slope: float = -1.0
    shift: float = 0.0

    def at(self, mean: ArrayLike) -> FloatArray:
        """The NB2 dispersion at ``mean``."""
        return np.asarray(np.exp(self.intercept + self.slope * np.log(mean)), dtype=np.float64)


DEFAULT_DISPERSION = Dispersion()
"""Used before any outcome is known: dispersion 2.5 / mean (variance 3.5 × mean, about what PRA shows), no
shift. Also where :func:`learn_dispersion` starts: a warm start from an early fit on few rows can sit on a
bound and stay there."""
_MEAN_RANGE = (0.05, 250.0)
_HALVINGS = 32  # log-mean interval of 8.5 halved 32 times: 2e-9, far below a line's tick
_P_CLIP = 1e-6
_FALSI_STEPS = 40
_BRACKET_WIDTH = 1e-11
_MARGIN = 1e-10  # midpoints this close to a bracket are evaluated: far wider than the sum's rounding


@dataclass(frozen=True)
class Offers:
    """A slate's offers as parallel arrays (one entry per (book, line) of a player-market).

    ``group`` numbers the player-markets ``0 … n_groups − 1``; ``book`` indexes ``books``. ``is_main`` marks
    each book's main line (alternate lines are priced, not used for the consensus line).
    """

    group: IntArray
    book: IntArray
    line: FloatArray
    over_price: FloatArray
    under_price: FloatArray
    is_main: BoolArray
    books: tuple[str, ...]
    n_groups: int

    def __len__(self) -> int:
        return int(self.group.shape[0])


@dataclass(frozen=True)
class Consensus:
    """The fair consensus of every player-market of a slate (arrays indexed by group).

    Attributes:
        line: consensus line (median of the books' main lines).
        p_over: fair P(over) at the consensus line (unconditional; ``p_push`` is the rest with ``p_under``).
        p_under, p_push: the other two outcomes there.
        n_books: distinct books with a usable offer.
        spread: max − min of the books' main lines.
        distribution: the fitted NB2 (``mean``, ``dispersion``) per group, shift applied.
        market_mean: the mean the books imply (before the shift): what :func:`learn_dispersion` learns from.
        consensus_offer: index (into the offers) of the consensus book's main offer.
        fair: each offer's de-vigged P(over | settled) (NaN where a price is missing).
        outlier: each offer farther than ``max_gap`` from its consensus line.
    """

    line: FloatArray
    p_over: FloatArray
    p_under: FloatArray
    p_push: FloatArray
    n_books: IntArray
    spread: FloatArray
    distribution: LineDistribution
    market_mean: FloatArray
    consensus_offer: IntArray
    fair: FloatArray
    outlier: BoolArray


def before(dates: ArrayLike, day: date | np.datetime64 | str) -> BoolArray:
    """The walk-forward mask: rows dated strictly before ``day`` (what may be learned to price ``day``)."""
    stamps = np.asarray(dates, dtype="datetime64[D]")
    cutoff = np.asarray(day, dtype="datetime64[D]")
    return np.asarray(stamps < cutoff, dtype=np.bool_)


def walk_forward_days(dates: ArrayLike) -> Iterator[tuple[np.datetime64, BoolArray, BoolArray]]:
    """Each distinct date in order with its ``(train, test)`` masks: train = rows strictly before it (what may
    be learned to price it: :func:`before`), test = its own rows. Like ``TimeSeriesSplit`` with one fold per
    date and an expanding window."""
    stamps = np.asarray(dates, dtype="datetime64[D]")
    for day in np.unique(stamps):
        yield day, before(stamps, day), stamps == day


def _logit(p: FloatArray) -> FloatArray:
    return np.asarray(special.logit(np.clip(p, _P_CLIP, 1.0 - _P_CLIP)), dtype=np.float64)


def group_median(group: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    """Median of ``values`` within each group (NaN for an empty group), without a Python loop."""
    order = np.lexsort((values, group))
    sorted_group = group[order]
    sorted_values = values[order]
    counts = np.bincount(sorted_group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    has = counts > 0
    out = np.full(n_groups, np.nan)
    out[has] = 0.5 * (sorted_values[lo[has]] + sorted_values[hi[has]])
    return out


def _first_per_group(group: IntArray, keys: Sequence[FloatArray], n_groups: int) -> IntArray:
    """Index of the row first in lexicographic ``keys`` order within each group (−1 for an empty group)."""
    order = np.lexsort((*reversed(keys), group))
    first = np.full(n_groups, -1, dtype=np.int64)
    sorted_group = group[order]
    is_first = np.ones(order.shape[0], dtype=bool)
    is_first[1:] = sorted_group[1:] != sorted_group[:-1]
    first[sorted_group[is_first]] = order[is_first]
    return first


def _excess(
    group: IntArray,
    line: FloatArray,
    target: FloatArray,
    w: FloatArray,
    intercept: FloatArray,
    slope: FloatArray,
    log_mean: FloatArray,
    n_groups: int,
) -> FloatArray:
    """Each group's ``sum_b w_b · (logit P_mu(over L_b | settled) − logit p_b)`` at its offers' ``log_mean``.

    Element by element and summed in offer order within each group: evaluated on the offers of some groups
    only, a group's sum is the very number it is among all of them (what :func:`fit_means` relies on)."""
    model = _logit(over_given_settled(np.exp(log_mean), np.exp(intercept + slope * log_mean), line))
    return np.asarray(np.bincount(group, weights=w * (model - target), minlength=n_groups), dtype=np.float64)


def _bracket(
    excess: Callable[[FloatArray, BoolArray], FloatArray], lo: FloatArray, hi: FloatArray, fitted: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Per group, ``(a, b)`` with ``excess(a) <= 0 < excess(b)`` as computed (−inf / +inf when the sign does not
    change over ``[lo, hi]``; (−inf, +inf) when the sum is not a number), narrowed by Illinois' regula falsi
    to a width of about ``_BRACKET_WIDTH``: a dozen evaluations where bisection takes ``_HALVINGS``."""
    n = lo.shape[0]
    f_lo, f_hi = excess(lo, fitted), excess(hi, fitted)
    a, b = np.full(n, -np.inf), np.full(n, np.inf)
    unknown = ~(np.isfinite(f_lo) & np.isfinite(f_hi))
    positive = ~unknown & (f_lo > 0.0)  # above the target over the whole range
    b[positive] = lo[positive]
    negative = ~unknown & ~positive & ~(f_hi > 0.0)  # at or below it over the whole range
    a[negative] = hi[negative]
    root = fitted & ~unknown & ~positive & ~negative
    a[root], b[root] = lo[root], hi[root]
    fa, fb = np.where(root, f_lo, 0.0), np.where(root, f_hi, 1.0)
    moved = np.zeros(n, dtype=np.int8)  # the end moved last (1: b, −1: a): Illinois halves the other's value
    for _ in range(_FALSI_STEPS):
        active = root & (b - a > _BRACKET_WIDTH)
        if not active.any():
            break
        with np.errstate(invalid="ignore", divide="ignore"):  # the groups not active hold infinite ends
            x = np.where(active, b - fb * (b - a) / (fb - fa), 0.0)
            x = np.where(active & (x > a) & (x < b), x, np.where(active, 0.5 * (a + b), 0.0))
        fx = excess(x, active)
        good = active & np.isfinite(fx)
        up, down = good & (fx > 0.0), good & ~(fx > 0.0)
        fa = np.where(up & (moved == 1), 0.5 * fa, fa)
        fb = np.where(down & (moved == -1), 0.5 * fb, fb)
        b, fb = np.where(up, x, b), np.where(up, fx, fb)
        a, fa = np.where(down, x, a), np.where(down, fx, fa)
        moved = np.where(up, 1, np.where(down, -1, moved)).astype(np.int8)
        lost = active & ~good  # not a number inside the range: every midpoint of the group is evaluated
        a[lost], b[lost] = -np.inf, np.inf
        root &= ~lost
    return a, b


def fit_means(
    group: IntArray,
    line: FloatArray,
    fair: FloatArray,
    weight: FloatArray,
    intercept: FloatArray,
    slope: FloatArray,
    n_groups: int,
) -> FloatArray:
    """The mean of each group's NB2 that makes its P(over | settled) meet the books' fair probabilities.

    The answer is the bisection's: ``_HALVINGS`` halvings of the log-mean range, each keeping the half where the
    group's excess (:func:`_excess`) changes sign. Where the NB2 is stochastically increasing in its mean (every
    dispersion slope in [−1, 0]: a larger mean makes both of SciPy's ``n`` and ``1 − p`` no smaller), the excess
    is monotone, so a midpoint left of a bracket ``a <= root < b`` whose ends were evaluated (:func:`_bracket`)
    has a negative excess and one right of it a positive one: only the midpoints within ``_MARGIN`` of the
    bracket are evaluated, and the halvings are the same numbers, bit for bit, at about a third of the
    evaluations. Other slopes evaluate every midpoint.

    Args:
        group: group of each offer.
        line, fair, weight: each offer's line, fair P(over | settled) and weight (0 drops it).
        intercept, slope: the :class:`Dispersion` of each offer's group (per offer).
        n_groups: number of groups; a group without a weighted offer gets NaN.
    """
    usable = (weight > 0) & np.isfinite(fair)
    target = _logit(np.where(usable, fair, 0.5))
    w = np.where(usable, weight, 0.0)
    has = np.bincount(group, weights=w, minlength=n_groups) > 0

    def excess(log_mean: FloatArray, groups: BoolArray) -> FloatArray:
        """The excess of ``groups`` at their ``log_mean`` (NaN for the other groups)."""
        at = groups[group]
        out = np.full(n_groups, np.nan)
        if at.all():
            out[groups] = _excess(group, line, target, w, intercept, slope, log_mean[group], n_groups)[groups]
        elif at.any():
            found = _excess(
                group[at],
                line[at],
                target[at],
                w[at],
                intercept[at],
                slope[at],
                log_mean[group[at]],
                n_groups,
            )
            out[groups] = found[groups]
        return out

    lo = np.full(n_groups, np.log(_MEAN_RANGE[0]))
    hi = np.full(n_groups, np.log(_MEAN_RANGE[1]))
    monotone = bool(np.all((slope >= -1.0) & (slope <= 0.0)))
    a, b = (
        _bracket(excess, lo, hi, has) if monotone else (np.full(n_groups, -np.inf), np.full(n_groups, np.inf))
    )
    for _ in range(_HALVINGS):
        mid = 0.5 * (lo + hi)
        above = mid > b + _MARGIN
        near = has & ~above & ~(mid < a - _MARGIN)
        if near.any():
            above |= near & (excess(mid, near) > 0.0)
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    mean = np.exp(0.5 * (lo + hi))
    return np.where(has, mean, np.nan)


def fit_consensus(
    offers: Offers,
    *,
    dispersion: Dispersion | Sequence[Dispersion] = DEFAULT_DISPERSION,
    book_weight: Mapping[str, float] | None = None,
    method: Method = "multiplicative",
    max_gap: float | FloatArray = np.inf,
) -> Consensus:
    """Fair consensus of every player-market of ``offers`` (module docstring for each rule).

    Args:
        offers: the slate's offers (quarantined lines and excluded-from-consensus books left out by the caller).
        dispersion: the market's :class:`Dispersion` (one, or one per group), learned on earlier dates.
        book_weight: weight of each book by name (earlier dates' :func:`learn_book_weights`); a book not in
            it, or no mapping at all, weighs the average of the known books (1.0 when none is known).
        method: de-vig method for each offer's fair probability.
        max_gap: an offer farther than this from its consensus line is an outlier (e.g.
            ``nbaprops.markets.BOOK_GAP[market]``); one number or one per offer.
    """
    n = offers.n_groups
    group = offers.group
    fair = fair_over(offers.over_price, offers.under_price, method)
    priced = np.isfinite(fair)
    main = offers.is_main & priced
    line = group_median(group[main], offers.line[main], n)
    outlier = np.abs(offers.line - line[group]) > max_gap
    usable = priced & ~outlier
    main_usable = main & ~outlier
    # Median and spread again without the outliers: one typo must not move the consensus line.
    line = group_median(group[main_usable], offers.line[main_usable], n)
    lines_main = np.where(main_usable, offers.line, np.nan)
    spread = np.full(n, np.nan)
    if main_usable.any():
        hi = np.full(n, -np.inf)
        lo = np.full(n, np.inf)
        np.maximum.at(hi, group[main_usable], lines_main[main_usable])
        np.minimum.at(lo, group[main_usable], lines_main[main_usable])
        spread = np.where(np.isfinite(hi), hi - lo, np.nan)
    weights = _offer_weights(offers, book_weight)
    models = [dispersion] * n if isinstance(dispersion, Dispersion) else list(dispersion)
    intercept = np.array([d.intercept for d in models], dtype=np.float64)
    slope = np.array([d.slope for d in models], dtype=np.float64)
    shift = np.array([d.shift for d in models], dtype=np.float64)
    market_mean = fit_means(
        group, offers.line, fair, np.where(usable, weights, 0.0), intercept[group], slope[group], n
    )
    mean = market_mean * np.exp(shift)
    distribution = LineDistribution(mean, np.exp(intercept + slope * np.log(mean)))
    p_over, p_under, p_push = distribution.probabilities(line)
    pair = (
        np.unique(np.stack([group[usable], offers.book[usable]]), axis=1)
        if usable.any()
        else np.empty((2, 0))
    )
    n_books = np.bincount(pair[0].astype(np.int64), minlength=n).astype(np.int64)
    distance = np.where(main_usable, np.abs(offers.line - line[group]), np.inf)
    margin = np.nan_to_num(overround(offers.over_price, offers.under_price), nan=np.inf)
    consensus_offer = _first_per_group(group, [distance, margin, offers.book.astype(np.float64)], n)
    consensus_offer = np.where(main_usable[np.maximum(consensus_offer, 0)], consensus_offer, -1)
    return Consensus(
        line=line,
        p_over=p_over,
        p_under=p_under,
        p_push=p_push,
        n_books=n_books,
        spread=spread,
        distribution=distribution,
        market_mean=market_mean,
        consensus_offer=consensus_offer,
        fair=fair,
        outlier=outlier,
    )


def _offer_weights(offers: Offers, book_weight: Mapping[str, float] | None) -> FloatArray:
    known = [w for w in (book_weight or {}).values() if np.isfinite(w)]
    default = float(np.mean(known)) if known else 1.0
    per_book = np.array([(book_weight or {}).get(b, default) for b in offers.books], dtype=np.float64)
    return per_book[offers.book] if per_book.size else np.ones(len(offers))


def learn_dispersion(
    market_mean: ArrayLike,
    outcome: ArrayLike,
    line: ArrayLike,
    *,
    offsets: Sequence[float] = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0),
    shift: bool = True,
    start: Dispersion = DEFAULT_DISPERSION,
    min_rows: int = 500,
) -> Dispersion:
    """The :class:`Dispersion` that best prices past player-markets at and around their consensus lines.

    The objective is the mean binary log loss of P(over L | settled) at ``L = line + k`` for every offset
    ``k``: a proper score of exactly the probabilities the board sells. (The full count likelihood was tried
    first: it fits the mean outcome, which early exits and blowouts pull below the middle of the distribution,
    and priced the consensus line worse.)

    Args:
        market_mean: the books' implied mean of each past player-market (``Consensus.market_mean``).
        outcome: what each settled at (NaN: voided, ignored).
        line: each one's consensus line.
        offsets: the lines around the consensus line that are scored.
        shift: also learn the log-mean shift (else it stays 0: the market's own centre).
        start: where the search starts, and the answer while there are too few rows.
        min_rows: with fewer usable rows, ``start`` is returned unchanged.
    """
    mu = np.asarray(market_mean, dtype=np.float64)
    counts = np.asarray(outcome, dtype=np.float64)
    centre = np.asarray(line, dtype=np.float64)
    keep = np.isfinite(mu) & np.isfinite(counts) & np.isfinite(centre) & (mu > 0)
    if int(keep.sum()) < min_rows:
        return start
    at = (centre[keep][:, None] + np.asarray(offsets, dtype=np.float64)[None, :]).ravel()
    log_mu = np.repeat(np.log(mu[keep]), len(offsets))
    went_over = settle(np.repeat(counts[keep], len(offsets)), at)
    scored = np.isfinite(went_over)
    at, log_mu, went_over = at[scored], log_mu[scored], went_over[scored]

    def loss(theta: FloatArray) -> float:
        log_mean = log_mu + (theta[2] if shift else 0.0)
        p = over_given_settled(np.exp(log_mean), np.exp(theta[0] + theta[1] * log_mean), at)
        p = np.clip(p, _P_CLIP, 1.0 - _P_CLIP)
        return float(-np.mean(went_over * np.log(p) + (1.0 - went_over) * np.log1p(-p)))

    found = optimize.minimize(
        loss,
        np.array([start.intercept, start.slope, start.shift if shift else 0.0]),
        method="L-BFGS-B",
        bounds=[(-12.0, 5.0), (-3.0, 1.0), (-0.5, 0.5)],
    )
    return Dispersion(float(found.x[0]), float(found.x[1]), float(found.x[2]) if shift else 0.0)


def learn_book_weights(
    books: Sequence[str] | NDArray[np.str_] | NDArray[np.object_],
    fair: ArrayLike,
    went_over: ArrayLike,
    *,
    prior_offers: float = 200.0,
    temperature: float = 0.01,
) -> dict[str, float]:
    """Each book's weight from its past fair probabilities at its own lines and how they settled.

    A book's log loss is shrunk towards the median book's as if ``prior_offers`` offers of the median book
    were added (a book seen 20 times is mostly the median book), then ``weight = exp(-(loss - best) /
    temperature)``: the sharpest book weighs 1, a book 0.01 nat per offer worse weighs 1/e. Rows with a NaN
    probability or outcome (pushes, players who did not play) are ignored.

    Args:
        books: book of each graded offer.
        fair: fair P(over | settled) of each offer.
        went_over: 1.0 if the over won, 0.0 if the under won, NaN if voided or pushed.
    """
    names = np.asarray(books).astype(str)
    p = np.clip(np.asarray(fair, dtype=np.float64), _P_CLIP, 1.0 - _P_CLIP)
    y = np.asarray(went_over, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(y)
    names, p, y = names[keep], p[keep], y[keep]
    if names.size == 0:
        return {}
    loss = -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
    labels, index = np.unique(names, return_inverse=True)
    count = np.bincount(index, minlength=labels.size).astype(np.float64)
    book_loss = np.bincount(index, weights=loss, minlength=labels.size) / count
    median = float(np.median(book_loss))
    shrunk = (count * book_loss + prior_offers * median) / (count + prior_offers)
    weight = np.exp(-(shrunk - shrunk.min()) / temperature)
    return {str(b): float(w) for b, w in zip(labels, weight, strict=True)}


def settle(outcome: ArrayLike, line: ArrayLike) -> FloatArray:
    """1.0 if ``outcome`` went over ``line``, 0.0 if under, NaN on a push or a missing outcome (voided)."""
    value = np.asarray(outcome, dtype=np.float64)
    at = np.asarray(line, dtype=np.float64)
    return np.where(np.isnan(value) | (value == at), np.nan, (value > at).astype(np.float64))


__all__ = [
    "DEFAULT_DISPERSION",
    "Consensus",
    "Dispersion",
    "Offers",
    "before",
    "fit_consensus",
    "fit_means",
    "group_median",
    "learn_book_weights",
    "learn_dispersion",
    "line_probabilities",
    "settle",
    "walk_forward_days",
]
