"""The market's commands: ``ladder``, and ``predictions --offers`` (every offer with its fair probability and
EV). Each runs one operation of :data:`nbaprops.service.operations.OPERATIONS` (:mod:`nbaprops.pipeline.board`)
and prints it."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nbaprops.cli import render
from nbaprops.cli.boundary import errors, parse_date, settings
from nbaprops.cli.opening import _run
from nbaprops.cli.options import BooksOpt, DateOpt, DbOpt, JsonOpt
from nbaprops.cli.render import out
from nbaprops.config import book_list
from nbaprops.exports import write_csv

_COMPACT: dict[str, Any] = {
    "box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "title_justify": "left",
    "padding": (0, 0),
}  # fmt: skip
"""Fits 80 columns: one space between columns, no frame (the batches table's style)."""


def _num(value: Any, spec: str = ".2f") -> str:
    return "" if value is None else format(value, spec)


def _odds(value: Any) -> str:
    return "" if value is None else f"{value:+.0f}"


def show_offers(
    settings_: Any, day: date, market: str | None, books: str | None, as_csv: bool, as_json: bool
) -> None:
    """``predictions --offers``: every offer of the date priced, as a table, CSV or JSON."""
    result = _run(settings_, "offers", game_date=day.isoformat(), market=market, books=book_list(books))
    names, rows = result["names"], result["rows"]
    if as_csv:
        write_csv(sys.stdout, names, rows)
        return
    records = [dict(zip(names, r, strict=True)) for r in rows]
    render.emit(
        {"game_date": day.isoformat(), "count": len(records), "offers": records},
        as_json,
        lambda: _offers_table(day, records),
    )


def _offers_table(day: date, records: list[dict[str, Any]]) -> None:
    table = Table(
        "player", "market", "book", "line", "over", "under", "fair", "EV o", "EV u", "bet", **_COMPACT,
        title=f"{len(records)} offer(s) for {day}: fair P(over) at each line, EV per unit, bet: eligible "
        "(every field: --json)",
    )  # fmt: skip
    for r in records:
        table.add_row(
            Text(str(r["player_name"])), r["market"], Text(str(r["bookmaker"])), _num(r["line"], "g"), _odds(r["over_price"]),
            _odds(r["under_price"]), _num(r["fair_p_over"], ".3f"),
            _num(r["ev_over"], "+.2f"), _num(r["ev_under"], "+.2f"),
            "outlier" if r["outlier"] else "yes" if r["eligible"] else "no",
        )  # fmt: skip
    out.print(table)


def ladder(
    date_: DateOpt,
    player: Annotated[
        str, typer.Option("--player", metavar="NAME", help="Player name (any spelling a book uses).")
    ],
    market: Annotated[
        str, typer.Option("--market", metavar="MARKET", help="points, rebounds, assists, threes or pra.")
    ],
    low: Annotated[
        float | None, typer.Option(show_default=False, help="Lowest line [default: the consensus line - 5].")
    ] = None,
    high: Annotated[
        float | None, typer.Option(show_default=False, help="Highest line [default: the consensus line + 5].")
    ] = None,
    books: BooksOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fair probability and fair American odds of one player-market at every half-point line, against every
    offer posted at those lines (book, prices, EV per unit)."""
    with errors(as_json):
        day = parse_date(date_)
        result = _run(
            settings(db), "ladder", game_date=day.isoformat(), player=player, market=market, low=low,
            high=high, books=book_list(books),
        )  # fmt: skip
        render.emit(result, as_json, lambda: _ladder_table(result))


def _ladder_table(result: dict[str, Any]) -> None:
    table = Table(
        "line", "P(over)", "P(push)", "fair o", "fair u", "book", "over", "under", "EV o", "EV u", **_COMPACT,
        title=f"{escape(str(result['player_name']))} {result['market']} on {result['game_date']}: consensus "
        f"{result['consensus_line']:g} ({result['n_books']} book(s)), fair P(over) {result['fair_p_over']:.3f}",
    )  # fmt: skip
    for rung in result["lines"]:
        fair = [_num(rung["line"], "g"), _num(rung["p_over"], ".3f"), _num(rung["p_push"], ".3f"),
                _odds(rung["fair_over_odds"]), _odds(rung["fair_under_odds"])]  # fmt: skip
        for o in rung["offers"] or [None]:
            offer = (
                ["", "", "", "", ""]
                if o is None
                else [Text(o["bookmaker"] + ("" if o["eligible"] else " (not bet)")), _odds(o["over_price"]),
                      _odds(o["under_price"]), _num(o["ev_over"], "+.2f"), _num(o["ev_under"], "+.2f")]
            )  # fmt: skip
            table.add_row(*fair, *offer)
            fair = ["", "", "", "", ""]
    out.print(table)


__all__ = ["ladder", "show_offers"]
