"""The warehouse seam on the embedded DuckDB file (:class:`~nbaprops.storage.seams.Warehouse`).

Staging tables come from the staging contract (``schema.PREDICTIONS`` without keys). DuckDB has no table
expiry, so ``expires_hours`` is not enforced here: the janitor drops staging older than its TTL. Loads are
idempotent per ``load_id`` through a small ``staging_loads`` table written in the same transaction as the
rows: a repeated ``load_id`` changes nothing. :meth:`DuckDBWarehouse.merge` is consolidation without the
ledger: the ``done`` table (player_lookup, attempt) stands for the requests that completed, and the latch
stays with the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import pyarrow as pa

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import ContractError
from nbaprops.storage._warehouse import CONTRACTS, INPUT_TABLES, check_staged_rows, input_tables
from nbaprops.storage.duckdb.connection import CHECKED_KEYS, Database, Session
from nbaprops.storage.inputs import Inputs
from nbaprops.storage.seams import MergeResult

log = logging.getLogger(__name__)

LOADS_TABLE = schema.STAGING_LOADS.name  # created with the other contract tables when the file is opened


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_exists(tx: Session, name: str) -> bool:
    return bool(
        tx.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
            [name],
        )
    )


class DuckDBWarehouse:
    """Staging and the main predictions table in one DuckDB file.

    Args:
        storage: the open file (its contract tables exist).
    """

    def __init__(self, storage: Database) -> None:
        self.storage = storage

    # -- staging -------------------------------------------------------------------------------
    def create_staging(self, batch_id: str, *, expires_hours: float) -> str:
        """Create the batch's staging table; ``expires_hours`` is left to the janitor (DuckDB has no expiry)."""
        name = schema.staging_table_name(batch_id)
        self.storage.execute(schema.PREDICTIONS.create_sql(name, keys=False))
        return name

    def stage(self, staging_table: str, rows: pa.Table, *, load_id: str) -> int:
        """Insert ``rows`` by name; a ``load_id`` seen before for this table changes nothing.

        Returns:
            the rows of this load (also when it had been loaded before).

        Raises:
            ContractError: the staging table does not exist or cannot hold the rows.
        """
        with self.storage.transaction() as tx:
            if not _table_exists(tx, staging_table):
                raise ContractError(f"staging table {staging_table} does not exist; create it first")
            check_staged_rows(rows, tx.columns(staging_table), staging_table=staging_table)
            if tx.scalar(
                f"SELECT count(*) FROM {LOADS_TABLE} WHERE staging_table = ? AND load_id = ?",
                [staging_table, load_id],
            ):
                log.info("load %s into %s was done before; nothing loaded", load_id, staging_table)
                return int(rows.num_rows)
            source = tx.temp_name("stage")
            tx.register(source, rows)
            tx.execute(f"INSERT INTO {_quote(staging_table)} BY NAME SELECT * FROM {source}")
            tx.execute(f"INSERT INTO {LOADS_TABLE} VALUES (?, ?, ?)", [staging_table, load_id, rows.num_rows])
        return int(rows.num_rows)

    def staging_tables(self) -> list[str]:
        return self.storage.tables_with_prefix(schema.STAGING_PREFIX)

    def drop_staging(self, name: str) -> None:
        with self.storage.transaction() as tx:
            tx.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
            tx.execute(f"DELETE FROM {LOADS_TABLE} WHERE staging_table = ?", [name])

    # -- consolidation -------------------------------------------------------------------------
    def merge(
        self, *, batch_id: str, staging_table: str, game_date: date, done: pa.Table, clock: Clock
    ) -> MergeResult:
        """Consolidate ``staging_table`` into the main table in one transaction (the seam's contract).

        ``done`` holds (player_lookup, attempt) of the requests that completed; only staging rows of those
        attempts are taken (I7). DuckDB's DDL is transactional, so the added columns and the staging drop
        commit or roll back with the rows.
        """
        main = schema.PREDICTIONS.name
        key = ", ".join(schema.PREDICTION_KEY)
        now = clock.now()
        with self.storage.transaction() as tx:
            if not _table_exists(tx, staging_table):
                return MergeResult(staging_found=False)
            staging_cols = tx.columns(staging_table)
            plan = schema.plan_drift(
                staging_cols, tx.columns(main), required=(*schema.PREDICTION_KEY, "prediction_id")
            )
            for column in plan.add_to_main:
                log.warning("drift: adding column %s %s to %s", column.name, column.type, main)
                tx.execute(f"ALTER TABLE {main} ADD COLUMN {_quote(column.name)} {column.type}")
            done_name = tx.temp_name("done")
            tx.register(done_name, done.select(["player_lookup", "attempt"]))
            # An old staging table without attempt can only be fenced by the request's state.
            fence = "s.attempt = d.attempt" if "attempt" in staging_cols else "TRUE"
            fenced = f"""FROM {_quote(staging_table)} s JOIN {done_name} d
                         ON d.player_lookup = s.player_lookup AND {fence}"""
            selected = tx.temp_name("consolidate")
            tx.execute(
                f"""CREATE TEMP TABLE {selected} AS
                    SELECT * EXCLUDE (__rank) FROM (
                        SELECT s.*, row_number() OVER (
                            PARTITION BY s.game_id, s.player_lookup, s.market, s.system_id
                            ORDER BY s.created_at DESC, s.prediction_id) AS __rank
                        {fenced}
                    ) WHERE __rank = 1"""
            )
            counts = tx.execute(
                f"""SELECT (SELECT count(*) FROM {_quote(staging_table)}),
                           (SELECT count(*) {fenced}),
                           (SELECT count(*) FROM {selected})"""
            ).fetchone()
            n_staged, n_fenced_in, n_unique = (int(c) for c in counts or (0, 0, 0))
            # The slate's dates and games as constants: the main table's scan skips every row group of other dates
            # (its zone maps; the games' IN list is only an optional filter of the scan, DuckDB joins it), so the
            # cost follows the slate, not the history stored (benchmarks/scale.py). Exact: both statements match on
            # game_id (a prediction_id is a hash of its game_id too), and a game has one date.
            slate = tx.execute(f"SELECT DISTINCT game_date, game_id FROM {selected}").fetchall()
            dates = sorted({r[0] for r in slate})
            games = sorted({str(r[1]) for r in slate})
            in_games = (
                f"m.game_date IN ({', '.join('?' for _ in dates)}) AND m.game_id IN ({', '.join('?' for _ in games)})"
                if games
                else "false"
            )
            in_games_params = [*dates, *games]
            superseded = tx.execute(
                f"""UPDATE {main} m SET is_active = false, superseded_by = n.prediction_id, invalidated_at = ?,
                           invalidation_reason = 'superseded by batch ' || ?, updated_at = ?
                    FROM {selected} n
                    WHERE {in_games} AND m.is_active AND m.game_id = n.game_id AND m.player_lookup = n.player_lookup
                      AND m.market = n.market AND m.system_id = n.system_id AND m.prediction_id <> n.prediction_id""",
                [now, batch_id, now, *in_games_params],
            ).fetchone()
            insert_cols = ", ".join(_quote(c) for c in plan.insert_columns)
            inserted = tx.execute(
                f"""INSERT INTO {main} ({insert_cols})
                    SELECT {insert_cols} FROM {selected} n
                    WHERE NOT EXISTS (SELECT 1 FROM {main} m WHERE {in_games} AND m.prediction_id = n.prediction_id)""",
                in_games_params,
            ).fetchone()
            # The table's keys, checked on the rows of the slate's date and games (the main table has no index
            # over all the seasons stored: connection.CHECKED_KEYS): at most one active row per key (I3), and one
            # row per prediction_id (the primary key; it hashes its game_id, so no other game can hold it).
            duplicates, doubled = tx.execute(
                f"""SELECT (SELECT count(*) FROM (SELECT {key} FROM {main} WHERE is_active AND game_date = ?
                                                  GROUP BY {key} HAVING count(*) > 1)),
                           (SELECT count(*) - count(DISTINCT prediction_id) FROM {main} m WHERE {in_games})""",
                [game_date, *in_games_params],
            ).fetchone() or (0, 0)
            if duplicates:
                raise ContractError(
                    f"consolidation of {batch_id} would leave {duplicates} key(s) with two active rows; "
                    "nothing was changed"
                )
            if doubled:
                raise ContractError(
                    f"consolidation of {batch_id} would store {doubled} prediction_id(s) twice; nothing was changed"
                )
            tx.execute(f"DROP TABLE {_quote(staging_table)}")
            tx.execute(f"DELETE FROM {LOADS_TABLE} WHERE staging_table = ?", [staging_table])
        result = MergeResult(
            staging_found=True,
            rows_staged=n_staged,
            rows_fenced_out=n_staged - n_fenced_in,
            rows_deduplicated=n_fenced_in - n_unique,
            rows_inserted=int(inserted[0]) if inserted else 0,
            rows_superseded=int(superseded[0]) if superseded else 0,
            drift=plan.as_dict(),
        )
        log.info("batch %s merged from %s: %s", batch_id, staging_table, result)
        return result

    def invalidate(
        self,
        game_date: date,
        *,
        games: Sequence[tuple[str | None, str, str]],
        players: Sequence[tuple[str, datetime]],
        at: datetime,
    ) -> tuple[int, dict[str, int]]:
        main = schema.PREDICTIONS.name
        postponed = 0
        per_player: dict[str, int] = {}
        with self.storage.transaction() as tx:
            for game_id, home, away in games:
                changed = tx.execute(
                    f"""UPDATE {main} SET is_active = false, invalidated_at = ?,
                              invalidation_reason = 'game_postponed', updated_at = ?
                       WHERE is_active AND game_date = ? AND (game_id = ? OR (team = ? AND opponent = ?)
                                                              OR (team = ? AND opponent = ?))""",
                    [at, at, game_date, game_id, home, away, away, home],
                ).fetchone()
                postponed += int(changed[0]) if changed else 0
            for lookup, report_at in players:
                changed = tx.execute(
                    f"""UPDATE {main} SET is_active = false, invalidated_at = ?,
                              invalidation_reason = 'player_ruled_out', updated_at = ?
                       WHERE is_active AND game_date = ? AND player_lookup = ? AND created_at < ?""",
                    [at, at, game_date, lookup, report_at],
                ).fetchone()
                per_player[lookup] = per_player.get(lookup, 0) + (int(changed[0]) if changed else 0)
        return postponed, per_player

    def active_predictions(self, game_date: date, *, invalidated: Sequence[str] = ()) -> pa.Table:
        key = ", ".join(schema.PREDICTION_KEY)
        table: pa.Table = self.storage.arrow(
            f"""SELECT * FROM {schema.PREDICTIONS.name}
                WHERE game_date = ? AND (is_active OR list_contains(?, invalidation_reason))
                ORDER BY {key}, created_at""",
            [game_date, list(invalidated)],
        )
        return table

    # -- inputs and history --------------------------------------------------------------------
    def load_history_into(
        self,
        target: Database,
        *,
        since: date,
        until: date,
        tables: Iterable[str] | None = None,
    ) -> dict[str, int]:
        """Copy the input rows dated ``since`` … ``until`` (inclusive) into ``target`` (see
        :meth:`BigQueryWarehouse.load_history_into`); from this file into itself nothing needs copying.

        Returns:
            rows per table in the window.
        """
        counts: dict[str, int] = {}
        for contract in input_tables(tables):
            where, params = _window(INPUT_TABLES[contract.name], since, until)
            if target is self.storage:
                counts[contract.name] = int(
                    self.storage.scalar(f"SELECT count(*) FROM {contract.name}{where}", params)
                )
                continue
            rows = self.storage.arrow(f"SELECT * FROM {contract.name}{where}", params)
            counts[contract.name] = _insert_or_replace(target, contract.name, rows)
        return counts

    def upload_inputs(self, source: Inputs, *, tables: Iterable[str] | None = None) -> dict[str, int]:
        """Copy ``source``'s input tables into this file (rows with a stored key replace it).

        Returns:
            rows copied per table.
        """
        counts: dict[str, int] = {}
        for contract in input_tables(tables):
            if source is self.storage:
                counts[contract.name] = int(self.storage.scalar(f"SELECT count(*) FROM {contract.name}"))
                continue
            counts[contract.name] = _insert_or_replace(
                self.storage, contract.name, source.arrow(f"SELECT * FROM {contract.name}")
            )
        return counts


