"""Prediction systems, registered by ``system_id`` (see :mod:`nbaprops.systems.base` for the contract)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbaprops.errors import InputError
from nbaprops.systems.base import PredictionSystem, SystemOutput
from nbaprops.systems.components import COMPONENT_SYSTEMS
from nbaprops.systems.ensemble import Ensemble
from nbaprops.systems.market_blend import MarketBlend
from nbaprops.systems.minutes import MinutesRate

# The components first, in the order ``system_id``s have always been listed (SYSTEM_IDS is user-facing).
REGISTRY: dict[str, type[PredictionSystem]] = {
    **COMPONENT_SYSTEMS,
    **{cls.system_id: cls for cls in (Ensemble, MinutesRate, MarketBlend)},
}
SYSTEM_IDS: tuple[str, ...] = tuple(REGISTRY)


def validate_systems(system_ids: Iterable[str]) -> tuple[str, ...]:
    """Return ``system_ids`` without duplicates, in the given order.

    Raises:
        InputError: no system, or an unknown one (the message lists the valid ones).
    """
    chosen = tuple(dict.fromkeys(s.strip() for s in system_ids if s.strip()))
    unknown = [s for s in chosen if s not in REGISTRY]
    if unknown or not chosen:
        raise InputError(
            f"unknown system(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SYSTEM_IDS)}"
        )
    return chosen


def make(system_id: str, market: str = "points", **params: Any) -> PredictionSystem:
    """A new, unfitted system by id; ``params`` are its settings (the keyword arguments of its constructor)."""
    return REGISTRY[validate_systems([system_id])[0]](market=market, **params)


__all__ = ["REGISTRY", "SYSTEM_IDS", "PredictionSystem", "SystemOutput", "make", "validate_systems"]
