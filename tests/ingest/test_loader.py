"""The one ingest loader: every kind is a spec, merged on its table's key, atomic, leaving nothing behind."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from tests.ingest.csvfiles import write_csv

from nbaprops import schema
from nbaprops.errors import InputError
from nbaprops.ingest._loader import IngestSpec, load
from nbaprops.ingest.boxscores import BOXSCORES
from nbaprops.ingest.injuries import INJURIES
from nbaprops.ingest.lines import LINES
from nbaprops.ingest.schedule import SCHEDULE, ingest_schedule
from nbaprops.storage.duckdb import DuckDBStorage

TABLES = {t.name: t for t in (schema.BOX_SCORES, schema.SCHEDULE, schema.PROP_LINES, schema.INJURY_REPORTS)}


@pytest.mark.parametrize("spec", [BOXSCORES, LINES, SCHEDULE, INJURIES], ids=lambda s: s.kind)
def test_each_kind_merges_on_its_tables_declared_key(spec: IngestSpec) -> None:
    table = TABLES[spec.table]
    assert spec.key == table.primary_key
    assert set(spec.key) <= set(table.column_names)
    assert len({f.name.lower() for f in spec.fields}) == len(spec.fields)


def _temporary_tables(storage: DuckDBStorage) -> int:
    return int(storage.scalar("SELECT count(*) FROM duckdb_tables() WHERE temporary"))


def _games(*rows: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"game_date": d, "home_team": h, "away_team": a} for d, h, a in rows]


def test_a_call_stores_its_files_and_logs_each_leaving_no_temporary_table(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    first = write_csv(tmp_path / "a.csv", _games(("2030-01-02", "BOS", "NYK"), ("2030-01-02", "LAL", "GSW")))
    second = write_csv(tmp_path / "b.csv", _games(("2030-01-03", "MIA", "ORL")))
    temporary = _temporary_tables(storage)
    report = ingest_schedule(storage, [first, second])
    assert (report.kind, report.rows_read, report.rows_added) == ("schedule", 3, 3)
    assert report.files == (str(first), str(second))
    logged = storage.fetchall(
        "SELECT source, rows_read FROM ingest_log WHERE kind = 'schedule' ORDER BY source", []
    )
    assert logged == [(str(first), 2), (str(second), 1)]
    assert _temporary_tables(storage) == temporary
    assert ingest_schedule(storage, [first, second]).rows_added == 0


def test_a_bad_second_file_refuses_the_call_and_changes_nothing(
    storage: DuckDBStorage, tmp_path: Path
) -> None:
    good = write_csv(tmp_path / "good.csv", _games(("2030-01-02", "BOS", "NYK")))
    bad = write_csv(tmp_path / "bad.csv", _games(("2030-01-03", "MIA", "MIA")))
    temporary = _temporary_tables(storage)
    schedule = storage.scalar("SELECT count(*) FROM schedule")
    log = storage.scalar("SELECT count(*) FROM ingest_log")
    with pytest.raises(InputError, match="home and away team are the same team") as caught:
        ingest_schedule(storage, [good, bad])
    assert (caught.value.path, caught.value.row) == (str(bad), 2)
    assert storage.scalar("SELECT count(*) FROM schedule") == schedule
    assert storage.scalar("SELECT count(*) FROM ingest_log") == log
    assert _temporary_tables(storage) == temporary


def _memory_limit(storage: DuckDBStorage) -> str:
    return str(storage.scalar("SELECT current_setting('memory_limit')"))


@pytest.mark.parametrize("outcome", ["stored", "refused"])
def test_a_call_runs_under_the_memory_bound_and_lifts_it_after(
    storage: DuckDBStorage, tmp_path: Path, outcome: str
) -> None:
    """A file of any size ingests in bounded memory (DuckDB spills to the folder beside the database), through
    the CLI as through the API; the bound ends with the call, whatever its outcome."""
    default = _memory_limit(storage)
    seen: list[str] = []

    def watched(cur: object, file: object) -> None:
        seen.append(_memory_limit(storage))
        if outcome == "refused":
            raise InputError("refused by the test")

    rows = _games(("2030-01-02", "BOS", "NYK"))
    with pytest.raises(InputError) if outcome == "refused" else contextlib.nullcontext():
        load(storage, dataclasses.replace(SCHEDULE, check=watched), [write_csv(tmp_path / "a.csv", rows)])
    number, unit = seen[0].split()
    assert unit in ("MiB", "MB") and float(number) <= 256 < float(default.split()[0]) * 1024, (seen, default)
    assert _memory_limit(storage) == default


def test_nested_bounds_lift_only_when_the_last_ends(storage: DuckDBStorage) -> None:
    default = _memory_limit(storage)
    with storage.bounded_memory():
        bounded = _memory_limit(storage)
        with storage.bounded_memory():
            pass
        assert _memory_limit(storage) == bounded != default
    assert _memory_limit(storage) == default


def test_a_call_that_does_not_fit_the_bound_runs_again_without_it_and_stores_once(
    storage: DuckDBStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB cannot spill every part of a merge (the rows a transaction adds to a stored table): a file that
    does not fit the bound is ingested as without the bound, never refused for it, and stored once."""
    import nbaprops.storage.duckdb.connection as connection

    monkeypatch.setattr(connection, "INGEST_MEMORY_LIMIT", "1MB")
    default = _memory_limit(storage)
    rows = _games(*((f"2030-01-{day:02d}", "BOS", "NYK") for day in range(2, 29)))
    path = write_csv(tmp_path / "a.csv", rows)
    report = ingest_schedule(storage, [path])
    assert "running it again without the bound" in caplog.text
    assert (report.rows_read, report.rows_added) == (27, 27)
    assert storage.scalar("SELECT count(*) FROM ingest_log WHERE source = ?", [str(path)]) == 1
    assert _memory_limit(storage) == default
