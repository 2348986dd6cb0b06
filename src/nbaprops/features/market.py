"""What the market says before tip-off, as feature columns: the line and its de-vigged P(over).

A sportsbook line is public before the game, so a system may use it honestly — as long as it is the line
posted by the prediction time (the batch and the backtest pass the lines selected ``as of`` then; training
rows get the lines stored for their own dates). Rows without a line get NaN.

- ``market_line``: the line of the book whose prices are used (the consensus book of
  :func:`~nbaprops.ingest.lines.select_lines`).
- ``market_p_over``: that book's P(over) with its margin removed, ``p_over / (p_over + p_under)`` of the
  implied probabilities of the two prices.
- ``unlined_regulars_min``: availability as the market sees it. Books post lines for the players they
  expect to play, so a team's regular with no line tonight is probably out: the minutes per game (last 10) of
  the team's regulars (24+ minutes, 5+ games this season, last game for this team within 21 days) who have no
  line in the market that date, the player himself excluded. NULL when fewer than ``MIN_TEAM_LINES`` of the
  team's recent players have a line (a game the books barely cover says nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from nbaprops.storage.inputs import Inputs

MARKET_COLUMNS: tuple[str, ...] = ("market_line", "market_p_over", "unlined_regulars_min")
MIN_TEAM_LINES = 3


def devig_p_over(over_price: np.ndarray, under_price: np.ndarray) -> np.ndarray:
    """P(over) implied by American odds on both sides, the book's margin removed (NaN without both prices)."""

    def implied(american: np.ndarray) -> np.ndarray:
        a = np.asarray(american, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, 100.0 / (a + 100.0), np.abs(a) / (np.abs(a) + 100.0))

    p_over, p_under = implied(over_price), implied(under_price)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(p_over / (p_over + p_under), dtype=np.float64)


def with_market(
    feats: pa.Table,
    line: np.ndarray,
    over_price: np.ndarray,
    under_price: np.ndarray,
    unlined: np.ndarray | None = None,
) -> pa.Table:
    """``feats`` with :data:`MARKET_COLUMNS` set from per-row line and prices (replacing any already there)."""
    values = {
        "market_line": np.asarray(line, dtype=np.float64),
        "market_p_over": devig_p_over(over_price, under_price),
        "unlined_regulars_min": np.full(feats.num_rows, np.nan)
        if unlined is None
        else np.asarray(unlined, dtype=np.float64),
    }
    for name, arr in values.items():
        col = pa.array(arr, pa.float64(), mask=~np.isfinite(arr))
        idx = feats.schema.get_field_index(name)
        feats = feats.set_column(idx, name, col) if idx >= 0 else feats.append_column(name, col)
    return feats


def availability_column(market: str) -> str:
    """Name of the slate column holding ``unlined_regulars_min`` of one market (one column per market)."""
    return f"unlined_regulars_min:{market}"


def with_availability(storage: Inputs, feats: pa.Table, lines: Any, markets: Any) -> pa.Table:
    """``feats`` plus :func:`availability_column` of each market, from ``lines`` (a ``select_lines`` table)."""
    for market in markets:
        mine = lines.filter(pa.compute.equal(lines.column("market"), market)) if lines.num_rows else lines
        feats = feats.append_column(
            availability_column(market), pa.array(unlined_regulars_min(storage, feats, mine), pa.float64())
        )
    return feats


def with_stored_lines(feats: pa.Table, lines: Any | None, storage: Inputs | None = None) -> pa.Table:
    """``feats`` (rows with ``game_date`` and ``player_lookup``) with the market columns of the stored lines.

    Args:
        lines: a ``select_lines`` table of one market (``game_date, player_lookup, book_line, over_price,
            under_price``), or ``None`` when the market has no lines.
        storage: given, ``unlined_regulars_min`` is computed too (else NaN).
    """
    n = feats.num_rows
    line, over, under = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if lines is not None and lines.num_rows:
        keys = {
            (d, p): i
            for i, (d, p) in enumerate(
                zip(
                    lines.column("game_date").to_pylist(),
                    lines.column("player_lookup").to_pylist(),
                    strict=True,
                )
            )
        }
        book_line = lines.column("book_line").to_pylist()
        over_price = lines.column("over_price").to_pylist()
        under_price = lines.column("under_price").to_pylist()
        for i, key in enumerate(
            zip(feats.column("game_date").to_pylist(), feats.column("player_lookup").to_pylist(), strict=True)
        ):
            j = keys.get(key)
            if j is not None:
                line[i] = np.nan if book_line[j] is None else book_line[j]
                over[i] = np.nan if over_price[j] is None else over_price[j]
                under[i] = np.nan if under_price[j] is None else under_price[j]
    unlined = None if storage is None or lines is None else unlined_regulars_min(storage, feats, lines)
    return with_market(feats, line, over, under, unlined)


