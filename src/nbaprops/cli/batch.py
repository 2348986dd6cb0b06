"""The commands that run batches: ``predict``, ``daily``, ``refresh`` and ``invalidate``.

Each runs one library function (:func:`nbaprops.pipeline.run.run_batch`, :func:`nbaprops.pipeline.day.run_day`,
:func:`nbaprops.pipeline.refresh.refresh`, :func:`nbaprops.pipeline.invalidate.invalidate`), which also sends
the alerts; progress reaches the terminal through :class:`_BatchProgress`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from nbaprops.cli import render
from nbaprops.cli.boundary import clock, errors, existing_files, parse_date, replaying, settings, split, state
from nbaprops.cli.opening import _backend, _doing, _run_batch_here_or_in_serve
from nbaprops.cli.options import DateOpt, DbOpt, JsonOpt, LinesOpt, MarketsOpt, SystemsOpt, TrainDaysOpt
from nbaprops.cli.render import err, out
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.storage.seams import Backend


@dataclass
class _BatchProgress:
    """The callbacks of a batch run, shown in this terminal: a progress bar, the batch being resumable, what
    the process holding the database is doing."""

    game_date: date
    progress: Progress
    as_json: bool
    announce_start: bool = True  # `predict` says "batch ...: N requests", `daily` its own summary
    quiet: bool = False  # no message on stderr (`daily --json`; `predict --json` still says them)
    files: int = 0  # lines files given (`predict --lines`)
    task: list[Any] = field(default_factory=list)

    def on_message(self, message: str) -> None:
        if "training on" in message:
            _doing(f"training models for {self.game_date}")
        if not self.quiet:
            render.say(message)

    def on_lines(self, report: dict[str, Any]) -> None:
        if self.as_json:
            return
        unmatched = report.get("unmatched") or []
        render.say(
            f"ingested {report['rows_added']} new line(s) from {self.files} file(s)"
            + (f"; not matched to a player: {render.cell(unmatched)}" if unmatched else "")
        )
        for line in render.quarantine_lines(report["quarantined"]):
            render.say(line)

    def on_upload(self, counts: dict[str, int]) -> None:
        if not self.as_json:
            err.print("inputs uploaded to the warehouse: " + ", ".join(f"{t} {n}" for t, n in counts.items()))

    def on_start(self, batch_id: str, total: int) -> None:
        state["batch_id"] = batch_id
        _doing(f"running batch {batch_id} for {self.game_date}")
        if self.announce_start:
            render.say(f"batch {batch_id}: {total} requests for {self.game_date}")
        self.task.append(self.progress.add_task(f"batch {self.game_date}", total=total))

    def on_progress(self, counts: dict[str, int]) -> None:
        if self.task:
            ended = counts["done"] + counts["skipped"] + counts["failed"]
            self.progress.update(self.task[0], completed=ended)


def predict(
    date_: DateOpt,
    lines: LinesOpt = None,
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
    from nbaprops.systems import (
        validate_systems,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        game_date = parse_date(date_)
        current = settings(
            db,
            markets=split(markets),
            systems=split(systems),
            workers=workers,
            train_days=train_days,
            recent_days=recent_days,
        )
        validate_systems(current.systems)
        files = existing_files(lines or ())
        shown = _BatchProgress(game_date, render.progress(as_json), as_json, files=len(files))

        with shown.progress:
            payload = _run_batch_here_or_in_serve(
                current,
                game_date,
                force=force,
                has_lines=bool(lines),
                run_here=partial(_run_here, current, game_date, force, files, shown),
                on_message=shown.on_message,
                on_start=shown.on_start,
                on_progress=shown.on_progress,
            )
        render.emit(payload, as_json, lambda: _render_batch(payload))


def _run_here(
    current: Settings,
    game_date: date,
    force: bool,
    files: list[Path],
    shown: _BatchProgress,
    backend: Backend,
) -> dict[str, Any]:
    """``predict``'s batch in this process, on the backend it opened."""
    from nbaprops.pipeline.run import (
        run_batch,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    return run_batch(
        backend,
        current,
        game_date,
        force=force,
        lines=files,
        clock=clock(),
        on_message=shown.on_message,
        on_lines=shown.on_lines,
        on_start=shown.on_start,
        on_upload=shown.on_upload,
        on_progress=shown.on_progress,
    ).as_dict()


def _render_batch(payload: dict[str, Any]) -> None:
    models = "; ".join(
        f"{m} through {i['trained_through']} ({i['age_days']} d old{', trained now' if i['trained_now'] else ''})"
        for m, i in payload["models"].items()
    )
    sources = ", ".join(f"{k} {v}" for k, v in payload["games_source"].items())
    render.render_summary(
        f"Batch {payload['batch_id']}",
        {
            "game_date": payload["game_date"],
            "state": payload["state"] + (" (resumed)" if payload["resumed"] else ""),
            "games": f"{payload['games']} ({sources})",
            **{
                k: payload[k]
                for k in ("requests", "active_predictions", "by_system", "recommendations", "lines_used")
            },
            "models": models,
            "staging_tables_left": payload["staging_tables_left"],
            "drift": payload["drift"],
            "duration_s": round(payload["duration_s"], 2),
            "missing": payload["missing"],
        },
    )
    render.no_bets(payload["models"])
    out.print(f"See the board: nbaprops predictions --date {payload['game_date']} --bets")


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
    from nbaprops.pipeline.day import run_day  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)

    with errors(as_json):
        game_date = parse_date(date_)
        if replaying() and not no_fetch:
            raise InputError(
                "daily --as-of replays what is stored: add --no-fetch (fetching asks the live services for what "
                "they have now)"
            )
        current = settings(db, markets=split(markets), systems=split(systems), train_days=train_days)
        shown = _BatchProgress(
            game_date, render.progress(as_json), as_json, announce_start=False, quiet=as_json
        )
        with _backend(current) as backend, shown.progress:
            _doing(f"running the game day {game_date}")
            run = run_day(
                backend,
                current,
                game_date,
                fetch=not no_fetch,
                best=best,
                clock=clock(),
                on_message=shown.on_message,
                on_start=shown.on_start,
                on_progress=shown.on_progress,
            )
        payload = run.as_dict()
        render.emit(payload, as_json, lambda: _render_day(game_date, payload))


