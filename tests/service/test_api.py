"""The /v1 API with httpx against the real app on a loopback port and a real DuckDB file: every endpoint's
happy path, every error status, the idempotence of consolidate / finish / cleanup-staging."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.pipeline.helpers import assert_invariants, box_score_games, main_table_snapshot
from tests.service.conftest import KEYS, SLATE, LiveServer, wait_batch

from nbaprops.pipeline import Coordinator, expected_players, ledger
from nbaprops.pipeline.reads import active_predictions


@pytest.fixture(scope="module")
def slate(client: httpx.Client) -> dict[str, Any]:
    """The 2025-02-12 slate, run once through the API for the module."""
    response = client.post("/v1/batches", json={"game_date": SLATE})
    assert response.status_code == 202, response.text
    started = response.json()
    assert response.headers["location"] == f"/v1/batches/{started['batch_id']}"
    assert started["created"] is True and started["requests"] > 400
    return {"started": started, "final": wait_batch(client, started["batch_id"])}


def parked_batch(live: LiveServer, day: str = "2025-01-15", teams: int = 2) -> str:
    """A running batch no worker touches (created through the library on the server's own database)."""
    from datetime import date

    storage = live.runtime.storage
    games = box_score_games(storage, date.fromisoformat(day)).slice(0, teams)
    requests = expected_players(storage, date.fromisoformat(day), games, recent_days=21)
    return (
        Coordinator(storage, live.settings)
        .start(date.fromisoformat(day), requests, markets=["points"], systems=["moving_average"], force=True)
        .batch_id
    )


def error(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "kind"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text
    if kind is not None:
        assert body["kind"] == kind, body
    return body


# -- batches -------------------------------------------------------------------------------------------------
def test_a_batch_runs_in_the_background_and_ends_complete(slate: dict[str, Any], live: LiveServer) -> None:
    final = slate["final"]
    assert final["state"] == "complete" and final["staging_tables_left"] == 0
    assert final["active_predictions"] == final["requests"]["done"] > 400
    assert (
        final["runner"]["phase"] == "finished"
        and final["consolidation"]["rows_inserted"] == final["requests"]["done"]
    )
    assert {m["error_code"] for m in final["missing"]} <= {"not_enough_games", "no_history", "no_game"}
    assert final["markets"] == ["points"] and final["systems"] == ["moving_average"]
    assert_invariants(live.runtime.storage, final["batch_id"])


def test_list_batches_filters_and_orders_newest_first(client: httpx.Client, slate: dict[str, Any]) -> None:
    batch_id = slate["started"]["batch_id"]
    listed = client.get("/v1/batches", params={"date": SLATE}).json()["batches"]
    assert batch_id in [b["batch_id"] for b in listed]
    assert all(b["game_date"] == SLATE for b in listed)
    assert [
        b["batch_id"]
        for b in client.get("/v1/batches", params={"state": "partial", "date": SLATE}).json()["batches"]
    ] == []
    everything = client.get("/v1/batches").json()["batches"]
    assert [b["created_at"] for b in everything] == sorted(
        (b["created_at"] for b in everything), reverse=True
    )
    assert len(client.get("/v1/batches", params={"limit": 1}).json()["batches"]) == 1


def test_events_stream_progress_until_the_end(client: httpx.Client, slate: dict[str, Any]) -> None:
    batch_id = slate["started"]["batch_id"]
    with client.stream("GET", f"/v1/batches/{batch_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    assert events[-1].startswith("event: end")
    payload = json.loads(events[-1].split("data: ", 1)[1])
    assert payload["consolidated"] and payload["requests"]["done"] == slate["final"]["requests"]["done"]


def test_events_of_a_running_batch_show_monotone_progress(client: httpx.Client, live: LiveServer) -> None:
    # force: the slate's batch stands unchanged, and a repeat without it would answer that one (200)
    response = client.post("/v1/batches", json={"game_date": SLATE, "force": True})
    assert response.status_code == 202, response.text
    ended: list[int] = []
    with client.stream("GET", response.json()["links"]["events"]) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                counts = json.loads(line[6:])["requests"]
                ended.append(counts["done"] + counts["skipped"] + counts["failed"])
    assert ended == sorted(ended) and ended[-1] == sum(counts.values())


def test_a_second_start_of_a_running_date_conflicts_and_force_supersedes(
    client: httpx.Client, live: LiveServer
) -> None:
    parked = parked_batch(live, SLATE)
    body = error(client.post("/v1/batches", json={"game_date": SLATE}), 409, "ConflictError")
    assert body["batch_id"] == parked
    forced = client.post("/v1/batches", json={"game_date": SLATE, "force": True, "deadline": 30})
    assert forced.status_code == 202 and forced.json()["batch_id"] != parked
    assert client.get(f"/v1/batches/{parked}").json()["state"] == "partial"
    final = wait_batch(client, forced.json()["batch_id"])
    assert final["state"] == "complete"
    deadline = (final["deadline_at"], final["created_at"])
    from datetime import datetime

    assert (
        abs(
            (datetime.fromisoformat(deadline[0]) - datetime.fromisoformat(deadline[1])).total_seconds()
            - 30 * 60
        )
        < 1
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"game_date": "2025-02-30"}, "not a date"),
        ({"game_date": "yesterday"}, "game_date"),
        ({"game_date": SLATE, "markets": ["steals"]}, "markets"),
        ({"game_date": SLATE, "systems": ["oracle"]}, "systems"),
        ({"game_date": SLATE, "deadline": -5}, "deadline"),
        ({"game_date": SLATE, "colour": "red"}, "colour"),
        ({}, "game_date"),
        ({"game_date": "2025-07-15"}, "no games"),
    ],
)
def test_bad_batch_requests_are_422_with_a_clear_message(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    assert message in error(client.post("/v1/batches", json=body), 422, "InputError")["error"]


def test_a_body_that_is_not_json_is_400(client: httpx.Client) -> None:
    response = client.post("/v1/batches", content=b"{not json", headers={"Content-Type": "application/json"})
    error(response, 400, "BadRequest")


def test_unknown_batches_and_routes_are_404(client: httpx.Client) -> None:
    for path in ("/v1/batches/nope", "/v1/batches/nope/events"):
        assert "nope" in error(client.get(path), 404, "UnknownBatchError")["error"]
    for path in ("/v1/batches/nope/consolidate", "/v1/batches/nope/finish"):
        error(client.post(path), 404, "UnknownBatchError")
    error(client.get("/v1/nothing-here"), 404, "NotFound")


# -- operations -----------------------------------------------------------------------------------------------
def test_consolidate_refuses_open_requests_finish_forces_and_both_are_idempotent(
    client: httpx.Client, live: LiveServer
) -> None:
    batch_id = parked_batch(live)
    assert (
        "open request"
        in error(client.post(f"/v1/batches/{batch_id}/consolidate"), 409, "ConflictError")["error"]
    )
    first = client.post(f"/v1/batches/{batch_id}/finish")
    assert first.status_code == 200, first.text
    summary = first.json()
    assert summary["state"] == "partial" and summary["requests"]["pending"] == 0
    assert {m["error_code"] for m in summary["missing"]} == {"forced_finish"}
    before = main_table_snapshot(live.runtime.storage)
    again = client.post(f"/v1/batches/{batch_id}/finish").json()
    consolidated = client.post(f"/v1/batches/{batch_id}/consolidate").json()
    for later in (again, consolidated):
        assert {k: v for k, v in later.items() if k != "duration_s"} == {
            k: v for k, v in summary.items() if k != "duration_s"
        }
    assert main_table_snapshot(live.runtime.storage) == before


def test_check_stalled_reclaims_expired_leases_once(client: httpx.Client, live: LiveServer) -> None:
    batch_id = parked_batch(live, "2025-01-20")
    storage = live.runtime.storage
    from nbaprops.clock import SystemClock

    leases = ledger.claim(
        storage, batch_id, owner="elsewhere:1:dead", limit=5, lease_seconds=-60, clock=SystemClock()
    )
    assert len(leases) == 5
    first = client.post("/v1/check-stalled", json={"stall_minutes": 0})
    assert first.status_code == 200, first.text
    assert first.json()["reclaimed"] + first.json()["released_from_dead_processes"] == 5
    second = client.post("/v1/check-stalled").json()
    assert (second["reclaimed"], second["failed"], second["released_from_dead_processes"]) == (0, 0, 0)
    assert ledger.progress(storage, batch_id)["leased"] == 0
    client.post(f"/v1/batches/{batch_id}/finish")


def test_cleanup_staging_dry_run_changes_nothing_and_a_rerun_drops_nothing(
    client: httpx.Client, live: LiveServer
) -> None:
    storage = live.runtime.storage
    storage.execute('CREATE TABLE "staging_predictions_orphan_test" (x INTEGER)')
    dry = client.post("/v1/cleanup-staging", json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and "staging_predictions_orphan_test" in dry.json()["dropped"]
    assert "staging_predictions_orphan_test" in storage.tables_with_prefix("staging_predictions_")
    real = client.post("/v1/cleanup-staging", json={"older_than_hours": 24}).json()
    assert "staging_predictions_orphan_test" in real["dropped"] and not real["dry_run"]
    assert "staging_predictions_orphan_test" not in storage.tables_with_prefix("staging_predictions_")
    assert client.post("/v1/cleanup-staging").json()["dropped_count"] == 0
    error(client.post("/v1/cleanup-staging", json={"older_than_hours": -1}), 422, "InputError")


# -- predictions ----------------------------------------------------------------------------------------------
def test_predictions_as_json_best_expected_value_first(
    client: httpx.Client, slate: dict[str, Any], live: LiveServer
) -> None:
    body = client.get("/v1/predictions", params={"date": SLATE}).json()
    assert body["count"] == body["total"] == slate["final"]["active_predictions"]
    rows = body["predictions"]
    names, expected = active_predictions(
        live.runtime.storage, __import__("datetime").date.fromisoformat(SLATE)
    )
    assert [r["prediction_id"] for r in rows] == [
        dict(zip(names, e, strict=True))["prediction_id"] for e in expected
    ]
    assert {"line_value", "p_over", "expected_value", "recommendation", "predicted_value"} <= set(rows[0])
    limited = client.get(
        "/v1/predictions", params={"date": SLATE, "limit": 3, "market": "points", "system": "moving_average"}
    ).json()
    assert limited["count"] == 3 and limited["total"] == body["total"]
    assert (
        client.get("/v1/predictions", params={"date": SLATE, "bets_only": True}).json()["count"] == 0
    )  # no lines


def test_predictions_as_csv_are_the_cli_csv(
    client: httpx.Client, slate: dict[str, Any], live: LiveServer
) -> None:
    from nbaprops.schema import BOARD_MARKET_COLUMNS, BOARD_MOVE_COLUMNS, PREDICTIONS

    response = client.get("/v1/predictions", params={"date": SLATE}, headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == [
        *PREDICTIONS.column_names,
        *(c.name for c in BOARD_MARKET_COLUMNS),
        *(c.name for c in BOARD_MOVE_COLUMNS),
    ]
    assert len(table) - 1 == slate["final"]["active_predictions"]


@pytest.mark.parametrize(
    "params", [{"date": "2025-13-01"}, {"date": SLATE, "market": "steals"}, {"date": SLATE, "limit": 0}, {}]
)
def test_bad_prediction_queries_are_422(client: httpx.Client, params: dict[str, Any]) -> None:
    error(client.get("/v1/predictions", params=params), 422, "InputError")


# -- ingest ---------------------------------------------------------------------------------------------------
SCHEDULE = "game_date,home_team,away_team\n2025-04-20,BOS,NYK\n2025-04-20,LAL,DEN\n"


def test_ingest_uploads_are_atomic_and_idempotent(client: httpx.Client) -> None:
    first = client.post("/v1/ingest/schedule", files={"files": ("playoffs.csv", SCHEDULE, "text/csv")})
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["files"] == ["playoffs.csv"] and report["rows_read"] == 2 and report["rows_added"] == 2
    again = client.post("/v1/ingest/schedule", files={"files": ("playoffs.csv", SCHEDULE, "text/csv")}).json()
    assert again["rows_added"] == 0


def test_ingest_lines_with_a_market_field(client: httpx.Client, pra_lines: dict[str, Path]) -> None:
    head = "".join(pra_lines["2024-25"].open().readlines()[:200])
    response = client.post(
        "/v1/ingest/lines", files={"files": ("pra.csv", head, "text/csv")}, data={"market": "pra"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows_read"] == 199 and response.json()["files"] == ["pra.csv"]


def test_a_bad_upload_is_422_naming_the_uploaded_file_not_a_server_path(client: httpx.Client) -> None:
    bad = "game_date,home_team,away_team\nnot-a-date,BOS,NYK\n"
    body = error(client.post("/v1/ingest/schedule", files={"files": ("mine.csv", bad, "text/csv")}), 422)
    assert "mine.csv" in body["error"] and "/tmp" not in body["error"] and "0_mine" not in body["error"]
    error(client.post("/v1/ingest/teams", files={"files": ("x.csv", SCHEDULE, "text/csv")}), 422)
    error(client.post("/v1/ingest/schedule"), 422)


def test_an_upload_over_the_limit_is_413(client: httpx.Client) -> None:
    big = "game_date,home_team,away_team\n" + "2025-04-20,BOS,NYK\n" * 70_000  # 1.3 MB > 1 MB
    error(
        client.post("/v1/ingest/schedule", files={"files": ("big.csv", big, "text/csv")}),
        413,
        "PayloadTooLarge",
    )

    def chunks() -> Any:  # no Content-Length: counted while it streams
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.csv"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 50_000
        yield b"\r\n--b--\r\n"

    streamed = client.post(
        "/v1/ingest/schedule", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    error(streamed, 413, "PayloadTooLarge")


# -- health, metrics, docs -----------------------------------------------------------------------------------
def test_health_and_readiness(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}
    ready = anonymous.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"]
    assert set(ready.json()["checks"]) == {"database", "schema", "models"}


def test_metrics_count_batches_requests_latency_and_consolidations(
    anonymous: httpx.Client, slate: dict[str, Any]
) -> None:
    response = anonymous.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'nbaprops_batches{state="complete"}' in text and 'nbaprops_requests{state="done"}' in text
    count = next(
        line for line in text.splitlines() if line.startswith("nbaprops_consolidation_duration_seconds_count")
    )
    assert float(count.split()[-1]) >= 1
    assert 'route="/v1/batches/{batch_id}"' in text and "nope" not in text


def test_openapi_and_docs_load_nothing_from_the_internet(anonymous: httpx.Client) -> None:
    schema = anonymous.get("/openapi.json").json()
    assert {"/v1/batches", "/v1/batches/{batch_id}", "/v1/predictions", "/health"} <= set(schema["paths"])
    docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text and "http://" not in docs.text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert anonymous.get(asset).status_code == 200


def test_a_stopping_server_answers_503_with_retry_after(anonymous: httpx.Client, live: LiveServer) -> None:
    live.runtime.stopping.set()
    try:
        response = anonymous.get("/v1/batches")
        error(response, 503, "StorageBusyError")
        assert response.headers["retry-after"] == "1"
        assert anonymous.get("/health/ready").status_code == 503
    finally:
        live.runtime.stopping.clear()
    assert anonymous.get("/v1/batches").status_code == 200


def test_other_keys_rotate(anonymous: httpx.Client) -> None:
    for key in KEYS:
        assert anonymous.post("/v1/check-stalled", headers={"X-API-Key": key}).status_code == 200
