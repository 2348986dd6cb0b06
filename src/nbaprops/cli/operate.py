"""The commands that read and operate batches: ``status``, ``batches``, ``predictions``, ``consolidate``,
``finish``, ``check-stalled`` and ``cleanup-staging``.

Each runs one operation of :data:`nbaprops.service.operations.OPERATIONS` (here, or in the nbaprops process
holding the database, which answers with the same function) and prints its result.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from nbaprops.cli import render
from nbaprops.cli.boundary import errors, parse_date, settings
from nbaprops.cli.market import show_offers
from nbaprops.cli.opening import _run, _status_with_holder
from nbaprops.cli.options import BooksOpt, DateOpt, DbOpt, JsonOpt
from nbaprops.cli.render import out
from nbaprops.config import book_list
from nbaprops.exports import write_csv


def _operate_shared(db: Path | None, as_json: bool, title: str, op: str, **args: Any) -> None:
    """Run one of the operations the service shares (here or in the holder), print its result."""
    with errors(as_json):
        result = _run(settings(db), op, read_only=False, **args)
        render.emit(result, as_json, lambda: render.render_summary(title, result))


def status(
    batch_id: Annotated[
        str | None, typer.Argument(show_default=False, help="Batch id [default: the newest batch].")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """State, request counts and missing players of a batch (the newest by default)."""
    with errors(as_json):
        summary, holder_line = _status_with_holder(settings(db), batch_id)

        def show() -> None:
            if summary["batch_id"] is not None:
                shown = {k: v for k, v in summary.items() if k != "holder"}
                render.render_summary(f"Batch {summary['batch_id']}", shown)
            else:
                out.print("no batch yet", highlight=False)
            if holder_line:
                out.print(holder_line, highlight=False, soft_wrap=True)

        render.emit(summary, as_json, show)


def batches(
    date_: Annotated[
        str | None,
        typer.Option("--date", metavar="YYYY-MM-DD", show_default=False, help="Only this game date."),
    ] = None,
    state: Annotated[
        str | None, typer.Option(show_default=False, help="Only this state: running, complete, partial.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many batches.")] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List batches, newest first."""
    with errors(as_json):
        day = parse_date(date_) if date_ else None
        rows = _run(settings(db), "batches", game_date=day and day.isoformat(), state=state, limit=limit)[
            "batches"
        ]
        render.emit({"batches": rows}, as_json, lambda: out.print(_batches_table(rows)))


def _batches_table(rows: list[dict[str, Any]]) -> Table:
    # Fits 80 columns with whole ids (an id starts with its game date): one space between columns, the request
    # counts in four short ones, the creation time as MM-DD HH:MM. Every field: --json.
    table = Table(
        Column("batch", no_wrap=True),
        Column("kind", no_wrap=True),
        Column("state", no_wrap=True),
        *(Column(h, justify="right", no_wrap=True) for h in ("done", "skip", "fail", "open")),
        Column("created", no_wrap=True),
        title=f"{len(rows)} batch(es), newest first (times UTC; every field: --json)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
    )
    for r in rows:
        c = r["requests"]
        created = str(r["created_at"] or "")
        table.add_row(
            r["batch_id"],
            r["kind"],
            r["state"],
            str(c["done"]),
            str(c["skipped"]),
            str(c["failed"]),
            str(c["pending"] + c["leased"]),
            created[5:16].replace("T", " ") if len(created) >= 16 else created,
        )
    return table


_BOARD = (
    ("player_name", "player"),
    ("team", "team"),
    ("market", "market"),
    ("system_id", "system"),
    ("predicted_value", "prediction"),
    ("line_value", "line"),
    ("p_over", "P(over)"),
    ("recommendation", "bet"),
    ("expected_value", "EV"),
)


