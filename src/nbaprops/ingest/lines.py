"""Sportsbook player-prop lines: ingest and the consensus line per player, game and market.

Input files (CSV or Parquet) need ``game_date``, ``player_name``, ``market``, ``line``, ``bookmaker``,
``over_price`` and ``under_price`` (American odds, values may be empty); ``team``, ``opponent``,
``home_team``, ``away_team``, ``commence_time``, ``event_id`` and ``posted_at`` are optional. Odds-feed
spellings are accepted (``player``, ``event_date``/``date``, ``over_odds``/``under_odds``,
``sportsbook``/``book``, ``timestamp``/``last_update``; market values ``player_points``,
``player_points_rebounds_assists``…). A file without a market column takes the ``market`` argument, else
``pra`` when its name contains "pra", else it is refused — so the shared PRA files ingest as they are.

Rules, all applied in SQL over whole files:

* Every file is validated before anything is stored; all files go in one transaction. Any bad value refuses
  the call with :class:`~nbaprops.errors.InputError` naming file, line and column; the database is unchanged.
  The rules below work within one game date, so a large call is worked out a range of dates at a time
  (:data:`PIECE_ROWS`) before its transaction writes it: memory does not grow with the file.
* Exact duplicate rows are dropped and counted (``details["exact_duplicates"]``).
* The key is (game_date, player_lookup, market, bookmaker, line). Several rows with one key but different
  prices or ``posted_at``: the row with the latest ``posted_at`` wins (``details["superseded_rows"]``);
  when the latest ``posted_at`` is unknown or shared by different prices of one spelling the call is refused.
  (A book listing one player under two spellings at once — "Jabari Smith" and "Jabari Smith Jr" — is not a
  conflict: the more balanced row is kept and counted in ``details["name_collisions"]``.) The same
  rule applies against rows already stored (a newer row updates the stored one, an older one is ignored), so
  the same file twice adds nothing.
* ``player_lookup`` is :func:`~nbaprops.ingest.names.lookup_sql` of the name, mapped through
  ``player_aliases``. Rows matching no box-score player are stored and reported (``details["unmatched"]``).
* Teams are stored as box-score abbreviations. Without ``team``, the team is the player's most recent
  box-score team before the game date when that team is the home or away team; the opponent is the other.

**Implausible lines.** A line outside its market's plausible range (:data:`~nbaprops.markets.LINE_RANGE`,
e.g. PRA 0.5-100), or not a finite number (``1e308`` passes as a number; ``inf``, ``nan``), refuses the call
naming file, line and column. A line within the range is **quarantined** — stored with a
``quarantine_reason``, listed in ``details["quarantined"]``, never priced or bet (:func:`select_lines` and
:func:`line_players` skip it) — when it is more than :data:`~nbaprops.markets.BOOK_GAP` points (PRA: 12) from
the median of the other books' lines for the same player, game and market, or more than
:data:`~nbaprops.markets.FORM_GAP` points (PRA: 20) above the player's highest (below his lowest) value of the
market over his last 20 box-score games before the date (checked once he has 5). Quarantine is recomputed over
the stored and new rows of every (game, player, market) an ingest touches, so a later book can clear or
quarantine an earlier line.

**Main line** (``is_main``): for each (game_date, player_lookup, market, bookmaker) exactly one stored row
is main — the most balanced one, i.e. the smallest ``|p_over - p_under|`` of the implied probabilities of its
American odds (rows with a missing price last); ties go to the latest ``posted_at`` (unknown last), then the
lower line. It is recomputed over stored and new rows in the ingest transaction. :func:`select_lines` with
``as_of`` applies the same rule to the board at that time — each key's latest posting by then, read from the
posting history (:mod:`nbaprops.ingest.snapshots`) when the key was posted again later — so a later line never
changes an earlier choice, and a replay run after later ingests reads the lines the night read.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.errors import InputError, StorageBusyError
from nbaprops.ingest._loader import IngestSpec, Merged, SourceFile, load
from nbaprops.ingest._report import IngestReport
from nbaprops.ingest._validate import (
    Column,
    Field,
    check_values,
    column_label,
    column_sql,
    parse_sql,
    shown,
)
from nbaprops.ingest.names import lookup_sql
from nbaprops.ingest.snapshots import TABLE as SNAPSHOTS
from nbaprops.ingest.snapshots import record_snapshots
from nbaprops.ingest.teams import check_teams, resolve_team_sql
from nbaprops.markets import (
    BOOK_GAP,
    FORM_GAMES,
    FORM_GAP,
    FORM_MIN_GAMES,
    LINE_RANGE,
    MARKET_STAT,
    MARKETS,
    validate_market,
    validate_markets,
)
from nbaprops.storage.inputs import Inputs, InputSession

log = logging.getLogger(__name__)


_MARKET_SQL = (
    "(CASE regexp_replace(lower(trim({v})), '^player_', '') WHEN 'points_rebounds_assists' THEN 'pra' "
    "ELSE regexp_replace(lower(trim({v})), '^player_', '') END)"
)

FIELDS: tuple[Field, ...] = (
    Field("game_date", "date", aliases=("event_date", "date")),
    Field("player_name", aliases=("player",)),
    Field("market", required=False, choices=MARKETS),
    Field("line", "nonneg_number"),
    Field("bookmaker", aliases=("sportsbook", "book")),
    Field("over_price", "number", required=False, aliases=("over_odds",)),
    Field("under_price", "number", required=False, aliases=("under_odds",)),
    Field("team", required=False),
    Field("opponent", required=False),
    Field("home_team", required=False),
    Field("away_team", required=False),
    Field("commence_time", "timestamp", required=False),
    Field("event_id", required=False),
    Field("posted_at", "timestamp", required=False, aliases=("timestamp", "last_update")),
)
_TEAM_FIELDS = ("team", "opponent", "home_team", "away_team")
_KEY = ("game_date", "player_lookup", "market", "bookmaker", "line")
_GROUP = ("game_date", "player_lookup", "market", "bookmaker")
_VALUES = ("over_price", "under_price", "posted_at")
_ON = " AND ".join(f"s.{k} = n.{k}" for k in _KEY)
_DIFFERS = (
    f"({', '.join('n.' + v for v in _VALUES)}) IS DISTINCT FROM ({', '.join('s.' + v for v in _VALUES)})"
)
_DATA = (
    "game_date",
    "player_name",
    "player_lookup",
    "market",
    "bookmaker",
    "line",
    "over_price",
    "under_price",
    "team",
    "opponent",
    "home_team",
    "away_team",
    "event_id",
    "commence_time",
    "posted_at",
)
_STORED = (*_DATA, "source")


def implied_sql(price: str) -> str:
    """SQL: the implied probability of American odds ``price`` (NULL when NULL)."""
    return f"(CASE WHEN {price} < 0 THEN -{price} / (100.0 - {price}) ELSE 100.0 / ({price} + 100.0) END)"


MAIN_ORDER_SQL = (
    f"abs({implied_sql('over_price')} - {implied_sql('under_price')}) ASC NULLS LAST, "
    "posted_at DESC NULLS LAST, line ASC"
)
"""ORDER BY of the main-line rule within (game_date, player_lookup, market, bookmaker): first row is main."""

OVERROUND_SQL = f"({implied_sql('over_price')} + {implied_sql('under_price')} - 1)"


def normalise_market(value: str) -> str:
    """Python twin of the market normalisation (``player_points_rebounds_assists`` → ``pra``)."""
    text = value.strip().lower().removeprefix("player_")
    return "pra" if text == "points_rebounds_assists" else text


def _file_market(path: Path, cols: dict[str, Column | None], market: str | None) -> str | None:
    """The market literal for a file without a market column (None when the file has one)."""
    if cols["market"] is not None:
        return None
    if market is not None:
        try:
            return validate_market(normalise_market(market))
        except InputError as exc:
            raise InputError(str(exc), path=str(path), column="market") from None
    if "pra" in path.name.lower():
        return "pra"
    raise InputError(
        "missing column 'market'; add it, pass market=…, or name the file with the market (e.g. pra_odds.csv)",
        path=str(path),
        column="market",
    )


def _check(cur: InputSession, file: SourceFile, *, market: str | None = None) -> None:
    """Check a file's values; a file without a market column takes ``market`` (kept in ``file.facts``)."""
    cols, path, view = file.columns, file.path, file.view
    for name in ("over_price", "under_price"):
        if cols[name] is None:
            field = next(f for f in FIELDS if f.name == name)
            names = " or ".join(repr(n) for n in (field.name, *field.aliases))
            raise InputError(f"missing required column {names}", path=str(path), column=name)
    fixed_market = file.facts["market"] = _file_market(path, cols, market)
    checked = [dataclasses.replace(f, required=True) if f.name == "market" else f for f in FIELDS]
    check_values(cur, view, checked, cols, path=path, normalise={"market": _MARKET_SQL})
    _check_line_range(cur, view, cols, fixed_market, path)
    check_teams(cur, view, {k: cols[k] for k in _TEAM_FIELDS}, path=path, stored=True)
    for name in ("over_price", "under_price"):
        raw = column_sql(cols[name])
        bad = cur.execute(
            f"SELECT __line, {raw} FROM {view} WHERE abs({parse_sql('number', raw)}) < 100 ORDER BY __line LIMIT 1"
        ).fetchone()
        if bad:
            raise InputError(
                f"value {shown(bad[1])} is not American odds (<= -100 or >= +100)",
                path=str(path),
                row=int(bad[0]),
                column=column_label(cols[name]),
            )
    name_col = column_sql(cols["player_name"])
    bad = cur.execute(
        f"SELECT __line, {name_col} FROM {view} WHERE {lookup_sql(name_col)} = '' ORDER BY __line LIMIT 1"
    ).fetchone()
    if bad:
        raise InputError(
            f"value {shown(bad[1])} is not a player name",
            path=str(path),
            row=int(bad[0]),
            column=column_label(cols["player_name"]),
        )


