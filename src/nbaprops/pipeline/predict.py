"""The daily job: one batch for one game date, from schedule to consolidated predictions.

``run_batch`` resolves the date's games (schedule > lines > past box scores), the expected players
(recently active players of those teams, plus anyone with a line), loads the newest model artifacts trained
only on games before the date (training them first when there are none), starts or resumes the batch, runs
the in-process workers with :class:`SlatePredictor` and consolidates.

:class:`SlatePredictor` builds the features of the whole slate in one query the first time a worker asks
(a slate's features do not depend on how it is chunked, so a resumed batch gets the same rows), then for each
chunk predicts every market and system, turns value and spread into P(over) at the consensus line posted by
the batch's ``as_of``, calibrates it, and recommends by expected value at the offered price.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import ConfigError
from nbaprops.features.builder import FEATURE_VERSION, build_features
from nbaprops.features.columns import MARKET_STAT
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import BatchSummary, Coordinator, default_as_of, expected_players
from nbaprops.pipeline.ledger import BatchInfo, Lease, RequestOutcome
from nbaprops.pipeline.rows import staging_rows
from nbaprops.pipeline.worker import ChunkPrediction
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.betting import recommend
from nbaprops.systems.calibration import standardized_edge
from nbaprops.systems.spread import p_over
from nbaprops.systems.training import ModelBundle, load_latest, save_bundle, systems_to_fit, train_market

log = logging.getLogger(__name__)

MARKETS = tuple(MARKET_STAT)


def check_markets(markets: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in markets if m not in MARKETS]
    if unknown or not markets:
        raise ConfigError(f"unknown market(s) {', '.join(unknown) or '(none)'}; known: {', '.join(MARKETS)}")
    return tuple(dict.fromkeys(markets))


@dataclass
class SlatePredictor:
    """Predicts chunks of one batch (see the module docstring)."""

    batch: BatchInfo
    bundles: dict[str, ModelBundle]
    lines: pa.Table
    settings: Settings
    clock: Clock
    _features: dict[str, int] | None = field(default=None, init=False)
    _table: pa.Table | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _slate_features(self, storage: DuckDBStorage) -> tuple[pa.Table, dict[str, int]]:
        with self._lock:
            if self._table is None:
                targets = storage.arrow(
                    """SELECT player_id, player_lookup, CAST(? AS DATE) AS game_date, team, opponent, is_home
                       FROM prediction_requests WHERE batch_id = ? AND player_id IS NOT NULL
                       ORDER BY player_lookup""",
                    [self.batch.game_date, self.batch.batch_id],
                )
                self._table = build_features(storage, targets)
                self._features = {k: i for i, k in enumerate(self._table.column("player_lookup").to_pylist())}
            assert self._features is not None
            return self._table, self._features

    def predict_chunk(self, storage: DuckDBStorage, leases: Sequence[Lease]) -> ChunkPrediction:
        table, index = self._slate_features(storage)
        outcomes: list[RequestOutcome] = []
        done: list[Lease] = []
        rows: list[int] = []
        games = table.column("games_total").to_pylist()
        for lease in leases:
            i = index.get(lease.player_lookup)
            if lease.player_id is None or i is None or not games[i]:
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "skipped", "no_history",
                                               "no box score before the game date"))
            elif lease.team is None or lease.opponent is None or lease.game_id is None:
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "skipped", "no_game",
                                               "the player's team has no game on this date"))
            elif games[i] < self.settings.min_games:
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "skipped", "not_enough_games",
                                               f"{games[i]:.0f} game(s) before the date"))
            else:
                done.append(lease)
                rows.append(i)
                outcomes.append(RequestOutcome(lease.player_lookup, lease.attempt, "done"))
        if not done:
            return ChunkPrediction(None, tuple(outcomes))
        feats = table.take(pa.array(rows, pa.int64()))
        parts = [self._market_rows(feats, done, market) for market in self.batch.markets]
        return ChunkPrediction(pa.concat_tables([p for part in parts for p in part]), tuple(outcomes))

    def _market_rows(self, feats: pa.Table, leases: list[Lease], market: str) -> list[pa.Table]:
        return prediction_rows(
            bundle=self.bundles[market], systems=self.batch.systems, feats=feats, leases=leases, lines=self.lines,
            market=market, batch_id=self.batch.batch_id, game_date=self.batch.game_date,
            ev_margin=self.settings.ev_margin, now=self.clock.now(),
        )


def lines_for(lines: pa.Table, market: str, lookups: list[str]) -> dict[str, Any]:
    """The consensus line, prices and book of each player (NaN / None without a line)."""
    n = len(lookups)
    out: dict[str, Any] = {"line": np.full(n, np.nan), "over": np.full(n, np.nan), "under": np.full(n, np.nan),
                           "book": [None] * n}
    if lines.num_rows == 0:
        return out
    sel = {lk: i for i, (lk, m) in enumerate(zip(lines.column("player_lookup").to_pylist(),
                                                 lines.column("market").to_pylist(), strict=True)) if m == market}
    cols = {k: lines.column(c).to_pylist() for k, c in
            (("line", "book_line"), ("over", "over_price"), ("under", "under_price"), ("book", "bookmaker"))}
    for k, lk in enumerate(lookups):
        j = sel.get(lk)
        if j is None:
            continue
        for key in ("line", "over", "under"):
            value = cols[key][j]
            out[key][k] = np.nan if value is None else value
        out["book"][k] = cols["book"][j]
    return out


def prediction_rows(
    *,
    bundle: ModelBundle,
    systems: Sequence[str],
    feats: pa.Table,
    leases: Sequence[Lease],
    lines: pa.Table,
    market: str,
    batch_id: str,
    game_date: date,
    ev_margin: float,
    now: datetime,
) -> list[pa.Table]:
    """Staging rows of one market for players of one date: value, spread, P(over), calibration, recommendation.

    The daily batch and the backtest both call this, so what is graded is what the batch would have written.
    """
    line = lines_for(lines, market, [lease.player_lookup for lease in leases])
    quality = feats.column("feature_quality_score").to_numpy(zero_copy_only=False)
    count = feats.column("feature_count").to_numpy(zero_copy_only=False)
    early = feats.column("early_season_flag").to_pylist()
    tables = []
    for sid in systems:
        out = bundle.systems[sid].predict(feats)
        p_raw = p_over(out.predicted_value, out.predicted_std, line["line"])
        cal = bundle.calibrators[sid]
        p_cal = cal.transform(standardized_edge(out.predicted_value, out.predicted_std, line["line"]), p_raw)
        recs = recommend(p_raw, p_cal, line["line"], line["over"], line["under"], predicted=out.predicted_value,
                         margin=ev_margin, allow_bets=cal.allows_bets)
        tables.append(staging_rows(
            batch_id=batch_id, game_date=game_date, leases=leases, market=market,
            system_id=sid, predicted_value=out.predicted_value, predicted_std=out.predicted_std,
            model_version=out.model_version, feature_version=FEATURE_VERSION, now=now,
            line_value=line["line"], sportsbook=line["book"], over_price=line["over"], under_price=line["under"],
            p_over_raw=p_raw, p_over=p_cal,
            recommendation=recs.recommendation,
            confidence_raw=recs.confidence_raw, confidence_score=recs.confidence_score,
            calibration_method=cal.method, expected_value=recs.expected_value,
            feature_quality_score=quality, feature_count=count, early_season_flag=early,
        ))
    return tables


def line_players(storage: DuckDBStorage, game_date: date, markets: Sequence[str], as_of: datetime) -> pa.Table:
    """Players with a line in ``markets`` on ``game_date`` posted by ``as_of`` (their latest row's teams)."""
    return storage.arrow(
        """SELECT DISTINCT ON (player_lookup) player_lookup, player_name, team, opponent, home_team, away_team
           FROM prop_lines WHERE game_date = ? AND list_contains(?, market)
             AND (posted_at IS NULL OR posted_at <= ?) ORDER BY player_lookup, posted_at DESC""",
        [game_date, list(markets), as_of],
    )


def ensure_bundles(
    storage: DuckDBStorage, settings: Settings, game_date: date, markets: Sequence[str], systems: Sequence[str],
    *, train_days: int, on_message: Callable[[str], None] | None = None,
) -> dict[str, ModelBundle]:
    """The newest artifacts per market trained only on games before ``game_date``; trains them when missing."""
    bundles = {}
    for market in markets:
        bundle = load_latest(settings.artifacts_dir, market, game_date, system_ids=list(systems))
        if bundle is None:
            if on_message:
                on_message(f"No {market} model trained before {game_date} for {', '.join(systems)}: "
                           f"training on the {train_days} days before it (once; stored in {settings.artifacts_dir}).")
            bundle = train_market(storage, market, game_date, system_ids=systems_to_fit(list(systems)),
                                  train_days=train_days)
            save_bundle(bundle, settings.artifacts_dir)
        bundles[market] = bundle
    return bundles


@dataclass(frozen=True)
class BatchRun:
    summary: BatchSummary
    games: int
    games_source: str
    lines_used: int
    models: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary.as_dict(), "games": self.games, "games_source": self.games_source,
                "lines_used": self.lines_used, "models": self.models}


