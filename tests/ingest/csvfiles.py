"""Writing small CSV inputs for ingest tests."""

from __future__ import annotations

import csv
from pathlib import Path


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str] | None = None) -> Path:
    """Write ``rows`` with a header (``fields`` or the first row's keys) and return ``path``."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
