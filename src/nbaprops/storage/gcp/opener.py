"""The GCP backend's entry in the registry (:mod:`nbaprops.storage.registry`): its capabilities and opener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbaprops.storage.gcp.backend import CAPABILITIES, GcpBackend

if TYPE_CHECKING:
    from nbaprops.config import Settings
    from nbaprops.storage.inputs import Inputs


def open_gcp(settings: Settings, *, features: Inputs | None = None) -> GcpBackend:
    """The GCP backend of ``settings`` (Firestore, BigQuery, Pub/Sub), its resources found, none created.

    Args:
        features: the coordinator's own inputs file; a worker passes none (it loads history per date). It
            decides what must exist (:meth:`GcpBackend.required`).

    Raises:
        ConfigError: a topic, subscription, dataset or table is missing (named, with ``nbaprops gcp setup`` to
            create it).
    """
    backend = GcpBackend(settings, features=features)
    try:
        backend.check("worker" if features is None else "coordinator")
    except BaseException:
        backend.close()
        raise
    return backend


def open_backend(settings: Settings, *, read_only: bool = False, inputs: Inputs | None = None) -> GcpBackend:
    """The registry's opener: ``inputs`` is the coordinator's planning file (none in a worker); the cloud seams
    take no read-only mode."""
    return open_gcp(settings, features=inputs)


def setup_gcp(settings: Settings, *, location: str | None = None) -> list[str]:
    """Create the topics, subscriptions, dataset and tables of ``settings``' deployment (``nbaprops gcp setup``).

    Returns:
        what was created (what existed is left as it is).
    """
    backend = GcpBackend(settings, features=None)
    try:
        return backend.setup(location=location)
    finally:
        backend.close()


__all__ = ["CAPABILITIES", "open_backend", "open_gcp", "setup_gcp"]
