"""The point-in-time feature builder: one vectorized query for any number of players and dates.

Every feature of a target row (player, game date) is computed from box scores dated **strictly before** that
date, by construction:

1. ``__hist``: per player-game, rolling statistics *through* that game (window functions over the player's
   own games), plus the team-level figures of that game (usage, shot share, starter proxy).
2. ``__team``: per team-game, rolling pace and what the team allowed, relative to the league.
3. Each target takes the player's latest ``__hist`` row and each team's latest ``__team`` row dated before
   the target date (DuckDB ``ASOF JOIN ... ON h.game_date < t.game_date``), so nothing dated on or after the
   target date can reach it. ``tests/features`` perturbs every later box score and checks nothing changes.

The daily batch (a slate of targets) and training (every past player-game as a target,
:func:`build_training_set`) go through the same SQL, so a model is trained on exactly the features it will
be given. :func:`build_features` first copies the box scores the targets can need: every player's (team
pace, what opponents allowed and teammates out are built from everyone's games), dated from 800 days
(``_SLATE_HISTORY_DAYS``) before the earliest target date up to, not including, the latest one. That date
bound only limits how much is read: with targets on several dates it cannot hide a target's own date, which
the ASOF condition alone excludes (``tests/features/test_leakage.py`` checks the condition without the bound).

Definitions that are not obvious:

- ``usage_rate10``: mean over the last 10 games of ``(FGA + 0.44 FTA + TOV) * (team minutes / 5) /
  (minutes * team (FGA + 0.44 FTA + TOV))`` — the classic usage rate from team sums.
- ``starter_proxy``: share of the last 10 games in which the player was among his team's five longest-playing.
- ``team_pace10``: mean team possessions (``FGA + 0.44 FTA - OREB + TOV``) over the team's last 10 games.
- ``opp_allowed_<stat>_rel``: what the opponent conceded per game (the other team's total) over its last 10
  games, divided by the league's mean per team-game over the 120 days before.
- ``teammates_out_*``: regulars — players with at least 5 appearances and 24+ minutes on average in the
  team's 10 games before its last game — who did not play the team's last game before the date (the player
  himself excluded); ``_usage`` sums their usage rates.
- ``team_games_missed``: the team's games since the player's last game for it (a player back from an absence
  plays fewer minutes); NULL when his last game was for another team.
- ``regulars_out_tonight_min``: minutes per game of the team's regulars (5+ games for it this season, 24+
  minutes a game over their last 10) whom the injury report the batch reads lists **Out** for the date, the
  player himself excluded — the minutes to redistribute. It needs a report: training rows and the walk-forward
  backtest have none, so it is NULL there (LightGBM treats NULL as missing; a model trained only on NULLs makes
  no split on it until snapshots accumulate). A batch with a report and nobody Out gets 0.
- ``games_total``: the player's games in the 730 days up to his last game (a bounded window, so a slate and
  a training row see the same figure whatever history the query loaded).
- ``early_season_flag``: fewer than 5 games this season; ``feature_quality_score`` (0-100): 60 points for
  up to 20 career games before the date and 40 for up to 10 this season; ``feature_count``: non-null features.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pyarrow as pa

from nbaprops.errors import InputError
from nbaprops.features.columns import (
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    STATS,
    TARGET_COLUMNS,
)
from nbaprops.markets import MARKET_STAT
from nbaprops.storage.inputs import Inputs

__all__ = ["FEATURE_VERSION", "build_features", "build_training_set", "features_sql"]

_SEASON_YEAR = "(year({d}) - CASE WHEN month({d}) >= 8 THEN 0 ELSE 1 END)"
_STAT_EXPR = {"pts": "pts", "reb": "reb", "ast": "ast", "fg3m": "fg3m", "pra": "(pts + reb + ast)"}
# Days of history a slate needs: the previous season whole (for last_season_avg) and the current one.
_SLATE_HISTORY_DAYS = 800


def _season_year(expr: str) -> str:
    return _SEASON_YEAR.format(d=expr)


def features_sql(box: str, targets: str, out_players: str | None = None) -> str:
    """The feature query over a box-score relation ``box`` and a target relation ``targets``.

    ``targets`` has the columns of :data:`~nbaprops.features.columns.TARGET_COLUMNS` plus ``__tid`` (row id);
    the result has ``__tid`` plus every feature and quality column. ``out_players`` (``game_date, team,
    player_lookup``: the players an injury report lists Out) feeds ``regulars_out_tonight_min``; without it
    that feature is NULL.
    """
    roll = []
    for stat in STATS:
        e = _STAT_EXPR[stat]
        w = "OVER (PARTITION BY player_id ORDER BY game_date ROWS BETWEEN {n} PRECEDING AND CURRENT ROW)"
        roll += [
            f"avg({e}) {w.format(n=2)} AS {stat}_avg3",
            f"avg({e}) {w.format(n=4)} AS {stat}_avg5",
            f"avg({e}) {w.format(n=9)} AS {stat}_avg10",
            f"stddev_samp({e}) {w.format(n=9)} AS {stat}_std10",
            f"sum({e}) {w.format(n=9)} / nullif(sum(minutes) {w.format(n=9)}, 0) AS {stat}_per_min10",
            f"avg({e}) OVER (PARTITION BY player_id, season_year ORDER BY game_date ROWS UNBOUNDED PRECEDING)"
            f" AS {stat}_season_avg",
        ]
    w10 = "OVER (PARTITION BY player_id ORDER BY game_date ROWS BETWEEN 9 PRECEDING AND CURRENT ROW)"
    w3 = "OVER (PARTITION BY player_id ORDER BY game_date ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)"
    allowed = ",\n".join(f"sum({_STAT_EXPR[s]}) AS {s}_total" for s in STATS)
    opp_roll = ",\n".join(
        f"avg(o.{s}_total) OVER (PARTITION BY t.team ORDER BY t.game_date, t.game_id ROWS BETWEEN 9 PRECEDING AND CURRENT ROW)"
        f" / nullif(avg(o.{s}_total) OVER (ORDER BY t.game_date RANGE BETWEEN INTERVAL 120 DAYS PRECEDING AND CURRENT ROW), 0)"
        f" AS opp_allowed_{s}_rel"
        for s in STATS
    )
    last_season = ",\n".join(f"avg({_STAT_EXPR[s]}) AS {s}_last_season_avg" for s in STATS)
    stat_cols = []
    for s in STATS:
        stat_cols += [
            f"h.{s}_last1",
            f"h.{s}_avg3",
            f"h.{s}_avg5",
            f"h.{s}_avg10",
            f"CASE WHEN h.season_year = t.season_year THEN h.{s}_season_avg END AS {s}_season_avg",
            f"ls.{s}_last_season_avg",
            f"h.{s}_std10",
            f"h.{s}_per_min10",
            f"oa.opp_allowed_{s}_rel",
        ]
    count_terms = " + ".join(f"CAST(({c}) IS NOT NULL AS INTEGER)" for c in FEATURE_COLUMNS)
    return f"""
