"""Validation of tabular input files before anything is stored.

A file is read as text (every column VARCHAR) with its line numbers, each declared column is checked in one
query, and the first bad value is raised as :class:`InputError` naming the file, line and column. Nothing is
written until every file of an ingest call has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbaprops.errors import InputError
from nbaprops.storage.duckdb import Session

Kind = Literal["text", "date", "int", "number", "nonneg_number", "timestamp"]


@dataclass(frozen=True)
class Field:
    """One expected input column.

    Attributes:
        name: canonical column name.
        kind: how the text must parse.
        required: the column must exist and every value must be non-empty.
        aliases: other spellings accepted in headers (case-insensitive).
        choices: allowed values after ``normalise`` (case-insensitive), when closed.
    """

    name: str
    kind: Kind = "text"
    required: bool = True
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()


_PARSE: Mapping[Kind, str] = {
    "text": "{v}",
    "date": "TRY_CAST(left({v}, 10) AS DATE)",
    "int": "TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT)",
    "number": "TRY_CAST({v} AS DOUBLE)",
    "nonneg_number": "TRY_CAST({v} AS DOUBLE)",
    "timestamp": "TRY_CAST({v} AS TIMESTAMPTZ)",
}


def parse_sql(kind: Kind, expr: str) -> str:
    """SQL that parses the text ``expr`` as ``kind`` (NULL when it cannot)."""
    return _PARSE[kind].format(v=f"nullif(trim({expr}), '')")


def read_text_table(con: Session, path: Path, view: str) -> list[str]:
    """Create temp view ``view`` over a CSV, Parquet or JSON file, every column as text plus ``__line``.

    Returns:
        The file's header names as written.
    """
    if not path.exists():
        raise InputError("file not found", path=str(path))
    source = str(path).replace("'", "''")
    reader = {".parquet": "read_parquet", ".json": "read_json_auto"}.get(path.suffix.lower())
    if reader is not None:  # Parquet, or JSON (an array of objects, or one object a line)
        rel = f"(SELECT * FROM {reader}('{source}'))"
        header = [
            r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}('{source}')", source=path).fetchall()
        ]
        casts = ", ".join(f'CAST("{h}" AS VARCHAR) AS "{h}"' for h in header)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {casts}, "
            f"CAST(row_number() OVER () + 1 AS BIGINT) AS __line FROM {rel}",
            source=path,
        )
        return header
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT *, CAST(row_number() OVER () + 1 AS BIGINT) AS __line "
        f"FROM read_csv('{source}', header=true, all_varchar=true, parallel=false)",
        source=path,
    )
    return [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall() if r[0] != "__line"]


def resolve_columns(header: Sequence[str], fields: Iterable[Field], *, path: Path) -> dict[str, str | None]:
    """Map each field to the header column that holds it (``None`` for an absent optional field).

    Raises:
        InputError: a required column is absent.
    """
    by_lower = {h.strip().lower(): h for h in header}
    resolved: dict[str, str | None] = {}
    for f in fields:
        found = next((by_lower[n.lower()] for n in (f.name, *f.aliases) if n.lower() in by_lower), None)
        if found is None and f.required:
            names = " or ".join(repr(n) for n in (f.name, *f.aliases))
            raise InputError(f"missing required column {names}", path=str(path), column=f.name)
        resolved[f.name] = found
    return resolved


def check_values(
    con: Session,
    view: str,
    fields: Iterable[Field],
    columns: Mapping[str, str | None],
    *,
    path: Path,
    normalise: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`InputError` at the first line whose value does not parse as its field's kind.

    Args:
        normalise: optional SQL expression per field (with ``{v}`` for the raw text) applied before
            checking ``choices``.
    """
    for f in fields:
        col = columns.get(f.name)
        if col is None:
            continue
        raw = f'"{col}"'
        parsed = parse_sql(f.kind, raw)
        problems = []
        if f.required:
            problems.append((f"nullif(trim({raw}), '') IS NULL", "is empty"))
        problems.append(
            (f"nullif(trim({raw}), '') IS NOT NULL AND {parsed} IS NULL", f"cannot be read as {f.kind}")
        )
        if f.kind == "nonneg_number":
            problems.append((f"{parsed} < 0", "must not be negative"))
        if f.choices:
            value = (normalise or {}).get(f.name, "lower(trim({v}))").format(v=raw)
            allowed = ", ".join(f"'{c}'" for c in f.choices)
            problems.append(
                (
                    f"nullif(trim({raw}), '') IS NOT NULL AND {value} NOT IN ({allowed})",
                    f"must be one of {allowed}",
                )
            )
        for condition, what in problems:
            row = con.execute(
                f"SELECT __line, {raw} FROM {view} WHERE {condition} ORDER BY __line LIMIT 1"
            ).fetchone()
            if row is not None:
                raise InputError(f"value {row[1]!r} {what}", path=str(path), row=int(row[0]), column=col)
