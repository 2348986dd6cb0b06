"""Least privilege at start-up (issue 22, item 2): no process creates a topic, subscription, dataset or set-up
table; `nbaprops gcp setup` does, once; a process started before it fails with one line naming what is missing
and the command that creates it.

The clients here refuse creation as real Google Cloud does for the roles docs/cloud.md grants
(``tests/cloud/refusing.py``, autouse in this folder). The slate itself runs on such clients in every other cloud
test: ``test_gcp_pipeline.py`` (a worker process and the coordinator process), ``test_gcp_service.py`` (`serve`),
``test_gcp_faults.py`` and ``test_gcp_commands.py`` — before this change each of them failed at its first
``open_gcp`` with "create Pub/Sub topics and subscriptions …: 403 User not authorized".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.cloud.conftest import Deployment, start
from tests.cloud.refusing import creation_allowed
from tests.service.conftest import free_port
from typer.testing import CliRunner

from nbaprops import schema
from nbaprops.cli import app
from nbaprops.storage._warehouse import INPUT_TABLES

pytestmark = [pytest.mark.cloud]


def run(deployment: Deployment, *args: str) -> tuple[int, str, str]:
    env = {**deployment.env, "NBAPROPS_WORKERS": "1", "NBAPROPS_DB_PATH": str(deployment.db)}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def every_resource(deployment: Deployment) -> list[str]:
    env = deployment.env
    project, topic, dataset = (
        env["NBAPROPS_GCP_PROJECT"],
        env["NBAPROPS_PUBSUB_TOPIC"],
        env["NBAPROPS_BIGQUERY_DATASET"],
    )
    return [
        f"topic projects/{project}/topics/{topic}",
        f"topic projects/{project}/topics/{topic}-dead-letter",
        f"subscription projects/{project}/subscriptions/{topic}-dead-letter",
        f"subscription projects/{project}/subscriptions/{topic}-workers",
        f"dataset {project}.{dataset}",
        *(f"table {project}.{dataset}.{name}" for name in (schema.PREDICTIONS.name, *INPUT_TABLES)),
    ]


def test_processes_without_setup_name_what_is_missing_and_create_nothing(
    bare_deployment: Deployment, refuse_creation: list[str]
) -> None:
    """Before, `open_gcp` created the topics and subscriptions at every start: with a subscriber's or a
    publisher's role the worker and the coordinator died on "403 User not authorized"; against a project where
    creating is allowed they silently made what they were never meant to own."""
    topic = bare_deployment.env["NBAPROPS_PUBSUB_TOPIC"]
    dataset = bare_deployment.env["NBAPROPS_BIGQUERY_DATASET"]
    for command in (["worker", "--idle-exit", "1"], ["predict", "--date", "2025-01-26"]):
        code, _, err = run(bare_deployment, *command)
        assert code == 1, (command, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: missing on Google Cloud: "), err
        assert (
            f"Pub/Sub subscription projects/{bare_deployment.env['NBAPROPS_GCP_PROJECT']}/subscriptions/"
            in err
        )
        assert f"{topic}-workers" in err and "BigQuery dataset " in err and dataset in err
        assert "run `nbaprops gcp setup` once" in err
        if (
            command[0] == "predict"
        ):  # the coordinator also needs the topic, the dead letters and the main table
            assert (
                f"topics/{topic}," in err and f"{topic}-dead-letter" in err and schema.PREDICTIONS.name in err
            )
    assert refuse_creation == []  # nothing was even attempted

    # Nothing was created by them: setup creates every resource now.
    with creation_allowed():
        code, out, err = run(bare_deployment, "gcp", "setup", "--json")
    assert code == 0, err
    assert sorted(json.loads(out)["created"]) == sorted(every_resource(bare_deployment))


def test_setup_prints_what_it_created_once_and_a_worker_then_starts_without_creating(
    bare_deployment: Deployment, refuse_creation: list[str]
) -> None:
    """`gcp setup` lists what it created, one line each; run again it creates nothing; a worker whose clients
    refuse creation then starts, pulls and exits on idle."""
    with creation_allowed():
        code, out, err = run(bare_deployment, "gcp", "setup")
        assert code == 0, err
        assert out.splitlines() == [f"created {item}" for item in every_resource(bare_deployment)]
        code, again, err = run(bare_deployment, "gcp", "setup", "--json")
        assert code == 0, err
    payload: dict[str, Any] = json.loads(again)
    assert payload == {"project": bare_deployment.env["NBAPROPS_GCP_PROJECT"], "created": []}

    code, out, err = run(bare_deployment, "worker", "--idle-exit", "0.5", "--json")
    assert code == 0, err
    assert json.loads(out)["chunks"] == 0
    assert refuse_creation == []


def test_setup_by_an_account_that_may_not_create_fails_in_one_line(bare_deployment: Deployment) -> None:
    """`gcp setup` under a subscriber's role: one line naming the refused operation, no traceback."""
    code, _, err = run(bare_deployment, "gcp", "setup")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: create Pub/Sub topics and subscriptions"), err
    assert "403" in err or "not authorized" in err.lower()


