"""The feature contract: every column the point-in-time builder produces, by name.

Systems read features only through these names. ``FEATURE_VERSION`` changes whenever a definition changes;
it is stored on every prediction row.
"""

from __future__ import annotations

FEATURE_VERSION = "fv3"

STATS: tuple[str, ...] = ("pts", "reb", "ast", "fg3m", "pra")

# Columns of the target rows handed to the builder (one row per player to predict).
TARGET_COLUMNS: tuple[str, ...] = ("player_id", "player_lookup", "game_date", "team", "opponent", "is_home")


def stat_features(stat: str) -> tuple[str, ...]:
    """Per-stat features for ``stat`` (one of :data:`STATS`)."""
    return (
        f"{stat}_last1",  # the last game before the date
        f"{stat}_avg3",  # mean of the last 3 games before the date
        f"{stat}_avg5",
        f"{stat}_avg10",
        f"{stat}_season_avg",  # this season's games before the date (NULL when none)
        f"{stat}_last_season_avg",  # the previous season's average (for early season)
        f"{stat}_std10",  # sample standard deviation of the last 10
        f"{stat}_per_min10",  # sum over last 10 / minutes over last 10
        f"opp_allowed_{stat}_rel",  # what the opponent allowed per game (last 10 team games) / league mean
    )


COMMON_FEATURES: tuple[str, ...] = (
    "is_home",
    "min_last1",
    "min_avg3",
    "min_avg10",
    "min_season_avg",
    "min_trend",  # min_avg3 - min_avg10
    "games_season",  # games this season before the date
    "games_total",  # games in the 730 days before the date
    "games_last7",  # games in the 7 days before the date
    "rest_days",  # days since the last game (capped at 30)
    "is_back_to_back",  # played the day before
    "usage_rate10",  # (FGA + 0.44 FTA + TOV) share of the team's while on court, last 10
    "shot_share10",  # share of team FGA, last 10
    "starter_proxy",  # share of the last 10 games among the team's top-5 in minutes
    "team_pace10",  # team possessions per game, last 10 team games
    "opp_pace10",
    "teammates_out_count",  # regulars (>= 24 min avg) of the team who missed the team's last game
    "teammates_out_usage",  # their summed usage share
    "team_games_missed",  # team games since the player's last game for the team
    "regulars_out_tonight_min",  # minutes/game of the team's regulars listed Out tonight (NULL: no injury report)
)

QUALITY_COLUMNS: tuple[str, ...] = ("early_season_flag", "feature_quality_score", "feature_count")

FEATURE_COLUMNS: tuple[str, ...] = (
    *COMMON_FEATURES,
    *(name for stat in STATS for name in stat_features(stat)),
)
