"""Invalidation from the stored injury-report snapshots (``injury_reports``) and ``schedule.status``."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from nbaprops.clock import ManualClock
from nbaprops.pipeline.invalidate import invalidate, postponed_games, ruled_out
from nbaprops.pipeline.ledger import Lease
from nbaprops.pipeline.rows import staging_rows
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2025, 2, 12)
PREDICTED_AT = datetime(2025, 2, 12, 18, 0, tzinfo=UTC)
PLAYERS = (("alpha", "BOS", "NYK", "g1"), ("bravo", "NYK", "BOS", "g1"), ("charlie", "LAL", "GSW", "g2"))


@pytest.fixture
def predicted(storage: DuckDBStorage) -> DuckDBStorage:
    """Three players of two games with active rows written at 18:00 UTC."""
    leases = [
        Lease("b1", lookup, 1, "w", lookup.title(), i, team, opp, game, team == "BOS")
        for i, (lookup, team, opp, game) in enumerate(PLAYERS)
    ]
    rows = staging_rows(
        batch_id="b1",
        game_date=DAY,
        leases=leases,
        market="points",
        system_id="moving_average",
        predicted_value=np.array([20.0, 15.0, 10.0]),
        model_version="t",
        feature_version="t",
        now=PREDICTED_AT,
    )
    with storage.session() as session:
        session.register("__rows", rows)
        session.execute("INSERT INTO player_prop_predictions BY NAME SELECT * FROM __rows")
    return storage


def _report(storage: DuckDBStorage, hour: int, *listed: tuple[str, str]) -> None:
    """One published report (a snapshot listing every player it names) at ``hour``:00 UTC."""
    for lookup, status in listed:
        storage.execute(
            "INSERT INTO injury_reports (report_at, game_date, team, player_name, player_lookup, status, reason) "
            "VALUES (?, ?, 'X', ?, ?, ?, 'Injury')",
            [datetime(2025, 2, 12, hour, 0, tzinfo=UTC), DAY, lookup.title(), lookup, status],
        )


def _active(storage: DuckDBStorage) -> dict[str, tuple[bool, str | None]]:
    return {
        r[0]: (r[1], r[2])
        for r in storage.fetchall(
            "SELECT player_lookup, is_active, invalidation_reason FROM player_prop_predictions ORDER BY 1"
        )
    }


def test_without_reports_or_postponements_nothing_is_invalidated(predicted: DuckDBStorage) -> None:
    assert ruled_out(predicted, DAY, PREDICTED_AT) == [] and postponed_games(predicted, DAY) == []
    assert invalidate(predicted, DAY).rows_invalidated == {"game_postponed": 0, "player_ruled_out": 0}


def test_the_newest_report_after_the_prediction_decides(predicted: DuckDBStorage) -> None:
    _report(predicted, 17, ("alpha", "Out"))  # before the predictions (18:00)
    at = datetime(2025, 2, 12, 18, 30, tzinfo=UTC)
    assert [o.player_lookup for o in ruled_out(predicted, DAY, at)] == ["alpha"]
    assert invalidate(predicted, DAY, clock=ManualClock(at)).rows_invalidated["player_ruled_out"] == 0
    _report(predicted, 19, ("bravo", "Out"), ("charlie", "Out"))
    _report(
        predicted, 21, ("bravo", "Out"), ("charlie", "Available")
    )  # charlie plays after all; alpha unlisted
    result = invalidate(predicted, DAY, clock=ManualClock(datetime(2025, 2, 12, 22, tzinfo=UTC)))
    assert result.rows_invalidated == {"game_postponed": 0, "player_ruled_out": 1}
    assert _active(predicted) == {
        "alpha": (True, None),
        "bravo": (False, "player_ruled_out"),
        "charlie": (True, None),
    }
    assert invalidate(predicted, DAY).rows_invalidated == {"game_postponed": 0, "player_ruled_out": 0}


@pytest.mark.parametrize("status", ["postponed", "cancelled"])
def test_a_postponed_game_invalidates_both_teams_rows(predicted: DuckDBStorage, status: str) -> None:
    predicted.execute(
        "INSERT INTO schedule VALUES ('g1', ?, 'BOS', 'NYK', NULL, 'f', ?), "
        "('g2', ?, 'LAL', 'GSW', NULL, 'f', 'scheduled')",
        [DAY, status, DAY],
    )
    result = invalidate(predicted, DAY)
    assert [g["game_id"] for g in result.postponed_games] == ["g1"]
    assert _active(predicted) == {
        "alpha": (False, "game_postponed"),
        "bravo": (False, "game_postponed"),
        "charlie": (True, None),
    }
    assert (
        predicted.scalar(
            "SELECT count(*) FROM player_prop_predictions WHERE invalidated_at IS NULL AND NOT is_active"
        )
        == 0
    )
