"""HTTP behaviour shared by the live sources: timeouts, retries with backoff, and the one translation of HTTP
failures into nbaprops errors.

Two HTTP stacks meet here: ``httpx`` (The Odds API, the injury-report PDFs) and ``requests`` (``nba_api``'s own
layer, which NBA.com needs for its browser-like headers). Both go through :func:`call`, so every source
retries the same way — 429 and 5xx answers, timeouts and dropped connections, up to ``retries`` more times with
exponential backoff (a numeric ``Retry-After`` is honoured, capped) — and fails the same way: a 4xx is a
:class:`~nbaprops.errors.SourceError` (terminal: a bad key or a bad request does not get better), anything still
failing after the retries is a :class:`~nbaprops.errors.SourceUnavailableError` (transient). Messages name the
source, the HTTP status and what was asked — never a URL's query string, which may hold an API key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from nbaprops.errors import SourceError, SourceUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How a source retries.

    Attributes:
        timeout: seconds one request may take.
        retries: further attempts after the first (so ``retries + 1`` requests at most).
        base_delay: the first backoff in seconds; it doubles each retry (with up to 50% jitter).
        max_delay: cap of one backoff, and of a server's ``Retry-After``.
        sleep: how to wait (tests pass a function that does not sleep).
    """

    timeout: float = 30.0
    retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return float(min(self.max_delay, self.base_delay * (2**attempt) * (1 + random.random() / 2)))


@dataclass(frozen=True)
class Reply:
    """What :func:`call` needs of a response, whatever library produced it."""

    status: int
    retry_after: str | None = None


def call(
    source: str,
    what: str,
    send: Callable[[], T],
    reply: Callable[[T], Reply],
    *,
    policy: RetryPolicy,
    transient: tuple[type[BaseException], ...] = (),
    ok_statuses: frozenset[int] = frozenset(),
) -> T:
    """Send one request with retries; return the response of the first 2xx (or ``ok_statuses``) answer.

    Args:
        source: the source's name, first in every error message.
        what: what was asked, for messages (no query string).
        send: makes the request and returns the library's response.
        reply: reads the status (and ``Retry-After``) of a response.
        transient: exception classes of the HTTP library meaning timeout or connection failure.
        ok_statuses: non-2xx statuses the caller handles itself (e.g. 404 for "no such report").

    Raises:
        SourceError: a 4xx answer (other than 429 and ``ok_statuses``).
        SourceUnavailableError: still 429/5xx, timing out or unreachable after ``policy.retries`` retries.
    """
    last_status: int | None = None
    last_problem = ""
    for attempt in range(policy.retries + 1):
        try:
            response = send()
        except transient as exc:
            last_status, last_problem = None, f"{type(exc).__name__}: {_short(exc)}"
            retry_after = None
        else:
            info = reply(response)
            if 200 <= info.status < 300 or info.status in ok_statuses:
                return response
            if info.status not in RETRY_STATUSES:
                hint = " (check the API key)" if info.status in (401, 403) else ""
                raise SourceError(source, f"{what} was refused{hint}", status=info.status)
            last_status, last_problem, retry_after = info.status, "", info.retry_after
        if attempt < policy.retries:
            wait = policy.delay(attempt, retry_after)
            log.warning(
                "%s: %s failed (%s), retry %d/%d in %.1fs",
                source,
                what,
                last_status or last_problem,
                attempt + 1,
                policy.retries,
                wait,
            )
            policy.sleep(wait)
    detail = f" ({last_problem})" if last_problem else ""
    raise SourceUnavailableError(
        source,
        f"{what} still failing after {policy.retries + 1} attempt(s){detail}; try again later",
        status=last_status,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).split("?", 1)[0]  # a URL in the message may carry an API key in its query
    return text[:200]
