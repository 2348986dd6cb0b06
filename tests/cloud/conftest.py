"""Fixtures of the end-to-end tests on the GCP backend: the three emulators and a deployment of our own."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.emulators.bigquery import BigQueryEmulator, bigquery_emulator
from tests.emulators.google import firestore_emulator, pubsub_emulator

from nbaprops.config import Settings, load_settings

__all__ = ["bigquery_emulator", "firestore_emulator", "pubsub_emulator"]


@dataclass
class Deployment:
    """One test's own GCP deployment on the shared emulators (its own dataset, topic and collections)."""

    env: dict[str, str]
    db: Path

    @property
    def settings(self) -> Settings:
        environ = {**os.environ, **self.env}
        return load_settings({"db_path": self.db}, environ=environ)


@pytest.fixture(scope="session")
def cloud_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models shared by the cloud tests (trained once, by the first coordinator)."""
    return tmp_path_factory.mktemp("cloud-artifacts")


@pytest.fixture
def deployment(
    pubsub_emulator: str,
    firestore_emulator: str,
    bigquery_emulator: BigQueryEmulator,
    loaded_db_file: Path,
    cloud_artifacts: Path,
    tmp_path: Path,
) -> Iterator[Deployment]:
    suffix = uuid.uuid4().hex[:10]
    db = tmp_path / "inputs.duckdb"
    shutil.copyfile(loaded_db_file, db)
    yield Deployment(
        {
            "NBAPROPS_BACKEND": "gcp",
            "NBAPROPS_GCP_PROJECT": bigquery_emulator.project,
            "NBAPROPS_BIGQUERY_ENDPOINT": bigquery_emulator.endpoint,
            "NBAPROPS_BIGQUERY_DATASET": f"t_{suffix}",
            "NBAPROPS_FIRESTORE_PREFIX": f"t{suffix}",
            "NBAPROPS_PUBSUB_TOPIC": f"work-{suffix}",
            "PUBSUB_EMULATOR_HOST": pubsub_emulator,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator,
            "NBAPROPS_SYSTEMS": "moving_average",
            "NBAPROPS_MARKETS": "points",
            "NBAPROPS_TRAIN_DAYS": "60",
            "NBAPROPS_DATA_DIR": str(cloud_artifacts),
            "NBAPROPS_CHUNK_SIZE": "32",
        },
        db,
    )