def _check_line_range(
    cur: InputSession, view: str, cols: dict[str, Column | None], fixed_market: str | None, path: Path
) -> None:
    """Refuse the first line that is not finite or outside its market's plausible range (LINE_RANGE)."""
    # Qualified with v.: no column of the range table can capture a file's column.
    raw = column_sql(cols["line"], "v")
    line = parse_sql("number", raw)
    market = (
        "CAST($market AS VARCHAR)" if fixed_market else _MARKET_SQL.format(v=column_sql(cols["market"], "v"))
    )
    bad = cur.execute(
        f"""SELECT v.__line, {raw}, r.__market, r.__lo, r.__hi FROM {view} v
            JOIN (SELECT unnest($markets) AS __market, unnest($lo) AS __lo, unnest($hi) AS __hi) r
              ON r.__market = {market}
            WHERE {line} IS NOT NULL AND (NOT isfinite({line}) OR {line} < r.__lo OR {line} > r.__hi)
            ORDER BY v.__line LIMIT 1""",
        {
            "markets": list(LINE_RANGE),
            "lo": [lo for lo, _ in LINE_RANGE.values()],
            "hi": [hi for _, hi in LINE_RANGE.values()],
            **({"market": fixed_market} if fixed_market else {}),
        },
    ).fetchone()
    if bad:
        raise InputError(
            f"value {shown(bad[1])} is not a plausible {bad[2]} line (between {bad[3]:g} and {bad[4]:g})",
            path=str(path),
            row=int(bad[0]),
            column=column_label(cols["line"]),
        )


def _quarantine(tx: InputSession) -> None:
    """``__lines_quarantine``: the ``quarantine_reason`` of every row of ``__lines_all`` (the stored and new rows
    of the (game, player, market) groups in ``__lines_new``; NULL for a line in use; the module docstring has the
    rules).

    Windows over temporary tables, which DuckDB spills under the ingest's memory bound: the other books' median
    is a window excluding the row's own book (a join of each row to the group's other rows, then a median per
    row, did not fit 200 MB with 1M lines), and a player's form a rolling window over his box scores joined to
    each group as of the game before its date (a join of every group to every earlier game made 73M rows).
    """
    stat = " ".join(
        f"WHEN '{m}' THEN {'b.pts + b.reb + b.ast' if s == 'pra' else 'b.' + s}"
        for m, s in MARKET_STAT.items()
    )
    tx.execute(
        f"""CREATE OR REPLACE TEMP TABLE __lines_quarantine AS
            WITH gap AS (SELECT unnest($markets) AS market, unnest($book) AS book_gap, unnest($form) AS form_gap),
            grp AS (SELECT DISTINCT game_date, player_lookup, market FROM __lines_new),
            books AS (
                -- the median of the other books' lines: the group's rows but this book's (its peers by bookmaker)
                SELECT game_date, player_lookup, market, bookmaker, line,
                       median(line) OVER (PARTITION BY game_date, player_lookup, market ORDER BY bookmaker
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                                          EXCLUDE GROUP) AS others
                FROM __lines_all),
            played AS (
                SELECT b.player_lookup, b.game_date, m.market, CASE m.market {stat} END AS value
                FROM box_scores b JOIN (SELECT DISTINCT player_lookup, market FROM grp) m USING (player_lookup)
                WHERE b.minutes > 0),
            rolling AS (
                SELECT player_lookup, market, game_date, max(value) OVER w::DOUBLE AS hi,
                       min(value) OVER w::DOUBLE AS lo, count(*) OVER w AS games
                FROM played
                WINDOW w AS (PARTITION BY player_lookup, market ORDER BY game_date
                             ROWS BETWEEN {int(FORM_GAMES) - 1} PRECEDING AND CURRENT ROW)),
            form AS (
                SELECT k.game_date, k.player_lookup, k.market, r.hi, r.lo, r.games
                FROM grp k ASOF JOIN rolling r
                  ON r.player_lookup = k.player_lookup AND r.market = k.market AND k.game_date > r.game_date)
            SELECT b.game_date, b.player_lookup, b.market, b.bookmaker, b.line,
                   CASE
                     WHEN abs(b.line - b.others) > gap.book_gap THEN
                       format('{{:g}} from the median {{:g}} of the other books'' lines (more than {{:g}})',
                              abs(b.line - b.others), b.others, gap.book_gap)
                     WHEN f.games >= $min_games AND b.line > f.hi + gap.form_gap THEN
                       format('above the player''s highest {{}} of his last {{}} games ({{:g}}) by more than {{:g}}',
                              b.market, f.games, f.hi, gap.form_gap)
                     WHEN f.games >= $min_games AND b.line < f.lo - gap.form_gap THEN
                       format('below the player''s lowest {{}} of his last {{}} games ({{:g}}) by more than {{:g}}',
                              b.market, f.games, f.lo, gap.form_gap)
                   END AS reason
            FROM books b JOIN gap USING (market) LEFT JOIN form f USING (game_date, player_lookup, market)""",
        {
            "markets": list(BOOK_GAP),
            "book": [BOOK_GAP[m] for m in BOOK_GAP],
            "form": [FORM_GAP[m] for m in BOOK_GAP],
            "min_games": FORM_MIN_GAMES,
        },
    )


