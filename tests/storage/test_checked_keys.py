"""The keys of the main table and of the grades, checked by the statements that write them (embedded backend).

DuckDB keeps a PRIMARY KEY in an index over the whole table, whose upkeep grew with the seasons stored
(benchmarks/scale.py); ``player_prop_predictions`` and ``prediction_grades`` have none in a DuckDB file
(``connection.CHECKED_KEYS``): consolidation and grading check the key on the rows of the date they write.

What each test would catch: a new file created with the index again; an older file left with it, or upgraded
with rows, columns, their order or their NOT NULL constraints lost, or other tables' keys dropped, or upgraded at
every open; consolidation storing one prediction_id twice, or changing anything when it refuses; grading storing
a prediction's grade twice; a statement of consolidation or grading that scans the main table or the grades
without a filter on the date (its cost would follow the seasons stored again: the plans are read, nothing timed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from tests.storage.test_warehouse_contract import GAME_DATE, DuckDBBackend, done, merged, rows_for

from nbaprops import schema
from nbaprops.clock import ManualClock
from nbaprops.errors import ContractError
from nbaprops.evaluation.grading import grade_date
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import connection

CHECKED = (schema.PREDICTIONS.name, schema.PREDICTION_GRADES.name)
KEYS = {t.name: list(t.primary_key) for t in (schema.PREDICTIONS, schema.PREDICTION_GRADES)}
NOON_AFTER = datetime(2025, 2, 13, 12, 0, tzinfo=UTC)


def _constraints(con: Any, table: str) -> list[tuple[str, list[str]]]:
    rows = con.execute(
        """SELECT constraint_type, constraint_column_names FROM duckdb_constraints()
           WHERE table_name = ? ORDER BY constraint_type, constraint_index""",
        [table],
    ).fetchall()
    return [(kind, list(columns)) for kind, columns in rows]


def _columns(con: Any, table: str) -> list[tuple[str, str, bool]]:
    return con.execute(
        """SELECT column_name, data_type, is_nullable FROM duckdb_columns()
           WHERE table_name = ? ORDER BY column_index""",
        [table],
    ).fetchall()


def _old_file(path: Path) -> None:
    """A file as nbaprops made it before: every table with its primary key, rows in the two tables (not in key
    order), and a column consolidation added to the main table when a system staged one (drift)."""
    con = duckdb.connect(str(path))
    for table in schema.ALL_TABLES:
        con.execute(table.create_sql())
    con.execute(f'ALTER TABLE "{schema.PREDICTIONS.name}" ADD COLUMN usage_rate DOUBLE')
    con.execute(
        f"""INSERT INTO {schema.PREDICTIONS.name} BY NAME
            SELECT 'p' || (997 * i % 300) AS prediction_id, 'b1' AS batch_id, 'last10' AS system_id,
                   'points' AS market, 'g' || (i % 3) AS game_id, DATE '2025-02-08' + (i % 5)::INTEGER AS game_date,
                   'pl' || i AS player_lookup, 'PASS' AS recommendation, i % 2 = 0 AS is_active,
                   TIMESTAMPTZ '2025-02-08 17:00:00+00' AS created_at,
                   TIMESTAMPTZ '2025-02-08 17:00:00+00' AS updated_at, i / 10 AS usage_rate
            FROM range(300) t(i)"""
    )
    con.execute(
        f"""INSERT INTO {schema.PREDICTION_GRADES.name} BY NAME
            SELECT prediction_id, 'live' AS run_id, system_id, market, game_date, player_lookup,
                   TIMESTAMPTZ '2025-02-14 09:00:00+00' AS graded_at
            FROM {schema.PREDICTIONS.name} WHERE is_active"""
    )
    con.close()


def test_a_new_file_has_no_key_index_on_the_checked_tables(tmp_path: Path) -> None:
    open_storage(tmp_path / "new.duckdb").close()
    con = duckdb.connect(str(tmp_path / "new.duckdb"))
    for table in CHECKED:
        kinds = {kind for kind, _ in _constraints(con, table)}
        assert kinds == {"NOT NULL"}, table
    assert ("PRIMARY KEY", ["batch_id"]) in _constraints(con, schema.PREDICTION_BATCHES.name)
    con.close()


def test_an_older_file_is_upgraded_in_place_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.duckdb"
    _old_file(path)
    con = duckdb.connect(str(path))
    before = {t: (_columns(con, t), con.execute(f"SELECT * FROM {t}").fetchall()) for t in CHECKED}
    not_null = {t: [c for k, c in _constraints(con, t) if k == "NOT NULL"] for t in CHECKED}
    assert all(("PRIMARY KEY", KEYS[t]) in _constraints(con, t) for t in CHECKED)
    con.close()

    with caplog.at_level(logging.WARNING, logger="nbaprops.storage.duckdb.connection"):
        open_storage(path).close()
        assert sum("rebuilding" in r.getMessage() for r in caplog.records) == len(connection.CHECKED_KEYS)
        caplog.clear()
        open_storage(path).close()  # upgraded once: the second open finds nothing to do
        assert not [r for r in caplog.records if "rebuilding" in r.getMessage()]

    con = duckdb.connect(str(path))
    for table in CHECKED:
        assert (_columns(con, table), con.execute(f"SELECT * FROM {table}").fetchall()) == before[table]
        assert _constraints(con, table) == [("NOT NULL", c) for c in not_null[table]]
    assert ("PRIMARY KEY", ["batch_id"]) in _constraints(con, schema.PREDICTION_BATCHES.name)
    assert not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE starts_with(table_name, '__')"
    ).fetchone()[0]
    con.close()


def test_a_prediction_id_staged_twice_refuses_the_merge(tmp_path: Path) -> None:
    # Two keys staged under one prediction_id (a stray writer; staging has no key): nothing may be stored.
    backend = DuckDBBackend(tmp_path / "warehouse.duckdb")
    clock = ManualClock()
    try:
        rows = rows_for("b1", ["ann", "bob"], now=clock.now())
        same = rows.column("prediction_id")[0].as_py()
        rows = rows.set_column(
            rows.schema.get_field_index("prediction_id"), "prediction_id", pa.array([same, same])
        )
        staging = backend.warehouse.create_staging("b1", expires_hours=6)
        backend.warehouse.stage(staging, rows, load_id="b1")

        with pytest.raises(ContractError, match="prediction_id.* twice"):
            merged(backend, "b1", staging, done(("ann", 1), ("bob", 1)), clock)

        assert backend.main_rows() == []
        assert staging in backend.warehouse.staging_tables()
    finally:
        backend.close()


def test_grading_never_stores_a_prediction_twice(tmp_path: Path) -> None:
    backend = DuckDBBackend(tmp_path / "warehouse.duckdb")
    clock = ManualClock()
    try:
        backend.storage.execute(
            """INSERT INTO box_scores BY NAME SELECT '2024-25' AS season, 1000 AS player_id, 'Ann' AS player_name,
                      'ann' AS player_lookup, 'BOS' AS team, '0022400777' AS game_id, ? AS game_date,
                      'NYK' AS opponent, true AS is_home, 30.0 AS minutes, 25 AS pts, 5 AS reb, 4 AS ast""",
            [GAME_DATE],
        )
        backend.insert_main(rows_for("b1", ["ann"], now=clock.now()))
        first = grade_date(backend.storage, GAME_DATE, clock=ManualClock(NOON_AFTER))
        again = grade_date(backend.storage, GAME_DATE, clock=ManualClock(NOON_AFTER))
        assert (first.added, again.added, again.unchanged) == (1, 0, 1)
        grades = "SELECT count(*) FROM prediction_grades"
        assert backend.storage.scalar(grades) == 1

        # A corrupt main table holding one prediction_id on two keys: grading refuses and changes nothing.
        backend.storage.execute("DELETE FROM prediction_grades")
        twin = rows_for("b1", ["ann"], now=clock.now(), system_id="other")
        stored = backend.storage.scalar("SELECT prediction_id FROM player_prop_predictions")
        index = twin.schema.get_field_index("prediction_id")
        backend.insert_main(twin.set_column(index, "prediction_id", pa.array([stored])))
        with pytest.raises(ContractError, match="twice"):
            grade_date(backend.storage, GAME_DATE, clock=ManualClock(NOON_AFTER))
        assert backend.storage.scalar(grades) == 0
    finally:
        backend.close()


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan.get("name", "").strip() in ("SEQ_SCAN", "TABLE_SCAN"):
        yield plan.get("extra_info", {})
    for child in plan.get("children", []):
        yield from _scans(child)


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every statement run through a Session is explained first (its plan, on the same cursor and parameters):
    the filters of each scan of the two tables, by table."""
    seen: dict[str, list[Any]] = {t: [] for t in CHECKED}
    execute = connection.Session.execute

    def explained(self: connection.Session, sql: str, params: Any = None, **kw: Any) -> connection.Session:
        if any(t in sql for t in CHECKED) and sql.lstrip().upper().startswith(
            ("SELECT", "INSERT", "UPDATE", "DELETE")
        ):
            rows = self._cur.execute("EXPLAIN (FORMAT json) " + sql, params).fetchall()
            for scan in _scans(json.loads(rows[0][1])[0]):
                table = str(scan.get("Table", "")).rsplit(".", 1)[-1]
                if table in seen:
                    seen[table].append(scan.get("Filters", []))
        return execute(self, sql, params, **kw)

    monkeypatch.setattr(connection.Session, "execute", explained)
    return seen


