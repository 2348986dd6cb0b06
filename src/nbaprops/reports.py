"""What ``backtest``, ``accuracy`` and ``grade`` report: each runs its evaluation and returns one plain payload.

The CLI prints these payloads (a table, or ``--json``); the HTML reports are written from them. Each function is
the one library call of its command: :func:`backtest_report` (walk forward, metrics, calibration, report),
:func:`accuracy_report` (the graded live predictions, report) and :func:`grade_day` (grade a past date, its
accuracy, the morning alert).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from nbaprops.alerts import grade_summary_alert
from nbaprops.backtest import calibration_summary, run_backtest, season_range
from nbaprops.backtest.split import DEFAULT_GBM_EVERY, DEFAULT_HOLDOUT_EVERY
from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.evaluation.accuracy import accuracy
from nbaprops.evaluation.grading import grade_date, live_grades
from nbaprops.evaluation.metrics import compute_metrics, cumulative_profit
from nbaprops.evaluation.offers import live_as_of, offers_section
from nbaprops.evaluation.report import write_report
from nbaprops.ingest import ensure_boxscores
from nbaprops.ingest.lines import ingest_lines
from nbaprops.memory import peak_memory
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import Backend


def backtest_report(
    storage: Inputs,
    settings: Settings,
    *,
    market: str,
    season: str | None = None,
    start: date | None = None,
    end: date | None = None,
    lines: Sequence[Path] = (),
    retrain_days: int = 7,
    report: Path | None = None,
    on_step: Callable[[int, int, date], None] | None = None,
    books: Sequence[str] | None = None,
    refits: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Walk forward over a season (or ``start``..``end``) and return its metrics, calibration, the bets graded
    at the offer taken (``offers``: :func:`~nbaprops.evaluation.offers.offers_section`) and peak memory
    (:func:`~nbaprops.memory.peak_memory`).

    Args:
        lines: lines files ingested first.
        report: write the self-contained HTML report here (its path is in the payload).
        books: the books the user can bet at for ``offers`` (None: the ``books`` setting; empty: every book).
        refits: ``(holdout_every, gbm_every)`` of :func:`~nbaprops.backtest.run.run_backtest` (None: its
            defaults; ``(1, 1)``: every fit on every step, as the live batch does).

    Raises:
        InputError: an unknown season, or ``end`` before ``start``.
    """
    holdout_every, gbm_every = refits or (DEFAULT_HOLDOUT_EVERY, DEFAULT_GBM_EVERY)
    ensure_boxscores(storage)
    if lines:
        ingest_lines(storage, lines)
    if season is not None:
        start, end = season_range(storage, season)
    if start is None or end is None:
        raise InputError("give either --season or --from and --to")
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
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
        holdout_every=holdout_every,
        gbm_every=gbm_every,
    )
    payload: dict[str, Any] = {
        "run_id": result.run_id,
        "market": market,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "days": result.days,
        "steps": result.steps,
        "retrain_days": retrain_days,
        "train_days": settings.train_days,
        "holdout_every": holdout_every,
        "gbm_every": gbm_every,
        "graded_rows": result.grades.num_rows,
        "metrics": compute_metrics(result.grades),
        "calibration": calibration_summary(result.models),
        "offers": offers_section(storage, result.grades, books=settings.books if books is None else books),
        **peak_memory(),  # the workers fitting the steps' models have ended: their peak is in
    }
    if report is not None:
        payload["report"] = str(write_report(report, payload, cumulative_profit(result.grades)))
    return payload


def accuracy_report(
    storage: Inputs,
    *,
    since: date | None = None,
    until: date | None = None,
    market: str | None = None,
    system: str | None = None,
    window: int = 7,
    report: Path | None = None,
    offers: bool = False,
    books: Sequence[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The graded live predictions' metrics per system and market and day by day (``window``-day rolling);
    ``report`` set: the HTML report written there too (its path is in the payload). ``offers``: the bets also
    graded at the best offer of ``books`` (empty: every book) posted by their date's earliest prediction time
    (``offers``: :func:`~nbaprops.evaluation.offers.offers_section`; seconds per season, so asked for)."""
    payload = accuracy(
        storage, since=since, until=until, market=market, system=system, window=window, now=now
    )
    if offers:
        grades = live_grades(storage, since=since, until=until, market=market, system=system)
        payload["offers"] = offers_section(storage, grades, books=books, as_of=live_as_of(storage, grades))
    curves = payload.pop("cumulative_profit")
    if report is not None:
        payload["report"] = str(
            write_report(
                report,
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
    return payload


def grade_day(backend: Backend, settings: Settings, game_date: date, *, clock: Clock) -> dict[str, Any]:
    """Grade every current prediction of ``game_date``, return the grading and the day's accuracy per system
    and market, and post that summary to the webhook (``grade_summary``, when one is set)."""
    result = grade_date(backend, game_date, clock=clock).as_dict()
    metrics = accuracy(backend.features, since=game_date, until=game_date)["metrics"]
    grade_summary_alert(settings, game_date.isoformat(), metrics)
    return {**result, "metrics": metrics}


__all__ = ["accuracy_report", "backtest_report", "grade_day"]
