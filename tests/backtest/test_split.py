"""The walk-forward splitter: folds in time order, never training on or after a date they predict."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbaprops.backtest import Fold, WalkForwardSplit
from nbaprops.errors import InputError
from nbaprops.storage.duckdb import DuckDBStorage

game_dates = st.lists(st.dates(date(2024, 10, 1), date(2025, 6, 30)), min_size=1, max_size=60)


def _inline_folds(days: list[date], retrain_days: int, train_days: int) -> list[Fold]:
    """The folds as run_backtest computed them inline before the splitter existed."""
    step_starts = days[::retrain_days]
    return [
        Fold(
            k,
            start - timedelta(days=train_days),
            start,
            tuple(days[k * retrain_days : (k + 1) * retrain_days]),
        )
        for k, start in enumerate(step_starts)
    ]


@given(game_dates, st.integers(1, 10), st.integers(1, 400))
def test_no_test_date_is_on_or_before_a_training_date(
    dates: list[date], retrain_days: int, train_days: int
) -> None:
    first = min(dates) - timedelta(days=train_days + 5)  # every calendar day from before the warm-up on
    history = [first + timedelta(days=n) for n in range((max(dates) - first).days + 1)]
    for fold in WalkForwardSplit(retrain_days=retrain_days, train_days=train_days).split(dates):
        trained = fold.train_dates(history)
        assert trained, "every fold has a warm-up of history"
        assert max(trained) < min(fold.test_dates)
        assert min(trained) == fold.train_start == fold.train_end - timedelta(days=train_days)


@given(game_dates, st.integers(1, 10))
def test_folds_cover_every_date_once_in_order(dates: list[date], retrain_days: int) -> None:
    splitter = WalkForwardSplit(retrain_days=retrain_days)
    folds = list(splitter.split(dates))
    assert [d for f in folds for d in f.test_dates] == sorted(set(dates))
    assert [f.step for f in folds] == list(range(len(folds))) and len(folds) == splitter.get_n_splits(dates)
    assert all(1 <= len(f.test_dates) <= retrain_days for f in folds)
    assert all(len(f.test_dates) == retrain_days for f in folds[:-1])


@pytest.mark.parametrize(("retrain_days", "train_days"), [(7, 365), (4, 90), (1, 30), (30, 730)])
def test_same_folds_as_the_backtest_computed_inline(
    storage: DuckDBStorage, retrain_days: int, train_days: int
) -> None:
    season = [
        r[0]
        for r in storage.fetchall(
            "SELECT DISTINCT game_date FROM box_scores WHERE season = '2024-25' ORDER BY 1"
        )
    ]
    assert len(season) > 150
    splitter = WalkForwardSplit(retrain_days=retrain_days, train_days=train_days)
    assert list(splitter.split(season)) == _inline_folds(season, retrain_days, train_days)
    assert splitter.history_start(season) == season[0] - timedelta(days=train_days)


def test_a_fold_trains_up_to_the_day_before_its_first_test_date() -> None:
    fold = next(WalkForwardSplit(retrain_days=2, train_days=3).split([date(2025, 1, 10), date(2025, 1, 12)]))
    assert fold.test_dates == (date(2025, 1, 10), date(2025, 1, 12))
    assert [fold.trains_on(date(2025, 1, d)) for d in (6, 7, 9, 10)] == [False, True, True, False]


def test_retrain_days_below_one_is_refused() -> None:
    with pytest.raises(InputError, match="--retrain-days must be at least 1"):
        list(WalkForwardSplit(retrain_days=0).split([date(2025, 1, 10)]))
