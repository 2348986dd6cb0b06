"""Issue 20 part 4 end to end: four historical snapshots of one game fetched into the line history, a batch made
at 17:30 UTC, graded, and ``accuracy --json`` reporting its closing-line value (the close: each book's last
snapshot before the 20:30 tip-off), checked against values worked out from the fixtures' closing prices."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from tests.sources.historical import API_KEY, HistoricalOdds, fetch_all
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.config import Settings
from nbaprops.markets import BOOK_GAP
from nbaprops.pricing import price_slate
from nbaprops.storage import open_storage

DAY = "2024-01-15"
BET_TIME = "2024-01-15T17:30:00Z"  # after the 17:00 snapshot, before the 18:30 one
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def graded(
    loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The database after fetch (4 snapshots), predict at 17:30, grade; and ``accuracy --json``'s payload."""
    folder = tmp_path_factory.mktemp("clv")
    db = folder / "nb.duckdb"
    shutil.copyfile(loaded_db_file, db)
    storage = open_storage(db)
    settings = Settings(db_path=db, odds_api_key=API_KEY, odds_api_url="http://odds.test")
    fetch_all(storage, settings, HistoricalOdds())
    storage.close()
    env = {"NBAPROPS_DATA_DIR": str(folder / "artifacts")}
    code, _, stderr = run(
        "--as-of", BET_TIME, "predict", "--date", DAY, "--markets", "pra", "--systems", "moving_average",
        "--train-days", "60", "--db", str(db), env=env,
    )  # fmt: skip
    assert code == 0, stderr
    # moving_average has no graded history here to calibrate on (every row PASS): two rows become the bets a
    # calibrated system would make at the lines and prices the batch chose.
    storage = open_storage(db)
    storage.execute(
        """UPDATE player_prop_predictions SET recommendation = CASE player_lookup WHEN 'zionwilliamson' THEN 'OVER'
                                                                                  ELSE 'UNDER' END
           WHERE is_active AND player_lookup IN ('zionwilliamson', 'kyrieirving')"""
    )
    bets = storage.fetchall(
        """SELECT player_lookup, line_value, sportsbook, over_price, under_price FROM player_prop_predictions
           WHERE is_active AND recommendation IN ('OVER', 'UNDER') ORDER BY player_lookup"""
    )
    storage.close()
    # the lines of 17:00 (posted 16:55), not the later ones: Kyrie 46.5 at BetMGM, Zion 34.5 at DraftKings
    assert bets == [
        ("kyrieirving", 46.5, "BetMGM", -110.0, -120.0),
        ("zionwilliamson", 34.5, "DraftKings", -110.0, -120.0),
    ]
    code, _, stderr = run("grade", "--date", DAY, "--db", str(db))
    assert code == 0, stderr
    code, stdout, stderr = run("accuracy", "--json", "--db", str(db))
    assert code == 0, stderr
    yield db, json.loads(stdout)


def _group(payload: dict[str, Any], book: str | None) -> dict[str, Any]:
    groups = [g for g in payload["clv"]["groups"] if g["bookmaker"] == book]
    assert len(groups) == 1, payload["clv"]
    return groups[0]


def _closing_fair(
    player: str, lines: list[float], over: list[float], under: list[float], at: float
) -> tuple[float, float]:
    """Fair P(over) and P(under) at ``at``, given the bet settles, of the closing offers of DraftKings, FanDuel
    and BetMGM (the fixtures' 20:15 snapshot), priced as the board prices them."""
    close = pa.table(
        {
            "game_date": [DAY] * 3,
            "player_lookup": [player] * 3,
            "market": ["pra"] * 3,
            "bookmaker": ["DraftKings", "FanDuel", "BetMGM"],
            "line": lines,
            "over_price": over,
            "under_price": under,
        }
    )
    dist = price_slate(close, max_gap=dict(BOOK_GAP), max_price_gap=0.1).consensus.distribution
    p_over, p_under, _ = dist.probabilities(at)
    settled = float(p_over[0] + p_under[0])
    return float(p_over[0]) / settled, float(p_under[0]) / settled


