"""API keys: every write endpoint refuses a missing key, a wrong key, a Bearer header and a key in the query;
reads are open unless read_auth is set; keys never reach a log; no key, no network address."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from tests.service.conftest import KEYS, LiveServer, copy_db, service_settings

from nbaprops.config import Settings, load_settings
from nbaprops.errors import ConfigError
from nbaprops.service.auth import key_matches
from nbaprops.service.server import check_bind, is_loopback

WRITES = [
    ("POST", "/v1/batches", {"json": {"game_date": "2025-07-15"}}),
    ("POST", "/v1/batches/b1/consolidate", {}),
    ("POST", "/v1/batches/b1/finish", {}),
    ("POST", "/v1/check-stalled", {}),
    ("POST", "/v1/cleanup-staging", {"json": {"dry_run": True}}),
    (
        "POST",
        "/v1/ingest/schedule",
        {"files": {"files": ("s.csv", "game_date,home_team,away_team\n", "text/csv")}},
    ),
]
READS = [
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/b1"),
    ("GET", "/v1/predictions?date=2025-02-12"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/picks/2025-02-12"),
]


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["kind"] == ("Unauthorized" if status == 401 else "Forbidden")
    return str(body["error"])


@pytest.mark.parametrize(("method", "path", "extra"), WRITES, ids=[w[1] for w in WRITES])
def test_writes_refuse_every_way_but_a_valid_key_header(
    anonymous: httpx.Client, method: str, path: str, extra: dict[str, object]
) -> None:
    assert "X-API-Key" in refused(anonymous.request(method, path, **extra), 401)  # type: ignore[arg-type]
    refused(anonymous.request(method, path, headers={"X-API-Key": "not-a-key"}, **extra), 403)  # type: ignore[arg-type]
    bearer = anonymous.request(method, path, headers={"Authorization": f"Bearer {KEYS[0]}"}, **extra)  # type: ignore[arg-type]
    assert "Bearer" in refused(bearer, 401)
    for name in ("api_key", "key", "x-api-key", "token"):
        in_query = anonymous.request(method, path, params={name: KEYS[0]}, **extra)  # type: ignore[arg-type]
        assert "query string" in refused(in_query, 401)
        both = anonymous.request(
            method, path, params={name: KEYS[0]}, headers={"X-API-Key": KEYS[0]}, **extra
        )  # type: ignore[arg-type]
        refused(both, 401)
    allowed = anonymous.request(method, path, headers={"X-API-Key": KEYS[1]}, **extra)  # type: ignore[arg-type]
    assert allowed.status_code not in (401, 403), allowed.text


@pytest.mark.parametrize(("method", "path"), READS)
def test_reads_are_open_by_default(anonymous: httpx.Client, method: str, path: str) -> None:
    assert anonymous.request(method, path).status_code not in (401, 403)


def test_read_auth_closes_reads_and_the_dashboard(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path
) -> None:
    settings = service_settings(copy_db(loaded_db_file, tmp_path), artifacts, read_auth=True)
    with LiveServer(settings) as live, httpx.Client(base_url=live.url) as anonymous:
        for method, path in READS:
            refused(anonymous.request(method, path), 401)
            assert anonymous.request(method, path, headers={"X-API-Key": KEYS[0]}).status_code not in (
                401,
                403,
            )
        assert anonymous.get("/health").status_code == 200  # liveness stays open for probes


def test_keys_never_reach_a_log(anonymous: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        anonymous.post("/v1/check-stalled", params={"api_key": KEYS[0]})
        anonymous.post("/v1/check-stalled", headers={"X-API-Key": KEYS[0]})
        anonymous.post("/v1/check-stalled", headers={"X-API-Key": KEYS[0] + "x"})
    # The client library logs the URL it sent; everything the server side logs is checked.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side and not [r for r in server_side if KEYS[0] in r.getMessage()]
    assert KEYS[0] not in repr(Settings(api_keys=KEYS))


def test_keys_come_from_the_environment_comma_separated() -> None:
    one, two = "one-0123456789abcdef", "two-0123456789abcdef"
    settings = load_settings(environ={"NBAPROPS_API_KEYS": f" {one} , {two},,"}, config_file=None)
    assert settings.api_keys == (one, two)
    assert key_matches(two, settings.api_keys) and not key_matches(two[:-1], settings.api_keys)
    assert not key_matches("", settings.api_keys)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_without_a_key_only_loopback_is_allowed(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        check_bind(Settings(host=host))
    else:
        with pytest.raises(ConfigError, match="NBAPROPS_API_KEYS"):
            check_bind(Settings(host=host))
    check_bind(Settings(host=host, api_keys=("k",)))


def test_serve_refuses_a_network_address_without_a_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nbaprops.cli import app

    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.duckdb")], env={"NBAPROPS_API_KEYS": ""}
    )
    assert result.exit_code == 1 and "refusing to listen on 0.0.0.0" in result.stderr
    assert not (tmp_path / "x.duckdb").exists()  # refused before opening anything
