"""Prediction systems, registered by ``system_id`` (see :mod:`nbaprops.systems.base` for the contract)."""

from __future__ import annotations

from typing import Any

from nbaprops.errors import ConfigError
from nbaprops.systems.base import PredictionSystem, SystemOutput
from nbaprops.systems.baselines import Matchup, MovingAverage
from nbaprops.systems.ensemble import Ensemble
from nbaprops.systems.gbm import GradientBoosting
from nbaprops.systems.similarity import Similarity

REGISTRY: dict[str, type[PredictionSystem]] = {
    cls.system_id: cls for cls in (MovingAverage, Matchup, Similarity, GradientBoosting, Ensemble)
}
SYSTEM_IDS: tuple[str, ...] = tuple(REGISTRY)


def make(system_id: str, market: str = "points", **params: Any) -> PredictionSystem:
    """A new, unfitted system by id."""
    try:
        cls = REGISTRY[system_id]
    except KeyError:
        raise ConfigError(f"unknown system {system_id!r}; known: {', '.join(SYSTEM_IDS)}") from None
    return cls(market=market, **params)


__all__ = ["REGISTRY", "SYSTEM_IDS", "PredictionSystem", "SystemOutput", "make"]