def test_consolidation_and_grading_read_only_the_date(tmp_path: Path, plans: dict[str, list[Any]]) -> None:
    backend = DuckDBBackend(tmp_path / "warehouse.duckdb")
    clock = ManualClock()
    try:
        backend.storage.execute(
            """INSERT INTO box_scores BY NAME SELECT '2024-25' AS season, 1000 AS player_id, 'Ann' AS player_name,
                      'ann' AS player_lookup, 'BOS' AS team, '0022400777' AS game_id, ? AS game_date,
                      'NYK' AS opponent, true AS is_home, 30.0 AS minutes, 25 AS pts, 5 AS reb, 4 AS ast""",
            [GAME_DATE],
        )
        # History: the night before, graded; then the night's first batch; then a batch replacing it.
        before = rows_for("b0", ["ann", "bob"], now=clock.now()).to_pylist()
        for row in before:
            row.update(game_date=GAME_DATE - timedelta(days=1), game_id="0022400700")
        backend.insert_main(
            pa.Table.from_pylist(before, schema=rows_for("b0", ["ann"], now=clock.now()).schema)
        )
        backend.storage.execute(
            """INSERT INTO prediction_grades BY NAME SELECT prediction_id, 'live' AS run_id, system_id, market,
                      game_date, player_lookup, now() AS graded_at FROM player_prop_predictions"""
        )
        for batch in ("b1", "b2"):
            staging = backend.warehouse.create_staging(batch, expires_hours=6)
            backend.warehouse.stage(staging, rows_for(batch, ["ann", "bob"], now=clock.now()), load_id=batch)
            merged(backend, batch, staging, done(("ann", 1), ("bob", 1)), clock)
            clock.advance(60)
        grade_date(backend.storage, GAME_DATE, clock=ManualClock(NOON_AFTER))
        grade_date(backend.storage, GAME_DATE, clock=ManualClock(NOON_AFTER))
    finally:
        backend.close()

    # Enough scans seen that the test cannot pass on plans that read nothing.
    assert len(plans[schema.PREDICTIONS.name]) >= 6 and len(plans[schema.PREDICTION_GRADES.name]) >= 6, plans
    for table, scans in plans.items():
        for filters in scans:
            assert "game_date" in json.dumps(filters), (table, filters)