def test_accuracy_reports_the_closing_line_value_of_each_bet(graded: tuple[Path, dict[str, Any]]) -> None:
    _, payload = graded
    clv = payload["clv"]
    assert (clv["bets"], clv["with_close"], clv["tipoff_unknown"], clv["no_close"]) == (2, 2, 0, 0)
    # Zion over 34.5 at DraftKings -110; at 20:15 the books closed at 36.5 / 35.5 / 36.5 (median 36.5): +2 points.
    # The in-play 20.5 (posted 20:58, after the 20:30 tip-off) would have made it -14.
    zion = _group(payload, "DraftKings")
    assert (zion["system_id"], zion["market"], zion["line"]["n"], zion["line"]["mean"]) == (
        "moving_average", "pra", 1, 2.0,
    )  # fmt: skip
    assert zion["line"]["share_positive"] == 1.0
    over, under = _closing_fair("zionwilliamson", [36.5, 35.5, 36.5], [-115.0, -118.0, -110.0],
                                [-115.0, -108.0, -120.0], 34.5)  # fmt: skip
    expected = over - 110 / 210  # closing fair P(over 34.5 | settles) - the break-even probability of -110
    assert zion["prob"]["n"] == 1 and zion["prob"]["mean"] == pytest.approx(expected, abs=1e-4)
    assert (
        0.02 < expected < 0.06
    )  # two points of a PRA line near 36 (sd about 11) is a few points of probability
    # Kyrie under 46.5 at BetMGM: closed 45.5 / 44.5 / 45.5, one point in the under's favour.
    kyrie = _group(payload, "BetMGM")
    assert kyrie["line"]["mean"] == 1.0
    _, under = _closing_fair("kyrieirving", [45.5, 44.5, 45.5], [-110.0, -115.0, -115.0],
                             [-120.0, -111.0, -115.0], 46.5)  # fmt: skip
    assert kyrie["prob"]["mean"] == pytest.approx(under - 120 / 220, abs=1e-4)  # the under's price: -120
    both = _group(payload, None)
    assert both["line"]["n"] == 2 and both["line"]["mean"] == 1.5
    assert both["line"]["mean_ci"] == pytest.approx(
        [
            1.5 - 1.959964 * np.std([2, 1], ddof=1) / np.sqrt(2),
            1.5 + 1.959964 * np.std([2, 1], ddof=1) / np.sqrt(2),
        ],
        abs=1e-3,
    )


def test_accuracy_text_shows_a_clv_table(graded: tuple[Path, dict[str, Any]]) -> None:
    db, _ = graded
    code, stdout, stderr = run("accuracy", "--db", str(db))
    assert code == 0, stderr
    assert "closing-line value" in stdout and "DraftKings" in stdout and "+2.00" in stdout


