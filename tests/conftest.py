"""Shared fixtures: real DuckDB files holding the real box scores.

Loading the shipped seasons takes a few seconds, so it happens once per test session; each test gets its own
copy of that file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nbaprops.ingest import ensure_boxscores
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

if TYPE_CHECKING:
    from tests.sources.fake_services import FakeServices

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
PRA_LINES = {
    season: SHARED_DATA / "prop-lines-pra" / season / "pra_odds.csv" for season in ("2023-24", "2024-25")
}


@pytest.fixture(scope="session")
def loaded_db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with every shipped box score loaded (built once per session; do not write to it)."""
    path = tmp_path_factory.mktemp("seed") / "seed.duckdb"
    storage = open_storage(path)
    ensure_boxscores(storage)
    storage.execute("CHECKPOINT")
    storage.close()
    return path


@pytest.fixture
def db_path(loaded_db_file: Path, tmp_path: Path) -> Path:
    """A private copy of the loaded database file."""
    path = tmp_path / "nbaprops.duckdb"
    shutil.copyfile(loaded_db_file, path)
    return path


@pytest.fixture
def storage(db_path: Path) -> Iterator[DuckDBStorage]:
    """Open storage on a private copy of the loaded database."""
    store = open_storage(db_path)
    yield store
    store.close()


@pytest.fixture(scope="session")
def pra_lines() -> dict[str, Path]:
    """Paths of the real PRA sportsbook lines in ../shared/data (skips when the shared data is absent)."""
    missing = [str(p) for p in PRA_LINES.values() if not p.exists()]
    if missing:
        pytest.skip(f"shared data not found: {missing}; set NBAPROPS_SHARED_DATA")
    return PRA_LINES


@pytest.fixture
def live_services() -> Iterator[FakeServices]:
    """The live services' stand-in on loopback, serving the recorded answers (tests/sources/recorded)."""
    from tests.sources.fake_services import running_services

    with running_services() as services:
        yield services
