"""The ``nbaprops`` command line (Typer + Rich): each command parses, calls one library function, renders.

Every command takes ``--db PATH`` (default ``var/nbaprops.duckdb``, or ``NBAPROPS_DB_PATH``) and ``--json``
for one machine-readable object on stdout. Errors cross one boundary (:func:`_errors`): a known error prints
``Error: ...`` on stderr (with ``--json``: ``{"error": ..., "kind": ...}`` on stdout) and exits 1; an
unexpected one prints ``Error: internal error: ...`` and exits 2 (the traceback only with ``--debug``);
Ctrl-C stops the workers after their current chunk and exits 130.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from nbaprops import __version__, holder
from nbaprops.clock import Clock, ReplayClock, SystemClock
from nbaprops.config import DEFAULT_DB, Settings, load_settings
from nbaprops.errors import DatabaseHeldError, InputError, NbapropsError
from nbaprops.service.operations import OPERATIONS
from nbaprops.storage import open_gcp, open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.seams import Backend

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
app.add_typer(ingest_app, name="ingest")
fetch_app = typer.Typer(
    help="Fetch box scores, schedule, injury report or lines from the live services "
    "(each lands through the ingest path; a rerun asks only for what is new).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
app.add_typer(fetch_app, name="fetch")

# markup=False: what is printed is the user's text (file names, player names, install hints such as
# `pip install 'nbaprops[service]'`), never Rich markup, which would eat every [word] in it.
out = Console(markup=False)
err = Console(stderr=True, markup=False)
T = TypeVar("T")

# What the error boundary needs to know beyond the exception: --debug, and the batch a Ctrl-C interrupts.
_state: dict[str, Any] = {"debug": False, "batch_id": None, "endpoint": None}


def _doing(what: str) -> None:
    """Tell other terminals what this process, holding the database, is doing (``nbaprops status`` shows it)."""
    if _state["endpoint"] is not None:
        _state["endpoint"].doing(what)


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
    _state["debug"] = debug
    _state["as_of"] = as_of
    _state.pop("clock", None)
    if debug:
        logging.getLogger("nbaprops").setLevel(logging.DEBUG)


def _clock() -> Clock:
    """The command's clock: the wall clock, or a replay from ``--as-of`` / ``NBAPROPS_AS_OF`` (one per run)."""
    if "clock" not in _state:
        start = load_settings({"as_of": _state.get("as_of")}).as_of
        _state["clock"] = ReplayClock(start) if start is not None else SystemClock()
    clock: Clock = _state["clock"]
    return clock


def _replaying() -> bool:
    return isinstance(_clock(), ReplayClock)


def _parse_date(value: str, option: str = "--date") -> date:
    """``YYYY-MM-DD``, or TODAY / TOMORROW (US Eastern days; of the replayed instant under ``--as-of``)."""
    from nbaprops.gameday import resolve_day

    return resolve_day(value, _clock(), option)


def _split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def _emit(payload: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(payload, default=str, indent=2))
    else:
        render()


