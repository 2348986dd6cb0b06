"""Nothing dated on or after the prediction date reaches a feature or a prediction (DESIGN.md I-leak).

Two copies of the same real database: in one, every box score on or after the date is perturbed (stats
changed, some rows deleted, a fake game added) and lines posted after the prediction time are added with
other values. Features, training and the whole daily batch must give identical results on both.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.features.builder import build_features, build_training_set, features_sql
from nbaprops.features.columns import FEATURE_COLUMNS
from nbaprops.ingest.injuries import injury_snapshot
from nbaprops.ingest.lines import ingest_lines
from nbaprops.ingest.schedule import games_for_date, ingest_schedule
from nbaprops.pipeline.coordinator import default_as_of
from nbaprops.pipeline.run import run_batch
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

DAY = date(2025, 2, 23)  # a date with real PRA lines
AS_OF = default_as_of(DAY, ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))


def _late_injury_report(storage: DuckDBStorage, day: date, as_of: object) -> None:
    """An injury report published an hour after the prediction time listing every player of the day Out."""
    storage.execute(
        """INSERT INTO injury_reports (report_at, game_date, team, player_name, player_lookup, status, reason, source)
           SELECT DISTINCT CAST(? AS TIMESTAMPTZ) + INTERVAL 1 HOUR, game_date, team, player_name, player_lookup,
                  'Out', 'published after the prediction time', 'leakage test'
           FROM box_scores WHERE game_date = ?""",
        [as_of, day],
    )


def _perturb(storage: DuckDBStorage, day: date, as_of: object) -> None:
    _late_injury_report(storage, day, as_of)
    storage.execute(
        """UPDATE box_scores SET pts = pts + 13, reb = reb + 4, ast = ast + 3, fg3m = fg3m + 2,
                  minutes = minutes / 2, fga = fga + 9, tov = tov + 2 WHERE game_date >= ?""",
        [day],
    )
    storage.execute("DELETE FROM box_scores WHERE game_date >= ? AND player_id % 3 = 0", [day])
    storage.execute(
        """INSERT INTO box_scores SELECT * REPLACE (game_id || 'X' AS game_id, game_date + 1 AS game_date)
           FROM box_scores WHERE game_date = ?""",
        [day],
    )
    storage.execute(
        """INSERT INTO prop_lines SELECT * REPLACE ('LateBook' AS bookmaker, line + 7 AS line,
                  CAST(? AS TIMESTAMPTZ) + INTERVAL 1 HOUR AS posted_at, true AS is_main)
           FROM (SELECT DISTINCT ON (player_lookup, market) * FROM prop_lines WHERE game_date = ?
                 ORDER BY player_lookup, market, bookmaker)""",
        [as_of, day],
    )
    # A later, perfectly balanced DraftKings line that would become its main line if it were visible.
    storage.execute(
        """INSERT INTO prop_lines SELECT * REPLACE (line - 3 AS line, -110.0 AS over_price, -110.0 AS under_price,
                  CAST(? AS TIMESTAMPTZ) + INTERVAL 2 HOUR AS posted_at)
           FROM prop_lines WHERE game_date = ? AND bookmaker = 'DraftKings'""",
        [as_of, day],
    )


def _slate_targets(storage: DuckDBStorage, day: date) -> pa.Table:
    return storage.arrow(
        """SELECT player_id, player_lookup, CAST(? AS DATE) AS game_date, team, opponent, is_home
           FROM box_scores WHERE game_date = ? ORDER BY player_id""",
        [day, day],
    )


@pytest.fixture
def twin_dbs(loaded_db_file: Path, tmp_path: Path, pra_lines: dict[str, Path]) -> tuple[Path, Path]:
    """(clean, perturbed) copies with the same schedule and lines for DAY."""
    clean = tmp_path / "clean.duckdb"
    shutil.copyfile(loaded_db_file, clean)
    with open_storage(clean) as storage:
        games = games_for_date(storage, DAY)
        sched = tmp_path / "schedule.csv"
        sched.write_text(
            "game_date,home_team,away_team,game_id\n"
            + "".join(
                f"{DAY},{h},{a},{g}\n"
                for g, h, a in zip(
                    games.column("game_id").to_pylist(),
                    games.column("home_team").to_pylist(),
                    games.column("away_team").to_pylist(),
                    strict=True,
                )
            )
        )
        ingest_schedule(storage, [sched])
        ingest_lines(storage, [pra_lines["2024-25"]])
        storage.execute("CHECKPOINT")
    perturbed = tmp_path / "perturbed.duckdb"
    shutil.copyfile(clean, perturbed)
    with open_storage(perturbed) as storage:
        _perturb(storage, DAY, AS_OF)
        assert storage.scalar("SELECT count(*) FROM box_scores WHERE game_date > ?", [DAY]) > 0
    return clean, perturbed


def test_features_ignore_every_box_score_on_or_after_the_date(storage: DuckDBStorage) -> None:
    targets = _slate_targets(storage, DAY)
    before = build_features(storage, targets)
    storage.execute("CREATE TABLE perturbed AS SELECT * FROM box_scores")
    _perturb_box = """UPDATE perturbed SET pts = pts + 13, reb = reb + 4, minutes = minutes / 3, fga = fga + 5
                      WHERE game_date >= ?"""
    storage.execute(_perturb_box, [DAY])
    storage.execute("DELETE FROM perturbed WHERE game_date >= ? AND player_id % 2 = 0", [DAY])
    after = build_features(storage, targets, box="perturbed")
    assert before.num_rows == targets.num_rows > 200
    assert before.equals(after)
    # The check has teeth: perturbing the day before changes features.
    storage.execute(_perturb_box, [DAY - timedelta(days=1)])
    changed = build_features(storage, targets, box="perturbed")
    assert not before.equals(changed)


def _features_over(storage: DuckDBStorage, box: str, targets: pa.Table) -> pa.Table:
    """:func:`features_sql` over the whole relation ``box``, without :func:`build_features`' date bound."""
    with storage.session() as session:
        name = session.temp_name("targets")
        session.register(name, targets.append_column("__tid", pa.array(range(targets.num_rows), pa.int64())))
        return session.arrow(features_sql(box, name))


