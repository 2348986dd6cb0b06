"""``/v1/predictions``: the board of a date, as JSON or (``Accept: text/csv``) as the CLI's CSV."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from numpy.typing import NDArray

from nbaprops.clock import resolve_day
from nbaprops.config import Settings, book_list
from nbaprops.exports import csv_text
from nbaprops.pipeline.reads import python_columns
from nbaprops.service.auth import read_access
from nbaprops.service.deps import runtime
from nbaprops.service.errors import responses
from nbaprops.service.models import GAME_DATE_PATTERN, Market, PredictionList, SystemId
from nbaprops.service.operations import board_of
from nbaprops.service.routers.market import BooksQuery
from nbaprops.storage.seams import Backend

router = APIRouter(prefix="/v1", tags=["predictions"], dependencies=[Depends(read_access)])


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a missing number is null
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def board_json(day: date, board: dict[str, Any]) -> bytes:
    """The board as :class:`~nbaprops.service.models.PredictionList` JSON, written directly: a slate is a few
    thousand rows and validating each against the model on every poll would dominate the response time (the
    schema test checks the shape instead)."""
    names = board["names"]
    rows = [
        {name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in board["rows"]
    ]
    return json.dumps(
        {"game_date": day.isoformat(), "count": len(rows), "total": board["total"], "predictions": rows},
        separators=(",", ":"),
    ).encode()


def board_csv(board: dict[str, Any]) -> str:
    """Every column of the main table and the market's, as ``nbaprops predictions --csv`` writes it (formula
    cells neutralised, :mod:`nbaprops.exports`)."""
    return csv_text(board["names"], board["rows"])


_JSON_ESCAPED = r'[^ -~]|["\\]'
"""A character ``json.dumps`` (``ensure_ascii``) escapes: a quote, a backslash, anything outside printable ASCII."""


def _replaced(
    texts: pa.Array, slow: NDArray[np.bool_], values: pa.Array, write: Callable[[Any], str]
) -> pa.Array:
    """``texts`` with each value flagged in ``slow`` written by ``write`` instead (where Arrow's text is not
    Python's: rare, so one by one)."""
    at = np.flatnonzero(slow)
    if not at.size:
        return texts
    fixed = [write(v) for v in values.take(pa.array(at)).to_pylist()]
    return pc.replace_with_mask(texts, pa.array(slow), pa.array(fixed, type=pa.string()))


def _float_texts(values: pa.Array) -> pa.Array:
    """``float.__repr__`` of each double of ``values`` ("null" where it is missing or not finite), by Arrow:
    both write the shortest digits that read back as the number, Arrow without Python's ``.0`` after a whole
    number (added here) and with other bounds between plain and exponent notation (so a number Arrow writes
    with an exponent, or one below 1e-4 — Python's exponent, Arrow's ``0.0000…`` — or from 1e16 up, is written
    by Python)."""
    number = values.to_numpy(zero_copy_only=False)  # a null reads NaN
    finite = np.isfinite(number)
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(number)
        whole = np.floor(number) == number
    texts = pc.cast(values, pa.string())
    exponent = np.asarray(pc.fill_null(pc.match_substring(texts, "e"), False))
    far = (magnitude >= 1e16) | ((magnitude < 1e-4) & (number != 0.0))
    point = finite & whole & ~far & ~exponent
    if point.any():
        texts = pc.if_else(pa.array(point), pc.binary_join_element_wise(texts, ".0", ""), texts)
    texts = _replaced(texts, finite & (exponent | far), values, float.__repr__)
    return pc.if_else(pa.array(finite), texts, pa.scalar("null"))


def _json_texts(column: pa.ChunkedArray) -> pa.Array:
    """Each value of ``column`` as the JSON text ``json.dumps`` writes for it in :func:`board_json` (a number
    that is not finite, null; a date or time, its ISO text), as an Arrow string array, formatted by Arrow where
    it writes what Python does (:func:`_float_texts`; integers; booleans; a string quoted, unless ``json.dumps``
    escapes one of its characters) and by Python otherwise, a string or other value once per distinct value (a
    board's text columns repeat a few hundred names, its timestamps a handful)."""
    kind = column.type
    n = len(column)
    if pa.types.is_null(kind) or n == 0:  # (an empty board's columns may hold no chunk at all)
        return pa.array(["null"] * n, type=pa.string())
    values = column.combine_chunks()
    if pa.types.is_float64(kind):
        return _float_texts(values)
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):  # int.__repr__; json's true and false
        return pc.fill_null(pc.cast(values, pa.string()), "null")
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    if pa.types.is_string(kind):
        texts = _replaced(
            pc.binary_join_element_wise('"', distinct, '"', ""),
            np.asarray(pc.match_substring_regex(distinct, _JSON_ESCAPED)),
            distinct,
            json.dumps,
        )
    else:
        texts = pa.array([json.dumps(_json_value(v)) for v in distinct.to_pylist()], type=pa.string())
    return pc.fill_null(texts.take(encoded.indices), "null")