def test_serve_without_setup_stops_at_start_naming_what_is_missing(bare_deployment: Deployment) -> None:
    """`serve` (the coordinator as a service) stops at start in one line, as `predict` does. Before, it created
    the topics (refused here: 403 in uvicorn's lifespan), and a missing dataset surfaced as uvicorn's traceback
    and "Application startup failed" with exit code 3."""
    process = start(bare_deployment, "serve", "--port", str(free_port()), "--db", str(bare_deployment.db))
    process.wait(120)
    errors = [
        line
        for line in next(bare_deployment.db.parent.glob("serve-*.log")).read_text().splitlines()
        if not line.startswith("INFO ")  # loading the shipped box scores into the new file
    ]
    assert process.returncode == 1, errors
    assert len(errors) == 1 and errors[0].startswith("Error: missing on Google Cloud: "), errors
    assert "run `nbaprops gcp setup` once" in errors[0]


def test_a_missing_firestore_database_is_named_with_the_gcloud_command(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Firestore answers NotFound when the project has no database (the emulator always has one); before,
    nothing looked at it at start and the first ledger write failed mid-batch."""
    from google.api_core import exceptions as google_errors
    from google.cloud.firestore_v1.query import Query

    from nbaprops.errors import ConfigError
    from nbaprops.storage import open_gcp

    def no_database(self: Query, *args: Any, **kwargs: Any) -> Any:
        raise google_errors.NotFound("The database (default) does not exist for project test-proj")

    monkeypatch.setattr(Query, "get", no_database)
    with pytest.raises(ConfigError) as raised:
        open_gcp(deployment.settings)
    message = str(raised.value)
    assert message.startswith("missing on Google Cloud: Firestore database of project ")
    assert "`gcloud firestore databases create --location=REGION`" in message
    assert "nbaprops gcp setup" not in message  # setup does not make databases: it is not offered
    assert "\n" not in message


def test_a_resource_the_account_may_not_read_is_left_to_its_first_use(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The subscriber role cannot `get` its subscription: a worker without roles/pubsub.viewer still starts, and
    says the subscription was not verified."""
    from google.api_core import exceptions as google_errors
    from google.cloud.pubsub_v1 import SubscriberClient

    from nbaprops.storage import open_gcp

    def denied(self: SubscriberClient, *args: Any, **kwargs: Any) -> Any:
        raise google_errors.PermissionDenied("User not authorized to perform this action.")

    monkeypatch.setattr(SubscriberClient, "get_subscription", denied)
    with caplog.at_level("WARNING", logger="nbaprops.storage.gcp.backend"):
        open_gcp(deployment.settings).close()
    subscription = f"subscriptions/{deployment.env['NBAPROPS_PUBSUB_TOPIC']}-workers"
    assert [r.getMessage() for r in caplog.records if subscription in r.getMessage()] == [
        f"cannot check Pub/Sub subscription projects/{deployment.env['NBAPROPS_GCP_PROJECT']}/{subscription} "
        "(no permission to read it); not verified at start"
    ]


def test_a_subscription_without_the_retry_policy_is_named_at_start_and_setup_brings_it_up_to_date(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """The deployment's subscription has the tests' fast retry policy; a process expecting production's
    (10-600 s) starts, warning what differs and the gcloud line that fixes it; `gcp setup` run again updates the
    subscription in place, and the warning is gone.

    Would catch: a subscription made before the retry policy (a nack comes back at once: a passing error burns
    every delivery attempt) going unnoticed, or `gcp setup` leaving it as it was.
    """
    import logging

    from nbaprops.storage import open_gcp
    from nbaprops.storage.gcp.queue import REDELIVERY

    with caplog.at_level(logging.WARNING, logger="nbaprops.storage.gcp.backend"):
        backend = open_gcp(deployment.settings)
    try:
        assert backend.redelivery == REDELIVERY
        subscription = backend.names.subscription
        warning = next(r.getMessage() for r in caplog.records if "retry backoff" in r.getMessage())
        assert "retry backoff 0.2-0.6 s (want 10-600 s)" in warning
        assert f"gcloud pubsub subscriptions update {subscription}" in warning
        assert "--min-retry-delay=10s --max-retry-delay=600s" in warning
        with creation_allowed():
            assert backend.setup() == [f"subscription {backend.names.subscription_path}"]
            assert backend.setup() == []  # up to date: nothing to change
        found = backend._subscriber.get_subscription(
            request={"subscription": backend.names.subscription_path}
        )
        assert backend.warn_subscription_drift(found) == []
        assert found.retry_policy.maximum_backoff.total_seconds() == 600  # type: ignore[attr-defined]
    finally:
        backend.close()
