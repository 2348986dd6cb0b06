"""google.api_core errors become nbaprops errors at one boundary (:func:`nbaprops.storage.gcp.warehouse.translate`).

The exceptions are the client library's own classes, built as the client raises them (no server needed).
"""

from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.bigquery")

from google.api_core import exceptions as gexc  # noqa: E402

from nbaprops.errors import ConfigError, ContractError, StorageBusyError, TerminalError  # noqa: E402
from nbaprops.storage.gcp.warehouse import DUPLICATE_KEYS_MARKER, bigquery_type, translate  # noqa: E402


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (gexc.InternalServerError("backendError"), StorageBusyError),
        (gexc.ServiceUnavailable("try later"), StorageBusyError),
        (gexc.TooManyRequests("rateLimitExceeded"), StorageBusyError),
        (gexc.RetryError("deadline of 15.0s exceeded", cause=None), StorageBusyError),
        (TimeoutError("read timed out"), StorageBusyError),
        (
            gexc.BadRequest("Transaction is aborted due to concurrent update against table t"),
            StorageBusyError,
        ),
        (  # the emulator's word for the same conflict (local-bigquery on DuckLake)
            gexc.BadRequest("Failed to commit: Failed to commit DuckLake transaction."),
            StorageBusyError,
        ),
        (gexc.BadRequest(f"{DUPLICATE_KEYS_MARKER}: 2 key(s) would have two active rows"), ContractError),
        (gexc.Forbidden("Access Denied: Table p:d.t"), ConfigError),
        (gexc.BadRequest("Syntax error: Unexpected keyword"), TerminalError),
        (gexc.NotFound("Not found: Table p:d.t"), TerminalError),
    ],
)
def test_translate_sorts_errors_into_transient_and_terminal(error: Exception, expected: type) -> None:
    translated = translate(error, action="merge staging_x")
    assert type(translated) is expected
    assert "BigQuery merge staging_x" in str(translated)


def test_every_contract_type_has_a_bigquery_type() -> None:
    from nbaprops import schema

    for table in schema.ALL_TABLES:
        for column in table.columns:
            assert bigquery_type(column.type)[0]
    assert bigquery_type("VARCHAR[]") == ("STRING", True)
    with pytest.raises(ContractError, match="HUGEINT"):
        bigquery_type("HUGEINT")