def _render_day(game_date: date, payload: dict[str, Any]) -> None:
    message, batch, best_bets = payload["message"], payload["batch"], payload["best_bets"]
    out.print(f"{game_date}: {message}", highlight=False)
    if batch is not None:
        shown: dict[str, Any] = {
            k: batch[k]
            for k in ("batch_id", "state", "requests", "active_predictions", "recommendations")
            if k in batch
        }
        if "injuries" in batch:
            shown["injury report"] = batch["injuries"].get("report_at") or "none before the prediction time"
        if "models" in batch:
            shown["models"] = "; ".join(
                f"{m} trained {i['train_start']}..{i['trained_through']}"
                f"{' (trained now)' if i['trained_now'] else ''}"
                for m, i in batch["models"].items()
            )
        render.render_summary(f"Batch {batch['batch_id']}", {**shown, "missing": batch.get("missing", [])})
    if best_bets:
        out.print(_best_bets_table(best_bets))
    elif batch is not None:
        out.print("No bet clears the expected-value margin tonight.")
        render.no_bets(batch.get("models", {}))
    render.peak_memory(payload)


def _best_bets_table(best_bets: list[dict[str, Any]]) -> Table:
    table = Table(
        *("player", "team", "market", "bet", "line", "book", "price", "predicted", "P(win)", "EV", "injury"),
        title="Best bets",
        title_justify="left",
    )
    for bet in best_bets:
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
    return table


def refresh(
    date_: DateOpt,
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
    from nbaprops.pipeline.refresh import (
        refresh as run_refresh,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        day = parse_date(date_)
        current = settings(db)
        with _backend(current) as backend:
            result = run_refresh(
                backend, current, day, threshold=threshold, clock=clock(), on_message=render.say
            ).as_dict()
        render.emit(result, as_json, lambda: _render_refresh(day, result))


def _render_refresh(day: date, result: dict[str, Any]) -> None:
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
            render.f3(m["old_line"]),
            render.f3(m["new_line"]),
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


def invalidate(date_: DateOpt, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Deactivate predictions of postponed games and of players ruled out after they were predicted (idempotent)."""
    from nbaprops.pipeline.invalidate import (
        invalidate as run_invalidate,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        day = parse_date(date_)
        current = settings(db)
        with _backend(current) as backend:
            result = run_invalidate(backend, day, clock=clock()).as_dict()
        render.emit(result, as_json, lambda: render.render_summary(f"invalidate {day}", result))


__all__ = ["daily", "invalidate", "predict", "refresh"]
