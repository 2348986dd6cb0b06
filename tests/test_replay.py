"""Acceptance: real game days through predict, refresh, invalidate and grade equal the walk-forward backtest.

Two days of March 2024 with the shipped box scores and the real PRA lines, ingested day by day (the whole week
is ``benchmarks/replay_week.py``): a moved line re-predicts one player, a player ruled out after the batch is
invalidated, each day is graded the next morning, and ``accuracy`` over the days equals the backtest's metrics
for the same systems, dates and models — the same rows and the same numbers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import PRA_LINES
from tests.replay import Replay, at, inject_moved_line, replay
from tests.webhook import Receiver
from typer.testing import CliRunner

from nbaprops.backtest import run_backtest
from nbaprops.cli import app
from nbaprops.clock import ManualClock
from nbaprops.config import Settings
from nbaprops.evaluation.accuracy import accuracy
from nbaprops.evaluation.grading import grade_date
from nbaprops.evaluation.metrics import compute_metrics
from nbaprops.ingest.lines import ingest_lines
from nbaprops.pipeline.invalidate import invalidate
from nbaprops.pipeline.refresh import refresh
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

DAYS = [date(2024, 3, 11), date(2024, 3, 12)]
SYSTEMS = ("moving_average", "matchup")
GRADE_COLUMNS = (
    "system_id",
    "market",
    "game_date",
    "player_lookup",
    "predicted_value",
    "line_value",
    "actual_value",
    "recommendation",
    "outcome",
    "profit",
    "p_win",
    "side_won",
    "model_version",
)


@dataclass
class Replayed:
    path: Path
    settings: Settings
    run: Replay
    backtest_run_id: str
    backtest_metrics: list[dict[str, Any]]
    workdir: Path


@pytest.fixture(scope="module")
def replayed(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    lines = PRA_LINES["2023-24"]
    if not lines.exists():
        pytest.skip(f"shared data not found: {lines}; set NBAPROPS_SHARED_DATA")
    work = tmp_path_factory.mktemp("replay")
    path = work / "replay.duckdb"
    shutil.copyfile(loaded_db_file, path)
    settings = Settings(db_path=path, markets=("pra",), systems=SYSTEMS, train_days=90)
    with open_storage(path) as storage:
        run = replay(storage, settings, DAYS, lines, work, move_on=DAYS[1], rule_out_on=DAYS[0])
        backtest = run_backtest(
            storage,
            settings,
            market="pra",
            start=DAYS[0],
            end=DAYS[-1],
            systems=SYSTEMS,
            retrain_days=7,
            train_days=90,
        )
        metrics = compute_metrics(backtest.grades)
    yield Replayed(path, settings, run, backtest.run_id, metrics, work)


@pytest.fixture
def storage(replayed: Replayed) -> Iterator[DuckDBStorage]:
    with open_storage(replayed.path) as store:
        yield store


def _grades(storage: DuckDBStorage, run_id: str) -> list[tuple[Any, ...]]:
    return storage.fetchall(
        f"SELECT {', '.join(GRADE_COLUMNS)} FROM prediction_grades WHERE run_id = ? "
        "ORDER BY game_date, system_id, player_lookup",
        [run_id],
    )


def test_accuracy_equals_the_backtest_on_the_same_rows(replayed: Replayed, storage: DuckDBStorage) -> None:
    live = _grades(storage, "live")
    assert live and live == _grades(storage, replayed.backtest_run_id)
    assert accuracy(storage, since=DAYS[0], until=DAYS[-1])["metrics"] == replayed.backtest_metrics


def test_accuracy_reports_each_day_and_a_rolling_window(storage: DuckDBStorage) -> None:
    result = accuracy(storage, system="matchup", window=2)
    assert [d["game_date"] for d in result["daily"]] == [d.isoformat() for d in DAYS]
    first, second = result["daily"]
    assert first["rolling_2d"]["n"] == first["n"]
    assert second["rolling_2d"]["n"] == first["n"] + second["n"] == result["metrics"][0]["n"]
    assert {m["system_id"] for m in result["metrics"]} == {"matchup"}


def test_refresh_repredicted_only_the_player_whose_line_moved(
    replayed: Replayed, storage: DuckDBStorage
) -> None:
    moved, run = replayed.run.moved, replayed.run
    assert [(m["player_lookup"], m["old_line"], m["new_line"]) for m in run.refresh["moves"]] == [
        (moved["player_lookup"], moved["line"], moved["new_line"])
    ]
    batch = run.refresh["batch"]
    assert batch["state"] == "complete" and batch["requests"]["done"] == 1
    assert (
        storage.scalar("SELECT kind FROM prediction_batches WHERE batch_id = ?", [batch["batch_id"]])
        == "line_update"
    )
    before = {r[0] for r in run.before_refresh}
    rows = storage.fetch_dicts(
        "SELECT prediction_id, player_lookup, batch_id, line_value, superseded_by FROM "
        "player_prop_predictions WHERE game_date = ? AND is_active",
        [DAYS[1]],
    )
    changed = {r["player_lookup"] for r in rows if r["prediction_id"] not in before}
    assert changed == {moved["player_lookup"]}
    assert all(r["line_value"] == moved["new_line"] for r in rows if r["batch_id"] == batch["batch_id"])
    superseded = storage.fetchall(
        "SELECT DISTINCT player_lookup FROM player_prop_predictions WHERE game_date = ? "
        "AND superseded_by IS NOT NULL",
        [DAYS[1]],
    )
    assert superseded == [(moved["player_lookup"],)]


def test_a_second_refresh_changes_nothing(replayed: Replayed, storage: DuckDBStorage) -> None:
    batches = storage.scalar("SELECT count(*) FROM prediction_batches")
    result = refresh(storage, replayed.settings, DAYS[1], clock=ManualClock(at(DAYS[1], 23, 58)))
    assert result.batch is None and result.moves == []
    assert storage.scalar("SELECT count(*) FROM prediction_batches") == batches


def test_started_games_are_never_repredicted(replayed: Replayed, storage: DuckDBStorage) -> None:
    moved = replayed.run.moved
    game = storage.fetch_dicts(
        "SELECT game_id, team, opponent, is_home FROM player_prop_predictions "
        "WHERE game_date = ? AND player_lookup = ? AND is_active LIMIT 1",
        [DAYS[1], moved["player_lookup"]],
    )[0]
    home, away = (game["team"], game["opponent"]) if game["is_home"] else (game["opponent"], game["team"])
    storage.execute(
        "INSERT INTO schedule (game_id, game_date, home_team, away_team, commence_time, source, status) "
        "VALUES (?, ?, ?, ?, ?, 'test', 'scheduled')",
        [game["game_id"], DAYS[1], home, away, at(DAYS[1], 23, 30)],
    )
    lines = PRA_LINES["2023-24"]
    moved_again = inject_moved_line(moved, DAYS[1], lines, replayed.workdir / "moved_again.csv", move=-3.0)
    ingest_lines(storage, [replayed.workdir / "moved_again.csv"], market="pra")
    active = storage.fetchall("SELECT prediction_id FROM player_prop_predictions WHERE is_active ORDER BY 1")
    try:
        result = refresh(storage, replayed.settings, DAYS[1], clock=ManualClock(at(DAYS[1], 23, 59)))
        assert [(m.player_lookup, m.new_line) for m in result.moves] == [
            (moved["player_lookup"], moved_again)
        ]
        assert result.not_repredicted == [{"player_lookup": moved["player_lookup"], "reason": "game_started"}]
        assert result.batch is None
        assert (
            storage.fetchall("SELECT prediction_id FROM player_prop_predictions WHERE is_active ORDER BY 1")
            == active
        )
    finally:  # leave the replay as the other tests expect it
        storage.execute("DELETE FROM schedule WHERE source = 'test'")
        storage.execute(
            "DELETE FROM prop_lines WHERE game_date = ? AND line = ? AND player_lookup = ?",
            [DAYS[1], moved_again, moved["player_lookup"]],
        )


def test_the_ruled_out_player_is_invalidated_and_graded_void(
    replayed: Replayed, storage: DuckDBStorage
) -> None:
    player = replayed.run.ruled_out["player_lookup"]
    assert replayed.run.invalidation["rows_invalidated"] == {
        "game_postponed": 0,
        "player_ruled_out": len(SYSTEMS),
    }
    rows = storage.fetchall(
        "SELECT is_active, invalidation_reason FROM player_prop_predictions WHERE game_date = ? "
        "AND player_lookup = ?",
        [DAYS[0], player],
    )
    assert rows == [(False, "player_ruled_out")] * len(SYSTEMS)
    grades = storage.fetchall(
        "SELECT void_reason, actual_value, outcome, profit FROM prediction_grades "
        "WHERE run_id = 'live' AND player_lookup = ? AND game_date = ?",
        [player, DAYS[0]],
    )
    assert grades == [("player_ruled_out", None, None, None)] * len(SYSTEMS)
    again = invalidate(storage, DAYS[0], clock=ManualClock(at(DAYS[0], 23, 59)))
    assert again.rows_invalidated == {"game_postponed": 0, "player_ruled_out": 0}


def test_regrading_changes_only_what_a_corrected_box_score_changes(storage: DuckDBStorage) -> None:
    morning = ManualClock(at(DAYS[1], 14, 0))
    before = _grades(storage, "live")
    again = grade_date(storage, DAYS[0], clock=morning)
    assert (again.added, again.replaced, again.removed) == (0, 0, 0) and _grades(storage, "live") == before
    player_id, lookup = storage.fetchone(
        """SELECT b.player_id, b.player_lookup FROM box_scores b JOIN prediction_grades g
             ON g.player_lookup = b.player_lookup AND g.game_date = b.game_date AND g.run_id = 'live'
           WHERE b.game_date = ? ORDER BY b.player_lookup LIMIT 1""",
        [DAYS[0]],
    ) or (None, None)
    storage.execute(
        "UPDATE box_scores SET pts = pts + 7 WHERE player_id = ? AND game_date = ?", [player_id, DAYS[0]]
    )
    try:
        corrected = grade_date(storage, DAYS[0], clock=morning)
        assert (corrected.added, corrected.replaced, corrected.removed) == (0, len(SYSTEMS), 0)
        after = _grades(storage, "live")
        assert [r for r in after if r[3] != lookup] == [r for r in before if r[3] != lookup]
    finally:
        storage.execute(
            "UPDATE box_scores SET pts = pts - 7 WHERE player_id = ? AND game_date = ?", [player_id, DAYS[0]]
        )
        grade_date(storage, DAYS[0], clock=morning)
    assert _grades(storage, "live") == before


@pytest.fixture
def with_bets(replayed: Replayed, tmp_path: Path) -> Path:
    """A copy of the replay's database where DAYS[1]'s matchup rows with a line recommend their edge's side.

    The replay itself recommends nothing: the calibration finds no relation between these systems' edges and
    the outcomes on the weeks before (every row PASS, see systems/calibration.py). Staking is tested on rows
    made to be bets, each on the side of its edge with a calibrated P(win) growing with the edge.
    """
    path = tmp_path / "with_bets.duckdb"
    shutil.copyfile(replayed.path, path)
    with open_storage(path) as store:
        store.execute(
            """UPDATE player_prop_predictions SET
                   recommendation = CASE WHEN predicted_value > line_value THEN 'OVER' ELSE 'UNDER' END,
                   confidence_score = least(0.5 + abs(predicted_value - line_value) / 50, 0.7)
               WHERE game_date = ? AND system_id = 'matchup' AND is_active AND line_value IS NOT NULL
                 AND predicted_value <> line_value AND over_price IS NOT NULL AND under_price IS NOT NULL""",
            [DAYS[1]],
        )
        store.execute(
            """UPDATE player_prop_predictions SET expected_value = confidence_score * (CASE WHEN price > 0
                   THEN price / 100.0 ELSE 100.0 / abs(price) END) - (1 - confidence_score)
               FROM (SELECT prediction_id AS id, CASE recommendation WHEN 'OVER' THEN over_price ELSE under_price
                     END AS price FROM player_prop_predictions) p
               WHERE prediction_id = p.id AND recommendation IN ('OVER', 'UNDER')"""
        )
    return path


def test_the_replay_bets_nothing_without_a_relation_between_edge_and_outcome(storage: DuckDBStorage) -> None:
    rows = storage.fetchall(
        "SELECT DISTINCT calibration_method, recommendation FROM player_prop_predictions WHERE line_value IS NOT NULL"
    )
    assert {method for method, _ in rows} <= {"no_signal", "none"} and {rec for _, rec in rows} == {"PASS"}


def test_picks_stake_fractional_kelly_within_the_caps(replayed: Replayed, with_bets: Path) -> None:
    from nbaprops.picks import kelly, picks

    settings = replayed.settings.replace(max_night_fraction=0.05)
    with open_storage(with_bets) as storage:
        result = picks(storage, settings, DAYS[1], system="matchup", bankroll=1000.0)
    chosen = result["picks"]
    assert chosen, "the copy has bets"
    evs = [p["ev"] for p in chosen]  # at the offer each takes
    assert evs == sorted(evs, reverse=True)
    assert len({p["player_lookup"] for p in chosen}) == len(chosen)
    assert all(0 < p["stake"] <= 1000.0 * settings.max_bet_fraction + 1e-9 for p in chosen)
    assert result["staked"] <= 1000.0 * 0.05 + 1e-6
    first = chosen[0]
    assert first["stake"] == pytest.approx(
        min(1000 * 0.25 * kelly(first["p_win"], first["price"], first["p_lose"]), 20.0), abs=1e-4
    )
    assert all(
        p["batch_id"] in {replayed.run.batches[DAYS[1]], replayed.run.refresh["batch"]["batch_id"]}
        for p in chosen
    )
    assert {(p["train_start"], p["trained_through"]) for p in chosen} == {("2023-12-12", "2024-03-11")}


def test_the_commands_print_json_and_refuse_bad_input(replayed: Replayed, with_bets: Path) -> None:
    runner = CliRunner()
    db = ["--db", str(replayed.path)]
    with Receiver([200]) as hook:
        graded = runner.invoke(
            app,
            ["grade", "--date", DAYS[0].isoformat(), *db, "--json"],
            env={"NBAPROPS_WEBHOOK_URL": hook.url},
        )
    assert graded.exit_code == 0, graded.output
    assert json.loads(graded.output)["added"] == 0
    assert [b["event"] for b in hook.bodies] == ["grade_summary"]
    assert f"graded {DAYS[0]}" in hook.bodies[0]["text"]
    acc = runner.invoke(
        app,
        [
            "accuracy",
            "--since",
            DAYS[0].isoformat(),
            *db,
            "--json",
            "--report",
            str(replayed.workdir / "acc.html"),
        ],
    )
    assert acc.exit_code == 0 and json.loads(acc.output)["metrics"] == replayed.backtest_metrics
    assert "Live accuracy" in (replayed.workdir / "acc.html").read_text()
    batches = runner.invoke(app, ["batches", "--date", DAYS[1].isoformat(), *db, "--json"])
    assert [b["kind"] for b in json.loads(batches.output)["batches"]] == ["line_update", "daily"]
    listed = runner.invoke(
        app, ["picks", "--date", DAYS[1].isoformat(), "--system", "matchup", "--db", str(with_bets), "--csv"]
    )
    assert listed.exit_code == 0 and listed.output.splitlines()[0].startswith("player_lookup,")
    for args, message in (
        (["grade", "--date", "2024-13-01"], "not a date"),
        (["grade", "--date", "2024-03-20"], "no prediction for 2024-03-20"),
        (["accuracy", "--system", "nope"], "unknown system"),
        (["accuracy", "--since", "2030-01-01"], "no graded prediction"),
        (["picks", "--date", DAYS[1].isoformat(), "--bankroll", "-5"], "--bankroll must be positive"),
        (["refresh", "--date", DAYS[1].isoformat(), "--threshold", "0"], "--threshold must be positive"),
        (["invalidate", "--date", "yesterday"], "not a date"),
    ):
        bad = runner.invoke(app, [*args, *db, "--json"])
        assert bad.exit_code == 1, (args, bad.output)
        assert message in json.loads(bad.output)["error"]


def test_a_grade_whose_row_was_superseded_since_is_removed(storage: DuckDBStorage) -> None:
    morning = ManualClock(at(DAYS[1], 14, 0))
    before = _grades(storage, "live")
    prediction_id, lookup = storage.fetchone(
        "SELECT prediction_id, player_lookup FROM player_prop_predictions WHERE game_date = ? AND is_active "
        "AND system_id = 'matchup' ORDER BY player_lookup LIMIT 1",
        [DAYS[0]],
    ) or (None, None)
    storage.execute(
        "UPDATE player_prop_predictions SET is_active = false, superseded_by = 'x' WHERE prediction_id = ?",
        [prediction_id],
    )
    try:
        result = grade_date(storage, DAYS[0], clock=morning)
        assert (result.added, result.replaced, result.removed) == (0, 0, 1)
        assert [
            r for r in _grades(storage, "live") if r[3] == lookup and r[0] == "matchup" and r[2] == DAYS[0]
        ] == []
    finally:
        storage.execute(
            "UPDATE player_prop_predictions SET is_active = true, superseded_by = NULL "
            "WHERE prediction_id = ?",
            [prediction_id],
        )
        grade_date(storage, DAYS[0], clock=morning)
    assert _grades(storage, "live") == before


def _svgs(page: str) -> dict[str, str]:
    """Each inline chart of a report by its title (the first text of the SVG)."""
    charts = {}
    for part in page.split("<svg")[1:]:
        svg = part.split("</svg>")[0]
        title = svg.split("<text", 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
        charts[title] = svg
    return charts


def test_accuracy_report_over_two_markets_names_each_market(replayed: Replayed, tmp_path: Path) -> None:
    """``accuracy --report`` over two markets, one of them graded without lines (points, as on a night with
    only PRA lines). Before: the table had no market column (each system's row appeared twice, unnamed), and
    the tier chart read the first market's rows only, so it said "No graded rows had a line" though the PRA
    rows had; legends named a system twice."""
    path = tmp_path / "two_markets.duckdb"
    shutil.copyfile(replayed.path, path)
    with open_storage(path) as store:
        store.execute(
            "INSERT INTO prediction_grades SELECT * REPLACE ('points' AS market, prediction_id || ':points' AS "
            "prediction_id, NULL AS line_value, 'NO_LINE' AS recommendation, NULL AS outcome, NULL AS profit, "
            "NULL AS side_won) FROM prediction_grades WHERE run_id = 'live'"
        )
    report = tmp_path / "acc.html"
    result = CliRunner().invoke(
        app, ["accuracy", "--since", DAYS[0].isoformat(), "--db", str(path), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    page = report.read_text()
    table = page.split("<table>")[1].split("</table>")[0]
    assert "<th>system</th><th>market</th>" in table
    rows = [r for r in table.split("<tr>")[2:]]
    assert sorted((r.split("<td>")[1], r.split("<td>")[2]) for r in rows) == sorted(
        (f"{s}</td>", f"{m}</td>") for s in SYSTEMS for m in ("points", "pra")
    )
    charts = _svgs(page)
    assert "No graded rows had a line" not in page
    assert "MAE by player tier (line quartiles): pra" in charts
    assert not any(title.endswith(": points") for title in charts)
    reliability = charts["Reliability of P(win)"]
    assert "moving_average pra" in reliability and "matchup pra" in reliability


def test_profit_chart_draws_a_single_day_and_slants_its_dates() -> None:
    """One game day of bets. Before: a line through one point draws nothing (its legend entry showed a name
    with no line beside it), and five dates under a 6-inch chart overlapped."""
    from nbaprops.evaluation.report import profit_svg

    one_day = profit_svg({"gbm": [("2024-01-15", -1.0)], "moving_average": []})
    lines = one_day.split('<g id="line2d_')[1:]
    gbm = [g for g in lines if "stroke: #1f77b4" in g]  # charts.color(0), the first series
    assert gbm and "<use" in gbm[0]  # its one point is drawn, as a marker (the legend's sample follows)
    assert "moving_average" not in one_day  # no legend entry for a series with no bet
    week = profit_svg({"gbm": [(f"2024-01-{d:02d}", float(d)) for d in range(10, 20)]})
    assert week.count("rotate(-30") == 5


def test_daily_figures_equal_compute_metrics_of_each_day_and_window(storage: DuckDBStorage) -> None:
    """``accuracy``'s day-by-day figures are computed on columns converted once and sliced by date (a season
    of five markets and seven systems took 70 s by filtering the table twice a day); they must stay exactly
    :func:`compute_metrics` of each day's rows and of the window's rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from nbaprops.evaluation.grading import live_grades

    window = 2
    grades = live_grades(storage)
    daily = accuracy(storage, window=window)["daily"]
    expected = []
    for day in sorted(set(grades.column("game_date").to_pylist())):
        dates = grades.column("game_date")
        today = grades.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
        recent = grades.filter(
            pc.and_(
                pc.greater_equal(dates, pa.scalar(day - (DAYS[1] - DAYS[0]) * (window - 1), pa.date32())),
                pc.less_equal(dates, pa.scalar(day, pa.date32())),
            )
        )
        rolling = {(m["system_id"], m["market"]): m for m in compute_metrics(recent)}
        for m in compute_metrics(today):
            r = rolling[(m["system_id"], m["market"])]
            expected.append(
                (day.isoformat(), m["system_id"], m["n"], m["mae"], m["mae_lined"], m["line_mae"], m["roi"])
                + (
                    r["n"],
                    r["mae"],
                    r["mae_lined"],
                    r["line_mae"],
                    r["n_bets"],
                    r["hit_rate_ci"],
                    r["roi_ci"],
                )
            )
    got = [
        (d["game_date"], d["system_id"], d["n"], d["mae"], d["mae_lined"], d["line_mae"], d["roi"])
        + tuple(
            d[f"rolling_{window}d"][k]
            for k in ("n", "mae", "mae_lined", "line_mae", "n_bets", "hit_rate_ci", "roi_ci")
        )
        for d in daily
    ]
    assert got == expected and len(got) == len(DAYS) * len(SYSTEMS)
