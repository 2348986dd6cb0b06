"""The polling limit: a client reading the same ``/v1`` URL again sooner than ``poll_interval_seconds`` gets
``429`` with ``Retry-After``, answered before any route runs.

A status read is shared by every poller for half a second (:meth:`nbaprops.service.runtime.Runtime.read`), so
a client asking more often than that gets the same answer again: it cannot use what it asks for, and serving
two hundred such loops took the interpreter from the batch the server runs in the same process (a tight loop
slowed the slate 4×, issue 21). The refusal is cheap (no routing, no database, a constant body) and polite: it
says when to come back.

A client is its API key when it sends a configured one (several dashboards behind one proxy keep their own
budget), else its address. A URL is its path and query string: reading the boards of several dates in a row is
not polling. Only ``GET``/``HEAD`` under ``/v1/`` count; writes, pages, static files, probes and the holder
route (other commands of this machine) are never limited, and neither is an event stream
(``/v1/batches/{id}/events``: one long request the server feeds at its own pace; a browser refused there would
give up instead of retrying, so a second tab on the same batch must not be).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from nbaprops.config import Settings
from nbaprops.service import errors
from nbaprops.service.auth import key_matches

# The ASGI shapes (app.py's middlewares use them too).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LIMITED_PREFIX = "/v1/"
STREAM_SUFFIX = "/events"
# Past this many remembered (client, URL) pairs, those whose interval has passed are forgotten.
MAX_REMEMBERED = 10_000


def client_identity(scope: Scope, settings: Settings) -> str:
    """The API key the request sends when it is a configured one, else the address it comes from."""
    if settings.api_keys:
        for name, value in scope.get("headers") or ():
            if name.lower() == b"x-api-key":
                given: str = value.decode("latin-1")
                if key_matches(given, settings.api_keys):
                    return "key:" + given
                break
    client = scope.get("client")
    return "addr:" + (str(client[0]) if client else "unknown")


class PollLimit:
    """429 (``TooManyRequests``, ``Retry-After`` in whole seconds) for a read of a URL this client read less
    than ``settings.poll_interval_seconds`` ago (see the module docstring); 0 turns it off."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.interval = settings.poll_interval_seconds
        self._next: dict[
            tuple[str, str, bytes], float
        ] = {}  # (client, path, query) -> when it may read again

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.interval <= 0
            or scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(LIMITED_PREFIX)
            or scope["path"].endswith(STREAM_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        key = (client_identity(scope, self.settings), scope["path"], scope.get("query_string", b""))
        allowed_at = self._next.get(key, 0.0)
        if now < allowed_at:
            retry_after = max(1, math.ceil(allowed_at - now))
            response = errors.error_response(
                429,
                f"too many requests: read this URL at most once every {self.interval:g} s (the setting "
                f"poll_interval_seconds); retry after {retry_after} s",
                "TooManyRequests",
                headers={"Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return
        if len(self._next) >= MAX_REMEMBERED:
            self._next = {k: t for k, t in self._next.items() if t > now}
        self._next[key] = now + self.interval
        await self.app(scope, receive, send)


__all__ = ["PollLimit", "client_identity"]
