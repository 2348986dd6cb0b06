"""Files from strangers (issue 17, finding 1; issue 18, item 9): a file's headers and cells are data, never SQL.

Every ingest kind is fed files whose headers and cells hold SQL, quotes, ``$$``, ``;``, comments, NUL, Rich markup,
10 kB names and unicode, through the CLI (``nbaprops ingest KIND FILE``) and the HTTP API (``POST
/v1/ingest/KIND``; the API has no injuries route), on real DuckDB files holding the shipped box scores. Whatever
the file, nothing outside it is read (a canary file's content never shows up), no file is written, no table
changes except the one the ingest names, and the outcome is a report or one line ``Error: …`` (a 4xx with a
one-line message over HTTP).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer.main
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.service.conftest import KEYS, LiveServer, copy_db, service_settings
from typer.testing import CliRunner

from nbaprops.cli import app

CANARY = "canary-5f1d9c2e-do-not-read"
"""The content of a file outside every input: it must never appear in an output or a table."""

SCALE = float(os.environ.get("NBAPROPS_HOSTILE_SCALE", "1"))
"""Multiplies the examples below (e.g. ``NBAPROPS_HOSTILE_SCALE=20`` to search harder than ``make test`` does)."""
CLI_EXAMPLES = max(1, int(8 * SCALE))
"""Per kind through the CLI: each example opens the database file, ingests and renders (about 0.5 s)."""
API_EXAMPLES = max(1, int(20 * SCALE))
"""Per kind through the HTTP API: the server keeps its database open (about 0.08 s an example)."""

KINDS = ("boxscores", "lines", "schedule", "injuries")
TABLES = {
    "boxscores": {"box_scores", "teams"},
    "lines": {"prop_lines"},
    "schedule": {"schedule"},
    "injuries": {"injury_reports"},
}
"""The tables an ingest of each kind may change (besides ``ingest_log``)."""

# One valid row per kind, at a date no shipped data uses (2030), so a run that stores it changes only new rows.
BASE: dict[str, dict[str, str]] = {
    "boxscores": {
        "PLAYER_ID": "99999001",
        "PLAYER_NAME": "Hostile Tester",
        "TEAM_ABBREVIATION": "BOS",
        "GAME_ID": "0099900001",
        "GAME_DATE": "2030-01-02",
        "MATCHUP": "BOS vs. LAL",
        "MIN": "30",
        "PTS": "12",
    },
    "lines": {
        "game_date": "2030-01-02",
        "player_name": "Jayson Tatum",
        "market": "points",
        "line": "26.5",
        "bookmaker": "MyBook",
        "over_price": "-110",
        "under_price": "-110",
    },
    "schedule": {"game_date": "2030-01-02", "home_team": "BOS", "away_team": "LAL"},
    "injuries": {
        "Report Time": "2030-01-02T17:00:00-05:00",
        "Game Date": "01/02/2030",
        "Team": "Boston Celtics",
        "Player Name": "Tatum, Jayson",
        "Current Status": "Out",
    },
}


@dataclass(frozen=True)
class Places:
    """Where the canary lives and where a payload would write."""

    canary: Path
    written: Path


def payloads(places: Places, date_column: str = "game_date") -> dict[str, str]:
    """Headers that ran as SQL before the fix (each with a column ``x`` beside it, as the old reader needed):

    ``leak`` put the canary's content in ``date_column`` and the error message printed it; ``delete`` removed
    the box scores of the latest shipped date for good; ``write`` wrote a file the payload named.
    """
    return {
        "leak": f'x" AS VARCHAR) AS "x2", (SELECT content FROM read_text($${places.canary}$$)) AS "{date_column}", '
        "' AS \"w",
        "delete": 'x" AS VARCHAR) AS "x2" FROM (SELECT 1 AS x); '
        "DELETE FROM box_scores WHERE game_date = (SELECT max(game_date) FROM box_scores WHERE game_date < DATE '2030-01-01'); --",
        "write": f"x\" AS VARCHAR) AS \"x2\" FROM (SELECT 1 AS x); COPY (SELECT 'pwned') TO '{places.written}'; --",
    }


DATE_COLUMN = {
    "boxscores": "GAME_DATE",
    "lines": "game_date",
    "schedule": "game_date",
    "injuries": "Game Date",
}


def write_table(path: Path, columns: list[tuple[str, list[str | None]]]) -> Path:
    """A Parquet, JSON (one object a line) or CSV file with exactly these headers and cells."""
    names = [name for name, _ in columns]
    if path.suffix == ".parquet":
        arrays = [pa.array(values, pa.string()) for _, values in columns]
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    elif path.suffix == ".json":
        rows = len(columns[0][1]) if columns else 0
        with path.open("w", encoding="utf-8") as handle:
            for i in range(rows):
                handle.write(json.dumps({name: values[i] for name, values in columns}) + "\n")
    else:
        with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            for row in zip(*(values for _, values in columns), strict=True):
                writer.writerow(row)
    return path


_last_state: dict[Path, dict[str, tuple[int, int]]] = {}
"""The state each database file was left in by the last CLI example (saves one read per example)."""


def table_state(db: Path) -> dict[str, tuple[int, int]]:
    """Every table of the database file: (row count, hash of all its rows)."""
    with duckdb.connect(str(db), read_only=True) as con:
        state = _state_of(con)
    _last_state[db] = state
    return state


def _state_of(store: Any) -> dict[str, tuple[int, int]]:
    """Works on a DuckDB connection and on a DuckDBStorage (both have ``execute(...).fetchall()``)."""
    tables = [
        r[0]
        for r in store.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
    ]
    state = {}
    for table in tables:
        # Names come from the catalogue of our own database, not from a file.
        row = store.execute(f'SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM "{table}" t').fetchall()[0]
        state[table] = (int(row[0]), int(row[1]))
    return state


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def assert_one_line_error(text: str) -> None:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), text
    assert_no_internals(lines[0])


DUCKDB_TEXT = (
    "Binder Error",
    "Parser Error",
    "Invalid Input Error",
    "Catalog Error",
    "Conversion Error",
    "LINE 1:",
)


def assert_no_internals(message: str) -> None:
    """No DuckDB text, no SQL of ours: a message quotes the user's file, never our statement."""
    for internal in (*DUCKDB_TEXT, "database error", "Possible Solution", "nonneg_number", "TEMP TABLE"):
        assert internal not in message, message


