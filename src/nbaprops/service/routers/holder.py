"""``POST /_holder/{op}``: other nbaprops commands' operations on the database this service holds.

The endpoint record (:mod:`nbaprops.holder`) names this server's own URL; a CLI command that meets the
database's lock sends its operation here with the record's token, and gets what it would have printed itself.
The checks are the holder protocol's (:class:`nbaprops.holder.Holding`): the token in constant time — an API
key does not replace it, nor is one needed — a known operation, its arguments checked against its signature.
The app's middlewares apply as on every route: a foreign ``Host`` or a cross-site ``Origin`` is refused before
this runs. Reads run on the read pool, everything else on the write pool, like the API's own routes. Not in
the OpenAPI document: the protocol is internal between nbaprops processes of one user.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from nbaprops import holder
from nbaprops.errors import StorageBusyError
from nbaprops.service.deps import runtime

router = APIRouter(include_in_schema=False)
READS = frozenset({"status", "batches", "predictions", "offers", "ladder", "follow", "activity"})


@router.post(holder.ROUTE + "{op}")
async def answer(op: str, request: Request) -> Response:
    rt = runtime(request)
    holding = rt.holding
    try:
        if holding is None:
            raise holder.HolderGoneError("the service is starting")
        operation = holding.admit(request.headers.get(holder.TOKEN_HEADER, ""), op)
        if rt.draining.is_set():
            raise holder.HolderGoneError("the service is stopping")
        call = functools.partial(operation, **holding.arguments(operation, await request.body()))
        result = await (rt.db(call) if op in READS else rt.write(call))
    except Exception as exc:
        if isinstance(exc, StorageBusyError) and rt.stopping.is_set():  # the pools refuse: closing
            exc = holder.HolderGoneError("the service is stopping")
        status, payload = holder.failure_answer(op, exc)
        return Response(holder.encode(payload), status_code=status, media_type="application/json")
    return Response(holder.encode({"result": result}), media_type="application/json")


__all__ = ["router"]
