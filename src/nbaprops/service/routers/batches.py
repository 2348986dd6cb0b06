"""``/v1/batches``: start a batch, list them, one in full, its progress as server-sent events, and the
operations on one batch (consolidate, finish)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from nbaprops.clock import resolve_day
from nbaprops.pipeline import ledger
from nbaprops.pipeline.reads import batch_detail
from nbaprops.service.auth import read_access, require_key
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import (
    GAME_DATE_PATTERN,
    BatchAccepted,
    BatchDetail,
    BatchList,
    BatchRequest,
    BatchState,
    BatchSummary,
    Links,
)
from nbaprops.service.operations import OPERATIONS
from nbaprops.service.runtime import Runtime

router = APIRouter(prefix="/v1/batches", tags=["batches"])
BatchId = Annotated[
    str, Path(description="Batch id, as returned when it started.", min_length=1, max_length=200)
]
EVENT_POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


@router.post(
    "",
    status_code=202,
    response_model=BatchAccepted,
    dependencies=[Depends(require_key)],
    responses={
        200: {
            "model": BatchAccepted,
            "description": "Nothing the batch reads changed since the last one of the date: it stands.",
        },
        **responses(400, 401, 403, 409, 413, 422, 503),
    },
    summary="Start the batch of a date",
)
async def start(body: BatchRequest, request: Request, response: Response) -> BatchAccepted:
    """Create the batch of a game date and run it in the background (202).

    409 at once while a batch of the date runs (naming it) or is being started; send ``force`` to end it
    partial and start anew. A repeat after the batch finished, with nothing new since (same games, lines,
    injuries, box scores, models and options), answers 200 with that batch (``unchanged``), as ``nbaprops
    daily`` does; ``force`` makes a new one.
    """
    rt = runtime(request)
    day = resolve_day(body.game_date, rt.clock, "game_date")
    # A flood of repeats is answered from memory on the event loop (a running date's 409, a standing batch),
    # and a refused or unchanged submission leaves the read cache alone: reads stay cheap meanwhile.
    known = (
        None
        if body.force
        else rt.runner.answer_from_memory(
            rt.runner.submission_key(day, body.markets, body.systems, body.deadline)
        )
    )
    if known is not None:
        job, started, unchanged = known.job, known.start, True
    else:
        job, started, unchanged = await rt.write(
            lambda: rt.runner.submit_batch(
                day,
                markets=body.markets,
                systems=body.systems,
                force=body.force,
                deadline_minutes=body.deadline,
            ),
            forget_reads=False,
        )
        if not unchanged:
            rt.forget_reads()
    url = f"/v1/batches/{job.batch_id}"
    response.headers["Location"] = url
    if unchanged:
        response.status_code = 200
    return BatchAccepted(
        batch_id=job.batch_id,
        game_date=day,
        created=started.created,
        requests=started.requests,
        unchanged=unchanged,
        links=Links(self=url, events=f"{url}/events"),
    )


@router.get(
    "",
    response_model=BatchList,
    dependencies=[Depends(read_access)],
    responses=responses(401, 403, 422, 429, 503),
    summary="List batches, newest first",
)
async def list_batches(
    request: Request,
    date: Annotated[str | None, Query(pattern=GAME_DATE_PATTERN, description="Only this game date.")] = None,
    state: Annotated[BatchState | None, Query(description="Only this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many batches.")] = 50,
) -> Response:
    rt = runtime(request)
    day = None if date is None else resolve_day(date, rt.clock, "date").isoformat()

    def render() -> bytes:
        listed = OPERATIONS["batches"](rt.backend, rt.settings, game_date=day, state=state, limit=limit)
        return BatchList.model_validate(listed).model_dump_json().encode()

    return Response(await rt.read(("batches", day, state, limit), render), media_type="application/json")


def _detail(rt: Runtime, batch_id: str) -> dict[str, Any]:
    detail = batch_detail(rt.backend, rt.settings, batch_id)
    job = rt.runner.job(batch_id)
    return {**detail, "runner": None if job is None else job.as_dict()}


@router.get(
    "/{batch_id}",
    response_model=BatchDetail,
    dependencies=[Depends(read_access)],
    responses=responses(401, 403, 404, 429, 503),
    summary="One batch in full",
)
async def get_batch(batch_id: BatchId, request: Request) -> Response:
    """State, requests by state, missing and failed players with their error codes, drift, consolidation
    report, timings, and what this server's background run of it is doing."""
    rt = runtime(request)

    def render() -> bytes:  # validated and serialised once per moment, off the event loop (see Runtime.read)
        return BatchDetail.model_validate(_detail(rt, batch_id)).model_dump_json().encode()

    # While this server runs the batch, the detail is read again only when the work's snapshot moved.
    body = await rt.read(("batch", batch_id), render, version=rt.version_of(batch_id))
    return Response(body, media_type="application/json")


