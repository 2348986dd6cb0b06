"""Regenerate the reference part of docs/cli.md from the commands' --help (run after changing the CLI)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from nbaprops.cli import app


def commands() -> list[list[str]]:
    """Every command path of the app, groups before their commands, in the order they were declared."""
    import typer

    found: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        found.append(path)
        if hasattr(cmd, "commands"):  # Typer vendors its own click: no isinstance
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


MARK = "<!-- generated below by tools/gen_cli_docs.py -->"


def main(argv: list[str] | None = None) -> None:
    """Rewrite docs/cli.md, or write the result to the path given as the first argument."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    runner = CliRunner()
    parts = []
    for cmd in commands():
        text = runner.invoke(
            app, [*cmd, "--help"], prog_name="nbaprops", env={"COLUMNS": "100", "NO_COLOR": "1"}, color=False
        ).stdout
        text = re.sub(r"\s+$", "", "\n".join(line.rstrip() for line in text.splitlines()))
        parts.append(f"### `nbaprops {' '.join(cmd)}`\n\n```text\n{text}\n```\n")
    source = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    head = source.read_text().split(MARK)[0]
    target = Path(args[0]) if args else source
    target.write_text(head + MARK + "\n\n" + "\n".join(parts))


if __name__ == "__main__":
    main()