def _window(column: str | None, since: date, until: date) -> tuple[str, list[date]]:
    if column is None:
        return "", []
    return f" WHERE {column} BETWEEN ? AND ?", [since, until]


def _insert_or_replace(target: Database, table: str, rows: pa.Table) -> int:
    """Insert ``rows`` into ``target.table`` by name; a row whose key is stored replaces it. Columns the
    target lacks (the warehouse gained them) stay behind: the feature query reads the contract's. A table of
    :data:`~nbaprops.storage.duckdb.connection.CHECKED_KEYS` has no key index for ``INSERT OR REPLACE``: its
    stored rows of the same key are deleted first, in the same transaction."""
    with target.transaction() as tx:
        present = tx.columns(table)
        rows = rows.select([name for name in rows.column_names if name in present])
        source = tx.temp_name("copy")
        tx.register(source, rows)
        if table in CHECKED_KEYS:
            key = CONTRACTS[table].primary_key
            same = " AND ".join(f"t.{_quote(k)} IS NOT DISTINCT FROM s.{_quote(k)}" for k in key)
            tx.execute(f"DELETE FROM {_quote(table)} t USING {source} s WHERE {same}")
            tx.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM {source}")
        else:
            tx.execute(f"INSERT OR REPLACE INTO {_quote(table)} BY NAME SELECT * FROM {source}")
    return int(rows.num_rows)
