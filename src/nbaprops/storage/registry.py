"""The backends by name: ``settings.backend`` picks one here, and nothing outside ``storage/`` names one.

A backend is a folder under ``storage/`` whose opener module has ``CAPABILITIES`` (a
:class:`~nbaprops.storage.Capabilities`) and ``open_backend(settings, *, read_only, inputs)``, plus one line in
:data:`REGISTRY`. The module is imported when the backend is first asked for, so a backend's drivers are only
needed where it is used (docs/architecture.md, "Adding a backend").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, cast

from nbaprops.errors import ConfigError
from nbaprops.storage._base import Capabilities

if TYPE_CHECKING:
    from nbaprops.config import Settings
    from nbaprops.storage.inputs import Inputs
    from nbaprops.storage.seams import Backend


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives.

    Attributes:
        module: its opener module (imported on first use, drivers with it).
        drivers: what a missing import means, for the error: the clients and the extra that installs them.
    """

    module: str
    drivers: str = ""


REGISTRY: dict[str, BackendEntry] = {
    "duckdb": BackendEntry("nbaprops.storage.duckdb"),
    "gcp": BackendEntry(
        "nbaprops.storage.gcp.opener", drivers="the Google Cloud clients: pip install 'nbaprops[gcp]'"
    ),
}


def backend_module(name: str) -> ModuleType:
    """The opener module of backend ``name``.

    Raises:
        ConfigError: no backend of that name (the known ones are listed), or its drivers are not installed.
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise ConfigError(f"backend {name!r} is not one of: {', '.join(REGISTRY)}")
    try:
        return importlib.import_module(entry.module)
    except ImportError as exc:
        raise ConfigError(f"backend {name!r} needs {entry.drivers or 'a module'} ({exc})") from exc


def capabilities(name: str) -> Capabilities:
    """What backend ``name`` can do (see :func:`backend_module` for the errors)."""
    return cast(Capabilities, backend_module(name).CAPABILITIES)


def check_workers(settings: Settings, capabilities: Capabilities) -> None:
    """Refuse ``workers`` 0 on a backend whose work runs only in this process (nothing would ever work a batch).

    Raises:
        ConfigError: naming the backend.
    """
    if settings.workers < 1 and not capabilities.remote_workers:
        raise ConfigError(
            f"workers must be at least 1 on backend {settings.backend!r}: its work runs only in this "
            "process (workers 0 only on a backend whose workers run elsewhere, as gcp's)"
        )


def open_backend(settings: Settings, *, read_only: bool = False, inputs: Inputs | None = None) -> Backend:
    """The backend ``settings.backend`` names, opened.

    Args:
        read_only: only reads will be made (the embedded file is opened read-only).
        inputs: the inputs store the caller has opened (the embedded file; on GCP the coordinator's planning
            file). None: the embedded backend opens ``settings.db_path``; a GCP worker loads history per date.

    Raises:
        ConfigError: an unknown backend (the known ones are named), its drivers missing, no worker where the
            work runs only in this process, or (GCP) a resource of the deployment missing.
    """
    module = backend_module(settings.backend)
    check_workers(settings, cast(Capabilities, module.CAPABILITIES))
    opened = module.open_backend(settings, read_only=read_only, inputs=inputs)
    return cast("Backend", opened)


__all__ = ["REGISTRY", "BackendEntry", "backend_module", "capabilities", "check_workers", "open_backend"]
