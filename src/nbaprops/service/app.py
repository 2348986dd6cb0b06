"""The FastAPI application: routers, error boundary, lifespan, and the middlewares every request crosses
(own Host and same-origin writes only, the polling limit, body size limit, request id, timing and access log, security headers).

``create_app(settings)`` builds one service over ``settings.db_path``. The database is opened by the lifespan
(or before it, by :func:`nbaprops.service.server.serve`, so that a held file fails before anything listens)
and closed when the server stops.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from nbaprops import __version__, holder
from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.service import auth, errors
from nbaprops.service.limits import ASGIApp, Message, PollLimit, Receive, Scope, Send
from nbaprops.service.routers import batches, dashboard, health, ingest, market, operations, predictions
from nbaprops.service.routers import holder as holder_route
from nbaprops.service.runtime import Runtime

log = logging.getLogger(__name__)
access_log = logging.getLogger("nbaprops.service.access")

DOCS_ASSETS = "/docs-assets"
# The dashboard loads nothing but its own files; /docs needs Swagger UI's inline start-up script.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

DESCRIPTION = """The coordinator of nbaprops over HTTP: start a batch of a game date, watch it, consolidate,
finish, recover stalled work, clean staging, ingest files, read the board of a date.

Write endpoints need an API key in the `X-API-Key` header once any key is configured (`NBAPROPS_API_KEYS`);
read endpoints need one when `read_auth` is set. Errors are `{"error": "...", "kind": "..."}`.
"""


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(listen_host: str) -> frozenset[str] | None:
    """The ``Host`` names the service answers to when it listens on ``listen_host``; ``None`` for any.

    On a specific address: the loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) and that address, so a
    name an attacker points at this machine (DNS rebinding) is refused. On a wildcard address (``0.0.0.0``,
    ``::``) the service faces a network under names it cannot know; it then needs API keys
    (:func:`nbaprops.service.server.check_bind`), and a rebound page has no key.
    """
    host = listen_host.strip().strip("[]").lower()
    try:
        if not host or ipaddress.ip_address(host).is_unspecified:
            return None
    except ValueError:
        pass
    return frozenset((*LOOPBACK_NAMES, host))


def _host_name(host_header: str) -> str:
    """The name of a ``Host`` header without its port: ``[::1]:8000`` → ``::1``, ``Example:80`` → ``example``."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class SameOrigin:
    """Answer only this server's own ``Host``, and refuse unsafe methods sent by another origin's page.

    The checks of Starlette's ``TrustedHostMiddleware`` and of Django's CSRF origin check, with errors in the
    service's JSON shape: a request whose ``Host`` is not one the server listens under gets 400 (DNS
    rebinding: the browser sends the attacker's name); a POST/PUT/PATCH/DELETE whose ``Origin`` is not
    ``http(s)://<Host>`` (or is ``null``), or that has no ``Origin`` but a ``Sec-Fetch-Site`` of ``cross-site``
    or ``same-site``, gets 403 before any route runs, keys or not. A client that is not a browser sends
    neither header and is not concerned (the key is what stops it).
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers") or ()}
        host = headers.get(b"host", b"").decode("latin-1")
        refusal: tuple[int, str] | None = None
        if self.hosts is not None and _host_name(host) not in self.hosts:
            refusal = (400, "this server does not answer to that Host name; use 127.0.0.1 or localhost")
        elif scope["method"] in UNSAFE_METHODS and not self._same_origin(headers, host):
            refusal = (403, "cross-site request refused: only this server's own pages and clients may write")
        if refusal is None:
            await self.app(scope, receive, send)
            return
        response = errors.error_response(refusal[0], refusal[1], errors.kind_of(refusal[0]))
        await response(scope, receive, send)

    @staticmethod
    def _same_origin(headers: dict[bytes, bytes], host: str) -> bool:
        origin = headers.get(b"origin")
        if origin is not None:
            value = origin.decode("latin-1").strip().lower()
            return bool(host) and value in (f"http://{host.lower()}", f"https://{host.lower()}")
        return headers.get(b"sec-fetch-site", b"").lower() not in (b"cross-site", b"same-site")


class BodyLimit:
    """413 for a request body over ``limit`` bytes: at once from ``Content-Length``, else while it streams."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.ApiError(413, self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return (
            f"the request body is over the upload limit of {self.limit / 1_048_576:g} MB "
            f"(setting upload_limit_mb)"
        )

    async def _refuse(self, send: Send) -> None:
        response = errors.error_response(
            413, self._message(), "PayloadTooLarge", headers={"Connection": "close"}
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class Observe:
    """Per request: a request id (``X-Request-ID`` on the response, ``request.state.request_id`` for the error
    boundary), latency into the metrics (by route template), one access-log line with that id (path without
    its query string, so no key or token can reach a log), and the security headers."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        started_response = False

        async def send_wrapped(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers") or ())
                names = {name.lower() for name, _ in headers}
                policy = (
                    CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
                    if scope["path"] == "/docs"
                    else CSP
                )
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", policy.encode()),
                    (b"x-request-id", request_id.encode()),
                ):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        except Exception as exc:
            if started_response:
                raise
            # Answered here rather than by Starlette's outermost handler, which re-raises to the server (the
            # client's keep-alive connection would be reset); the body never carries the exception's text.
            if isinstance(exc, errors.ApiError):
                response = errors.error_response(exc.status, str(exc), exc.kind)
            else:
                response = errors.internal_error(Request(scope), exc)
            await response(scope, receive, send_wrapped)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if not template.endswith("/events"):  # a stream's duration is not a latency
                self.runtime.metrics.latency.labels(scope["method"], template, str(status)).observe(elapsed)
            # One line per write or error; a successful read (a dashboard polling, another terminal's command
            # answered through the holder route) only at debug level.
            quiet = scope["method"] in ("GET", "HEAD") or scope["path"].startswith(holder.ROUTE)
            level = logging.DEBUG if quiet and status < 400 else logging.INFO
            access_log.log(
                level,
                "%s %s %d %.1fms request %s",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                request_id,
            )


class ReadGuard:
    """A mounted app (static files) behind the same rule as the read routes: a key when ``read_auth`` is set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await auth.read_access(Request(scope))  # raises ApiError, answered by the error boundary
        await self.app(scope, receive, send)


def _openapi(app: FastAPI) -> None:
    """``/openapi.json``: the document, behind the read rule (``read_auth``) like every read."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(auth.read_access)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())


def _docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the files of the fastapi-offline package, never from a CDN."""

    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, ReadGuard(StaticFiles(directory=str(assets))), name="docs-assets")

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(auth.read_access)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="nbaprops API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )


