"""Issue 18 items 2, 5, 7, 13 and 14 through the CLI, on a real database file with the shipped box scores and the
real PRA lines of 2024-01-15: implausible and quarantined lines, EV on PASS rows, empty boards without a
reason, a message said twice, a system that strays.

One ``predict`` (moving_average, 60 days of training: the cheapest real batch) is shared by the module; each
test names the item it covers and what happened before.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from tests.ingest.csvfiles import write_csv
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.pipeline.ledger import Lease
from nbaprops.pipeline.rows import prediction_rows, staging_rows, stray_rows
from nbaprops.storage import open_storage
from nbaprops.systems.base import SystemOutput
from nbaprops.systems.calibration import Calibrator
from nbaprops.systems.training import ModelBundle

DAY = "2024-01-15"
runner = CliRunner()
FIELDS = ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price", "posted_at"]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _user_line(path: Path, line: str) -> Path:
    """The issue's file: one book's PRA line for Tatum."""
    row = dict(
        zip(
            FIELDS,
            [DAY, "Jayson Tatum", "pra", line, "MyBook", "-110", "-110", f"{DAY}T18:00:00Z"],
            strict=True,
        )
    )
    return write_csv(path, [row], FIELDS)


@pytest.fixture(scope="module")
def night(
    loaded_db_file: Path, pra_lines: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, str, Path]]:
    """A database where ``predict --lines`` ran for 2024-01-15 with the real lines of the date and a quarantined
    Tatum line (PRA 85.5, his highest of the last 20 games being 57); its database, stdout and stderr."""
    folder = tmp_path_factory.mktemp("night")
    db = folder / "nb.duckdb"
    shutil.copyfile(loaded_db_file, db)
    with pra_lines["2023-24"].open(newline="") as handle:
        real = [r for r in csv.DictReader(handle) if r["event_date"] == DAY]
    day_lines = write_csv(folder / "day_pra.csv", real)
    mine = _user_line(folder / "my.csv", "85.5")
    env = {"NBAPROPS_DATA_DIR": str(folder / "artifacts")}
    code, stdout, stderr = run(
        "predict", "--date", DAY, "--markets", "pra", "--systems", "moving_average",
        "--train-days", "60", "--lines", str(day_lines), "--lines", str(mine), "--db", str(db),
        env=env,
    )  # fmt: skip
    assert code == 0, stderr
    yield db, stdout, stderr, folder


def test_an_implausible_line_is_refused_with_one_error_line(
    night: tuple[Path, str, str, Path], tmp_path: Path
) -> None:
    """Item 2. Before: Tatum's PRA 415 was stored and became pick #1 (UNDER, P(win) 1.00, EV 0.91, full stake);
    ``1e308`` was accepted. Now both are refused naming file, line and column, and nothing is stored."""
    db = night[0]
    with open_storage(db) as storage:
        before = storage.scalar("SELECT count(*) FROM prop_lines")
    for value in ("415", "1e308"):
        path = _user_line(tmp_path / f"typo_{value}.csv", value)
        code, stdout, stderr = run("predict", "--date", DAY, "--lines", str(path), "--force", "--db", str(db))
        assert code == 1
        assert stderr.strip() == (
            f"Error: {path}, line 2, column 'line': value '{value}' is not a plausible pra line "
            "(between 0.5 and 100)"
        )
        code, _, stderr = run("ingest", "lines", str(path), "--db", str(db))
        assert code == 1 and "is not a plausible pra line" in stderr and len(stderr.strip().splitlines()) == 1
    with open_storage(db) as storage:
        assert storage.scalar("SELECT count(*) FROM prop_lines") == before


def test_a_quarantined_line_is_reported_and_never_priced(night: tuple[Path, str, str, Path]) -> None:
    """Item 2. Before: a line far outside the player's games was priced like any other (his only line was his
    line). Now ``predict --lines`` lists it with why, and Tatum's PRA rows carry no line, so no bet."""
    db, _, stderr, _ = night
    assert (
        "quarantined (never priced or bet): Jayson Tatum pra 85.5 at MyBook on 2024-01-15 — above the player's "
        "highest pra of his last 20 games (57) by more than 20" in stderr
    )
    code, stdout, _ = run("predictions", "--date", DAY, "--market", "pra", "--db", str(db), "--json")
    assert code == 0
    rows = json.loads(stdout)["predictions"]
    tatum = [r for r in rows if r["player_lookup"] == "jaysontatum"]
    assert tatum and all(r["line_value"] is None and r["recommendation"] == "NO_LINE" for r in tatum)
    assert sum(r["line_value"] is not None for r in rows) > 50  # the other players' real lines are priced