def _typed_sql(view: str, cols: dict[str, Column | None], fixed_market: str | None, index: int) -> str:
    """The typed rows of a checked file; binds ``$source`` (the file's path) and ``$market`` (the market of a
    file without a market column)."""

    def raw(name: str) -> str:
        # Qualified, so that no column inside resolve_team_sql's subquery can capture it.
        return column_sql(cols.get(name), "v")

    market = "CAST($market AS VARCHAR)" if fixed_market else _MARKET_SQL.format(v=raw("market"))
    teams = ",\n".join(f"{resolve_team_sql(raw(t), stored=True)} AS {t}" for t in _TEAM_FIELDS)
    return f"""
        SELECT {parse_sql("date", raw("game_date"))} AS game_date,
               trim({raw("player_name")}) AS player_name,
               coalesce(a.player_lookup, {lookup_sql(raw("player_name"))}) AS player_lookup,
               {market} AS market,
               trim({raw("bookmaker")}) AS bookmaker,
               {parse_sql("number", raw("line"))} AS line,
               {parse_sql("number", raw("over_price"))} AS over_price,
               {parse_sql("number", raw("under_price"))} AS under_price,
               {teams},
               nullif(trim({raw("event_id")}), '') AS event_id,
               {parse_sql("timestamp", raw("commence_time"))} AS commence_time,
               {parse_sql("timestamp", raw("posted_at"))} AS posted_at,
               CAST($source AS VARCHAR) AS source, {int(index)} AS __file, __line
        FROM {view} v
        LEFT JOIN player_aliases a ON a.alias_lookup = {lookup_sql(raw("player_name"))}
    """


TEAM_DAYS = 240
"""How far back a box score still says which team a player is on, for matching names (it must cover an
off-season: the 2022-23 regular season ended 200 days before 2023-24 began)."""


def _match_sportsbook_names(cur: InputSession, table: str) -> list[dict[str, Any]]:
    """Give the player to sportsbook spellings that matched none: "M. McBride", "G Antetokounmpo",
    "D. Jones Jr.", "Mil. Bridges" (an initial or a short first-name prefix), "Love Kevin" (surname first) and
    "Kyle Lowry (Phi)" (a team in brackets).

    Each is matched among the players of the game's two teams (a player's team is that of his latest box score
    in the :data:`TEAM_DAYS` before the date; any team when the row names none), and only when exactly one
    player fits: "J. Green" of Houston in 2023-24 (Jalen and Jeff) and "C. Martin" in Miami against Charlotte
    (Caleb and Cody) stay unmatched and are reported. Rewrites ``player_lookup`` in ``table``; returns what was
    matched.
    """
    name = "trim(w.player_name)"
    prefix = f"regexp_extract({name}, '^([A-Za-z]{{1,3}})\\.\\s*\\S|^([A-Za-z])\\s+\\S', ['dotted', 'bare'])"
    rest = f"regexp_replace({name}, '^([A-Za-z]{{1,3}}\\.|[A-Za-z]\\s)\\s*', '')"
    swapped = f"regexp_replace({name}, '^(\\S+)\\s+(\\S+)$', '\\2 \\1')"
    bracketed = f"regexp_replace({name}, '\\s*\\([A-Za-z]{{2,3}}\\)$', '')"
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __spellings AS
            WITH names AS (
                SELECT DISTINCT w.game_date, w.player_lookup, w.player_name, w.home_team, w.away_team,
                       lower(coalesce(nullif({prefix}.dotted, ''), nullif({prefix}.bare, ''))) AS initial,
                       {lookup_sql(rest)} AS surname,
                       CASE WHEN regexp_matches({name}, '^\\S+\\s+\\S+$') THEN {lookup_sql(swapped)} END
                           AS swapped,
                       CASE WHEN regexp_matches({name}, '\\([A-Za-z]{{2,3}}\\)$') THEN {lookup_sql(bracketed)} END
                           AS bracketed
                FROM {table} w
                WHERE w.player_lookup NOT IN (SELECT DISTINCT player_lookup FROM box_scores)),
            teams AS (
                SELECT n.game_date, b.player_lookup, arg_max(b.team, b.game_date) AS team
                FROM (SELECT DISTINCT game_date FROM names) n
                JOIN box_scores b ON b.game_date < n.game_date
                                 AND b.game_date >= n.game_date - INTERVAL {TEAM_DAYS} DAY
                GROUP BY ALL)
            SELECT n.game_date, n.player_lookup AS alias, n.player_name,
                   any_value(t.player_lookup) AS target, count(DISTINCT t.player_lookup) AS candidates
            FROM names n JOIN teams t
              ON t.game_date = n.game_date
             AND (n.home_team IS NULL OR t.team IN (n.home_team, n.away_team))
             AND ((n.initial IS NOT NULL AND starts_with(t.player_lookup, n.initial)
                   AND ends_with(t.player_lookup, n.surname) AND length(t.player_lookup) > length(n.surname))
                  OR t.player_lookup = n.swapped OR t.player_lookup = n.bracketed)
            GROUP BY ALL"""
    )
    matched = cur.execute(
        f"""SELECT i.player_name, i.target, count(*) FROM {table} w
            JOIN __spellings i ON i.game_date = w.game_date AND i.alias = w.player_lookup
                              AND i.player_name = w.player_name
            WHERE i.candidates = 1 GROUP BY ALL ORDER BY 1, 2"""
    ).fetchall()
    cur.execute(
        f"""UPDATE {table} w SET player_lookup = i.target FROM __spellings i
            WHERE i.candidates = 1 AND i.game_date = w.game_date AND i.alias = w.player_lookup
              AND i.player_name = w.player_name"""
    )
    cur.execute("DROP TABLE IF EXISTS __spellings")
    return [{"player_name": n, "player_lookup": target, "rows": int(rows)} for n, target, rows in matched]


def _scalar(cur: InputSession, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _stage(file: SourceFile) -> tuple[str, dict[str, Any]]:
    fixed_market = file.facts["market"]
    params = {"source": str(file.path), **({"market": fixed_market} if fixed_market else {})}
    return _typed_sql(file.view, file.columns, fixed_market, file.index), params


PIECE_ROWS = 1_000_000
"""Rows of one piece of an ingest: the call's rows are checked and merged a range of game dates at a time (a
date's rows never split), every step partitioning by date anyway. DuckDB spills what does not fit its bound,
but keeps about 12 MB of memory per GB spilled, which the bound does not count, and frees a table dropped in a
transaction only when it ends: ten million lines worked whole spilled 8.4 GB and took the server 323-343 MB above
idle; in pieces, their rows to write in Parquet files, 258 MB (docs/service.md)."""


def _pieces(
    cur: InputSession, files: Sequence[SourceFile]
) -> tuple[list[tuple[date, date, int]], list[date]]:
    """Ranges of game dates of at most :data:`PIECE_ROWS` typed rows each (more for a single date that holds
    more), in date order, with their rows; and every date of the call."""
    union = " UNION ALL ".join(f"SELECT game_date FROM {f.typed}" for f in files)
    days = cur.execute(f"SELECT game_date, count(*) FROM ({union}) GROUP BY 1 ORDER BY 1").fetchall()
    pieces: list[tuple[date, date, int]] = []
    for day, rows in days:
        if pieces and pieces[-1][2] + rows <= PIECE_ROWS:
            first, _, held = pieces[-1]
            pieces[-1] = (first, day, held + rows)
        else:
            pieces.append((day, day, int(rows)))
    return pieces, [day for day, _ in days]


@dataclasses.dataclass
class _Problems:
    """The first problem of each kind found in any piece, refused in the order the checks run (the first
    kind found anywhere, at its first line), as when the call's rows were checked whole."""

    clash: tuple[int, str] | None = None  # (line, source): one key, different prices in the files
    stored_clash: tuple[int, int, str] | None = None  # (file, line, source): against the stored rows
    twice: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)  # two spellings, one key

    def found(self) -> bool:
        return bool(self.clash or self.stored_clash or self.twice)

    def raise_first(self) -> None:
        if self.clash:
            raise InputError(
                "the same game, player, market, bookmaker and line appear with different prices and no later "
                "posted_at to choose between them",
                path=self.clash[1],
                row=self.clash[0],
                column="over_price",
            )
        if self.stored_clash:
            raise InputError(
                "this line is already stored with different prices and no later posted_at to choose between "
                "them",
                path=self.stored_clash[2],
                row=self.stored_clash[1],
                column="over_price",
            )
        if len(self.twice) > 1:
            # Two spellings of one player matched to the same box-score player (step 3 of the combine): one
            # key, two rows; the second such row of the call is named. The key is the table's (one row per key),
            # kept here rather than by an index: connection.CHECKED_KEYS.
            _, line, source = sorted(self.twice)[1]
            raise InputError(
                "this line is listed twice for the same player under two spellings",
                path=source,
                row=line,
                column="player_name",
            )


