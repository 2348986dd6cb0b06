"""Settings: one object, loaded once at the entry point.

Precedence: explicit flag > ``NBAPROPS_*`` environment variable > TOML file > default. This is the only
module that reads the environment. The file is ``nbaprops.toml`` in the working directory, or the path in
``NBAPROPS_CONFIG``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nbaprops.errors import ConfigError, InputError
from nbaprops.markets import validate_markets

DEFAULT_DB = Path("var") / "nbaprops.duckdb"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every tunable of nbaprops with its default.

    Attributes:
        db_path: the DuckDB file holding box scores, lines, the ledger and predictions.
        data_dir: where model artifacts are stored (default: beside the database, ``artifacts/``).
        markets: markets predicted by default.
        systems: prediction systems run by default, by ``system_id``.
        workers: in-process worker threads per batch.
        chunk_size: requests a worker claims at once (one feature query per chunk).
        lease_seconds: how long a claim holds a request before the sweeper may reclaim it.
        lease_grace_seconds: extra time past a lease before it counts as stalled.
        lock_wait_seconds: how long opening the database waits for a lock held briefly by another process (a
            second terminal's read) before it fails; a database held by a running nbaprops command fails at once.
        max_attempts: claims of one request before it ends ``failed``.
        batch_deadline_minutes: past this a batch ends ``partial`` with the missing players listed.
        staging_ttl_hours: the janitor drops staging older than this.
        recent_days: players who played for a team within this many days are expected to play.
        min_games: fewer prior games than this ends a request ``skipped`` (``not_enough_games``).
        ev_margin: expected value per unit staked a bet must clear to be recommended.
        train_days: days of games before the date a model trains on.
        model_max_age_days: a model trained through more than this many days before the date is retrained
            first (the walk-forward backtest retrains every 7 days too).
        api_keys: keys the service accepts in the ``X-API-Key`` header (``NBAPROPS_API_KEYS``, comma-separated;
            several for rotation). With any key set, every write endpoint requires one; with none, the service
            only listens on loopback. Never shown in a repr or a log.
        read_auth: the service's read endpoints (and dashboard) require a key too.
        host: address ``nbaprops serve`` listens on.
        port: port ``nbaprops serve`` listens on.
        upload_limit_mb: largest request body the service accepts (an upload beyond it gets 413).
        poll_interval_seconds: a client reading the same ``/v1`` URL again sooner than this gets 429 with
            ``Retry-After`` (a client is its API key, else its address); 0 turns the limit off.
        reports_dir: backtest HTML reports the dashboard links to (default: beside the database, ``reports/``).
        refresh_threshold: ``refresh`` re-predicts a player whose consensus line moved by at least this much.
        kelly_fraction: picks stake this fraction of the full Kelly stake.
        max_bet_fraction: no pick stakes more than this fraction of the bankroll.
        max_night_fraction: the picks of one night stake at most this fraction of the bankroll together.
        max_team_fraction: the picks of one night on one team's players stake at most this fraction of the
            bankroll together (their outcomes move together).
        max_game_fraction: the picks of one night on one game (both teams) stake at most this fraction together.
        bankroll: the bankroll picks are staked from, in units.
        webhook_url: where alerts are posted (Slack-compatible JSON); none: no alerts.
        webhook_timeout_seconds: per attempt.
        webhook_attempts: attempts per alert before it is given up (logged, never raised).
        odds_api_key: The Odds API key (``NBAPROPS_ODDS_API_KEY``); ``fetch lines`` needs it.
        odds_api_url: base URL of The Odds API (tests point it at a local stand-in server).
        odds_regions: bookmaker regions asked of The Odds API (comma separated: us, us2, uk, eu, au); every
            book they return is kept.
        odds_alternates: ``fetch lines`` asks for the alternate player-prop markets too (``player_points_alternate``
            …): more lines per book, twice the quota.
        clv_moved_against: a bet whose consensus line has moved against it by more than this many points since it
            was made is flagged (``moved_against`` in ``predictions --json`` and on each pick).
        withdraw_moved_against: a ``picks --record`` run withdraws each recorded pick of its system and date that
            has not started and whose consensus line has moved against it by more than ``clv_moved_against``
            (``pick_log``'s ``withdrawn_`` columns, one ``pick_withdrawn`` alert), and no run stakes such a pick;
            off (default): they are only flagged.
        books: the books this user can bet at (``NBAPROPS_BOOKS``, comma-separated, any case; ``--books``
            overrides it). The board's best offers and the ladder's eligible offers come from these only; every
            book still informs the fair price. Empty: every book.
        nba_stats_url: base URL of NBA.com's stats API (``nba_api``'s endpoints live under it).
        injury_report_url: folder URL of the official injury report PDFs.
        http_timeout_seconds: timeout of one HTTP request to a live source.
        http_retries: retries of a request answered 429/5xx or timed out (with exponential backoff).
        http_backoff_seconds: the first backoff; it doubles each retry (a numeric Retry-After wins, capped).
        backend: ``duckdb`` (embedded, default: ledger, warehouse and workers on the one file) or ``gcp``
            (Firestore ledger, BigQuery warehouse, Pub/Sub work queue; docs/cloud.md). On ``gcp`` the file at
            ``db_path`` still holds the inputs the coordinator plans from (ingest and fetch write there) and
            ``workers`` is the number of queue workers inside ``predict`` (0: only ``nbaprops worker``s).
        gcp_project: the Google Cloud project of the three services.
        bigquery_dataset: the BigQuery dataset holding inputs, staging and the predictions table.
        bigquery_endpoint: a BigQuery API endpoint other than Google's (an emulator, e.g.
            ``http://127.0.0.1:9050``); Firestore and Pub/Sub read ``FIRESTORE_EMULATOR_HOST`` /
            ``PUBSUB_EMULATOR_HOST`` themselves.
        bigquery_read_endpoint: ``host:port`` of a BigQuery Storage Read API other than Google's (an emulator's
            gRPC port, plaintext). Workers read their history through the Read API — on Google's BigQuery
            always, against an emulator only when this is set; otherwise through queries (REST pages, ~25×
            slower).
        firestore_prefix: prefix of the ledger's Firestore collections (``{prefix}_batches``).
        pubsub_topic: the work topic; its pull subscription is ``{topic}-workers`` and the dead-letter topic
            ``{topic}-dead-letter``.
        max_delivery_attempts: deliveries of one work message before it is dead-lettered (Pub/Sub: 5–100; 10,
            with the retry policy, spread a message over about 20 minutes).
        as_of: replay the day commands as of this instant (``--as-of``, ``NBAPROPS_AS_OF``; ISO 8601 with a
            UTC offset, e.g. ``2024-03-12T17:00:00-05:00``): data posted after it stays invisible, and the
            clock runs on from it. None: now.
    """

    db_path: Path = DEFAULT_DB
    data_dir: Path | None = None
    markets: tuple[str, ...] = ("points",)
    systems: tuple[str, ...] = ("moving_average", "matchup", "similarity", "gbm", "ensemble")
    workers: int = 2
    chunk_size: int = 64
    lease_seconds: float = 300.0
    lease_grace_seconds: float = 30.0
    lock_wait_seconds: float = 10.0
    max_attempts: int = 3
    batch_deadline_minutes: float = 60.0
    staging_ttl_hours: float = 24.0
    recent_days: int = 21
    min_games: int = 3
    ev_margin: float = 0.02
    train_days: int = 730
    model_max_age_days: int = 7
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    read_auth: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    upload_limit_mb: float = 64.0
    poll_interval_seconds: float = 0.5
    reports_dir: Path | None = None
    refresh_threshold: float = 1.0
    kelly_fraction: float = 0.25
    max_bet_fraction: float = 0.02
    max_night_fraction: float = 0.10
    max_team_fraction: float = 0.03
    max_game_fraction: float = 0.04
    bankroll: float = 100.0
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 5.0
    webhook_attempts: int = 3
    odds_api_key: str | None = field(default=None, repr=False)
    odds_api_url: str = "https://api.the-odds-api.com"
    odds_regions: str = "us"
    odds_alternates: bool = True
    clv_moved_against: float = 1.0
    withdraw_moved_against: bool = False
    books: tuple[str, ...] = ()
    nba_stats_url: str = "https://stats.nba.com/stats"
    injury_report_url: str = "https://ak-static.cms.nba.com/referee/injury"
    http_timeout_seconds: float = 30.0
    http_retries: int = 4
    http_backoff_seconds: float = 1.0
    backend: str = "duckdb"
    gcp_project: str = "nbaprops"
    bigquery_dataset: str = "nbaprops"
    bigquery_endpoint: str | None = None
    bigquery_read_endpoint: str | None = None
    firestore_prefix: str = "nbaprops"
    pubsub_topic: str = "nbaprops-work"
    max_delivery_attempts: int = 10
    as_of: datetime | None = None

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.db_path.parent / "artifacts"

    @property
    def reports_path(self) -> Path:
        return self.reports_dir if self.reports_dir is not None else self.db_path.parent / "reports"

    @property
    def landing_dir(self) -> Path:
        """Where fetched records are written as files before they are ingested (kept: what was fetched when)."""
        return self.db_path.parent / "landing"

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


