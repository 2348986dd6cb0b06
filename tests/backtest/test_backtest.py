"""The walk-forward backtest on real PRA lines: never sees the future, grades honestly."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import PRA_LINES

from nbaprops.backtest import calibration_summary, run_backtest
from nbaprops.config import Settings
from nbaprops.evaluation import compute_metrics
from nbaprops.evaluation.metrics import ece, wilson
from nbaprops.ingest.lines import ingest_lines
from nbaprops.storage import open_storage

# No neutral-site game in the window: the box scores of those (2024-11-02, 2024-12-14, 2025-01-23, 2025-01-25)
# name the home team as its own opponent (the schedule now picks the row that does not, see BOX_GAMES_SQL).
START, END = date(2025, 1, 26), date(2025, 2, 4)
# gbm: its fits take their rows from LightGBM bins built once per process (serial path and each worker);
# market_blend: built on gbm, refitted between two holdout fits with the refitted gbm.
SYSTEMS = ["moving_average", "matchup", "gbm", "market_blend"]


@pytest.fixture(scope="module")
def graded(loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One short walk-forward on real PRA lines, shared by the tests of this module (read only)."""
    lines = PRA_LINES["2024-25"]
    if not lines.exists():
        pytest.skip(f"shared data not found: {lines}; set NBAPROPS_SHARED_DATA")
    path = tmp_path_factory.mktemp("backtest") / "bt.duckdb"
    shutil.copyfile(loaded_db_file, path)
    storage = open_storage(path)
    ingest_lines(storage, [lines])
    result = run_backtest(
        storage,
        Settings(),
        market="pra",
        start=START,
        end=END,
        systems=SYSTEMS,
        retrain_days=4,
        train_days=90,
        workers=2,
    )
    yield storage, result
    storage.close()


def test_each_step_trains_only_on_games_before_it(graded) -> None:  # type: ignore[no-untyped-def]
    storage, result = graded
    assert result.steps == 3 and len(result.models) == 3
    rows = result.grades.to_pylist()
    for meta in result.models:
        through = date.fromisoformat(meta["through"])
        assert date.fromisoformat(meta["train_start"]) < through
        versions = {r["model_version"] for r in rows if r["model_version"].endswith(meta["digest"])}
        dates = {r["game_date"] for r in rows if r["model_version"] in versions}
        assert dates and min(dates) >= through  # predicted only on or after the day it was trained for


def test_gbm_is_fitted_every_other_step_and_what_is_learned_out_of_sample_kept_from_an_earlier_step(
    graded,
) -> None:  # type: ignore[no-untyped-def]
    """Defaults (holdout every 4 steps, gbm every 2): step 0 is a full fit; step 1 serves step 0's gbm (the same
    model, its version naming step 0's window) and fits the others on its own window; step 2 fits gbm again.
    Steps 1 and 2 keep step 0's spreads and holdout calibration — learned on rows all before step 0, so before
    them — and say so (``holdout_from``)."""
    _, result = graded
    versions = [{sid: meta["systems"][sid]["model_version"] for sid in SYSTEMS} for meta in result.models]
    assert versions[1]["gbm"] == versions[0]["gbm"] != versions[2]["gbm"]
    assert versions[0]["gbm"].endswith(result.models[0]["digest"])
    assert versions[2]["gbm"].endswith(result.models[2]["digest"])
    for sid in ("moving_average", "matchup"):
        assert len({v[sid] for v in versions}) == 3
    anchor = result.models[0]
    assert "holdout_from" not in anchor
    for meta in result.models[1:]:
        assert meta["holdout_from"] == anchor["through"] < meta["through"]
        assert meta["train_start"] > anchor["train_start"]
        for sid in SYSTEMS:
            assert meta["systems"][sid]["spread_by_tier"] == anchor["systems"][sid]["spread_by_tier"]
            assert meta["systems"][sid]["holdout_mae"] == anchor["systems"][sid]["holdout_mae"]