def _stored_fingerprint(cur: InputSession, days: list[date]) -> tuple[Any, ...]:
    """The stored lines and postings of ``days`` (rows and a sum of row hashes): the merge compares it with the
    one :func:`_combine` read, and refuses (retryably) to write what was worked out from rows that changed."""
    if not days:
        return ()
    row = cur.execute(
        f"""SELECT (SELECT (count(*), sum(hash(p))) FROM prop_lines p WHERE game_date IN (SELECT unnest($days))),
                   (SELECT (count(*), sum(hash(h))) FROM {SNAPSHOTS} h WHERE game_date IN (SELECT unnest($days)))""",
        {"days": days},
    ).fetchone()
    return tuple(row or ())


def _combine(cur: InputSession, files: Sequence[SourceFile]) -> dict[str, Any]:
    """Every row the merge writes, worked out one piece of dates at a time (:data:`PIECE_ROWS`) outside the
    merge's transaction, each piece's written to Parquet files in a private temporary folder (``folder``): the
    postings new to the history (``snapshots``), the new and changed rows of ``prop_lines`` (``writes``); and
    the call's report summed over the pieces. Files, not temporary tables: those would be spilled, and DuckDB
    keeps memory for what it spills (:data:`PIECE_ROWS`).

    A piece is combined (:func:`_combine_piece`: one row per key, checked against the stored rows) and worked
    out (:func:`_final_piece`), and its temporary tables are dropped before the next: outside a transaction
    DuckDB frees a dropped table at once, inside one it keeps it until the end. The pieces are ranges of dates
    and every rule works within a date, so no piece depends on another. Once a piece has a problem nothing more
    is worked out, but every later piece is still checked, so that the call is refused naming the problem it
    would name worked whole.
    """
    folder = Path(tempfile.mkdtemp(prefix="nbaprops-lines-"))
    try:
        return _combine_in(cur, files, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _release(combined: dict[str, Any]) -> None:
    shutil.rmtree(combined["folder"], ignore_errors=True)


_SUMMED = (
    "exact_duplicates",
    "superseded_rows",
    "name_collisions",
    "replaced",
    "alternate_lines",
    "snapshots_added",
)


def _combine_in(cur: InputSession, files: Sequence[SourceFile], folder: Path) -> dict[str, Any]:
    pieces, days = _pieces(cur, files)
    fingerprint = _stored_fingerprint(cur, days)
    snapshots: list[str] = []
    writes: list[str] = []
    sums: Counter[str] = Counter()  # the report's counts, summed over the pieces
    markets: Counter[str] = Counter()
    spellings: Counter[tuple[str, str]] = Counter()
    unmatched: Counter[str] = Counter()
    quarantined: list[dict[str, Any]] = []
    problems = _Problems()
    for first, last, rows in pieces:
        union = " UNION ALL ".join(
            f"SELECT * FROM {f.typed} WHERE game_date BETWEEN $first AND $last" for f in files
        )
        piece = _combine_piece(cur, union, {"first": first, "last": last}, rows, problems)
        if not problems.found():
            snapshots.append(str(folder / f"snapshots_{len(snapshots)}.parquet"))
            writes.append(str(folder / f"writes_{len(writes)}.parquet"))
            piece.update(_final_piece(cur, snapshots[-1], writes[-1]))
            sums.update({name: piece[name] for name in _SUMMED})
            markets.update(piece["markets"])
            spellings.update(
                {(m["player_name"], m["player_lookup"]): m["rows"] for m in piece["matched_spellings"]}
            )
            unmatched.update(dict(piece["unmatched"]))
            quarantined += piece["quarantined"]  # pieces in date order: the list keeps its order
        for table in (
            "__lines_dedup",
            "__lines_new",
            "__lines_all",
            "__lines_quarantine",
            "__lines_final",
            "__lines_snap_piece",
        ):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    problems.raise_first()
    for file in files:  # every row to write is in the folder now
        cur.execute(f"DROP TABLE IF EXISTS {file.typed}")
    listed = [
        {"player_name": name, "rows": count}
        for name, count in sorted(unmatched.items(), key=lambda u: (-u[1], u[0]))
    ]
    return {
        "folder": folder,
        "snapshots": snapshots,
        "writes": writes,
        "days": days,
        "fingerprint": fingerprint,
        "details": {
            "exact_duplicates": sums["exact_duplicates"],
            "superseded_rows": sums["superseded_rows"],
            "name_collisions": sums["name_collisions"],
            "replaced": sums["replaced"],
            "markets": dict(sorted(markets.items())),
            "alternate_lines": sums["alternate_lines"],
            "unmatched": listed,
            "unmatched_rows": sum(u["rows"] for u in listed),
            "matched_spellings": [
                {"player_name": name, "player_lookup": target, "rows": count}
                for (name, target), count in sorted(spellings.items())
            ],
            "quarantined": quarantined,
            "snapshots_added": sums["snapshots_added"],
        },
    }


def _combine_piece(
    cur: InputSession, union: str, params: dict[str, Any], rows_read: int, problems: _Problems
) -> dict[str, Any]:
    """``__lines_dedup`` and ``__lines_new`` of one piece's rows (``union``, binding ``params``); its problems
    are added to ``problems``."""
    data = ", ".join(_DATA)
    # 1. exact duplicates (every parsed column equal) go; the first occurrence stays.
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __lines_dedup AS SELECT * EXCLUDE (__n) FROM (
                SELECT *, row_number() OVER (PARTITION BY {data} ORDER BY __file, __line) AS __n FROM ({union}))
            WHERE __n = 1""",
        params,
    )
    exact_duplicates = rows_read - _scalar(cur, "SELECT count(*) FROM __lines_dedup")
    # 2. one key, different prices: the unique latest posted_at wins, else refuse.
    key = ", ".join(_KEY)
    values = ", ".join(_VALUES)
    clash = cur.execute(
        f"""WITH g AS (
                SELECT {key}, count(DISTINCT ({values})) AS nv, count(posted_at) AS nknown, count(*) AS n,
                       max(posted_at) AS top FROM __lines_dedup GROUP BY {key})
            SELECT any_value(d.source ORDER BY d.__file DESC, d.__line DESC), max(d.__line ORDER BY d.__file)
            FROM __lines_dedup d JOIN g USING ({key})
            WHERE g.nv > 1 GROUP BY {key}
            HAVING any_value(g.nknown) < any_value(g.n)
                OR count(DISTINCT (d.player_name, d.over_price, d.under_price)) FILTER (WHERE d.posted_at = g.top)
                   > count(DISTINCT d.player_name) FILTER (WHERE d.posted_at = g.top)
            ORDER BY 2 LIMIT 1"""
    ).fetchone()
    if clash and (problems.clash is None or int(clash[1]) < problems.clash[0]):
        problems.clash = (int(clash[1]), clash[0])
    name_collisions = _scalar(
        cur,
        f"""SELECT count(*) FROM (SELECT {key} FROM __lines_dedup d
                    WHERE posted_at = (SELECT max(posted_at) FROM __lines_dedup x WHERE {" AND ".join(f"x.{k} = d.{k}" for k in _KEY)})
                    GROUP BY {key} HAVING count(DISTINCT (over_price, under_price)) > 1)""",
    )
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __lines_win AS SELECT * EXCLUDE (__n) FROM (
                SELECT *, row_number() OVER (PARTITION BY {key}
                                             ORDER BY posted_at DESC NULLS LAST, {MAIN_ORDER_SQL}, __file, __line)
                       AS __n FROM __lines_dedup) WHERE __n = 1"""
    )
    superseded = rows_read - exact_duplicates - _scalar(cur, "SELECT count(*) FROM __lines_win")
    spellings = _match_sportsbook_names(cur, "__lines_win")
    # 3. teams from box scores where the file gives none.
    cur.execute(
        """CREATE OR REPLACE TEMP TABLE __lines_new AS
           SELECT w.* REPLACE (
                      coalesce(w.team, CASE WHEN b.team IN (w.home_team, w.away_team) THEN b.team END) AS team,
                      coalesce(w.opponent, CASE coalesce(w.team, b.team) WHEN w.home_team THEN w.away_team
                                                WHEN w.away_team THEN w.home_team END) AS opponent)
           FROM __lines_win w
           ASOF LEFT JOIN (SELECT player_lookup, game_date, team FROM box_scores) b
             ON b.player_lookup = w.player_lookup AND w.game_date > b.game_date"""
    )
    cur.execute("DROP TABLE __lines_win")
    # 4. against stored rows: identical → nothing; newer → update; older → ignored; else refuse.
    stored = cur.execute(
        f"""SELECT n.__file, n.__line, n.source FROM __lines_new n JOIN prop_lines s ON {_ON}
            WHERE {_DIFFERS} AND (n.posted_at IS NULL OR s.posted_at IS NULL OR n.posted_at = s.posted_at)
            ORDER BY n.__file, n.__line LIMIT 1"""
    ).fetchone()
    if stored and (problems.stored_clash is None or (stored[0], stored[1]) < problems.stored_clash[:2]):
        problems.stored_clash = (int(stored[0]), int(stored[1]), stored[2])
    problems.twice += [
        (int(f), int(line), source)
        for f, line, source in cur.execute(
            f"""SELECT n.__file, n.__line, n.source FROM __lines_new n
                SEMI JOIN (SELECT {key} FROM __lines_new GROUP BY ALL HAVING count(*) > 1) d USING ({key})
                ORDER BY n.__file, n.__line LIMIT 2"""
        ).fetchall()
    ]
    return {
        "exact_duplicates": exact_duplicates,
        "superseded_rows": superseded,
        "name_collisions": name_collisions,
        "matched_spellings": spellings,
    }


