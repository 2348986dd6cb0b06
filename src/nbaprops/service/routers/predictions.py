"""``/v1/predictions``: the board of a date, as JSON or (``Accept: text/csv``) as the CLI's CSV."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from nbaprops.clock import resolve_day
from nbaprops.config import book_list
from nbaprops.exports import csv_text
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import GAME_DATE_PATTERN, Market, PredictionList, SystemId
from nbaprops.service.operations import OPERATIONS
from nbaprops.service.routers.market import BooksQuery

router = APIRouter(prefix="/v1", tags=["predictions"], dependencies=[Depends(read_access)])


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a missing number is null
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def board_json(day: date, board: dict[str, Any]) -> bytes:
    """The board as :class:`~nbaprops.service.models.PredictionList` JSON, written directly: a slate is a few
    thousand rows and validating each against the model on every poll would dominate the response time (the
    schema test checks the shape instead)."""
    names = board["names"]
    rows = [
        {name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in board["rows"]
    ]
    return json.dumps(
        {"game_date": day.isoformat(), "count": len(rows), "total": board["total"], "predictions": rows},
        separators=(",", ":"),
    ).encode()


def board_csv(board: dict[str, Any]) -> str:
    """Every column of the main table and the market's, as ``nbaprops predictions --csv`` writes it (formula
    cells neutralised, :mod:`nbaprops.exports`)."""
    return csv_text(board["names"], board["rows"])


@router.get(
    "/predictions",
    response_model=PredictionList,
    summary="Active predictions of a date",
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV of every column with Accept: text/csv.",
        },
        **responses(401, 403, 422, 429, 503),
    },
)
async def predictions(
    request: Request,
    date: Annotated[str, Query(pattern=GAME_DATE_PATTERN, description="YYYY-MM-DD, TODAY or TOMORROW.")],
    market: Annotated[Market | None, Query(description="Only this market.")] = None,
    system: Annotated[SystemId | None, Query(description="Only this system.")] = None,
    bets_only: Annotated[bool, Query(description="Only rows recommending OVER or UNDER.")] = False,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="At most this many rows.")] = None,
    books: BooksQuery = None,
) -> Response:
    """Best expected value first: the line, P(over), the recommendation and its expected value beside each
    prediction, and its player-market's offers priced (consensus line, fair P(over), books, spread, the best
    over and under offers at the books you bet at, and what they save against the consensus book)."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")
    as_csv = "text/csv" in request.headers.get("accept", "")

    def render() -> bytes:  # on a database thread: a slate's JSON is a few hundred kB
        board = OPERATIONS["predictions"](
            rt.backend,
            rt.settings,
            game_date=day.isoformat(),
            market=market,
            system=system,
            bets_only=bets_only,
            limit=limit,
            books=book_list(books),
        )
        return board_csv(board).encode() if as_csv else board_json(day, board)

    # The board changes when a batch consolidates (a run here ends) or a write clears the cache (an ingest of
    # lines through the API is a write: the market columns follow it).
    body = await rt.read(
        ("predictions", day, market, system, bets_only, limit, books, as_csv), render, version=rt.version_of()
    )
    return Response(body, media_type="text/csv" if as_csv else "application/json")
