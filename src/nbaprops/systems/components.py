"""The systems other systems are built from (``ensemble``'s components, ``market_blend``'s base).

They are made here rather than through the registry in :mod:`nbaprops.systems`, which imports the composite
systems: a composite reaching back to it would make an import cycle.
"""

from __future__ import annotations

from nbaprops.systems.base import PredictionSystem
from nbaprops.systems.baselines import Matchup, MovingAverage
from nbaprops.systems.gbm import GradientBoosting
from nbaprops.systems.similarity import Similarity

COMPONENT_SYSTEMS: dict[str, type[PredictionSystem]] = {
    cls.system_id: cls for cls in (MovingAverage, Matchup, Similarity, GradientBoosting)
}


def make_component(system_id: str, market: str) -> PredictionSystem:
    """A new, unfitted component system with its default settings."""
    return COMPONENT_SYSTEMS[system_id](market=market)


__all__ = ["COMPONENT_SYSTEMS", "make_component"]
