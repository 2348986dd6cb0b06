"""The docs stay in step with the code: every command's --help is in docs/cli.md as generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("doc", "tool"), [("cli.md", "gen_cli_docs.py"), ("predictions.md", "gen_schema_docs.py")]
)
def test_generated_reference_is_current(tmp_path: Path, doc: str, tool: str) -> None:
    before = (REPO / "docs" / doc).read_text()
    fresh = tmp_path / doc
    subprocess.run([sys.executable, str(REPO / "tools" / tool), str(fresh)], check=True, cwd=REPO)
    after = fresh.read_text()
    assert after == before, f"docs/{doc} is stale: run `python tools/{tool}` and commit it"


def test_every_command_has_help_and_every_prediction_column_a_meaning() -> None:
    import typer

    from nbaprops import schema
    from nbaprops.cli import app

    def walk(cmd: Any, path: str) -> list[tuple[str, str | None]]:
        found = [(path, cmd.help)]
        if hasattr(cmd, "commands"):  # Typer vendors its own click: no isinstance
            for name, sub in cmd.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    assert [path for path, text in walk(typer.main.get_command(app), "nbaprops") if not text] == []
    assert [
        c.name for t in (schema.PREDICTIONS, schema.PREDICTION_GRADES) for c in t.columns if not c.description
    ] == []


def test_make_lint_and_types_run_real_tools() -> None:
    dry = subprocess.run(
        ["make", "-n", "lint", "types"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert "ruff check" in dry and "ruff format --check" in dry and "mypy" in dry


def test_readme_opens_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split()[:2] for line in block[:2]] == [["make", "run"], ["make", "test"]]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_systems_option_names_every_registered_system_and_the_default() -> None:
    """The --systems help is written out (the CLI does not import LightGBM to print it): it must name every
    registered system. Before, it named five of seven, so `minutes_rate` and `market_blend` were undiscoverable."""
    import typer

    from nbaprops.cli import app
    from nbaprops.config import Settings
    from nbaprops.systems import SYSTEM_IDS

    backtest = typer.main.get_command(app).commands["backtest"]  # type: ignore[attr-defined]
    text = next(p.help for p in backtest.params if p.name == "systems")
    listed = text.split(":", 1)[1].split("[", 1)[0]
    assert [s.strip() for s in listed.split(",")] == list(SYSTEM_IDS)
    assert list(SYSTEM_IDS[:5]) == list(Settings().systems)