def test_grades_match_the_box_scores_and_prices(graded) -> None:  # type: ignore[no-untyped-def]
    storage, result = graded
    rows = result.grades.to_pylist()
    assert rows and all(START <= r["game_date"] <= END for r in rows)
    actual = {
        (pl, d): v
        for pl, d, v in storage.fetchall(
            """SELECT player_lookup, game_date, pts + reb + ast FROM box_scores WHERE game_date BETWEEN ? AND ?""",
            [START, END],
        )
    }
    voids = [r for r in rows if r["void_reason"]]
    assert voids, "some expected players did not play"
    for r in rows:
        key = (r["player_lookup"], r["game_date"])
        if r["void_reason"] == "did_not_play":
            assert key not in actual and r["outcome"] is None and r["profit"] is None
            continue
        assert r["actual_value"] == actual[key]
        if r["recommendation"] in ("OVER", "UNDER"):
            won = (r["actual_value"] > r["line_value"]) == (r["recommendation"] == "OVER")
            price = r["over_price"] if r["recommendation"] == "OVER" else r["under_price"]
            if r["actual_value"] == r["line_value"]:
                assert (r["outcome"], r["profit"]) == ("push", 0.0)
            elif won:
                assert r["outcome"] == "win"
                assert r["profit"] == pytest.approx(price / 100 if price > 0 else 100 / abs(price))
            else:
                assert (r["outcome"], r["profit"]) == ("loss", -1.0)
        else:
            assert r["outcome"] is None
    stored = storage.scalar("SELECT count(*) FROM prediction_grades WHERE run_id = ?", [result.run_id])
    assert stored == len(rows)


def test_metrics_are_computed_on_the_same_rows(graded) -> None:  # type: ignore[no-untyped-def]
    _, result = graded
    metrics = compute_metrics(result.grades)
    assert [m["system_id"] for m in metrics] == sorted(SYSTEMS)
    rows = [
        r for r in result.grades.to_pylist() if r["system_id"] == "moving_average" and not r["void_reason"]
    ]
    m = next(x for x in metrics if x["system_id"] == "moving_average")
    assert m["n"] == len(rows)
    assert m["mae"] == pytest.approx(np.mean([abs(r["predicted_value"] - r["actual_value"]) for r in rows]))
    lined = [r for r in rows if r["line_value"] is not None]
    assert m["n_lined"] == len(lined) > 20
    assert m["line_mae"] == pytest.approx(np.mean([abs(r["line_value"] - r["actual_value"]) for r in lined]))
    json.dumps(metrics)  # --json serialisable


def test_interval_and_calibration_helpers() -> None:
    lo, hi = wilson(53, 100)
    assert lo == pytest.approx(0.4328, abs=1e-3) and hi == pytest.approx(0.6248, abs=1e-3)
    assert wilson(0, 0) == (None, None)
    p = np.array([0.55] * 100)
    assert ece(p, np.array([1.0] * 55 + [0.0] * 45)) == pytest.approx(0.0)
    assert ece(p, np.ones(100)) == pytest.approx(0.45)


