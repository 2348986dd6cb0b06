"""The pick log: each pick's offer (book, line, side, price) and fair probability when it was made
(:data:`nbaprops.schema.PICK_LOG`), what closing-line value is measured against later.

One row per (game_date, player_lookup, market, system_id): recording the same night again adds only the picks
not recorded yet. The first record stands — it is the price the pick was made at; a later run that would take
another offer (the lines moved) does not rewrite it.

:func:`review_picks` reads a night's recorded picks with their line moves, close and CLV
(:func:`nbaprops.evaluation.clv.pick_clv`) and, asked to, withdraws each one that has not started and whose
consensus line has moved against it by more than ``clv_moved_against`` (the ``withdraw_moved_against``
setting): the ``withdrawn_`` columns are filled once — a withdrawn pick stays withdrawn, recorded again or
not — and one ``pick_withdrawn`` alert is sent for it, after the write is committed; an alert that cannot be
delivered is logged and never fails the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from nbaprops.alerts import pick_withdrawn_alert
from nbaprops.config import Settings
from nbaprops.evaluation.clv import pick_clv, pick_clv_summary, read_pick_log
from nbaprops.ingest.lines import normalise_market
from nbaprops.markets import validate_market
from nbaprops.schema import PICK_LOG
from nbaprops.storage.inputs import Inputs
from nbaprops.systems import validate_systems

_TYPES = {
    "DATE": pa.date32(),
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int32(),
    "TIMESTAMPTZ": pa.timestamp("us", "UTC"),
}


def _log_table(chosen: Sequence[dict[str, Any]], **fixed: Any) -> pa.Table:
    """``chosen`` as pick_log rows (every contract column; ``fixed`` gives the same value to every row)."""
    return pa.table(
        {
            c.name: pa.array(
                [fixed[c.name] if c.name in fixed else p.get(c.name) for p in chosen], _TYPES[c.type]
            )
            for c in PICK_LOG.columns
        }
    )


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
    table = _log_table(chosen, game_date=game_date, system_id=system_id, bankroll=bankroll, made_at=made_at)
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
    return read_pick_log(storage, game_date=game_date)


_KEY = ("game_date", "player_lookup", "market", "system_id")


def _withdraw(storage: Inputs, rows: list[dict[str, Any]], when: datetime) -> set[tuple[Any, ...]]:
    """Fill the ``withdrawn_`` columns of ``rows`` (each with its key, ``withdrawn_reason`` and
    ``withdrawn_line``) where they are still empty; returns the keys this call withdrew (another process that
    withdrew one first sends its alert, so each pick is alerted once)."""
    table = pa.table(
        {
            "game_date": pa.array([r["game_date"] for r in rows], pa.date32()),
            **{k: pa.array([r[k] for r in rows], pa.string()) for k in _KEY[1:]},
            "reason": pa.array([r["withdrawn_reason"] for r in rows], pa.string()),
            "moved_to": pa.array([r["withdrawn_line"] for r in rows], pa.float64()),
        }
    )
    match = " AND ".join(f'l."{k}" = w."{k}"' for k in _KEY)
    with storage.transaction() as session:
        source = session.temp_name("withdrawn")
        session.register(source, table)
        done = session.execute(
            f"""UPDATE pick_log AS l SET withdrawn_at = $when, withdrawn_reason = w.reason,
                                         withdrawn_line = w.moved_to
                FROM {source} AS w WHERE {match} AND l.withdrawn_at IS NULL
                RETURNING l.game_date, l.player_lookup, l.market, l.system_id""",
            {"when": when},
        ).fetchall()
    return {tuple(row) for row in done}


def review_picks(
    storage: Inputs,
    settings: Settings,
    game_date: date,
    *,
    now: datetime,
    system: str | None = None,
    market: str | None = None,
    withdraw: bool = False,
    current: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The recorded picks of ``game_date`` (of ``system`` and ``market`` when given) with their line moves,
    close and CLV (:func:`~nbaprops.evaluation.clv.pick_clv`, ``moved_against`` by ``clv_moved_against``), as
    dicts under ``picks``. ``withdraw`` (``storage`` open for writing): each pick not withdrawn, not started
    and moved against is withdrawn at ``now`` and alerted once (``withdrawn_now``: those this call withdrew,
    ``alerts_sent``: how many alerts were delivered). ``current``: picks of this run, recorded or not, whose
    ``line_move``, ``moved_against`` and ``started`` come back under ``flags`` (measured in the same call: one
    query and one pricing of the close for both)."""
    logged = read_pick_log(storage, game_date=game_date, system=system, market=market)
    if current:
        extra = _log_table(current, game_date=game_date, made_at=now).cast(logged.schema)
        logged = pa.concat_tables([logged, extra])
    priced = pick_clv(storage, logged, now=now, threshold=settings.clv_moved_against)
    n = priced.num_rows - len(current)
    flags = priced.slice(n).select(["line_move", "moved_against", "started"]).to_pylist()
    rows = priced.slice(0, n).to_pylist()
    due = [dict(r) for r in rows if r["status"] == "moved_against"] if withdraw else []
    for r in due:
        since = r["system_line"] if r["system_line"] is not None else r["line"]
        r["withdrawn_line"] = r["consensus_line"]
        r["withdrawn_reason"] = (
            f"the consensus line moved from {since:g} to {r['consensus_line']:g} before tip-off, "
            f"{-r['line_move']:g} point(s) against the {r['side']}: more than clv_moved_against "
            f"({settings.clv_moved_against:g})"
        )
    done = _withdraw(storage, due, now) if due else set()
    withdrawn = []
    for r in rows:
        key = tuple(r[k] for k in _KEY)
        if key in done:
            r.update(next(d for d in due if tuple(d[k] for k in _KEY) == key), withdrawn_at=now)
            r["status"] = "withdrawn"
            withdrawn.append(r)
    sent = sum(pick_withdrawn_alert(settings, r) for r in withdrawn)
    return {"picks": rows, "withdrawn_now": withdrawn, "alerts_sent": sent, "flags": flags}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def recorded_picks(
    storage: Inputs,
    settings: Settings,
    game_date: date,
    *,
    system: str = "ensemble",
    market: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """What ``picks --logged`` and ``GET /v1/picks/logged`` answer: the recorded picks of ``game_date`` and
    ``system`` with their status, line move, close and CLV as of ``now`` (a read: nothing is withdrawn), and
    their ``summary`` (``accuracy``'s ``pick_clv`` figures over these picks).

    Raises:
        InputError: an unknown system or market.
    """
    validate_systems([system])
    if market is not None:
        market = validate_market(normalise_market(market))
    logged = pick_clv(
        storage,
        read_pick_log(storage, game_date=game_date, system=system, market=market),
        now=now,
        threshold=settings.clv_moved_against,
    )
    rows = [{k: _plain(v) for k, v in row.items()} for row in logged.to_pylist()]
    return {
        "game_date": game_date.isoformat(),
        "system_id": system,
        "market": market,
        "as_of": now.isoformat(),
        "clv_moved_against": settings.clv_moved_against,
        "count": len(rows),
        "picks": rows,
        "summary": pick_clv_summary(logged),
    }


__all__ = ["logged_picks", "record_picks", "recorded_picks", "review_picks"]
