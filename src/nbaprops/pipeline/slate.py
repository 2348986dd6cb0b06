"""The chunk predictor of a daily batch.

:class:`SlatePredictor` builds the features of the whole slate in one query the first time a worker asks
(a slate's features do not depend on how it is chunked, so a resumed batch gets the same rows), then for each
chunk decides who can be predicted (``skipped`` with a reason otherwise: ``injured_out`` first, for a player the
batch's injury report lists Out) and writes :func:`~nbaprops.pipeline.rows.prediction_rows` for every market and
system of the batch, with the report's status of each player (:mod:`nbaprops.pipeline.injuries`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from nbaprops.clock import Clock
from nbaprops.config import Settings
from nbaprops.features.builder import build_features
from nbaprops.features.market import with_availability
from nbaprops.pipeline.injuries import OUT, SKIP_CODE, TonightInjuries, injury_columns
from nbaprops.pipeline.ledger import BatchInfo, Lease, PlayerRequest, RequestOutcome
from nbaprops.pipeline.rows import prediction_rows
from nbaprops.pipeline.worker import ChunkPrediction
from nbaprops.storage.inputs import Inputs
from nbaprops.systems.training import ModelBundle


@dataclass
class SlatePredictor:
    """Predicts chunks of one batch (see the module docstring)."""

    batch: BatchInfo
    bundles: dict[str, ModelBundle]
    lines: pa.Table
    settings: Settings
    clock: Clock
    injuries: TonightInjuries | None = None
    targets: pa.Table | None = None
    _features: dict[str, int] | None = field(default=None, init=False)
    _table: pa.Table | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def _slate_features(self, storage: Inputs, leases: Sequence[Lease]) -> tuple[pa.Table, dict[str, int]]:
        """Features of the whole slate once (``targets`` given: the coordinator's in-process workers), else of
        this chunk's players (a queue worker knows only its chunk)."""
        with self._lock:
            if self.targets is None:
                return self._features_of(storage, request_targets(leases, self.batch.game_date))
            if self._table is None:
                self._table, self._features = self._features_of(storage, self.targets)
            assert self._features is not None
            return self._table, self._features

    def _features_of(self, storage: Inputs, targets: pa.Table) -> tuple[pa.Table, dict[str, int]]:
        out = self.injuries.out_players() if self.injuries is not None else None
        table = with_availability(
            storage, build_features(storage, targets, out_players=out), self.lines, self.batch.markets
        )
        return table, {k: i for i, k in enumerate(table.column("player_lookup").to_pylist())}

    def predict_chunk(self, storage: Inputs, leases: Sequence[Lease]) -> ChunkPrediction:
        table, index = self._slate_features(storage, leases)
        outcomes: list[RequestOutcome] = []
        done: list[Lease] = []
        rows: list[int] = []
        games = table.column("games_total").to_pylist()
        listed = self.injuries.statuses if self.injuries is not None else {}
        for lease in leases:
            i = index.get(lease.player_lookup)
            status, reason = listed.get(lease.player_lookup, (None, None))
            if status == OUT:
                assert self.injuries is not None and self.injuries.report_at is not None
                outcomes.append(
                    RequestOutcome(
                        lease.player_lookup,
                        lease.attempt,
                        "skipped",
                        SKIP_CODE,
                        f"listed Out on the injury report of {self.injuries.report_at.isoformat()}"
                        + (f": {reason}" if reason else ""),
                    )
                )
            elif lease.player_id is None or i is None or not games[i]:
                outcomes.append(
                    RequestOutcome(
                        lease.player_lookup,
                        lease.attempt,
                        "skipped",
                        "no_history",
                        "no box score before the game date",
                    )
                )
            elif lease.team is None or lease.opponent is None or lease.game_id is None:
                outcomes.append(
                    RequestOutcome(
                        lease.player_lookup,
                        lease.attempt,
                        "skipped",
                        "no_game",
                        "the player's team has no game on this date",
                    )
                )
            elif games[i] < self.settings.min_games:
                outcomes.append(
                    RequestOutcome(
                        lease.player_lookup,
                        lease.attempt,
                        "skipped",
                        "not_enough_games",
                        f"{games[i]:.0f} game(s) before the date",
                    )
                )
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
        tables = prediction_rows(
            bundle=self.bundles[market],
            systems=self.batch.systems,
            feats=feats,
            leases=leases,
            lines=self.lines,
            market=market,
            batch_id=self.batch.batch_id,
            game_date=self.batch.game_date,
            ev_margin=self.settings.ev_margin,
            now=self.clock.now(),
        )
        return [injury_columns(t, self.injuries) for t in tables]


__all__ = ["SlatePredictor"]


def request_targets(requests: Sequence[PlayerRequest] | Sequence[Lease], game_date: date) -> pa.Table:
    """The feature builder's targets (``player_id, player_lookup, game_date, team, opponent, is_home``) of
    requests with a player id, sorted by player."""
    known = sorted((r for r in requests if r.player_id is not None), key=lambda r: r.player_lookup)
    return pa.table(
        {
            "player_id": pa.array([r.player_id for r in known], pa.int64()),
            "player_lookup": pa.array([r.player_lookup for r in known], pa.string()),
            "game_date": pa.array([game_date] * len(known), pa.date32()),
            "team": pa.array([r.team for r in known], pa.string()),
            "opponent": pa.array([r.opponent for r in known], pa.string()),
            "is_home": pa.array([r.is_home for r in known], pa.bool_()),
        }
    )
