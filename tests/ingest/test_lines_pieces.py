"""A lines file is checked and merged a range of dates at a time (``PIECE_ROWS``): the same tables, report and
errors as when the call's rows are worked whole.

Before (issue 21): ten million lines were worked whole; DuckDB spilled 8.4 GB of temporary tables and kept about
12 MB of memory per GB spilled outside its bound, so the ingest took 330 MB above idle against a 300 MB goal.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.ingest.csvfiles import write_csv

from nbaprops.errors import InputError, StorageBusyError
from nbaprops.ingest import lines
from nbaprops.ingest.lines import ingest_lines
from nbaprops.storage import open_storage

TABLES = ("prop_lines", "prop_line_snapshots")


def _ingest_all(db: Path, files: list[list[Path]]) -> tuple[list[dict[str, Any]], dict[str, list[tuple]]]:
    """Each call's report, then every row of the tables the ingest writes."""
    with open_storage(db) as storage:
        reports = [ingest_lines(storage, paths).details for paths in files]
        stored = {t: storage.fetchall(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}
    return reports, stored


def test_pieces_store_and_report_what_the_whole_call_does(
    loaded_db_file: Path, pra_lines: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2023-24 (exact duplicates, superseded postings, unmatched names, matched spellings, quarantined lines)
    then 2024-25 with 2023-24 again (every key already stored) and lines far from the other books', whole and in
    pieces of ~8,000 rows."""
    with pra_lines["2024-25"].open(newline="") as handle:
        real = list(csv.DictReader(handle))[:4000:400]
    typos = write_csv(
        tmp_path / "typos_pra.csv",
        [{**r, "bookmaker": "Typo", "line": str(float(r["line"]) + 30)} for r in real],
    )
    calls = [[pra_lines["2023-24"]], [pra_lines["2024-25"], pra_lines["2023-24"], typos]]
    whole_db, pieces_db = tmp_path / "whole.duckdb", tmp_path / "pieces.duckdb"
    shutil.copyfile(loaded_db_file, whole_db)
    shutil.copyfile(loaded_db_file, pieces_db)
    whole = _ingest_all(whole_db, calls)

    made: list[int] = []
    planned = lines._pieces

    def counted(cur: Any, files: Any) -> Any:
        pieces, days = planned(cur, files)
        made.append(len(pieces))
        return pieces, days

    monkeypatch.setattr(lines, "PIECE_ROWS", 8_000)
    monkeypatch.setattr(lines, "_pieces", counted)
    in_pieces = _ingest_all(pieces_db, calls)
    assert made[0] >= 3 and made[1] >= 6  # it did work in pieces (28k rows, then 53k)
    assert in_pieces[0] == whole[0]  # every figure and list of both reports, in the same order
    assert in_pieces[1] == whole[1]
    first, second = whole[0]
    assert first["exact_duplicates"] and first["superseded_rows"] and first["unmatched"]
    assert first["matched_spellings"] and len(second["quarantined"]) >= 8


def _private_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this test alone (where the pieces' Parquet files go)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def _clash(day: str, player: str, line: str) -> list[dict[str, str]]:
    """Two rows of one key with different prices and no posted_at: refused."""
    row = {"game_date": day, "player_name": player, "market": "pra", "line": line, "bookmaker": "DraftKings"}
    return [
        {**row, "over_price": "-110", "under_price": "-110"},
        {**row, "over_price": "-120", "under_price": "100"},
    ]


def test_the_first_problem_of_the_file_is_named_whichever_piece_holds_it(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clash on a later date at lines 2-3 and one on an earlier date at lines 4-5: lines 2-3 are the first
    problem, though the earlier date's piece is worked first."""
    rows = _clash("2024-02-10", "LeBron James", "40.5") + _clash("2024-01-05", "Stephen Curry", "38.5")
    path = write_csv(tmp_path / "clash_pra.csv", rows)
    monkeypatch.setattr(lines, "PIECE_ROWS", 1)  # one date per piece
    scratch = _private_temp(tmp_path, monkeypatch)
    with open_storage(db_path) as storage, pytest.raises(InputError) as info:
        ingest_lines(storage, [path])
    assert (info.value.path, info.value.row) == (str(path), 3)
    with open_storage(db_path) as storage:
        assert storage.scalar("SELECT count(*) FROM prop_lines") == 0
        assert not storage.fetchall("SELECT table_name FROM duckdb_tables() WHERE temporary")
    assert not list(scratch.iterdir())  # the pieces' files are gone


def test_lines_stored_meanwhile_refuse_the_merge_retryably(
    db_path: Path, pra_lines: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows to write are worked out outside the merge's transaction. Another ingest storing lines of the
    same dates in between would make them stale (two main lines of one book): the merge refuses with the
    retryable StorageBusyError, nothing is written, and the call made again stores the file."""
    with pra_lines["2024-25"].open(newline="") as handle:
        real = list(csv.DictReader(handle))
    first, other = (
        write_csv(tmp_path / "first_pra.csv", real[:50]),
        write_csv(tmp_path / "other_pra.csv", real[50:100]),
    )
    spec = lines.LINES

    def meanwhile(cur: Any, files: Any) -> Any:
        combined = spec.combine(cur, files)
        monkeypatch.setattr(lines, "LINES", spec)  # once
        ingest_lines(storage, [other])  # on the same dates, between the combine and the merge
        return combined

    scratch = _private_temp(tmp_path, monkeypatch)
    with open_storage(db_path) as storage:
        monkeypatch.setattr(lines, "LINES", dataclasses.replace(spec, combine=meanwhile))
        with pytest.raises(StorageBusyError):
            ingest_lines(storage, [first])
        assert not list(scratch.iterdir())
        assert storage.scalar("SELECT count(*) FROM prop_lines") == 50  # the other file's rows only
        assert ingest_lines(storage, [first]).rows_added == 50
        assert storage.scalar("SELECT count(*) FROM prop_lines") == 100
    assert not list(scratch.iterdir())


def test_a_file_of_a_header_only_stores_nothing(db_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty_pra.csv"
    path.write_text("game_date,player_name,market,line,bookmaker,over_price,under_price\n")
    with open_storage(db_path) as storage:
        report = ingest_lines(storage, [path])
        assert (report.rows_read, report.rows_added) == (0, 0)
        assert report.details["markets"] == {} and report.details["quarantined"] == []
        assert storage.scalar("SELECT count(*) FROM prop_lines") == 0


def test_a_million_lines_in_pieces_leave_no_memory_held(
    db_path: Path, pra_lines: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1M new offers (the real 2024-25 lines, moved a year later each round, as benchmarks/upload_memory.py
    writes them) in four pieces: every row stored, and DuckDB holds at most 16 MB once the call has ended.
    Before, it kept what the ingest had loaded (27 MB of table blocks at 1M lines, 81 MB at 3M; through the API
    the server stayed 196 MB above idle after 10M), since its default limit never made it evict them."""
    big = tmp_path / "big_pra.csv"
    with duckdb.connect() as con:
        con.execute(
            """COPY (SELECT (game_date + INTERVAL (366 * k) DAY)::DATE AS game_date, player_name, market, line, bookmaker, over_price,
                            under_price, posted_at + INTERVAL (366 * k) DAY AS posted_at
                     FROM (SELECT event_date::DATE AS game_date, player_name, 'pra' AS market, line, bookmaker,
                                  over_price, under_price, "timestamp"::TIMESTAMPTZ AS posted_at
                           FROM read_csv($lines) WHERE over_price IS NOT NULL AND under_price IS NOT NULL),
                          range(60) r(k)
                     LIMIT 1000000) TO $big (HEADER)""",
            {"lines": str(pra_lines["2024-25"]), "big": str(big)},
        )
    monkeypatch.setattr(lines, "PIECE_ROWS", 300_000)
    with open_storage(db_path) as storage:
        report = ingest_lines(storage, [big])
        assert report.rows_read == report.rows_added == 1_000_000
        held = storage.scalar("SELECT sum(memory_usage_bytes) / 2^20 FROM duckdb_memory()")
        assert held <= 16, held