def test_the_board_flags_a_bet_the_line_has_moved_against(
    graded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "flip.duckdb"
    shutil.copyfile(graded[0], db)
    storage = open_storage(db)
    storage.execute(
        "UPDATE player_prop_predictions SET recommendation = 'UNDER' WHERE player_lookup = 'zionwilliamson'"
    )
    storage.close()

    def board(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        code, stdout, stderr = run(
            "predictions", "--date", DAY, "--market", "pra", "--json", "--db", str(db), env=env
        )
        assert code == 0, stderr
        return {r["player_lookup"]: r for r in json.loads(stdout)["predictions"]}

    rows = board()
    # Zion under 34.5, closed 36.5: two points against (more than the default 1.0); Kyrie under 46.5, closed 45.5
    assert (rows["zionwilliamson"]["line_move"], rows["zionwilliamson"]["moved_against"]) == (-2.0, True)
    assert (rows["kyrieirving"]["line_move"], rows["kyrieirving"]["moved_against"]) == (1.0, False)
    assert (rows["brandoningram"]["line_move"], rows["brandoningram"]["moved_against"]) == (
        None,
        None,
    )  # PASS
    assert board({"NBAPROPS_CLV_MOVED_AGAINST": "2.5"})["zionwilliamson"]["moved_against"] is False
    # as of 19:00 (before the 20:10 move) nothing had moved yet
    early = board({"NBAPROPS_AS_OF": "2024-01-15T19:00:00Z"})
    assert (early["zionwilliamson"]["line_move"], early["zionwilliamson"]["moved_against"]) == (0.0, False)


def test_accuracy_grades_the_bets_at_the_best_offer_posted_by_their_batch(
    graded: tuple[Path, dict[str, Any]],
) -> None:
    """``accuracy --offers``: the two bets also graded at the best offer on their side posted by 17:30 (the
    batch's as_of), beside the consensus book's; the price rule never takes a worse line or price, so its ROI
    is at least the consensus book's on the same bets. Without the flag the section is absent."""
    db, plain = graded
    assert "offers" not in plain
    code, stdout, stderr = run("accuracy", "--json", "--offers", "--db", str(db))
    assert code == 0, stderr
    offers = json.loads(stdout)["offers"]
    rows = [m for m in offers["metrics"] if m["scope"] == "bets" and m["rule"] == "price"]
    assert len(rows) == 1 and rows[0]["n"] + rows[0]["n_without_offer"] == 2, offers
    assert rows[0]["roi_offer"] >= rows[0]["roi_consensus"]
    code, stdout, stderr = run("accuracy", "--offers", "--db", str(db))
    assert code == 0, stderr
    assert "Graded at the offer taken" in stdout


def test_live_bets_are_priced_as_of_their_batchs_prediction_time(graded: tuple[Path, dict[str, Any]]) -> None:
    """The offers a live bet may take are those posted by its date's earliest batch as_of (17:30 here), not by
    the backtest's default of midnight after the date, when the 18:30 and 20:15 snapshots had come in."""
    from datetime import UTC, date, datetime

    from nbaprops.evaluation.grading import live_grades
    from nbaprops.evaluation.offers import live_as_of

    db, _ = graded
    storage = open_storage(db, read_only=True)
    try:
        when = live_as_of(storage, live_grades(storage))
    finally:
        storage.close()
    assert list(when) == [date(2024, 1, 15)]
    # the --as-of clock replays from 17:30 on: the batch starts a moment later
    assert 0 <= (when[date(2024, 1, 15)] - datetime(2024, 1, 15, 17, 30, tzinfo=UTC)).total_seconds() < 60


# -- recorded picks: their close and CLV, and their withdrawal (issue 20 part 4) ------------------------------------

PICK_TIME = "2024-01-15T17:45:00Z"  # recorded after the batch, before any move


def _pick_night(graded_db: Path, folder: Path, sides: dict[str, str], *, record: bool = True) -> Path:
    """A copy of the graded database whose two rows are bets a calibrated system made (62% at its line), of the
    ``sides`` given, recorded by ``picks --record`` at 17:45."""
    db = folder / "picks.duckdb"
    shutil.copyfile(graded_db, db)
    storage = open_storage(db)
    for player, side in sides.items():
        storage.execute(
            """UPDATE player_prop_predictions SET recommendation = ?, confidence_score = 0.62, expected_value = 0.1
               WHERE is_active AND player_lookup = ?""",
            [side, player],
        )
    storage.close()
    if record:
        code, stdout, stderr = _picks(db, PICK_TIME, "--record")
        assert code == 0, stderr
        assert json.loads(stdout)["recorded"] == 2
    return db


def _picks(db: Path, at: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return run(
        "picks", "--date", DAY, "--system", "moving_average", "--market", "pra", "--json", "--db", str(db), *args,
        env={"NBAPROPS_AS_OF": at, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def recorded(graded: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pick_night(
        graded[0], tmp_path_factory.mktemp("recorded"), {"zionwilliamson": "OVER", "kyrieirving": "UNDER"}
    )


def _fair(player: str, at: float) -> tuple[float, float]:
    """Closing fair P(over), P(under) at ``at`` (given it settles) of the fixtures' 20:15 closing offers."""
    if player == "zionwilliamson":
        return _closing_fair(
            player, [36.5, 35.5, 36.5], [-115.0, -118.0, -110.0], [-115.0, -108.0, -120.0], at
        )
    return _closing_fair(player, [45.5, 44.5, 45.5], [-110.0, -115.0, -115.0], [-120.0, -111.0, -115.0], at)


BOOK_CLOSE = {  # each book's 20:15 main line and prices (over, under), by player
    "zionwilliamson": {
        "DraftKings": (36.5, -115, -115),
        "FanDuel": (35.5, -118, -108),
        "BetMGM": (36.5, -110, -120),
    },
    "kyrieirving": {
        "DraftKings": (45.5, -110, -120),
        "FanDuel": (44.5, -115, -111),
        "BetMGM": (45.5, -115, -115),
    },
}


def _implied(price: float) -> float:
    """The break-even probability of American odds (vig included): -115 is 115/215, +120 is 100/220."""
    return 100 / (100 + price) if price > 0 else -price / (100 - price)


def test_each_recorded_pick_reports_its_close_and_clv(recorded: Path) -> None:
    """``picks --logged --json`` after tip-off: each pick's consensus close, its own book's close and CLV in points
    and in probability, worked out by hand from the fixtures' 20:15 prices."""
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--json", "--db", str(recorded)
    )
    assert code == 0, stderr
    logged = {p["player_lookup"]: p for p in json.loads(stdout)["picks"]}
    # the offers taken at 17:45 (the 17:00 snapshot): Zion's over at DraftKings' alternate 39.5 at +200 (the 62%
    # carried there beats every other over's EV), Kyrie's under at DraftKings' 46.5 at -115
    taken = {
        p: (r["side"], r["bookmaker"], r["line"], r["price"], r["system_line"]) for p, r in logged.items()
    }
    assert taken == {
        "zionwilliamson": ("over", "DraftKings", 39.5, 200.0, 34.5),
        "kyrieirving": ("under", "DraftKings", 46.5, -115.0, 46.5),
    }
    for player, close in (("zionwilliamson", 36.5), ("kyrieirving", 45.5)):
        pick = logged[player]
        over = pick["side"] == "over"
        assert (pick["status"], pick["started"], pick["close_line"]) == ("closed", True, close)
        # points of line the pick beat the consensus close by, from the pick's own line
        assert pick["clv_line"] == pytest.approx((close - pick["line"]) * (1 if over else -1))
        p_over, p_under = _fair(player, pick["line"])
        break_even = _implied(pick["price"])
        assert pick["break_even"] == pytest.approx(break_even, abs=1e-9)
        assert pick["clv_prob"] == pytest.approx((p_over if over else p_under) - break_even, abs=1e-6)
        book_line, book_over, book_under = BOOK_CLOSE[player][pick["bookmaker"]]
        assert pick["book_close_line"] == book_line
        assert pick["book_close_price"] == (book_over if over else book_under)
        assert pick["clv_line_book"] == pytest.approx((book_line - pick["line"]) * (1 if over else -1))
        # the book's own de-vigged probability of the side at its closing line (multiplicative)
        io, iu = _implied(book_over), _implied(book_under)
        assert pick["book_close_fair"] == pytest.approx((io if over else iu) / (io + iu), abs=1e-6)
        # the move from the system's line to the close: the pick's own line may be another book's
        assert pick["line_move"] == pytest.approx((close - pick["system_line"]) * (1 if over else -1))
    # by hand: Zion's over 39.5 against a 36.5 close is 3 points worse than the close, but the closing fair
    # P(over 39.5) is above the 1/3 that +200 needs; Kyrie's under 46.5 beat a 45.5 close by a point
    zion, kyrie = logged["zionwilliamson"], logged["kyrieirving"]
    assert (zion["clv_line"], zion["clv_line_book"], kyrie["clv_line"], kyrie["clv_line_book"]) == (
        -3,
        -3,
        1,
        1,
    )
    assert zion["clv_prob"] == pytest.approx(_fair("zionwilliamson", 39.5)[0] - 1 / 3, abs=1e-6)
    assert kyrie["clv_prob"] == pytest.approx(_fair("kyrieirving", 46.5)[1] - 115 / 215, abs=1e-6)
    assert (kyrie["book_close_line"], kyrie["book_close_price"]) == (45.5, -120)
    assert (zion["line_move"], kyrie["line_move"]) == (2.0, 1.0)  # neither moved against


def test_accuracy_reports_pick_clv_per_system_market_and_book(recorded: Path) -> None:
    code, stdout, stderr = run("accuracy", "--json", "--db", str(recorded))
    assert code == 0, stderr
    section = json.loads(stdout)["pick_clv"]
    assert (section["picks"], section["withdrawn"], section["not_started"], section["with_close"]) == (
        2,
        0,
        0,
        2,
    )
    code, stdout, _ = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--json", "--db", str(recorded)
    )
    logged = {p["player_lookup"]: p for p in json.loads(stdout)["picks"]}
    # both picks were taken at DraftKings: its group and the every-book group hold the same two
    assert [g["bookmaker"] for g in section["groups"]] == [None, "DraftKings"]
    prob = [logged["zionwilliamson"]["clv_prob"], logged["kyrieirving"]["clv_prob"]]
    for group in section["groups"]:
        assert (group["system_id"], group["market"], group["line"]["n"], group["prob"]["n"]) == (
            "moving_average", "pra", 2, 2,
        )  # fmt: skip
        assert group["line"]["mean"] == -1.0 and group["line"]["share_positive"] == 0.5  # (-3 + 1) / 2
        assert group["line"]["mean_ci"] == pytest.approx(
            [
                -1 - 1.959964 * np.std([-3, 1], ddof=1) / np.sqrt(2),
                -1 + 1.959964 * np.std([-3, 1], ddof=1) / np.sqrt(2),
            ],
            abs=1e-3,
        )
        assert group["prob"]["mean"] == pytest.approx(np.mean(prob), abs=1e-4)
        assert group["book_line"]["mean"] == -1.0
    code, stdout, stderr = run("accuracy", "--db", str(recorded))
    assert code == 0, stderr
    assert "closing-line value of the recorded picks" in stdout


def test_picks_logged_text_and_an_empty_log(recorded: Path) -> None:
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--db", str(recorded)
    )
    assert code == 0, stderr
    assert "2 recorded pick(s) of moving_average" in stdout and "closed" in stdout
    code, stdout, stderr = run("picks", "--date", DAY, "--logged", "--db", str(recorded))
    assert code == 0, stderr
    assert "No recorded pick of ensemble for 2024-01-15" in stdout
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--csv", "--db", str(recorded)
    )
    assert code == 0, stderr
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert {r["player_lookup"]: r["clv_line"] for r in rows} == {
        "kyrieirving": "1.0",
        "zionwilliamson": "-3.0",
    }
    # accuracy replayed before tip-off: the picks have not started, so no pick CLV yet
    code, stdout, stderr = run(
        "accuracy", "--json", "--db", str(recorded), env={"NBAPROPS_AS_OF": "2024-01-15T20:00:00Z"}
    )
    assert code == 0, stderr
    section = json.loads(stdout)["pick_clv"]
    assert (section["picks"], section["not_started"], section["with_close"]) == (2, 2, 0)


BEFORE_TIP = "2024-01-15T20:20:00Z"  # after the 20:10 move, before the 20:30 tip-off
AFTER_TIP = "2024-01-15T20:45:00Z"


@pytest.fixture
def against(graded: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """Zion's UNDER (the line then rises two points: against it) and Kyrie's UNDER (it falls a point: for it),
    recorded at 17:45."""
    return _pick_night(graded[0], tmp_path, {"zionwilliamson": "UNDER", "kyrieirving": "UNDER"})


def _log(db: Path) -> dict[str, dict[str, Any]]:
    storage = open_storage(db, read_only=True)
    try:
        return {
            r["player_lookup"]: r
            for r in storage.fetch_dicts(
                "SELECT player_lookup, withdrawn_at, withdrawn_line, withdrawn_reason, made_at FROM pick_log"
            )
        }
    finally:
        storage.close()


def test_a_pick_the_line_moved_against_is_only_flagged_when_withdrawal_is_off(against: Path) -> None:
    from tests.webhook import Receiver

    with Receiver([200]) as hook:
        code, stdout, stderr = _picks(against, BEFORE_TIP, "--record", env={"NBAPROPS_WEBHOOK_URL": hook.url})
    assert code == 0, stderr
    result = json.loads(stdout)
    picks = {p["player_lookup"]: p for p in result["picks"]}
    assert (picks["zionwilliamson"]["line_move"], picks["zionwilliamson"]["moved_against"]) == (-2.0, True)
    assert (picks["kyrieirving"]["line_move"], picks["kyrieirving"]["moved_against"]) == (1.0, False)
    assert picks["zionwilliamson"]["stake"] > 0  # flagged, still staked
    assert (result["withdrawn"], result["withdrawn_now"], result["dropped_moved_against"]) == ([], 0, 0)
    assert hook.bodies == [] and all(r["withdrawn_at"] is None for r in _log(against).values())
    code, stdout, _ = run("picks", "--date", DAY, "--system", "moving_average", "--logged", "--json",
                          "--db", str(against), env={"NBAPROPS_AS_OF": BEFORE_TIP})  # fmt: skip
    status = {p["player_lookup"]: p["status"] for p in json.loads(stdout)["picks"]}
    assert status == {"zionwilliamson": "moved_against", "kyrieirving": "open"}


def test_a_pick_the_line_moved_against_is_withdrawn_and_alerted_once(against: Path) -> None:
    from tests.webhook import Receiver

    on = {"NBAPROPS_WITHDRAW_MOVED_AGAINST": "1"}
    with Receiver([200]) as hook:
        code, stdout, stderr = _picks(
            against, BEFORE_TIP, "--record", env={**on, "NBAPROPS_WEBHOOK_URL": hook.url}
        )
        assert code == 0, stderr
        first = json.loads(stdout)
        # recorded again five minutes later: still withdrawn, no second alert, not staked again
        code, stdout, stderr = _picks(
            against, "2024-01-15T20:25:00Z", "--record", env={**on, "NBAPROPS_WEBHOOK_URL": hook.url}
        )
        assert code == 0, stderr
        again = json.loads(stdout)
        # the setting turned off afterwards does not bring it back either
        code, stdout, _ = _picks(
            against, "2024-01-15T20:26:00Z", "--record", env={"NBAPROPS_WEBHOOK_URL": hook.url}
        )
        off = json.loads(stdout)
    assert (first["withdrawn_now"], first["alerts_sent"], first["dropped_withdrawn"]) == (1, 1, 1)
    assert [p["player_lookup"] for p in first["picks"]] == ["kyrieirving"]  # left out of the night's stakes
    assert first["staked"] == first["picks"][0]["stake"]
    [gone] = first["withdrawn"]
    assert (gone["player_lookup"], gone["side"], gone["withdrawn_line"]) == ("zionwilliamson", "under", 36.5)
    assert "34.5 to 36.5" in gone["withdrawn_reason"] and "2 point(s) against" in gone["withdrawn_reason"]
    log = _log(against)
    when = log["zionwilliamson"]["withdrawn_at"]
    assert 0 <= (when - datetime(2024, 1, 15, 20, 20, tzinfo=UTC)).total_seconds() < 60
    assert log["zionwilliamson"]["withdrawn_line"] == 36.5 and log["kyrieirving"]["withdrawn_at"] is None
    assert len(hook.bodies) == 1
    alert = hook.bodies[0]
    assert alert["event"] == "pick_withdrawn" and "zionwilliamson" in alert["text"].lower().replace(" ", "")
    assert (alert["details"]["player_lookup"], alert["details"]["withdrawn_line"]) == ("zionwilliamson", 36.5)
    for later in (again, off):
        assert (later["withdrawn_now"], later["alerts_sent"], later["dropped_withdrawn"]) == (0, 0, 1)
        assert [p["player_lookup"] for p in later["picks"]] == ["kyrieirving"]
        assert [w["player_lookup"] for w in later["withdrawn"]] == ["zionwilliamson"]
    assert _log(against)["zionwilliamson"]["withdrawn_at"] == when  # not rewritten
    # two runs racing: the second finds it withdrawn already, so only the first alerts
    from nbaprops.picks.log import _withdraw

    storage = open_storage(against)
    try:
        key = {"game_date": date(2024, 1, 15), "player_lookup": "zionwilliamson", "market": "pra",
               "system_id": "moving_average", "withdrawn_reason": "again", "withdrawn_line": 40.0}  # fmt: skip
        assert _withdraw(storage, [key], datetime(2024, 1, 15, 20, 29, tzinfo=UTC)) == set()
    finally:
        storage.close()
    assert _log(against)["zionwilliamson"]["withdrawn_line"] == 36.5
    # accuracy leaves the withdrawn pick out of pick_clv and counts it
    code, stdout, stderr = run("accuracy", "--json", "--db", str(against))
    assert code == 0, stderr
    section = json.loads(stdout)["pick_clv"]
    assert (section["picks"], section["withdrawn"], section["with_close"]) == (2, 1, 1)
    code, stdout, _ = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--db", str(against)
    )
    assert "withdrawn" in stdout
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--market", "pra", "--db", str(against),
        env={"NBAPROPS_AS_OF": "2024-01-15T20:27:00Z"},
    )  # fmt: skip
    assert code == 0, stderr
    assert "withdrawn at 2024-01-15T20:2" in stdout and "34.5 to 36.5" in stdout
    assert "1 more bet(s) left out: their recorded pick was withdrawn" in stdout


def test_a_pick_after_tip_off_is_never_withdrawn(against: Path) -> None:
    from tests.webhook import Receiver

    on = {"NBAPROPS_WITHDRAW_MOVED_AGAINST": "1"}
    with Receiver([200]) as hook:
        code, stdout, stderr = _picks(
            against, AFTER_TIP, "--record", env={**on, "NBAPROPS_WEBHOOK_URL": hook.url}
        )
    assert code == 0, stderr
    result = json.loads(stdout)
    zion = next(p for p in result["picks"] if p["player_lookup"] == "zionwilliamson")
    assert (zion["line_move"], zion["moved_against"]) == (-2.0, True)  # the whole move to the close
    assert (result["withdrawn_now"], result["withdrawn"], result["dropped_moved_against"]) == (0, [], 0)
    assert hook.bodies == [] and _log(against)["zionwilliamson"]["withdrawn_at"] is None


def test_with_withdrawal_on_a_moved_pick_is_never_staked_even_unrecorded(
    graded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A read (no --record) with the setting on stakes no pick the line has left, withdraws nothing, alerts
    nothing; before the move it is staked."""
    db = _pick_night(graded[0], tmp_path, {"zionwilliamson": "UNDER", "kyrieirving": "UNDER"}, record=False)
    on = {"NBAPROPS_WITHDRAW_MOVED_AGAINST": "1"}
    code, stdout, _ = _picks(db, BEFORE_TIP, env=on)
    result = json.loads(stdout)
    assert [p["player_lookup"] for p in result["picks"]] == ["kyrieirving"]
    assert (result["dropped_withdrawn"], result["dropped_moved_against"], result["withdrawn_now"]) == (
        0,
        1,
        0,
    )
    assert _log(db) == {}
    code, stdout, _ = _picks(db, "2024-01-15T19:00:00Z", env=on)
    assert json.loads(stdout)["count"] == 2


LATER_PICK_LOG_COLUMNS = (
    "opponent",
    "withdrawn_at",
    "withdrawn_reason",
    "withdrawn_line",
    "sized_by",
    "sized_with",
)
"""pick_log's columns added after its first release: an older file lacks them."""


def test_an_older_pick_log_gains_the_new_columns_when_opened(recorded: Path, tmp_path: Path) -> None:
    """A file whose pick_log predates opponent, the withdrawn_ and the sized_ columns: read-only, it reads them as
    NULL; opened for writing, it gains them and keeps its rows."""
    db = tmp_path / "old.duckdb"
    shutil.copyfile(recorded, db)
    storage = open_storage(db)
    for column in LATER_PICK_LOG_COLUMNS:
        storage.execute(f'ALTER TABLE pick_log DROP COLUMN "{column}"')
    storage.close()
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--json", "--db", str(db)
    )
    assert code == 0, stderr
    assert {p["status"] for p in json.loads(stdout)["picks"]} == {"closed"}
    storage = open_storage(db)
    try:
        assert set(LATER_PICK_LOG_COLUMNS) <= set(storage.table_columns("pick_log"))
        assert storage.scalar("SELECT count(*) FROM pick_log WHERE withdrawn_at IS NULL") == 2
    finally:
        storage.close()


def test_the_api_lists_the_recorded_picks_as_the_cli_does(recorded: Path, tmp_path: Path) -> None:
    import httpx
    from tests.service.conftest import KEYS, LiveServer, service_settings

    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--json", "--db", str(recorded)
    )
    assert code == 0, stderr
    cli = json.loads(stdout)
    settings = service_settings(recorded, tmp_path / "artifacts", read_auth=True)
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client,
    ):
        served = client.get("/v1/picks/logged", params={"date": DAY, "system": "moving_average"})
        bad = [
            client.get("/v1/picks/logged", params={"date": DAY, **extra})
            for extra in ({"system": "nope"}, {"market": "steals"}, {"system": "'; DROP TABLE pick_log; --"})
        ]
        none = client.get("/v1/picks/logged", params={"date": DAY})
        anonymous = httpx.get(f"{server.url}/v1/picks/logged", params={"date": DAY})
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["picks"] == cli["picks"] and body["summary"] == cli["summary"] and body["count"] == 2
    assert [r.status_code for r in bad] == [422, 422, 422]
    assert none.status_code == 200 and none.json()["picks"] == []
    assert anonymous.status_code == 401


