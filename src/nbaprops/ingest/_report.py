"""The result every ingest function returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class IngestReport:
    """What an ingest call read and stored.

    Attributes:
        kind: ``boxscores``, ``lines`` or ``schedule``.
        files: the files read.
        rows_read: data rows in the files.
        rows_added: rows new to the database (0 when the same files are ingested again).
        details: kind-specific figures (for lines: unmatched player names with counts, alternate lines…).
    """

    kind: str
    files: tuple[str, ...]
    rows_read: int
    rows_added: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "files": list(self.files),
            "rows_read": self.rows_read,
            "rows_added": self.rows_added,
            **self.details,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
