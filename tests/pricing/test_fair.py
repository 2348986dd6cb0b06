"""The fair consensus: the mean fit, the consensus line and book, outliers, and walk-forward learning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbaprops.pricing import (
    DEFAULT_DISPERSION,
    Dispersion,
    Offers,
    american_odds,
    before,
    fit_consensus,
    learn_book_weights,
    learn_dispersion,
    walk_forward_days,
)
from nbaprops.pricing.distribution import over_given_settled
from nbaprops.pricing.fair import group_median


def offers_of(rows: list[tuple[int, int, float, float, float]], books: tuple[str, ...], n: int) -> Offers:
    group, book, line, over, under = (np.array(col) for col in zip(*rows, strict=True))
    return Offers(
        group=group.astype(np.int64),
        book=book.astype(np.int64),
        line=line.astype(float),
        over_price=over.astype(float),
        under_price=under.astype(float),
        is_main=np.ones(len(rows), dtype=bool),
        books=books,
        n_groups=n,
    )


def no_vig(p_over: float) -> tuple[float, float]:
    return float(american_odds(p_over)), float(american_odds(1 - p_over))


def test_the_mean_fit_recovers_the_mean_that_priced_every_book() -> None:
    model = Dispersion(intercept=float(np.log(2.5)), slope=-1.0)
    truth = 23.7
    lines = [21.5, 22.5, 23.5, 24.0, 25.5]
    rows = []
    for b, at in enumerate(lines):
        p = float(over_given_settled(truth, model.at(truth), at))
        rows.append((0, b, at, *no_vig(p)))
    consensus = fit_consensus(offers_of(rows, tuple("abcde"), 1), dispersion=model)
    assert consensus.market_mean[0] == pytest.approx(truth, rel=1e-6)
    assert consensus.line[0] == 23.5  # the median of the books' main lines
    assert consensus.spread[0] == 4.0
    assert consensus.n_books[0] == 5
    assert consensus.p_over[0] + consensus.p_under[0] + consensus.p_push[0] == pytest.approx(1.0)


def test_an_outlier_line_is_kept_out_of_the_fit_and_the_consensus() -> None:
    rows = [
        (0, 0, 24.5, -110, -110),
        (0, 1, 24.5, -115, -105),
        (0, 2, 24.5, -105, -115),
        (0, 3, 45.5, -110, -110),
    ]
    consensus = fit_consensus(offers_of(rows, ("a", "b", "c", "typo"), 1), max_gap=12.0)
    assert consensus.outlier.tolist() == [False, False, False, True]
    assert consensus.line[0] == 24.5
    assert consensus.spread[0] == 0.0
    assert consensus.n_books[0] == 3
    assert 23.0 < consensus.distribution.mean[0] < 27.0


def test_the_consensus_book_is_nearest_the_median_then_the_smaller_margin() -> None:
    rows = [
        (0, 0, 23.5, -120, -110),
        (0, 1, 24.5, -110, -110),
        (0, 2, 24.5, -105, -105),
        (0, 3, 26.5, -110, -110),
    ]
    consensus = fit_consensus(offers_of(rows, ("a", "b", "c", "d"), 1))
    assert consensus.line[0] == 24.5
    assert consensus.consensus_offer[0] == 2  # c: same line as b, smaller overround


def test_a_book_weight_pulls_the_mean_towards_that_book() -> None:
    rows = [(0, 0, 24.5, *no_vig(0.40)), (0, 1, 24.5, *no_vig(0.60))]
    offers = offers_of(rows, ("sharp", "soft"), 1)
    equal = fit_consensus(offers).p_over[0]
    leaning = fit_consensus(offers, book_weight={"sharp": 1.0, "soft": 0.1}).p_over[0]
    assert equal == pytest.approx(0.5, abs=0.01)
    assert leaning < 0.45


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 60).map(lambda h: h / 2)), min_size=1, max_size=40)
)
def test_group_median_matches_numpy(rows: list[tuple[int, float]]) -> None:
    group = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows])
    medians = group_median(group, values, 6)
    for g in range(6):
        expected = np.median(values[group == g]) if (group == g).any() else np.nan
        np.testing.assert_equal(medians[g], expected)


def test_book_weights_rank_a_sharp_book_over_a_noisy_one() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.3, 0.7, 4000)
    went_over = (rng.uniform(size=truth.size) < truth).astype(float)
    noisy = np.clip(truth + rng.normal(0, 0.2, truth.size), 0.02, 0.98)
    weights = learn_book_weights(
        np.array(["sharp"] * truth.size + ["noisy"] * truth.size),
        np.concatenate([truth, noisy]),
        np.concatenate([went_over, went_over]),
    )
    assert weights["sharp"] == 1.0
    assert weights["noisy"] < 0.1


def test_walk_forward_days_train_only_on_earlier_dates() -> None:
    dates = np.array(
        ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"], dtype="datetime64[D]"
    )
    seen = []
    for day, train, test in walk_forward_days(dates):
        assert np.all(dates[train] < day)
        assert np.all(dates[test] == day)
        assert not np.any(train & test)
        assert train.sum() == (dates < day).sum()
        seen.append(str(day))
    assert seen == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert before(dates, "2024-01-02").tolist() == [False, True, False, False, True]


def test_what_is_learned_for_a_date_ignores_every_row_on_or_after_it() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    dates = np.datetime64("2024-01-01") + rng.integers(0, 60, n).astype("timedelta64[D]")
    mean = rng.uniform(8, 40, n)
    line = np.floor(mean) + 0.5
    outcome = rng.negative_binomial(mean / 2.5, 1 / 3.5).astype(float)  # variance 3.5 × mean
    books = rng.choice(["a", "b", "c"], n)
    fair = rng.uniform(0.3, 0.7, n)
    went_over = (outcome > line).astype(float)
    day = np.datetime64("2024-02-01")
    train = before(dates, day)
    weights = learn_book_weights(books[train], fair[train], went_over[train])
    spread = learn_dispersion(mean[train], outcome[train], line[train])
    # Poison everything dated on or after the day: what was learned for it must not move.
    future = ~train
    outcome[future] = 0.0
    went_over[future] = 1.0 - went_over[future]
    fair[future] = 0.99
    assert learn_book_weights(books[before(dates, day)], fair[train], went_over[train]) == weights
    assert learn_dispersion(mean[train], outcome[train], line[train]) == spread


def test_learn_dispersion_finds_the_variance_of_the_outcomes() -> None:
    rng = np.random.default_rng(3)
    mean = rng.uniform(8, 40, 4000)
    outcome = rng.negative_binomial(mean / 2.5, 1 / 3.5).astype(float)  # dispersion 2.5 / mean
    learned = learn_dispersion(mean, outcome, np.floor(mean) + 0.5)
    assert learned.at(20.0) == pytest.approx(2.5 / 20.0, rel=0.3)
    assert abs(learned.shift) < 0.03
    assert learn_dispersion(mean[:10], outcome[:10], mean[:10]) == DEFAULT_DISPERSION  # too few rows
