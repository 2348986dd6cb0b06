"""The one ingest loader: every kind of input file goes read → resolve → check → stage → combine → merge.

A kind (box scores, lines, schedule, injuries) is an :class:`IngestSpec`: the columns it expects, its checks of
one file's text and of its typed rows, the SQL that types a checked file, the checks across the call's files and
against the stored rows (by the kind's key), and the merge into its table. :func:`load` runs them in that order
for every kind, so the promises of an ingest are kept in one place:

* every file is read by :func:`~nbaprops.ingest._validate.read_text_table` (the path a bound parameter, the
  columns renamed by position: a header never reaches SQL) and checked before anything is stored;
* all files of a call are merged in one transaction, so a bad row anywhere leaves the database unchanged;
* each file read is recorded in ``ingest_log`` (its digest, rows read and, when the kind counts them, added);
* the temporary tables of a call end with it;
* memory is bounded (:meth:`~nbaprops.storage.inputs.Inputs.within_memory_bound`): every step is SQL inside
  the store, which spills its temporary tables to disk rather than grow, and no row of a file becomes a Python
  object. (A call that does not fit the bound runs again without it: see that method.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbaprops.ingest._report import IngestReport, file_sha256
from nbaprops.ingest._validate import Column, Field, read_text_table, resolve_columns
from nbaprops.storage.inputs import Inputs, InputSession

log = logging.getLogger(__name__)


@dataclass
class SourceFile:
    """One file of an ingest call, as the loader stages it.

    Attributes:
        path: the file.
        index: its place in the call (``__file`` in the staged rows of kinds that keep it).
        view: the text table the checks and the staging read (every column VARCHAR, plus ``__line``); a check
            may narrow it to the rows worth storing (the injury report's "not yet submitted" rows).
        columns: each field's column in the file (``None`` for an absent optional one).
        typed: the temporary table of the file's typed rows, once staged.
        rows: the typed rows.
        facts: what a kind's checks learnt about the file and its staging needs (the market of a lines file
            without a market column, the rows a check left out).
    """

    path: Path
    index: int
    view: str
    columns: dict[str, Column | None]
    typed: str = ""
    rows: int = 0
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Merged:
    """What a kind's merge reports.

    Attributes:
        details: the report's kind-specific figures (:attr:`IngestReport.details`).
        added_by_file: the rows each file added, recorded in ``ingest_log``; ``None`` when the kind does not
            count them per file (the log says NULL).
    """

    details: dict[str, Any] = field(default_factory=dict)
    added_by_file: tuple[int, ...] | None = None


def _nothing(cur: InputSession, file: SourceFile) -> None:
    """No check of this kind at this step."""


def _no_details(cur: InputSession, files: Sequence[SourceFile]) -> dict[str, Any]:
    return {}


def _nothing_held(combined: dict[str, Any]) -> None:
    """The combine step holds nothing outside the database."""


@dataclass(frozen=True)
class IngestSpec:
    """One kind of input file (see the module docstring for the order :func:`load` runs the steps in).

    Attributes:
        kind: its name in reports and in ``ingest_log``.
        table: the table its merge adds rows to (rows added are counted on it).
        noun: how the log line names its rows.
        key: the columns that identify one stored row (the combine and merge steps match on them).
        fields: the columns its files hold.
        stage: the ``SELECT`` of a checked file's typed rows, with its parameters.
        check: checks of one file's text table, before staging; raises ``InputError``.
        check_staged: checks of one file's typed rows.
        combine: checks across the call's files and against the stored rows; builds what the merge reads and
            returns figures for it.
        merge: stores the combined rows inside the call's transaction, given the combine step's figures.
        scratch: fixed-name temporary tables the combine or merge steps create (dropped at the end).
        release: given the combine step's figures once the merge has ended or failed, removes what the combine
            step keeps outside the database (files it wrote for the merge to read).
    """

    kind: str
    table: str
    noun: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    stage: Callable[[SourceFile], tuple[str, Mapping[str, Any]]]
    merge: Callable[[InputSession, Sequence[SourceFile], dict[str, Any]], Merged]
    check: Callable[[InputSession, SourceFile], None] = _nothing
    check_staged: Callable[[InputSession, SourceFile], None] = _nothing
    combine: Callable[[InputSession, Sequence[SourceFile]], dict[str, Any]] = _no_details
    scratch: tuple[str, ...] = ()
    release: Callable[[dict[str, Any]], None] = _nothing_held


def _count(cur: InputSession, table: str) -> int:
    return int(cur.scalar(f"SELECT count(*) FROM {table}") or 0)


def load(
    storage: Inputs, spec: IngestSpec, paths: Sequence[Path | str], *, kind: str | None = None
) -> IngestReport:
    """Validate and store ``paths`` as ``spec``'s kind; atomic across all files.

    Args:
        kind: the name reported and logged instead of ``spec.kind`` (the shipped box scores).

    Raises:
        InputError: naming the file, line and column of the first problem; nothing stored changes.
    """
    return storage.within_memory_bound(lambda: _load(storage, spec, paths, kind or spec.kind))


def _load(storage: Inputs, spec: IngestSpec, paths: Sequence[Path | str], kind: str) -> IngestReport:
    with storage.session() as cur:
        files: list[SourceFile] = []
        for index, raw_path in enumerate(paths):
            path = Path(raw_path)
            text = cur.temp_name(f"{spec.kind}_in_{index}")
            header = read_text_table(cur, path, text)
            file = SourceFile(path, index, text, resolve_columns(header, spec.fields, path=path))
            spec.check(cur, file)
            file.typed = cur.temp_name(f"{spec.kind}_typed_{index}")
            select, params = spec.stage(file)
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {file.typed} AS {select}", dict(params) or None)
            for table in {text, file.view}:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            spec.check_staged(cur, file)
            file.rows = _count(cur, file.typed)
            files.append(file)
        if not files:
            return IngestReport(kind, (), 0, 0)
        combined = spec.combine(cur, files)
        now = datetime.now(UTC)
        try:
            with storage.transaction() as tx:
                before = _count(tx, spec.table)
                merged = spec.merge(tx, files, combined)
                added = _count(tx, spec.table) - before
                by_file = merged.added_by_file or (None,) * len(files)
                for file, file_added in zip(files, by_file, strict=True):
                    tx.execute(
                        "INSERT OR REPLACE INTO ingest_log VALUES (?, ?, ?, ?, ?, ?)",
                        [kind, str(file.path), file_sha256(file.path), file.rows, file_added, now],
                    )
        finally:
            spec.release(combined)
        for table in (*(f.typed for f in files), *spec.scratch):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    rows_read = sum(f.rows for f in files)
    log.info("ingested %d %s rows (%d new) from %d file(s)", rows_read, spec.noun, added, len(files))
    return IngestReport(kind, tuple(str(f.path) for f in files), rows_read, added, merged.details)


__all__ = ["IngestSpec", "Merged", "SourceFile", "load"]