def _merge(tx: InputSession, files: Sequence[SourceFile], combined: dict[str, Any]) -> Merged:
    """The rows :func:`_combine` worked out, written: the new postings appended to the history, the new keys to
    ``prop_lines``, and the stored rows that change (a newer posting, quarantine, the main line) updated. Rows a
    transaction adds to a stored table stay in memory until it commits, so it never updates them.

    Raises:
        StorageBusyError: the stored lines of the call's dates changed since they were read (another ingest
            wrote meanwhile); nothing is written, and the call can be made again.
    """
    if not combined["days"]:  # files of a header only
        return Merged(combined["details"])
    if _stored_fingerprint(tx, combined["days"]) != combined["fingerprint"]:
        raise StorageBusyError("lines of the same dates were stored meanwhile; send the files again")
    tx.execute(
        f"INSERT INTO {SNAPSHOTS} SELECT * FROM read_parquet($files)", {"files": combined["snapshots"]}
    )
    stored_cols = ", ".join(_STORED)
    tx.execute(
        f"""INSERT INTO prop_lines ({stored_cols}, is_main, quarantine_reason)
            SELECT {stored_cols}, is_main, quarantine_reason FROM read_parquet($files) WHERE __origin = 0""",
        {"files": combined["writes"]},
    )
    non_key = [c for c in (*_STORED, "is_main", "quarantine_reason") if c not in _KEY]
    tx.execute(
        f"""UPDATE prop_lines s SET {", ".join(f"{c} = f.{c}" for c in non_key)}
            FROM (SELECT * FROM read_parquet($files) WHERE __origin > 0) f
            WHERE {" AND ".join(f"s.{k} = f.{k}" for k in _KEY)}""",
        {"files": combined["writes"]},
    )
    return Merged(combined["details"])


