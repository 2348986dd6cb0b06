"""The dashboard: server-rendered pages over the same reads as the API, live through server-sent events.

``/`` lists batches (live progress bars while running), ``/batches/{id}`` shows one (requests by state, the
players not predicted and why, drift, consolidation), ``/board/{date}`` the predictions of a date (sortable,
filtered by market, system and bets only, the line and P(over) beside each), ``/picks/{date}`` the night's picks
at the offers of the user's books (what ``GET /v1/picks`` answers), ``/ladder/{date}`` one player-market's fair
odds at every half point against every offer (``GET /v1/ladder``), ``/reports`` the backtest reports. Charts are
matplotlib SVG inline (:mod:`nbaprops.evaluation.charts`); scripts and styles ship in the package.

A page refused (an input that is not valid, a date without lines, a player without a line) is a page that says
why, with its status (:class:`PageRoute`), not the API's JSON; errors of authentication stay the API's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from nbaprops.clock import resolve_day
from nbaprops.config import book_list
from nbaprops.errors import ConfigError, InputError, UnknownBatchError
from nbaprops.evaluation import charts
from nbaprops.markets import MARKETS
from nbaprops.picks import MAX_BOOKS
from nbaprops.picks import picks as night_picks
from nbaprops.pipeline.reads import batch_detail
from nbaprops.schema import REQUEST_STATES
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import ApiError, status_of
from nbaprops.service.models import Market, SystemId
from nbaprops.service.operations import OPERATIONS
from nbaprops.service.routers.market import BooksQuery
from nbaprops.service.runtime import Runtime
from nbaprops.systems import SYSTEM_IDS


class PageRoute(APIRoute):
    """A dashboard route whose refusals are pages: a query that fails validation (422) or an nbaprops input error
    (422; an unknown batch, 404) renders ``error.html`` with the status and a message in the user's terms. Errors
    of authentication (raised by the router's dependency before any parameter is read) and 5xx stay the API's
    JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_page(request, 422, _invalid(exc))
            except (InputError, ConfigError, UnknownBatchError) as exc:
                return error_page(request, status_of(exc), str(exc))

        return page


router = APIRouter(include_in_schema=False, dependencies=[Depends(read_access)], route_class=PageRoute)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
BOARD_ROWS = 300
_REPORT_NAME = re.compile(r"^[\w.-]+\.html$")
STATE_COLORS = {
    "pending": "#bbbbbb",
    "leased": "#1f77b4",
    "done": "#2ca02c",
    "skipped": "#ff7f0e",
    "failed": "#d62728",
}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _odds(value: Any) -> str:
    """American odds as a book shows them: +150, -110 (empty when there is none)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    return f"{value:+.0f}"


def _invalid(exc: RequestValidationError) -> str:
    """What is wrong with the query, by parameter, in pydantic's words (which never quote the value sent)."""
    parts = [
        f"{problem.get('loc', ('query',))[-1]}: {problem.get('msg', 'invalid')}" for problem in exc.errors()
    ]
    return "; ".join(parts) or "invalid request"


def error_page(request: Request, status: int, message: str) -> Response:
    """``error.html`` with ``status``: the message is text (escaped by the template), never markup."""
    titles = {404: "Not found", 422: "Not a valid request"}
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": titles.get(status, f"Error {status}"), "message": message},
        status_code=status,
    )


def _duration(created_at: str, consolidated_at: str | None) -> str:
    if consolidated_at is None:
        return "running"
    seconds = (datetime.fromisoformat(consolidated_at) - datetime.fromisoformat(created_at)).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# -- pages -------------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse, name="dashboard_home")
async def home(request: Request) -> Response:
    rt = runtime(request)
    rows = (await rt.db(OPERATIONS["batches"], rt.backend, rt.settings, limit=100))["batches"]
    for row in rows:
        counts = row["requests"]
        row["total"] = sum(counts.values())
        row["ended"] = counts["done"] + counts["skipped"] + counts["failed"]
        row["duration"] = _duration(row["created_at"], row["consolidated_at"])
    return templates.TemplateResponse(
        request, "batches.html", {"batches": rows, "base_url": str(request.base_url)}
    )


