"""Line moves: re-predict only the players whose line moved (or who got a first line) since they were predicted.

:func:`refresh` compares each player's consensus line now (:func:`~nbaprops.ingest.lines.select_lines` as of
the refresh time) with the line his active predictions were made at. A move of at least ``refresh_threshold``
(a setting, 1.0 by default) or a first line makes him a mover; the movers get a batch of kind ``line_update``
with one request each, run through the same workers and consolidation as the daily batch, so consolidation
supersedes exactly their rows (the same keys) and every other row stays as it was. A player whose game has
started (tip-off known and past, or the date's evening cutoff past when it is not) is never re-predicted, and
neither is one whose rows were invalidated (ruled out, game postponed).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nbaprops.clock import Clock, SystemClock
from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_markets
from nbaprops.pipeline import ledger
from nbaprops.pipeline.coordinator import Coordinator, default_as_of, expected_players
from nbaprops.pipeline.slate import SlatePredictor, request_targets
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.systems.training import ModelBundle, ensure_bundles, systems_to_fit

log = logging.getLogger(__name__)

LINE_UPDATE = "line_update"


@dataclass(frozen=True)
class LineMove:
    """A player's consensus line now against the one his predictions were made at (``None``: he had none)."""

    player_lookup: str
    player_name: str
    market: str
    old_line: float | None
    new_line: float

    @property
    def move(self) -> float | None:
        return None if self.old_line is None else self.new_line - self.old_line

    def as_dict(self) -> dict[str, Any]:
        return {
            "player_lookup": self.player_lookup,
            "player_name": self.player_name,
            "market": self.market,
            "old_line": self.old_line,
            "new_line": self.new_line,
            "move": self.move,
            "first_line": self.old_line is None,
        }


@dataclass
class RefreshResult:
    game_date: date
    as_of: datetime
    threshold: float
    moves: list[LineMove]
    not_repredicted: list[dict[str, Any]] = field(default_factory=list)
    batch: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_date": self.game_date.isoformat(),
            "as_of": self.as_of.isoformat(),
            "threshold": self.threshold,
            "moves": [m.as_dict() for m in self.moves],
            "not_repredicted": self.not_repredicted,
            "batch": self.batch,
        }


def line_moves(
    storage: DuckDBStorage, game_date: date, markets: Sequence[str], *, as_of: datetime, threshold: float
) -> list[LineMove]:
    """Players whose consensus line (as of ``as_of``) moved by at least ``threshold`` or is their first."""
    from nbaprops.ingest.lines import select_lines

    lines = select_lines(storage, game_date, markets, as_of=as_of)
    with storage.session() as session:
        now_lines = session.temp_name("now_lines")
        session.register(now_lines, lines.select(["player_lookup", "market", "line"]))
        rows = session.execute(
            f"""WITH predicted AS (
                    SELECT player_lookup, market, arg_max(line_value, created_at) AS line,
                           arg_max(player_name, created_at) AS player_name
                    FROM player_prop_predictions WHERE game_date = ? AND is_active GROUP BY ALL
                ),
                names AS (
                    SELECT player_lookup, arg_max(player_name, posted_at) AS player_name
                    FROM prop_lines WHERE game_date = ? GROUP BY ALL
                )
                SELECT n.player_lookup, coalesce(p.player_name, nm.player_name, n.player_lookup), n.market,
                       p.line, n.line
                FROM {now_lines} n LEFT JOIN predicted p USING (player_lookup, market)
                LEFT JOIN names nm USING (player_lookup)
                WHERE p.line IS NULL OR abs(n.line - p.line) >= ? - 1e-9
                ORDER BY n.market, n.player_lookup""",
            [game_date, game_date, threshold],
        ).fetchall()
    return [LineMove(lookup, name, market, old, new) for lookup, name, market, old, new in rows]


def _started(commence: datetime | None, game_date: date, now: datetime) -> bool:
    """Has the game started? Unknown tip-off: past the date's evening cutoff (00:00 UTC after it) counts as started."""
    if commence is not None:
        return commence <= now
    return now >= datetime(game_date.year, game_date.month, game_date.day, tzinfo=UTC) + timedelta(days=1)


