"""The NB2 line distribution: probabilities, pushes, SciPy agreement, monotonicity, the ladder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nbaprops.pricing import LineDistribution, ladder, line_probabilities
from nbaprops.pricing.distribution import nb_shape

means = st.floats(0.5, 60.0)
dispersions = st.floats(0.005, 1.0)
lines = st.integers(0, 160).map(lambda h: h / 2)  # every half-point line 0 … 80


@settings(max_examples=300, deadline=None)
@given(mean=means, dispersion=dispersions, line=lines)
def test_over_under_push_are_probabilities_summing_to_one(
    mean: float, dispersion: float, line: float
) -> None:
    over, under, push = (float(x) for x in line_probabilities(mean, dispersion, line))
    for p in (over, under, push):
        assert 0.0 <= p <= 1.0
    assert over + under + push == pytest.approx(1.0, abs=1e-12)
    if line != int(line):
        assert push == 0.0


@settings(max_examples=200, deadline=None)
@given(mean=means, dispersion=dispersions, line=lines)
def test_agrees_with_scipy_nbinom(mean: float, dispersion: float, line: float) -> None:
    size, p = nb_shape(mean, dispersion)
    frozen = stats.nbinom(float(size), float(p))
    over, under, push = (float(x) for x in line_probabilities(mean, dispersion, line))
    assert over == pytest.approx(frozen.sf(np.floor(line)), abs=1e-12)
    assert under == pytest.approx(frozen.cdf(np.ceil(line) - 1), abs=1e-12)
    if line == int(line):
        assert push == pytest.approx(frozen.pmf(line), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(mean=means, dispersion=dispersions)
def test_over_falls_and_under_rises_with_the_line(mean: float, dispersion: float) -> None:
    steps = np.arange(0.0, 80.5, 0.5)
    over, under, _ = line_probabilities(mean, dispersion, steps)
    # Within rounding: the two incomplete-beta tails agree to a few 1e-16.
    assert np.all(np.diff(over) <= 1e-13)
    assert np.all(np.diff(under) >= -1e-13)


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(st.tuples(means, dispersions, lines), min_size=1, max_size=30))
def test_vectorized_equals_scalar(batch: list[tuple[float, float, float]]) -> None:
    mean, dispersion, line = (np.array(col) for col in zip(*batch, strict=True))
    whole = line_probabilities(mean, dispersion, line)
    for i, (m, d, at) in enumerate(batch):
        single = line_probabilities(m, d, at)
        for w, s in zip(whole, single, strict=True):
            np.testing.assert_array_max_ulp(w[i], s, maxulp=4)


def test_ladder_prices_every_half_point_at_fair_odds() -> None:
    distribution = LineDistribution(np.array([24.0, 10.0]), np.array([0.1, 0.2]))
    table = ladder(distribution, 0, 20.0, 28.0)
    assert table.column_names == ["line", "p_over", "p_under", "p_push", "fair_over_odds", "fair_under_odds"]
    assert table["line"].to_pylist() == [20.0 + 0.5 * i for i in range(17)]
    rows = table.to_pylist()
    for row in rows:
        settled_over = row["p_over"] / (row["p_over"] + row["p_under"])
        odds = row["fair_over_odds"]
        implied = -odds / (100 - odds) if odds < 0 else 100 / (100 + odds)
        assert implied == pytest.approx(settled_over)
    assert [r["p_push"] > 0 for r in rows] == [r["line"] == int(r["line"]) for r in rows]
    assert distribution.frozen(1).mean() == pytest.approx(10.0)
