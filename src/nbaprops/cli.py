"""The ``nbaprops`` command line (Typer + Rich).

Every command takes ``--db PATH`` (default ``var/nbaprops.duckdb``, or ``NBAPROPS_DB_PATH``) and ``--json``
for one machine-readable object on stdout. A known error prints ``Error: ...`` on stderr and exits 1.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nbaprops.clock import SystemClock
from nbaprops.config import Settings, load_settings
from nbaprops.errors import InputError, NbapropsError
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

app = typer.Typer(help="Daily NBA player prop predictions on one DuckDB file.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
ingest_app = typer.Typer(help="Add box scores, sportsbook lines or schedules (atomic, idempotent).",
                         no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: var/nbaprops.duckdb, or $NBAPROPS_DB_PATH).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _parse_date(value: str, option: str = "--date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def _emit(payload: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(payload, default=str, indent=2))
    else:
        render()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except NbapropsError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _settings(db: Path | None, **overrides: Any) -> Settings:
    return load_settings({"db_path": db, **overrides})


@contextmanager
def _storage(settings: Settings, *, read_only: bool = False) -> Iterator[DuckDBStorage]:
    if read_only and not settings.db_path.exists():
        raise InputError(f"database {settings.db_path} does not exist yet; run `nbaprops predict` or an ingest first")
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    storage = open_storage(settings.db_path, read_only=read_only)
    try:
        yield storage
    finally:
        storage.close()


def _operate(db: Path | None, as_json: bool, title: str, action: Callable[[DuckDBStorage, Settings], dict[str, Any]]
             ) -> None:
    """Open the database, run one operation, print its result as a table or JSON."""
    with _errors():
        settings = _settings(db)
        with _storage(settings) as storage:
            storage.ensure_schema()
            result = action(storage, settings)
        _emit(result, as_json, lambda: out.print(_kv_table(title, result)))


def _kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():
        table.add_row(str(key), value if isinstance(value, str) else json.dumps(value, default=str))
    return table


# -- predict ---------------------------------------------------------------------------------------
@app.command()
def predict(
    date_: Annotated[str, typer.Option("--date", help="Game date, YYYY-MM-DD.")],
    lines: Annotated[list[Path] | None, typer.Option("--lines", help="Lines CSV to ingest first (repeatable).")] = None,
    markets: Annotated[str | None, typer.Option(help="Comma-separated markets: points,rebounds,assists,threes,pra.")] = None,
    systems: Annotated[str | None, typer.Option(help="Comma-separated systems (default: all five).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=32, help="In-process worker threads.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start a new batch even if one is running for the date.")] = False,
    train_days: Annotated[int, typer.Option(min=30, help="Training window when models must be trained first.")] = 730,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the batch of one game date end to end (resumes a running batch of that date)."""
    from nbaprops.ingest.lines import ingest_lines
    from nbaprops.pipeline.predict import check_markets, run_batch
    from nbaprops.systems.training import systems_to_fit

    with _errors():
        game_date = _parse_date(date_)
        settings = _settings(db, markets=_split(markets), systems=_split(systems), workers=workers)
        check_markets(settings.markets)
        systems_to_fit(list(settings.systems))
        with _storage(settings) as storage:
            if lines:
                report = ingest_lines(storage, lines)
                if not as_json:
                    err.print(f"ingested {report.rows_added} new line(s) from {len(lines)} file(s)")
            progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err, disable=as_json, transient=True)
            task: list[Any] = []
            with progress:
                def on_start(total: int) -> None:
                    task.append(progress.add_task(f"batch {game_date}", total=total))

                def on_progress(counts: dict[str, int]) -> None:
                    if task:
                        progress.update(task[0], completed=counts["done"] + counts["skipped"] + counts["failed"])

                result = run_batch(storage, settings, game_date, force=force, train_days=train_days,
                                   on_message=lambda m: err.print(m), on_start=on_start, on_progress=on_progress)
        payload = result.as_dict()

        def render() -> None:
            s = result.summary
            out.print(_kv_table(f"Batch {s.batch_id}", {
                "game_date": s.game_date.isoformat(), "state": s.state, "games": f"{result.games} ({result.games_source})",
                "requests": s.requests, "predictions_staged": s.predictions_staged,
                "active_predictions": s.active_predictions, "by_system": s.by_system,
                "recommendations": s.recommendations, "lines_used": result.lines_used,
                "staging_tables_left": s.staging_tables_left, "drift": s.drift,
                "duration_s": round(s.duration_s, 2),
            }))
            if s.missing:
                out.print(f"{len(s.missing)} player(s) not predicted (see `nbaprops status {s.batch_id} --json`).")

        _emit(payload, as_json, render)


