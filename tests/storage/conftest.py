"""Fixtures of the storage tests: the BigQuery emulator (session-scoped, see tests/emulators/bigquery.py)."""

from __future__ import annotations

import pytest
from tests.emulators.bigquery import bigquery_emulator

__all__ = ["bigquery_emulator"]


def pytest_configure(config: pytest.Config) -> None:
    # Until pyproject.toml declares it: tests that need a Google Cloud emulator (`make test-cloud` runs them).
    config.addinivalue_line("markers", "cloud: needs a Google Cloud emulator (skips where it cannot run)")
