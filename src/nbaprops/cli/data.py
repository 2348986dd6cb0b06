"""The commands that bring data in: ``ingest KIND FILE...`` and ``fetch KIND``.

An ingest runs the kind's loader over the user's files (:mod:`nbaprops.ingest`); a fetch asks the kind's live
service (:func:`nbaprops.sources.fetch.fetch`, which alerts when the source fails). Both land through the same
validated, atomic, idempotent path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nbaprops.cli import render
from nbaprops.cli.boundary import errors, parse_date, replaying, settings, split
from nbaprops.cli.opening import _storage
from nbaprops.cli.options import DbOpt, FilesArg, JsonOpt, MarketsOpt, SeasonOpt
from nbaprops.cli.render import out
from nbaprops.clock import EASTERN, SystemClock
from nbaprops.errors import InputError
from nbaprops.ingest import ensure_boxscores, ingest_boxscores
from nbaprops.ingest.injuries import ingest_injuries
from nbaprops.ingest.lines import ingest_lines
from nbaprops.ingest.schedule import ingest_schedule
from nbaprops.markets import validate_markets

if TYPE_CHECKING:
    from nbaprops.sources.fetch import FetchKind


# -- ingest ----------------------------------------------------------------------------------------
def _ingest(kind: str, files: list[Path], db: Path | None, as_json: bool, run: Callable[..., Any]) -> None:
    with errors(as_json):
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise InputError(f"no such file: {', '.join(missing)}")
        folders = [str(f) for f in files if f.is_dir()]
        if folders:
            raise InputError(f"a folder, not a file: {', '.join(folders)}")
        with _storage(settings(db)) as storage:
            ensure_boxscores(storage)
            report = run(storage, files).as_dict()

        def show() -> None:
            quarantined = report.get("quarantined")
            shown = report if quarantined is None else {**report, "quarantined": len(quarantined)}
            out.print(render.kv_table(f"ingest {kind}", shown))
            for line in render.quarantine_lines(quarantined or []):
                out.print(line, markup=False, highlight=False, soft_wrap=True)

        render.emit(report, as_json, show)


def ingest_boxscores_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add games in NBA.com LeagueGameLog (player) CSV format."""
    _ingest("boxscores", files, db, as_json, ingest_boxscores)


def ingest_lines_cmd(
    files: FilesArg,
    market: Annotated[
        str | None, typer.Option(show_default=False, help="Market of files without a market column.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add sportsbook lines (our CSV columns or the common odds-API spellings)."""
    _ingest("lines", files, db, as_json, lambda s, f: ingest_lines(s, f, market=market))


def ingest_schedule_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add scheduled games (game_date, home_team, away_team, optional game_id, commence_time)."""
    _ingest("schedule", files, db, as_json, ingest_schedule)


def ingest_injuries_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add injury-report snapshots (the official report's columns plus Report Time)."""
    _ingest("injuries", files, db, as_json, ingest_injuries)


# -- fetch -----------------------------------------------------------------------------------------
def _fetch(kind: FetchKind, db: Path | None, as_json: bool, **options: Any) -> None:
    from nbaprops.sources.fetch import fetch  # heavy: the live sources' HTTP client (httpx)

    with errors(as_json):
        if replaying():
            raise InputError(
                f"fetch {kind} asks the live service for what it has now; --as-of replays what is stored "
                "(drop --as-of / NBAPROPS_AS_OF to fetch)"
            )
        current = settings(db)
        with _storage(current) as storage:
            report = fetch(kind, storage, current, clock=SystemClock(), **options).as_dict()
        render.emit(report, as_json, lambda: out.print(render.kv_table(f"fetch {kind}", report)))


def fetch_boxscores_cmd(
    season: SeasonOpt = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            show_default=False,
            help="Ask from this date on [default: the day after the last one stored].",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            show_default=False,
            help="Ask through this date [default: yesterday, US Eastern].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Player box scores from NBA.com (LeagueGameLog, player mode), only the days not stored yet."""
    with errors(as_json):
        first = parse_date(since, "--since") if since else None
        last = parse_date(until, "--until") if until else None
    _fetch("boxscores", db, as_json, season=season, since=first, until=last)


def fetch_schedule_cmd(season: SeasonOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The league schedule from NBA.com: games, tip-off times, postponements."""
    _fetch("schedule", db, as_json, season=season)


def fetch_injuries_cmd(
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            show_default=False,
            help="Game date the report is for [default: today].",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            show_default=False,
            help="Newest report at or before this time, ISO 8601 (no zone: US "
            "Eastern) [default: now, or 7 pm ET of a past --date].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The NBA's official injury report (PDF, parsed by nbainjuries with tabula-java)."""
    with errors(as_json):
        when = _moment(at)
        game_date = parse_date(date_) if date_ else None
    _fetch("injuries", db, as_json, at=when, game_date=game_date)


def _moment(at: str | None, *, eastern: bool = False) -> datetime | None:
    """``--at`` as a time (None when not given); ``eastern``: a time without a zone is US Eastern."""
    if at is None:
        return None
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise InputError(f"--at {at!r} is not a time; use ISO 8601, e.g. 2025-02-12T17:00") from None
    return when.replace(tzinfo=EASTERN) if eastern and when.tzinfo is None else when


def fetch_lines_cmd(
    date_: Annotated[
        str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date (or TODAY, TOMORROW).")
    ],
    markets: MarketsOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            show_default=False,
            help="The historical snapshot at or before this time, ISO 8601 (no zone: US Eastern); paid "
            "plans only [default: the live lines].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every book's player-prop lines (and alternate lines) from The Odds API v4, in the odds_regions setting's
    regions (needs NBAPROPS_ODDS_API_KEY). Each fetch adds to the line history the close is read from."""
    with errors(as_json):
        game_date = parse_date(date_)
        chosen = validate_markets(split(markets) or ()) if markets else None
        when = _moment(at, eastern=True)
    _fetch("lines", db, as_json, game_date=game_date, markets=tuple(chosen) if chosen else None, at=when)


__all__ = [
    "fetch_boxscores_cmd",
    "fetch_injuries_cmd",
    "fetch_lines_cmd",
    "fetch_schedule_cmd",
    "ingest_boxscores_cmd",
    "ingest_injuries_cmd",
    "ingest_lines_cmd",
    "ingest_schedule_cmd",
]