def unlined_regulars_min(storage: Inputs, rows: pa.Table, lined: pa.Table) -> np.ndarray:
    """``unlined_regulars_min`` of each row (see the module docstring), from box scores before each date.

    Aggregates are ordered, so the same inputs give bit-identical values run to run.

    Args:
        rows: ``game_date, team, player_id`` of the rows.
        lined: ``game_date, player_lookup`` of every player with a line in the market (any number of dates).
    """
    n = rows.num_rows
    if n == 0 or lined.num_rows == 0:
        return np.full(n, np.nan)
    tgt = rows.select(["game_date", "team", "player_id"]).append_column(
        "__rid", pa.array(range(n), pa.int64())
    )
    with storage.session() as session:
        t, ln = session.temp_name("rows"), session.temp_name("lined")
        session.register(t, tgt)
        session.register(ln, lined.select(["game_date", "player_lookup"]))
        found = session.execute(
            f"""WITH lines AS (SELECT DISTINCT game_date, player_lookup FROM {ln}),
                pairs AS (SELECT DISTINCT r.game_date, r.team FROM {t} r SEMI JOIN lines l USING (game_date)),
                recent AS (  -- who played for the team in the 21 days before the date
                    SELECT DISTINCT p.game_date AS d, p.team, b.player_id
                    FROM pairs p JOIN box_scores b ON b.team = p.team AND b.game_date < p.game_date
                                                  AND b.game_date >= p.game_date - INTERVAL 21 DAYS),
                games AS (
                    SELECT r.d, r.team AS pteam, r.player_id, b.player_lookup, b.team, b.game_date, b.minutes,
                           row_number() OVER (PARTITION BY r.d, r.team, r.player_id ORDER BY b.game_date DESC) AS k
                    FROM recent r JOIN box_scores b ON b.player_id = r.player_id AND b.game_date < r.d
                                                  AND b.game_date >= r.d - INTERVAL 240 DAYS),
                roster AS (  -- still on the team: his last game was for it
                    SELECT d, pteam AS team, player_id, arg_max(player_lookup, game_date) AS player_lookup,
                           avg(minutes ORDER BY game_date) FILTER (WHERE k <= 10) AS mins,
                           count(*) FILTER (WHERE game_date >= make_date(year(d) - CASE WHEN month(d) >= 8
                                            THEN 0 ELSE 1 END, 8, 1)) AS season_games,
                           arg_max(team, game_date) AS last_team
                    FROM games GROUP BY ALL HAVING last_team = pteam),
                marked AS (
                    SELECT r.*, l.player_lookup IS NOT NULL AS has_line
                    FROM roster r LEFT JOIN lines l ON l.game_date = r.d AND l.player_lookup = r.player_lookup),
                teams AS (SELECT d, team, count(*) FILTER (WHERE has_line) AS team_lines FROM marked GROUP BY ALL)
            SELECT x.__rid,
                   CASE WHEN any_value(tm.team_lines) >= {MIN_TEAM_LINES}
                        THEN coalesce(sum(m.mins ORDER BY m.player_id) FILTER (WHERE NOT m.has_line AND m.player_id <> x.player_id
                                                          AND m.mins >= 24 AND m.season_games >= 5), 0.0) END
            FROM {t} x JOIN teams tm ON tm.d = x.game_date AND tm.team = x.team
            LEFT JOIN marked m ON m.d = x.game_date AND m.team = x.team
            GROUP BY x.__rid"""
        ).fetchall()
    out = np.full(n, np.nan)
    for rid, value in found:
        if value is not None:
            out[int(rid)] = float(value)
    return out


__all__ = [
    "MARKET_COLUMNS",
    "MIN_TEAM_LINES",
    "devig_p_over",
    "unlined_regulars_min",
    "with_market",
    "with_stored_lines",
]
