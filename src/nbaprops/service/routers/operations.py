"""``/v1/check-stalled`` and ``/v1/cleanup-staging``: the coordinator's housekeeping, as the CLI runs it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from nbaprops.service.auth import require_key
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import CheckStalledResult, CleanupRequest, CleanupResult
from nbaprops.service.operations import OPERATIONS

MAX_MINUTES = 10 * 366 * 24 * 60  # ten years: past that a duration overflows the time arithmetic
router = APIRouter(prefix="/v1", tags=["operations"], dependencies=[Depends(require_key)])


class CheckStalledRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    stall_minutes: float | None = Field(
        default=None,
        ge=0,
        le=MAX_MINUTES,
        description="Leases expired this long count as stalled [default: lease_grace_seconds].",
    )


@router.post(
    "/check-stalled",
    response_model=CheckStalledResult,
    responses=responses(400, 401, 403, 422, 503),
    summary="Reclaim expired leases; finish batches past their deadline",
)
async def check_stalled(
    request: Request, body: Annotated[CheckStalledRequest | None, Body()] = None
) -> dict[str, Any]:
    """Every expired lease goes back to pending (or failed after max_attempts) at any completion ratio; a
    batch past its deadline ends partial. Leases of this server's own running batches are not touched."""
    rt = runtime(request)
    minutes = None if body is None else body.stall_minutes
    return await rt.write(lambda: OPERATIONS["check-stalled"](rt.backend, rt.settings, stall_minutes=minutes))


@router.post(
    "/cleanup-staging",
    response_model=CleanupResult,
    responses=responses(400, 401, 403, 422, 503),
    summary="Drop staging no batch will consolidate",
)
async def cleanup_staging(
    request: Request, body: Annotated[CleanupRequest | None, Body()] = None
) -> dict[str, Any]:
    """Staging of a final or unknown batch is dropped; a batch older than the TTL is finished partial first
    (so its completed work is kept). A rerun drops nothing more."""
    rt = runtime(request)
    options = body or CleanupRequest()
    return await rt.write(
        lambda: OPERATIONS["cleanup-staging"](
            rt.backend, rt.settings, older_than_hours=options.older_than_hours, dry_run=options.dry_run
        )
    )