def table_json(day: date, table: pa.Table, total: int) -> bytes:
    """:func:`board_json` of a board held as an Arrow table, byte for byte, written by Arrow column by column:
    each row's text is one join of its values' texts (:func:`_json_texts`) between the keys, where
    ``json.dumps`` walked a dict per row."""
    head = json.dumps(
        {"game_date": day.isoformat(), "count": table.num_rows, "total": total}, separators=(",", ":")
    )
    if table.num_rows == 0:
        return f'{head[:-1]},"predictions":[]}}'.encode()
    parts: list[Any] = []
    for i, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        parts += [("{" if i == 0 else ",") + json.dumps(name) + ":", _json_texts(column)]
    rows = pc.binary_join_element_wise(*parts, "},", "")  # every row ends in "},": the last comma is dropped
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    text = memoryview(rows.buffers()[2])[offsets[rows.offset] : offsets[rows.offset + len(rows)] - 1]
    return b"".join([f'{head[:-1]},"predictions":['.encode(), text, b"]}"])


def board_body(
    backend: Backend,
    settings: Settings,
    day: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
    books: list[str] | None = None,
    as_csv: bool = False,
) -> bytes:
    """The body of ``GET /v1/predictions``: the board (:func:`~nbaprops.service.operations.board_of`) written
    from its Arrow columns, with the same bytes as :func:`board_json` / :func:`board_csv` of the
    ``predictions`` operation, without a Python row per prediction before the JSON."""
    table, total = board_of(
        backend,
        settings,
        game_date=day,
        market=market,
        system=system,
        bets_only=bets_only,
        limit=limit,
        books=books,
    )
    if as_csv:
        return csv_text(table.column_names, zip(*python_columns(table), strict=True)).encode()
    return table_json(day, table, total)


@router.get(
    "/predictions",
    response_model=PredictionList,
    summary="Active predictions of a date",
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV of every column with Accept: text/csv.",
        },
        **responses(401, 403, 422, 429, 503),
    },
)
async def predictions(
    request: Request,
    date: Annotated[str, Query(pattern=GAME_DATE_PATTERN, description="YYYY-MM-DD, TODAY or TOMORROW.")],
    market: Annotated[Market | None, Query(description="Only this market.")] = None,
    system: Annotated[SystemId | None, Query(description="Only this system.")] = None,
    bets_only: Annotated[bool, Query(description="Only rows recommending OVER or UNDER.")] = False,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="At most this many rows.")] = None,
    books: BooksQuery = None,
) -> Response:
    """Best expected value first: the line, P(over), the recommendation and its expected value beside each
    prediction, and its player-market's offers priced (consensus line, fair P(over), books, spread, the best
    over and under offers at the books you bet at, and what they save against the consensus book)."""
    rt = runtime(request)
    day = resolve_day(date, rt.clock, "date")
    as_csv = "text/csv" in request.headers.get("accept", "")

    def render() -> bytes:  # on a database thread: a slate's JSON is a few hundred kB
        return board_body(
            rt.backend,
            rt.settings,
            day,
            market=market,
            system=system,
            bets_only=bets_only,
            limit=limit,
            books=book_list(books),
            as_csv=as_csv,
        )

    # The board changes when a batch consolidates (a run here ends) or a write clears the cache (an ingest of
    # lines through the API is a write: the market columns follow it).
    body = await rt.read(
        ("predictions", day, market, system, bets_only, limit, books, as_csv), render, version=rt.version_of()
    )
    return Response(body, media_type="text/csv" if as_csv else "application/json")
