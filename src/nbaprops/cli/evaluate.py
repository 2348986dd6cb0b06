"""The commands that train and judge: ``train``, ``backtest``, ``grade``, ``accuracy`` and ``picks``.

Each runs one library function (:func:`nbaprops.pipeline.run.train_models`, :mod:`nbaprops.reports`,
:func:`nbaprops.picks.picks`) and prints its payload.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from nbaprops.cli import render
from nbaprops.cli.boundary import clock, errors, existing_files, parse_date, report_path, settings, split
from nbaprops.cli.opening import _backend, _storage
from nbaprops.cli.options import (
    BooksOpt,
    DbOpt,
    JsonOpt,
    LinesOpt,
    MarketsOpt,
    ReportOpt,
    SystemsOpt,
    TrainDaysOpt,
)
from nbaprops.cli.render import err, f2, f3, out, pct
from nbaprops.config import book_list
from nbaprops.errors import InputError
from nbaprops.markets import validate_market


def train(
    through: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="Train on games before this date.")],
    markets: MarketsOpt = None,
    systems: SystemsOpt = None,
    train_days: TrainDaysOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the trainable systems on games before --through and store versioned artifacts."""
    from nbaprops.pipeline.run import (
        train_models,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        day = parse_date(through, "--through")
        current = settings(db, markets=split(markets), systems=split(systems), train_days=train_days)
        with _storage(current) as storage, err.status(Text(""), spinner="dots") as spinner:
            results = train_models(
                storage,
                current,
                day,
                on_market=lambda market: spinner.update(Text(f"training {market} on games before {day}…")),
            )
        render.emit({"artifacts": results}, as_json, lambda: _render_trained(results))


def _render_trained(results: list[dict[str, Any]]) -> None:
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
    lines: LinesOpt = None,
    retrain_days: Annotated[int, typer.Option(min=1, help="Game days between retrainings.")] = 7,
    every_step: Annotated[
        bool,
        typer.Option(
            "--every-step",
            help="Fit every model and holdout on every step, as the live batch does (about 2.4x the CPU;"
            " default: holdouts every 4 steps, gbm every 2).",
        ),
    ] = False,
    train_days: TrainDaysOpt = None,
    systems: SystemsOpt = None,
    report: ReportOpt = None,
    books: BooksOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk-forward backtest: retrain on the past only, predict each game day as the batch would, grade.

    Each bet is also graded at the offer a user would take (best price, or best EV, among the offers posted by
    the prediction time at --books): ROI there beside ROI at the consensus book (--json: offers).
    """
    from nbaprops.reports import (
        backtest_report,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        validate_market(market)
        if (season is None) == (from_ is None and to is None):
            raise InputError("give either --season or --from and --to")
        if season is None and (from_ is None or to is None):
            raise InputError("--from and --to go together")
        files = existing_files(lines or ())
        current = settings(db, systems=split(systems), train_days=train_days)
        start = parse_date(from_, "--from") if from_ else None
        end = parse_date(to, "--to") if to else None
        progress = render.progress(as_json)
        with _storage(current) as storage, progress:
            task = progress.add_task(f"backtest {market}", total=None)
            payload = backtest_report(
                storage,
                current,
                market=market,
                season=season,
                start=start,
                end=end,
                lines=files,
                retrain_days=retrain_days,
                report=report_path(report, current) if report is not None else None,
                on_step=lambda k, n, day: progress.update(
                    task, total=n, completed=k, description=f"backtest {market} {day}"
                ),
                books=book_list(books),
                refits=(1, 1) if every_step else None,
            )
        render.emit(payload, as_json, lambda: _render_backtest(payload))


def _render_backtest(payload: dict[str, Any]) -> None:
    table = Table(
        *("system", "n", "MAE", "RMSE", "w/ line", "MAE on them", "line MAE", "bets"),
        *("hit rate (95% CI)", "ROI", "ECE"),
        title=f"{payload['market']} {payload['start']}..{payload['end']}: {payload['days']} game days, "
        f"{payload['steps']} models ({payload['run_id']})",
        title_justify="left",
    )
    for m in payload["metrics"]:
        table.add_row(
            m["system_id"],
            str(m["n"]),
            f3(m["mae"]),
            f3(m["rmse"]),
            str(m["n_lined"]),
            f3(m["mae_lined"]),
            f3(m["line_mae"]),
            str(m["n_bets"]),
            f"{f3(m['hit_rate'])} ({f3(m['hit_rate_ci'][0])}-{f3(m['hit_rate_ci'][1])})",
            f3(m["roi"]),
            f3(m["ece"]),
        )
    out.print(table)
    for sid, cal in payload["calibration"].items():
        if cal["last"] is not None and not cal["last"]["allows_bets"]:
            out.print(f"{sid}: {cal['last']['reason']} (last step; steps by calibration: {cal['steps']})")
    _render_offers(payload["offers"])
    if "report" in payload:
        out.print(f"report: {payload['report']}")
    render.peak_memory(payload)


def _roi(x: float | None, ci: list[float | None]) -> str:
    """``-4.4% [-7.2, -1.7]``: an ROI with its 95% interval, in percent with one decimal."""
    if x is None:
        return "-"
    bounds = "" if ci[0] is None or ci[1] is None else f" [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"
    return f"{x * 100:+.1f}%{bounds}"


def _render_offers(offers: dict[str, Any]) -> None:
    """The bets graded at the consensus book and at the offer taken, side by side (same bets)."""
    table = Table(
        *("scope/rule", "system", "bets (moved)", "ROI consensus", "ROI offer", "gain"),
        *("hit", "overround", "margin", "ECE"),
        title=f"Graded at the offer taken (price guard {offers['price_guard']}, books: "
        f"{', '.join(offers['books']) or 'all'})",
        title_justify="left",
    )
    for m in offers["metrics"]:
        gain = m["roi_gain_ci"]
        table.add_row(
            *(f"{m['scope']}/{m['rule']}", m["system_id"], f"{m['n']} ({m['n_moved']})"),
            _roi(m["roi_consensus"], m["roi_consensus_ci"]),
            _roi(m["roi_offer"], m["roi_offer_ci"]),
            "-" if gain[0] is None else f"[{gain[0] * 100:+.1f}, {gain[1] * 100:+.1f}]",
            f"{f3(m['hit_consensus'])}/{f3(m['hit_offer'])}",
            f"{f3(m['overround_consensus'])}/{f3(m['overround_offer'])}",
            f"{f3(m['margin_consensus'])}/{f3(m['margin_offer'])}",
            f3(m["ece_fair"]),
        )
    out.print(table if offers["metrics"] else "Graded at the offer taken: no bet and no lined row to grade.")
    out.print(
        "Same bets in both columns (those with an eligible offer); gain: offer minus consensus. hit, overround"
        " (two-way) and margin (paid on the side taken): consensus/offer. ECE: fair P(win) at the offer."
    )


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
    from nbaprops.reports import grade_day  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)

    with errors(as_json):
        day = parse_date(date_)
        current = settings(db)
        with _backend(current) as backend:
            payload = grade_day(backend, current, day, clock=clock())
        render.emit(payload, as_json, lambda: _render_graded(day, payload))


def _render_graded(day: date, payload: dict[str, Any]) -> None:
    out.print(render.kv_table(f"Graded {day}", {k: v for k, v in payload.items() if k != "metrics"}))
    table = Table(
        *("system", "market", "n", "MAE", "line MAE", "bets", "hit rate", "ROI"),
        title=f"{day}: accuracy",
        title_justify="left",
    )
    for m in payload["metrics"]:
        table.add_row(
            m["system_id"],
            m["market"],
            str(m["n"]),
            f3(m["mae"]),
            f3(m["line_mae"]),
            str(m["n_bets"]),
            f3(m["hit_rate"]),
            f3(m["roi"]),
        )
    out.print(table)


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
    offers: Annotated[
        bool,
        typer.Option("--offers", help="Also grade each bet at the best offer posted by its prediction time."),
    ] = False,
    books: BooksOpt = None,
    report: ReportOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy of the graded live predictions per system and market: the backtest's metrics, day by day, and
    the bets' closing-line value per book (docs/market.md); with --offers, graded at the best offer too."""
    from nbaprops.reports import (
        accuracy_report,  # heavy: the prediction systems (lightgbm, scikit-learn, scipy)
    )

    with errors(as_json):
        first = parse_date(since, "--since") if since else None
        last = parse_date(until, "--until") if until else None
        current = settings(db)
        with _storage(current, read_only=True) as storage:
            payload = accuracy_report(
                storage,
                since=first,
                until=last,
                market=market,
                system=system,
                window=window,
                report=report_path(report, current) if report is not None else None,
                offers=offers,
                books=book_list(books) or current.books,
                now=clock().now(),
            )
        render.emit(payload, as_json, lambda: _render_accuracy(payload, window))


def _render_accuracy(payload: dict[str, Any], window: int) -> None:
    table = Table(
        *("system", "market", "n", "void", "MAE", "lined: MAE/line", "bets", "hit rate", "ROI", "ECE"),
        title=f"live {payload['start']}..{payload['end']}: {payload['days']} game day(s)",
        title_justify="left",
    )
    for m in payload["metrics"]:
        table.add_row(
            m["system_id"],
            m["market"],
            str(m["n"]),
            str(m["void"]),
            f2(m["mae"]),
            f"{f2(m['mae_lined'])}/{f2(m['line_mae'])} ({m['n_lined']})",
            str(m["n_bets"]),
            pct(m["hit_rate"], m["hit_rate_ci"]),
            pct(m["roi"], m["roi_ci"]),
            f2(m["ece"], 3),
        )
    out.print(table)
    daily = Table(
        *("date", "system", "n", "MAE", "bets", "hit", "ROI"),
        *(f"MAE {window}d", f"hit {window}d", f"ROI {window}d"),
        title="day by day",
        title_justify="left",
    )
    for d in payload["daily"]:
        r = d[f"rolling_{window}d"]
        daily.add_row(
            d["game_date"],
            f"{d['system_id']} {d['market']}",
            str(d["n"]),
            f2(d["mae"]),
            str(d["n_bets"]),
            pct(d["hit_rate"]),
            pct(d["roi"]),
            f2(r["mae"]),
            pct(r["hit_rate"]),
            pct(r["roi"]),
        )
    out.print(daily)
    _render_clv(payload["clv"])
    if payload["pick_clv"]["picks"]:
        _render_clv(payload["pick_clv"], "closing-line value of the recorded picks", "pick(s)")
    if "offers" in payload:
        _render_offers(payload["offers"])
    if "report" in payload:
        out.print(f"report: {payload['report']}")


def _render_clv(clv: dict[str, Any], heading: str = "closing-line value", what: str = "bet(s)") -> None:
    """The closing-line value table: per system, market and book ("all": every book together), each mean with
    the half-width of its 95% interval (the bets', or ``accuracy``'s ``pick_clv``: the recorded picks')."""
    table = Table(
        *("system", "book", "bets", "line CLV", "line>0", "prob CLV", "prob>0"),
        title=f"{heading}: {clv['with_close']} of {clv['bets']} {what} with a close"
        + (f", {clv['tipoff_unknown']} tip-off unknown" if clv["tipoff_unknown"] else "")
        + (f", {clv['no_close']} without a snapshot before tip-off" if clv["no_close"] else "")
        + (f"; {clv['withdrawn']} withdrawn" if clv.get("withdrawn") else "")
        + (f"; {clv['not_started']} not started" if clv.get("not_started") else ""),
        title_justify="left",
    )

    def mean(figures: dict[str, Any], digits: int) -> str:
        value, (lo, hi) = figures["mean"], figures["mean_ci"]
        if value is None:
            return "-"
        return f"{value:+.{digits}f}" + ("" if lo is None or hi is None else f"±{(hi - lo) / 2:.{digits}f}")

    for g in clv["groups"]:
        table.add_row(
            f"{g['system_id']} {g['market']}",
            g["bookmaker"] or "all",
            str(g["line"]["n"]),
            mean(g["line"], 2),
            pct(g["line"]["share_positive"]),
            mean(g["prob"], 3),
            pct(g["prob"]["share_positive"]),
        )
    out.print(table)


__all__ = ["accuracy", "backtest", "grade", "train"]