def create_app(settings: Settings, *, clock: Clock | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The service over ``settings.db_path`` (see the module docstring).

    Args:
        clock: time source of batches and of TODAY / TOMORROW (tests pass a manual one).
        runtime: an already opened :class:`Runtime` (``nbaprops serve`` opens the database first).
    """
    rt = runtime or Runtime(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn's access line carries the query string (a key someone put there would reach the log);
        # Observe logs every request without it.
        logging.getLogger("uvicorn.access").disabled = True
        rt.start()
        try:
            yield
        finally:
            rt.stop()

    app = FastAPI(
        title="nbaprops",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by _openapi, behind read_access
    )
    app.state.runtime = rt
    errors.install(app)
    for router in (
        batches.router,
        predictions.router,
        market.router,
        operations.router,
        ingest.router,
        health.router,
        dashboard.router,
        holder_route.router,
    ):
        app.include_router(router)
    app.mount(
        "/static",
        ReadGuard(StaticFiles(directory=Path(__file__).resolve().parent / "static")),
        name="static",
    )
    _openapi(app)
    _docs(app)
    # The last added is the outermost: every request is observed (refusals included), then a foreign Host or
    # a cross-site write is refused before the body is read or any route runs.
    app.add_middleware(BodyLimit, limit=int(settings.upload_limit_mb * 1_048_576))
    app.add_middleware(PollLimit, settings=settings)  # after the Host check, before any route or body
    app.add_middleware(SameOrigin, hosts=allowed_hosts(settings.host))
    app.add_middleware(Observe, runtime=rt)
    return app


__all__ = ["create_app"]
