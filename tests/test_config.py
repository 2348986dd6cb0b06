"""Settings precedence: flag > ``NBAPROPS_*`` environment > TOML file > default (STYLE.md convention 12).

Mutations tried in ``load_settings``, each failing here: the environment read before the file (the file
wins over it); flags applied before the environment; ``None`` flags applied as values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nbaprops.config import Settings, load_settings
from nbaprops.errors import ConfigError, InputError
from nbaprops.storage import open_backend

DEFAULT_WORKERS = Settings().workers


@pytest.fixture(autouse=True)
def no_stray_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no ``nbaprops.toml`` lies around (it would be read as the default file)."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"),
    [
        (7, "5", 3, 7),
        (7, None, 3, 7),
        (7, "5", None, 7),
        (None, "5", 3, 5),
        (None, "5", None, 5),
        (None, None, 3, 3),
        (None, None, None, DEFAULT_WORKERS),
    ],
)
def test_each_source_beats_the_ones_below_it(
    tmp_path: Path, flag: int | None, env: str | None, file: int | None, expected: int
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(f"workers = {file}\n" if file is not None else "")
    environ = {"NBAPROPS_WORKERS": env} if env is not None else {}
    settings = load_settings({"workers": flag}, environ=environ, config_file=config)
    assert settings.workers == expected


def test_each_setting_is_taken_from_its_own_highest_source(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('workers = 3\nchunk_size = 16\nmarkets = ["pra"]\nev_margin = 0.05\n')
    settings = load_settings(
        {"chunk_size": 8, "ev_margin": None},
        environ={"NBAPROPS_MARKETS": "points, rebounds", "NBAPROPS_DB_PATH": "/data/props.duckdb"},
        config_file=config,
    )
    assert (
        settings.workers,
        settings.chunk_size,
        settings.markets,
        settings.ev_margin,
        settings.db_path,
    ) == (3, 8, ("points", "rebounds"), 0.05, Path("/data/props.duckdb"))
    assert settings.train_days == Settings().train_days


def test_the_file_is_found_through_the_environment_or_the_working_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text("workers = 4\n")
    (tmp_path / "nbaprops.toml").write_text("workers = 6\n")
    assert load_settings(environ={"NBAPROPS_CONFIG": str(elsewhere)}).workers == 4
    assert load_settings(environ={}).workers == 6


@pytest.mark.parametrize(
    ("file_text", "environ", "overrides", "error", "message"),
    [
        ("wokers = 3\n", {}, {}, ConfigError, "unknown setting 'wokers'"),
        ("workers = [\n", {}, {}, ConfigError, "cannot read config file"),
        ("", {"NBAPROPS_WORKERS": "many"}, {}, ConfigError, "setting 'workers': cannot read 'many'"),
        ("", {}, {"wokers": 3}, ConfigError, "unknown setting 'wokers'"),
        ("", {}, {"workers": -1}, ConfigError, "must be at least 1"),
        (
            "",
            {"NBAPROPS_MARKETS": "steals"},
            {},
            ConfigError,
            "setting 'markets' (NBAPROPS_MARKETS or the config",
        ),
        ("", {}, {"markets": "steals"}, InputError, "unknown market(s) steals; choose from"),
    ],
    ids=[
        "unknown key in file",
        "bad toml",
        "bad env value",
        "unknown flag",
        "negative workers",
        "unknown market in the environment",
        "unknown market as a flag",
    ],
)
def test_bad_settings_are_refused_with_what_is_wrong(
    tmp_path: Path,
    file_text: str,
    environ: dict[str, str],
    overrides: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(file_text)
    with pytest.raises(error, match=re.escape(message)):
        load_settings(overrides, environ=environ, config_file=config)


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={}, config_file=tmp_path / "missing.toml")


def test_zero_workers_are_refused_by_a_backend_whose_work_runs_only_here(tmp_path: Path) -> None:
    """The registry, not the settings, knows which backend runs its work elsewhere: the embedded one refuses
    workers 0 when it is opened (nothing would ever work the batch), naming the backend."""
    settings = load_settings({"workers": 0, "db_path": tmp_path / "db.duckdb"}, environ={}, config_file=None)
    with pytest.raises(ConfigError, match="workers must be at least 1 on backend 'duckdb'"):
        open_backend(settings)
    assert not (tmp_path / "db.duckdb").exists()