def assert_only_intended_changes(
    kind: str, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], stored: bool
) -> None:
    assert set(after) == set(before), "an ingest created or dropped a table"
    allowed = (TABLES[kind] | {"ingest_log"}) if stored else set()
    changed = {t for t in before if before[t] != after[t]}
    assert changed <= allowed, f"{kind} changed {changed - allowed}"
    for table in TABLES[kind]:
        assert after[table][0] >= before[table][0], f"{kind} removed rows of {table}"


# -- strategies -------------------------------------------------------------------------------------------------
FRAGMENTS = (
    '"',
    "'",
    "$$",
    ";",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    ",",
    " AS ",
    "SELECT ",
    "VARCHAR",
    "DROP TABLE box_scores",
    "DELETE FROM schedule",
    "ATTACH ':memory:' AS m",
    "\x00",
    "\n",
    "\r",
    "\t",
    "[red]",
    "[/]",
    "[bold]x[/bold]",
    '=HYPERLINK("http://evil.example")',
    "é",
    "名前",
    "\u202e",
    "%s",
    "{0}",
    "\\",
    "__line",
    "__c0",
    "game_date",
    "Team",
)


def hostile_text(places: Places) -> st.SearchStrategy[str]:
    crafted = payloads(places)
    pieces = (*FRAGMENTS, f"read_text('{places.canary}')", f"COPY (SELECT 1) TO '{places.written}'")
    return st.one_of(
        st.sampled_from(sorted(crafted.values())),
        st.lists(st.sampled_from(pieces), min_size=1, max_size=6).map("".join),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
        st.sampled_from(["x" * 10_000, '"' * 10_000, "é" * 5_000]),
    )


@st.composite
def hostile_files(draw: st.DrawFn, kind: str, places: Places, suffixes: tuple[str, ...]) -> tuple[str, list]:
    """A file of ``kind``: its valid row with some cells replaced, some headers renamed, hostile columns added."""
    text = hostile_text(places)
    columns: list[tuple[str, list[str | None]]] = []
    for name, value in BASE[kind].items():
        if draw(st.integers(0, 9)) == 0:
            name = draw(text)  # a required column renamed: refused as missing, never run
        if draw(st.integers(0, 3)) == 0:
            value = draw(text)
        columns.append((name, [value]))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(columns)))
        columns.insert(position, (draw(text), [draw(text)]))
    if draw(st.booleans()):
        columns.insert(0, ("x", ["1"]))  # the old reader's injections needed a column named x
    return draw(st.sampled_from(suffixes)), columns


# -- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Places:
    folder = tmp_path_factory.mktemp("outside")
    canary = folder / "canary.txt"
    canary.write_text(CANARY + "\n")
    return Places(canary=canary, written=folder / "written.csv")


