"""Regenerate the reference part of docs/cli.md from the commands' --help (run after changing the CLI)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from nbaprops.cli import app

COMMANDS = [[], ["predict"], ["predictions"], ["status"], ["batches"], ["consolidate"], ["check-stalled"],
            ["cleanup-staging"], ["train"], ["backtest"], ["ingest"], ["ingest", "boxscores"], ["ingest", "lines"],
            ["ingest", "schedule"]]
MARK = "<!-- generated below by tools/gen_cli_docs.py -->"


def main(argv: list[str] | None = None) -> None:
    """Rewrite docs/cli.md, or write the result to the path given as the first argument."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    runner = CliRunner()
    parts = []
    for cmd in COMMANDS:
        text = runner.invoke(app, [*cmd, "--help"], prog_name="nbaprops", env={"COLUMNS": "100", "NO_COLOR": "1"}, color=False).stdout
        text = re.sub(r"\s+$", "", "\n".join(line.rstrip() for line in text.splitlines()))
        parts.append(f"### `nbaprops {' '.join(cmd)}`\n\n```text\n{text}\n```\n")
    source = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    head = source.read_text().split(MARK)[0]
    target = Path(args[0]) if args else source
    target.write_text(head + MARK + "\n\n" + "\n".join(parts))


if __name__ == "__main__":
    main()
