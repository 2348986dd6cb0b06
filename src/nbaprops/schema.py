"""Declared table contracts: the single source of every table's DDL and of the drift diff.

Each table is a :class:`Table` of :class:`Column` records (name, type, nullability, description). The main
predictions table and every staging table are generated from the same contract, so they cannot disagree
unless someone changes one of them outside this module; when they do (an older staging table, a main table
that gained columns), :func:`plan_drift` — a pure function — says which columns to add to the main table and
which to insert, by name. Storage code only ever creates tables or adds columns (STYLE.md, convention 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from nbaprops.errors import ContractError


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    description: str = ""

    def ddl(self) -> str:
        return f'"{self.name}" {self.type}' + ("" if self.nullable else " NOT NULL")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def create_sql(self, name: str | None = None, *, keys: bool = True) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this contract, optionally under another name (staging).

        ``keys=False`` leaves out the primary key: a staging table may hold rows a stray writer put there,
        which consolidation fences out by attempt instead of letting them block an honest commit.
        """
        parts = [c.ddl() for c in self.columns]
        if self.primary_key and keys:
            parts.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in self.primary_key) + ")")
        return f'CREATE TABLE IF NOT EXISTS "{name or self.name}" (\n  ' + ",\n  ".join(parts) + "\n)"


def _c(name: str, type_: str, description: str, *, nullable: bool = True) -> Column:
    return Column(name, type_, nullable, description)