def _batch_page(rt: Runtime, batch_id: str) -> dict[str, Any]:
    detail = batch_detail(rt.backend, rt.settings, batch_id)
    job = rt.runner.job(batch_id)
    detail["runner"] = None if job is None else job.as_dict()
    for key in ("as_of", "created_at", "deadline_at", "consolidated_at"):
        if detail.get(key):
            detail[key] = datetime.fromisoformat(detail[key]).strftime("%Y-%m-%d %H:%M:%S UTC")
    counts = detail["requests"]
    drift = detail.get("drift") or {}
    return {
        "b": detail,
        "total": sum(counts.values()),
        "ended": counts["done"] + counts["skipped"] + counts["failed"],
        "drift_items": [(k, v) for k, v in drift.items() if v],
        "requests_chart": requests_chart(counts),
        "reasons_chart": reasons_chart(detail["missing"]),
    }


@router.get("/batches/{batch_id}", response_class=HTMLResponse, name="dashboard_batch")
async def batch_page(batch_id: str, request: Request) -> Response:
    rt = runtime(request)
    return templates.TemplateResponse(request, "batch.html", await rt.db(_batch_page, rt, batch_id))


async def _newest_day(request: Request) -> str:
    """The date of the newest batch (today, US Eastern, when there is none): where ``/board`` and ``/picks`` go."""
    rt = runtime(request)
    rows = (await rt.db(OPERATIONS["batches"], rt.backend, rt.settings, limit=1))["batches"]
    return str(rows[0]["game_date"]) if rows else resolve_day("TODAY", rt.clock).isoformat()


@router.get("/board", name="dashboard_board_latest")
async def board_latest(request: Request) -> Response:
    """The board of the newest batch's date (today, US Eastern, when there is none)."""
    return RedirectResponse(
        request.url_for("dashboard_board", day=await _newest_day(request)), status_code=303
    )


@router.get("/board/{day}", response_class=HTMLResponse, name="dashboard_board")
async def board(
    day: str,
    request: Request,
    market: Annotated[str | None, Query()] = None,
    system: Annotated[str | None, Query()] = None,
    bets_only: Annotated[bool, Query()] = False,
    limit: Annotated[str | None, Query()] = None,
) -> Response:
    rt = runtime(request)
    game_date = resolve_day(day, rt.clock, "date")
    market, system = market or None, system or None
    rows_limit = None if limit == "all" else BOARD_ROWS
    board = await rt.db(
        OPERATIONS["predictions"],
        rt.backend,
        rt.settings,
        game_date=game_date.isoformat(),
        market=market,
        system=system,
        bets_only=bets_only,
        limit=rows_limit,
    )
    rows = [dict(zip(board["names"], row, strict=True)) for row in board["rows"]]
    chart = await rt.db(board_chart, rows, game_date)
    query = {
        k: v
        for k, v in (
            ("market", market),
            ("system", system),
            ("bets_only", "true" if bets_only else None),
            ("limit", "all"),
        )
        if v
    }
    return templates.TemplateResponse(
        request,
        "board.html",
        {
            "day": game_date.isoformat(),
            "rows": rows,
            "total": board["total"],
            "shown": len(rows),
            "chart": chart,
            "markets": MARKETS,
            "systems": SYSTEM_IDS,
            "market": market,
            "system": system,
            "bets_only": bets_only,
            "all_query": urlencode(query),
            "fmt": _fmt,
        },
    )


# The columns of a pick the page shows, in order (``GET /v1/picks``' fields); a field it does not know (one a later
# version adds) is shown after them as text, and these are left out as the system's own bet or bookkeeping.
PICK_COLUMNS = ("player_name", "team", "opponent", "market", "side", "bookmaker", "line", "price", "fair_p",
                "p_win", "ev", "offers", "kelly_stake", "stake", "cut_by")  # fmt: skip
_PICK_HIDDEN = frozenset(
    {"player_lookup", "game_id", "system_id", "recommendation", "predicted_value", "system_line", "system_book",
     "system_price", "system_p_win", "system_ev", "batch_id", "model_version", "p_lose", "kelly_full",
     "train_start", "trained_through"}
)  # fmt: skip
_PICK_TOTALS = ("dropped_correlated", "dropped_no_offer", "dropped_below_margin", "dropped_bet_cap",
                "dropped_team_cap", "dropped_game_cap", "dropped_night_cap")  # fmt: skip


def _books(books: str | None) -> list[str] | None:
    """The ``books`` query as the API reads it (:func:`nbaprops.config.book_list`), at most
    :data:`~nbaprops.picks.MAX_BOOKS` of them."""
    listed = book_list(books)
    if listed is not None and len(listed) > MAX_BOOKS:
        raise InputError(f"books lists {len(listed)} books; at most {MAX_BOOKS}")
    return listed


