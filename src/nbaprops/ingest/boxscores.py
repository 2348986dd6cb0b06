"""Box scores in NBA.com LeagueGameLog (player) format: the shipped seasons and user-supplied files.

Ten regular seasons (2015-16 to 2024-25) ship inside the package as Parquet (MIT, see
``data/boxscores/LICENSE.txt``) and load into the database on first use, so the first run works offline.
More games (the current season, say) come in with ``nbaprops ingest boxscores FILE...``: every file is
validated first, then all are inserted in one transaction; the same file twice adds nothing; a row whose
(PLAYER_ID, GAME_ID) is already stored with different values is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from nbaprops.errors import InputError
from nbaprops.ingest._report import IngestReport, file_sha256
from nbaprops.ingest._validate import (
    Column,
    Field,
    check_values,
    column_label,
    column_sql,
    parse_sql,
    read_text_table,
    resolve_columns,
    shown,
)
from nbaprops.ingest.names import KNOWN_ALIASES, lookup_sql
from nbaprops.storage.duckdb import DuckDBStorage

log = logging.getLogger(__name__)


def _find_shipped() -> Path:
    here = Path(__file__).resolve()
    candidates = [
        here.parents[3] / "data" / "boxscores" / "player_logs.parquet",  # source checkout / editable install
        here.parents[1] / "_data" / "player_logs.parquet",  # wheel
    ]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


SHIPPED_BOXSCORES = _find_shipped()

FIELDS: tuple[Field, ...] = (
    Field("SEASON_ID", required=False),
    Field("PLAYER_ID", "int"),
    Field("PLAYER_NAME"),
    Field("TEAM_ID", "int", required=False),
    Field("TEAM_ABBREVIATION"),
    Field("TEAM_NAME", required=False),
    Field("GAME_ID"),
    Field("GAME_DATE", "date"),
    Field("MATCHUP"),
    Field("WL", required=False),
    Field("MIN", "nonneg_number"),
    Field("PTS", "nonneg_number"),
    *(
        Field(name, "nonneg_number", required=False)
        for name in (
            "FGM",
            "FGA",
            "FG3M",
            "FG3A",
            "FTM",
            "FTA",
            "OREB",
            "DREB",
            "REB",
            "AST",
            "STL",
            "BLK",
            "TOV",
            "PF",
        )
    ),
    Field("PLUS_MINUS", "number", required=False),
    Field("SEASON_LABEL", required=False),
)

_STAT_COLUMNS = (
    "fgm",
    "fga",
    "fg3m",
    "fg3a",
    "ftm",
    "fta",
    "oreb",
    "dreb",
    "reb",
    "ast",
    "stl",
    "blk",
    "tov",
    "pf",
)
# Values compared when the same (player_id, game_id) arrives again.
_COMPARED = ("game_date", "team", "minutes", "pts", "reb", "ast", "fg3m")


def season_sql(date_expr: str) -> str:
    """Season label (``2024-25``) of a date: seasons start in August."""
    year = f"(year({date_expr}) - CASE WHEN month({date_expr}) >= 8 THEN 0 ELSE 1 END)"
    return f"(CAST({year} AS VARCHAR) || '-' || lpad(CAST(({year} + 1) % 100 AS VARCHAR), 2, '0'))"


def _select_sql(view: str, cols: dict[str, Column | None]) -> str:
    def raw(name: str) -> str:
        return column_sql(cols.get(name))

    def num(name: str, kind: str = "int") -> str:
        return parse_sql("int" if kind == "int" else "number", raw(name))

    date = parse_sql("date", raw("GAME_DATE"))
    matchup = f"trim({raw('MATCHUP')})"
    season = f"coalesce(nullif(trim({raw('SEASON_LABEL')}), ''), {season_sql(date)})"
    stats = ",\n".join(f"CAST({num(c.upper())} AS INTEGER) AS {c}" for c in _STAT_COLUMNS)
    return f"""
        SELECT {season} AS season,
               nullif(trim({raw("SEASON_ID")}), '') AS season_id,
               {num("PLAYER_ID")} AS player_id,
               trim({raw("PLAYER_NAME")}) AS player_name,
               {lookup_sql(raw("PLAYER_NAME"))} AS player_lookup,
               {num("TEAM_ID")} AS team_id,
               upper(trim({raw("TEAM_ABBREVIATION")})) AS team,
               nullif(trim({raw("TEAM_NAME")}), '') AS team_name,
               trim({raw("GAME_ID")}) AS game_id,
               {date} AS game_date,
               {matchup} AS matchup,
               upper(trim(regexp_extract({matchup}, '(vs\\.|@)\\s*([A-Za-z]+)\\s*$', 2))) AS opponent,
               contains({matchup}, 'vs.') AS is_home,
               nullif(trim({raw("WL")}), '') AS wl,
               {num("MIN", "number")} AS minutes,
               CAST({num("PTS")} AS INTEGER) AS pts,
               {stats},
               CAST({num("PLUS_MINUS")} AS INTEGER) AS plus_minus,
               __line
        FROM {view}
    """


def ingest_boxscores(
    storage: DuckDBStorage, paths: Sequence[Path | str], *, kind: str = "boxscores"
) -> IngestReport:
    """Validate and store box-score files (CSV or Parquet, NBA.com LeagueGameLog player format).

    Atomic across all files: any bad row refuses the whole call and nothing stored changes.

    Raises:
        InputError: naming the file, line and column of the first problem.
    """
    with storage.session() as cur:
        staged: list[tuple[Path, str, int]] = []
        for index, raw_path in enumerate(paths):
            path = Path(raw_path)
            view = cur.temp_name(f"box_in_{index}")
            header = read_text_table(cur, path, view)
            cols = resolve_columns(header, FIELDS, path=path)
            check_values(cur, view, FIELDS, cols, path=path)
            typed = cur.temp_name(f"box_typed_{index}")
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {typed} AS {_select_sql(view, cols)}")
            bad = cur.execute(
                f"SELECT __line, matchup FROM {typed} WHERE opponent = '' OR opponent IS NULL LIMIT 1"
            ).fetchone()
            if bad:
                raise InputError(
                    f"value {shown(bad[1])} is not a matchup like 'CLE vs. IND' or 'WAS @ MEM'",
                    path=str(path),
                    row=bad[0],
                    column=column_label(cols["MATCHUP"]),
                )
            dup = cur.execute(
                f"""SELECT max(__line) FROM {typed} GROUP BY player_id, game_id
                    HAVING count(DISTINCT ({", ".join(_COMPARED)})) > 1 LIMIT 1"""
            ).fetchone()
            if dup:
                raise InputError(
                    "the same PLAYER_ID and GAME_ID appear earlier in the file with different values",
                    path=str(path),
                    row=dup[0],
                    column="GAME_ID",
                )
            conflict = cur.execute(
                f"""SELECT t.__line FROM {typed} t JOIN box_scores b USING (player_id, game_id)
                    WHERE ({", ".join("t." + c for c in _COMPARED)}) IS DISTINCT FROM ({", ".join("b." + c for c in _COMPARED)})
                    ORDER BY t.__line LIMIT 1"""
            ).fetchone()
            if conflict:
                raise InputError(
                    "PLAYER_ID and GAME_ID are already stored with different values",
                    path=str(path),
                    row=conflict[0],
                    column="GAME_ID",
                )
            count = cur.execute(f"SELECT count(*) FROM {typed}").fetchone()
            staged.append((path, typed, int(count[0]) if count else 0))

        # Two files of one call may share rows; the first wins only if identical, else refuse.
        if len(staged) > 1:
            union = " UNION ALL ".join(
                f"SELECT *, {i} AS __file FROM {t}" for i, (_, t, _) in enumerate(staged)
            )
            dup = cur.execute(
                f"""SELECT any_value(__file), max(__line) FROM ({union}) GROUP BY player_id, game_id
                    HAVING count(DISTINCT ({", ".join(_COMPARED)})) > 1 LIMIT 1"""
            ).fetchone()
            if dup:
                raise InputError(
                    "a row disagrees with another file of this call",
                    path=str(staged[int(dup[0])][0]),
                    row=dup[1],
                    column="GAME_ID",
                )

        added = 0
        columns = ", ".join(
            c
            for c in (
                "season",
                "season_id",
                "player_id",
                "player_name",
                "player_lookup",
                "team_id",
                "team",
                "team_name",
                "game_id",
                "game_date",
                "matchup",
                "opponent",
                "is_home",
                "wl",
                "minutes",
                "pts",
                *_STAT_COLUMNS,
                "plus_minus",
            )
        )
        now = datetime.now(UTC)
        with storage.transaction() as tx:
            for path, typed, rows in staged:
                before = tx.execute("SELECT count(*) FROM box_scores").fetchone()
                tx.execute(
                    f"""INSERT INTO box_scores ({columns})
                        SELECT {columns} FROM (
                            SELECT *, row_number() OVER (PARTITION BY player_id, game_id ORDER BY __line) AS __n FROM {typed}
                        ) t WHERE __n = 1 AND NOT EXISTS (
                            SELECT 1 FROM box_scores b WHERE b.player_id = t.player_id AND b.game_id = t.game_id)"""
                )
                after = tx.execute("SELECT count(*) FROM box_scores").fetchone()
                file_added = int(after[0]) - int(before[0]) if after and before else 0
                added += file_added
                tx.execute(
                    f"""INSERT INTO teams (team, team_name, team_id)
                        SELECT team, team_name, any_value(team_id) FROM {typed} t WHERE team_name IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM teams x WHERE x.team = t.team AND x.team_name = t.team_name)
                        GROUP BY team, team_name"""
                )
                tx.execute(
                    "INSERT OR REPLACE INTO ingest_log VALUES (?, ?, ?, ?, ?, ?)",
                    [kind, str(path), file_sha256(path), rows, file_added, now],
                )
        for _, typed, _ in staged:
            cur.execute(f"DROP TABLE IF EXISTS {typed}")
        log.info(
            "ingested %d box-score rows (%d new) from %d file(s)",
            sum(n for *_, n in staged),
            added,
            len(staged),
        )
        return IngestReport(kind, tuple(str(p) for p, _, _ in staged), sum(n for *_, n in staged), added)


def ensure_aliases(storage: DuckDBStorage) -> None:
    """Insert :data:`~nbaprops.ingest.names.KNOWN_ALIASES` that are not stored yet."""
    values = ", ".join(f"('{a}', '{p}')" for a, p in sorted(KNOWN_ALIASES.items()))
    storage.execute(f"INSERT INTO player_aliases SELECT * FROM (VALUES {values}) ON CONFLICT DO NOTHING")


def ensure_boxscores(storage: DuckDBStorage) -> int:
    """Load the shipped seasons when the database holds no box scores yet; returns rows added.

    Also seeds ``player_aliases`` with the known sportsbook spellings (existing aliases are kept).
    """
    ensure_aliases(storage)
    if storage.scalar("SELECT count(*) FROM box_scores"):
        return 0
    if not SHIPPED_BOXSCORES.exists():
        raise InputError(
            "the shipped box scores are missing; reinstall nbaprops", path=str(SHIPPED_BOXSCORES)
        )
    log.info("loading shipped box scores from %s", SHIPPED_BOXSCORES)
    return ingest_boxscores(storage, [SHIPPED_BOXSCORES], kind="shipped_boxscores").rows_added