def test_pass_rows_show_no_expected_value(night: tuple[Path, str, str, Path]) -> None:
    """Item 5. Before: the board showed an EV on each PASS row and sorted by it (under ``no_signal``, Clint
    Capela: EV 0.157 with the prediction on the line; here, with nothing to calibrate on, every PASS row had its
    edge side's EV). Now an EV is shown only for a recommended side."""
    db = night[0]
    code, stdout, _ = run("predictions", "--date", DAY, "--market", "pra", "--db", str(db), "--json")
    rows = json.loads(stdout)["predictions"]
    priced = [r for r in rows if r["line_value"] is not None]
    assert priced and {r["recommendation"] for r in priced} == {"PASS"}
    assert all(r["expected_value"] is None for r in rows)
    code, stdout, _ = run("predictions", "--date", DAY, "--market", "pra", "--db", str(db), "--limit", "5")
    assert code == 0
    body = [line for line in stdout.splitlines() if "PASS" in line]
    assert body and all(re.search(r"│ PASS +│ +│$", line.rstrip()) for line in body)  # the EV cell is blank


def test_empty_boards_say_why(night: tuple[Path, str, str, Path]) -> None:
    """Item 7. Before: ``predictions --bets`` and ``picks`` printed an empty table with no reason (the reason
    showed only in ``predict``'s summary)."""
    db = str(night[0])
    code, stdout, _ = run("predictions", "--date", DAY, "--bets", "--db", db)
    assert code == 0
    assert stdout.splitlines()[0] == f"No bets for {DAY}."
    # no PRA line was graded in the 60 days before: nothing to calibrate on
    assert (
        "pra moving_average: no bets — too few graded rows with a line to calibrate on (calibration none), so "
        "every row is PASS" in stdout
    )
    code, stdout, _ = run("predictions", "--date", DAY, "--bets", "--db", db, "--json")
    assert json.loads(stdout)["no_bets"] == [
        "pra moving_average: no bets — too few graded rows with a line to calibrate on (calibration none), so "
        "every row is PASS"
    ]
    code, stdout, _ = run("predictions", "--date", DAY, "--bets", "--market", "points", "--db", db)
    assert stdout.splitlines() == [
        f"No bets for {DAY}.",
        "no active row of any system for points on 2024-01-15",
    ]
    code, stdout, _ = run("picks", "--date", DAY, "--system", "moving_average", "--db", db)
    assert code == 0
    assert stdout.splitlines()[0] == f"No picks of moving_average for {DAY}."
    assert "pra moving_average: no bets — too few graded rows" in stdout


def test_the_no_bets_reason_says_it_once(night: tuple[Path, str, str, Path]) -> None:
    """Item 13. Before: ``no bets — fewer than 50 graded rows with a line to calibrate on: no bets``."""
    stdout = night[1]
    said = [line for line in stdout.splitlines() if line.startswith("pra moving_average: no bets")]
    assert said == ["pra moving_average: no bets — fewer than 50 graded rows with a line to calibrate on"]
    assert all(line.count("no bets") <= 1 for line in stdout.splitlines())


def test_the_night_cap_is_said(night: tuple[Path, str, str, Path], tmp_path: Path) -> None:
    """Item 7. Before: ``picks`` hid that the nightly cap dropped picks (only the JSON said so)."""
    db = tmp_path / "board.duckdb"
    shutil.copyfile(night[0], db)
    day = date.fromisoformat(DAY)
    with open_storage(db) as storage, storage.session() as session:
        for k, (player, ev) in enumerate((("alpha", 0.20), ("bravo", 0.15), ("charlie", 0.10))):
            lease = Lease("b9", player, 1, "w", player.title(), k, "BOS", "NYK", "g1", True)
            rows = staging_rows(
                batch_id="b9", game_date=day, leases=[lease], market="points", system_id="ensemble",
                predicted_value=np.array([25.0]), model_version="ensemble@points-20240115-abcd1234",
                feature_version="t", now=datetime(2024, 1, 15, 18, tzinfo=UTC),
                line_value=np.array([19.5]), over_price=np.array([-110.0]), under_price=np.array([-110.0]),
                recommendation=["OVER"], confidence_score=np.array([0.65]), expected_value=np.array([ev]),
            )  # fmt: skip
            name = session.temp_name("board")
            session.register(name, rows)
            session.execute(f"INSERT INTO player_prop_predictions BY NAME SELECT * FROM {name}")
    code, stdout, _ = run("picks", "--date", DAY, "--db", str(db), "--bankroll", "100")
    assert code == 0
    # 0.25 Kelly of 0.65 at -110 is 6.4% > the 2-unit cap a bet; 10 units a night fit five: all three stay.
    assert "left out" not in stdout
    env = {"NBAPROPS_MAX_NIGHT_FRACTION": "0.02"}
    code, stdout, _ = run("picks", "--date", DAY, "--db", str(db), "--bankroll", "100", env=env)
    assert code == 0
    assert "2 more bet(s) left out: the nightly cap of 2.00 units was reached." in stdout
    code, stdout, _ = run("picks", "--date", DAY, "--db", str(db), "--bankroll", "100", "--json", env=env)
    assert json.loads(stdout)["dropped_night_cap"] == 2


