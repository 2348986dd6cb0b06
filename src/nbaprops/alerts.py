"""Alerts: tell operators when something needs them, on a webhook, without ever failing the work itself.

:func:`send_alert` posts a Slack-compatible JSON body (``{"text": ..., "event": ..., "details": ...}``: Slack and
most chat webhooks read ``text``, a script can read the rest) to the ``webhook_url`` setting, with a timeout per
attempt and a capped number of attempts (retrying connection errors, timeouts, 429 and 5xx; a 4xx other than
429 is not retried). Whatever happens it returns whether the alert was delivered and never raises: a broken
webhook is logged, it never fails a batch. Without ``webhook_url`` nothing is sent.

Events: ``batch_partial`` (a batch ended partial), ``batch_failed`` (a batch raised), ``stalled``
(check-stalled reclaimed leases or finished batches past their deadline), ``consolidation_refused``,
``fetch_failed`` (a live source failed in ``fetch`` or ``daily``), ``grade_summary`` (the morning
summary after ``grade``) and ``pick_withdrawn`` (a recorded pick withdrawn because its line moved against it,
once per pick: :mod:`nbaprops.picks.log`).

This module is the whole alert policy: which event, when and with what text. The library sends them where the
work happens (:func:`nbaprops.pipeline.run.run_batch` for every batch, whoever started it; the shared
operations for ``finish``, ``consolidate`` and ``check-stalled``; the game day; fetches; grading), so a batch
alerts the same way from ``predict``, ``daily``, ``refresh`` and the service; the CLI sends none.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from nbaprops.config import Settings
from nbaprops.errors import SourceError, SourceUnavailableError

log = logging.getLogger(__name__)

EVENTS = (
    "batch_partial",
    "batch_failed",
    "stalled",
    "consolidation_refused",
    "fetch_failed",
    "grade_summary",
    "pick_withdrawn",
)


def send_alert(
    settings: Settings,
    event: str,
    text: str,
    details: dict[str, Any] | None = None,
    *,
    backoff_seconds: float = 0.5,
) -> bool:
    """Post one alert to ``settings.webhook_url``; ``True`` when a 2xx came back (see the module docstring)."""
    if not settings.webhook_url:
        return False
    body = json.dumps(
        {"text": f"nbaprops: {text}", "event": event, "details": details or {}}, default=str
    ).encode()
    for attempt in range(1, settings.webhook_attempts + 1):
        retry = True
        try:
            request = urllib.request.Request(
                settings.webhook_url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=settings.webhook_timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            retry = exc.code == 429 or exc.code >= 500
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, a malformed URL
            problem = f"{type(exc).__name__}: {exc}"
            retry = not isinstance(exc, ValueError)
        except Exception as exc:  # an alert must never fail the work it reports on
            problem = f"{type(exc).__name__}: {exc}"
            retry = False
        log.warning("alert %s: attempt %d/%d failed (%s)", event, attempt, settings.webhook_attempts, problem)
        if not retry:
            break
        if attempt < settings.webhook_attempts:
            time.sleep(backoff_seconds * attempt)
    log.error("alert %s not delivered to the webhook: %s", event, text)
    return False


def is_interrupt(exc: BaseException | None) -> bool:
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


def failure_alert(settings: Settings, what: str, exc: BaseException, *, batch_id: str | None = None) -> bool:
    """``fetch_failed`` when a live source failed, else ``batch_failed``; nothing for an interrupt (Ctrl-C is
    the operator's own doing)."""
    if is_interrupt(exc):
        return False
    event = "fetch_failed" if isinstance(exc, SourceError | SourceUnavailableError) else "batch_failed"
    return send_alert(
        settings,
        event,
        f"{what} failed: {type(exc).__name__}: {exc}",
        {"batch_id": batch_id, "error": str(exc), "kind": type(exc).__name__},
    )


def consolidation_refused_alert(settings: Settings, batch_id: str, exc: BaseException) -> bool:
    """A consolidation was refused (requests still open, a latched batch...)."""
    return send_alert(
        settings, "consolidation_refused", f"consolidate {batch_id} refused: {exc}", {"batch_id": batch_id}
    )


def batch_alert(settings: Settings, summary: dict[str, Any]) -> bool:
    """Alert when a batch ended partial (nothing is sent for a complete batch)."""
    if summary.get("state") != "partial":
        return False
    missing = summary.get("missing") or []
    failed = [m for m in missing if m.get("state") == "failed"]
    return send_alert(
        settings,
        "batch_partial",
        f"batch {summary['batch_id']} of {summary['game_date']} ended partial: "
        f"{len(failed)} request(s) failed",
        {"batch_id": summary["batch_id"], "requests": summary.get("requests"), "failed": failed[:20]},
    )


def stalled_alert(settings: Settings, report: dict[str, Any]) -> bool:
    """Alert when check-stalled found stalled work (reclaimed or failed leases, batches past their deadline)."""
    finished = report.get("finished_batches") or []
    found = (
        report.get("reclaimed", 0)
        + report.get("failed", 0)
        + report.get("released_from_dead_processes", 0)
        + report.get("stalled_leases_left", 0)
        + len(finished)
    )
    if not found:
        return False
    return send_alert(
        settings,
        "stalled",
        f"check-stalled: {report.get('reclaimed', 0)} expired lease(s) reclaimed, "
        f"{report.get('released_from_dead_processes', 0)} released from dead processes, {report.get('failed', 0)} "
        f"request(s) failed, {len(finished)} batch(es) finished past their deadline",
        {k: v for k, v in report.items() if k != "finished_batches"}
        | {"finished_batches": [b.get("batch_id") for b in finished]},
    )


def grade_summary_alert(settings: Settings, game_date: str, metrics: list[dict[str, Any]]) -> bool:
    """The morning summary: the graded day's hit rate and ROI per system and market."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    lines = [
        f"{m['system_id']} {m['market']}: {m['n_bets']} bet(s), hit rate {pct(m['hit_rate'])}, "
        f"ROI {pct(m['roi'])}, MAE {m['mae']:.2f}"
        if m["mae"] is not None
        else f"{m['system_id']} {m['market']}: no graded row"
        for m in metrics
    ]
    return send_alert(
        settings,
        "grade_summary",
        f"graded {game_date}\n" + "\n".join(lines),
        {
            "game_date": game_date,
            "metrics": [
                {k: m[k] for k in ("system_id", "market", "n", "mae", "n_bets", "hit_rate", "roi")}
                for m in metrics
            ],
        },
    )


def pick_withdrawn_alert(settings: Settings, pick: dict[str, Any]) -> bool:
    """One recorded pick withdrawn: its offer, the line the consensus moved to and by how much."""
    price = pick.get("price")
    odds = "" if price is None else f" {price:+.0f}"
    text = (
        f"withdrew {pick['system_id']} pick {pick.get('player_name') or pick['player_lookup']} {pick['market']} "
        f"{pick['side']} {pick['line']:g} at {pick['bookmaker']}{odds} ({pick['game_date']}): "
        f"{pick['withdrawn_reason']}"
    )
    keys = ("game_date", "player_lookup", "player_name", "market", "system_id", "side", "bookmaker", "line",
            "price", "system_line", "withdrawn_at", "withdrawn_line", "withdrawn_reason", "stake")  # fmt: skip
    return send_alert(settings, "pick_withdrawn", text, {k: pick.get(k) for k in keys})


__all__ = [
    "EVENTS",
    "batch_alert",
    "consolidation_refused_alert",
    "failure_alert",
    "grade_summary_alert",
    "is_interrupt",
    "pick_withdrawn_alert",
    "send_alert",
    "stalled_alert",
]
