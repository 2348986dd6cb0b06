"""The docs stay in step with the code: every command's --help is in docs/cli.md as generated."""

from __future__ import annotations

import os
import re
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


def _sh_blocks(runnable_only: bool) -> list[tuple[str, list[str]]]:
    """``(doc, command lines)`` of every fenced ``sh`` block in README.md and docs/ (``sh runnable`` ones only, if
    asked): the convention docs/cli.md describes. Comment-only and blank lines are left out."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for info, body in re.findall(r"^```(sh[^\n]*)\n(.*?)^```", doc.read_text(), flags=re.M | re.S):
            if runnable_only and info.split()[1:2] != ["runnable"]:
                continue
            lines = [line for line in body.replace("\\\n", " ").splitlines() if line.strip()]
            found.append((doc.name, [line for line in lines if not line.lstrip().startswith("#")]))
    return found


def _command_names() -> dict[str, Any]:
    import typer

    from nbaprops.cli import app

    return typer.main.get_command(app).commands  # type: ignore[attr-defined, no-any-return]


def test_every_documented_command_line_is_one_real_command_a_shell_can_take() -> None:
    """Issue 18 item 16: lines a reader pastes. Before: README's ``nbaprops status | batches | check-stalled |
    cleanup-staging`` (a shell pipes status into a program called ``batches``), ``fetch boxscores|schedule``,
    ``[--season 2025-26]`` (passed as the word ``[--season``). README's ``--lines pra_odds.csv`` (no such file at
    the repository root) is now the data's path, which this test finds."""
    import shlex

    commands = _command_names()
    wrong = []
    for doc, lines in _sh_blocks(runnable_only=False):
        for line in lines:
            words = shlex.split(line, comments=True)
            if not words or words[0] != "nbaprops":
                continue
            rest = words[1:]
            if rest[:1] == ["--as-of"]:  # the one global option that takes a value
                rest = rest[2:]
            path = [w for w in rest if not w.startswith("-")][:2]
            group = commands.get(path[0]) if path else None
            if group is None or (hasattr(group, "commands") and path[1:2] and path[1] not in group.commands):
                wrong.append(f"{doc}: not a command: {line}")
            piped = [b for a, b in zip(words, words[1:], strict=False) if a == "|"]
            if any(w.startswith("[") or (w != "|" and "|" in w) for w in words) or set(piped) & set(commands):
                wrong.append(f"{doc}: a shell takes [..] or | otherwise here: {line}")
            data = [w for w in words if w.endswith((".csv", ".parquet")) and w.startswith(("../", "data/"))]
            wrong += [
                f"{doc}: no file {w} from the repository root: {line}"
                for w in data
                if not (REPO / w).exists()
            ]
    assert wrong == []


def test_runnable_doc_blocks_run_as_pasted(tmp_path: Path) -> None:
    """Issue 18 item 16: every block marked ``sh runnable`` runs in a shell, line by line, in an empty folder
    (the default database ``var/nbaprops.duckdb`` is created there) and every line exits 0."""
    shim = tmp_path / "bin" / "nbaprops"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nbaprops.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NBAPROPS_DB_PATH", None)
    blocks = _sh_blocks(runnable_only=True)
    assert blocks, "no block is marked runnable"
    failed = []
    for k, (doc, lines) in enumerate(blocks):
        folder = tmp_path / f"block{k}"
        folder.mkdir()
        for line in lines:
            proc = subprocess.run(
                ["bash", "-o", "pipefail", "-c", line],
                capture_output=True,
                text=True,
                cwd=folder,
                env=env,
                timeout=120,
            )
            if proc.returncode != 0:
                failed.append(f"{doc}: `{line}` exited {proc.returncode}: {proc.stderr[-300:]}")
    assert failed == []
