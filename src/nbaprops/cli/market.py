"""The market's commands: ``ladder``, ``picks`` (the night's bets at the best offers), and ``predictions --offers``
(every offer with its fair probability and EV). Each runs one operation of :data:`nbaprops.service.operations.OPERATIONS` (:mod:`nbaprops.pipeline.board`)
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
from nbaprops.cli.boundary import clock, errors, parse_date, settings
from nbaprops.cli.opening import _backend, _run
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


_PICKS = (
    ("player_name", "player"),
    ("market", "mkt"),
    ("side", "bet"),
    ("bookmaker", "book"),
    ("line", "line"),
    ("price", "price"),
    ("p_win", "P(win)"),
    ("fair_p", "fair"),
    ("ev", "EV"),
    ("stake", "stake"),
    ("sized_by", "sized"),
    ("cut_by", "cut by"),
    ("line_move", "moved"),
)


def picks(
    date_: DateOpt,
    system: Annotated[str, typer.Option(help="System whose bets are picked.")] = "ensemble",
    market: Annotated[str | None, typer.Option(show_default=False, help="Only this market.")] = None,
    min_ev: Annotated[
        float,
        typer.Option(help="Least expected profit per unit at the offer (never below the ev_margin setting)."),
    ] = 0.0,
    bankroll: Annotated[
        float | None,
        typer.Option(show_default=False, help="Units to stake from [default: 100, the bankroll setting]."),
    ] = None,
    correlated: Annotated[
        bool,
        typer.Option("--correlated", help="Allow one pick per player and market (default: one per player)."),
    ] = False,
    books: BooksOpt = None,
    record: Annotated[
        bool, typer.Option("--record", help="Record the picks and their offers in pick_log (once a night).")
    ] = False,
    logged: Annotated[
        bool,
        typer.Option(
            "--logged",
            help="List the picks recorded for the date instead: their close and CLV, or line move.",
        ),
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The night's bets, each at the best-EV offer of your books, staked by fractional Kelly at that price with
    caps per bet, team, game and night (cut by: the cap that cut it)."""
    from nbaprops.picks import (
        picks as night_picks,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        day = parse_date(date_)
        current = settings(db)
        if logged:
            show_logged(current, day, system, market, as_csv, as_json)
            return
        with _backend(current, read_only=not record) as backend:
            result = night_picks(
                backend, current, day, system=system, market=market, min_ev=min_ev, bankroll=bankroll,
                correlated=correlated, books=book_list(books), record=record, made_at=clock().now(),
            )  # fmt: skip
        if as_csv:
            names = list(result["picks"][0]) if result["picks"] else [c for c, _ in _PICKS]
            write_csv(sys.stdout, names, ([pick.get(n) for n in names] for pick in result["picks"]))
            return
        render.emit(result, as_json, lambda: _render_picks(result, system, day))


_PICK_FORMATS = {
    "line": "g", "price": "+.0f", "p_win": ".3f", "fair_p": ".3f", "ev": "+.3f", "line_move": "+g",
    "close_line": "g", "book_close_line": "g", "clv_line": "+.2f", "clv_prob": "+.3f", "consensus_line": "g",
}  # fmt: skip


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    return format(value, _PICK_FORMATS.get(column, ".2f")) if isinstance(value, float) else str(value)


def _render_picks(result: dict[str, Any], system: str, day: date) -> None:
    if not result["picks"]:
        out.print(f"No picks of {system} for {day}.", markup=False, highlight=False)
        for reason in result["no_bets"]:
            out.print(reason, markup=False, highlight=False, soft_wrap=True)
        return
    books = ", ".join(result["books"]) or "every book"
    # the line's move only when a snapshot says one (a file without tip-offs has none): the table fits 80 columns
    moved = any(p["line_move"] is not None for p in result["picks"])
    columns = [(c, label) for c, label in _PICKS if c != "line_move" or moved]
    table = Table(
        *(label for _, label in columns),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
        title_justify="left",
        title=f"{result['count']} pick(s) of {system} for {day} at {books}: {result['staked']:.2f} of "
        f"{result['bankroll']:.2f} units staked (caps {result['max_bet']:.2f} a bet, {result['max_team']:.2f} a "
        f"team, {result['max_game']:.2f} a game, {result['max_night']:.2f} a night)",
    )
    for p in result["picks"]:
        table.add_row(
            *(
                Text(_cell(c, p[c]) + ("!" if c == "line_move" and p["moved_against"] else ""))
                for c, _ in columns
            )
        )
    out.print(table)
    if any(p["moved_against"] for p in result["picks"]):
        out.print(
            "!: the consensus line has moved against the pick by more than clv_moved_against since the system "
            "priced it (withdraw_moved_against withdraws such picks).",
            markup=False,
            highlight=False,
        )
    left_out = {
        "dropped_no_offer": "no offer of your books they could take",
        "dropped_below_margin": f"no offer with an EV of at least {result['ev_margin']:g}",
        "dropped_team_cap": f"the team cap of {result['max_team']:.2f} units was spent",
        "dropped_game_cap": f"the game cap of {result['max_game']:.2f} units was spent",
        "dropped_night_cap": f"the nightly cap of {result['max_night']:.2f} units was reached",
        "dropped_joint": "sized with the game's other picks, Kelly staked nothing on them",
        "dropped_correlated": "one pick per player (--correlated allows one per player and market)",
        "dropped_withdrawn": "their recorded pick was withdrawn (below)",
        "dropped_moved_against": "the line moved against them before tip-off (withdraw_moved_against)",
    }
    for key, why in left_out.items():
        if result.get(key):
            out.print(f"{result[key]} more bet(s) left out: {why}.", markup=False, highlight=False)
    if "recorded" in result:
        out.print(
            f"pick_log: {result['recorded']} recorded, {result['already_recorded']} already recorded tonight "
            "(the first record stands).",
            markup=False,
            highlight=False,
        )
    for w in result["withdrawn"]:
        out.print(
            f"withdrawn at {w['withdrawn_at']}: {w['player_name'] or w['player_lookup']} {w['market']} {w['side']} "
            f"{w['line']:g} at {w['bookmaker']} — {w['withdrawn_reason']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    sources = sorted({(p["batch_id"], p["train_start"], p["trained_through"]) for p in result["picks"]})
    for batch_id, train_start, through in sources:
        out.print(
            f"from batch {batch_id}, model trained on {train_start or '?'} .. {through or '?'}",
            highlight=False,
        )


_LOGGED = (
    ("player_name", "player"),
    ("market", "mkt"),
    ("side", "bet"),
    ("bookmaker", "book"),
    ("line", "line"),
    ("price", "price"),
    ("stake", "stake"),
    ("status", "status"),
    ("line_move", "moved"),
    ("close_line", "close"),
    ("book_close_line", "book close"),
    ("clv_line", "CLV line"),
    ("clv_prob", "CLV P"),
)


def show_logged(
    settings_: Any, day: date, system: str, market: str | None, as_csv: bool, as_json: bool
) -> None:
    """``picks --logged``: the recorded picks of the date with their close and CLV (or their line move)."""
    from nbaprops.picks import (
        recorded_picks,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with _backend(settings_, read_only=True) as backend:
        result = recorded_picks(
            backend.features, settings_, day, system=system, market=market, now=clock().now()
        )
    if as_csv:
        names = list(result["picks"][0]) if result["picks"] else [c for c, _ in _LOGGED]
        write_csv(sys.stdout, names, ([pick.get(n) for n in names] for pick in result["picks"]))
        return
    render.emit(result, as_json, lambda: _logged_table(result))


def _logged_table(result: dict[str, Any]) -> None:
    if not result["picks"]:
        out.print(
            f"No recorded pick of {result['system_id']} for {result['game_date']} (picks --record records them).",
            markup=False,
            highlight=False,
        )
        return
    table = Table(
        *(label for _, label in _LOGGED), **_COMPACT,
        title=f"{result['count']} recorded pick(s) of {result['system_id']} for {result['game_date']}: close and "
        "CLV once tipped off (CLV P: closing fair P(win) - break-even of the price taken), else the line's move",
    )  # fmt: skip
    for p in result["picks"]:
        table.add_row(*(Text(_cell(c, p[c])) for c, _ in _LOGGED))
    out.print(table)
    for p in result["picks"]:
        if p["status"] == "withdrawn":
            out.print(f"{p['player_name'] or p['player_lookup']}: withdrawn at {p['withdrawn_at']}: "
                      f"{p['withdrawn_reason']}", markup=False, highlight=False, soft_wrap=True)  # fmt: skip


__all__ = ["ladder", "picks", "show_logged", "show_offers"]