def test_the_join_itself_excludes_box_scores_on_or_after_the_date(storage: DuckDBStorage) -> None:
    """The box scores given to the query include the target date and every later one, perturbed in one copy.

    ``build_features`` never passes the target date's rows for a one-date slate, so only this test reaches
    the join conditions. Mutations tried in ``features_sql``, each failing here (the test above passes with
    them; the training test below, whose targets span dates, fails too): ``h.game_date < t.game_date`` ->
    ``<=`` (player history), the same in the team's and in the opponent's ``team_roll`` ASOF joins, and
    ``b.game_date < t.game_date`` -> ``<=`` in ``recent``.
    """
    targets = _slate_targets(storage, DAY)
    # Last season whole, this one up to ten days past the date (all ten seasons would take half a minute).
    window = [date(2023, 10, 1), DAY + timedelta(days=10)]
    storage.execute("CREATE TABLE clean AS SELECT * FROM box_scores WHERE game_date BETWEEN ? AND ?", window)
    storage.execute("CREATE TABLE perturbed AS SELECT * FROM clean")
    storage.execute(
        """UPDATE perturbed SET pts = pts + 13, reb = reb + 4, ast = ast + 3, fg3m = fg3m + 2, minutes = minutes / 3,
                  fga = fga + 5, fta = fta + 2, tov = tov + 1, oreb = oreb + 1 WHERE game_date >= ?""",
        [DAY],
    )
    storage.execute("DELETE FROM perturbed WHERE game_date >= ? AND player_id % 2 = 0", [DAY])
    assert storage.scalar("SELECT count(*) FROM clean WHERE game_date > ?", [DAY]) > 1000
    clean = _features_over(storage, "clean", targets)
    assert clean.num_rows == targets.num_rows
    assert clean.equals(_features_over(storage, "perturbed", targets))
    # The check has teeth: the same perturbation one day earlier changes features.
    storage.execute(
        "UPDATE perturbed SET pts = pts + 13, fga = fga + 5 WHERE game_date = ?", [DAY - timedelta(days=1)]
    )
    assert not clean.equals(_features_over(storage, "perturbed", targets))


def test_training_rows_see_only_earlier_games(storage: DuckDBStorage) -> None:
    train = build_training_set(storage, DAY - timedelta(days=20), DAY)
    storage.execute("CREATE TABLE perturbed AS SELECT * FROM box_scores")
    storage.execute("UPDATE perturbed SET pts = pts * 3, minutes = 1 WHERE game_date >= ?", [DAY])
    again = build_training_set(storage, DAY - timedelta(days=20), DAY, box="perturbed")
    assert train.equals(again)
    # Every row's features equal those built for that row alone as a target on its own date.
    sample = train.slice(train.num_rows // 2, 40)
    alone = build_features(
        storage, sample.select(["player_id", "player_lookup", "game_date", "team", "opponent", "is_home"])
    )
    assert alone.select(list(FEATURE_COLUMNS)).equals(sample.select(list(FEATURE_COLUMNS)))


def test_daily_batch_is_identical_on_perturbed_future(twin_dbs: tuple[Path, Path], tmp_path: Path) -> None:
    results = []
    for path in twin_dbs:
        settings = Settings(db_path=path, data_dir=path.parent / f"artifacts-{path.stem}", workers=2)
        with open_storage(path) as storage:
            run = run_batch(
                storage,
                settings,
                DAY,
                markets=["pra"],
                train_days=60,
                clock=ManualClock(AS_OF + timedelta(days=3)),
            )
            assert run.summary.state == "complete"
            assert set(run.games_source) == {"schedule"}
            rows = storage.fetchall(
                """SELECT system_id, player_lookup, predicted_value, predicted_std, line_value, sportsbook, over_price,
                          recommendation, confidence_score, feature_quality_score, injury_status, injury_report_at
                   FROM player_prop_predictions WHERE game_date = ? AND is_active ORDER BY ALL""",
                [DAY],
            )
            states = storage.fetchall(
                "SELECT player_lookup, state, error_code FROM prediction_requests ORDER BY ALL"
            )
            results.append((rows, states, run.injuries["report_at"]))
            if path == twin_dbs[1]:  # the late report is there: a batch predicting after it would read it
                assert injury_snapshot(storage, DAY, AS_OF + timedelta(hours=2)).num_rows > 200
    (clean, clean_states, clean_report), (perturbed, perturbed_states, perturbed_report) = results
    assert clean_report is None and perturbed_report is None
    assert clean_states == perturbed_states
    assert not any(code == "injured_out" for _, _, code in perturbed_states)
    assert len(clean) > 500
    assert sum(1 for r in clean if r[4] is not None) > 50  # real lines were used
    assert clean == perturbed