def test_report_is_one_self_contained_html_with_four_plots(graded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET

    from nbaprops.evaluation import cumulative_profit, write_report

    _, result = graded
    payload = {
        "run_id": result.run_id,
        "market": "pra",
        "start": str(result.start),
        "end": str(result.end),
        "days": result.days,
        "steps": result.steps,
        "retrain_days": 4,
        "metrics": compute_metrics(result.grades),
        "calibration": calibration_summary(result.models),
    }
    path = write_report(tmp_path / "r.html", payload, cumulative_profit(result.grades))
    text = path.read_text()
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    svgs = [s.split("</svg>")[0] + "</svg>" for s in text.split("<svg")[1:]]
    assert len(svgs) == 4
    titles = [ET.fromstring("<svg" + s).find(".//{http://www.w3.org/2000/svg}text").text for s in svgs]  # type: ignore[union-attr]
    assert [t.split(" ")[0] for t in titles] == ["Reliability", "Hit", "MAE", "Cumulative"]
    assert "steps by calibration" in text  # why rows were or were not bet
    # A reader who does not know the words gets them on the page (issue 6).
    glossary = text.split("<h2>Glossary</h2>")[1]
    assert all(
        f"<dt>{term}</dt>" in glossary for term in ("MAE", "ROI", "break-even", "void", "Brier", "ECE")
    )


def test_no_bet_points_against_the_models_edge(graded) -> None:  # type: ignore[no-untyped-def]
    _, result = graded
    rows = result.grades.to_pylist()
    bets = [r for r in rows if r["recommendation"] in ("OVER", "UNDER")]
    against = [
        r
        for r in bets
        if (r["recommendation"] == "OVER") != (r["predicted_value"] > r["line_value"])
        or r["predicted_value"] == r["line_value"]
    ]
    assert against == []
    assert all(m["n_bets_against_edge"] == 0 for m in compute_metrics(result.grades))
    methods = {r["calibration_method"] for r in rows if r["line_value"] is not None}
    assert methods <= {"logistic", "no_signal", "none"}
    # Only a calibrator that found a significant positive slope lets rows be bet.
    assert all(r["calibration_method"] == "logistic" for r in bets)


def test_parallel_fitting_gives_the_serial_paths_grades(graded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Step models fitted in worker processes (each binning the training set for LightGBM itself), steps predicted
    at once: the same grades as the serial path."""
    storage, result = graded
    path = tmp_path / "serial.duckdb"
    storage.execute("CHECKPOINT")
    shutil.copyfile(storage.path, path)
    with open_storage(path) as serial_storage:
        serial_storage.execute("DELETE FROM prediction_grades")
        serial = run_backtest(
            serial_storage,
            Settings(),
            market="pra",
            start=START,
            end=END,
            systems=SYSTEMS,
            retrain_days=4,
            train_days=90,
            workers=0,
        )
    skip = {"prediction_id", "run_id", "graded_at"}
    for name in result.grades.column_names:
        if name not in skip:
            assert serial.grades.column(name).to_pylist() == result.grades.column(name).to_pylist(), name
    assert [m["digest"] for m in serial.models] == [m["digest"] for m in result.models]


def test_a_script_without_a_main_guard_gets_a_clear_error(loaded_db_file: Path, tmp_path: Path) -> None:
    """A user's script calling run_backtest at import: the fitting workers are fresh interpreters that import the
    script, so it starts again in them and they die. The user gets one line saying what to do, not a
    ``BrokenProcessPool`` traceback from inside multiprocessing (what they got before). Nothing is left in the
    temporary folder by the backtest (each run left an empty ``nbaprops-backtest-*`` folder of its workers)."""
    import os
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()

    script = tmp_path / "my_backtest.py"
    script.write_text(
        "import shutil, tempfile\n"
        "from datetime import date\n"
        "from pathlib import Path\n"
        "from nbaprops.backtest import run_backtest\n"
        "from nbaprops.config import Settings\n"
        "from nbaprops.errors import ContractError\n"
        "from nbaprops.storage import open_storage\n"
        "path = Path(tempfile.mkdtemp()) / 'bt.duckdb'\n"
        f"shutil.copyfile({str(loaded_db_file)!r}, path)\n"
        "with open_storage(path) as storage:\n"
        "    try:\n"
        "        run_backtest(storage, Settings(), market='points', start=date(2025, 1, 27),\n"
        "                     end=date(2025, 1, 28), systems=['moving_average'], train_days=60, workers=1)\n"
        "    except ContractError as exc:\n"
        "        print('ContractError:', exc)\n"
        "        raise SystemExit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert 'if __name__ == "__main__":' in done.stdout
    assert "workers=0" in done.stdout
    assert not list(temp.glob("nbaprops-backtest-*"))
