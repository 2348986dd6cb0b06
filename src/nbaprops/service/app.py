"""The FastAPI application: routers, error boundary, lifespan, and the three middlewares every request
crosses (body size limit, timing and access log, security headers).

``create_app(settings)`` builds one service over ``settings.db_path``. The database is opened by the lifespan
(or before it, by :func:`nbaprops.service.server.serve`, so that a held file fails before anything listens)
and closed when the server stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from nbaprops import __version__
from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.service import errors
from nbaprops.service.routers import batches, dashboard, health, ingest, operations, predictions
from nbaprops.service.runtime import Runtime

log = logging.getLogger(__name__)
access_log = logging.getLogger("nbaprops.service.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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
    """Per request: latency into the metrics (by route template), one access-log line (path without its
    query string, so no key or token can reach a log), and the security headers."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
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
                ):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if not template.endswith("/events"):  # a stream's duration is not a latency
                self.runtime.metrics.latency.labels(scope["method"], template, str(status)).observe(elapsed)
            # One line per write or error; a successful read (a dashboard polling) only at debug level.
            level = logging.DEBUG if scope["method"] in ("GET", "HEAD") and status < 400 else logging.INFO
            access_log.log(level, "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000)


def _docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the files of the fastapi-offline package, never from a CDN."""
    import importlib.resources

    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
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
        openapi_url="/openapi.json",
    )
    app.state.runtime = rt
    errors.install(app)
    for router in (
        batches.router,
        predictions.router,
        operations.router,
        ingest.router,
        health.router,
        dashboard.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    _docs(app)
    app.add_middleware(Observe, runtime=rt)
    app.add_middleware(BodyLimit, limit=int(settings.upload_limit_mb * 1_048_576))
    return app


__all__ = ["create_app"]
