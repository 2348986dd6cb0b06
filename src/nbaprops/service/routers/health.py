"""``/health`` (alive), ``/health/ready`` (able to serve) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from nbaprops.errors import NbapropsError
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.metrics import CONTENT_TYPE
from nbaprops.service.models import Health, Ready
from nbaprops.service.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="The process is alive")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=Ready,
    summary="Database open, schema current, models ready",
    responses={503: {"model": Ready, "description": "Not ready: the failing checks say why."}},
)
async def ready(request: Request) -> JSONResponse:
    rt = runtime(request)
    try:
        checks = await rt.db(rt.readiness)
    except Exception as exc:  # stopping or starting: the pool is closed
        checks = {"database": {"ok": False, "detail": str(exc)}}
    failure = _storage_failure(rt)
    if failure is not None:  # a write found the disk full (or DuckDB gave up on the file): say so, not ready
        checks["storage"] = {"ok": False, "detail": f"{type(failure).__name__}: {failure}"}
    ok = all(check["ok"] for check in checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


def _storage_failure(rt: Runtime) -> NbapropsError | None:
    """The disk-full or fatal error the held database last met (cleared by the next commit that goes through
    while the database is still usable)."""
    try:
        return rt.storage.failure
    except NbapropsError:  # starting or stopping: the database check says so
        return None


@router.get(
    "/metrics",
    dependencies=[Depends(read_access)],
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}, **responses(401, 403, 503)},
)
async def metrics(request: Request) -> Response:
    rt = runtime(request)
    return Response(await rt.db(rt.metrics.render), media_type=CONTENT_TYPE)