def test_a_broken_webhook_never_fails_the_withdrawal(against: Path) -> None:
    """The webhook answers 500: the pick is still withdrawn and the run succeeds; the alert is not sent again."""
    from tests.webhook import Receiver

    env = {"NBAPROPS_WITHDRAW_MOVED_AGAINST": "1", "NBAPROPS_WEBHOOK_ATTEMPTS": "1"}
    with Receiver([500]) as hook:
        env["NBAPROPS_WEBHOOK_URL"] = hook.url
        code, stdout, stderr = _picks(against, BEFORE_TIP, "--record", env=env)
        assert code == 0, stderr
        first = json.loads(stdout)
        code, stdout, _ = _picks(against, "2024-01-15T20:25:00Z", "--record", env=env)
    assert (first["withdrawn_now"], first["alerts_sent"]) == (1, 0)
    assert json.loads(stdout)["withdrawn_now"] == 0 and len(hook.bodies) == 1
    assert _log(against)["zionwilliamson"]["withdrawn_at"] is not None


def test_a_pick_is_measured_against_its_books_main_closing_line(recorded: Path, tmp_path: Path) -> None:
    """DraftKings' last posting before tip-off (20:10) with two alternates around its 36.5 for Zion: the book's close
    is its main line (the balanced price), not the first of its lines."""
    db = tmp_path / "alts.duckdb"
    shutil.copyfile(recorded, db)
    storage = open_storage(db)
    storage.execute(
        """INSERT INTO prop_line_snapshots (game_date, player_lookup, market, bookmaker, line, posted_at, over_price,
                                            under_price, commence_time, source)
           SELECT s.game_date, s.player_lookup, s.market, s.bookmaker, alt.l, s.posted_at, alt.o, alt.u,
                  s.commence_time, 'alt'
           FROM prop_line_snapshots s,
                (VALUES (31.5, -300.0, 240.0), (41.5, 260.0, -340.0)) AS alt(l, o, u)
           WHERE s.player_lookup = 'zionwilliamson' AND s.bookmaker = 'DraftKings' AND s.line = 36.5
             AND s.posted_at = TIMESTAMPTZ '2024-01-15 20:10:00+00'"""
    )
    assert storage.scalar("SELECT count(*) FROM prop_line_snapshots WHERE source = 'alt'") == 2
    storage.close()
    code, stdout, stderr = run(
        "picks", "--date", DAY, "--system", "moving_average", "--logged", "--json", "--db", str(db)
    )
    assert code == 0, stderr
    zion = next(p for p in json.loads(stdout)["picks"] if p["player_lookup"] == "zionwilliamson")
    assert (zion["book_close_line"], zion["book_close_price"], zion["clv_line_book"]) == (36.5, -115, -3)