def _market(market: str | None) -> str | None:
    """A market of the filter form ("" is every market); one outside :data:`MARKETS` is refused unquoted."""
    if not market:
        return None
    if market not in MARKETS:
        raise InputError(f"market: not a market; one of {', '.join(MARKETS)} (or none for all)")
    return market


def _line(name: str, value: str | None) -> float | None:
    """``low`` / ``high`` of the ladder: a line from 0 to 200 as the API's (``ge=0, le=200``); empty is none."""
    if value is None or not value.strip():
        return None
    try:
        line = float(value)
    except ValueError:
        line = math.nan
    if not 0 <= line <= 200:  # NaN fails too
        raise InputError(f"{name}: a line from 0 to 200 (or empty for the default)")
    return line


@router.get("/picks", name="dashboard_picks_latest")
async def picks_latest(request: Request) -> Response:
    """The picks of the newest batch's date (today, US Eastern, when there is none)."""
    return RedirectResponse(
        request.url_for("dashboard_picks", day=await _newest_day(request)), status_code=303
    )


@router.get("/picks/{day}", response_class=HTMLResponse, name="dashboard_picks")
async def picks_page(
    day: str,
    request: Request,
    system: Annotated[SystemId, Query()] = "ensemble",
    market: Annotated[str | None, Query(max_length=40)] = None,
    min_ev: Annotated[float, Query(ge=-1, le=100)] = 0.0,
    bankroll: Annotated[float | None, Query(gt=0, le=1e12)] = None,
    correlated: Annotated[bool, Query()] = False,
    books: BooksQuery = None,
) -> Response:
    """``GET /v1/picks`` as a page: the same function (:func:`nbaprops.picks.picks`) with the same parameters,
    never recording. A date without predictions is an empty page that says so."""
    rt = runtime(request)
    game_date = resolve_day(day, rt.clock, "date")
    chosen, allowed = _market(market), _books(books)
    try:
        result: dict[str, Any] = await rt.db(
            night_picks, rt.backend, rt.settings, game_date, system=system, market=chosen, min_ev=min_ev,
            bankroll=bankroll, correlated=correlated, books=allowed,
        )  # fmt: skip
    except InputError as exc:  # the parameters were checked above: what is left is the date's (no prediction)
        result = {
            "picks": [],
            "no_bets": [str(exc)],
            "count": 0,
            "bankroll": bankroll or rt.settings.bankroll,
        }
    picked = result["picks"]
    extra = list(
        dict.fromkeys(k for p in picked for k in p if k not in PICK_COLUMNS and k not in _PICK_HIDDEN)
    )
    return templates.TemplateResponse(
        request,
        "picks.html",
        {
            "day": game_date.isoformat(),
            "r": result,
            "picks": picked,
            "extra": extra,
            "totals": [
                (k.removeprefix("dropped_").replace("_", " "), result[k]) for k in _PICK_TOTALS if k in result
            ],
            "systems": SYSTEM_IDS,
            "markets": MARKETS,
            "system": system,
            "market": chosen,
            "books": books or "",
            "min_ev": min_ev,
            "bankroll": result.get("bankroll", bankroll),
            "correlated": correlated,
            "fmt": _fmt,
            "odds": _odds,
        },
    )


@router.get("/ladder/{day}", response_class=HTMLResponse, name="dashboard_ladder")
async def ladder_page(
    day: str,
    request: Request,
    player: Annotated[str, Query(min_length=1, max_length=100)],
    market: Annotated[Market, Query()],
    low: Annotated[str | None, Query(max_length=20)] = None,
    high: Annotated[str | None, Query(max_length=20)] = None,
    books: BooksQuery = None,
) -> Response:
    """``GET /v1/ladder`` as a page (the ``ladder`` operation, the same parameters and limits; an empty ``low`` or
    ``high``, as the page's form sends it, is the default). A player or a date without a line to price is a 404
    page that says which."""
    rt = runtime(request)
    game_date = resolve_day(day, rt.clock, "date")
    low_line, high_line = _line("low", low), _line("high", high)
    if low_line is not None and high_line is not None and low_line > high_line:
        raise InputError(f"low {low_line:g} is above high {high_line:g}")
    allowed = _books(books)
    try:
        ladder: dict[str, Any] = await rt.db(
            OPERATIONS["ladder"], rt.backend, rt.settings, game_date=game_date.isoformat(), player=player,
            market=market, low=low_line, high=high_line, books=allowed,
        )  # fmt: skip
    except InputError as exc:  # the query was checked: what is left is no line to price
        return error_page(request, 404, str(exc))
    return templates.TemplateResponse(
        request,
        "ladder.html",
        {
            "day": game_date.isoformat(),
            "l": ladder,
            "player": player,
            "markets": MARKETS,
            "books": books or "",
            "low": low_line,
            "high": high_line,
            "fmt": _fmt,
            "odds": _odds,
        },
    )


