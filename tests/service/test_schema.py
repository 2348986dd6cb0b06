"""Schemathesis over the OpenAPI schema of the running service: generated requests (valid and not) never get
a 5xx, and every response matches what the schema says of its status and content type."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.service.conftest import KEYS, LiveServer

from nbaprops.config import Settings
from nbaprops.service.app import create_app
from nbaprops.service.models import BatchRequest

# The document the server publishes, built without opening anything (``from_fixture`` relies on a private
# attribute pytest 9 no longer has); the calls go to the live server.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_no_5xx_and_every_response_matches_the_schema(case: schemathesis.Case, live: LiveServer) -> None:
    # Every check but "schema-valid data is accepted": a well-formed date may have no games (422), a valid id may
    # name no batch (404); the server decides those, not the schema.
    case.call_and_validate(
        base_url=live.url,
        headers={"X-API-Key": KEYS[0]},
        timeout=60,
        excluded_checks=[positive_data_acceptance],
    )


def test_the_schema_documents_every_route_and_its_errors(live: LiveServer) -> None:
    import httpx

    document = httpx.get(f"{live.url}/openapi.json").json()
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches"),
        ("GET", "/v1/batches/{batch_id}"),
        ("GET", "/v1/batches/{batch_id}/events"),
        ("POST", "/v1/batches/{batch_id}/consolidate"),
        ("POST", "/v1/batches/{batch_id}/finish"),
        ("POST", "/v1/check-stalled"),
        ("POST", "/v1/cleanup-staging"),
        ("GET", "/v1/predictions"),
        ("GET", "/v1/offers"),
        ("GET", "/v1/ladder"),
        ("GET", "/v1/picks"),
        ("GET", "/v1/picks/logged"),
        ("POST", "/v1/ingest/{kind}"),
        ("GET", "/health"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/") and method == "post":
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert operation.get("security"), (method, path)
            if path.startswith("/v1/") and method == "get" and not path.endswith("/events"):
                too_many = operation["responses"]["429"]  # the polling limit
                assert "Retry-After" in too_many["headers"], path
    assert set(document["components"]["schemas"]["BatchRequest"]["properties"]) == set(
        BatchRequest.model_fields
    )