@pytest.fixture(scope="module")
def cli_db(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database file for every CLI example of the module (each example checks what it changed)."""
    return copy_db(loaded_db_file, tmp_path_factory.mktemp("hostile-cli"))


@pytest.fixture(scope="module")
def server(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("hostile-api"))
    with LiveServer(service_settings(db, tmp_path_factory.mktemp("hostile-artifacts"))) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client:
        yield client


runner = CliRunner()


def ingest_cli(kind: str, path: Path, db: Path, *options: str) -> tuple[int, str, str]:
    """``nbaprops ingest KIND PATH --db DB [options]``: exit code, stdout, stderr."""
    _last_state.pop(db, None)  # the database may change: the next check reads it afresh
    result = runner.invoke(app, ["ingest", kind, str(path), "--db", str(db), *options])
    return result.exit_code, result.stdout, result.stderr


def check_cli_run(kind: str, path: Path, db: Path, places: Places) -> tuple[int, str]:
    """Ingest ``path`` through the CLI and assert the battery's promises; returns exit code and output."""
    watched = files_under(places.canary.parent) | files_under(db.parent)
    before = _last_state.get(db) or table_state(db)
    code, stdout, stderr = ingest_cli(kind, path, db)
    after = table_state(db)
    output = stdout + stderr
    assert CANARY not in output
    assert_only_intended_changes(kind, before, after, stored=code == 0)
    new_files = (files_under(places.canary.parent) | files_under(db.parent)) - watched
    assert not {p for p in new_files if not p.name.endswith((".wal", ".endpoint.json"))}, new_files
    assert not places.written.exists()
    assert code in (0, 1), output
    if code == 1:
        assert_one_line_error(stderr)
    else:
        assert "rows_read" in stdout
    return code, output


def check_api_run(kind: str, path: Path, server: LiveServer, api: httpx.Client, places: Places) -> None:
    store = server.runtime.storage
    watched = files_under(places.canary.parent)
    before = _state_of(store)
    with path.open("rb") as handle:
        response = api.post(f"/v1/ingest/{kind}", files={"files": (path.name, handle.read())})
    after = _state_of(store)
    assert CANARY not in response.text
    assert_only_intended_changes(kind, before, after, stored=response.status_code == 200)
    assert files_under(places.canary.parent) == watched
    assert not places.written.exists()
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        message = response.json()["error"]
        assert len(message.splitlines()) == 1, message
        assert_no_internals(message)


# -- the injections of the issue, one by one --------------------------------------------------------------------
# Every kind read its files through the same reader, where the injection ran before any kind's own checks: the
# leak is tried on every kind, the deletion and the write on one (schedules) — they are the same hole.
INJECTIONS = [
    *((kind, "leak") for kind in KINDS),
    ("schedule", "delete"),
    ("schedule", "write"),
]


@pytest.mark.parametrize(("kind", "payload"), INJECTIONS)
def test_a_header_written_as_sql_is_only_a_name_in_the_cli(
    kind: str, payload: str, places: Places, cli_db: Path, tmp_path: Path
) -> None:
    """Before: ``read_text_table`` pasted Parquet headers into its SQL; ``leak`` printed the canary file in the
    error message, ``delete`` removed 20 box scores for good, ``write`` created a file (issue 17, finding 1)."""
    header = payloads(places, DATE_COLUMN[kind])[payload]
    columns = [("x", ["1"]), (header, ["1"]), *((k, [v]) for k, v in BASE[kind].items())]
    path = write_table(tmp_path / f"{kind}.parquet", columns)
    check_cli_run(kind, path, cli_db, places)


@pytest.mark.parametrize(("kind", "payload"), [i for i in INJECTIONS if i[0] != "injuries"])
def test_a_header_written_as_sql_is_only_a_name_in_the_api(
    kind: str, payload: str, places: Places, server: LiveServer, api: httpx.Client, tmp_path: Path
) -> None:
    """Before: the same headers uploaded to ``POST /v1/ingest/KIND`` ran on the server's database."""
    header = payloads(places, DATE_COLUMN[kind])[payload]
    columns = [("x", ["1"]), (header, ["1"]), *((k, [v]) for k, v in BASE[kind].items())]
    check_api_run(kind, write_table(tmp_path / f"{kind}.parquet", columns), server, api, places)


# -- the battery --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_files_through_the_cli(
    kind: str,
    places: Places,
    cli_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path_factory.mktemp(f"cli-{kind}")
    # The runner builds the click command from the Typer app on every call (0.2 s); once is enough here.
    command = typer.main.get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)

    @settings(max_examples=CLI_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=hostile_files(kind, places, (".parquet", ".csv", ".json")))
    def run(case: tuple[str, list[tuple[str, list[str | None]]]]) -> None:
        suffix, columns = case
        path = folder / f"input{suffix}"
        path.unlink(missing_ok=True)
        try:
            write_table(path, columns)
        except (pa.ArrowException, UnicodeError, ValueError):
            return  # a table the writer itself cannot write (a NUL in a Parquet name): no file to read
        check_cli_run(kind, path, cli_db, places)

    run()