def _fail(message: str, kind: str, as_json: bool, code: int) -> typer.Exit:
    if as_json:
        print(json.dumps({"error": message, "kind": kind}))
    else:
        # The message quotes user text (a file's header, a value): never markup.
        err.print(Text.assemble(("Error:", "red"), " ", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _is_interrupt(exc: BaseException | None) -> bool:
    """Ctrl-C, also when DuckDB caught the signal inside a query and raised its own "Query interrupted"."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a cause chain can loop back on itself
        if (
            isinstance(exc, KeyboardInterrupt)
            or "query interrupted" in str(exc).lower()
            or type(exc).__name__ == "InterruptException"
        ):
            return True
        seen.add(id(exc))
        exc = exc.__cause__
    return False


@contextmanager
def _errors(as_json: bool = False) -> Iterator[None]:
    """The one error boundary of the CLI (see the module docstring)."""
    try:
        try:
            yield
        except Exception as exc:
            if _is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise
    except NbapropsError as exc:
        raise _fail(str(exc), type(exc).__name__, as_json, 1) from None
    except KeyboardInterrupt:
        batch = _state["batch_id"]
        message = (
            f"interrupted; run the same command to resume batch {batch}"
            if batch
            else "interrupted; nothing was changed that a rerun cannot redo"
        )
        # Plain writes: the interrupt may have landed inside a Rich print, whose half-flushed buffer would be
        # written again by the next Rich print.
        if as_json:
            sys.stdout.write(json.dumps({"error": message, "kind": "Interrupted", "batch_id": batch}) + "\n")
        else:
            sys.stderr.write(message + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        # The database is closed by now; skip interpreter teardown, where DuckDB's bindings report every
        # object a killed frame still held (dozens of "nanobind: leaked" lines that say nothing to a user).
        os._exit(130)
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:
        if _state["debug"]:
            raise
        raise _fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            "InternalError",
            as_json,
            2,
        ) from None


def _report_path(report: Path, settings: Settings) -> Path:
    """Where ``--report`` writes: a bare file name (``report.html``) into the reports folder, which the
    dashboard's ``/reports`` lists (README's ``--report report.html`` never appeared there); a path as given."""
    if report.is_absolute() or report.parent != Path("."):
        return report
    settings.reports_path.mkdir(parents=True, exist_ok=True)
    return settings.reports_path / report.name


def _settings(db: Path | None, **overrides: Any) -> Settings:
    return load_settings({"db_path": db, **overrides})


@contextmanager
def _storage(
    settings: Settings, *, read_only: bool = False, answer: bool = True, opened: DuckDBStorage | None = None
) -> Iterator[DuckDBStorage]:
    """Open the database (``opened``: already opened by :func:`_open_waiting`). Opened for writing, the process
    answers other commands' operations on it (``answer=False``: the caller does, on the backend it builds over
    the file)."""
    storage = opened if opened is not None else _open_waiting(settings, read_only=read_only)
    assert not isinstance(storage, holder.Answered)  # no work to hand over: opened here, or raised
    try:
        if read_only or not answer:
            yield storage
        else:  # while this process holds the file, it answers the reads of other nbaprops commands
            with holder.answer_reads(
                settings.db_path, holder=_command_path(), commands=holder.bind(OPERATIONS, storage, settings)
            ) as holding:
                _state["endpoint"] = holding
                try:
                    yield storage
                finally:
                    _state["endpoint"] = None
    finally:
        storage.close()


def _announce_new_store(settings: Settings) -> None:
    """Say that a new database is being created, and refuse one whose folder does not exist (as sqlite3 does).

    A mistyped ``--db typo/dir/nb.duckdb`` used to create the folders, load every shipped box score and train,
    silently. Only the default ``var/nbaprops.duckdb`` gets its folder created.
    """
    path = settings.db_path
    if path.exists():
        return
    if not path.parent.is_dir() and path != DEFAULT_DB:
        raise InputError(
            f"no folder {path.parent} for a new database at {path}; create the folder first, or fix --db "
            "(NBAPROPS_DB_PATH)"
        )
    err.print(f"creating a new database at {path}", highlight=False, soft_wrap=True)


@contextmanager
def _backend(
    settings: Settings,
    *,
    read_only: bool = False,
    on_upload: Callable[[dict[str, int]], None] | None = None,
    opened: DuckDBStorage | None = None,
) -> Iterator[Backend]:
    """The seams a command runs on: the database file itself (embedded), or — ``backend = "gcp"`` — Firestore,
    BigQuery and Pub/Sub, with the file as the inputs the coordinator plans from. ``on_upload`` set: the inputs
    are first uploaded to the warehouse (workers elsewhere read their history there) and reported to it.
    ``opened``: the file, already opened by :func:`_open_waiting`."""
    if settings.backend == "duckdb":
        with _storage(settings, read_only=read_only, opened=opened) as storage:
            yield storage
        return
    with _storage(settings, read_only=read_only, answer=False, opened=opened) as storage:
        backend = open_gcp(settings, features=storage)
        try:
            if on_upload is not None:
                on_upload(backend.upload_inputs())
            if read_only:
                yield backend
            else:  # other commands' reads (`status` in a second terminal) are the cloud ledger's, not the file's
                with holder.answer_reads(
                    settings.db_path,
                    holder=_command_path(),
                    commands=holder.bind(OPERATIONS, backend, settings),
                ) as holding:
                    _state["endpoint"] = holding
                    try:
                        yield backend
                    finally:
                        _state["endpoint"] = None
        finally:
            backend.close()


def _open_waiting(
    settings: Settings, *, read_only: bool, reach: Callable[[holder.Holder], Any] | None = None
) -> DuckDBStorage | holder.Answered:
    """Open the database, or hand the work to the nbaprops process holding it: the one retry loop
    (:func:`nbaprops.holder.open_or_reach`), bounded by ``lock_wait_seconds`` in all.

    A read-only command refuses a missing file instead of creating one. A second terminal's read holds the
    file for a moment; a command started in that moment waits for it instead of failing (a `predict` racing a
    `status` once failed with "database busy"). A database held by a running nbaprops command (it recorded its
    endpoint) answers ``reach``, or without it fails at once, naming that command.
    """
    if read_only and not settings.db_path.exists():
        raise InputError(
            f"no database at {settings.db_path}; run `nbaprops predict --date YYYY-MM-DD` or an "
            f"ingest to create it, or pass the right --db"
        )
    if not read_only:
        _announce_new_store(settings)
    return holder.open_or_reach(
        settings.db_path,
        lambda: open_storage(settings.db_path, read_only=read_only),
        wait_seconds=settings.lock_wait_seconds,
        reach=reach,
    )


def _command_path() -> str:
    """``nbaprops COMMAND`` of this process, to name the holder of a database to the others. (Typer vendors its
    own click, so click's context is not importable from the core install.)"""
    command = next((w for w in sys.argv[1:] if not w.startswith("-")), None)
    return f"nbaprops {command}" if command else "nbaprops"


def _run(settings: Settings, op: str, *, read_only: bool = True, **args: Any) -> Any:
    """Run one operation of :data:`nbaprops.service.operations.OPERATIONS` here, or in the nbaprops process
    holding the database (it answers for it, with the same function)."""
    opened = _open_waiting(settings, read_only=read_only, reach=lambda h: h.call(op, args))
    if isinstance(opened, holder.Answered):
        return opened.result
    with _backend(settings, read_only=read_only, opened=opened) as backend:
        return OPERATIONS[op](backend, settings, **args)


def _operate_shared(db: Path | None, as_json: bool, title: str, op: str, **args: Any) -> None:
    """Run one of the operations the service shares (here or in the holder), print its result."""
    with _errors(as_json):
        settings = _settings(db)
        result = _run(settings, op, read_only=False, **args)
        _emit(result, as_json, lambda: _render_summary(title, result))


def _operate(
    db: Path | None,
    as_json: bool,
    title: str,
    action: Callable[[DuckDBStorage, Settings], dict[str, Any]],
    *,
    read_only: bool = False,
) -> None:
    """Open the database, run one operation, print its result as a table or JSON."""
    with _errors(as_json):
        settings = _settings(db)
        with _storage(settings, read_only=read_only) as storage:
            result = action(storage, settings)
        _emit(result, as_json, lambda: _render_summary(title, result))


def _cell(value: Any) -> str:
    """A value as one short table cell: counts as ``done 464, skipped 5`` rather than JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v != 0) or "none"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "none"
    if isinstance(value, list) and all(isinstance(v, dict) and v for v in value):
        # Records (an unmatched name and its rows...): the first field, the others in brackets.
        return "; ".join(_record(v) for v in value) or "none"
    return json.dumps(value, default=str)


def _record(record: dict[str, Any]) -> str:
    first, *rest = record.items()
    details = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rest)
    return f"{first[1]} ({details})" if details else str(first[1])


def _kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():  # values quote files and feeds (names, paths): text, never markup
        table.add_row(Text(str(key)), Text(_cell(value)))
    return table


def _render_summary(title: str, result: dict[str, Any]) -> None:
    """A batch summary (or any result) as a short table: the missing players as a count and a few names."""
    shown = dict(result)
    missing = shown.pop("missing", None)
    finished = shown.pop("finished_batches", None)
    if isinstance(shown.get("drift"), dict) and not any(shown["drift"].values()):
        shown["drift"] = "none"
    if finished is not None:
        # check-stalled reports the summaries of the batches it finished, cleanup-staging their ids
        shown["finished_batches"] = (
            ", ".join(b if isinstance(b, str) else f"{b['batch_id']} ({b['state']})" for b in finished)
            or "none"
        )
    out.print(_kv_table(title, shown))
    if missing:
        by_reason: dict[str, int] = {}
        for m in missing:
            by_reason[str(m.get("error_code") or m.get("state"))] = (
                by_reason.get(str(m.get("error_code") or m.get("state")), 0) + 1
            )
        names = ", ".join(str(m.get("player_name") or m.get("player_lookup")) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1]))
        out.print(
            f"{len(missing)} player(s) not predicted ({reasons}): {names}{more}. Full list: --json.",
            soft_wrap=True,
        )


# -- predict ---------------------------------------------------------------------------------------
def _progress(as_json: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
        transient=True,
    )


@app.command()
def predict(
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")],
    lines: Annotated[
        list[Path] | None,
        typer.Option(
            "--lines", metavar="CSV", show_default=False, help="Lines CSV to ingest first (repeatable)."
        ),
    ] = None,
    markets: MarketsOpt = None,
    systems: SystemsOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=32, show_default=False, help="In-process worker threads [default: 2]."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start a new batch even if one is running for the date.")
    ] = False,
    train_days: TrainDaysOpt = None,
    recent_days: Annotated[
        int | None,
        typer.Option(
            min=1, show_default=False, help="Players active within this many days are expected [default: 21]."
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the batch of one game date end to end (resumes a running batch of that date)."""
    from nbaprops.ingest.lines import ingest_lines
    from nbaprops.pipeline.daily import run_batch
    from nbaprops.systems import validate_systems

    with _errors(as_json):
        game_date = _parse_date(date_)
        settings = _settings(
            db,
            markets=_split(markets),
            systems=_split(systems),
            workers=workers,
            train_days=train_days,
            recent_days=recent_days,
        )
        validate_systems(settings.systems)
        missing_files = [str(f) for f in lines or () if not f.is_file()]
        if missing_files:
            raise InputError(f"no such file: {', '.join(missing_files)}")
        progress = _progress(as_json)
        task: list[Any] = []

        def on_message(message: str) -> None:
            if "training on" in message:
                _doing(f"training models for {game_date}")
            err.print(message, highlight=False, soft_wrap=True)

        def on_start(batch_id: str, total: int) -> None:
            _state["batch_id"] = batch_id
            _doing(f"running batch {batch_id} for {game_date}")
            err.print(f"batch {batch_id}: {total} requests for {game_date}", highlight=False, soft_wrap=True)
            task.append(progress.add_task(f"batch {game_date}", total=total))

        def on_progress(counts: dict[str, int]) -> None:
            if task:
                progress.update(task[0], completed=counts["done"] + counts["skipped"] + counts["failed"])

        quarantined: list[dict[str, Any]] = []
        try:
            ingested = None
            if lines:  # into the inputs first (on gcp: before they are uploaded for the workers)
                with _storage(settings) as storage:
                    ingested = ingest_lines(storage, lines).as_dict()
                quarantined = ingested["quarantined"]
                if not as_json:
                    unmatched = ingested.get("unmatched") or []
                    err.print(
                        f"ingested {ingested['rows_added']} new line(s) from {len(lines)} file(s)"
                        + (f"; not matched to a player: {_cell(unmatched)}" if unmatched else ""),
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
                    for line in _quarantine_lines(quarantined):
                        err.print(line, markup=False, highlight=False, soft_wrap=True)

            def uploaded(counts: dict[str, int]) -> None:
                if not as_json:
                    err.print(
                        "inputs uploaded to the warehouse: "
                        + ", ".join(f"{t} {n}" for t, n in counts.items())
                    )

            with _backend(settings, on_upload=uploaded) as backend, progress:
                _doing(f"planning the batch for {game_date}")
                try:
                    payload = run_batch(
                        backend,
                        settings,
                        game_date,
                        force=force,
                        clock=_clock(),
                        on_message=on_message,
                        on_start=on_start,
                        on_progress=on_progress,
                    ).as_dict()
                except Exception as exc:
                    _alert_failed(settings, f"predict --date {game_date}", exc)
                    raise
            if ingested is not None:
                payload["lines_ingested"] = ingested
            _alert_batch(settings, payload)
        except (
            DatabaseHeldError
        ) as held:  # `nbaprops serve` holds the file: the batch runs (and alerts) there
            if held.holder != holder.SERVE or lines or _replaying():  # serve runs on its own clock
                raise
            with progress:
                payload = holder.submit_batch(
                    settings.db_path,
                    {
                        "game_date": game_date.isoformat(),
                        "markets": list(settings.markets),
                        "systems": list(settings.systems),
                        "force": force,
                        "train_days": settings.train_days,
                    },
                    on_message=on_message,
                    on_start=on_start,
                    on_progress=on_progress,
                )

        if lines:
            payload["lines_quarantined"] = quarantined

        def render() -> None:
            models = "; ".join(
                f"{m} through {i['trained_through']} ({i['age_days']} d old"
                f"{', trained now' if i['trained_now'] else ''})"
                for m, i in payload["models"].items()
            )
            _render_summary(
                f"Batch {payload['batch_id']}",
                {
                    "game_date": payload["game_date"],
                    "state": payload["state"] + (" (resumed)" if payload["resumed"] else ""),
                    "games": f"{payload['games']} ({', '.join(f'{k} {v}' for k, v in payload['games_source'].items())})",
                    **{
                        k: payload[k]
                        for k in (
                            "requests",
                            "active_predictions",
                            "by_system",
                            "recommendations",
                            "lines_used",
                        )
                    },
                    "models": models,
                    "staging_tables_left": payload["staging_tables_left"],
                    "drift": payload["drift"],
                    "duration_s": round(payload["duration_s"], 2),
                    "missing": payload["missing"],
                },
            )
            for market, info in payload["models"].items():
                for sid, reason in (info.get("no_bets") or {}).items():
                    out.print(f"{market} {sid}: no bets — {reason}", highlight=False, soft_wrap=True)
            out.print(f"See the board: nbaprops predictions --date {payload['game_date']} --bets")

        _emit(payload, as_json, render)


# -- train -----------------------------------------------------------------------------------------
@app.command()
def train(
    through: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="Train on games before this date.")],
    markets: MarketsOpt = None,
    systems: SystemsOpt = None,
    train_days: TrainDaysOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the trainable systems on games before --through and store versioned artifacts."""
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.systems.training import save_bundle, systems_to_fit, train_market

    with _errors(as_json):
        day = _parse_date(through, "--through")
        settings = _settings(db, markets=_split(markets), systems=_split(systems), train_days=train_days)
        fit = systems_to_fit(list(settings.systems))
        results = []
        with _storage(settings) as storage:
            ensure_boxscores(storage)
            for market in settings.markets:
                with err.status(Text(f"training {market} on games before {day}…"), spinner="dots"):
                    bundle = train_market(
                        storage, market, day, system_ids=fit, train_days=settings.train_days
                    )
                path = save_bundle(bundle, settings.artifacts_dir)
                results.append({**bundle.meta, "path": str(path)})
        payload = {"artifacts": results}

        def render() -> None:
            for meta in results:
                table = Table(
                    title=f"{meta['market']}: trained on {meta['train_start']} .. {meta['through']} "
                    f"({meta['training_rows']} rows) → {meta['path']}",
                    title_justify="left",
                )
                for col in ("system", "model_version", "holdout MAE", "calibration"):
                    table.add_column(col)
                for sid, info in meta["systems"].items():
                    mae = info["holdout_mae"]
                    table.add_row(
                        sid,
                        info["model_version"],
                        "-" if mae is None else f"{mae:.3f}",
                        f"{info['calibration']['method']}: {info['calibration']['reason']}",
                    )
                out.print(table)

        _emit(payload, as_json, render)


# -- backtest --------------------------------------------------------------------------------------
@app.command()
def backtest(
    market: Annotated[
        str, typer.Option("--market", "--markets", help="points, rebounds, assists, threes or pra.")
    ] = "points",
    season: Annotated[
        str | None,
        typer.Option(show_default=False, help="A whole season, e.g. 2024-25 (or use --from/--to)."),
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="YYYY-MM-DD", show_default=False, help="First game date.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="YYYY-MM-DD", show_default=False, help="Last game date.")
    ] = None,
    lines: Annotated[
        list[Path] | None,
        typer.Option(
            "--lines", metavar="CSV", show_default=False, help="Lines CSV to ingest first (repeatable)."
        ),
    ] = None,
    retrain_days: Annotated[int, typer.Option(min=1, help="Game days between retrainings.")] = 7,
    train_days: TrainDaysOpt = None,
    systems: SystemsOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="HTML",
            show_default=False,
            help="Write a self-contained HTML report here; a bare file name goes into the reports folder "
            "(reports_dir, default beside the database: reports/), where the dashboard's /reports lists it.",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk-forward backtest: retrain on the past only, predict each game day as the batch would, grade."""
    from nbaprops.backtest import (
        calibration_summary,
        compute_metrics,
        cumulative_profit,
        run_backtest,
        season_range,
        write_report,
    )
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import ingest_lines
    from nbaprops.markets import validate_market

    with _errors(as_json):
        validate_market(market)
        if (season is None) == (from_ is None and to is None):
            raise InputError("give either --season or --from and --to")
        if season is None and (from_ is None or to is None):
            raise InputError("--from and --to go together")
        missing = [str(f) for f in lines or () if not f.is_file()]
        if missing:
            raise InputError(f"no such file: {', '.join(missing)}")
        settings = _settings(db, systems=_split(systems), train_days=train_days)
        with _storage(settings) as storage:
            ensure_boxscores(storage)
            if lines:
                ingest_lines(storage, lines)
            if season is not None:
                start, end = season_range(storage, season)
            else:
                assert from_ is not None and to is not None
                start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
            if end < start:
                raise InputError(f"--to {end} is before --from {start}")
            progress = _progress(as_json)
            with progress:
                task = progress.add_task(f"backtest {market}", total=None)

                def on_step(k: int, n: int, day: date) -> None:
                    progress.update(task, total=n, completed=k, description=f"backtest {market} {day}")

                result = run_backtest(
                    storage,
                    settings,
                    market=market,
                    start=start,
                    end=end,
                    systems=settings.systems,
                    retrain_days=retrain_days,
                    train_days=settings.train_days,
                    on_step=on_step,
                )
        metrics = compute_metrics(result.grades)
        payload: dict[str, Any] = {
            "run_id": result.run_id,
            "market": market,
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "days": result.days,
            "steps": result.steps,
            "retrain_days": retrain_days,
            "train_days": settings.train_days,
            "graded_rows": result.grades.num_rows,
            "metrics": metrics,
            "calibration": calibration_summary(result.models),
        }
        if report is not None:
            payload["report"] = str(
                write_report(_report_path(report, settings), payload, cumulative_profit(result.grades))
            )

        def render() -> None:
            def f(x: Any) -> str:
                return "-" if x is None else f"{x:.3f}"

            table = Table(
                "system",
                "n",
                "MAE",
                "RMSE",
                "w/ line",
                "MAE on them",
                "line MAE",
                "bets",
                "hit rate (95% CI)",
                "ROI",
                "ECE",
                title=f"{market} {payload['start']}..{payload['end']}: {result.days} game days, "
                f"{result.steps} models ({result.run_id})",
                title_justify="left",
            )
            for m in metrics:
                table.add_row(
                    m["system_id"],
                    str(m["n"]),
                    f(m["mae"]),
                    f(m["rmse"]),
                    str(m["n_lined"]),
                    f(m["mae_lined"]),
                    f(m["line_mae"]),
                    str(m["n_bets"]),
                    f"{f(m['hit_rate'])} ({f(m['hit_rate_ci'][0])}-{f(m['hit_rate_ci'][1])})",
                    f(m["roi"]),
                    f(m["ece"]),
                )
            out.print(table)
            for sid, cal in payload["calibration"].items():
                if cal["last"] is not None and not cal["last"]["allows_bets"]:
                    out.print(
                        f"{sid}: {cal['last']['reason']} (last step; steps by calibration: {cal['steps']})"
                    )
            if report is not None:
                out.print(f"report: {payload['report']}")

        _emit(payload, as_json, render)


# -- reads -----------------------------------------------------------------------------------------
@app.command()
def status(
    batch_id: Annotated[
        str | None, typer.Argument(show_default=False, help="Batch id [default: the newest batch].")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """State, request counts and missing players of a batch (the newest by default)."""
    with _errors(as_json):
        settings = _settings(db)
        try:
            summary = _run(settings, "status", batch_id=batch_id)
        except InputError:  # no batch yet: the process holding the file may be about to start one
            activity = holder.holder_activity(settings.db_path) if batch_id is None else None
            if activity is None or not activity.get("doing"):
                raise
            summary = {"batch_id": None, "state": "no batch yet"}
        else:
            activity = holder.holder_activity(settings.db_path) if batch_id is None else None
        if activity is not None and activity.get("doing"):
            summary["holder"] = activity
        holder_line = (
            f"{activity['holder']} (pid {activity['pid']}) is {activity['doing']}, started at {activity['since']}"
            if activity is not None and activity.get("doing")
            else None
        )

        def render() -> None:
            if summary["batch_id"] is not None:
                shown = {k: v for k, v in summary.items() if k != "holder"}
                _render_summary(f"Batch {summary['batch_id']}", shown)
            else:
                out.print("no batch yet", highlight=False)
            if holder_line:
                out.print(holder_line, highlight=False, soft_wrap=True)

        _emit(summary, as_json, render)


@app.command()
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
    with _errors(as_json):
        day = _parse_date(date_) if date_ else None
        settings = _settings(db)
        rows = _run(settings, "batches", game_date=day and day.isoformat(), state=state, limit=limit)[
            "batches"
        ]

        def render() -> None:
            # Fits 80 columns with whole ids (an id starts with its game date): one space between columns,
            # the request counts in four short ones, the creation time as MM-DD HH:MM. Every field: --json.
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
            out.print(table)

        _emit({"batches": rows}, as_json, render)


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


@app.command()
def predictions(
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")],
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
        bool, typer.Option("--csv", help="Write CSV (every column of the main table) to stdout.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The board of a date: active predictions, best expected value first (then highest prediction).

    EV is shown for a recommended side only; a row whose system strays far from the other systems and the line
    shows "stray" as its bet and is not priced. An empty ``--bets`` board says why there is no bet."""
    with _errors(as_json):
        day = _parse_date(date_)
        settings = _settings(db)
        table_limit = limit if limit is not None else (None if as_csv or as_json else 40)
        board = _run(
            settings,
            "predictions",
            game_date=day.isoformat(),
            market=market,
            system=system,
            bets_only=bets,
            limit=table_limit,
        )
        names, rows, total = board["names"], board["rows"], board["total"]
        no_bets: list[str] = board.get("no_bets") or []
        if as_csv:
            from nbaprops.exports import write_csv

            write_csv(sys.stdout, names, rows)
            return
        records = [dict(zip(names, r, strict=True)) for r in rows]

        def render() -> None:
            if bets and not records:
                out.print(f"No bets for {day}.", highlight=False)
                for reason in no_bets:
                    out.print(reason, markup=False, highlight=False, soft_wrap=True)
                return
            shown = f"{len(records)} of {total}" if total > len(records) else str(total)
            table = Table(
                *(label for _, label in _BOARD),
                title_justify="left",
                title=f"{shown} active prediction(s) for {day}{' (bets only)' if bets else ''}, "
                f"best expected value first",
            )
            for r in records:
                cells = {
                    c: "" if r[c] is None else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])
                    for c, _ in _BOARD
                }
                if (
                    r.get("prediction_error_code") == "stray"
                ):  # far from the other systems and the line: not bet
                    cells["recommendation"] = "stray"
                table.add_row(*(cells[c] for c, _ in _BOARD))
            out.print(table)
            if total > len(records):
                out.print(
                    f"{total - len(records)} more: raise --limit, filter with --market/--system/--bets, "
                    "or export with --csv."
                )

        _emit(
            {"game_date": day.isoformat(), "count": len(records), "predictions": records, "no_bets": no_bets},
            as_json,
            render,
        )


# -- operations ------------------------------------------------------------------------------------
@app.command()
def consolidate(
    batch_id: Annotated[str, typer.Argument(help="Batch whose requests have all ended.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge a finished batch's staging into the main table and drop it (a rerun changes nothing).

    Refuses while requests are open: `nbaprops finish BATCH` ends them failed first.
    """
    _operate_shared(db, as_json, f"Batch {batch_id}", "consolidate", batch_id=batch_id)


@app.command()
def finish(
    batch_id: Annotated[str, typer.Argument(help="Batch to end now.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Force the end of a batch: open requests end failed, the batch ends partial and is consolidated."""
    _operate_shared(db, as_json, f"Batch {batch_id}", "finish", batch_id=batch_id)


@app.command("check-stalled")
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


@app.command("cleanup-staging")
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


# -- serve -----------------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(show_default=False, help="Address to listen on [default: 127.0.0.1, the host setting]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, show_default=False, help="Port [default: 8080, the port setting]."),
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"url": ..., "db": ...} on stdout once listening (errors as JSON too).'
        ),
    ] = False,
) -> None:
    """Serve the /v1 API, the dashboard and /metrics over HTTP; batches run in this process (docs/service.md).

    Without an API key (NBAPROPS_API_KEYS) it only listens on loopback. SIGTERM stops it cleanly; running
    batches resume at the next start.
    """
    with _errors(as_json):
        settings = _settings(db, host=host, port=port)
        try:
            from nbaprops.service.server import serve as run_server
        except ImportError as exc:
            raise InputError(
                f"nbaprops serve needs the service extra ({exc.name} is missing): "
                "pip install 'nbaprops[service]'"
            ) from None
        _announce_new_store(settings)
        logging.getLogger("nbaprops").setLevel(logging.INFO)

        def on_ready(url: str) -> None:
            if as_json:
                print(json.dumps({"url": url, "db": str(settings.db_path)}), flush=True)
            else:
                err.print(
                    f"serving {settings.db_path} at {url} (dashboard /, API /docs); Ctrl-C or SIGTERM stops",
                    highlight=False,
                    soft_wrap=True,
                )

        run_server(settings, on_ready=on_ready)


# -- worker (gcp) ------------------------------------------------------------------------------------
@app.command()
def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Chunks handled at once by this process.")] = 1,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            min=0,
            show_default=False,
            help="Exit after this many seconds without a message [default: run until SIGTERM or Ctrl-C].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull work from Pub/Sub and predict it (backend gcp; run as many as you like, anywhere; docs/cloud.md).

    Each message is a chunk of a batch's players: the worker claims them in the Firestore ledger, builds their
    features with DuckDB from the history it loads from BigQuery, predicts with the models in data_dir, loads
    the rows into the batch's staging table and completes the requests, then acknowledges. SIGTERM or Ctrl-C:
    the current chunk finishes, nothing more is pulled.
    """
    with _errors(as_json):
        settings = _settings(db)
        if settings.backend != "gcp":
            raise InputError(
                "nbaprops worker pulls work from Pub/Sub (backend gcp); on the embedded backend the workers "
                "run inside `nbaprops predict` and `nbaprops serve` (set NBAPROPS_BACKEND=gcp, docs/cloud.md)"
            )
        from nbaprops.pipeline.queue_worker import run_queue_workers

        logging.getLogger("nbaprops").setLevel(logging.INFO)
        backend = open_gcp(settings)
        try:
            if not as_json:
                err.print(
                    f"worker pulling {backend.names.subscription_path} ({threads} thread(s)); Ctrl-C or SIGTERM stops"
                )
            stats = run_queue_workers(backend, settings, threads=threads, idle_exit=idle_exit)
        finally:
            backend.close()
        result = {
            "chunks": sum(s.chunks for s in stats),
            "committed": sum(s.committed for s in stats),
            "lost": sum(s.lost for s in stats),
            "rows_staged": sum(s.rows_staged for s in stats),
            "transient_errors": sum(s.transient_errors for s in stats),
        }
        _emit(result, as_json, lambda: _render_summary("worker", result))


# -- after the predictions: grade, accuracy, refresh, invalidate, picks -----------------------------
def _alert_batch(settings: Settings, summary: dict[str, Any]) -> None:
    from nbaprops.alerts import batch_alert

    batch_alert(settings, summary)


def _alert_failed(settings: Settings, what: str, exc: BaseException) -> None:
    """``fetch_failed`` when a live source failed, else ``batch_failed`` (never for Ctrl-C)."""
    from nbaprops.alerts import send_alert
    from nbaprops.errors import SourceError, SourceUnavailableError

    if _is_interrupt(exc) or isinstance(exc, KeyboardInterrupt):
        return
    event = "fetch_failed" if isinstance(exc, SourceError | SourceUnavailableError) else "batch_failed"
    send_alert(
        settings,
        event,
        f"{what} failed: {type(exc).__name__}: {exc}",
        {"batch_id": _state["batch_id"], "error": str(exc), "kind": type(exc).__name__},
    )


def _f3(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def _f2(x: Any, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None, ci: list[float | None] | None = None) -> str:
    """``56% (49-63)``: a proportion or ROI with its interval, in percent."""
    if x is None:
        return "-"
    if not ci or ci[0] is None or ci[1] is None:
        return f"{x:.0%}"
    return f"{x:.0%} ({ci[0] * 100:.0f}..{ci[1] * 100:.0f})"


@app.command()
def grade(
    date_: Annotated[
        str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date whose box scores are stored.")
    ],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade every current prediction of a past date (run_id live); idempotent, regrades only what changed.

    Void when the player did not play or the row was invalidated; profit at the offered price. Posts the
    day's hit rate and ROI per system to the webhook, when one is set.
    """
    from nbaprops.alerts import grade_summary_alert
    from nbaprops.grading import accuracy, grade_date

    with _errors(as_json):
        day = _parse_date(date_)
        settings = _settings(db)
        with _backend(settings) as backend:
            result = grade_date(backend, day, clock=_clock()).as_dict()
            metrics = accuracy(backend.features, since=day, until=day)["metrics"]
        grade_summary_alert(settings, day.isoformat(), metrics)
        payload = {**result, "metrics": metrics}

        def render() -> None:
            out.print(_kv_table(f"Graded {day}", result))
            table = Table(
                "system",
                "market",
                "n",
                "MAE",
                "line MAE",
                "bets",
                "hit rate",
                "ROI",
                title=f"{day}: accuracy",
                title_justify="left",
            )
            for m in metrics:
                table.add_row(
                    m["system_id"],
                    m["market"],
                    str(m["n"]),
                    _f3(m["mae"]),
                    _f3(m["line_mae"]),
                    str(m["n_bets"]),
                    _f3(m["hit_rate"]),
                    _f3(m["roi"]),
                )
            out.print(table)

        _emit(payload, as_json, render)


@app.command()
def accuracy(
    since: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD", show_default=False, help="First game date [default: the first graded]."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD", show_default=False, help="Last game date [default: the last graded]."
        ),
    ] = None,
    market: Annotated[str | None, typer.Option(show_default=False, help="Only this market.")] = None,
    system: Annotated[str | None, typer.Option(show_default=False, help="Only this system.")] = None,
    window: Annotated[int, typer.Option(min=1, help="Days of the rolling figures.")] = 7,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="HTML",
            show_default=False,
            help="Write a self-contained HTML report here; a bare file name goes into the reports folder "
            "(reports_dir, default beside the database: reports/), where the dashboard's /reports lists it.",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy of the graded live predictions per system and market: the backtest's metrics, and day by day."""
    from nbaprops.backtest import write_report
    from nbaprops.grading import accuracy as live_accuracy

    with _errors(as_json):
        first = _parse_date(since, "--since") if since else None
        last = _parse_date(until, "--until") if until else None
        settings = _settings(db)
        with _storage(settings, read_only=True) as storage:
            payload = live_accuracy(
                storage, since=first, until=last, market=market, system=system, window=window
            )
        curves = payload.pop("cumulative_profit")
        if report is not None:
            payload["report"] = str(
                write_report(
                    _report_path(report, settings),
                    {
                        **payload,
                        "market": market or "all markets",
                        "heading": "Live accuracy",
                        "description": f"Live grades (run_id live) of {payload['days']} game day(s); "
                        "players who did not play or were ruled out voided.",
                    },
                    curves,
                )
            )

        def render() -> None:
            table = Table(
                "system",
                "market",
                "n",
                "void",
                "MAE",
                "lined: MAE/line",
                "bets",
                "hit rate",
                "ROI",
                "ECE",
                title=f"live {payload['start']}..{payload['end']}: {payload['days']} game day(s)",
                title_justify="left",
            )
            for m in payload["metrics"]:
                lined = f"{_f2(m['mae_lined'])}/{_f2(m['line_mae'])} ({m['n_lined']})"
                table.add_row(
                    m["system_id"],
                    m["market"],
                    str(m["n"]),
                    str(m["void"]),
                    _f2(m["mae"]),
                    lined,
                    str(m["n_bets"]),
                    _pct(m["hit_rate"], m["hit_rate_ci"]),
                    _pct(m["roi"], m["roi_ci"]),
                    _f2(m["ece"], 3),
                )
            out.print(table)
            daily = Table(
                "date",
                "system",
                "n",
                "MAE",
                "bets",
                "hit",
                "ROI",
                f"MAE {window}d",
                f"hit {window}d",
                f"ROI {window}d",
                title="day by day",
                title_justify="left",
            )
            for d in payload["daily"]:
                r = d[f"rolling_{window}d"]
                daily.add_row(
                    d["game_date"],
                    f"{d['system_id']} {d['market']}",
                    str(d["n"]),
                    _f2(d["mae"]),
                    str(d["n_bets"]),
                    _pct(d["hit_rate"]),
                    _pct(d["roi"]),
                    _f2(r["mae"]),
                    _pct(r["hit_rate"]),
                    _pct(r["roi"]),
                )
            out.print(daily)
            if report is not None:
                out.print(f"report: {payload['report']}")

        _emit(payload, as_json, render)


@app.command()
def refresh(
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            show_default=False,
            help="Line move that re-predicts a player [default: 1.0, the refresh_threshold setting].",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-predict only the players whose line moved (or who got a first line) in a line_update batch.

    Ingest the new lines first (`nbaprops ingest lines`). Started games are never re-predicted.
    """
    from nbaprops.pipeline.refresh import refresh as run_refresh

    with _errors(as_json):
        day = _parse_date(date_)
        settings = _settings(db)
        with _backend(settings) as backend:
            try:
                result = run_refresh(
                    backend,
                    settings,
                    day,
                    threshold=threshold,
                    clock=_clock(),
                    on_message=lambda m: err.print(m, highlight=False, soft_wrap=True),
                ).as_dict()
            except Exception as exc:
                _alert_failed(settings, f"refresh --date {day}", exc)
                raise
        if result["batch"]:
            _alert_batch(settings, result["batch"])

        def render() -> None:
            table = Table(
                "player",
                "market",
                "old line",
                "new line",
                "move",
                title_justify="left",
                title=f"{len(result['moves'])} line move(s) on {day} (threshold {result['threshold']})",
            )
            for m in result["moves"]:
                table.add_row(
                    m["player_name"],
                    m["market"],
                    _f3(m["old_line"]),
                    _f3(m["new_line"]),
                    "first line" if m["first_line"] else f"{m['move']:+.1f}",
                )
            out.print(table)
            for skip in result["not_repredicted"]:
                out.print(f"not re-predicted: {skip['player_lookup']} ({skip['reason']})")
            batch = result["batch"]
            if batch:
                out.print(
                    f"batch {batch['batch_id']} (line_update): {batch['state']}, "
                    f"{batch['active_predictions']} active row(s) replaced or added"
                )
            else:
                out.print("no batch: nobody to re-predict")

        _emit(result, as_json, render)


@app.command()
def invalidate(
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deactivate predictions of postponed games and of players ruled out after they were predicted (idempotent)."""
    from nbaprops.pipeline.invalidate import invalidate as run_invalidate

    with _errors(as_json):
        day = _parse_date(date_)
        settings = _settings(db)
        with _backend(settings) as backend:
            result = run_invalidate(backend, day, clock=_clock()).as_dict()
        _emit(result, as_json, lambda: _render_summary(f"invalidate {day}", result))


_PICKS = (
    ("player_name", "player"),
    ("market", "market"),
    ("recommendation", "bet"),
    ("line_value", "line"),
    ("price", "price"),
    ("p_win", "P(win)"),
    ("expected_value", "EV"),
    ("stake", "stake"),
)


@app.command()
def picks(
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date.")],
    system: Annotated[str, typer.Option(help="System whose bets are picked.")] = "ensemble",
    market: Annotated[str | None, typer.Option(show_default=False, help="Only this market.")] = None,
    min_ev: Annotated[float, typer.Option(help="Least expected profit per unit.")] = 0.0,
    bankroll: Annotated[
        float | None,
        typer.Option(show_default=False, help="Units to stake from [default: 100, the bankroll setting]."),
    ] = None,
    correlated: Annotated[
        bool,
        typer.Option("--correlated", help="Allow one pick per player and market (default: one per player)."),
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The night's bets by expected value, staked by fractional Kelly with caps per bet and per night."""
    from nbaprops.picks import picks as night_picks

    with _errors(as_json):
        day = _parse_date(date_)
        settings = _settings(db)
        with _backend(settings, read_only=True) as backend:
            result = night_picks(
                backend,
                settings,
                day,
                system=system,
                market=market,
                min_ev=min_ev,
                bankroll=bankroll,
                correlated=correlated,
            )
        if as_csv:
            from nbaprops.exports import write_csv

            names = list(result["picks"][0]) if result["picks"] else [c for c, _ in _PICKS]
            write_csv(sys.stdout, names, ([pick.get(n) for n in names] for pick in result["picks"]))
            return

        def render() -> None:
            if not result["picks"]:
                out.print(f"No picks of {system} for {day}.", markup=False, highlight=False)
                for reason in result["no_bets"]:
                    out.print(reason, markup=False, highlight=False, soft_wrap=True)
                return
            table = Table(
                *(label for _, label in _PICKS),
                title_justify="left",
                title=f"{result['count']} pick(s) of {system} for {day}: {result['staked']:.2f} of "
                f"{result['bankroll']:.2f} units staked (cap {result['max_bet']:.2f} a bet, "
                f"{result['max_night']:.2f} a night)",
            )
            for p in result["picks"]:
                table.add_row(
                    *(
                        "" if p[c] is None else f"{p[c]:.2f}" if isinstance(p[c], float) else str(p[c])
                        for c, _ in _PICKS
                    )
                )
            out.print(table)
            if result["dropped_night_cap"]:
                out.print(
                    f"{result['dropped_night_cap']} more bet(s) left out: the nightly cap of "
                    f"{result['max_night']:.2f} units was reached.",
                    markup=False,
                    highlight=False,
                )
            if result["dropped_correlated"]:
                out.print(
                    f"{result['dropped_correlated']} more bet(s) left out: one pick per player "
                    "(--correlated allows one per player and market).",
                    markup=False,
                    highlight=False,
                )
            sources = sorted(
                {(p["batch_id"], p["train_start"], p["trained_through"]) for p in result["picks"]}
            )
            for batch_id, train_start, through in sources:
                out.print(
                    f"from batch {batch_id}, model trained on {train_start or '?'} .. {through or '?'}",
                    highlight=False,
                )

        _emit(result, as_json, render)


# -- ingest ----------------------------------------------------------------------------------------
FilesArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="FILE...", help="CSV, Parquet or JSON files (read by their extension).", exists=False
    ),
]


def _quarantine_lines(quarantined: list[dict[str, Any]]) -> list[str]:
    """One line per quarantined prop line: who, what, where, and why it is not priced."""
    return [
        f"quarantined (never priced or bet): {q['player_name']} {q['market']} {q['line']:g} at {q['bookmaker']} "
        f"on {q['game_date']} — {q['reason']}"
        for q in quarantined
    ]


def _ingest(kind: str, files: list[Path], db: Path | None, as_json: bool, run: Callable[..., Any]) -> None:
    from nbaprops.ingest import ensure_boxscores

    with _errors(as_json):
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise InputError(f"no such file: {', '.join(missing)}")
        folders = [str(f) for f in files if f.is_dir()]
        if folders:
            raise InputError(f"a folder, not a file: {', '.join(folders)}")
        settings = _settings(db)
        with _storage(settings) as storage:
            ensure_boxscores(storage)
            report = run(storage, files).as_dict()

        def render() -> None:
            quarantined = report.get("quarantined")
            shown = report if quarantined is None else {**report, "quarantined": len(quarantined)}
            out.print(_kv_table(f"ingest {kind}", shown))
            for line in _quarantine_lines(quarantined or []):
                out.print(line, markup=False, highlight=False, soft_wrap=True)

        _emit(report, as_json, render)


@ingest_app.command("boxscores")
def ingest_boxscores_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add games in NBA.com LeagueGameLog (player) CSV format."""
    from nbaprops.ingest import ingest_boxscores

    _ingest("boxscores", files, db, as_json, ingest_boxscores)


@ingest_app.command("lines")
def ingest_lines_cmd(
    files: FilesArg,
    market: Annotated[
        str | None, typer.Option(show_default=False, help="Market of files without a market column.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add sportsbook lines (our CSV columns or the common odds-API spellings)."""
    from nbaprops.ingest.lines import ingest_lines

    _ingest("lines", files, db, as_json, lambda s, f: ingest_lines(s, f, market=market))


@ingest_app.command("schedule")
def ingest_schedule_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add scheduled games (game_date, home_team, away_team, optional game_id, commence_time)."""
    from nbaprops.ingest.schedule import ingest_schedule

    _ingest("schedule", files, db, as_json, ingest_schedule)


@ingest_app.command("injuries")
def ingest_injuries_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add injury-report snapshots (the official report's columns plus Report Time)."""
    from nbaprops.ingest.injuries import ingest_injuries

    _ingest("injuries", files, db, as_json, ingest_injuries)


# -- fetch -----------------------------------------------------------------------------------------
SeasonOpt = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-YY", show_default=False, help="Season, e.g. 2025-26 [default: the current season]."
    ),
]


def _fetch(kind: str, db: Path | None, as_json: bool, run: Callable[[DuckDBStorage, Settings], Any]) -> None:
    from nbaprops.ingest import ensure_boxscores

    with _errors(as_json):
        if _replaying():
            raise InputError(
                f"fetch {kind} asks the live service for what it has now; --as-of replays what is stored "
                "(drop --as-of / NBAPROPS_AS_OF to fetch)"
            )
        settings = _settings(db)
        with _storage(settings) as storage:
            ensure_boxscores(storage)
            try:
                report = run(storage, settings).as_dict()
            except Exception as exc:
                _alert_failed(settings, f"fetch {kind}", exc)
                raise
        _emit(report, as_json, lambda: out.print(_kv_table(f"fetch {kind}", report)))


def _season(season: str | None) -> str:
    from nbaprops.sources import eastern_date, season_of

    return season or season_of(eastern_date(_clock()))


@fetch_app.command("boxscores")
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
    from nbaprops.sources.nba_stats import fetch_boxscores

    _fetch(
        "boxscores",
        db,
        as_json,
        lambda storage, settings: fetch_boxscores(
            storage,
            settings,
            season=_season(season),
            clock=SystemClock(),
            since=_parse_date(since, "--since") if since else None,
            until=_parse_date(until, "--until") if until else None,
        ),
    )


@fetch_app.command("schedule")
def fetch_schedule_cmd(season: SeasonOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The league schedule from NBA.com: games, tip-off times, postponements."""
    from nbaprops.sources.nba_stats import fetch_schedule

    _fetch(
        "schedule",
        db,
        as_json,
        lambda storage, settings: fetch_schedule(
            storage, settings, season=_season(season), clock=SystemClock()
        ),
    )


@fetch_app.command("injuries")
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
    from datetime import datetime

    from nbaprops.sources.injury_report import fetch_injuries

    def run(storage: DuckDBStorage, settings: Settings) -> Any:
        when = None
        if at is not None:
            try:
                when = datetime.fromisoformat(at)
            except ValueError:
                raise InputError(f"--at {at!r} is not a time; use ISO 8601, e.g. 2025-02-12T17:00") from None
        return fetch_injuries(
            storage, settings, clock=SystemClock(), at=when, game_date=_parse_date(date_) if date_ else None
        )

    _fetch("injuries", db, as_json, run)


@fetch_app.command("lines")
def fetch_lines_cmd(
    date_: Annotated[
        str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date (or TODAY, TOMORROW).")
    ],
    markets: MarketsOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every book's player-prop lines from The Odds API v4 (needs NBAPROPS_ODDS_API_KEY)."""
    from nbaprops.markets import MARKETS, validate_markets
    from nbaprops.sources.odds_api import fetch_lines

    _fetch(
        "lines",
        db,
        as_json,
        lambda storage, settings: fetch_lines(
            storage,
            settings,
            game_date=_parse_date(date_),
            clock=SystemClock(),
            markets=validate_markets(_split(markets) or ()) if markets else tuple(MARKETS),
        ),
    )


# -- daily -----------------------------------------------------------------------------------------
@app.command()
def daily(
    date_: Annotated[
        str, typer.Option("--date", metavar="YYYY-MM-DD", help="Game date (or TODAY, TOMORROW; US Eastern).")
    ] = "TODAY",
    markets: MarketsOpt = None,
    systems: SystemsOpt = None,
    train_days: TrainDaysOpt = None,
    no_fetch: Annotated[
        bool, typer.Option("--no-fetch", help="Predict from what is stored; ask no service.")
    ] = False,
    best: Annotated[int, typer.Option(min=1, help="Best bets to show.")] = 10,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The game day in one command: fetch, retrain if stale, predict, summary and best bets (safe to rerun)."""
    from nbaprops.gameday import run_day

    with _errors(as_json):
        game_date = _parse_date(date_)
        if _replaying() and not no_fetch:
            raise InputError(
                "daily --as-of replays what is stored: add --no-fetch (fetching asks the live services for what "
                "they have now)"
            )
        settings = _settings(db, markets=_split(markets), systems=_split(systems), train_days=train_days)
        with _backend(settings) as backend:
            _doing(f"running the game day {game_date}")
            progress = _progress(as_json)
            task: list[Any] = []
            with progress:

                def on_start(batch_id: str, total: int) -> None:
                    _state["batch_id"] = batch_id
                    _doing(f"running batch {batch_id} for {game_date}")
                    task.append(progress.add_task(f"batch {game_date}", total=total))

                def on_progress(counts: dict[str, int]) -> None:
                    if task:
                        progress.update(
                            task[0], completed=counts["done"] + counts["skipped"] + counts["failed"]
                        )

                def say(message: str) -> None:
                    if "training on" in message:
                        _doing(f"training models for {game_date}")
                    if not as_json:
                        err.print(message, highlight=False)

                try:
                    run = run_day(
                        backend,
                        settings,
                        game_date,
                        fetch=not no_fetch,
                        best=best,
                        clock=_clock(),
                        on_message=say,
                        on_start=on_start,
                        on_progress=on_progress,
                    )
                except Exception as exc:
                    _alert_failed(settings, f"daily --date {game_date}", exc)
                    raise
        payload = run.as_dict()
        if run.outcome == "predicted" and run.batch is not None:
            _alert_batch(settings, run.batch)

        def render() -> None:
            out.print(f"{game_date}: {run.message}", highlight=False)
            if run.batch is not None:
                b = run.batch
                shown: dict[str, Any] = {
                    k: b[k]
                    for k in ("batch_id", "state", "requests", "active_predictions", "recommendations")
                    if k in b
                }
                if "injuries" in b:
                    shown["injury report"] = (
                        b["injuries"].get("report_at") or "none before the prediction time"
                    )
                if "models" in b:
                    shown["models"] = "; ".join(
                        f"{m} trained {i['train_start']}..{i['trained_through']}"
                        f"{' (trained now)' if i['trained_now'] else ''}"
                        for m, i in b["models"].items()
                    )
                _render_summary(f"Batch {b['batch_id']}", {**shown, "missing": b.get("missing", [])})
            if run.best_bets:
                table = Table(
                    "player",
                    "team",
                    "market",
                    "bet",
                    "line",
                    "book",
                    "price",
                    "predicted",
                    "P(win)",
                    "EV",
                    "injury",
                    title="Best bets",
                    title_justify="left",
                )
                for bet in run.best_bets:
                    price = bet["over_price"] if bet["recommendation"] == "OVER" else bet["under_price"]
                    table.add_row(
                        str(bet["player_name"]),
                        f"{bet['team']} v {bet['opponent']}",
                        bet["market"],
                        bet["recommendation"],
                        f"{bet['line_value']:g}",
                        str(bet["sportsbook"]),
                        "" if price is None else f"{price:+.0f}",
                        f"{bet['predicted_value']:.1f}",
                        f"{bet['confidence_score']:.2f}" if bet["confidence_score"] is not None else "",
                        f"{bet['expected_value']:+.3f}" if bet["expected_value"] is not None else "",
                        bet["injury_status"] or "",
                    )
                out.print(table)
            elif run.batch is not None:
                out.print("No bet clears the expected-value margin tonight.")
                for market, info in run.batch.get("models", {}).items():
                    for sid, reason in info.get("no_bets", {}).items():
                        out.print(f"{market} {sid}: no bets — {reason}", highlight=False, soft_wrap=True)

        _emit(payload, as_json, render)


# -- gcp: the one-off set-up of a Google Cloud deployment (docs/cloud.md) ------------------------------------
gcp_app = typer.Typer(
    help="Backend gcp: create a deployment's Pub/Sub and BigQuery resources once (processes never create them).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
app.add_typer(gcp_app, name="gcp")


@gcp_app.command("setup")
def gcp_setup(
    location: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Location of the BigQuery dataset when it is created (e.g. US, EU, us-central1) "
            "[default: BigQuery's, US].",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the work topic, the dead-letter topic, their subscriptions (with the dead-letter policy), the
    BigQuery dataset and its main and input tables, from the settings (gcp_project, pubsub_topic,
    bigquery_dataset…); print what was created. Idempotent: what exists is left as it is.

    Run it once per deployment with an account allowed to create them (roles/pubsub.editor and
    roles/bigquery.user). `predict`, `worker` and `serve` only check at start that what they use exists, and
    name what is missing; their accounts need no role that creates (docs/cloud.md).
    """
    with _errors(as_json):
        from nbaprops.storage import setup_gcp

        settings = _settings(None)
        created = setup_gcp(settings, location=location)
        result = {"project": settings.gcp_project, "created": created}

        def render() -> None:
            for item in created:
                out.print(f"created {item}", markup=False, highlight=False, soft_wrap=True)
            if not created:
                out.print(
                    f"nothing to create in project {settings.gcp_project}: every topic, subscription, dataset "
                    "and table exists",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )

        _emit(result, as_json, render)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    finally:
        # The command has ended and said so: a Ctrl-C now would only kill the interpreter's teardown (exit -2,
        # no message), after the work it could have stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
