"""``/v1/offers`` and ``/v1/ladder``: every offer of a date priced, and one player-market's fair ladder — the
operations ``nbaprops predictions --offers`` and ``nbaprops ladder`` run (:mod:`nbaprops.pipeline.board`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from nbaprops.clock import resolve_day
from nbaprops.config import book_list
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import GAME_DATE_PATTERN, Ladder, Market, OfferList
from nbaprops.service.operations import OPERATIONS

router = APIRouter(prefix="/v1", tags=["market"], dependencies=[Depends(read_access)])

DateQuery = Annotated[str, Query(pattern=GAME_DATE_PATTERN, description="YYYY-MM-DD, TODAY or TOMORROW.")]
BooksQuery = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="Comma-separated books you can bet at [default: the server's books setting, else all].",
    ),
]


@router.get(
    "/offers",
    response_model=OfferList,
    summary="Every offer of a date, priced",
    responses=responses(401, 403, 422, 429, 503),
)
async def offers(
    request: Request,
    date: DateQuery,
    market: Annotated[Market | None, Query()] = None,
    books: BooksQuery = None,
) -> dict[str, Any]:
    """Each book's offer at each line with the fair P(over) there, the EV of each side and whether it may be
    bet."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")

    def read() -> dict[str, Any]:
        result = OPERATIONS["offers"](
            rt.backend, rt.settings, game_date=day.isoformat(), market=market, books=book_list(books)
        )
        rows = [dict(zip(result["names"], r, strict=True)) for r in result["rows"]]
        return {"game_date": day.isoformat(), "count": len(rows), "offers": rows}

    # Like the board: what changes it is a run ending here (the prediction times) or a write (an ingest).
    result: dict[str, Any] = await rt.read(("offers", day, market, books), read, version=rt.version_of())
    return result


@router.get(
    "/ladder",
    response_model=Ladder,
    summary="Fair odds of one player-market at every half point",
    responses=responses(401, 403, 422, 429, 503),
)
async def ladder(
    request: Request,
    date: DateQuery,
    player: Annotated[
        str, Query(min_length=1, max_length=100, description="Player name, any book's spelling.")
    ],
    market: Annotated[Market, Query()],
    low: Annotated[
        float | None, Query(ge=0, le=200, description="Lowest line [default: consensus - 5].")
    ] = None,
    high: Annotated[
        float | None, Query(ge=0, le=200, description="Highest line [default: consensus + 5].")
    ] = None,
    books: BooksQuery = None,
) -> dict[str, Any]:
    """Fair P(over), P(push) and no-vig American odds at each line, with every offer posted there (book,
    prices, EV). An unknown player or a date without lines is a 422 naming it."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")

    def read() -> dict[str, Any]:
        result: dict[str, Any] = OPERATIONS["ladder"](
            rt.backend, rt.settings, game_date=day.isoformat(), player=player, market=market, low=low,
            high=high, books=book_list(books),
        )  # fmt: skip
        return result

    result: dict[str, Any] = await rt.read(
        ("ladder", day, player, market, low, high, books), read, version=rt.version_of()
    )
    return result


__all__ = ["router"]