def _final_piece(cur: InputSession, snapshots: str, writes: str) -> dict[str, Any]:
    """What one piece (``__lines_new``, its parsed rows ``__lines_dedup``) writes: its postings new to the
    history, to the Parquet file ``snapshots``; its new keys, the stored rows a newer posting replaces, and the
    stored rows of the groups it touches whose quarantine or main line changes, to the Parquet file ``writes``.

    Every row of the groups touched is worked out in temporary tables (which DuckDB spills under the ingest's
    memory bound): ``__lines_all`` (the stored rows of the groups with the new rows over them; its ``__origin``
    says 0: a new key, 1: a stored row a newer posting replaces, 2: a stored row that stays), then
    ``__lines_final`` (with quarantine and the main line).
    """
    cur.execute(f"CREATE OR REPLACE TEMP TABLE __lines_snap_piece AS SELECT * FROM {SNAPSHOTS} LIMIT 0")
    added = record_snapshots(cur, into="__lines_snap_piece")
    cur.execute("COPY __lines_snap_piece TO $file (FORMAT parquet)", {"file": snapshots})
    key = ", ".join(_KEY)
    group = ", ".join(_GROUP)
    replace = f"{_DIFFERS} AND n.posted_at > s.posted_at"
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __lines_all AS
            WITH stored AS (
                SELECT s.* FROM prop_lines s
                SEMI JOIN (SELECT DISTINCT game_date, player_lookup, market FROM __lines_new) g
                     USING (game_date, player_lookup, market))
            SELECT {", ".join(f"CASE WHEN {replace} THEN n.{c} ELSE s.{c} END AS {c}" for c in _STORED)},
                   CASE WHEN {replace} THEN 1 ELSE 2 END AS __origin,
                   s.is_main AS __was_main, s.quarantine_reason AS __was_reason
            FROM stored s LEFT JOIN __lines_new n ON {_ON}
            UNION ALL
            SELECT {", ".join("n." + c for c in _STORED)}, 0, NULL, NULL
            FROM __lines_new n ANTI JOIN stored s ON {_ON}"""
    )
    _quarantine(cur)
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE __lines_final AS
            SELECT a.*, q.reason AS quarantine_reason,
                   row_number() OVER (PARTITION BY {group}
                                      ORDER BY q.reason IS NOT NULL, {MAIN_ORDER_SQL}) = 1 AS is_main
            FROM __lines_all a JOIN __lines_quarantine q USING ({key})"""
    )
    cur.execute(
        """COPY (SELECT * FROM __lines_final
                 WHERE __origin < 2 OR is_main IS DISTINCT FROM __was_main
                       OR quarantine_reason IS DISTINCT FROM __was_reason) TO $file (FORMAT parquet)""",
        {"file": writes},
    )
    replaced = _scalar(cur, "SELECT count(*) FROM __lines_final WHERE __origin = 1")
    alternate = _scalar(
        cur, f"SELECT count(*) FROM __lines_new n JOIN __lines_final s ON {_ON} WHERE NOT s.is_main"
    )
    markets = dict(
        cur.execute("SELECT market, count(*) FROM __lines_new GROUP BY market ORDER BY market").fetchall()
    )
    unmatched = [
        (name, int(rows))
        for name, rows in cur.execute(
            """SELECT player_name, count(*) AS rows FROM __lines_new
               WHERE player_lookup NOT IN (SELECT DISTINCT player_lookup FROM box_scores)
               GROUP BY player_name ORDER BY rows DESC, player_name"""
        ).fetchall()
    ]
    quarantined = [
        {
            "game_date": day.isoformat(),
            "player_name": name,
            "market": mkt,
            "bookmaker": book,
            "line": line,
            "reason": reason,
        }
        for day, name, mkt, book, line, reason in cur.execute(
            f"""SELECT s.game_date, n.player_name, s.market, s.bookmaker, s.line, s.quarantine_reason
                FROM __lines_new n JOIN __lines_final s ON {_ON}
                WHERE s.quarantine_reason IS NOT NULL
                ORDER BY s.game_date, n.player_name, s.market, s.bookmaker, s.line"""
        ).fetchall()
    ]
    return {
        "replaced": replaced,
        "markets": markets,
        "alternate_lines": alternate,
        "unmatched": unmatched,
        "quarantined": quarantined,
        "snapshots_added": added,
    }


LINES = IngestSpec(
    kind="lines",
    table="prop_lines",
    noun="line",
    key=_KEY,
    fields=FIELDS,
    check=_check,
    stage=_stage,
    combine=_combine,
    merge=_merge,
    scratch=(
        "__lines_dedup",
        "__lines_win",
        "__lines_new",
        "__lines_all",
        "__lines_quarantine",
        "__lines_final",
        "__lines_snap_piece",
    ),
    release=_release,
)
"""Prop lines as an ingest kind (:mod:`nbaprops.ingest._loader`); files without a market column take none."""


def ingest_lines(storage: Inputs, paths: Sequence[Path | str], *, market: str | None = None) -> IngestReport:
    """Validate and store prop-line files; atomic across all files (see the module docstring for the rules).

    Args:
        market: the market of files without a market column.

    Raises:
        InputError: naming the file, line and column of the first problem.
    """
    return load(storage, dataclasses.replace(LINES, check=functools.partial(_check, market=market)), paths)


def _dates(value: date | datetime | str | Iterable[date | datetime | str]) -> list[str]:
    items = [value] if isinstance(value, date | datetime | str) else list(value)
    out = []
    for item in items:
        day = item.date() if isinstance(item, datetime) else item
        try:
            out.append(
                day.isoformat() if isinstance(day, date) else date.fromisoformat(str(day)[:10]).isoformat()
            )
        except ValueError as exc:
            raise InputError(f"{item!r} is not a date (YYYY-MM-DD)") from exc
    return out


def select_lines(
    storage: Inputs,
    game_date_or_dates: date | datetime | str | Iterable[date | datetime | str],
    markets: str | Iterable[str],
    *,
    as_of: datetime | None = None,
) -> Any:
    """One consensus line per (game_date, player_lookup, market), as a ``pyarrow.Table``.

    Each book contributes its main line (the module docstring's rule, applied to each key's latest posting by
    ``as_of`` when it is given, from the history when the key was posted again later; rows with unknown
    ``posted_at`` always count; quarantined keys and postings at or after tip-off never do). ``line`` is the median of the books' main
    lines; ``bookmaker``, ``over_price`` and ``under_price`` are those of the book whose main line is closest
    to the median (ties: smallest overround, then bookmaker name), and ``book_line`` is that book's own line.

    Columns: game_date, player_lookup, market, line, bookmaker, over_price, under_price, n_books, book_line.
    """
    return select_lines_by_date(
        storage, {date.fromisoformat(day): as_of for day in _dates(game_date_or_dates)}, markets
    )


def select_lines_by_date(
    storage: Inputs, as_of: Mapping[date, datetime | None], markets: str | Iterable[str]
) -> Any:
    """:func:`select_lines` of several dates in one query, each date with its own prediction time (``as_of``
    maps a date to it; None: every row counts). Each date's lines are the ones it gets alone: every choice is
    made within one date. Each key's row is the posting that was on the board at the date's prediction time
    (:func:`_posted_by_sql`)."""
    wanted = list(
        validate_markets(normalise_market(m) for m in ([markets] if isinstance(markets, str) else markets))
    )
    days = sorted(as_of)
    group = ", ".join(_GROUP)
    per = "game_date, player_lookup, market"
    return storage.arrow(
        f"""WITH {_posted_by_sql(storage, _POSTING)},
            eligible AS (
                SELECT * FROM __posted
                WHERE posted_at IS NULL OR commence_time IS NULL OR posted_at < commence_time),
            main AS (
                SELECT * EXCLUDE (__rn) FROM (
                    SELECT *, row_number() OVER (PARTITION BY {group} ORDER BY {MAIN_ORDER_SQL}) AS __rn
                    FROM eligible) WHERE __rn = 1),
            med AS (SELECT {per}, median(line) AS consensus, count(*) AS n_books FROM main GROUP BY {per})
            SELECT game_date, player_lookup, market, consensus AS line, bookmaker, over_price, under_price,
                   n_books, line AS book_line
            FROM (SELECT m.*, med.consensus, med.n_books,
                         row_number() OVER (PARTITION BY {per}
                                            ORDER BY abs(m.line - med.consensus), {OVERROUND_SQL} NULLS LAST,
                                                     m.bookmaker) AS __rk
                  FROM main m JOIN med USING ({per}))
            WHERE __rk = 1
            ORDER BY {per}""",
        {"dates": days, "as_of": [as_of[day] for day in days], "markets": wanted},
    )


