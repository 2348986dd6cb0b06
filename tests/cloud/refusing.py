"""Google clients that refuse to create what a running process is not entitled to create, as real Google Cloud
does and the emulators (which have no IAM) do not.

Real Pub/Sub answers ``create_topic`` / ``create_subscription`` from an account with only the publisher or
subscriber role with ``PermissionDenied`` (not ``AlreadyExists``); real BigQuery answers ``create_dataset`` from
an account with dataEditor on one dataset with ``403 Forbidden``. A process may still create its batch's staging
tables (dataEditor on the dataset allows that), so only the tables ``nbaprops gcp setup`` makes are refused.

In the test process :func:`refusing_creation` patches the client classes (``creation_allowed`` lifts it for the
set-up a deployment fixture does, as an administrator would); ``python -m tests.cloud.refusing ARGS`` runs the
``nbaprops`` CLI with the patches in place, which is how the cloud tests start their command processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import bigquery
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from nbaprops import schema

_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("creation_allowed", default=False)
refused: list[str] = []  # what was asked for and refused, in this process


def _table_id(table: Any) -> str:
    return str(getattr(table, "table_id", str(table).rsplit(".", 1)[-1]))


def _refuse(kind: str, original: Callable[..., Any], *, allow: Callable[..., bool] | None = None) -> Any:
    @functools.wraps(original)
    def refusing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _allowed.get() or (allow is not None and allow(*args, **kwargs)):
            return original(self, *args, **kwargs)
        refused.append(kind)
        if kind.startswith("bigquery"):
            raise google_errors.Forbidden(f"Access Denied: User does not have permission for {kind}")
        raise google_errors.PermissionDenied("User not authorized to perform this action.")

    return refusing


def _staging(table: Any, *args: Any, **kwargs: Any) -> bool:
    return _table_id(table).startswith(schema.STAGING_PREFIX)


PATCHES: list[tuple[type, str, Callable[..., bool] | None]] = [
    (PublisherClient, "create_topic", None),
    (SubscriberClient, "create_subscription", None),
    (bigquery.Client, "create_dataset", None),
    (bigquery.Client, "create_table", _staging),
]


def install() -> Callable[[], None]:
    """Patch the client classes; returns the function that restores them."""
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in PATCHES]
    for (cls, name, allow), (_, _, original) in zip(PATCHES, originals, strict=True):
        kind = f"{'bigquery' if cls is bigquery.Client else 'pubsub'}.{name}"
        setattr(cls, name, _refuse(kind, original, allow=allow))

    def restore() -> None:
        for cls, name, original in originals:
            setattr(cls, name, original)

    return restore


@contextlib.contextmanager
def refusing_creation() -> Iterator[list[str]]:
    """While the block runs, the clients refuse creation; yields the list of refused calls."""
    restore = install()
    refused.clear()
    try:
        yield refused
    finally:
        restore()


@contextlib.contextmanager
def creation_allowed() -> Iterator[None]:
    """An administrator's account inside :func:`refusing_creation` (``nbaprops gcp setup`` run by a tester)."""
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


if __name__ == "__main__":
    install()
    from nbaprops.cli import main

    sys.argv[0] = "nbaprops"
    main()
