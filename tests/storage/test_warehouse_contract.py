"""The warehouse contract battery (:class:`nbaprops.storage.seams.Warehouse`), run over every backend.

``duckdb`` is a real DuckDB file; ``bigquery`` is the ``local-bigquery`` emulator (marked ``cloud``; it skips
where the emulator cannot be built). Rows are built by :func:`nbaprops.pipeline.rows.staging_rows`, the
function every producer of staging rows goes through. Each test uses a fresh file or a fresh dataset.

What each test would catch: a load repeated under one ``load_id`` counted twice; a superseded attempt's rows
reaching the main table (I7); two rows of one key inserted (dedupe); an earlier batch's row left active (I3);
a second merge changing anything (I5); drift made fatal or lost (I9); the duplicate-key guard missing or
leaving partial changes; staging that cannot be listed or dropped (I8); BigQuery staging without expiry; a
history slice with rows outside its window or missing some inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.emulators.bigquery import BigQueryEmulator
from tests.storage.backends import registered_backends, unknown_backend

from nbaprops import schema
from nbaprops.clock import ManualClock
from nbaprops.errors import ContractError, TerminalError
from nbaprops.pipeline.rows import staging_rows
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.duckdb.warehouse import DuckDBWarehouse
from nbaprops.storage.seams import Lease

GAME_DATE = date(2025, 2, 12)
GAME_ID = "0022400777"
MAIN = schema.PREDICTIONS.name


class DuckDBBackend:
    """The embedded warehouse on a file of its own, and the direct access the tests need."""

    name = "duckdb"

    def __init__(self, path: Path) -> None:
        self.storage = open_storage(path)
        self.warehouse: Any = DuckDBWarehouse(self.storage)

    def close(self) -> None:
        self.storage.close()

    def columns(self, table: str) -> list[str]:
        return list(self.storage.table_columns(table))

    def add_column(self, table: str, column: str, contract_type: str) -> None:
        self.storage.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {contract_type}')

    def count(self, table: str) -> int:
        return int(self.storage.scalar(f'SELECT count(*) FROM "{table}"'))

    def main_rows(self) -> list[dict[str, Any]]:
        return self.storage.fetch_dicts(f"SELECT * FROM {MAIN} ORDER BY prediction_id, created_at")

    def insert_main(self, rows: pa.Table) -> None:
        with self.storage.session() as session:
            session.register("__rows", rows)
            session.execute(f"INSERT INTO {MAIN} BY NAME SELECT * FROM __rows")


class BigQueryBackend:
    """The BigQuery warehouse on a fresh dataset of the emulator."""

    name = "bigquery"

    def __init__(self, emulator: BigQueryEmulator) -> None:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        from nbaprops.config import Settings
        from nbaprops.storage.gcp.backend import _read_client
        from nbaprops.storage.gcp.warehouse import BigQueryWarehouse

        self.client = bigquery.Client(
            project=emulator.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.endpoint),
        )
        read_client = _read_client(
            Settings(bigquery_endpoint=emulator.endpoint, bigquery_read_endpoint=emulator.read_endpoint)
        )
        self.warehouse: Any = BigQueryWarehouse(
            self.client, f"t_{uuid.uuid4().hex[:12]}", deadline_s=15, timeout_s=60, read_client=read_client
        )
        self.retry = bigquery.DEFAULT_RETRY.with_deadline(15)

    def close(self) -> None:
        self.client.delete_dataset(
            self.warehouse.dataset, delete_contents=True, not_found_ok=True, retry=self.retry
        )
        self.client.close()
        if self.warehouse.read_client is not None:
            self.warehouse.read_client.transport.close()

    def _sql(self, sql: str) -> list[Any]:
        job = self.client.query(sql, retry=self.retry, job_retry=None, timeout=60)
        return list(job.result(retry=self.retry, job_retry=None, timeout=60))

    def columns(self, table: str) -> list[str]:
        return [f.name for f in self.client.get_table(f"{self.warehouse.dataset}.{table}").schema]

    def add_column(self, table: str, column: str, contract_type: str) -> None:
        from nbaprops.storage.gcp.warehouse import bigquery_type

        self._sql(
            f"ALTER TABLE `{self.warehouse.dataset}.{table}` ADD COLUMN `{column}` "
            f"{bigquery_type(contract_type)[0]}"
        )

    def count(self, table: str) -> int:
        return int(self._sql(f"SELECT COUNT(*) FROM `{self.warehouse.dataset}.{table}`")[0][0])

    def main_rows(self) -> list[dict[str, Any]]:
        rows = self._sql(
            f"SELECT * FROM `{self.warehouse.dataset}.{MAIN}` ORDER BY prediction_id, created_at"
        )
        return [dict(row.items()) for row in rows]

    def insert_main(self, rows: pa.Table) -> None:
        fields = [f for f in self.client.get_table(f"{self.warehouse.dataset}.{MAIN}").schema]
        self.warehouse._load_parquet(
            MAIN,
            rows,
            schema_fields=[f for f in fields if f.name in rows.column_names],
            write_disposition="WRITE_APPEND",
        )


Backend = DuckDBBackend | BigQueryBackend


@pytest.fixture(params=registered_backends())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made: Backend
    if request.param == "duckdb":
        made = DuckDBBackend(tmp_path / "warehouse.duckdb")
    elif request.param == "gcp":
        made = BigQueryBackend(request.getfixturevalue("bigquery_emulator"))
    else:
        unknown_backend("warehouse", request.param)
    yield made
    made.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 2, 12, 17, 0, tzinfo=UTC))


def leases(players: Sequence[str], *, attempt: int = 1, batch_id: str = "b1") -> list[Lease]:
    return [
        Lease(
            batch_id=batch_id,
            player_lookup=player,
            attempt=attempt,
            owner="worker-1",
            player_name=player.title(),
            player_id=1000 + i,
            team="BOS",
            opponent="NYK",
            game_id=GAME_ID,
            is_home=True,
        )
        for i, player in enumerate(players)
    ]


def rows_for(
    batch_id: str,
    players: Sequence[str],
    *,
    now: datetime,
    attempt: int = 1,
    value: float = 20.0,
    market: str = "points",
    system_id: str = "last10",
) -> pa.Table:
    """Staging rows as a worker writes them."""
    chosen = leases(players, attempt=attempt, batch_id=batch_id)
    return staging_rows(
        batch_id=batch_id,
        game_date=GAME_DATE,
        leases=chosen,
        market=market,
        system_id=system_id,
        predicted_value=np.full(len(chosen), value),
        model_version="contract-test",
        feature_version="test",
        now=now,
    )


def done(*pairs: tuple[str, int]) -> pa.Table:
    return pa.table(
        {
            "player_lookup": pa.array([p for p, _ in pairs], pa.string()),
            "attempt": pa.array([a for _, a in pairs], pa.int32()),
        }
    )


def active(backend: Backend) -> dict[tuple[str, str], dict[str, Any]]:
    """Active rows of the date by (player, market); fails when a key holds two (I3)."""
    table = backend.warehouse.active_predictions(GAME_DATE)
    rows = table.to_pylist()
    keys = [(r["game_id"], r["player_lookup"], r["market"], r["system_id"]) for r in rows]
    assert len(keys) == len(set(keys)), "two active rows for one key"
    return {(r["player_lookup"], r["market"]): r for r in rows}


def merged(backend: Backend, batch_id: str, staging: str, finished: pa.Table, clock: ManualClock) -> Any:
    return backend.warehouse.merge(
        batch_id=batch_id, staging_table=staging, game_date=GAME_DATE, done=finished, clock=clock
    )


def test_create_staging_makes_the_staging_contract(backend: Backend) -> None:
    name = backend.warehouse.create_staging("b1", expires_hours=6)
    assert name == schema.staging_table_name("b1")
    assert backend.warehouse.staging_tables() == [name]
    assert backend.columns(name) == list(schema.PREDICTIONS.column_names)
    assert backend.count(name) == 0


def test_stage_twice_with_one_load_id_keeps_one_copy(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    rows = rows_for("b1", ["ann", "bob", "cy"], now=clock.now())
    assert backend.warehouse.stage(staging, rows, load_id="b1:chunk0:a1") == 3
    assert backend.warehouse.stage(staging, rows, load_id="b1:chunk0:a1") == 3
    assert backend.count(staging) == 3
    backend.warehouse.stage(staging, rows_for("b1", ["dee"], now=clock.now()), load_id="b1:chunk1:a1")
    assert backend.count(staging) == 4


def test_stage_refuses_rows_the_staging_table_cannot_hold(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    rows = rows_for("b1", ["ann"], now=clock.now())
    with pytest.raises(ContractError, match="no column"):
        backend.warehouse.stage(staging, rows.append_column("mystery", pa.array([1.0])), load_id="x")
    with pytest.raises(ContractError, match="prediction_id"):
        backend.warehouse.stage(staging, rows.drop_columns(["prediction_id"]), load_id="y")
    with pytest.raises(ContractError, match="does not exist"):
        backend.warehouse.stage(schema.staging_table_name("nope"), rows, load_id="z")
    assert backend.count(staging) == 0


def test_merge_takes_only_rows_of_the_attempt_that_completed(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(
        staging, rows_for("b1", ["ann"], now=clock.now(), attempt=1, value=10.0), load_id="a1"
    )
    clock.advance(60)  # the stale attempt is also the older one: fencing, not recency, must drop it
    stale = rows_for("b1", ["bob"], now=clock.now() + timedelta(hours=1), attempt=1, value=99.0)
    backend.warehouse.stage(staging, stale, load_id="bob-a1")
    backend.warehouse.stage(
        staging, rows_for("b1", ["bob"], now=clock.now(), attempt=2, value=22.0), load_id="a2"
    )
    backend.warehouse.stage(staging, rows_for("b1", ["cy"], now=clock.now(), attempt=1), load_id="cy-a1")

    result = merged(backend, "b1", staging, done(("ann", 1), ("bob", 2)), clock)

    rows = active(backend)
    assert sorted(rows) == [("ann", "points"), ("bob", "points")]  # cy did not complete
    assert rows[("bob", "points")]["predicted_value"] == 22.0
    assert rows[("bob", "points")]["attempt"] == 2
    assert (result.rows_staged, result.rows_fenced_out, result.rows_inserted) == (4, 2, 2)


def test_merge_with_no_completed_request_inserts_nothing_and_drops_staging(
    backend: Backend, clock: ManualClock
) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann"], now=clock.now()), load_id="a1")

    result = merged(backend, "b1", staging, done(), clock)

    assert (result.staging_found, result.rows_staged, result.rows_fenced_out, result.rows_inserted) == (
        True,
        1,
        1,
        0,
    )
    assert backend.main_rows() == []
    assert backend.warehouse.staging_tables() == []


def test_merge_keeps_the_newest_row_per_key(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann"], now=clock.now(), value=10.0), load_id="first")
    backend.warehouse.stage(
        staging, rows_for("b1", ["ann"], now=clock.now() + timedelta(minutes=1), value=11.0), load_id="again"
    )

    result = merged(backend, "b1", staging, done(("ann", 1)), clock)

    assert active(backend)[("ann", "points")]["predicted_value"] == 11.0
    assert (result.rows_deduplicated, result.rows_inserted) == (1, 1)
    assert len(backend.main_rows()) == 1


def test_merge_supersedes_the_previous_batch_of_the_same_keys(backend: Backend, clock: ManualClock) -> None:
    first = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(first, rows_for("b1", ["ann", "bob"], now=clock.now(), value=10.0), load_id="b1")
    merged(backend, "b1", first, done(("ann", 1), ("bob", 1)), clock)
    clock.advance(3600)
    second = backend.warehouse.create_staging("b2", expires_hours=6)
    backend.warehouse.stage(second, rows_for("b2", ["ann"], now=clock.now(), value=30.0), load_id="b2")

    result = merged(backend, "b2", second, done(("ann", 1)), clock)

    rows = active(backend)
    assert rows[("ann", "points")]["batch_id"] == "b2"
    assert rows[("ann", "points")]["predicted_value"] == 30.0
    assert rows[("bob", "points")]["batch_id"] == "b1"
    assert (result.rows_superseded, result.rows_inserted) == (1, 1)
    old = [r for r in backend.main_rows() if r["batch_id"] == "b1" and r["player_lookup"] == "ann"]
    assert len(old) == 1 and old[0]["is_active"] is False
    assert old[0]["superseded_by"] == rows[("ann", "points")]["prediction_id"]
    assert old[0]["invalidation_reason"] == "superseded by batch b2"


def test_merging_twice_finds_no_staging_and_changes_nothing(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann", "bob"], now=clock.now()), load_id="b1")
    first = merged(backend, "b1", staging, done(("ann", 1), ("bob", 1)), clock)
    before = backend.main_rows()

    again = merged(backend, "b1", staging, done(("ann", 1), ("bob", 1)), clock)

    assert first.staging_found and first.rows_inserted == 2
    assert not again.staging_found and again.rows_inserted == 0
    assert backend.main_rows() == before
    assert staging not in backend.warehouse.staging_tables()


def test_a_column_added_to_main_mid_season_is_reported_missing_in_staging(
    backend: Backend, clock: ManualClock
) -> None:
    backend.add_column(MAIN, "minutes_projection", "DOUBLE")
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann"], now=clock.now()), load_id="b1")

    result = merged(backend, "b1", staging, done(("ann", 1)), clock)

    assert result.drift["missing_in_staging"] == ["minutes_projection"]
    assert result.drift["added_to_main"] == []
    row = active(backend)[("ann", "points")]
    assert row["minutes_projection"] is None and row["predicted_value"] == 20.0


def test_a_staging_column_missing_from_main_is_added_and_filled(backend: Backend, clock: ManualClock) -> None:
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.add_column(staging, "usage_rate", "DOUBLE")  # a newer worker's contract
    rows = rows_for("b1", ["ann", "bob"], now=clock.now())
    backend.warehouse.stage(staging, rows.append_column("usage_rate", pa.array([0.31, 0.18])), load_id="b1")

    result = merged(backend, "b1", staging, done(("ann", 1), ("bob", 1)), clock)

    assert result.drift["added_to_main"] == ["usage_rate"]
    assert result.drift["missing_in_staging"] == []
    assert "usage_rate" in backend.columns(MAIN)
    rows_now = active(backend)
    assert (rows_now[("ann", "points")]["usage_rate"], rows_now[("bob", "points")]["usage_rate"]) == (
        0.31,
        0.18,
    )


def test_duplicate_active_keys_refuse_the_merge_and_change_no_rows(
    backend: Backend, clock: ManualClock
) -> None:
    # Two active rows of one key already stored (a corrupt table): the guard must refuse, not paper over it.
    corrupt = pa.concat_tables(
        [
            rows_for("old1", ["zed"], now=clock.now()),
            rows_for("old2", ["zed"], now=clock.now()),
        ]
    )
    backend.insert_main(corrupt)
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann"], now=clock.now()), load_id="b1")
    before = backend.main_rows()

    with pytest.raises(ContractError, match="two active rows"):
        merged(backend, "b1", staging, done(("ann", 1)), clock)

    assert backend.main_rows() == before
    assert staging in backend.warehouse.staging_tables()
    assert backend.count(staging) == 1


def test_invalidate_deactivates_only_rows_predicted_before_the_report(
    backend: Backend, clock: ManualClock
) -> None:
    """A ruled-out player's rows go inactive with the reason when they were predicted before the report;
    a report older than the row changes nothing; a player without rows counts 0; a second call changes
    nothing (only active rows change)."""
    predicted_at = clock.now()
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann", "bob", "cal"], now=predicted_at), load_id="b1")
    merged(backend, "b1", staging, done(("ann", 1), ("bob", 1), ("cal", 1)), clock)
    later, earlier = predicted_at + timedelta(hours=1), predicted_at - timedelta(hours=1)
    clock.advance(7200)
    players = [("bob", later), ("ann", earlier), ("dan", later)]

    first = backend.warehouse.invalidate(GAME_DATE, games=[], players=players, at=clock.now())
    again = backend.warehouse.invalidate(GAME_DATE, games=[], players=players, at=clock.now())

    assert first == (0, {"bob": 1, "ann": 0, "dan": 0})
    assert again == (0, {"bob": 0, "ann": 0, "dan": 0})
    assert set(active(backend)) == {("ann", "points"), ("cal", "points")}
    bob = [r for r in backend.main_rows() if r["player_lookup"] == "bob"]
    assert [(r["is_active"], r["invalidation_reason"]) for r in bob] == [(False, "player_ruled_out")]


def test_invalidate_a_postponed_game_by_its_teams_before_its_players(
    backend: Backend, clock: ManualClock
) -> None:
    """Every row of the game goes, matched by its id or by its teams either way round; a ruled-out player of
    that game is counted under the game, not twice."""
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    backend.warehouse.stage(staging, rows_for("b1", ["ann", "bob"], now=clock.now()), load_id="b1")
    merged(backend, "b1", staging, done(("ann", 1), ("bob", 1)), clock)
    clock.advance(3600)

    result = backend.warehouse.invalidate(
        GAME_DATE, games=[(None, "NYK", "BOS")], players=[("ann", clock.now())], at=clock.now()
    )

    assert result == (2, {"ann": 0})
    assert active(backend) == {}
    assert {r["invalidation_reason"] for r in backend.main_rows()} == {"game_postponed"}


def test_drop_staging_removes_only_that_table_and_may_repeat(backend: Backend) -> None:
    first = backend.warehouse.create_staging("b1", expires_hours=6)
    second = backend.warehouse.create_staging("b2", expires_hours=6)
    assert backend.warehouse.staging_tables() == sorted([first, second])
    backend.warehouse.drop_staging(first)
    backend.warehouse.drop_staging(first)
    assert backend.warehouse.staging_tables() == [second]


def test_a_slate_of_rows_merges_whole(backend: Backend, clock: ManualClock) -> None:
    players = [f"player{i:03d}" for i in range(470)]
    staging = backend.warehouse.create_staging("b1", expires_hours=6)
    markets = ("points", "rebounds", "assists", "threes", "pra")
    rows = pa.concat_tables([rows_for("b1", players, now=clock.now(), market=m) for m in markets])
    backend.warehouse.stage(staging, rows, load_id="slate")

    result = merged(backend, "b1", staging, done(*[(p, 1) for p in players]), clock)

    assert result.rows_inserted == rows.num_rows == 2350
    assert len(active(backend)) == 2350


@pytest.fixture(scope="module")
def history_source(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStorage]:
    """Two months of real box scores (and the teams) in a file of their own."""
    source = open_storage(tmp_path_factory.mktemp("history") / "source.duckdb")
    seed = open_storage(loaded_db_file, read_only=True)
    try:
        box = seed.arrow(
            "SELECT * FROM box_scores WHERE game_date BETWEEN DATE '2025-01-01' AND DATE '2025-02-28'"
        )
        teams = seed.arrow("SELECT * FROM teams")
    finally:
        seed.close()
    with source.session() as session:
        session.register("__box", box)
        session.register("__teams", teams)
        session.execute("INSERT INTO box_scores BY NAME SELECT * FROM __box")
        session.execute("INSERT INTO teams BY NAME SELECT * FROM __teams")
    yield source
    source.close()


def test_load_history_copies_exactly_the_window(backend: Backend, history_source: DuckDBStorage) -> None:
    """...and loading the window again replaces what it copied, also in a table without a key index (prop_lines:
    ``INSERT OR REPLACE`` needs one, and a GCP worker's history load failed on every chunk without it)."""
    tables = ["box_scores", "teams", "schedule", "prop_lines", "prop_line_snapshots"]
    history_source.execute("DELETE FROM prop_line_snapshots")  # the source is the module's: once per backend
    history_source.execute(
        """INSERT INTO prop_line_snapshots (game_date, player_lookup, market, bookmaker, line, posted_at,
               over_price, under_price)
           VALUES (DATE '2025-02-05', 'aplayer', 'pra', 'book', 30.5, TIMESTAMPTZ '2025-02-05 09:00:00+00', -110,
                   -110),
                  (DATE '2025-02-05', 'aplayer', 'pra', 'book', 30.5, TIMESTAMPTZ '2025-02-05 12:00:00+00', -115,
                   -105),
                  (DATE '2025-02-11', 'aplayer', 'pra', 'book', 30.5, TIMESTAMPTZ '2025-02-11 12:00:00+00', -115,
                   -105)"""
    )
    history_source.execute(
        """INSERT INTO prop_lines (game_date, player_lookup, player_name, market, bookmaker, line, over_price,
               under_price, is_main, posted_at)
           VALUES (DATE '2025-02-05', 'aplayer', 'A Player', 'pra', 'book', 30.5, -115, -105, true,
                   TIMESTAMPTZ '2025-02-05 12:00:00+00'),
                  (DATE '2025-02-05', 'aplayer', 'A Player', 'pra', 'other', 31.5, -110, -110, true, NULL)"""
    )
    uploaded = backend.warehouse.upload_inputs(history_source, tables=tables)
    assert uploaded["box_scores"] == history_source.scalar("SELECT count(*) FROM box_scores") > 5_000
    # Seeding again replaces the rows and keeps a column the warehouse gained (input tables only gain columns).
    backend.add_column("box_scores", "tracking_speed", "DOUBLE")
    assert backend.warehouse.upload_inputs(history_source, tables=tables) == uploaded
    assert backend.count("box_scores") == uploaded["box_scores"]
    assert "tracking_speed" in backend.columns("box_scores")
    target = open_storage(":memory:")
    since, until = date(2025, 2, 1), date(2025, 2, 10)

    counts = backend.warehouse.load_history_into(target, since=since, until=until, tables=tables)

    order = "ORDER BY player_id, game_id"
    expected = history_source.arrow(
        f"SELECT * FROM box_scores WHERE game_date BETWEEN ? AND ? {order}", [since, until]
    )
    assert counts["box_scores"] == expected.num_rows > 500
    assert target.arrow(f"SELECT * FROM box_scores {order}").equals(expected)
    assert (
        target.scalar("SELECT count(*) FROM teams") == history_source.scalar("SELECT count(*) FROM teams") > 0
    )
    assert counts["schedule"] == 0
    assert counts["prop_lines"] >= 2
    # the window's postings (a worker's lines as of a time read them)
    assert counts["prop_line_snapshots"] == 2
    again = backend.warehouse.load_history_into(target, since=since, until=until, tables=tables)
    assert again == counts
    assert target.scalar("SELECT count(*) FROM prop_lines") == counts["prop_lines"]
    assert target.scalar("SELECT count(*) FROM prop_line_snapshots") == 2
    assert target.arrow(f"SELECT * FROM box_scores {order}").equals(expected)
    target.close()


def _box_scores_file(history_source: DuckDBStorage, path: Path) -> DuckDBStorage:
    """A file of its own (open) holding ``history_source``'s box scores and teams, for a test to change."""
    source = open_storage(path)
    with source.session() as session:
        session.register("__box", history_source.arrow("SELECT * FROM box_scores"))
        session.register("__teams", history_source.arrow("SELECT * FROM teams"))
        session.execute("INSERT INTO box_scores BY NAME SELECT * FROM __box")
        session.execute("INSERT INTO teams BY NAME SELECT * FROM __teams")
    return source


@pytest.mark.cloud
def test_an_unchanged_input_table_is_not_loaded_again(
    bigquery_emulator: BigQueryEmulator,
    history_source: DuckDBStorage,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each batch on BigQuery uploads the inputs for the workers; a table whose rows have not changed since its
    last load (its fingerprint label, and its row count) is not loaded again. One changed value, or rows
    replaced behind the label's back, and it is. Before, every batch loaded every table whole (five seasons of
    box scores)."""
    import logging

    source = _box_scores_file(history_source, tmp_path / "source.duckdb")
    backend = BigQueryBackend(bigquery_emulator)
    tables = ["box_scores", "teams"]
    caplog.set_level(logging.INFO, logger="nbaprops.storage.gcp.warehouse")

    def upload() -> tuple[dict[str, int], set[str]]:
        caplog.clear()
        counts = backend.warehouse.upload_inputs(source, tables=tables)
        return counts, {t for t in tables if f"{t} unchanged since its last upload" in caplog.text}

    def points() -> int:
        return int(backend._sql(f"SELECT SUM(pts) FROM `{backend.warehouse.dataset}.box_scores`")[0][0])

    try:
        first, skipped = upload()
        assert (
            skipped == set()
            and first["box_scores"] == source.scalar("SELECT count(*) FROM box_scores") > 5_000
        )
        assert upload() == (first, {"box_scores", "teams"})
        source.execute(
            """UPDATE box_scores SET pts = pts + 1
               WHERE game_id = (SELECT min(game_id) FROM box_scores) AND player_id = (
                   SELECT min(player_id) FROM box_scores WHERE game_id = (SELECT min(game_id) FROM box_scores))"""
        )
        assert upload() == (first, {"teams"})
        assert points() == source.scalar("SELECT sum(pts) FROM box_scores")
        # Other rows loaded behind the label's back (the label stays): the row count differs, so loaded again.
        fewer = source.arrow("SELECT * FROM box_scores WHERE pts <= 20")
        fields = backend.client.get_table(f"{backend.warehouse.dataset}.box_scores").schema
        backend.warehouse._load_parquet(
            "box_scores", fewer.select([f.name for f in fields]), schema_fields=fields,
            write_disposition="WRITE_TRUNCATE",
        )  # fmt: skip
        assert backend.count("box_scores") == fewer.num_rows < first["box_scores"]
        assert upload() == (first, {"teams"})
        assert backend.count("box_scores") == first["box_scores"]
        assert points() == source.scalar("SELECT sum(pts) FROM box_scores")
    finally:
        backend.close()
        source.close()


@pytest.mark.cloud
def test_bigquery_history_through_the_read_api_equals_the_query(
    bigquery_emulator: BigQueryEmulator, history_source: DuckDBStorage, tmp_path: Path
) -> None:
    """Workers read history through the Storage Read API (a row restriction on each table, Arrow); without a read
    client, through a query. Both fill the worker's store with the same rows of every input table — lines and
    injury reports with their timestamps and NULLs included, rows on the window's first and last day in, the
    days either side out — and an empty window gives empty tables (the Read API answers a session without
    streams). Would catch: a restriction off by a day at either end, a dropped stream, a timestamp read in the
    wrong unit or zone, or the empty session taken for an error."""
    from nbaprops.storage.gcp.warehouse import BigQueryWarehouse

    source = _box_scores_file(history_source, tmp_path / "source.duckdb")
    since, until = date(2025, 2, 1), date(2025, 2, 10)
    for k, day in enumerate([date(2025, 1, 31), since, date(2025, 2, 5), until, date(2025, 2, 11)]):
        source.execute(
            """INSERT INTO prop_lines (game_date, player_lookup, player_name, market, bookmaker, line, over_price,
                   under_price, is_main, commence_time, posted_at)
               VALUES (?, ?, 'A Player', 'pra', 'book', 30.5, -115, NULL, true, ?, ?)""",
            [
                day,
                f"player{k}",
                datetime(2025, 2, 1, 0, 10, tzinfo=UTC),
                datetime(2025, 1, 31, 17, 3, 7, 123456, tzinfo=UTC) + timedelta(days=k),
            ],
        )
        source.execute(
            """INSERT INTO prop_line_snapshots (game_date, player_lookup, market, bookmaker, line, posted_at,
                   over_price, under_price, commence_time)
               VALUES (?, ?, 'pra', 'book', 30.5, ?, -110, NULL, ?)""",
            [
                day,
                f"player{k}",
                datetime(2025, 1, 31, 15, 1, 2, 654321, tzinfo=UTC) + timedelta(days=k),
                datetime(2025, 2, 1, 0, 10, tzinfo=UTC),
            ],
        )
        source.execute(
            """INSERT INTO injury_reports (report_at, game_date, team, player_name, player_lookup, status)
               VALUES (?, ?, 'BOS', 'A Player', ?, 'Out')""",
            [datetime(2025, 1, 31, 22, 30, 0, 500000, tzinfo=UTC) + timedelta(days=k), day, f"player{k}"],
        )
    backend = BigQueryBackend(bigquery_emulator)
    try:
        assert backend.warehouse.read_client is not None
        backend.warehouse.upload_inputs(source)
        by_query = BigQueryWarehouse(
            backend.client,
            backend.warehouse.dataset.split(".", 1)[1],
            deadline_s=15,
            timeout_s=60,
            ensure=False,
        )
        for window in [(since, until), (date(2031, 1, 1), date(2031, 2, 1))]:
            read, queried = open_storage(":memory:"), open_storage(":memory:")
            counts = backend.warehouse.load_history_into(read, since=window[0], until=window[1])
            assert by_query.load_history_into(queried, since=window[0], until=window[1]) == counts
            for table in counts:
                ordered = f'SELECT * FROM "{table}" ORDER BY ALL'
                assert read.arrow(ordered).equals(queried.arrow(ordered)), table
            if window == (since, until):
                assert counts["prop_lines"] == counts["injury_reports"] == counts["prop_line_snapshots"] == 3
                assert read.scalar("SELECT max(posted_at) FROM prop_line_snapshots") == datetime(
                    2025, 2, 3, 15, 1, 2, 654321, tzinfo=UTC
                )
                assert read.fetchone("SELECT min(game_date), max(game_date) FROM box_scores") == (
                    since,
                    until,
                )
                assert read.scalar("SELECT max(posted_at) FROM prop_lines") == datetime(
                    2025, 2, 3, 17, 3, 7, 123456, tzinfo=UTC
                )
            else:
                assert counts["box_scores"] == counts["prop_lines"] == counts["prop_line_snapshots"] == 0
            read.close()
            queried.close()
    finally:
        backend.close()
        source.close()


@pytest.mark.cloud
def test_bigquery_staging_tables_expire(bigquery_emulator: BigQueryEmulator) -> None:
    backend = BigQueryBackend(bigquery_emulator)
    try:
        before = datetime.now(UTC)
        name = backend.warehouse.create_staging("b1", expires_hours=6)
        expires = backend.warehouse.staging_expires(name)
        assert expires is not None
        assert (
            before + timedelta(hours=6) - timedelta(seconds=5)
            <= expires
            <= datetime.now(UTC) + timedelta(hours=6)
        )
        assert backend.warehouse.staging_expires(MAIN) is None
    finally:
        backend.close()


@pytest.mark.cloud
def test_bigquery_load_runs_again_after_the_job_of_its_id_failed(bigquery_emulator: BigQueryEmulator) -> None:
    # A failed load job wrote nothing, but its id stays taken: the same load must still go through once.
    backend = BigQueryBackend(bigquery_emulator)
    try:
        staging = backend.warehouse.create_staging("b1", expires_hours=6)
        good = rows_for("b1", ["ann", "bob"], now=datetime(2025, 2, 12, 17, tzinfo=UTC))
        bad = good.set_column(
            good.column_names.index("predicted_value"), "predicted_value", pa.array(["x", "y"])
        )
        with pytest.raises(TerminalError, match="load L1"):
            backend.warehouse.stage(staging, bad, load_id="L1")
        assert backend.count(staging) == 0

        assert backend.warehouse.stage(staging, good, load_id="L1") == 2
        assert backend.warehouse.stage(staging, good, load_id="L1") == 2
        assert backend.count(staging) == 2
    finally:
        backend.close()
