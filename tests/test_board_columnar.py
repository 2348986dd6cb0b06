"""Issue 21 part 1: the board is built as one Arrow table (storage read → filter and order → market columns →
line moves → rows or JSON) where it was built as Python rows. Its output must not change: every row, field and
value of the ``predictions`` operation, and the API's JSON and CSV bytes, are compared with the row-wise board
as shipped before (kept here as the reference: its SQL order, its per-row market join, ``with_line_moves``, and
the plain 32-halving bisection of ``fit_means``), on a real database file: the real PRA lines of 2024-01-15
(8-10 books), a game's line history (snapshots, so bets have a line move), bets, missing and NaN expected
values, ties, a second system, a market without offers and a row whose batch is gone.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.sources.historical import API_KEY, HistoricalOdds, fetch_all
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.cli.operate import board_json_text
from nbaprops.config import Settings
from nbaprops.evaluation.clv import MOVE_COLUMNS, MOVE_INPUTS, line_moves
from nbaprops.pipeline.board import MARKET_NAMES, _prediction_times, price_offers_of
from nbaprops.pricing import fair
from nbaprops.service.operations import OPERATIONS
from nbaprops.service.routers.predictions import board_body, board_csv, board_json, table_json
from nbaprops.storage import open_storage, query_rows
from nbaprops.storage.seams import Backend

DAY = "2024-01-15"
runner = CliRunner()
_ORDER_SQL = """SELECT * FROM __rows WHERE (? IS NULL OR system_id = ?) AND (? IS NULL OR market = ?)
                  AND (NOT ? OR recommendation IN ('OVER', 'UNDER'))
                ORDER BY expected_value DESC NULLS LAST, predicted_value DESC NULLS LAST, market, system_id,
                         player_lookup
                LIMIT ?"""


def _bisection(
    group: Any, line: Any, fair_p: Any, weight: Any, intercept: Any, slope: Any, n_groups: int
) -> Any:
    """``fit_means`` as shipped before: every one of the 32 halvings evaluated on every offer."""
    usable = (weight > 0) & np.isfinite(fair_p)
    target = fair._logit(np.where(usable, fair_p, 0.5))
    w = np.where(usable, weight, 0.0)
    lo = np.full(n_groups, np.log(fair._MEAN_RANGE[0]))
    hi = np.full(n_groups, np.log(fair._MEAN_RANGE[1]))
    for _ in range(fair._HALVINGS):
        mid = 0.5 * (lo + hi)
        log_mean = mid[group]
        model = fair._logit(
            fair.over_given_settled(np.exp(log_mean), np.exp(intercept + slope * log_mean), line)
        )
        above = np.bincount(group, weights=w * (model - target), minlength=n_groups) > 0.0
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    has = np.bincount(group, weights=w, minlength=n_groups) > 0
    return np.where(has, np.exp(0.5 * (lo + hi)), np.nan)


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def reference_board(
    backend: Backend,
    settings: Settings,
    day: date,
    *,
    market: str | None = None,
    system: str | None = None,
    bets_only: bool = False,
    limit: int | None = None,
    books: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The ``predictions`` operation as shipped before issue 21 (rows read into Python, joined row by row)."""
    active = backend.warehouse.active_predictions(day)
    params = [system, system, market, market, bets_only]
    names, rows = query_rows(active, _ORDER_SQL, [*params, limit if limit is not None else 2**62])
    total = len(query_rows(active, _ORDER_SQL, [*params, 2**62])[1])
    lists = [list(r) for r in rows]
    times = _prediction_times(backend, names, lists)
    pricing = (
        price_offers_of(
            backend,
            day,
            as_of=times,
            players=sorted({p for p, _ in times}),
            markets=sorted({m for _, m in times}),
            books=books,
        )
        if times
        else None
    )
    by_key: dict[tuple[str, str], list[Any]] = {}
    if pricing is not None:
        board = pricing.board
        renamed = {"fair_p_over": "p_over", "book_spread": "spread"}
        columns = [board[renamed.get(n, n)].to_pylist() for n in MARKET_NAMES]
        keys = zip(board["player_lookup"].to_pylist(), board["market"].to_pylist(), strict=True)
        for i, key in enumerate(keys):
            if key in times:
                by_key[key] = [_clean(c[i]) for c in columns]
    at = {n: i for i, n in enumerate(names)}
    empty = [None] * len(MARKET_NAMES)
    priced = [[*r, *by_key.get((r[at["player_lookup"]], r[at["market"]]), empty)] for r in lists]
    names, priced = with_line_moves(
        backend.features,
        [*names, *MARKET_NAMES],
        priced,
        threshold=settings.clv_moved_against,
        now=settings.as_of,
    )
    return {"names": names, "rows": priced, "total": total}


