"""The pick log: each pick's offer (book, line, side, price) and fair probability when it was made
(:data:`nbaprops.schema.PICK_LOG`), what closing-line value is measured against later.

One row per (game_date, player_lookup, market, system_id): recording the same night again adds only the picks
not recorded yet. The first record stands — it is the price the pick was made at; a later run that would take
another offer (the lines moved) does not rewrite it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from nbaprops.schema import PICK_LOG
from nbaprops.storage.inputs import Inputs

_TYPES = {
    "DATE": pa.date32(),
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", "UTC"),
}


def record_picks(
    storage: Inputs,
    game_date: date,
    system_id: str,
    bankroll: float,
    chosen: Sequence[dict[str, Any]],
    *,
    made_at: datetime,
) -> dict[str, int]:
    """Insert ``chosen`` (the ``picks`` of :func:`nbaprops.picks.picks`) into ``pick_log``; returns how many
    were recorded and how many were there already."""
    if not chosen:
        return {"recorded": 0, "already_recorded": 0}
    fixed = {"game_date": game_date, "system_id": system_id, "bankroll": bankroll, "made_at": made_at}
    table = pa.table(
        {
            c.name: pa.array(
                [fixed[c.name] if c.name in fixed else p.get(c.name) for p in chosen], _TYPES[c.type]
            )
            for c in PICK_LOG.columns
        }
    )
    names = ", ".join(f'"{n}"' for n in PICK_LOG.column_names)
    with storage.transaction() as session:
        source = session.temp_name("picks")
        session.register(source, table)
        before = int(session.execute("SELECT count(*) FROM pick_log").fetchall()[0][0])
        session.execute(f"INSERT INTO pick_log ({names}) SELECT {names} FROM {source} ON CONFLICT DO NOTHING")
        after = int(session.execute("SELECT count(*) FROM pick_log").fetchall()[0][0])
    return {"recorded": after - before, "already_recorded": len(chosen) - (after - before)}


def logged_picks(storage: Inputs, game_date: date) -> pa.Table:
    """The pick log of ``game_date``, by system, player and market."""
    return storage.arrow(
        "SELECT * FROM pick_log WHERE game_date = $day ORDER BY system_id, player_lookup, market",
        {"day": game_date},
    )


__all__ = ["logged_picks", "record_picks"]
