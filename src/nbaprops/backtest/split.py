"""The walk-forward splitter: which game dates each step of the backtest trains on and predicts.

Shaped like scikit-learn's ``TimeSeriesSplit``: the constructor only stores its settings and :meth:`split` yields
one fold per step, in time order. Where ``TimeSeriesSplit`` splits row indices, this splits **game dates**:
``retrain_days`` plays ``test_size`` (consecutive game dates predicted by one fitted model) and ``train_days``
plays ``max_train_size`` (the calendar days of history before a step that its models see, so the run needs
``train_days`` of warm-up before its first game date: :meth:`WalkForwardSplit.history_start`). A fold's training
window ends the day before its first test date, so no test date is on or before any date trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from nbaprops.errors import InputError
from nbaprops.systems.training import DEFAULT_TRAIN_DAYS

# Game days predicted by one step's models: 7, as the live batch retrains a week-old model. 12 and 14 were
# measured in issue 21 (docs/backtest.md, "Speed, issue 21 part 4"): 0.44x the time at 14, no system worse, but
# similarity's MAE 0.005-0.007 lower than weekly retraining (staler references flatter it), beyond the 0.005 that
# a change of the backtest may move a system's figure; pass retrain_days to trade that for speed.
DEFAULT_RETRAIN_DAYS = 7

# Issue 21, part 4 (docs/backtest.md, "Speed, issue 21 part 4: fewer fits"): the holdout fits (each system fitted
# on the first 80% of the window to learn its error spread and the ensemble's weights out of sample) every
# HOLDOUT_EVERY steps, kept in between; gbm's model (LightGBM's trees, most of a step's cost) every GBM_EVERY steps;
# the other systems' models (similarity's references among them) every step. Every system's MAE within 0.005 of
# fitting everything every step, on points 2023-24 and 2024-25.
DEFAULT_HOLDOUT_EVERY = 4
DEFAULT_GBM_EVERY = 2


@dataclass(frozen=True)
class Fold:
    """One step of the walk.

    Attributes:
        step: its position, from 0.
        train_start: first calendar day of the training window.
        train_end: the day after the window's last (exclusive); the step's first test date.
        test_dates: the game dates the step's models predict, in order.
    """

    step: int
    train_start: date
    train_end: date
    test_dates: tuple[date, ...]

    def trains_on(self, day: date) -> bool:
        """Whether rows dated ``day`` are in the training window ``[train_start, train_end)``."""
        return self.train_start <= day < self.train_end

    def train_dates(self, dates: Iterable[date]) -> list[date]:
        """The dates among ``dates`` that the window trains on, in their order."""
        return [day for day in dates if self.trains_on(day)]


class WalkForwardSplit:
    """Walk forward over game dates: ``retrain_days`` dates per fold, trained on the ``train_days`` before it.

    Args:
        retrain_days: game dates predicted by one step's models (the last fold may have fewer).
        train_days: calendar days of history each step trains on, ending the day before its first test date.
    """

    def __init__(
        self, *, retrain_days: int = DEFAULT_RETRAIN_DAYS, train_days: int = DEFAULT_TRAIN_DAYS
    ) -> None:
        self.retrain_days = retrain_days
        self.train_days = train_days

    def _dates(self, game_dates: Iterable[date]) -> list[date]:
        if self.retrain_days < 1:
            raise InputError("--retrain-days must be at least 1")
        return sorted(set(game_dates))

    def get_n_splits(self, game_dates: Iterable[date]) -> int:
        """How many folds :meth:`split` yields for ``game_dates``."""
        return -(-len(self._dates(game_dates)) // self.retrain_days)

    def history_start(self, game_dates: Sequence[date]) -> date:
        """The first day any fold trains on: ``train_days`` before the first game date (the warm-up)."""
        return min(self._dates(game_dates)) - timedelta(days=self.train_days)

    def split(self, game_dates: Iterable[date]) -> Iterator[Fold]:
        """The folds over the distinct ``game_dates``, in time order; together they cover every date once."""
        days = self._dates(game_dates)
        for step, first in enumerate(range(0, len(days), self.retrain_days)):
            test = tuple(days[first : first + self.retrain_days])
            yield Fold(step, test[0] - timedelta(days=self.train_days), test[0], test)


__all__ = ["DEFAULT_GBM_EVERY", "DEFAULT_HOLDOUT_EVERY", "DEFAULT_RETRAIN_DAYS", "Fold", "WalkForwardSplit"]
