"""Validation of tabular input files before anything is stored.

A file is read as text (every column VARCHAR) with its line numbers, each declared column is checked in one
query, and the first bad value is raised as :class:`InputError` naming the file, line and column. Nothing is
written until every file of an ingest call has passed.

A file's headers and cells are data, never SQL (DESIGN.md, I10): the path is a bound parameter, the columns
are renamed by position as the file is read (``__c0``, ``__c1``…), and every query names those positions
through :class:`Column`; a header is only compared with the expected names and shown in messages, cut to one
line by :func:`shown`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbaprops.errors import InputError
from nbaprops.storage.inputs import InputSession

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


_READERS: Mapping[str, str] = {
    ".parquet": "read_parquet($path)",
    ".json": "read_json_auto($path)",  # an array of objects, or one object a line
}
_CSV_READER = "read_csv($path, header=true, all_varchar=true, parallel=false)"


def shown(value: object, limit: int = 60) -> str:
    """A value from a file as an error message shows it: quoted, control characters escaped, cut to ``limit``
    characters (a 10 kB header or cell stays a one-line message)."""
    text = repr(value if value is None else str(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


@dataclass(frozen=True)
class Column:
    """A column of a file read by :func:`read_text_table`.

    Attributes:
        name: the header as the file writes it (never SQL text: only compared and shown).
        position: its place in the header, from 0.
    """

    name: str
    position: int

    @property
    def sql(self) -> str:
        """The column in SQL: the positional name the text table gave it, never the file's header."""
        return positional_name(self.position)

    @property
    def label(self) -> str:
        """The header for an error message, cut to 60 characters (the message quotes it with ``repr``, so
        control characters are escaped there)."""
        return self.name if len(self.name) <= 60 else self.name[:57] + "..."


def positional_name(position: int) -> str:
    """The SQL name of the text table's column at ``position`` (``__c0``, ``__c1``...)."""
    return f"__c{int(position)}"


def _unreadable(path: Path, cause: BaseException | None) -> str:
    """What is wrong with a file DuckDB could not read, in the user's words (DuckDB's own text holds SQL, the
    reader's settings and advice that does not apply to nbaprops)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "cannot be read as Parquet (not a Parquet file, or a damaged one)"
    if suffix == ".json":
        return "cannot be read as JSON (expected an array of objects, or one object a line)"
    with path.open("rb") as handle:
        head = handle.read(8192)
    if b"\0" in head:
        return "is not a CSV file (it holds binary data); save it as CSV (UTF-8) or Parquet"
    text = str(cause or "")
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f" at line {line.group(1)}" if line else ""
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return f"is not UTF-8 text{where}; save it as CSV (UTF-8)"
    return f"cannot be read as CSV{where}: check its quoting and that every line has as many fields as the header"


def read_text_table(con: InputSession, path: Path, table: str) -> list[str]:
    """Create temp table ``table`` over a CSV, Parquet or JSON file: every column as text plus ``__line``.

    The file's headers never reach SQL: the path is a bound parameter and the columns are renamed by position
    (``__c0``, ``__c1``...; see :class:`Column`) as the file is read, so a header is only ever compared and
    shown.

    Returns:
        The file's header names as written, in order.

    Raises:
        InputError: the file does not exist, is a folder, is empty or cannot be read; one line, in the
            user's words.
    """
    if path.is_dir():
        raise InputError("is a folder, not a file", path=str(path))
    if not path.exists():
        raise InputError("file not found", path=str(path))
    size = path.stat().st_size
    if size == 0 or (size < 4096 and not path.read_bytes().strip()):
        raise InputError("the file is empty", path=str(path))
    reader = _READERS.get(path.suffix.lower(), _CSV_READER)
    with _unglobbed(path) as readable:
        return _read(con, path, readable, reader, table)


_GLOB = re.compile(r"[*?\[\]{}]")


@contextlib.contextmanager
def _unglobbed(path: Path) -> Iterator[Path]:
    """A name DuckDB reads as this one file: its readers expand ``*``, ``?`` and ``[...]`` in a path, so
    ``odds[1].csv`` read ``odds1.csv`` and ``week*.csv`` every file of the folder it matched. Such a name is
    read through a link with a plain name in a private folder."""
    if not _GLOB.search(str(path)):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nbaprops-read-") as folder:
        link = Path(folder) / f"input{path.suffix.lower()}"
        try:
            link.symlink_to(path.resolve())
        except OSError:  # no symbolic links here: a copy reads the same bytes
            shutil.copyfile(path, link)
        yield link


def _read(con: InputSession, path: Path, readable: Path, reader: str, table: str) -> list[str]:
    params = {"path": str(readable)}
    try:
        header = [
            r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}", params, source=path).fetchall()
        ]
        names = [positional_name(i) for i in range(len(header))]
        casts = ", ".join(f"CAST({n} AS VARCHAR) AS {n}" for n in names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {casts}, "
            f"CAST(row_number() OVER () + 1 AS BIGINT) AS __line FROM {reader} AS __file({', '.join(names)})",
            params,
            source=path,
        )
    except InputError as exc:
        if exc.path is None or exc.row is not None or exc.column is not None:
            raise
        raise InputError(_unreadable(path, exc.__cause__), path=str(path)) from exc
    return header


def resolve_columns(
    header: Sequence[str], fields: Iterable[Field], *, path: Path
) -> dict[str, Column | None]:
    """Map each field to the header column that holds it (``None`` for an absent optional field).

    Raises:
        InputError: a required column is absent.
    """
    by_lower: dict[str, Column] = {}
    for position, name in enumerate(header):
        by_lower.setdefault(name.strip().lower(), Column(name, position))
    resolved: dict[str, Column | None] = {}
    for f in fields:
        found = next((by_lower[n.lower()] for n in (f.name, *f.aliases) if n.lower() in by_lower), None)
        if found is None and f.required:
            names = " or ".join(repr(n) for n in (f.name, *f.aliases))
            raise InputError(f"missing required column {names}", path=str(path), column=f.name)
        resolved[f.name] = found
    return resolved


def column_sql(column: Column | None, qualifier: str = "") -> str:
    """SQL of a resolved column (``NULL`` when the file has none), optionally qualified by a table alias."""
    if column is None:
        return "NULL"
    return f"{qualifier}.{column.sql}" if qualifier else column.sql


_EXPECTED: Mapping[Kind, str] = {
    "text": "text",
    "date": "a date (YYYY-MM-DD)",
    "int": "a whole number",
    "number": "a number",
    "nonneg_number": "a number",
    "timestamp": "a date and time (ISO 8601, e.g. 2025-02-12T19:00:00-05:00)",
}
"""What a value of each kind must look like, in the words an error message uses."""


def check_values(
    con: InputSession,
    table: str,
    fields: Iterable[Field],
    columns: Mapping[str, Column | None],
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
        raw = col.sql
        parsed = parse_sql(f.kind, raw)
        problems = []
        if f.required:
            problems.append((f"nullif(trim({raw}), '') IS NULL", "is empty"))
        problems.append(
            (f"nullif(trim({raw}), '') IS NOT NULL AND {parsed} IS NULL", f"is not {_EXPECTED[f.kind]}")
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
                f"SELECT __line, {raw} FROM {table} WHERE {condition} ORDER BY __line LIMIT 1"
            ).fetchone()
            if row is not None:
                raise InputError(
                    f"value {shown(row[1])} {what}", path=str(path), row=int(row[0]), column=col.label
                )


def column_label(column: Column | None) -> str | None:
    """:attr:`Column.label` of a resolved column, ``None`` when the file has none."""
    return None if column is None else column.label
