"""Backoff for the GCP backend's own retries: transient errors waited out in seconds, with a cap.

Real Google Cloud answers contention and overload with errors that pass within seconds (a BigQuery transaction
cancelled by a concurrent update, a 429 or ``rateLimitExceeded``, a Pub/Sub pull answered ``UNAVAILABLE``);
retrying them from 10 ms (the emulator-tuned :func:`~nbaprops.storage.retry_transient`) spends every attempt
in about two seconds. :class:`Backoff` is exponential with jitter between ``initial_s`` and ``maximum_s``; every
user takes one as a keyword argument, so tests pass milliseconds and production keeps seconds.
"""

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
class Backoff:
    """Exponential backoff with jitter.

    Attributes:
        initial_s: the first wait.
        maximum_s: no wait is longer.
        multiplier: each wait is this many times the one before (before jitter).
        attempts: calls in all before the last transient error is raised (``retry`` only).
    """

    initial_s: float = 1.0
    maximum_s: float = 32.0
    multiplier: float = 2.0
    attempts: int = 8

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1-based): half fixed, half random, so that
        workers failing together do not retry together."""
        base = min(self.maximum_s, self.initial_s * self.multiplier ** max(0, failures - 1))
        return base * (0.5 + random.random() / 2)


# BigQuery: transaction conflicts and rate limits clear in seconds (its documentation asks for exponential
# backoff from about 1 s); 8 attempts wait up to ~1+2+4+8+16+32+32 s.
WAREHOUSE_BACKOFF = Backoff(initial_s=1.0, maximum_s=32.0, attempts=8)
# Pub/Sub pull and ack errors: a consumer waits and pulls again for as long as it runs (attempts unused).
QUEUE_BACKOFF = Backoff(initial_s=0.5, maximum_s=30.0)


def retry(
    fn: Callable[[], T],
    *,
    backoff: Backoff,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; a :class:`TransientError` is retried after ``backoff``'s waits, up to ``backoff.attempts``
    calls in all. Terminal errors propagate at once; the last transient error propagates at the cap."""
    for attempt in range(1, backoff.attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt >= backoff.attempts:
                raise
            wait = backoff.delay(attempt)
            log.warning(
                "%s: transient error (attempt %d/%d), again in %.1f s: %s",
                what,
                attempt,
                backoff.attempts,
                wait,
                exc,
            )
            sleep(wait)
    raise AssertionError("unreachable")