_POSTING = ("over_price", "under_price", "commence_time")
"""The columns of ``prop_lines`` a posting of the history (``prop_line_snapshots``) gives as well."""


@dataclasses.dataclass(frozen=True)
class _Scope:
    """Which rows :func:`_posted_by_sql` reads and each one's prediction time (SQL fragments, parameters only)."""

    cut: str
    """The query of ``__cut``: the prediction times."""
    as_of: str
    """A stored row's prediction time, of ``p`` (``prop_lines``) and ``c`` (``__cut``); NULL: every posting."""
    stored: str
    """``FROM`` … ``WHERE`` of the stored rows read: ``prop_lines p`` joined to ``__cut c``."""
    history: str
    """``FROM`` … ``WHERE`` of the history rows that can be among them: ``prop_line_snapshots s``."""


_BY_DATE = _Scope(
    cut="""SELECT unnest(CAST($dates AS DATE[])) AS game_date,
                            unnest(CAST($as_of AS TIMESTAMPTZ[])) AS as_of""",
    as_of="c.as_of",
    stored="""prop_lines p JOIN __cut c ON c.game_date = p.game_date
                WHERE list_contains($markets, p.market) AND p.quarantine_reason IS NULL""",
    history=f"""{SNAPSHOTS} s SEMI JOIN __cut c USING (game_date)
                      WHERE list_contains($markets, s.market)""",
)
"""Dates ``$dates`` with one prediction time each (``$as_of``, parallel), markets ``$markets``."""

_WITH_HISTORY: weakref.WeakKeyDictionary[Inputs, bool] = weakref.WeakKeyDictionary()
"""The stores known to hold ``prop_line_snapshots``: a table is never dropped, and asking the catalog costs 2 ms
of CPU (a store without it is asked again each time)."""


def _has_history(storage: Inputs) -> bool:
    try:
        if _WITH_HISTORY.get(storage):
            return True
    except TypeError:  # not weakly referenceable: ask each time
        return bool(storage.table_columns(SNAPSHOTS))
    found = bool(storage.table_columns(SNAPSHOTS))
    if found:
        _WITH_HISTORY[storage] = True
    return found


def _posted_by_sql(storage: Inputs, columns: Sequence[str], scope: _Scope = _BY_DATE) -> str:
    """SQL of the CTEs ending in ``__posted``: the board at each prediction time — for every unquarantined key of
    ``prop_lines`` in ``scope`` (by default on the dates ``$dates`` in ``$markets``), its latest posting with
    ``posted_at <= as_of`` (by default ``$as_of``, parallel to ``$dates``; NULL: the latest of all), with the
    key, ``posted_at`` and ``columns``.

    ``prop_lines`` holds each key's latest posting (an older one never replaces it): that row when it was posted
    by then (or its time is unknown, which always counts). A key posted again after the prediction time takes
    its latest earlier posting from ``prop_line_snapshots`` (its prices and tip-off; the rest of ``columns`` are
    the stored row's), and is off the board when there was none. So with no posting after the prediction time
    the rows are ``prop_lines``' own. A database from before the history, opened read-only, reads
    ``prop_lines`` alone; of a line stored before the history, only the posting stored then is known (an ingest
    that replaces it appends it to the history first).

    Quarantine is the key's as stored (``prop_lines.quarantine_reason``), as for the close. :func:`date_offers`
    applies the same rule in Arrow (a change here is one there: its tests compare it with this statement)."""
    key = ("game_date", "player_lookup", "market", "bookmaker", "line")
    stored = ", ".join(f"p.{c}" for c in (*key, "posted_at", *columns))
    history = ""
    if _has_history(storage):
        taken = ", ".join(f"coalesce(s.{c}, p.{c}) AS {c}" if c in _POSTING else f"p.{c}" for c in columns)
        # A hash join on the key, latest posting by a window: DuckDB ran the same as an ASOF JOIN as a nested loop
        # (1.1 s for a season's lines as of 20:00 UTC, against 0.05 s for prop_lines alone).
        history = f"""
                UNION ALL
                -- posted again after the prediction time: the latest posting of the history by then
                SELECT {", ".join(f"p.{k}" for k in key)}, s.posted_at, {taken}
                FROM (SELECT * FROM __stored WHERE posted_at > as_of) p
                JOIN (SELECT s.* FROM {scope.history}) s
                  ON {" AND ".join(f"s.{k} = p.{k}" for k in key)} AND s.posted_at <= p.as_of
                QUALIFY row_number() OVER (PARTITION BY {", ".join(f"p.{k}" for k in key)}
                                           ORDER BY s.posted_at DESC, s.over_price, s.under_price) = 1"""
    return f"""__cut AS ({scope.cut}),
            __stored AS (
                SELECT {stored}, {scope.as_of} AS as_of FROM {scope.stored}),
            __posted AS (
                SELECT * EXCLUDE (as_of) FROM __stored p
                WHERE as_of IS NULL OR posted_at IS NULL OR posted_at <= as_of{history})"""


_OFFER_COLUMNS = (
    "game_date",
    "player_lookup",
    "player_name",
    "market",
    "bookmaker",
    "line",
    "over_price",
    "under_price",
    "posted_at",
)
"""The columns of :func:`date_offers`, before ``is_main``."""

_TIMESTAMP = pa.timestamp("us", tz="UTC")


_DAY_ROWS_SQL = f"""SELECT {", ".join(_OFFER_COLUMNS)}, commence_time
                    FROM prop_lines
                    WHERE game_date = $day AND quarantine_reason IS NULL
                      AND ($markets IS NULL OR list_contains($markets, market))"""
"""The unquarantined rows of ``prop_lines`` on ``$day`` in ``$markets`` (NULL: all), with :data:`_OFFER_COLUMNS`
and ``commence_time``. The players are filtered in Arrow: a list of a board's 159 players cost DuckDB 1 ms of CPU
more to plan than the whole read of the date's 1,590 rows without it (5 seasons)."""


def _implied(price: Any) -> Any:
    """Arrow twin of :func:`implied_sql`: the same IEEE operations, so the same bits (null when null)."""
    return pc.if_else(
        pc.less(price, 0),
        pc.divide(pc.negate(price), pc.subtract(100.0, price)),
        pc.divide(100.0, pc.add(price, 100.0)),
    )


def _row_times(rows: Any, as_of: datetime | Mapping[tuple[str, str], datetime | None] | None) -> Any:
    """Each row's prediction time (``rows``: player_lookup and market), as an Arrow array or scalar of UTC
    timestamps; None without ``as_of``. An unlisted player-market, or one listed with None, has none (null)."""
    if as_of is None:
        return None
    if not isinstance(as_of, Mapping):
        return pa.scalar(as_of, _TIMESTAMP)
    # Each distinct time converted once (a board has a few): the rows' times are indices into them.
    times: dict[datetime, int] = {}
    index = []
    for key in zip(rows["player_lookup"].to_pylist(), rows["market"].to_pylist(), strict=True):
        when = as_of.get(key)
        index.append(None if when is None else times.setdefault(when, len(times)))
    return pa.array(list(times), _TIMESTAMP).take(pa.array(index, pa.int32()))