def predictions(
    date_: DateOpt,
    system: Annotated[str | None, typer.Option(show_default=False, help="Only this system.")] = None,
    market: Annotated[str | None, typer.Option(show_default=False, help="Only this market.")] = None,
    bets: Annotated[bool, typer.Option("--bets", help="Only rows recommending OVER or UNDER.")] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            show_default=False,
            help="At most this many rows [default: 40 in the table, all with --csv/--json].",
        ),
    ] = None,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv", help="Write CSV (every column of the main table, then the market's) to stdout."
        ),
    ] = False,
    offers: Annotated[
        bool, typer.Option("--offers", help="List every offer of the date with its fair probability and EV.")
    ] = False,
    books: BooksOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The board of a date: active predictions, best expected value first (then highest prediction), each
    lined row with its market: consensus line, fair P(over), books, and the best over and under offers.

    EV is shown for a recommended side only; a row whose system strays far from the other systems and the line
    shows "stray" as its bet and is not priced. An empty ``--bets`` board says why there is no bet."""
    with errors(as_json):
        day = parse_date(date_)
        if offers:
            return show_offers(settings(db), day, market, books, as_csv, as_json)
        table_limit = limit if limit is not None else (None if as_csv or as_json else 40)
        board = _run(
            settings(db),
            "predictions",
            game_date=day.isoformat(),
            market=market,
            system=system,
            bets_only=bets,
            limit=table_limit,
            books=book_list(books),
        )
        if as_csv:
            write_csv(sys.stdout, board["names"], board["rows"])
            return
        records = [dict(zip(board["names"], r, strict=True)) for r in board["rows"]]
        no_bets: list[str] = board.get("no_bets") or []
        payload = {
            "game_date": day.isoformat(),
            "count": len(records),
            "predictions": records,
            "no_bets": no_bets,
        }
        if as_json:
            print(board_json_text(payload))
            return
        _render_board(day, records, board["total"], bets, no_bets)


_ROW_ITEMS = ",\n      "  # between two fields of a board row, at the depth ``indent=2`` puts them


def board_json_text(payload: dict[str, Any]) -> str:
    """``json.dumps(payload, default=str, indent=2)`` of a board (what ``render.emit`` prints), the same text,
    in one pass of the C encoder where ``indent`` takes the pure-Python one (seconds on a 5,000-row board): the
    rows, flat records of numbers and text, are written with the separators their indented form has, and the
    breaks between rows put back. No raw line break occurs inside a JSON string, so ``},`` + break + ``{``
    only ever joins two rows."""
    records = payload["predictions"]
    head = json.dumps({**payload, "predictions": None}, default=str, indent=2)
    if not records or not all(records) or any(isinstance(v, dict | list) for v in records[0].values()):
        return json.dumps(payload, default=str, indent=2)  # not a board of flat rows: the plain way
    flat = json.dumps(records, default=str, separators=(_ROW_ITEMS, ": "))
    rows = (
        "[\n    {\n      "
        + flat[2:-2].replace("}" + _ROW_ITEMS + "{", "\n    },\n    {\n      ")
        + "\n    }\n  ]"
    )
    return head.replace('"predictions": null', '"predictions": ' + rows, 1)


def _render_board(
    day: date, records: list[dict[str, Any]], total: int, bets: bool, no_bets: list[str]
) -> None:
    if bets and not records:
        out.print(f"No bets for {day}.", highlight=False)
        for reason in no_bets:
            out.print(reason, markup=False, highlight=False, soft_wrap=True)
        return
    shown = f"{len(records)} of {total}" if total > len(records) else str(total)
    table = Table(
        *(label for _, label in _BOARD),
        title_justify="left",
        title=f"{shown} active prediction(s) for {day}{' (bets only)' if bets else ''}, best expected value first "
        "(the market's fair P(over) and best offers: --json, --csv, --offers)",
    )
    for r in records:
        cells = {
            c: "" if r.get(c) is None else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])
            for c, _ in _BOARD
        }
        if r.get("prediction_error_code") == "stray":  # far from the other systems and the line: not bet
            cells["recommendation"] = "stray"
        table.add_row(*(Text(cells[c]) for c, _ in _BOARD))
    out.print(table)
    if total > len(records):
        out.print(
            f"{total - len(records)} more: raise --limit, filter with --market/--system/--bets, "
            "or export with --csv."
        )


def consolidate(
    batch_id: Annotated[str, typer.Argument(help="Batch whose requests have all ended.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge a finished batch's staging into the main table and drop it (a rerun changes nothing).

    Refuses while requests are open: `nbaprops finish BATCH` ends them failed first.
    """
    _operate_shared(db, as_json, f"Batch {batch_id}", "consolidate", batch_id=batch_id)


def finish(
    batch_id: Annotated[str, typer.Argument(help="Batch to end now.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Force the end of a batch: open requests end failed, the batch ends partial and is consolidated."""
    _operate_shared(db, as_json, f"Batch {batch_id}", "finish", batch_id=batch_id)


def check_stalled(
    stall_minutes: Annotated[
        float | None,
        typer.Option(
            min=0,
            show_default=False,
            help="Leases expired this long count as stalled [default: lease_grace_seconds].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reclaim expired leases and finish batches past their deadline."""
    _operate_shared(db, as_json, "check-stalled", "check-stalled", stall_minutes=stall_minutes)


def cleanup_staging(
    older_than_hours: Annotated[
        float | None,
        typer.Option(
            min=0,
            show_default=False,
            help="Drop staging older than this many hours [default: staging_ttl_hours, 24].",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; report what would be dropped.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop staging tables older than the TTL and report what was dropped."""
    _operate_shared(
        db, as_json, "cleanup-staging", "cleanup-staging", older_than_hours=older_than_hours, dry_run=dry_run
    )


__all__ = ["batches", "check_stalled", "cleanup_staging", "consolidate", "finish", "predictions", "status"]
