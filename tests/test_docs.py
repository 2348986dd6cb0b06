"""The docs stay in step with the code: every command's --help is in docs/cli.md as generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current(tmp_path: Path) -> None:
    before = (REPO / "docs" / "cli.md").read_text()
    fresh = tmp_path / "cli.md"
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_cli_docs.py"), str(fresh)], check=True, cwd=REPO)
    after = fresh.read_text()
    assert after == before, "docs/cli.md is stale: run `python tools/gen_cli_docs.py` and commit it"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split()[:2] for line in block[:2]] == [["make", "run"], ["make", "test"]]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
