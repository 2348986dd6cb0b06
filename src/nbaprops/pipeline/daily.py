"""The daily run: one batch for one game date, from schedule to consolidated predictions.

:func:`run_batch` resolves the date's games (schedule ∪ lines ∪ past box scores), the expected players
(recently active players of those teams, plus anyone with a line or listed on the injury report), reads the
injury report published by the batch's as-of time (:mod:`nbaprops.pipeline.injuries`: Out players are skipped
``injured_out``, the others flagged), loads the newest model artifacts trained only on games before the date
(training them first when there are none or they are older than ``model_max_age_days``), starts or resumes the
batch, runs the in-process workers with :class:`~nbaprops.pipeline.slate.SlatePredictor` and consolidates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_markets
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import BatchSummary, Coordinator, default_as_of, expected_players
from nbaprops.pipeline.injuries import SKIP_CODE, tonight_injuries, with_line_players
from nbaprops.pipeline.slate import SlatePredictor
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.training import ModelBundle, ensure_bundles, model_info, systems_to_fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRun:
    summary: BatchSummary
    games: int
    games_source: dict[str, int]
    lines_used: int
    models: dict[str, dict[str, Any]]
    injuries: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary.as_dict(), "games": self.games, "games_source": self.games_source,
                "lines_used": self.lines_used, "models": self.models, "injuries": self.injuries}


def run_batch(
    storage: DuckDBStorage,
    settings: Settings,
    game_date: date,
    *,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    force: bool = False,
    as_of: datetime | None = None,
    train_days: int | None = None,
    clock: Clock | None = None,
    on_message: Callable[[str], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    bundles: dict[str, ModelBundle] | None = None,
    stop: threading.Event | None = None,
) -> BatchRun:
    """Run (or resume) the batch of ``game_date`` end to end and return its summary.

    Raises:
        InputError: no game is known for the date (nothing is stored or trained then), or no player is expected.
    """
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import line_players, select_lines
    from nbaprops.ingest.schedule import games_for_date

    clock = clock or SystemClock()
    started = time.perf_counter()
    markets = validate_markets(markets or settings.markets)
    systems = tuple(systems or settings.systems)
    systems_to_fit(list(systems))  # validates ids
    ensure_boxscores(storage)
    coordinator = Coordinator(storage, settings, clock=clock)
    running = None if force else coordinator.running(game_date)
    if running is not None:
        markets, systems, as_of = running.markets, running.systems, running.as_of
    as_of = as_of or default_as_of(game_date, clock)
    games = games_for_date(storage, game_date)
    if games.num_rows == 0:
        raise InputError(f"no games on {game_date} (no schedule, lines or box scores for it)")
    sources = games.column("source").to_pylist()
    lines = select_lines(storage, game_date, markets, as_of=as_of)
    injuries = tonight_injuries(storage, game_date, as_of)
    requests = expected_players(storage, game_date, games, recent_days=settings.recent_days,
                                line_players=with_line_players(line_players(storage, game_date, markets, as_of),
                                                               injuries.listed_players(games)))
    if not requests and running is None:
        raise InputError(
            f"{games.num_rows} game(s) on {game_date} but no player of those teams played in the "
            f"{settings.recent_days} days before it (opening night?); raise recent_days "
            f"(--recent-days or NBAPROPS_RECENT_DAYS) or ingest lines for the date"
        )
    if bundles is None:
        bundles = ensure_bundles(storage, settings, game_date, markets, systems, train_days=train_days,
                                 on_message=on_message)
    start = coordinator.start(game_date, requests, markets=markets, systems=systems, as_of=as_of, force=force)
    info = ledger.get_batch(storage, start.batch_id)
    if on_start:
        on_start(start.batch_id, sum(ledger.progress(storage, start.batch_id).values()))
    predictor = SlatePredictor(info, bundles, lines, settings, clock, injuries)
    coordinator.run(start.batch_id, predictor, on_progress=on_progress, stop=stop)
    summary = coordinator.finish(start.batch_id, started=started)
    summary.resumed = not start.created
    skipped_out = sum(1 for m in summary.missing if m.get("error_code") == SKIP_CODE)
    return BatchRun(summary, games.num_rows, {s: sources.count(s) for s in dict.fromkeys(sources)}, lines.num_rows,
                    {m: model_info(b, game_date) for m, b in bundles.items()}, injuries.summary(skipped_out))


__all__ = ["BatchRun", "run_batch"]