def _posted_earlier(storage: Inputs, game_date: date, late: Any) -> Any:
    """For each row of ``late`` (stored rows posted after their prediction time ``as_of``), its latest posting
    of the history by then (:func:`_posted_by_sql`'s rule: prices and tip-off of the history, when given; the
    rest the stored row's), with the columns of :data:`_DAY_ROWS_SQL`; a row with none is left out."""
    key = ("game_date", "player_lookup", "market", "bookmaker", "line")
    taken = ", ".join(
        f"coalesce(s.{c}, p.{c}) AS {c}" if c in _POSTING else f"s.{c}" if c == "posted_at" else f"p.{c}"
        for c in (*_OFFER_COLUMNS, "commence_time")
    )
    with storage.session() as session:
        name = session.temp_name("offers_late")
        session.register(name, late)
        return session.arrow(
            f"""SELECT {taken}
                FROM {name} p
                JOIN {SNAPSHOTS} s ON {" AND ".join(f"s.{k} = p.{k}" for k in key)} AND s.posted_at <= p.as_of
                WHERE s.game_date = $day
                QUALIFY row_number() OVER (PARTITION BY {", ".join(f"p.{k}" for k in key)}
                                           ORDER BY s.posted_at DESC, s.over_price, s.under_price) = 1""",
            {"day": game_date},
        )


def _group_starts(table: Any, columns: Sequence[str]) -> Any:
    """True where a row of ``table`` differs from the row before in ``columns`` (the first row: True)."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.bool_())
    differs = pa.array([False] * (n - 1), pa.bool_())
    for column in columns:
        values = table[column]
        differs = pc.or_(differs, pc.not_equal(values.slice(1), values.slice(0, n - 1)))
    return pa.concat_arrays([pa.array([True]), pa.chunked_array(differs).combine_chunks()])


def date_offers(
    storage: Inputs,
    game_date: date,
    *,
    as_of: datetime | Mapping[tuple[str, str], datetime | None] | None = None,
    players: Sequence[str] | None = None,
    markets: Sequence[str] | None = None,
) -> Any:
    """Every book's offer of ``game_date`` (each line and alternate line), as a ``pyarrow.Table``: the rows
    :func:`select_lines` chooses from, before anything collapses them.

    Quarantined rows and rows posted at or after tip-off never count. With ``as_of``, each key's offer is the
    posting that was on the board then (:func:`_posted_by_sql`'s rule: rows with unknown ``posted_at`` always
    count; a key posted again later takes its latest earlier posting from the history, and is left out when
    there was none): one prediction time for every row, or one per (player_lookup, market), where an unlisted
    player-market keeps every row. ``is_main`` is the main-line rule (module docstring) applied to the rows kept,
    so a book's main line is the one :func:`select_lines` would use.

    The rule is applied here in Arrow to the date's stored rows, and the history is read only for the rows posted
    after their prediction time: the one statement of :func:`_posted_by_sql` with a list of ~800 prediction times
    cost 14-21 ms of CPU on a 5-season board, most of it DuckDB planning it (benchmarks/README.md).
    ``tests/ingest/test_offers_history.py`` holds the two equal.

    Args:
        players, markets: only these player lookups / markets (None: all).

    Columns: game_date, player_lookup, player_name, market, bookmaker, line, over_price, under_price,
    posted_at, is_main.
    """
    rows = storage.arrow(
        _DAY_ROWS_SQL, {"day": game_date, "markets": None if markets is None else list(markets)}
    )
    if players is not None:
        rows = rows.filter(pc.is_in(rows["player_lookup"], value_set=pa.array(list(players), pa.string())))
    cut = _row_times(rows, as_of)
    if cut is not None:
        late = pc.fill_null(pc.greater(rows["posted_at"], cut), False)
        if pc.any(late).as_py():
            # Off the board at its time: its earlier posting from the history, when there is one.
            earlier = None
            if _has_history(storage):
                at = cut if isinstance(cut, pa.Array) else pa.repeat(cut, rows.num_rows)
                earlier = _posted_earlier(storage, game_date, rows.append_column("as_of", at).filter(late))
            rows = rows.filter(pc.invert(late))
            if earlier is not None and earlier.num_rows:
                rows = pa.concat_tables([rows, earlier.cast(rows.schema)])
    posted, tip = rows["posted_at"], rows["commence_time"]
    rows = rows.filter(pc.or_kleene(pc.or_kleene(pc.is_null(posted), pc.is_null(tip)), pc.less(posted, tip)))
    gap = pc.abs(pc.subtract(_implied(rows["over_price"]), _implied(rows["under_price"])))
    rows = rows.append_column("__gap", gap)  # MAIN_ORDER_SQL's first key
    # The main line of each (player_lookup, market, bookmaker): its first row by the rule (a book has one row
    # per line, so the order within a book is total).
    group = [("player_lookup", "ascending"), ("market", "ascending"), ("bookmaker", "ascending")]
    by_rule = rows.take(
        pc.sort_indices(
            rows,
            # Nulls sort last, NaN before them: DuckDB's order of the SQL rule (NULLS LAST).
            sort_keys=[*group, ("__gap", "ascending"), ("posted_at", "descending"), ("line", "ascending")],
        )
    )
    offers = by_rule.select(list(_OFFER_COLUMNS)).append_column(
        "is_main", _group_starts(by_rule, [k for k, _ in group])
    )
    return offers.take(pc.sort_indices(offers, sort_keys=[*group, ("line", "ascending")]))


def line_players(storage: Inputs, game_date: date, markets: Sequence[str], as_of: datetime) -> Any:
    """Players with a line in ``markets`` on ``game_date`` posted by ``as_of`` (their latest row's teams);
    quarantined lines do not count."""
    return line_players_by_date(storage, {game_date: as_of}, markets).drop_columns(["game_date"])


def line_players_by_date(storage: Inputs, as_of: Mapping[date, datetime], markets: Sequence[str]) -> Any:
    """:func:`line_players` of several dates in one query, each date with its own prediction time (``as_of``
    maps a date to it), after a ``game_date`` column. A line counts when a posting of it was on the board at
    the prediction time (:func:`_posted_by_sql`); the names and teams are its stored row's.

    Of a player's rows posted last, the first by name and teams: of two spellings posted at once (Kenyon Martin
    Jr. and K.J. Martin, 2025-03-09) the query plan picked either, and a one-date and a several-date query
    picked differently."""
    days = sorted(as_of)
    teams = ("player_name", "team", "opponent", "home_team", "away_team")
    return storage.arrow(
        f"""WITH {_posted_by_sql(storage, teams)}
           SELECT DISTINCT ON (game_date, player_lookup) game_date, player_lookup, {", ".join(teams)}
           FROM __posted
           ORDER BY game_date, player_lookup, posted_at DESC, player_name, team, opponent, home_team, away_team""",
        {"dates": days, "as_of": [as_of[d] for d in days], "markets": list(markets)},
    )