@router.get("/reports", response_class=HTMLResponse, name="dashboard_reports")
async def reports(request: Request) -> Response:
    folder = runtime(request).settings.reports_path
    found = (
        sorted(folder.glob("*.html"), key=lambda p: p.stat().st_mtime, reverse=True)
        if folder.is_dir()
        else []
    )
    listed = [
        {
            "name": p.name,
            "size_kb": round(p.stat().st_size / 1024),
            "modified": datetime.fromtimestamp(p.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        for p in found
        if _REPORT_NAME.match(p.name)
    ]
    return templates.TemplateResponse(request, "reports.html", {"reports": listed, "folder": folder})


@router.get("/reports/{name}", name="dashboard_report")
async def report(name: str, request: Request) -> Response:
    folder = runtime(request).settings.reports_path.resolve()
    path = (folder / name).resolve()
    if not _REPORT_NAME.match(name) or path.parent != folder or not path.is_file():
        raise ApiError(404, f"no report {name!r} in the reports folder")
    return FileResponse(path, media_type="text/html")


# -- charts ------------------------------------------------------------------------------------------------
def requests_chart(counts: dict[str, int]) -> str:
    """Requests of a batch by state, one horizontal bar each."""
    from matplotlib.ticker import MaxNLocator  # heavy: matplotlib

    with charts.figure("Requests by state", xlabel="requests", size=(5.0, 2.6)) as (fig, ax):
        states = list(REQUEST_STATES)
        values = [counts.get(s, 0) for s in states]
        if not any(values):
            charts.empty(ax, "The batch has no request.")
            return charts.svg(fig)
        bars = ax.barh(states[::-1], values[::-1], color=[STATE_COLORS[s] for s in states[::-1]])
        ax.bar_label(bars, padding=3, fontsize=8)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.15)
        return charts.svg(fig)


def reasons_chart(missing: list[dict[str, Any]]) -> str:
    """Players not predicted, by error code."""
    from matplotlib.ticker import MaxNLocator  # heavy: matplotlib

    with charts.figure("Not predicted, by reason", xlabel="players", size=(5.0, 2.6)) as (fig, ax):
        reasons: dict[str, int] = {}
        for m in missing:
            if m.get("state") not in ("skipped", "failed"):  # still pending or leased: not a reason yet
                continue
            code = str(m.get("error_code") or m.get("state"))
            reasons[code] = reasons.get(code, 0) + 1
        if not reasons:
            charts.empty(ax, "No request was skipped or failed (yet).")
            return charts.svg(fig)
        ordered = sorted(reasons.items(), key=lambda kv: kv[1])
        bars = ax.barh([k for k, _ in ordered], [v for _, v in ordered], color="#ff7f0e")
        ax.bar_label(bars, padding=3, fontsize=8)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.15)
        return charts.svg(fig)


def board_chart(rows: list[dict[str, Any]], game_date: date) -> str:
    """Prediction against the line for every row that has one, coloured by the recommended side."""
    with charts.figure(
        f"Prediction vs line, {game_date}", xlabel="line", ylabel="prediction", size=(6.2, 3.6)
    ) as (fig, ax):
        colors = {"OVER": "#2ca02c", "UNDER": "#d62728", "PASS": "#999999"}
        lined = [
            r
            for r in rows
            if isinstance(r.get("line_value"), float)
            and math.isfinite(r["line_value"])
            and isinstance(r.get("predicted_value"), float)
            and math.isfinite(r["predicted_value"])
        ]
        if not lined:
            charts.empty(
                ax, "No prediction shown has a line: nothing to compare (ingest lines for the date)."
            )
            return charts.svg(fig)
        for recommendation, colour in colors.items():
            points = [r for r in lined if r["recommendation"] == recommendation]
            if points:
                ax.scatter(
                    [r["line_value"] for r in points],
                    [r["predicted_value"] for r in points],
                    s=10,
                    color=colour,
                    alpha=0.7,
                    label=f"{recommendation} ({len(points)})",
                )
        low = min(min(r["line_value"], r["predicted_value"]) for r in lined)
        high = max(max(r["line_value"], r["predicted_value"]) for r in lined)
        ax.plot(
            [low, high], [low, high], color="#555", linewidth=0.8, linestyle="--", label="prediction = line"
        )
        charts.legend_outside(ax)
        return charts.svg(fig)
