"""The options several commands share, declared once so their names, metavars and help agree everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="PATH",
        show_default=False,
        help="DuckDB file [default: var/nbaprops.duckdb, or $NBAPROPS_DB_PATH].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
MarketsOpt = Annotated[
    str | None,
    typer.Option(
        "--markets",
        "--market",
        metavar="LIST",
        show_default=False,
        help="Comma-separated markets: points, rebounds, assists, threes, pra [default: points, or the markets setting].",
    ),
]
SystemsOpt = Annotated[
    str | None,
    typer.Option(
        "--systems",
        "--system",
        metavar="LIST",
        show_default=False,
        help="Comma-separated systems: moving_average, matchup, similarity, gbm, ensemble, minutes_rate, "
        "market_blend [default: the first five, or the systems setting].",
    ),
]
TrainDaysOpt = Annotated[
    int | None,
    typer.Option(
        min=30,
        show_default=False,
        help="Days of games a model trains on [default: 730, the train_days setting].",
    ),
]

DateOpt = Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")]
LinesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--lines",
        metavar="CSV",
        show_default=False,
        help="Lines CSV to ingest first (repeatable).",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="HTML",
        show_default=False,
        help="Write a self-contained HTML report here; a bare file name goes into the reports folder "
        "(reports_dir, default beside the database: reports/), where the dashboard's /reports lists it.",
    ),
]
FilesArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="FILE...",
        help="CSV, Parquet or JSON files (read by their extension).",
        exists=False,
    ),
]
SeasonOpt = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-YY",
        show_default=False,
        help="Season, e.g. 2025-26 [default: the current season].",
    ),
]
BooksOpt = Annotated[
    str | None,
    typer.Option(
        "--books",
        metavar="LIST",
        show_default=False,
        help="Comma-separated books you can bet at: best offers come from these only (every book still "
        "informs the fair price) [default: every book, or the books setting].",
    ),
]
