"""The Typer app: its global options, its command groups, and the table of every command in the order ``--help``
lists them. The commands live one module per group (:mod:`~nbaprops.cli.batch`, :mod:`~nbaprops.cli.operate`,
:mod:`~nbaprops.cli.evaluate`, :mod:`~nbaprops.cli.data`, :mod:`~nbaprops.cli.serving`)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Annotated

import typer

from nbaprops import __version__
from nbaprops.cli import batch, data, evaluate, market, operate, serving
from nbaprops.cli.boundary import state

_CONTEXT = {"help_option_names": ["--help", "-h"], "show_default": True}
app = typer.Typer(
    help="Daily NBA player prop predictions on one DuckDB file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
ingest_app = typer.Typer(
    help="Add box scores, sportsbook lines or schedules (atomic, idempotent).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
fetch_app = typer.Typer(
    help="Fetch box scores, schedule, injury report or lines from the live services "
    "(each lands through the ingest path; a rerun asks only for what is new).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
gcp_app = typer.Typer(
    help="Backend gcp: create a deployment's Pub/Sub and BigQuery resources once (processes never create them).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(fetch_app, name="fetch")
app.add_typer(gcp_app, name="gcp")

# Commands in the order --help lists them (then the groups); one table per group.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("predict", batch.predict),
    ("train", evaluate.train),
    ("backtest", evaluate.backtest),
    ("status", operate.status),
    ("batches", operate.batches),
    ("predictions", operate.predictions),
    ("ladder", market.ladder),
    ("consolidate", operate.consolidate),
    ("finish", operate.finish),
    ("check-stalled", operate.check_stalled),
    ("cleanup-staging", operate.cleanup_staging),
    ("serve", serving.serve),
    ("worker", serving.worker),
    ("grade", evaluate.grade),
    ("accuracy", evaluate.accuracy),
    ("refresh", batch.refresh),
    ("invalidate", batch.invalidate),
    ("picks", market.picks),
    ("daily", batch.daily),
)
INGEST_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("boxscores", data.ingest_boxscores_cmd),
    ("lines", data.ingest_lines_cmd),
    ("schedule", data.ingest_schedule_cmd),
    ("injuries", data.ingest_injuries_cmd),
)
FETCH_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("boxscores", data.fetch_boxscores_cmd),
    ("schedule", data.fetch_schedule_cmd),
    ("injuries", data.fetch_injuries_cmd),
    ("lines", data.fetch_lines_cmd),
)
for group, commands in (
    (app, COMMANDS),
    (ingest_app, INGEST_COMMANDS),
    (fetch_app, FETCH_COMMANDS),
    (gcp_app, (("setup", serving.gcp_setup),)),
):
    for name, command in commands:
        group.command(name)(command)


def _version(value: bool) -> None:
    if value:
        print(f"nbaprops {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="TIMESTAMP",
            show_default=False,
            help="Replay the day commands (predict, refresh, invalidate, picks, grade, daily --no-fetch) as of "
            "this instant, with a UTC offset (2024-03-12T17:00:00-05:00): data posted later stays invisible "
            "[default: now, or NBAPROPS_AS_OF].",
        ),
    ] = None,
) -> None:
    """Daily NBA player prop predictions on one DuckDB file."""
    state["debug"] = debug
    state["as_of"] = as_of
    state.pop("clock", None)
    if debug:
        logging.getLogger("nbaprops").setLevel(logging.DEBUG)


def main() -> None:
    """The ``nbaprops`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    finally:
        # The command has ended and said so: a Ctrl-C now would only kill the interpreter's teardown (exit -2,
        # no message), after the work it could have stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["app", "main"]