def run_batch(
    storage: DuckDBStorage,
    settings: Settings,
    game_date: date,
    *,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    force: bool = False,
    as_of: datetime | None = None,
    train_days: int = 730,
    clock: Clock | None = None,
    on_message: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    bundles: dict[str, ModelBundle] | None = None,
) -> BatchRun:
    """Run (or resume) the batch of ``game_date`` end to end and return its summary."""
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import select_lines
    from nbaprops.ingest.schedule import games_for_date

    clock = clock or SystemClock()
    started = time.perf_counter()
    markets = check_markets(tuple(markets or settings.markets))
    systems = tuple(systems or settings.systems)
    systems_to_fit(list(systems))  # validates ids
    ensure_boxscores(storage)
    coordinator = Coordinator(storage, settings, clock=clock)
    running = ledger.running_batch(storage, game_date)
    if running is not None and not force:
        info = ledger.get_batch(storage, running)
        markets, systems, as_of = info.markets, info.systems, info.as_of
    as_of = as_of or default_as_of(game_date, clock)
    games = games_for_date(storage, game_date)
    source = games.column("source")[0].as_py() if games.num_rows else "none"
    lines = select_lines(storage, game_date, markets, as_of=as_of)
    players_with_lines = line_players(storage, game_date, markets, as_of)
    if bundles is None:
        bundles = ensure_bundles(storage, settings, game_date, markets, systems, train_days=train_days,
                                 on_message=on_message)
    requests = expected_players(storage, game_date, games, recent_days=settings.recent_days,
                                line_players=players_with_lines)
    start = coordinator.start(game_date, requests, markets=markets, systems=systems, as_of=as_of, force=force)
    info = ledger.get_batch(storage, start.batch_id)
    if on_start:
        on_start(sum(ledger.progress(storage, start.batch_id).values()))
    predictor = SlatePredictor(info, bundles, lines, settings, clock)
    coordinator.run(start.batch_id, predictor, on_progress=on_progress)
    summary = coordinator.finish(start.batch_id, started=started)
    return BatchRun(summary, games.num_rows, source, lines.num_rows,
                    {m: str(b.path or b.meta.get("digest")) for m, b in bundles.items()})


__all__ = ["BatchRun", "SlatePredictor", "ensure_bundles", "line_players", "prediction_rows", "run_batch"]