MIN_API_KEY_LENGTH = 16  # a key anyone can guess is no key


def _instant(raw: Any) -> datetime:
    """An aware instant from ISO 8601 text (or a datetime); a time without a UTC offset is refused."""
    value = (
        raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    )
    if value.tzinfo is None:
        raise ConfigError(
            f"setting 'as_of': {str(raw)!r} has no UTC offset; write one, e.g. 2024-03-12T17:00:00-05:00 "
            "(US Eastern) or 2024-03-12T22:00:00Z"
        )
    return value


def _coerce(name: str, raw: Any, like: Any) -> Any:
    try:
        if name in ("markets", "systems", "api_keys", "books"):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(item.strip() for item in items if item.strip())
        if name in ("db_path", "data_dir", "reports_dir"):
            return Path(raw)
        if name == "as_of":
            return _instant(raw)
        if isinstance(like, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot read {raw!r} ({exc})") from exc
    return raw


def book_list(books: str | None) -> list[str] | None:
    """``--books a,b`` / ``books=a,b`` as a list (None when absent or empty: the ``books`` setting applies)."""
    items = [b.strip() for b in (books or "").split(",") if b.strip()]
    return items or None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build the settings object: flag > ``NBAPROPS_*`` env > file > default.

    Args:
        overrides: values given as flags; ``None`` values mean "not given".
        environ: the environment to read (default ``os.environ``).
        config_file: TOML file to read (default ``NBAPROPS_CONFIG`` or ``./nbaprops.toml`` if present).

    Raises:
        ConfigError: an unknown key, an unreadable file or a value of the wrong type.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or (
        Path(env["NBAPROPS_CONFIG"]) if "NBAPROPS_CONFIG" in env else Path("nbaprops.toml")
    )
    if path.exists():
        try:
            from_file = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for key, raw in from_file.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, raw, getattr(defaults, key))
    elif config_file is not None or "NBAPROPS_CONFIG" in env:
        raise ConfigError(f"config file {path} does not exist (NBAPROPS_CONFIG or the config_file argument)")

    for key in known:
        env_key = f"NBAPROPS_{key.upper()}"
        if env_key in env:
            values[key] = _coerce(key, env[env_key], getattr(defaults, key))

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, raw, getattr(defaults, key))

    settings = dataclasses.replace(defaults, **values)
    try:
        settings = dataclasses.replace(settings, markets=validate_markets(settings.markets))
    except InputError as exc:
        if (overrides or {}).get("markets") is not None:
            raise  # the user's own flag: bad input
        raise ConfigError(f"setting 'markets' (NBAPROPS_MARKETS or the config file): {exc}") from None
    # the backend's name and whether it can run with no local worker are the registry's to say
    # (nbaprops.storage.registry.open_backend), so a new backend is not named here
    if settings.workers < 0 or settings.chunk_size < 1 or settings.max_attempts < 1:
        raise ConfigError(
            "workers, chunk_size and max_attempts must be at least 1 (workers 0 only on a backend whose "
            "workers run elsewhere, as gcp's)"
        )
    if not 5 <= settings.max_delivery_attempts <= 100:
        raise ConfigError("max_delivery_attempts must be 5-100 (Pub/Sub's range)")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is not a TCP port (0-65535)")
    short = [i + 1 for i, key in enumerate(settings.api_keys) if len(key) < MIN_API_KEY_LENGTH]
    if short:
        raise ConfigError(
            f"api_keys: key {', '.join(map(str, short))} is shorter than {MIN_API_KEY_LENGTH} characters; "
            f"use long random keys (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    if settings.upload_limit_mb <= 0:
        raise ConfigError("upload_limit_mb must be positive")
    if not 0 <= settings.poll_interval_seconds <= 3600:
        raise ConfigError("poll_interval_seconds must be 0-3600 (0: no limit)")
    if settings.webhook_attempts < 1 or settings.webhook_timeout_seconds <= 0:
        raise ConfigError("webhook_attempts must be at least 1 and webhook_timeout_seconds positive")
    if (
        not 0 < settings.kelly_fraction <= 1
        or not 0 < settings.max_bet_fraction <= settings.max_night_fraction <= 1
    ):
        raise ConfigError("need 0 < kelly_fraction <= 1 and 0 < max_bet_fraction <= max_night_fraction <= 1")
    if not (0 < settings.max_team_fraction <= 1 and 0 < settings.max_game_fraction <= 1):
        raise ConfigError("need 0 < max_team_fraction <= 1 and 0 < max_game_fraction <= 1")
    if settings.refresh_threshold <= 0 or settings.bankroll <= 0:
        raise ConfigError("refresh_threshold and bankroll must be positive")
    if settings.clv_moved_against <= 0:
        raise ConfigError("clv_moved_against must be a positive number of points")
    if not re.fullmatch(r"[a-z0-9]+(,[a-z0-9]+)*", settings.odds_regions):
        raise ConfigError(
            "odds_regions must be region keys separated by commas, e.g. us or us,us2,eu (lowercase, no spaces)"
        )
    if settings.model_max_age_days < 0 or settings.http_retries < 0 or settings.http_timeout_seconds <= 0:
        raise ConfigError("model_max_age_days and http_retries must be >= 0, http_timeout_seconds > 0")
    return settings
