"""The contract batteries run over every backend of the registry (``nbaprops.storage.registry.REGISTRY``)."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from nbaprops.storage.registry import REGISTRY

# Registered backends whose seams run on Google Cloud emulators: their batteries run under `-m cloud`.
EMULATED = frozenset({"gcp"})


def registered_backends() -> list[Any]:
    """Every backend of the registry, as the parameters of a contract battery's fixture."""
    return [pytest.param(name, marks=pytest.mark.cloud) if name in EMULATED else name for name in REGISTRY]


def unknown_backend(battery: str, name: str) -> NoReturn:
    """A registered backend the battery cannot build fails, so that no backend joins untested."""
    pytest.fail(f"backend {name!r} is registered but the {battery} battery has no fixture for it")
