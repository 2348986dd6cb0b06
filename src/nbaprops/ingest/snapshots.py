"""Every posting of a prop line, kept (``prop_line_snapshots``), and the close: each book's last snapshot before
tip-off.

``prop_lines`` holds one row per (game_date, player_lookup, market, bookmaker, line): a newer posting replaces the
stored one. Every lines ingest (``ingest lines``, the API's upload, ``fetch lines``, ``refresh``: all go through
:func:`~nbaprops.ingest.lines.ingest_lines`) also appends each row it read to ``prop_line_snapshots``, keyed by
that key and ``posted_at``, in the ingest's transaction:

* the same posting twice adds nothing (the key and ``posted_at`` are the snapshot's identity), so re-ingesting a
  file is idempotent; several snapshots in one call (three historical files at once) are all kept;
* a row without ``posted_at`` is not a snapshot (it cannot be placed before or after tip-off) and is not kept;
* a book listing one player under two spellings at one time keeps the more balanced row, as ``prop_lines`` does;
* the player is the one ``prop_lines`` resolved (aliases and matched sportsbook spellings).

A database from before this table is upgraded in place: opening it creates the empty table (every contract table
is created on open; opened read-only, it is read without it), and its stored ``prop_lines`` rows with a
``posted_at`` count as snapshots too when the close and the lines as of a time are read, so their history starts
at the latest posting each key kept; when a newer posting replaces such a row, the ingest first appends the stored
posting to the history.

**The board at a time** (:func:`~nbaprops.ingest.lines.select_lines` and
:func:`~nbaprops.ingest.lines.line_players` with ``as_of``): each key's latest posting with ``posted_at <= as_of``
— its ``prop_lines`` row when that was posted by then, else its latest earlier snapshot — so a replay run after
later ingests reads the lines it would have read on the night.

**The close** (:func:`closing_offers`) of a (game_date, player_lookup, market): tip-off is the latest
``commence_time`` any of its snapshots gave, else the schedule's ``commence_time`` of the game between the
player's team and opponent on that date, else unknown (no close). Each book's close is its rows of its last
posting time strictly before tip-off (``cutoff`` moves that earlier: a board read before tip-off sees the close so
far); lines it posted only earlier are gone from its board by then. Quarantined keys (``prop_lines``) never count.
The book's main line among them follows the main-line rule of :mod:`nbaprops.ingest.lines`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from nbaprops.storage.inputs import Inputs, InputSession

TABLE = "prop_line_snapshots"
_KEY = ("game_date", "player_lookup", "market", "bookmaker", "line", "posted_at")
_COLUMNS = (
    *_KEY,
    "over_price",
    "under_price",
    "commence_time",
    "event_id",
    "home_team",
    "away_team",
    "source",
)


def _implied(price: str) -> str:
    # nbaprops.ingest.lines.implied_sql's formula (that module calls this one, so it cannot be imported here).
    return f"(CASE WHEN {price} < 0 THEN -{price} / (100.0 - {price}) ELSE 100.0 / ({price} + 100.0) END)"


def _balance(t: str = "") -> str:
    """ORDER BY term: the more balanced two-way price first (the main-line rule's first criterion)."""
    return f"abs({_implied(t + 'over_price')} - {_implied(t + 'under_price')}) ASC NULLS LAST"


def record_snapshots(
    tx: InputSession, rows: str = "__lines_dedup", resolved: str = "__lines_new", *, into: str = TABLE
) -> int:
    """Append the call's postings to ``prop_line_snapshots`` (inside the ingest's transaction), and the stored
    postings they replace that the history lacks (module docstring); returns how many rows were new. Only postings not stored are added (the table's key has no index: connection.CHECKED_KEYS); one
    per key chosen by a window, not DISTINCT ON, whose ordered aggregate of 1M rows did not fit the ingest's bound.

    Args:
        rows: every parsed row of the call (exact duplicates dropped), before one posting per key is chosen.
        resolved: the rows stored in ``prop_lines``, whose ``player_lookup`` is the resolved player of each
            (game_date, player_name).
        into: where the postings go: the history, or a table of the history's columns that is appended to it
            later (the postings the history already holds are never added to it).
    """
    before = int(tx.scalar(f"SELECT count(*) FROM {into}"))
    held = [TABLE] if into == TABLE else [TABLE, into]
    key = ", ".join(_KEY)
    chosen = ", ".join(f"d.{c}" for c in _COLUMNS if c != "player_lookup")
    tx.execute(
        f"""INSERT INTO {into} ({", ".join(_COLUMNS)})
            SELECT {", ".join(_COLUMNS)} FROM (
                SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY __balance ASC NULLS LAST, __file, __line)
                          AS __n FROM (
                    SELECT {chosen}, coalesce(m.player_lookup, d.player_lookup) AS player_lookup,
                           {_balance("d.").removesuffix(" ASC NULLS LAST")} AS __balance, d.__file, d.__line
                    FROM {rows} d
                    LEFT JOIN (SELECT game_date, player_name, any_value(player_lookup) AS player_lookup
                               FROM {resolved} GROUP BY game_date, player_name) m
                      ON m.game_date = d.game_date AND m.player_name = d.player_name
                    WHERE d.posted_at IS NOT NULL)) x
            WHERE x.__n = 1 {"".join(f"AND NOT EXISTS (SELECT 1 FROM {t} s WHERE {' AND '.join(f's.{k} = x.{k}' for k in _KEY)})" for t in held)}"""
    )
    # A stored posting a newer one is about to replace in prop_lines, when the history lacks it (stored before
    # the history existed): kept, or a replay as of a time between the two would lose the key.
    line_key = [k for k in _KEY if k != "posted_at"]
    tx.execute(
        f"""INSERT INTO {into} ({", ".join(_COLUMNS)})
            SELECT DISTINCT {", ".join(f"p.{c}" for c in _COLUMNS)} FROM prop_lines p
            JOIN {resolved} n ON {" AND ".join(f"n.{k} = p.{k}" for k in line_key)}
            WHERE n.posted_at > p.posted_at
              {"".join(f"AND NOT EXISTS (SELECT 1 FROM {t} s WHERE {' AND '.join(f's.{k} = p.{k}' for k in _KEY)})" for t in held)}"""
    )
    return int(tx.scalar(f"SELECT count(*) FROM {into}")) - before


CLOSE_COLUMNS = (
    "game_date",
    "player_lookup",
    "market",
    "bookmaker",
    "line",
    "over_price",
    "under_price",
    "posted_at",
    "tipoff",
    "is_main",
)


def closing_offers(
    storage: Inputs,
    game_dates: Sequence[date],
    players: Sequence[str],
    markets: Sequence[str],
    teams: Sequence[str | None],
    opponents: Sequence[str | None],
    *,
    cutoff: datetime | None = None,
) -> Any:
    """Each book's closing offers of the listed player-markets (parallel lists; the module docstring's rules),
    as a ``pyarrow.Table`` with :data:`CLOSE_COLUMNS` (``tipoff`` is the tip-off used), and a second table of
    the player-markets asked with their ``tipoff`` (NULL: unknown).

    ``teams`` / ``opponents``: each player-market's teams, to find its game in the schedule when no snapshot
    says its tip-off. ``cutoff``: only snapshots posted strictly before it count too (None: up to tip-off).
    """
    params = {
        "days": list(game_dates),
        "players": list(players),
        "markets": list(markets),
        "teams": list(teams),
        "opponents": list(opponents),
        "cutoff": cutoff,
    }
    cols = ", ".join(c for c in _COLUMNS if c not in ("event_id", "home_team", "away_team", "source"))
    # A file from before the history, opened read-only (nothing created it yet): prop_lines alone.
    history = f"SELECT {cols} FROM {TABLE} UNION " if storage.table_columns(TABLE) else ""
    wanted = f"""wanted AS (
                SELECT DISTINCT * FROM (
                    SELECT unnest(CAST($days AS DATE[])) AS game_date,
                           unnest(CAST($players AS VARCHAR[])) AS player_lookup,
                           unnest(CAST($markets AS VARCHAR[])) AS market,
                           unnest(CAST($teams AS VARCHAR[])) AS team,
                           unnest(CAST($opponents AS VARCHAR[])) AS opponent)),
            snaps AS (
                SELECT s.* FROM ({history}SELECT {cols} FROM prop_lines WHERE posted_at IS NOT NULL) s
                SEMI JOIN (SELECT DISTINCT game_date, player_lookup, market FROM wanted) w
                  USING (game_date, player_lookup, market)
                WHERE NOT EXISTS (SELECT 1 FROM prop_lines q
                                  WHERE q.quarantine_reason IS NOT NULL AND q.game_date = s.game_date
                                    AND q.player_lookup = s.player_lookup AND q.market = s.market
                                    AND q.bookmaker = s.bookmaker AND q.line = s.line)),
            tip AS (
                SELECT w.game_date, w.player_lookup, w.market,
                       coalesce(max(s.commence_time), max(g.commence_time)) AS tipoff
                FROM wanted w
                LEFT JOIN (SELECT game_date, player_lookup, market, max(commence_time) AS commence_time
                           FROM snaps GROUP BY ALL) s USING (game_date, player_lookup, market)
                LEFT JOIN schedule g
                  ON g.game_date = w.game_date
                 AND ((g.home_team = w.team AND g.away_team = w.opponent)
                      OR (g.home_team = w.opponent AND g.away_team = w.team))
                GROUP BY w.game_date, w.player_lookup, w.market)"""
    offers = storage.arrow(
        f"""WITH {wanted},
            before_tip AS (
                SELECT s.*, t.tipoff FROM snaps s JOIN tip t USING (game_date, player_lookup, market)
                WHERE t.tipoff IS NOT NULL AND s.posted_at < t.tipoff
                  AND (CAST($cutoff AS TIMESTAMPTZ) IS NULL OR s.posted_at < $cutoff)),
            last AS (
                SELECT * FROM before_tip
                QUALIFY posted_at = max(posted_at) OVER (PARTITION BY game_date, player_lookup, market, bookmaker))
            SELECT {", ".join(CLOSE_COLUMNS[:-1])},
                   row_number() OVER (PARTITION BY game_date, player_lookup, market, bookmaker
                                      ORDER BY {_balance()}, line ASC) = 1 AS is_main
            FROM last
            ORDER BY game_date, player_lookup, market, bookmaker, line""",
        params,
    )
    tips = storage.arrow(
        f"WITH {wanted} SELECT * FROM tip ORDER BY game_date, player_lookup, market",
        {k: v for k, v in params.items() if k != "cutoff"},
    )
    return offers, tips


__all__ = ["CLOSE_COLUMNS", "TABLE", "closing_offers", "record_snapshots"]