BOX_SCORES = Table(
    "box_scores",
    (
        _c("season", "VARCHAR", "season label, e.g. 2024-25", nullable=False),
        _c("season_id", "VARCHAR", "NBA.com season id, e.g. 22024"),
        _c("player_id", "BIGINT", "NBA.com player id", nullable=False),
        _c("player_name", "VARCHAR", "name as NBA.com spells it", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised name used to join lines", nullable=False),
        _c("team_id", "BIGINT", "NBA.com team id"),
        _c("team", "VARCHAR", "team abbreviation", nullable=False),
        _c("team_name", "VARCHAR", "team full name"),
        _c("game_id", "VARCHAR", "NBA.com game id", nullable=False),
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("matchup", "VARCHAR", "e.g. 'CLE vs. IND' (home) or 'WAS @ MEM' (away)"),
        _c("opponent", "VARCHAR", "opponent abbreviation", nullable=False),
        _c("is_home", "BOOLEAN", "true when the player's team was at home", nullable=False),
        _c("wl", "VARCHAR", "W or L"),
        _c("minutes", "DOUBLE", "minutes played", nullable=False),
        _c("pts", "INTEGER", "points", nullable=False),
        _c("fgm", "INTEGER", "field goals made"),
        _c("fga", "INTEGER", "field goals attempted"),
        _c("fg3m", "INTEGER", "threes made"),
        _c("fg3a", "INTEGER", "threes attempted"),
        _c("ftm", "INTEGER", "free throws made"),
        _c("fta", "INTEGER", "free throws attempted"),
        _c("oreb", "INTEGER", "offensive rebounds"),
        _c("dreb", "INTEGER", "defensive rebounds"),
        _c("reb", "INTEGER", "rebounds"),
        _c("ast", "INTEGER", "assists"),
        _c("stl", "INTEGER", "steals"),
        _c("blk", "INTEGER", "blocks"),
        _c("tov", "INTEGER", "turnovers"),
        _c("pf", "INTEGER", "personal fouls"),
        _c("plus_minus", "INTEGER", "plus-minus"),
    ),
    primary_key=("player_id", "game_id"),
    description="One row per player and game played (NBA.com LeagueGameLog).",
)

TEAMS = Table(
    "teams",
    (
        _c("team", "VARCHAR", "abbreviation", nullable=False),
        _c("team_name", "VARCHAR", "full name as NBA.com spells it", nullable=False),
        _c("team_id", "BIGINT", "NBA.com team id"),
    ),
    primary_key=("team", "team_name"),
    description="Team names and abbreviations seen in box scores (a team may have several names).",
)

SCHEDULE = Table(
    "schedule",
    (
        _c("game_id", "VARCHAR", "game id (NBA.com id when known, else derived)", nullable=False),
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("home_team", "VARCHAR", "home abbreviation", nullable=False),
        _c("away_team", "VARCHAR", "away abbreviation", nullable=False),
        _c("commence_time", "TIMESTAMPTZ", "tip-off, when known"),
        _c("source", "VARCHAR", "file the row came from"),
        _c("status", "VARCHAR", "scheduled, final, postponed or cancelled; NULL when the file did not say"),
    ),
    primary_key=("game_date", "home_team", "away_team"),
    description="Scheduled games, from ingested schedule files.",
)

PROP_LINES = Table(
    "prop_lines",
    (
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name (after aliases)", nullable=False),
        _c("player_name", "VARCHAR", "name as the sportsbook spells it", nullable=False),
        _c("market", "VARCHAR", "points, rebounds, assists, threes or pra", nullable=False),
        _c("bookmaker", "VARCHAR", "sportsbook", nullable=False),
        _c("line", "DOUBLE", "the prop line", nullable=False),
        _c("over_price", "DOUBLE", "American odds of the over"),
        _c("under_price", "DOUBLE", "American odds of the under"),
        _c("is_main", "BOOLEAN", "the book's main line for this player, game and market", nullable=False),
        _c("team", "VARCHAR", "player's team abbreviation, when given"),
        _c("opponent", "VARCHAR", "opponent abbreviation, when given"),
        _c("home_team", "VARCHAR", "home abbreviation, when given"),
        _c("away_team", "VARCHAR", "away abbreviation, when given"),
        _c("event_id", "VARCHAR", "the odds feed's event id, when given"),
        _c("commence_time", "TIMESTAMPTZ", "tip-off, when given"),
        _c("posted_at", "TIMESTAMPTZ", "when the line was captured; NULL means unknown"),
        _c("source", "VARCHAR", "file the row came from"),
        _c(
            "quarantine_reason",
            "VARCHAR",
            "why the line is quarantined (far from the other books' lines or from the player's own recent "
            "games): stored and reported, never priced or bet; NULL for a line in use",
        ),
    ),
    primary_key=("game_date", "player_lookup", "market", "bookmaker", "line"),
    description="Sportsbook prop lines as posted.",
)

PROP_LINE_SNAPSHOTS = Table(
    "prop_line_snapshots",
    (
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name (after aliases)", nullable=False),
        _c("market", "VARCHAR", "points, rebounds, assists, threes or pra", nullable=False),
        _c("bookmaker", "VARCHAR", "sportsbook", nullable=False),
        _c("line", "DOUBLE", "the prop line", nullable=False),
        _c(
            "posted_at",
            "TIMESTAMPTZ",
            "when the book's line was captured (the snapshot's time)",
            nullable=False,
        ),
        _c("over_price", "DOUBLE", "American odds of the over at that time"),
        _c("under_price", "DOUBLE", "American odds of the under at that time"),
        _c("commence_time", "TIMESTAMPTZ", "tip-off, when the file gave it"),
        _c("event_id", "VARCHAR", "the odds feed's event id, when given"),
        _c("home_team", "VARCHAR", "home abbreviation, when given"),
        _c("away_team", "VARCHAR", "away abbreviation, when given"),
        _c("source", "VARCHAR", "file the row came from"),
    ),
    primary_key=("game_date", "player_lookup", "market", "bookmaker", "line", "posted_at"),
    description="Every posting of a prop line ever ingested, append-only (prop_lines keeps only the latest): "
    "the close is the last one before tip-off. Rows without a posted_at are not kept here.",
)

PLAYER_ALIASES = Table(
    "player_aliases",
    (
        _c("alias_lookup", "VARCHAR", "normalised name as a sportsbook spells it", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised box-score name it stands for", nullable=False),
    ),
    primary_key=("alias_lookup",),
    description="Sportsbook spellings that normalisation alone does not join.",
)

INGEST_LOG = Table(
    "ingest_log",
    (
        _c("kind", "VARCHAR", "boxscores, lines or schedule", nullable=False),
        _c("source", "VARCHAR", "file path", nullable=False),
        _c("sha256", "VARCHAR", "content hash", nullable=False),
        _c("rows_read", "BIGINT", "rows in the file"),
        _c("rows_added", "BIGINT", "rows new to the database"),
        _c("ingested_at", "TIMESTAMPTZ", "when", nullable=False),
    ),
    primary_key=("kind", "sha256"),
    description="Every file ingested, by content hash.",
)

BATCH_STATES = ("running", "complete", "partial")
REQUEST_STATES = ("pending", "leased", "done", "skipped", "failed")
TERMINAL_REQUEST_STATES = ("done", "skipped", "failed")

PREDICTION_BATCHES = Table(
    "prediction_batches",
    (
        _c("batch_id", "VARCHAR", "unique batch id", nullable=False),
        _c("game_date", "DATE", "the date predicted", nullable=False),
        _c(
            "state",
            "VARCHAR",
            "running, complete (every request done or skipped) or partial (some failed)",
            nullable=False,
        ),
        _c("markets", "VARCHAR[]", "markets predicted", nullable=False),
        _c("systems", "VARCHAR[]", "systems run", nullable=False),
        _c("as_of", "TIMESTAMPTZ", "prediction time: no line posted later is used", nullable=False),
        _c("created_at", "TIMESTAMPTZ", "when the batch started", nullable=False),
        _c("deadline_at", "TIMESTAMPTZ", "past this the batch ends partial", nullable=False),
        _c("consolidated_at", "TIMESTAMPTZ", "latch: set once staging is merged"),
        _c("finished_at", "TIMESTAMPTZ", "when it reached a final state"),
        _c("staging_table", "VARCHAR", "its staging table while one exists"),
        _c("summary", "JSON", "the summary written at consolidation"),
        _c(
            "kind",
            "VARCHAR",
            "daily (NULL means daily too) or line_update (re-predicts only players whose line moved)",
        ),
    ),
    primary_key=("batch_id",),
    description="One row per batch.",
)

PREDICTION_REQUESTS = Table(
    "prediction_requests",
    (
        _c("batch_id", "VARCHAR", "the batch", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name", nullable=False),
        _c("player_id", "BIGINT", "NBA.com player id (NULL for a line-only player with no box score)"),
        _c("player_name", "VARCHAR", "display name", nullable=False),
        _c("team", "VARCHAR", "team abbreviation"),
        _c("opponent", "VARCHAR", "opponent abbreviation"),
        _c("game_id", "VARCHAR", "scheduled game"),
        _c("is_home", "BOOLEAN", "home game"),
        _c("state", "VARCHAR", "pending, leased, done, skipped or failed", nullable=False),
        _c("attempt", "INTEGER", "claims so far; fences commits", nullable=False),
        _c("lease_owner", "VARCHAR", "worker holding the lease"),
        _c("lease_expires_at", "TIMESTAMPTZ", "when the lease ends"),
        _c("error_code", "VARCHAR", "why skipped or failed"),
        _c("error_message", "VARCHAR", "detail"),
        _c("rows_staged", "INTEGER", "prediction rows staged by the completing attempt"),
        _c("created_at", "TIMESTAMPTZ", "", nullable=False),
        _c("updated_at", "TIMESTAMPTZ", "", nullable=False),
    ),
    primary_key=("batch_id", "player_lookup"),
    description="The ledger: one durable row per requested player. Progress is a query over it.",
)

PREDICTIONS = Table(
    "player_prop_predictions",
    (
        _c(
            "prediction_id",
            "VARCHAR",
            "deterministic id: batch, game, player, market, system",
            nullable=False,
        ),
        _c("batch_id", "VARCHAR", "batch that produced the row", nullable=False),
        _c("system_id", "VARCHAR", "prediction system", nullable=False),
        _c("market", "VARCHAR", "points, rebounds, assists, threes or pra", nullable=False),
        _c("game_id", "VARCHAR", "game", nullable=False),
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name", nullable=False),
        _c("player_id", "BIGINT", "NBA.com player id"),
        _c("player_name", "VARCHAR", "display name"),
        _c("team", "VARCHAR", "team abbreviation"),
        _c("opponent", "VARCHAR", "opponent abbreviation"),
        _c("is_home", "BOOLEAN", "home game"),
        _c("predicted_value", "DOUBLE", "predicted stat value"),
        _c("predicted_std", "DOUBLE", "predicted error spread (out of sample)"),
        _c("line_value", "DOUBLE", "the main line used, NULL when none"),
        _c("sportsbook", "VARCHAR", "book of the line"),
        _c("over_price", "DOUBLE", "American odds of the over"),
        _c("under_price", "DOUBLE", "American odds of the under"),
        _c("edge", "DOUBLE", "predicted_value - line_value"),
        _c("p_over_raw", "DOUBLE", "P(over) from the value and its spread, before calibration"),
        _c("p_over", "DOUBLE", "calibrated P(over)"),
        _c("recommendation", "VARCHAR", "OVER, UNDER, PASS or NO_LINE", nullable=False),
        _c("confidence_raw", "DOUBLE", "raw probability the recommended side wins"),
        _c("confidence_score", "DOUBLE", "calibrated probability the recommended side wins"),
        _c(
            "calibration_method",
            "VARCHAR",
            "how p_over was calibrated: logistic on the standardized edge (bets allowed), no_signal (no relation "
            "between edge and outcome: base rate, every row PASS) or none (too few graded rows: PASS)",
        ),
        _c(
            "expected_value",
            "DOUBLE",
            "expected profit per unit of the recommended side at the offered price (NULL when nothing is bet)",
        ),
        _c("feature_version", "VARCHAR", "feature builder version"),
        _c("feature_quality_score", "DOUBLE", "0-100: how much history backs the row"),
        _c("feature_count", "INTEGER", "features available"),
        _c("early_season_flag", "BOOLEAN", "few games this season"),
        _c(
            "prediction_error_code",
            "VARCHAR",
            "set when the row is degraded: no_prediction, or stray (far from the other systems and the line: "
            "not priced, never bet)",
        ),
        _c(
            "injury_status",
            "VARCHAR",
            "Doubtful, Questionable, Probable or Available on the injury report used",
        ),
        _c("injury_reason", "VARCHAR", "the report's reason for that status"),
        _c("injury_report_at", "TIMESTAMPTZ", "publication time of the injury report the batch used"),
        _c("model_version", "VARCHAR", "artifact or rule version that produced the value"),
        _c("attempt", "INTEGER", "request attempt that staged the row"),
        _c("is_active", "BOOLEAN", "the current row for its key", nullable=False),
        _c("superseded_by", "VARCHAR", "prediction_id that replaced this row"),
        _c("invalidated_at", "TIMESTAMPTZ", "when the row stopped being active"),
        _c("invalidation_reason", "VARCHAR", "why"),
        _c("created_at", "TIMESTAMPTZ", "when staged", nullable=False),
        _c("updated_at", "TIMESTAMPTZ", "last change", nullable=False),
    ),
    primary_key=("prediction_id",),
    description="Consolidated predictions: at most one active row per (game_id, player_lookup, market, system_id).",
)

PREDICTION_KEY = ("game_id", "player_lookup", "market", "system_id")

VoidReason = Literal["did_not_play", "game_postponed", "player_ruled_out"]
"""Why a graded row is void (refunded, never a loss): its player has no box score for the date, or the row was
invalidated because its game was postponed or its player ruled out after it was made."""
VOID_REASONS: tuple[VoidReason, ...] = get_args(VoidReason)
VOID_INVALIDATIONS: tuple[VoidReason, ...] = ("game_postponed", "player_ruled_out")
"""Invalidations that void a row when graded (a superseded row is not graded: its replacement is)."""

PREDICTION_GRADES = Table(
    "prediction_grades",
    (
        _c("prediction_id", "VARCHAR", "graded prediction", nullable=False),
        _c("run_id", "VARCHAR", "backtest run or 'live'", nullable=False),
        _c("system_id", "VARCHAR", "prediction system", nullable=False),
        _c("market", "VARCHAR", "market", nullable=False),
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name", nullable=False),
        _c("predicted_value", "DOUBLE", "the prediction graded"),
        _c("line_value", "DOUBLE", "the line it was graded against"),
        _c("actual_value", "DOUBLE", "NULL when void"),
        _c("void_reason", "VARCHAR", "did_not_play, ... (NULL when graded)"),
        _c("recommendation", "VARCHAR", "OVER, UNDER, PASS or NO_LINE"),
        _c("outcome", "VARCHAR", "win, loss, push, or NULL when no bet / void"),
        _c("profit", "DOUBLE", "profit per unit staked at the offered price"),
        _c("p_win", "DOUBLE", "calibrated probability the recommended side wins (else the likelier side)"),
        _c("side", "VARCHAR", "over or under: the side p_win and the outcome refer to"),
        _c("p_over_raw", "DOUBLE", "uncalibrated P(over), what later calibrations learn from"),
        _c("side_won", "BOOLEAN", "did that side win (NULL on a push, a void or without a line)"),
        _c("predicted_std", "DOUBLE", "error spread used for P(over)"),
        _c("sportsbook", "VARCHAR", "book of the line"),
        _c("over_price", "DOUBLE", "American odds of the over"),
        _c("under_price", "DOUBLE", "American odds of the under"),
        _c("model_version", "VARCHAR", "artifact or rule version that produced the value"),
        _c("graded_at", "TIMESTAMPTZ", "when graded", nullable=False),
        _c("calibration_method", "VARCHAR", "logistic, no_signal or none (see the predictions table)"),
    ),
    primary_key=("run_id", "prediction_id"),
    description="Grades of predictions against real outcomes.",
)

INJURY_STATUSES = ("Out", "Doubtful", "Questionable", "Probable", "Available")

INJURY_REPORTS = Table(
    "injury_reports",
    (
        _c("report_at", "TIMESTAMPTZ", "when the report snapshot was published", nullable=False),
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("game_time", "VARCHAR", "tip-off as the report prints it, e.g. '07:30 (ET)'"),
        _c("matchup", "VARCHAR", "e.g. 'PHX@MIA'"),
        _c("team", "VARCHAR", "team abbreviation", nullable=False),
        _c("player_name", "VARCHAR", "'First Last' (the report prints 'Last, First')", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name (after aliases)", nullable=False),
        _c("status", "VARCHAR", "Out, Doubtful, Questionable, Probable or Available", nullable=False),
        _c("reason", "VARCHAR", "the report's reason"),
        _c("source", "VARCHAR", "file the row came from"),
    ),
    primary_key=("report_at", "game_date", "team", "player_lookup"),
    description="Every injury-report snapshot as published (point in time: a batch reads the latest one before "
    "its as_of).",
)

SOURCE_STATE = Table(
    "source_state",
    (
        _c("source", "VARCHAR", "live source, e.g. nba_stats", nullable=False),
        _c("resource", "VARCHAR", "what was fetched, e.g. boxscores:2025-26", nullable=False),
        _c("cursor", "VARCHAR", "how far it got (ISO date or time)", nullable=False),
        _c("updated_at", "TIMESTAMPTZ", "", nullable=False),
    ),
    primary_key=("source", "resource"),
    description="Incremental cursors of the live sources: the next fetch asks only for what is newer.",
)

DAILY_RUNS = Table(
    "daily_runs",
    (
        _c("run_id", "VARCHAR", "unique run id", nullable=False),
        _c("game_date", "DATE", "the date run", nullable=False),
        _c("started_at", "TIMESTAMPTZ", "", nullable=False),
        _c("finished_at", "TIMESTAMPTZ", ""),
        _c(
            "inputs_digest",
            "VARCHAR",
            "digest of what the batch would read (schedule, lines, injuries, models)",
        ),
        _c("batch_id", "VARCHAR", "the batch that stands for the date after this run"),
        _c("outcome", "VARCHAR", "predicted, unchanged or no_games"),
        _c("report", "JSON", "fetch results, models and summary"),
    ),
    primary_key=("run_id",),
    description="Every `nbaprops daily` run: a rerun with unchanged inputs predicts nothing anew.",
)

BOARD_MARKET_COLUMNS: tuple[Column, ...] = (
    _c(
        "consensus_line",
        "DOUBLE",
        "median of the books' main lines (market only, quarantined lines left out)",
    ),
    _c("fair_p_over", "DOUBLE", "fair P(over) at the consensus line: every book de-vigged, one distribution"),
    _c("n_books", "INTEGER", "books with a usable offer for the player and market"),
    _c("book_spread", "DOUBLE", "max - min of the books' main lines"),
    _c("consensus_book", "VARCHAR", "the book whose main line is closest to the consensus line"),
    _c("best_over_book", "VARCHAR", "book of the highest-EV over among the offers you can take"),
    _c("best_over_line", "DOUBLE", "its line"),
    _c("best_over_price", "DOUBLE", "its American odds"),
    _c("best_over_ev", "DOUBLE", "its expected profit per unit at the fair probability of its line"),
    _c("best_over_saving", "DOUBLE", "its EV minus the EV of the over at the consensus book"),
    _c("best_under_book", "VARCHAR", "book of the highest-EV under among the offers you can take"),
    _c("best_under_line", "DOUBLE", "its line"),
    _c("best_under_price", "DOUBLE", "its American odds"),
    _c("best_under_ev", "DOUBLE", "its expected profit per unit at the fair probability of its line"),
    _c("best_under_saving", "DOUBLE", "its EV minus the EV of the under at the consensus book"),
)
"""What the board adds to each row of the main table: its player-market's every offer, priced (not stored:
computed when the board is read, :mod:`nbaprops.pipeline.board`)."""

BOARD_MOVE_COLUMNS: tuple[Column, ...] = (
    _c(
        "line_move",
        "DOUBLE",
        "points the consensus line has moved in the bet's favour since it was made (negative: against it), from "
        "each book's latest snapshot before tip-off; NULL when the row is not a bet or has no snapshot",
    ),
    _c(
        "moved_against",
        "BOOLEAN",
        "the line has moved against the bet by more than the clv_moved_against setting (1.0 point by default)",
    ),
)
"""What the board adds after its market columns: how far the line has moved since each bet was made (not stored:
computed when the board is read, :func:`nbaprops.service.operations.board_of`)."""

STAGING_LOADS = Table(
    "staging_loads",
    (
        _c("staging_table", "VARCHAR", "the staging table loaded into", nullable=False),
        _c(
            "load_id",
            "VARCHAR",
            "the load's identity (batch, chunk and attempts): loaded once",
            nullable=False,
        ),
        _c("rows_loaded", "BIGINT", "rows of that load", nullable=False),
    ),
    primary_key=("staging_table", "load_id"),
    description="Staging loads done (the embedded warehouse): a repeated load of one chunk and attempt is a no-op.",
)

PICK_LOG = Table(
    "pick_log",
    (
        _c("game_date", "DATE", "local game date", nullable=False),
        _c("player_lookup", "VARCHAR", "normalised player name", nullable=False),
        _c("market", "VARCHAR", "points, rebounds, assists, threes or pra", nullable=False),
        _c("system_id", "VARCHAR", "the system whose bet this is", nullable=False),
        _c("side", "VARCHAR", "over or under", nullable=False),
        _c("bookmaker", "VARCHAR", "book of the offer taken", nullable=False),
        _c("line", "DOUBLE", "line of the offer taken", nullable=False),
        _c("price", "DOUBLE", "American odds of the side at that offer", nullable=False),
        _c(
            "fair_p",
            "DOUBLE",
            "the market's fair probability the side wins at that line (every book de-vigged)",
        ),
        _c(
            "p_win", "DOUBLE", "the system's calibrated probability carried to that line (what was staked on)"
        ),
        _c("ev", "DOUBLE", "expected profit per unit at that price with p_win"),
        _c("stake", "DOUBLE", "units staked", nullable=False),
        _c(
            "cut_by",
            "VARCHAR",
            "the cap that cut the Kelly stake: bet_cap, team_cap, game_cap, night_cap; NULL: none",
        ),
        _c(
            "sized_by",
            "VARCHAR",
            "kelly: staked alone on its game; joint: sized with the game's other bets (NULL: recorded before it was kept)",
        ),
        _c("sized_with", "INTEGER", "bets of its game sized together (1: alone)"),
        _c("bankroll", "DOUBLE", "the bankroll the stake was sized from"),
        _c("game_id", "VARCHAR", "NBA.com game id"),
        _c("team", "VARCHAR", "the player's team"),
        _c("player_name", "VARCHAR", "name as the prediction spells it"),
        _c("system_line", "DOUBLE", "the line the system priced its bet at (its own book's)"),
        _c("batch_id", "VARCHAR", "the batch whose prediction the pick came from"),
        _c("model_version", "VARCHAR", "the model behind the prediction"),
        _c("made_at", "TIMESTAMPTZ", "when the pick was made (recorded)", nullable=False),
        _c("opponent", "VARCHAR", "the player's opponent (finds the game's tip-off in the schedule)"),
        _c(
            "withdrawn_at",
            "TIMESTAMPTZ",
            "when the pick was withdrawn (its consensus line moved against it by more than clv_moved_against "
            "before tip-off, with withdraw_moved_against on); NULL: it stands",
        ),
        _c("withdrawn_reason", "VARCHAR", "why it was withdrawn, in words"),
        _c("withdrawn_line", "DOUBLE", "the consensus line it had moved to when withdrawn"),
    ),
    primary_key=("game_date", "player_lookup", "market", "system_id"),
    description="Every pick recorded by `nbaprops picks --record`: the offer taken and its fair probability when "
    "made, for closing-line value later. One row per player-market and system a night: the first record stands; "
    "a withdrawal only fills the withdrawn_ columns (a file from before them gains them when opened for writing).",
)

ALL_TABLES: tuple[Table, ...] = (
    BOX_SCORES,
    TEAMS,
    SCHEDULE,
    PROP_LINES,
    PLAYER_ALIASES,
    INGEST_LOG,
    PREDICTION_BATCHES,
    PREDICTION_REQUESTS,
    PREDICTIONS,
    PREDICTION_GRADES,
    INJURY_REPORTS,
    SOURCE_STATE,
    DAILY_RUNS,
    STAGING_LOADS,
    PROP_LINE_SNAPSHOTS,
    PICK_LOG,
)

STAGING_PREFIX = "staging_predictions_"


def staging_table_name(batch_id: str) -> str:
    """Name of a batch's staging table (batch ids are generated hex, so this is safe to quote)."""
    return STAGING_PREFIX + batch_id.replace("-", "_")


@dataclass(frozen=True)
class DriftPlan:
    """What to do to insert a staging table into the main table by name.

    Attributes:
        insert_columns: columns present on both sides, in main-table order; inserted by name.
        add_to_main: staging columns the main table lacks (with their staging types); added first.
        missing_in_staging: main columns the staging table lacks; they take their NULL/default.
        type_mismatches: columns whose types differ (cast on insert; reported).
    """

    insert_columns: tuple[str, ...]
    add_to_main: tuple[Column, ...]
    missing_in_staging: tuple[str, ...]
    type_mismatches: tuple[tuple[str, str, str], ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.add_to_main or self.missing_in_staging or self.type_mismatches)

    def as_dict(self) -> dict[str, object]:
        return {
            "added_to_main": [c.name for c in self.add_to_main],
            "missing_in_staging": list(self.missing_in_staging),
            "type_mismatches": [list(m) for m in self.type_mismatches],
        }


def plan_drift(
    staging: Mapping[str, str], main: Mapping[str, str], *, required: tuple[str, ...] = ()
) -> DriftPlan:
    """Compare staged columns with the main table's (both ``name -> type``); a pure function.

    The main table only ever gains columns: a staging column it lacks is added (nullable); a main column the
    staging table lacks is reported and left NULL, never fatal, unless it is in ``required``.

    Raises:
        ContractError: a required column is missing from staging.
    """
    missing_required = [name for name in required if name not in staging]
    if missing_required:
        raise ContractError(f"staging lacks required column(s) {', '.join(missing_required)}")
    insert = tuple(name for name in main if name in staging)
    add = tuple(
        Column(name, type_, True, "added by drift") for name, type_ in staging.items() if name not in main
    )
    missing = tuple(name for name in main if name not in staging)
    mismatches = tuple(
        (name, staging[name], main[name]) for name in insert if staging[name].upper() != main[name].upper()
    )
    return DriftPlan(insert + tuple(c.name for c in add), add, missing, mismatches)
