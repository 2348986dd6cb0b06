"""``/v1/offers``, ``/v1/ladder`` and ``/v1/picks``: every offer of a date priced, one player-market's fair
ladder — the operations ``nbaprops predictions --offers`` and ``nbaprops ladder`` run
(:mod:`nbaprops.pipeline.board`) — and the night's picks at the offers, what ``nbaprops picks`` prints
(:func:`nbaprops.picks.picks`; a read: the API never records to the pick log), and ``/v1/picks/logged``, the
recorded picks with their close and CLV (``nbaprops picks --logged``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from nbaprops.clock import resolve_day
from nbaprops.config import book_list
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import GAME_DATE_PATTERN, Ladder, Market, OfferList, SystemId
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


class Pick(BaseModel):
    """One bet at the offer it takes, staked (``nbaprops picks --json``'s ``picks``)."""

    player_lookup: str
    player_name: str | None
    team: str | None
    opponent: str | None
    game_id: str | None
    market: str
    system_id: str
    recommendation: str = Field(description="the system's side at its own line: OVER or UNDER")
    predicted_value: float | None
    system_line: float | None = Field(description="the line the system priced its bet at")
    system_book: str | None
    system_price: float | None
    system_p_win: float | None = Field(description="the system's calibrated P(win) at its own line")
    system_ev: float | None
    batch_id: str | None
    model_version: str | None
    side: str = Field(description="over or under")
    bookmaker: str = Field(description="book of the offer taken: the best EV among those you can take")
    line: float
    price: float = Field(description="American odds of the side at that offer: the stake is sized at it")
    p_win: float = Field(description="the system's probability carried to the offer's line")
    p_lose: float
    fair_p: float = Field(description="the market's fair probability the side wins at that line")
    ev: float = Field(description="expected profit per unit at that price")
    offers: int = Field(description="offers of the side the bet could take")
    kelly_full: float
    kelly_stake: float = Field(description="the fractional Kelly stake before the caps")
    sized_by: str = Field(description="kelly: alone on its game; joint: sized with the game's other bets")
    sized_with: int = Field(description="bets of its game sized together (1: alone)")
    stake: float
    cut_by: str | None = Field(description="bet_cap, team_cap, game_cap or night_cap; null: not cut")
    train_start: str | None
    trained_through: str | None
    line_move: float | None = Field(
        description="points the consensus has moved in the pick's favour from the system's line (negative: "
        "against it), from each book's latest snapshot before tip-off and now; null: no snapshot"
    )
    moved_against: bool | None = Field(description="it moved against the pick by more than clv_moved_against")


class WithdrawnPick(BaseModel):
    """A recorded pick withdrawn because its line moved against it before tip-off (withdraw_moved_against)."""

    player_lookup: str
    player_name: str | None
    market: str
    side: str
    bookmaker: str
    line: float
    price: float
    stake: float
    system_line: float | None
    withdrawn_at: str
    withdrawn_line: float | None = Field(description="the consensus line it had moved to")
    withdrawn_reason: str | None


class PickList(BaseModel):
    game_date: str
    system_id: str
    market: str | None
    books: list[str] = Field(description="the books picked from (empty: every book)")
    bankroll: float
    kelly_fraction: float
    ev_margin: float = Field(description="the least EV per unit a pick clears")
    max_bet: float
    max_team: float
    max_game: float
    max_night: float
    min_ev: float
    correlated: bool
    count: int
    staked: float
    cut: dict[str, int] = Field(description="picks whose stake each cap cut")
    dropped_correlated: int
    dropped_no_offer: int
    dropped_below_margin: int
    dropped_bet_cap: int
    dropped_team_cap: int
    dropped_game_cap: int
    dropped_night_cap: int
    dropped_joint: int = Field(description="bets the game's joint Kelly staked nothing")
    dropped_withdrawn: int = Field(description="bets whose recorded pick was withdrawn: never staked again")
    dropped_moved_against: int = Field(
        description="bets whose line moved against them before tip-off, left out with withdraw_moved_against on"
    )
    picks: list[Pick]
    withdrawn: list[WithdrawnPick] = Field(description="the recorded picks of the night that were withdrawn")
    withdrawn_now: int = Field(description="picks this run withdrew (a GET never does)")
    alerts_sent: int
    no_bets: list[str] = Field(description="why there is no pick, when there is none")


@router.get(
    "/picks",
    response_model=PickList,
    summary="The night's picks at the offers of your books, staked",
    responses=responses(401, 403, 422, 429, 503),
)
async def picks(
    request: Request,
    date: DateQuery,
    system: Annotated[SystemId, Query(description="System whose bets are picked.")] = "ensemble",
    market: Annotated[Market | None, Query(description="Only this market.")] = None,
    min_ev: Annotated[
        float, Query(ge=-1, le=100, description="Least EV per unit at the offer (never below ev_margin).")
    ] = 0.0,
    bankroll: Annotated[
        float | None, Query(gt=0, le=1e12, description="Units to stake from [default: the bankroll setting].")
    ] = None,
    correlated: Annotated[bool, Query(description="One pick per player and market, not per player.")] = False,
    books: BooksQuery = None,
) -> dict[str, Any]:
    """Each OVER/UNDER of the system at the best-EV offer of your books (its calibrated probability carried to
    that offer's line), staked by fractional Kelly at that price, cut by the caps per bet, team, game and night
    (``cut_by``). Never records: ``nbaprops picks --record`` does."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")

    def read() -> dict[str, Any]:
        from nbaprops.picks import (
            picks as night_picks,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
        )

        result: dict[str, Any] = night_picks(
            rt.backend, rt.settings, day, system=system, market=market, min_ev=min_ev, bankroll=bankroll,
            correlated=correlated, books=book_list(books), made_at=rt.clock.now(),
        )  # fmt: skip
        return result

    result: dict[str, Any] = await rt.read(
        ("picks", day, system, market, min_ev, bankroll, correlated, books), read, version=rt.version_of()
    )
    return result


class LoggedPick(BaseModel):
    """One recorded pick (a ``pick_log`` row, docs/predictions.md) with its line move, close and CLV."""

    model_config = ConfigDict(extra="allow")

    game_date: str
    player_lookup: str
    market: str
    system_id: str
    side: str
    bookmaker: str
    line: float
    price: float
    stake: float
    made_at: str
    status: str = Field(description="open, moved_against, withdrawn, or closed (its game has tipped off)")
    line_move: float | None
    moved_against: bool | None
    close_line: float | None = Field(description="the consensus close (null before tip-off)")
    book_close_line: float | None = Field(description="the main closing line at the pick's own book")
    clv_line: float | None = Field(description="points of line the pick beat the consensus close by")
    clv_prob: float | None = Field(
        description="closing fair P(win) at the pick's line minus the break-even probability of its price"
    )


class LoggedPicks(BaseModel):
    game_date: str
    system_id: str
    market: str | None
    as_of: str = Field(description="the instant the line moves and the close are read up to")
    clv_moved_against: float
    count: int
    picks: list[LoggedPick]
    summary: dict[str, Any] = Field(description="accuracy's pick_clv figures over these picks")


@router.get(
    "/picks/logged",
    response_model=LoggedPicks,
    summary="The picks recorded for a date, with their close and closing-line value",
    responses=responses(401, 403, 422, 429, 503),
)
async def logged_picks(
    request: Request,
    date: DateQuery,
    system: Annotated[SystemId, Query(description="System whose recorded picks are listed.")] = "ensemble",
    market: Annotated[Market | None, Query(description="Only this market.")] = None,
) -> dict[str, Any]:
    """What ``nbaprops picks --logged --json`` prints: each recorded pick, its status (withdrawn, and when,
    why, to what line), its line move before tip-off, and after it the consensus close, its own book's close and
    CLV in points of line and in probability."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")

    def read() -> dict[str, Any]:
        from nbaprops.picks import (
            recorded_picks,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
        )

        result: dict[str, Any] = recorded_picks(
            rt.backend.features, rt.settings, day, system=system, market=market, now=rt.clock.now()
        )
        return result

    result: dict[str, Any] = await rt.read(
        ("picks_logged", day, system, market), read, version=rt.version_of()
    )
    return result


__all__ = ["router"]
