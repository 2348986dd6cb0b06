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
from pathlib import Path
from typing import Any

from nbaprops.errors import InputError
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
from nbaprops.ingest.names import KNOWN_ALIASES, lookup_sql
from nbaprops.storage.inputs import Inputs, InputSession

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
_KEY = ("player_id", "game_id")
_KEY_SQL = ", ".join(_KEY)
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


def _check(cur: InputSession, file: SourceFile) -> None:
    check_values(cur, file.view, FIELDS, file.columns, path=file.path)


def _stage(file: SourceFile) -> tuple[str, dict[str, Any]]:
    return _select_sql(file.view, file.columns), {}


def _check_staged(cur: InputSession, file: SourceFile) -> None:
    """A matchup names the opponent; a (player, game) is one row in the file and agrees with the stored one."""
    typed, path = file.typed, file.path
    bad = cur.execute(
        f"SELECT __line, matchup FROM {typed} WHERE opponent = '' OR opponent IS NULL LIMIT 1"
    ).fetchone()
    if bad:
        raise InputError(
            f"value {shown(bad[1])} is not a matchup like 'CLE vs. IND' or 'WAS @ MEM'",
            path=str(path),
            row=bad[0],
            column=column_label(file.columns["MATCHUP"]),
        )
    dup = cur.execute(
        f"""SELECT max(__line) FROM {typed} GROUP BY {_KEY_SQL}
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
        f"""SELECT t.__line FROM {typed} t JOIN box_scores b USING ({_KEY_SQL})
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


def _combine(cur: InputSession, files: Sequence[SourceFile]) -> dict[str, Any]:
    """Two files of one call may share rows; the first wins only if identical, else refuse."""
    if len(files) > 1:
        union = " UNION ALL ".join(f"SELECT *, {i} AS __file FROM {f.typed}" for i, f in enumerate(files))
        dup = cur.execute(
            f"""SELECT any_value(__file), max(__line) FROM ({union}) GROUP BY {_KEY_SQL}
                HAVING count(DISTINCT ({", ".join(_COMPARED)})) > 1 LIMIT 1"""
        ).fetchone()
        if dup:
            raise InputError(
                "a row disagrees with another file of this call",
                path=str(files[int(dup[0])].path),
                row=dup[1],
                column="GAME_ID",
            )
    return {}


_STORED = (
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


def _merge(tx: InputSession, files: Sequence[SourceFile], combined: dict[str, Any]) -> Merged:
    """File by file, the rows of a (player, game) not stored yet (the first of the file's identical rows), and
    the teams' full names."""
    columns = ", ".join(_STORED)
    added: list[int] = []
    for file in files:
        before = int(tx.scalar("SELECT count(*) FROM box_scores"))
        tx.execute(
            f"""INSERT INTO box_scores ({columns})
                SELECT {columns} FROM (
                    SELECT *, row_number() OVER (PARTITION BY {_KEY_SQL} ORDER BY __line) AS __n FROM {file.typed}
                ) t WHERE __n = 1 AND NOT EXISTS (
                    SELECT 1 FROM box_scores b WHERE b.player_id = t.player_id AND b.game_id = t.game_id)"""
        )
        added.append(int(tx.scalar("SELECT count(*) FROM box_scores")) - before)
        tx.execute(
            f"""INSERT INTO teams (team, team_name, team_id)
                SELECT team, team_name, any_value(team_id) FROM {file.typed} t WHERE team_name IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM teams x WHERE x.team = t.team AND x.team_name = t.team_name)
                GROUP BY team, team_name"""
        )
    return Merged(added_by_file=tuple(added))


BOXSCORES = IngestSpec(
    kind="boxscores",
    table="box_scores",
    noun="box-score",
    key=_KEY,
    fields=FIELDS,
    check=_check,
    stage=_stage,
    check_staged=_check_staged,
    combine=_combine,
    merge=_merge,
)
"""Box scores as an ingest kind (:mod:`nbaprops.ingest._loader`)."""


def ingest_boxscores(
    storage: Inputs, paths: Sequence[Path | str], *, kind: str = "boxscores"
) -> IngestReport:
    """Validate and store box-score files (CSV or Parquet, NBA.com LeagueGameLog player format).

    Atomic across all files: any bad row refuses the whole call and nothing stored changes.

    Raises:
        InputError: naming the file, line and column of the first problem.
    """
    return load(storage, BOXSCORES, paths, kind=kind)


def ensure_aliases(storage: Inputs) -> None:
    """Insert :data:`~nbaprops.ingest.names.KNOWN_ALIASES` that are not stored yet."""
    values = ", ".join(f"('{a}', '{p}')" for a, p in sorted(KNOWN_ALIASES.items()))
    storage.execute(f"INSERT INTO player_aliases SELECT * FROM (VALUES {values}) ON CONFLICT DO NOTHING")


def ensure_boxscores(storage: Inputs) -> int:
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