def test_a_system_far_from_the_others_and_the_line_is_flagged() -> None:
    """Item 14: on 2024-01-15 ``similarity`` said 30.7 PRA for Trayce Jackson-Davis, the other systems 18-19, the
    line 15.5 — and the row was priced like any other. Now such a row is flagged ``stray`` and not priced."""
    values = {
        "moving_average": np.array([19.1, 19.1, 19.1]),
        "matchup": np.array([19.3, 19.3, 19.3]),
        "gbm": np.array([17.8, 17.8, 17.8]),
        "ensemble": np.array([18.3, 18.3, 18.3]),
        "similarity": np.array([30.7, 30.7, 24.0]),
    }
    # the same numbers against the line 15.5, against 29.5 (near the straying value), and a smaller stray
    strays = stray_rows(values, np.array([15.5, 29.5, 15.5]), "pra")
    assert strays["similarity"].tolist() == [True, False, False]
    assert not any(strays[s].any() for s in values if s != "similarity")
    # no line: far from the others is enough; one other system is not enough to call any stray
    assert stray_rows(values, np.full(3, np.nan), "pra")["similarity"].tolist() == [True, True, False]
    two = {"a": np.array([10.0]), "b": np.array([40.0])}
    assert not any(v.any() for v in stray_rows(two, np.array([20.5]), "pra").values())


def test_a_stray_row_is_not_priced_and_the_board_shows_it(db_path: Path) -> None:
    """Item 14 through the batch's row builder and the board: a system that strays is neither priced nor bet
    (before, similarity's 30.7 against the line 15.5 was an OVER whenever its calibrator allowed bets), and
    ``predictions`` marks the row."""
    day = date.fromisoformat(DAY)
    leases = [Lease("b7", "traycejacksondavis", 1, "w", "Trayce Jackson-Davis", 1, "GSW", "MEM", "g1", False)]
    feats = pa.table({"feature_quality_score": [90.0], "feature_count": [40], "early_season_flag": [False]})
    lines = pa.table(
        {
            "player_lookup": ["traycejacksondavis"], "market": ["pra"], "book_line": [15.5],
            "bookmaker": ["FanDuel"], "over_price": [-110.0], "under_price": [-110.0],
        }
    )  # fmt: skip
    values = {"moving_average": 19.1, "matchup": 19.3, "gbm": 17.8, "ensemble": 18.3, "similarity": 30.7}
    outputs = {sid: SystemOutput(np.array([v]), np.array([4.0]), f"{sid}@pra") for sid, v in values.items()}
    # A calibrator that lets edges be bet: P(over) rises steeply with the standardized edge.
    betting = Calibrator("logistic", 500, 0.0, 3.0, 0.2, 2.6, 0.0, 0.5, "test")
    bundle = ModelBundle("pra", day, day, {}, {sid: betting for sid in values})
    tables = prediction_rows(
        bundle=bundle, systems=list(values), feats=feats, leases=leases, lines=lines, market="pra",
        batch_id="b7", game_date=day, ev_margin=0.02, now=datetime(2024, 1, 15, 18, tzinfo=UTC),
        outputs=outputs,
    )  # fmt: skip
    rows = {t.column("system_id")[0].as_py(): t.to_pylist()[0] for t in tables}
    stray = rows["similarity"]
    assert stray["prediction_error_code"] == "stray"
    assert stray["recommendation"] == "PASS"
    assert stray["p_over"] is None and stray["expected_value"] is None and stray["confidence_score"] is None
    assert rows["ensemble"]["recommendation"] == "OVER" and rows["ensemble"]["prediction_error_code"] is None
    with open_storage(db_path) as storage, storage.session() as session:
        for table in tables:
            name = session.temp_name("rows")
            session.register(name, table)
            session.execute(f"INSERT INTO player_prop_predictions BY NAME SELECT * FROM {name}")
    code, stdout, _ = run("predictions", "--date", DAY, "--db", str(db_path))
    assert code == 0
    marked = [line for line in stdout.splitlines() if "stray" in line]
    assert len(marked) == 1 and "simil" in marked[0] and re.search(r"│ stray +│ +│$", marked[0].rstrip())
    # The dashboard's board marks it too (and shows no EV for it).
    from tests.service.conftest import LiveServer, service_settings

    with LiveServer(service_settings(db_path, db_path.parent / "artifacts")) as live:
        page = httpx.get(f"{live.url}/board/{DAY}", timeout=30).text
    cells = re.findall(r"<td>(.*?)</td>", next(r for r in page.split("<tr") if "<td>similarity</td>" in r))
    assert cells[8:10] == ["stray", ""]
