"""Alerts reach a real HTTP receiver on loopback, are retried, time out, and never raise."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.webhook import Receiver
from typer.testing import CliRunner

from nbaprops.alerts import batch_alert, grade_summary_alert, send_alert, stalled_alert
from nbaprops.config import Settings


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    statuses, delay = getattr(request, "param", ([200], 0.0))
    with Receiver(statuses, delay) as hook:
        yield hook


def _settings(url: str, **changes: Any) -> Settings:
    return Settings(webhook_url=url, webhook_attempts=3, webhook_timeout_seconds=2.0).replace(**changes)


def test_an_alert_posts_slack_compatible_json(receiver: Receiver) -> None:
    assert send_alert(_settings(receiver.url), "stalled", "2 leases reclaimed", {"reclaimed": 2})
    assert receiver.bodies == [
        {"text": "nbaprops: 2 leases reclaimed", "event": "stalled", "details": {"reclaimed": 2}}
    ]


@pytest.mark.parametrize("receiver", [([500, 503, 200], 0.0)], indirect=True)
def test_server_errors_are_retried_until_delivered(receiver: Receiver) -> None:
    assert send_alert(_settings(receiver.url), "stalled", "x", backoff_seconds=0.01)
    assert len(receiver.bodies) == 3


@pytest.mark.parametrize("receiver", [([500], 0.0)], indirect=True)
def test_a_failing_webhook_gives_up_after_the_attempts_without_raising(receiver: Receiver) -> None:
    assert not send_alert(_settings(receiver.url), "stalled", "x", backoff_seconds=0.01)
    assert len(receiver.bodies) == 3


@pytest.mark.parametrize("receiver", [([404], 0.0)], indirect=True)
def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    assert not send_alert(_settings(receiver.url), "stalled", "x", backoff_seconds=0.01)
    assert len(receiver.bodies) == 1


@pytest.mark.parametrize("receiver", [([200], 1.0)], indirect=True)
def test_a_slow_webhook_times_out(receiver: Receiver) -> None:
    started = time.perf_counter()
    assert not send_alert(
        _settings(receiver.url, webhook_timeout_seconds=0.2, webhook_attempts=2),
        "stalled",
        "x",
        backoff_seconds=0.01,
    )
    assert time.perf_counter() - started < 1.5


def test_an_unreachable_or_unset_webhook_sends_nothing_and_never_raises() -> None:
    with Receiver([200]) as closed:
        url = closed.url
    assert not send_alert(_settings(url), "stalled", "x", backoff_seconds=0.01)
    assert not send_alert(_settings("not a url"), "stalled", "x")
    assert not send_alert(Settings(), "stalled", "x")


def test_batch_stalled_and_grade_alerts_fire_only_when_there_is_news(receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    assert not batch_alert(settings, {"batch_id": "b1", "game_date": "2024-03-11", "state": "complete"})
    assert batch_alert(
        settings,
        {
            "batch_id": "b1",
            "game_date": "2024-03-11",
            "state": "partial",
            "missing": [{"player_lookup": "x", "state": "failed"}],
        },
    )
    assert not stalled_alert(settings, {"reclaimed": 0, "failed": 0, "finished_batches": []})
    assert stalled_alert(settings, {"reclaimed": 1, "failed": 0, "finished_batches": []})
    assert grade_summary_alert(
        settings,
        "2024-03-11",
        [
            {
                "system_id": "matchup",
                "market": "pra",
                "n": 10,
                "mae": 6.5,
                "n_bets": 4,
                "hit_rate": 0.5,
                "roi": -0.05,
            }
        ],
    )
    assert [b["event"] for b in receiver.bodies] == ["batch_partial", "stalled", "grade_summary"]
    assert "1 request(s) failed" in receiver.bodies[0]["text"]
    assert "hit rate 50.0%" in receiver.bodies[2]["text"]


def test_the_commands_alert_when_consolidation_refuses_and_work_stalled(db_path: Path) -> None:
    from tests.pipeline.helpers import start_slate

    from nbaprops.cli import app
    from nbaprops.clock import ManualClock
    from nbaprops.pipeline import Coordinator
    from nbaprops.pipeline.ledger import claim
    from nbaprops.storage import open_storage

    # two minutes ago: the batch's deadline is still ahead, the dead worker's leases are past their grace
    clock = ManualClock(datetime.now(UTC) - timedelta(minutes=2))
    with open_storage(db_path) as storage:
        batch_id = start_slate(Coordinator(storage, Settings(), clock=clock), teams=1)
        claim(storage, batch_id, owner="gone", limit=2, lease_seconds=1, clock=clock)  # a worker that died
    runner = CliRunner()
    with Receiver([200]) as hook:
        env = {"NBAPROPS_WEBHOOK_URL": hook.url}
        refused = runner.invoke(app, ["consolidate", batch_id, "--db", str(db_path), "--json"], env=env)
        stalled = runner.invoke(app, ["check-stalled", "--db", str(db_path), "--json"], env=env)
    assert refused.exit_code == 1 and "open request" in json.loads(refused.output)["error"]
    assert stalled.exit_code == 0 and json.loads(stalled.output)["released_from_dead_processes"] == 2
    assert [b["event"] for b in hook.bodies] == ["consolidation_refused", "stalled"]
    assert batch_id in hook.bodies[0]["text"] and "2 released from dead processes" in hook.bodies[1]["text"]


def test_a_failure_alerts_by_what_failed_and_an_interrupt_never(receiver: Receiver) -> None:
    """The failure policy (alerts.failure_alert, written once for the CLI, the runner and the game day): a live
    source's error is ``fetch_failed``, anything else ``batch_failed``, Ctrl-C (also when DuckDB wrapped it)
    nothing."""
    from nbaprops.alerts import failure_alert
    from nbaprops.errors import SourceError

    settings = _settings(receiver.url)
    wrapped = RuntimeError("Query interrupted")
    assert failure_alert(settings, "fetch lines", SourceError("odds_api", "quota exhausted"))
    assert failure_alert(settings, "the batch of 2025-02-12", ValueError("boom"), batch_id="b1")
    assert not failure_alert(settings, "predict", KeyboardInterrupt())
    assert not failure_alert(settings, "predict", wrapped)
    assert [(b["event"], b["details"]["kind"], b["details"]["batch_id"]) for b in receiver.bodies] == [
        ("fetch_failed", "SourceError", None),
        ("batch_failed", "ValueError", "b1"),
    ]
    assert receiver.bodies[1]["text"] == "nbaprops: the batch of 2025-02-12 failed: ValueError: boom"


def test_a_batch_alerts_from_the_library_whoever_runs_it(db_path: Path, receiver: Receiver) -> None:
    """Alerts left the CLI: run_batch itself alerts a failed batch (here: a summer date, no games), so predict,
    daily, refresh and the service alert alike; a caller alerting for a larger run of its own turns it off."""
    from datetime import date

    from nbaprops.errors import InputError
    from nbaprops.pipeline.run import run_batch
    from nbaprops.storage import open_storage

    settings = _settings(receiver.url, db_path=db_path)
    with open_storage(db_path) as storage:
        for alerts in (True, False):
            with pytest.raises(InputError, match="no games on 2024-07-01"):
                run_batch(storage, settings, date(2024, 7, 1), alerts=alerts)
    assert [b["event"] for b in receiver.bodies] == ["batch_failed"]
    assert receiver.bodies[0]["text"].startswith(
        "nbaprops: the batch of 2024-07-01 failed: InputError: no games"
    )
