"""Errors as JSON: ``{"error": "...", "kind": "..."}`` with the status that says what happened.

One boundary, like the CLI's: the nbaprops exception tree maps onto statuses here and nowhere else, and no
response ever carries a traceback. A 500 (an unexpected exception, or an nbaprops error that is no fault of
the caller's, such as a storage failure) is logged on the server with its request id and answered with
``{"error": "internal error; the server logged it (request <id>)", "kind": "InternalError", "request_id":
"<id>"}``: never the exception's text, which may quote SQL, table names, paths or stored values.

=========================  ======
error                      status
=========================  ======
malformed request (JSON)   400
Host not this server's     400
no key / Bearer / query    401
cross-site write           403
wrong key                  403
UnknownBatchError, route   404
ConflictError              409
body over the limit        413
polling too fast           429
InputError, ConfigError    422
StorageBusyError (retry)   503
StorageFullError           507
anything else              500
=========================  ======
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nbaprops.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    InputError,
    NbapropsError,
    StorageBusyError,
    StorageFullError,
    UnknownBatchError,
)
from nbaprops.service.models import ErrorBody

log = logging.getLogger(__name__)

_HTTP_KINDS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    422: "InputError",
    503: "Unavailable",
}


class ApiError(HTTPException):
    """An error of the HTTP layer itself (auth, body size): its status and kind are given.

    An HTTP exception, so that FastAPI passes it through when it is raised while a body is parsed (a body over
    the limit) instead of turning it into a generic 400.
    """

    def __init__(
        self, status: int, message: str, kind: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.kind = kind or _HTTP_KINDS.get(status, "Error")
        super().__init__(status, message, headers)

    def __str__(self) -> str:
        return str(self.detail)


def error_response(
    status: int, message: str, kind: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": message, "kind": kind, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


def kind_of(status: int) -> str:
    """The ``kind`` of an HTTP-layer error with this status."""
    return _HTTP_KINDS.get(status, "Error")


def internal_error(request: Request, exc: BaseException, *, traceback: bool = True) -> JSONResponse:
    """Log ``exc`` under the request's id and answer 500 without a word of its text."""
    request_id = getattr(request.state, "request_id", None) or "unknown"
    log.error(
        "request %s: %s %s failed: %s: %s",
        request_id,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
        exc_info=exc if traceback else None,
    )
    return error_response(
        500,
        f"internal error; the server logged it (request {request_id})",
        "InternalError",
        # set here too: an unexpected exception is answered outside the middleware that adds it
        headers={"X-Request-ID": request_id},
        request_id=request_id,
    )


def status_of(exc: NbapropsError) -> int:
    """The HTTP status of an nbaprops error."""
    if isinstance(exc, UnknownBatchError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InputError | ConfigError):
        return 422
    if isinstance(exc, StorageBusyError | ArtifactError):
        return 503
    if isinstance(exc, StorageFullError):  # Insufficient Storage: free space, then send it again
        return 507
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON body above."""

    @app.exception_handler(NbapropsError)
    async def nbaprops_error(request: Request, exc: NbapropsError) -> JSONResponse:
        status = status_of(exc)
        if status == 500:  # not the caller's fault: its text is for the log only
            return internal_error(request, exc, traceback=False)
        return error_response(
            status,
            str(exc),
            type(exc).__name__,
            headers={"Retry-After": "1"} if status == 503 else None,
            batch_id=getattr(exc, "batch_id", None) if status == 409 else None,
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, str(exc), exc.kind, headers=dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(problem.get("type") == "json_invalid" for problem in exc.errors()):
            return error_response(400, "the body is not valid JSON", "BadRequest")
        return error_response(422, _validation_message(exc), "InputError")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route matching it
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(
            exc.status_code, message, _HTTP_KINDS.get(exc.status_code, "Error"), headers=headers or None
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path) and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


# The responses every route may give besides its own (documented in the OpenAPI schema).
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request",
        401: "No API key (or a Bearer header, or a key in the query)",
        403: "Wrong API key",
        404: "No such batch",
        409: "Clashes with a running batch",
        413: "Body over the upload limit",
        422: "Invalid input",
        429: "Read again sooner than poll_interval_seconds; retry after Retry-After seconds",
        503: "Busy or stopping; retry",
    }
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": _error_body(), "description": descriptions[status]} for status in statuses
    }
    if 429 in documented:
        documented[429]["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before asking again.",
                "schema": {"type": "integer"},
            }
        }
    return documented


def _error_body() -> Any:
    return ErrorBody