def _daily_choice(storage: DuckDBStorage, game_date: date) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Markets and systems of the newest consolidated batch of the date, which a refresh keeps."""
    row = storage.fetchone(
        "SELECT markets, systems FROM prediction_batches WHERE game_date = ? AND consolidated_at IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        [game_date],
    )
    return None if row is None else (tuple(row[0]), tuple(row[1]))


def refresh(
    storage: DuckDBStorage,
    settings: Settings,
    game_date: date,
    *,
    threshold: float | None = None,
    markets: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    clock: Clock | None = None,
    bundles: dict[str, ModelBundle] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> RefreshResult:
    """Re-predict the movers of ``game_date`` in a ``line_update`` batch (see the module docstring).

    Markets and systems default to those of the date's newest consolidated batch.

    Raises:
        InputError: a bad threshold, a batch of the date still running, or no game on the date.
    """
    from nbaprops.ingest import ensure_boxscores
    from nbaprops.ingest.lines import line_players, select_lines
    from nbaprops.ingest.schedule import games_for_date

    started_at = time.perf_counter()
    clock = clock or SystemClock()
    threshold = settings.refresh_threshold if threshold is None else threshold
    if not threshold > 0:
        raise InputError("--threshold must be positive")
    chosen = _daily_choice(storage, game_date)
    markets = validate_markets(markets or (chosen[0] if chosen else settings.markets))
    systems = tuple(systems or (chosen[1] if chosen else settings.systems))
    systems_to_fit(list(systems))
    ensure_boxscores(storage)
    running = ledger.running_batch(storage, game_date)
    if running is not None:
        raise InputError(
            f"batch {running} of {game_date} is still running; let it finish (`nbaprops predict "
            f"--date {game_date}` resumes it) before refreshing"
        )
    now = clock.now()
    as_of = default_as_of(game_date, clock)
    moves = line_moves(storage, game_date, markets, as_of=as_of, threshold=threshold)
    result = RefreshResult(game_date, as_of, threshold, moves)
    if not moves:
        return result
    games = games_for_date(storage, game_date)
    if games.num_rows == 0:
        raise InputError(f"no games on {game_date} (no schedule, lines or box scores for it)")
    tip = dict(
        zip(games.column("game_id").to_pylist(), games.column("commence_time").to_pylist(), strict=True)
    )
    invalidated = {
        r[0]: r[1]
        for r in storage.fetchall(
            """SELECT player_lookup, any_value(invalidation_reason) FROM player_prop_predictions
           WHERE game_date = ? AND invalidation_reason IN ('game_postponed', 'player_ruled_out') GROUP BY 1""",
            [game_date],
        )
    }
    # A player skipped by the date's last batch that requested him (no history, too few games) and still without
    # an active row would only be skipped again.
    skipped = {
        r[0]: r[1]
        for r in storage.fetchall(
            """SELECT r.player_lookup, arg_max(r.error_code, b.created_at) FROM prediction_requests r
           JOIN prediction_batches b USING (batch_id)
           WHERE b.game_date = ? AND NOT EXISTS (SELECT 1 FROM player_prop_predictions p WHERE p.game_date = b.game_date
                 AND p.player_lookup = r.player_lookup AND p.is_active)
           GROUP BY 1 HAVING arg_max(r.state, b.created_at) = 'skipped'""",
            [game_date],
        )
    }
    moved = {m.player_lookup for m in moves}
    requests = []
    for request in expected_players(
        storage,
        game_date,
        games,
        recent_days=settings.recent_days,
        line_players=line_players(storage, game_date, markets, as_of),
    ):
        if request.player_lookup not in moved:
            continue
        if request.player_lookup in invalidated:
            result.not_repredicted.append(
                {"player_lookup": request.player_lookup, "reason": invalidated[request.player_lookup]}
            )
        elif request.player_lookup in skipped:
            result.not_repredicted.append(
                {
                    "player_lookup": request.player_lookup,
                    "reason": f"skipped ({skipped[request.player_lookup]})",
                }
            )
        elif request.game_id is not None and _started(tip.get(request.game_id), game_date, now):
            result.not_repredicted.append({"player_lookup": request.player_lookup, "reason": "game_started"})
        else:
            requests.append(request)
    if not requests:
        return result
    if bundles is None:
        bundles = ensure_bundles(storage, settings, game_date, markets, systems, on_message=on_message)
    coordinator = Coordinator(storage, settings, clock=clock)
    start = coordinator.start(game_date, requests, markets=markets, systems=systems, as_of=as_of)
    storage.execute(
        "UPDATE prediction_batches SET kind = ? WHERE batch_id = ?", [LINE_UPDATE, start.batch_id]
    )
    info = ledger.get_batch(storage, start.batch_id)
    lines = select_lines(storage, game_date, markets, as_of=as_of)
    predictor = SlatePredictor(
        info, bundles, lines, settings, clock, targets=request_targets(requests, game_date)
    )
    coordinator.run(start.batch_id, predictor)
    summary = coordinator.finish(start.batch_id, started=started_at)
    stored = ledger.get_batch(storage, start.batch_id).summary or {}
    storage.execute(
        "UPDATE prediction_batches SET summary = ? WHERE batch_id = ?",
        [
            json.dumps(
                {**stored, "kind": LINE_UPDATE, "line_moves": [m.as_dict() for m in moves]}, default=str
            ),
            start.batch_id,
        ],
    )
    result.batch = {**summary.as_dict(), "kind": LINE_UPDATE}
    log.info("refresh %s: %d move(s), batch %s", game_date, len(moves), start.batch_id)
    return result


__all__ = ["LINE_UPDATE", "LineMove", "RefreshResult", "line_moves", "refresh"]