def _snapshot(rt: Runtime, batch_id: str) -> dict[str, Any] | None:
    """Progress from the snapshot the work keeps, when this server runs the batch (no query at all)."""
    job = rt.runner.job(batch_id)
    return None if job is None else job.progress()


def _progress(rt: Runtime, batch_id: str) -> dict[str, Any]:
    info = ledger.get_batch(rt.backend, batch_id)
    job = rt.runner.job(batch_id)
    return {
        "batch_id": batch_id,
        "state": info.state,
        "requests": ledger.progress(rt.backend, batch_id),
        "consolidated": info.consolidated_at is not None,
        "phase": None if job is None else job.phase,
    }


def retry_ms(rt: Runtime) -> int:
    """The reconnection delay an event stream gives browsers (ms): a second, or the polling limit if longer."""
    return max(1000, round(rt.settings.poll_interval_seconds * 1000))


async def _event_stream(rt: Runtime, batch_id: str, first: dict[str, Any]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    last: dict[str, Any] | None = None
    current = first
    quiet_since = loop.time()
    # A browser that loses the stream reconnects after this long: never sooner than the polling limit.
    yield f"retry: {retry_ms(rt)}\n\n"
    while True:
        if current != last:
            yield f"event: progress\ndata: {json.dumps(current)}\n\n"
            last, quiet_since = current, loop.time()
        if current["consolidated"]:
            yield f"event: end\ndata: {json.dumps(current)}\n\n"
            return
        if loop.time() - quiet_since > HEARTBEAT_SECONDS:
            yield ": still running\n\n"
            quiet_since = loop.time()
        await asyncio.sleep(EVENT_POLL_SECONDS)
        if rt.draining.is_set():
            yield "event: closing\ndata: {}\n\n"
            return
        snapshot = _snapshot(rt, batch_id)  # the work's own, else one ledger read shared by all streams
        current = (
            snapshot
            if snapshot is not None
            else await rt.read(("progress", batch_id), lambda: _progress(rt, batch_id))
        )


@router.get(
    "/{batch_id}/events",
    dependencies=[Depends(read_access)],
    responses={
        200: {
            "description": "``progress`` events (request counts by state) until an ``end`` event once the batch "
            "is consolidated; ``closing`` when the server stops.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(401, 403, 404, 503),
    },
    response_class=StreamingResponse,
    summary="Progress as server-sent events",
)
async def events(batch_id: BatchId, request: Request) -> StreamingResponse:
    rt = runtime(request)
    first = _snapshot(rt, batch_id)
    if first is None:
        first = await rt.db(_progress, rt, batch_id)  # 404 before any stream starts
    return StreamingResponse(
        _event_stream(rt, batch_id, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _operate(rt: Runtime, op: str, batch_id: str) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        before = ledger.get_batch(rt.backend, batch_id).consolidated_at
        result: dict[str, Any] = OPERATIONS[op](rt.backend, rt.settings, batch_id=batch_id)
        rt.observe_consolidation(batch_id, already=before is not None)
        return result

    return await rt.write(run)


@router.post(
    "/{batch_id}/consolidate",
    response_model=BatchSummary,
    dependencies=[Depends(require_key)],
    responses=responses(401, 403, 404, 409, 503),
    summary="Consolidate a batch whose requests ended",
)
async def consolidate(batch_id: BatchId, request: Request) -> dict[str, Any]:
    """Merge staging into the main table and drop it; a rerun changes nothing. 409 while requests are open."""
    return await _operate(runtime(request), "consolidate", batch_id)


@router.post(
    "/{batch_id}/finish",
    response_model=BatchSummary,
    dependencies=[Depends(require_key)],
    responses=responses(401, 403, 404, 503),
    summary="Force the end of a batch",
)
async def finish(batch_id: BatchId, request: Request) -> dict[str, Any]:
    """Open requests end failed, the batch ends partial and is consolidated; a rerun changes nothing."""
    return await _operate(runtime(request), "finish", batch_id)
