"""Regenerate the column reference of docs/predictions.md from the schema contract (src/nbaprops/schema.py).

The descriptions live once, on the contract's columns; this writes them out as the glossary users read.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nbaprops import schema

MARK = "<!-- generated below by tools/gen_schema_docs.py -->"


def main(argv: list[str] | None = None) -> None:
    """Rewrite docs/predictions.md, or write the result to the path given as the first argument."""
    args = sys.argv[1:] if argv is None else argv
    parts = []
    for table in (schema.PREDICTIONS, schema.PREDICTION_GRADES, schema.PICK_LOG):
        rows = "\n".join(f"| `{c.name}` | {c.type} | {c.description} |" for c in table.columns)
        parts.append(f"### `{table.name}`\n\n| column | type | meaning |\n|---|---|---|\n{rows}\n")
    rows = "\n".join(
        f"| `{c.name}` | {c.type} | {c.description} |"
        for c in (*schema.BOARD_MARKET_COLUMNS, *schema.BOARD_MOVE_COLUMNS)
    )
    parts.append(
        "### The board's market columns\n\nNot stored: `predictions --json`/`--csv` and `GET /v1/predictions` "
        "append them to each row, priced when the board is read (docs/market.md).\n\n"
        f"| column | type | meaning |\n|---|---|---|\n{rows}\n"
    )
    source = Path(__file__).resolve().parents[1] / "docs" / "predictions.md"
    head = source.read_text().split(MARK)[0]
    target = Path(args[0]) if args else source
    target.write_text(head + MARK + "\n\n" + "\n".join(parts))


if __name__ == "__main__":
    main()