# -- train -----------------------------------------------------------------------------------------
@app.command()
def train(
    through: Annotated[str, typer.Option(help="Train on games before this date, YYYY-MM-DD.")],
    markets: Annotated[str | None, typer.Option(help="Comma-separated markets.")] = None,
    systems: Annotated[str | None, typer.Option(help="Comma-separated systems (default: all five).")] = None,
    train_days: Annotated[int, typer.Option(min=30, help="Days of games before --through to train on.")] = 730,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the trainable systems on games before --through and store versioned artifacts."""
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.pipeline.predict import check_markets
    from nbaprops.systems.training import save_bundle, systems_to_fit, train_market

    with _errors():
        day = _parse_date(through, "--through")
        settings = _settings(db, markets=_split(markets), systems=_split(systems))
        results = []
        with _storage(settings) as storage:
            ensure_boxscores(storage)
            for market in check_markets(settings.markets):
                with err.status(f"training {market} on games before {day}…", spinner="dots"):
                    bundle = train_market(storage, market, day, system_ids=systems_to_fit(list(settings.systems)),
                                          train_days=train_days)
                path = save_bundle(bundle, settings.artifacts_dir)
                results.append({**bundle.meta, "path": str(path)})
        payload = {"artifacts": results}

        def render() -> None:
            for meta in results:
                table = Table(title=f"{meta['market']}: trained on {meta['train_start']} .. {meta['through']} "
                                    f"({meta['training_rows']} rows) → {meta['path']}", title_justify="left")
                for col in ("system", "model_version", "holdout MAE", "calibration"):
                    table.add_column(col)
                for sid, info in meta["systems"].items():
                    mae = info["holdout_mae"]
                    table.add_row(sid, info["model_version"], "-" if mae is None else f"{mae:.3f}",
                                  f"{info['calibration']['method']}: {info['calibration']['reason']}")
                out.print(table)

        _emit(payload, as_json, render)


# -- backtest --------------------------------------------------------------------------------------
@app.command()
def backtest(
    market: Annotated[str, typer.Option(help="points, rebounds, assists, threes or pra.")] = "points",
    season: Annotated[str | None, typer.Option(help="A whole season, e.g. 2024-25 (or use --from/--to).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First game date, YYYY-MM-DD.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last game date, YYYY-MM-DD.")] = None,
    lines: Annotated[list[Path] | None, typer.Option("--lines", help="Lines CSV to ingest first (repeatable).")] = None,
    retrain_days: Annotated[int, typer.Option(min=1, help="Game days between retrainings.")] = 7,
    train_days: Annotated[int, typer.Option(min=30, help="Days of games each model trains on.")] = 730,
    systems: Annotated[str | None, typer.Option(help="Comma-separated systems (default: all five).")] = None,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
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
    from nbaprops.ingest.lines import ingest_lines

    with _errors():
        if (season is None) == (from_ is None and to is None):
            raise InputError("give either --season or --from and --to")
        if season is None and (from_ is None or to is None):
            raise InputError("--from and --to go together")
        settings = _settings(db, systems=_split(systems))
        with _storage(settings) as storage:
            from nbaprops.ingest import ensure_boxscores

            ensure_boxscores(storage)
            if lines:
                missing = [str(f) for f in lines if not f.is_file()]
                if missing:
                    raise InputError(f"no such file: {', '.join(missing)}")
                ingest_lines(storage, lines)
            if season is not None:
                start, end = season_range(storage, season)
            else:
                assert from_ is not None and to is not None
                start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
            if end < start:
                raise InputError(f"--to {end} is before --from {start}")
            progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err, disable=as_json, transient=True)
            with progress:
                task = progress.add_task(f"backtest {market}", total=None)

                def on_step(k: int, n: int, day: date) -> None:
                    progress.update(task, total=n, completed=k, description=f"backtest {market} {day}")

                result = run_backtest(storage, settings, market=market, start=start, end=end,
                                      systems=settings.systems, retrain_days=retrain_days, train_days=train_days,
                                      on_step=on_step)
        metrics = compute_metrics(result.grades)
        payload: dict[str, Any] = {
            "run_id": result.run_id, "market": market, "start": result.start.isoformat(),
            "end": result.end.isoformat(), "days": result.days, "steps": result.steps,
            "retrain_days": retrain_days, "train_days": train_days, "graded_rows": result.grades.num_rows,
            "metrics": metrics, "calibration": calibration_summary(result.models),
        }
        if report is not None:
            payload["report"] = str(write_report(report, payload, cumulative_profit(result.grades)))

        def render() -> None:
            def f(x: Any) -> str:
                return "-" if x is None else f"{x:.3f}"

            table = Table("system", "n", "MAE", "RMSE", "w/ line", "MAE on them", "line MAE", "bets",
                          "hit rate (95% CI)", "ROI", "ECE",
                          title=f"{market} {payload['start']}..{payload['end']}: {result.days} game days, "
                                f"{result.steps} models ({result.run_id})", title_justify="left")
            for m in metrics:
                table.add_row(m["system_id"], str(m["n"]), f(m["mae"]), f(m["rmse"]), str(m["n_lined"]),
                              f(m["mae_lined"]), f(m["line_mae"]), str(m["n_bets"]),
                              f"{f(m['hit_rate'])} ({f(m['hit_rate_ci'][0])}-{f(m['hit_rate_ci'][1])})",
                              f(m["roi"]), f(m["ece"]))
            out.print(table)
            for sid, cal in payload["calibration"].items():
                if cal["last"] is not None and not cal["last"]["allows_bets"]:
                    out.print(f"{sid}: {cal['last']['reason']} (last step; steps by calibration: {cal['steps']})")
            if report is not None:
                out.print(f"report: {payload['report']}")

        _emit(payload, as_json, render)


# -- operations ------------------------------------------------------------------------------------
@app.command()
def status(
    batch_id: Annotated[str | None, typer.Argument(help="Batch id (default: the newest batch).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """State, request counts and missing players of a batch."""
    from nbaprops.pipeline import Coordinator, ledger

    with _errors():
        settings = _settings(db)
        with _storage(settings) as storage:
            storage.ensure_schema()
            if batch_id is None:
                batches = ledger.list_batches(storage)
                if not batches:
                    raise InputError("no batch yet; run `nbaprops predict --date YYYY-MM-DD`")
                batch_id = batches[0].batch_id
            summary = Coordinator(storage, settings).summary(batch_id).as_dict()
        _emit(summary, as_json, lambda: out.print(_kv_table(f"Batch {batch_id}", summary)))


@app.command()
def batches(
    date_: Annotated[str | None, typer.Option("--date", help="Only this game date.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List batches, newest first."""
    from nbaprops.pipeline import ledger

    with _errors():
        day = _parse_date(date_) if date_ else None
        settings = _settings(db)
        with _storage(settings) as storage:
            storage.ensure_schema()
            rows: list[dict[str, Any]] = []
            for info in ledger.list_batches(storage, game_date=day):
                rows.append({"batch_id": info.batch_id, "game_date": info.game_date.isoformat(), "state": info.state,
                             "requests": ledger.progress(storage, info.batch_id),
                             "created_at": info.created_at.isoformat(timespec="seconds"),
                             "consolidated_at": info.consolidated_at.isoformat(timespec="seconds")
                             if info.consolidated_at else None})

        def render() -> None:
            table = Table("batch_id", "game_date", "state", "done", "skipped", "failed", "open", "created_at")
            for r in rows:
                c = r["requests"]
                table.add_row(r["batch_id"], r["game_date"], r["state"], str(c["done"]), str(c["skipped"]),
                              str(c["failed"]), str(c["pending"] + c["leased"]), r["created_at"])
            out.print(table)

        _emit({"batches": rows}, as_json, render)


@app.command()
def predictions(
    date_: Annotated[str, typer.Option("--date", help="Game date, YYYY-MM-DD.")],
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    market: Annotated[str | None, typer.Option(help="Only this market.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV (every column of the main table) to stdout.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Active predictions of a date (the main table's columns)."""
    with _errors():
        day = _parse_date(date_)
        settings = _settings(db)
        with _storage(settings) as storage:
            storage.ensure_schema()
            cur = storage.execute(
                """SELECT * FROM player_prop_predictions WHERE game_date = ? AND is_active
                     AND (? IS NULL OR system_id = ?) AND (? IS NULL OR market = ?)
                   ORDER BY market, system_id, player_lookup""",
                [day, system, system, market, market],
            )
            names = [d[0] for d in cur.description or ()]
            rows = cur.fetchall()
        if as_csv:
            writer = csv.writer(sys.stdout)
            writer.writerow(names)
            writer.writerows(rows)
            return
        records = [dict(zip(names, r, strict=True)) for r in rows]

        def render() -> None:
            show = ("player_name", "team", "opponent", "market", "system_id", "predicted_value", "line_value",
                    "recommendation", "confidence_score")
            table = Table(*show, title=f"{len(records)} active prediction(s) for {day}", title_justify="left")
            for r in records:
                table.add_row(*("" if r[c] is None else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])
                                for c in show))
            out.print(table)

        _emit({"game_date": day.isoformat(), "count": len(records), "predictions": records}, as_json, render)


@app.command()
def consolidate(
    batch_id: Annotated[str, typer.Argument(help="Batch to consolidate (ends its open requests failed).")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Force-complete a batch: end open requests `failed`, merge staging, drop it (a rerun changes nothing)."""
    from nbaprops.pipeline import Coordinator

    _operate(db, as_json, f"Batch {batch_id}",
             lambda storage, settings: Coordinator(storage, settings).finish(batch_id, force_partial=True).as_dict())


@app.command("check-stalled")
def check_stalled(
    stall_minutes: Annotated[float | None, typer.Option(min=0, help="Leases expired this long count as stalled.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reclaim expired leases and finish batches past their deadline."""
    from nbaprops.pipeline import Coordinator

    _operate(db, as_json, "check-stalled",
             lambda storage, settings: Coordinator(storage, settings).check_stalled(stall_minutes=stall_minutes))


@app.command("cleanup-staging")
def cleanup_staging(
    older_than_hours: Annotated[float | None, typer.Option(min=0, help="Drop staging older than this many hours (default: staging_ttl_hours, 24).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop staging tables older than the TTL and report what was dropped."""
    from nbaprops.pipeline import cleanup_staging as cleanup

    def action(storage: DuckDBStorage, settings: Settings) -> dict[str, Any]:
        hours = settings.staging_ttl_hours if older_than_hours is None else older_than_hours
        return cleanup(storage, older_than_hours=hours, clock=SystemClock()).as_dict()

    _operate(db, as_json, "cleanup-staging", action)


# -- ingest ----------------------------------------------------------------------------------------
FilesArg = Annotated[list[Path], typer.Argument(help="CSV files.", exists=False)]


def _ingest(kind: str, files: list[Path], db: Path | None, as_json: bool, run: Callable[..., Any]) -> None:
    with _errors():
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise InputError(f"no such file: {', '.join(missing)}")
        settings = _settings(db)
        with _storage(settings) as storage:
            from nbaprops.ingest import ensure_boxscores

            ensure_boxscores(storage)
            report = run(storage, files).as_dict()
        _emit(report, as_json, lambda: out.print(_kv_table(f"ingest {kind}", report)))


@ingest_app.command("boxscores")
def ingest_boxscores_cmd(files: FilesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Add games in NBA.com LeagueGameLog (player) CSV format."""
    from nbaprops.ingest import ingest_boxscores

    _ingest("boxscores", files, db, as_json, ingest_boxscores)


@ingest_app.command("lines")
def ingest_lines_cmd(
    files: FilesArg,
    market: Annotated[str | None, typer.Option(help="Market of files without a market column.")] = None,
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
