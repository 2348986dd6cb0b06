"""Backend-independent pieces of storage: the capabilities record and retry by error class."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from nbaprops.errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; generic code branches on these, never on the backend's class.

    Attributes:
        name: backend name.
        multi_process_writers: other processes may write concurrently (DuckDB: no, threads only), so a lease
            owned by another process is not necessarily dead.
        remote_workers: workers may run in other processes (``nbaprops worker``) and read their inputs from the
            warehouse: the coordinator uploads its inputs before it dispatches, and may run no worker itself.
        ledger_in_inputs: the ledger is tables of the inputs store (``backend.features``): one ``GROUP BY``
            counts every request, instead of a count per running batch.
        retries_writes: the warehouse retries its own transient write errors with backoff in seconds (GCP), so
            a caller retrying the whole operation again multiplies the wait; callers try again only once.
    """

    name: str
    multi_process_writers: bool
    remote_workers: bool = False
    ledger_in_inputs: bool = False
    retries_writes: bool = False


def retry_transient(fn: Callable[[], T], *, attempts: int = 8, base_delay: float = 0.01) -> T:
    """Call ``fn``, retrying :class:`TransientError` up to ``attempts`` times with jittered backoff.

    Terminal errors propagate at once; the last transient error propagates when the cap is reached.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt == attempts:
                raise
            delay = base_delay * (2 ** (attempt - 1)) * (1 + random.random())
            log.debug("transient error (attempt %d/%d), retrying in %.3fs: %s", attempt, attempts, delay, exc)
            time.sleep(delay)
    raise AssertionError("unreachable")
