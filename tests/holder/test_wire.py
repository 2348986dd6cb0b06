"""Errors crossing processes keep their class, message and attributes (issue 19).

Before: the holder sent ``{"error", "kind"}`` and the client rebuilt the error with ``cls.__new__`` and the
message alone, so ``batch_id``, ``path``, ``row``, ``pid``, ``status``... were lost (or were the class
defaults) on the other side.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbaprops import errors
from nbaprops.errors import NbapropsError, from_wire, to_wire
from nbaprops.holder import Endpoint, Holder, HolderGoneError, Holding

ERRORS = [
    errors.InputError("the line is not a number", path="/data/odds.csv", row=12, column="line"),
    errors.InputError("no games on 2025-07-15; fetch the schedule first"),
    errors.ConflictError("batch b-1 is running for 2025-02-12", batch_id="b-1"),
    errors.UnknownBatchError("b-404"),
    errors.StorageFullError("the disk is full: free space", invalidated=True),
    errors.DatabaseHeldError("held by `nbaprops predict`", pid=4242, holder="nbaprops predict"),
    errors.SourceError("odds_api", "the key was refused", status=401),
    errors.SourceUnavailableError("nba_stats", "timed out"),
    errors.StorageBusyError("database busy, try again"),
    errors.ConfigError("api_keys: a key must be at least 16 characters"),
    errors.ContractError("staging has no column player_lookup"),
]


def attributes(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if not k.startswith("_")}


def same(rebuilt: BaseException, error: BaseException) -> None:
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    assert attributes(rebuilt) == {
        k: str(v) if isinstance(v, Path) else v for k, v in attributes(error).items()
    }


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_the_round_trip_with_its_attributes(error: NbapropsError) -> None:
    same(from_wire(json.loads(json.dumps(to_wire(error)))), error)


def test_a_path_attribute_crosses_as_its_text() -> None:
    error = errors.InputError("bad header", path=Path("/data/lines.csv"), row=1)  # type: ignore[arg-type]
    rebuilt = from_wire(json.loads(json.dumps(to_wire(error))))
    assert (
        type(rebuilt) is errors.InputError
        and rebuilt.path == "/data/lines.csv"
        and str(rebuilt) == str(error)
    )


def test_a_subclass_defined_elsewhere_crosses_as_its_base_with_its_message() -> None:
    rebuilt = from_wire(to_wire(HolderGoneError("the holder is closing")))
    assert type(rebuilt) is errors.StorageBusyError and str(rebuilt) == "the holder is closing"

    class LocalError(errors.InputError):
        def __init__(self, table: str) -> None:
            super().__init__(f"table {table} is missing", column=table)

    local = LocalError("grades")
    rebuilt = from_wire(to_wire(local))
    assert (
        type(rebuilt) is errors.InputError
        and str(rebuilt) == str(local) == "column 'grades': table grades is missing"
    )


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "RuntimeError", "error": "SELECT secret FROM vault"},
        {"kind": "InternalError", "error": "duckdb: SELECT secret FROM vault"},
        {"kind": "to_wire", "error": "SELECT secret FROM vault"},
        {"kind": "_WIRE_SCALARS", "error": "SELECT secret FROM vault"},
        {"kind": "Exception", "error": "SELECT secret FROM vault", "args": ["SELECT secret FROM vault"]},
        {"kind": ["InputError"], "error": "SELECT secret FROM vault"},
        {"error": "SELECT secret FROM vault"},
        {},
    ],
)
def test_an_unknown_kind_becomes_a_plain_error_that_repeats_nothing(record: dict[str, Any]) -> None:
    rebuilt = from_wire(record)
    assert type(rebuilt) is NbapropsError
    assert "secret" not in str(rebuilt) and "its log has the details" in str(rebuilt)


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        # the shape the service's runner records for a failed batch: no constructor arguments
        ({"kind": "UnknownBatchError", "error": "no batch 'b'"}, errors.TerminalError),
        ({"kind": "DatabaseHeldError", "error": "held"}, errors.StorageBusyError),
        ({"kind": "InputError", "error": "no games"}, errors.InputError),
        # arguments that are not the constructor's, or that do not rebuild the message sent
        (
            {"kind": "InputError", "error": "x", "args": ["x"], "fields": {"sql": "DROP"}},
            errors.TerminalError,
        ),
        ({"kind": "InputError", "error": "x", "args": [{"a": 1}], "fields": {}}, errors.TerminalError),
        (
            {"kind": "ConflictError", "error": "x", "args": ["y"], "fields": {"batch_id": "b"}},
            errors.TerminalError,
        ),
    ],
)
def test_a_known_kind_without_its_arguments_keeps_its_message_and_its_branch(
    record: dict[str, Any], kind: type[NbapropsError]
) -> None:
    rebuilt = from_wire(record)
    assert type(rebuilt) is kind and str(rebuilt) == record["error"]


# -- over the protocol: a holder in this process, its client over a real socket ----------------------------------
@pytest.fixture
def holding(tmp_path: Path) -> Iterator[Holding]:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    state: dict[str, BaseException] = {}

    def fail() -> None:
        raise state["error"]

    def echo(*, value: int, label: str = "") -> dict[str, Any]:
        return {"value": value, "label": label}

    holding = Holding(folder / "nb.duckdb", holder="nbaprops predict", commands={"fail": fail, "echo": echo})
    holding.state = state  # type: ignore[attr-defined]
    endpoint = Endpoint(holding).start()
    try:
        yield holding
    finally:
        endpoint.close()


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_the_holders_error_is_raised_by_the_client_with_its_attributes(
    holding: Holding, error: NbapropsError
) -> None:
    holding.state["error"] = error  # type: ignore[attr-defined]
    client = Holder.read(holding.db_path)
    assert client is not None and client.pid == os.getpid() and client.commands == ("fail", "echo")
    with pytest.raises(NbapropsError) as raised:
        client.call("fail")
    same(raised.value, error)


def test_an_unexpected_error_reaches_the_client_as_internal_and_only_the_log_has_its_text(
    holding: Holding, caplog: pytest.LogCaptureFixture
) -> None:
    holding.state["error"] = RuntimeError("Binder Error: SELECT secret FROM vault")  # type: ignore[attr-defined]
    client = Holder.read(holding.db_path)
    assert client is not None
    with caplog.at_level(logging.ERROR, logger="nbaprops.holder"), pytest.raises(NbapropsError) as raised:
        client.call("fail")
    assert type(raised.value) is NbapropsError and "secret" not in str(raised.value)
    assert "SELECT secret FROM vault" in caplog.text


def test_arguments_are_checked_against_the_operation_before_it_runs(holding: Holding) -> None:
    client = Holder.read(holding.db_path)
    assert client is not None
    assert client.call("echo", {"value": 3}) == {"value": 3, "label": ""}
    for args in ({}, {"value": 1, "sql": "DROP TABLE x"}):
        with pytest.raises(errors.InputError, match="not the arguments of this operation"):
            client.call("echo", args)


def test_a_closing_holder_sends_the_client_to_open_the_file_itself(holding: Holding) -> None:
    client = Holder.read(holding.db_path)
    assert client is not None
    holding.closing.set()
    with pytest.raises(HolderGoneError):
        client.call("echo", {"value": 1})