def with_line_moves(
    storage: Any,
    names: list[str],
    rows: list[list[Any]],
    *,
    threshold: float,
    now: datetime | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """The row-wise line moves as shipped before the columnar board (the reference's last step)."""
    at = {name: names.index(name) for name in MOVE_INPUTS if name in names}
    side = at.get("recommendation")
    bets = [i for i, row in enumerate(rows) if side is not None and row[side] in ("OVER", "UNDER")]
    found = (
        line_moves(storage, [{n: rows[i][j] for n, j in at.items()} for i in bets], now=now) if bets else []
    )
    moves: list[float | None] = [None] * len(rows)
    for i, move in zip(bets, found, strict=True):
        moves[i] = move
    out = [
        [*row, move, None if move is None else bool(move < -threshold - 1e-9)]
        for row, move in zip(rows, moves, strict=True)
    ]
    return [*names, *MOVE_COLUMNS], out


@pytest.fixture(scope="module")
def board_db(
    loaded_db_file: Path, pra_lines: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """2024-01-15 with the real PRA lines of the date, one game's line history (four snapshots), a
    moving_average batch; then, in SQL: bets (so line moves), missing, NaN and tied expected values, every row
    copied as a second system (ties across systems), a few as a market without a line, whose batch is gone."""
    folder = tmp_path_factory.mktemp("board")
    db = folder / "nb.duckdb"
    shutil.copyfile(loaded_db_file, db)
    with pra_lines["2023-24"].open(newline="") as handle:
        real = [r for r in csv.DictReader(handle) if r["event_date"] == DAY]
    day_lines = folder / "day_pra.csv"
    with day_lines.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(real[0]))
        writer.writeheader()
        writer.writerows(real)
    storage = open_storage(db)
    fetch_all(
        storage, Settings(db_path=db, odds_api_key=API_KEY, odds_api_url="http://odds.test"), HistoricalOdds()
    )
    storage.close()
    result = runner.invoke(
        app,
        ["predict", "--date", DAY, "--markets", "pra", "--systems", "moving_average", "--train-days", "60",
         "--lines", str(day_lines), "--db", str(db)],
        env={"NBAPROPS_DATA_DIR": str(folder / "artifacts")},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    storage = open_storage(db)
    storage.execute(
        """UPDATE player_prop_predictions SET
               recommendation = CASE WHEN hash(player_lookup) % 3 = 0 THEN 'OVER'
                                     WHEN hash(player_lookup) % 3 = 1 THEN 'UNDER' ELSE recommendation END,
               expected_value = CASE WHEN hash(player_lookup) % 7 = 0 THEN NULL
                                     WHEN hash(player_lookup) % 7 = 1 THEN 'NaN'::DOUBLE
                                     WHEN hash(player_lookup) % 7 = 2 THEN 0.05
                                     ELSE round((hash(player_lookup) % 1000) / 5000.0, 3) END,
               predicted_value = CASE WHEN hash(player_lookup) % 11 = 0 THEN 'NaN'::DOUBLE
                                      WHEN hash(player_lookup) % 11 = 1 THEN 20.0 ELSE predicted_value END
           WHERE is_active AND line_value IS NOT NULL"""
    )
    storage.execute(
        """INSERT INTO player_prop_predictions BY NAME
           SELECT * REPLACE (sha1(prediction_id || 'b')[:20] AS prediction_id, 'matchup' AS system_id)
           FROM player_prop_predictions WHERE is_active"""
    )
    storage.execute(
        """INSERT INTO player_prop_predictions BY NAME
           SELECT * REPLACE (sha1(prediction_id || 'c')[:20] AS prediction_id, 'points' AS market,
                             'gone_batch' AS batch_id)
           FROM player_prop_predictions WHERE is_active AND system_id = 'matchup' AND hash(player_lookup) % 4 = 0"""
    )
    counts = storage.fetchall(
        """SELECT count(*), count(*) FILTER (recommendation IN ('OVER', 'UNDER')),
                  count(*) FILTER (isnan(expected_value)), count(*) FILTER (expected_value IS NULL),
                  count(DISTINCT market), count(*) FILTER (line_value IS NULL)
           FROM player_prop_predictions WHERE is_active"""
    )[0]
    storage.close()
    rows, bets, nan_ev, null_ev, markets, unlined = counts
    assert rows > 300 and bets > 20 and nan_ev > 0 and null_ev > 0 and markets == 2 and unlined > 0, counts
    yield db


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types (a NaN equals a NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


CASES: list[dict[str, Any]] = [
    {},
    {"market": "pra"},
    {"system": "matchup", "market": "points"},
    {"bets_only": True},
    {"limit": 37},
    {"limit": 5, "bets_only": True, "system": "moving_average"},
    {"books": ("FanDuel", "betmgm")},
    {"market": "points", "system": "moving_average", "bets_only": True},  # no row
]


@pytest.mark.parametrize("args", CASES, ids=[json.dumps(c) for c in CASES])
def test_the_board_is_the_row_wise_board_value_for_value(
    board_db: Path, args: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(db_path=board_db)
    day = date.fromisoformat(DAY)
    books = args.pop("books", ())
    with open_storage(board_db, read_only=True) as storage:
        board = OPERATIONS["predictions"](storage, settings, game_date=DAY, books=list(books), **args)
        with monkeypatch.context() as patched:
            patched.setattr(fair, "fit_means", _bisection)
            expected = reference_board(storage, settings, day, books=books, **args)
    assert board["names"] == expected["names"] and board["total"] == expected["total"]
    assert len(board["rows"]) == len(expected["rows"])
    assert board["rows"] or args.get("market") == "points"
    names = board["names"]
    for got, want in zip(board["rows"], expected["rows"], strict=True):
        differ = [(n, g, w) for n, g, w in zip(names, got, want, strict=True) if not _same(g, w)]
        assert not differ, (got[names.index("prediction_id")], differ)
    moved = [r[names.index("line_move")] for r in board["rows"]]
    priced = [r[names.index("consensus_line")] for r in board["rows"]]
    if not args:  # the full board holds every kind of row the comparison is meant to cover
        assert any(m is not None for m in moved) and any(p is None for p in priced)
        assert any(p is not None for p in priced)
    # what the API answers, written from the Arrow columns: the same bytes as the row-wise board's
    with open_storage(board_db, read_only=True) as storage:
        body = {
            as_csv: board_body(storage, settings, day, books=list(books), as_csv=as_csv, **args)
            for as_csv in (False, True)
        }
    assert body[False] == board_json(day, expected) == board_json(day, board)
    assert body[True] == board_csv(expected).encode() == board_csv(board).encode()


def test_the_fast_bisection_is_the_bisection_bit_for_bit() -> None:
    """``fit_means`` evaluates only the midpoints near its bracket; every mean equals the plain bisection's,
    bit for bit, over random slates with half-point and integer lines, missing and extreme fair prices, zero
    weights, and dispersion slopes inside (the fast path) and outside [-1, 0] (every midpoint)."""
    rng = np.random.default_rng(21)
    for trial in range(60):
        n_groups = int(rng.integers(1, 400))
        group = np.repeat(np.arange(n_groups), rng.integers(1, 12, n_groups))
        centre = rng.uniform(0.5, 60.0, n_groups)
        line = np.round((centre[group] + rng.normal(0.0, 1.5, group.size)) * 2) / 2
        line = np.maximum(np.floor(line) if trial % 3 == 0 else line, 0.5)
        fair_p = np.clip(rng.normal(0.5, 0.08, group.size), 0.001, 0.999)
        fair_p[rng.random(group.size) < 0.05] = np.nan
        if trial % 4 == 0:
            fair_p[rng.random(group.size) < 0.05] = rng.choice([1e-9, 1 - 1e-9])
        weight = rng.uniform(0.0, 2.0, group.size) * (rng.random(group.size) > 0.1)
        slope = np.full(group.size, (-1.0, -0.5, 0.0, -1.5, 0.5)[trial % 5])
        intercept = np.full(group.size, np.log(2.5) + rng.normal(0.0, 0.5))
        want = _bisection(group, line, fair_p, weight, intercept, slope, n_groups)
        got = fair.fit_means(group, line, fair_p, weight, intercept, slope, n_groups)
        assert np.array_equal(got, want, equal_nan=True), (trial, np.flatnonzero(got != want)[:5])


def test_predictions_json_is_the_indented_json_of_the_row_wise_board(board_db: Path) -> None:
    """``predictions --json`` prints ``json.dumps(payload, default=str, indent=2)`` of the board, written in one
    pass of the C encoder (:func:`board_json_text`): the same text as the row-wise board's."""
    with open_storage(board_db, read_only=True) as storage:
        expected = reference_board(storage, Settings(db_path=board_db), date.fromisoformat(DAY))
    records = [dict(zip(expected["names"], r, strict=True)) for r in expected["rows"]]
    payload = {"game_date": DAY, "count": len(records), "predictions": records, "no_bets": []}
    result = runner.invoke(app, ["predictions", "--date", DAY, "--json", "--db", str(board_db)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == json.dumps(payload, default=str, indent=2) + "\n"


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"player_name": 'a "quoted" },\n      { name\\', "line": float("nan"), "at": date(2024, 1, 15)}],
        [{"x": None, "y": True, "z": "é ☃ \u2028"}, {"x": 1.5e-300, "y": False, "z": "}, {"}],
        [{"nested": [1, 2]}, {"nested": {"a": 1}}],
    ],
)
def test_the_indented_board_text_is_json_dumps_indent_2(rows: list[dict[str, Any]]) -> None:
    payload = {"game_date": DAY, "count": len(rows), "predictions": rows, "no_bets": ['none "here"']}
    assert board_json_text(payload) == json.dumps(payload, default=str, indent=2)


_TRICKY_FLOATS = [0.0, -0.0, 1.0, -110.0, 0.5, 0.1 + 0.2, 1 / 3, 1e-4, 9.999e-5, 1e-5, -2.5e-7, 5e-324, 1e15,
                  123456789012345.6, 9999999999999998.0, 1e16, 1.2345678901234568e17, 1e22, 1.7976931348623157e308,
                  float("inf"), float("-inf"), float("nan"), None]  # fmt: skip
_TRICKY_TEXTS = [
    'say "hi"',
    "back\\slash",
    "é ☃ \u2028",
    "\x7f",
    "\x00\t",
    "😀",
    "plain",
    "",
    None,
    "it's",
    "/",
]


def _random_doubles(seed: int, size: int) -> list[float]:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2**63, size, dtype=np.int64).view(np.float64)  # every exponent
    scaled = 10 ** rng.uniform(-8, 20, size) * rng.choice([-1.0, 1.0], size)
    rounded = [round(float(v), int(d)) for v, d in zip(scaled, rng.integers(0, 8, size), strict=True)]
    return [*raw.tolist(), *scaled.tolist(), *rounded, *np.round(scaled).tolist()]


@pytest.mark.parametrize(
    "columns",
    [
        {"x": pa.array(_TRICKY_FLOATS, type=pa.float64())},
        {"x": pa.array(_random_doubles(21, 20_000), type=pa.float64())},
        {"x": pa.chunked_array([[1.5, None], [], [-0.0, 1e-9]], type=pa.float64())},
        {"x": pa.nulls(3, pa.float64()), "n": pa.nulls(3), "s": pa.nulls(3, pa.string())},
        {
            "s": pa.array(_TRICKY_TEXTS),
            "i": pa.array(range(11), pa.int32()),
            "b": pa.array([True, None] * 5 + [False]),
        },
        {"d": pa.array([date(2024, 1, 15), None]), "t": pa.array([datetime(2024, 1, 15, 1, 2, 3, 4), None])},
        {"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())},
    ],
    ids=["tricky-doubles", "random-doubles", "chunks", "nulls", "texts", "dates", "empty"],
)
def test_the_arrow_json_is_json_dumps_byte_for_byte(columns: dict[str, Any]) -> None:
    """The API's JSON written by Arrow (``table_json``) is ``board_json``'s, byte for byte, for the values where
    Arrow's text is not Python's: whole numbers, exponents on either side, -0.0, numbers that are not finite,
    characters ``json.dumps`` escapes, nulls, several chunks and no row."""
    table = pa.table(columns)
    rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
    board = {"names": table.column_names, "rows": rows, "total": 7}
    assert table_json(date(2024, 1, 15), table, 7) == board_json(date(2024, 1, 15), board)
