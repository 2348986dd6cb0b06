"""Backend-independent pieces of the warehouse seam: the input tables history is sliced from, and the checks
every backend makes on staged rows before loading them (BigQuery does not enforce REQUIRED columns on every
path, so our own validation stands before any load)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from nbaprops import schema
from nbaprops.errors import ContractError

# Input tables a worker's feature query reads, and the column that slices each by date (None: copied whole,
# they are small lookups). Point-in-time filtering stays in the feature query; the slice only bounds volume.
INPUT_TABLES: dict[str, str | None] = {
    schema.BOX_SCORES.name: "game_date",
    schema.SCHEDULE.name: "game_date",
    schema.PROP_LINES.name: "game_date",
    # the lines' posting history: a worker's lines as of its batch's time read it (ingest.lines.select_lines)
    schema.PROP_LINE_SNAPSHOTS.name: "game_date",
    schema.INJURY_REPORTS.name: "game_date",
    schema.TEAMS.name: None,
    schema.PLAYER_ALIASES.name: None,
}
CONTRACTS: dict[str, schema.Table] = {table.name: table for table in schema.ALL_TABLES}


def input_tables(tables: Iterable[str] | None) -> list[schema.Table]:
    """The contracts of ``tables`` (default: every input table), refusing anything but an input table."""
    names = list(INPUT_TABLES) if tables is None else list(tables)
    unknown = [name for name in names if name not in INPUT_TABLES]
    if unknown:
        raise ContractError(
            f"not an input table: {', '.join(unknown)}; choose among {', '.join(INPUT_TABLES)}"
        )
    return [CONTRACTS[name] for name in names]


def check_staged_rows(rows: pa.Table, staging_columns: Iterable[str], *, staging_table: str) -> None:
    """Refuse rows the staging table cannot hold: a column it lacks, or a NOT NULL contract column that is
    absent or holds NULLs.

    Raises:
        ContractError: naming the table and the columns.
    """
    present = set(staging_columns)
    extra = [name for name in rows.column_names if name not in present]
    if extra:
        raise ContractError(
            f"staging table {staging_table} has no column(s) {', '.join(extra)}; "
            "the worker and the staging contract disagree (recreate the staging table from the contract)"
        )
    for column in schema.PREDICTIONS.columns:
        if column.nullable or column.name not in present:
            continue
        if column.name not in rows.column_names:
            raise ContractError(f"rows for {staging_table} lack the required column {column.name}")
        if rows.column(column.name).null_count:
            raise ContractError(f"rows for {staging_table} hold NULL in the required column {column.name}")