@pytest.mark.parametrize("kind", ["boxscores", "lines", "schedule"])
def test_hostile_files_through_the_api(
    kind: str,
    places: Places,
    server: LiveServer,
    api: httpx.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp(f"api-{kind}")

    @settings(max_examples=API_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=hostile_files(kind, places, (".parquet", ".csv")))
    def run(case: tuple[str, list[tuple[str, list[str | None]]]]) -> None:
        suffix, columns = case
        path = folder / f"input{suffix}"
        path.unlink(missing_ok=True)
        try:
            write_table(path, columns)
        except (pa.ArrowException, UnicodeError, ValueError):
            return
        check_api_run(kind, path, server, api, places)

    run()


# -- bad files, in the user's words (issue 18, item 9) ------------------------------------------------------------
def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, the one line the CLI prints after ``Error: ``)."""
    binary = folder / "photo.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    folder_input = folder / "lines.csv"
    folder_input.mkdir()
    empty = folder / "empty.csv"
    empty.write_text("")
    blank = folder / "blank.csv"
    blank.write_text("\n\n")
    damaged = folder / "damaged.parquet"
    damaged.write_bytes(b"PAR1 this is not really parquet")
    not_number = folder / "typo.csv"
    not_number.write_text(
        "game_date,player_name,market,line,bookmaker,over_price,under_price\n"
        "2030-01-02,Jayson Tatum,points,twenty,MyBook,-110,-110\n"
    )
    return {
        "binary": (
            binary,
            f"{binary}: is not a CSV file (it holds binary data); save it as CSV (UTF-8) or Parquet",
        ),
        "folder": (folder_input, f"a folder, not a file: {folder_input}"),
        "empty": (empty, f"{empty}: the file is empty"),
        "blank": (blank, f"{blank}: the file is empty"),
        "damaged": (damaged, f"{damaged}: cannot be read as Parquet (not a Parquet file, or a damaged one)"),
        "not a number": (not_number, f"{not_number}, line 2, column 'line': value 'twenty' is not a number"),
    }


BAD_FILES = ("binary", "folder", "empty", "blank", "damaged", "not a number")


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_one_line_in_the_users_words(name: str, cli_db: Path, tmp_path: Path) -> None:
    """Before: a binary file printed DuckDB's 23-line sniffer dump (SQL, reader settings, advice such as
    ``ignore_errors=true``); a folder said "no such file"; an empty file said "missing required column"; a bad
    number said "cannot be read as nonneg_number"."""
    path, message = _bad_files(tmp_path)[name]
    code, stdout, stderr = ingest_cli("lines", path, cli_db)
    assert (code, stdout, stderr) == (1, "", f"Error: {message}\n")


@pytest.mark.parametrize("name", ["binary", "empty", "damaged", "not a number"])
def test_a_bad_upload_is_one_line_in_the_users_words(name: str, api: httpx.Client, tmp_path: Path) -> None:
    """Before: the API's 422 body carried the same DuckDB dump, or an internal type name."""
    path, message = _bad_files(tmp_path)[name]
    response = api.post("/v1/ingest/lines", files={"files": (path.name, path.read_bytes())})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == message.replace(str(path), path.name)


@pytest.mark.parametrize("name", ["sched[1].csv", "sched?.csv", "sched*.csv"])
def test_a_file_name_is_not_a_pattern(name: str, cli_db: Path, tmp_path: Path) -> None:
    """Before: DuckDB's reader expanded the name as a glob: ``sched[1].csv`` read ``sched1.csv`` beside it, and
    ``sched*.csv`` read every schedule of the folder."""
    header = "game_date,home_team,away_team\n"
    (tmp_path / "sched1.csv").write_text(header + "2030-02-01,MIA,NYK\n2030-02-01,DEN,PHX\n")
    named = tmp_path / name
    named.write_text(header + "2030-02-02,BOS,LAL\n")
    code, stdout, stderr = ingest_cli("schedule", named, cli_db, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["rows_read"] == 1


def test_names_in_a_file_are_shown_as_written_never_as_markup(cli_db: Path, tmp_path: Path) -> None:
    """Before: an unmatched player named ``[/] Nobody`` made ``nbaprops ingest lines`` crash while rendering
    its report (``Error: internal error: MarkupError …``, exit 2), and ``[link=…]`` became a link."""
    names = ["[/] Nobody", "[link=http://evil.example]Click[/link]"]
    path = write_table(
        tmp_path / "[red]lines.csv",
        [
            ("game_date", ["2030-01-05"] * 2),
            ("player_name", names),
            ("market", ["points"] * 2),
            ("line", ["20.5"] * 2),
            ("bookmaker", ["[bold]Book"] * 2),
            ("over_price", ["-110"] * 2),
            ("under_price", ["-110"] * 2),
        ],
    )
    code, stdout, stderr = ingest_cli("lines", path, cli_db)
    assert code == 0, stderr
    assert all(name in stdout for name in names)