WITH box AS (
    SELECT *, {_season_year("game_date")} AS season_year FROM {box}
),
team_game AS (
    SELECT game_id, team, any_value(opponent) AS opponent, any_value(game_date) AS game_date,
           sum(fga) AS t_fga, sum(fta) AS t_fta, sum(tov) AS t_tov, sum(oreb) AS t_oreb, sum(minutes) AS t_min,
           sum(fga) + 0.44 * sum(fta) - sum(oreb) + sum(tov) AS poss,
           {allowed}
    FROM box GROUP BY game_id, team
),
team_seq AS (
    SELECT t.*, row_number() OVER (PARTITION BY team ORDER BY game_date, game_id) AS seq FROM team_game t
),
player_game AS (
    SELECT b.*, (b.pts + b.reb + b.ast) AS pra,
           CASE WHEN b.minutes > 0 AND (tg.t_fga + 0.44 * tg.t_fta + tg.t_tov) > 0
                THEN (b.fga + 0.44 * b.fta + b.tov) * (tg.t_min / 5.0) / (b.minutes * (tg.t_fga + 0.44 * tg.t_fta + tg.t_tov))
           END AS usage,
           b.fga / nullif(tg.t_fga, 0) AS shot_share,
           CAST(row_number() OVER (PARTITION BY b.game_id, b.team ORDER BY b.minutes DESC, b.player_id) <= 5 AS INTEGER)
               AS started,
           tg.seq AS team_seq_at
    FROM box b JOIN team_seq tg ON tg.game_id = b.game_id AND tg.team = b.team
),
hist AS (
    SELECT player_id, game_date, season_year, team, team_seq_at, minutes AS min_last1,
           {",".join(f"{_STAT_EXPR[s]} AS {s}_last1" for s in STATS)},
           {",".join(roll)},
           avg(minutes) {w3} AS min_avg3,
           avg(minutes) {w10} AS min_avg10,
           avg(minutes) OVER (PARTITION BY player_id, season_year ORDER BY game_date ROWS UNBOUNDED PRECEDING) AS min_season_avg,
           count(*) OVER (PARTITION BY player_id, season_year ORDER BY game_date ROWS UNBOUNDED PRECEDING) AS games_season,
           count(*) OVER (PARTITION BY player_id ORDER BY game_date RANGE BETWEEN INTERVAL 730 DAYS PRECEDING AND CURRENT ROW) AS games_total,
           avg(usage) {w10} AS usage_rate10,
           avg(shot_share) {w10} AS shot_share10,
           avg(started) {w10} AS starter_proxy
    FROM player_game
),
last_season AS (
    SELECT player_id, season_year, {last_season} FROM box GROUP BY player_id, season_year
),
team_roll AS (
    SELECT t.team, t.game_date, t.seq,
           avg(t.poss) OVER (PARTITION BY t.team ORDER BY t.game_date, t.game_id ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS pace10,
           {opp_roll}
    FROM team_seq t JOIN team_game o ON o.game_id = t.game_id AND o.team = t.opponent
),
appearances AS (
    SELECT pg.player_id, pg.team, ts.seq, pg.minutes, pg.usage
    FROM player_game pg JOIN team_seq ts ON ts.game_id = pg.game_id AND ts.team = pg.team
),
regulars_out AS (  -- per team game L: regulars of the 10 team games before L who did not play L
    SELECT l.team, l.seq, list(r.player_id ORDER BY r.player_id) AS out_ids,
           list(r.usage ORDER BY r.player_id) AS out_usage
    FROM team_seq l
    JOIN (
        SELECT l2.team, l2.seq, a.player_id, avg(a.usage ORDER BY a.seq) AS usage
        FROM team_seq l2 JOIN appearances a ON a.team = l2.team AND a.seq BETWEEN l2.seq - 10 AND l2.seq - 1
        GROUP BY l2.team, l2.seq, a.player_id
        HAVING count(*) >= 5 AND avg(a.minutes) >= 24
    ) r ON r.team = l.team AND r.seq = l.seq
    WHERE NOT EXISTS (SELECT 1 FROM appearances a WHERE a.team = l.team AND a.seq = l.seq AND a.player_id = r.player_id)
    GROUP BY l.team, l.seq
),
tgt AS (
    SELECT *, {_season_year("game_date")} AS season_year FROM {targets}
),
recent AS (
    SELECT t.__tid, count(b.game_id) AS games_last7
    FROM tgt t LEFT JOIN box b ON b.player_id = t.player_id
        AND b.game_date >= t.game_date - INTERVAL 7 DAY AND b.game_date < t.game_date
    GROUP BY t.__tid
),
joined AS (
    SELECT t.__tid, t.is_home, h.game_date AS last_date,
           h.min_avg3, h.min_avg10,
           CASE WHEN h.season_year = t.season_year THEN h.min_season_avg END AS min_season_avg,
           CASE WHEN h.season_year = t.season_year THEN h.games_season ELSE 0 END AS games_season,
           coalesce(h.games_total, 0) AS games_total,
           h.usage_rate10, h.shot_share10, h.starter_proxy,
           tr.pace10 AS team_pace10, tr.seq AS team_seq, oa.pace10 AS opp_pace10, h.min_last1,
           CASE WHEN h.team = t.team THEN tr.seq - h.team_seq_at END AS team_games_missed,
           {",".join(stat_cols)}
    FROM tgt t
    ASOF LEFT JOIN hist h ON h.player_id = t.player_id AND h.game_date < t.game_date
    ASOF LEFT JOIN team_roll tr ON tr.team = t.team AND tr.game_date < t.game_date
    ASOF LEFT JOIN team_roll oa ON oa.team = t.opponent AND oa.game_date < t.game_date
    LEFT JOIN last_season ls ON ls.player_id = t.player_id AND ls.season_year = t.season_year - 1
),
out_mates AS (
    SELECT j.__tid,
           len(list_filter(ro.out_ids, lambda x: x <> t.player_id)) AS teammates_out_count,
           coalesce(list_sum(list_transform(list_filter(list_zip(ro.out_ids, ro.out_usage), lambda p: p[1] <> t.player_id),
                                   lambda p: coalesce(p[2], 0.0))), 0.0) AS teammates_out_usage
    FROM joined j JOIN tgt t USING (__tid)
    LEFT JOIN regulars_out ro ON ro.team = t.team AND ro.seq = j.team_seq
),
{_out_tonight_sql(out_players)},
feat AS (
    SELECT j.* EXCLUDE (last_date, team_seq),
           j.min_avg3 - j.min_avg10 AS min_trend,
           coalesce(r.games_last7, 0) AS games_last7,
           least(date_diff('day', j.last_date, t.game_date), 30) AS rest_days,
           coalesce(date_diff('day', j.last_date, t.game_date) = 1, false) AS is_back_to_back,
           coalesce(o.teammates_out_count, 0) AS teammates_out_count,
           coalesce(o.teammates_out_usage, 0.0) AS teammates_out_usage,
           ot.regulars_out_tonight_min
    FROM joined j JOIN tgt t USING (__tid) JOIN recent r USING (__tid) LEFT JOIN out_mates o USING (__tid)
    JOIN out_tonight ot USING (__tid)
)
SELECT __tid, {", ".join(FEATURE_COLUMNS)},
       games_season < 5 AS early_season_flag,
       60.0 * least(games_total, 20) / 20.0 + 40.0 * least(games_season, 10) / 10.0 AS feature_quality_score,
       CAST({count_terms} AS INTEGER) AS feature_count
FROM feat ORDER BY __tid
"""


def _out_tonight_sql(out_players: str | None) -> str:
    """CTE ``out_tonight``: minutes per game of the target's team regulars listed Out tonight (him excluded).

    A regular: at least 5 games for that team this season before the date, 24+ minutes a game over his last
    10 of them. NULL for every target when there is no injury report (training rows, the walk-forward).
    """
    if out_players is None:
        return "out_tonight AS (SELECT __tid, CAST(NULL AS DOUBLE) AS regulars_out_tonight_min FROM tgt)"
    return f"""out_games AS (
    SELECT o.game_date, o.team, b.player_id, b.minutes,
           row_number() OVER (PARTITION BY o.game_date, o.team, b.player_id ORDER BY b.game_date DESC) AS k
    FROM (SELECT DISTINCT game_date, team, player_lookup FROM {out_players}) o
    JOIN box b ON b.player_lookup = o.player_lookup AND b.team = o.team AND b.game_date < o.game_date
              AND b.season_year = {_season_year("o.game_date")}
),
out_regulars AS (
    SELECT game_date, team, player_id, avg(minutes) AS mins FROM out_games WHERE k <= 10
    GROUP BY ALL HAVING count(*) >= 5 AND avg(minutes) >= 24
),
out_tonight AS (
    SELECT t.__tid, coalesce(sum(r.mins) FILTER (WHERE r.player_id <> t.player_id), 0.0) AS regulars_out_tonight_min
    FROM tgt t LEFT JOIN out_regulars r ON r.game_date = t.game_date AND r.team = t.team GROUP BY t.__tid
)"""


def _cast(table: pa.Table) -> pa.Table:
    """Features as float64 (booleans as 0/1), quality columns typed."""
    cols: dict[str, pa.Array] = {}
    for name in table.column_names:
        col = table.column(name)
        if name in FEATURE_COLUMNS:
            col = col.cast(pa.float64())
        cols[name] = col
    return pa.table(cols)


def build_features(
    storage: Inputs, targets: pa.Table, *, box: str = "box_scores", out_players: pa.Table | None = None
) -> pa.Table:
    """Features of every target row, as of its own game date (strictly earlier box scores only).

    Args:
        targets: columns ``player_id, player_lookup, game_date, team, opponent, is_home`` (any dates, any
            number of rows). Players without history get NULL features and ``feature_count`` 0.
        box: the box-score relation to read (tests pass a perturbed copy).
        out_players: ``game_date, team, player_lookup`` of the players listed Out by the injury report the
            batch reads (an empty table when the report lists nobody Out); ``None`` when there is no report,
            which leaves ``regulars_out_tonight_min`` NULL.

    Returns:
        The target columns followed by every feature column, ``early_season_flag``, ``feature_quality_score``,
        ``feature_count``; one row per target, in target order.
    """
    missing = [c for c in TARGET_COLUMNS if c not in targets.column_names]
    if missing:
        raise InputError(f"targets lack column(s) {', '.join(missing)}")
    if targets.num_rows == 0:
        return _empty(targets)
    tgt = targets.select(list(TARGET_COLUMNS)).append_column(
        "__tid", pa.array(range(targets.num_rows), pa.int64())
    )
    with storage.session() as session:
        targets_name, history = session.temp_name("targets"), session.temp_name("history")
        session.register(targets_name, tgt)
        out_name = None
        if out_players is not None:
            out_name = session.temp_name("out_players")
            session.register(out_name, out_players.select(["game_date", "team", "player_lookup"]))
        first = session.scalar(f"SELECT min(game_date) FROM {targets_name}")
        lo = first - timedelta(days=_SLATE_HISTORY_DAYS)
        session.execute(
            f"""CREATE OR REPLACE TEMP TABLE {history} AS SELECT * FROM {box}
                WHERE game_date >= ? AND game_date < (SELECT max(game_date) FROM {targets_name})""",
            [lo],
        )
        out = session.arrow(features_sql(history, targets_name, out_name))
    feats = _cast(out.drop(["__tid"]))
    table = targets.select(list(TARGET_COLUMNS))
    for name in feats.column_names:
        if name in table.column_names:
            continue
        table = table.append_column(name, feats.column(name))
    return table


def _empty(targets: pa.Table) -> pa.Table:
    table = targets.select(list(TARGET_COLUMNS))
    for name in FEATURE_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.array([], pa.float64()))
    return (
        table.append_column("early_season_flag", pa.array([], pa.bool_()))
        .append_column("feature_quality_score", pa.array([], pa.float64()))
        .append_column("feature_count", pa.array([], pa.int32()))
    )


def build_training_set(
    storage: Inputs,
    start: date,
    end: date,
    *,
    markets: Sequence[str] | None = None,
    box: str = "box_scores",
) -> pa.Table:
    """Every player-game played in ``[start, end)`` with its features as of that game's date and the actuals.

    The same builder as the daily batch (each game is a target), plus ``game_id``, ``player_name``,
    ``season``, ``actual_minutes`` and ``actual_<stat>`` for every stat (``actual_pra`` = pts + reb + ast).
    Only players who played have rows, so training never sees a did-not-play as a zero.
    """
    targets = storage.arrow(
        f"""SELECT player_id, player_lookup, game_date, team, opponent, is_home, game_id, player_name, season,
                   minutes AS actual_minutes, pts AS actual_pts, reb AS actual_reb, ast AS actual_ast,
                   fg3m AS actual_fg3m, pts + reb + ast AS actual_pra
            FROM {box} WHERE game_date >= $start AND game_date < $end ORDER BY game_date, game_id, player_id""",
        {"start": start, "end": end},
    )
    feats = build_features(storage, targets, box=box)
    for name in (
        "game_id",
        "player_name",
        "season",
        "actual_minutes",
        *(f"actual_{s}" for s in sorted(set(MARKET_STAT.values()))),
    ):
        feats = feats.append_column(name, targets.column(name))
    return feats
