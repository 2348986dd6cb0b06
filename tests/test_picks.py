"""Picks at the offer (issue 20, part 2), on a real database file: the shipped box scores and the real PRA lines of
2024-01-15 (up to 9 books per player, alternate lines). The system's rows are written in directly — a player, a
side, a calibrated probability at the consensus line — so each test controls what the system says; everything the
picks do with them (the offers, their prices, the caps, the log) is the real market of that night.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.ingest.csvfiles import write_csv

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.ingest import ensure_aliases, ingest_lines
from nbaprops.picks import SystemBets, choose_offers, kelly, logged_picks, picks
from nbaprops.pipeline.board import offer_rows, price_offers_of
from nbaprops.pipeline.rows import staging_rows
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage
from nbaprops.storage.seams import Lease

DAY = date(2024, 1, 15)
NOW = datetime(2024, 1, 15, 22, tzinfo=UTC)
# player, team, opponent, game, side, calibrated P(win) at the consensus line, predicted minus the line
HOU_PHI, DAL_NOP = "0022300555", "0022300556"
BETS = (
    ("alperensengun", "HOU", "PHI", HOU_PHI, "OVER", 0.60, 4.0),
    ("fredvanvleet", "HOU", "PHI", HOU_PHI, "UNDER", 0.60, -4.0),
    ("tyresemaxey", "PHI", "HOU", HOU_PHI, "OVER", 0.60, 4.0),
    ("kyrieirving", "DAL", "NOP", DAL_NOP, "UNDER", 0.58, -4.0),
    ("zionwilliamson", "NOP", "DAL", DAL_NOP, "OVER", 0.47, 0.5),
)


@pytest.fixture(scope="module")
def lined_file(
    loaded_db_file: Path, pra_lines: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The box scores and the real PRA lines of 2024-01-15, ingested as ``nbaprops ingest lines`` does."""
    folder = tmp_path_factory.mktemp("picks")
    db = folder / "lined.duckdb"
    shutil.copyfile(loaded_db_file, db)
    with pra_lines["2023-24"].open(newline="") as handle:
        day = [r for r in csv.DictReader(handle) if r["event_date"] == DAY.isoformat()]
    storage = open_storage(db)
    ensure_aliases(storage)
    ingest_lines(storage, [write_csv(folder / "day.csv", day)], market="pra")
    storage.execute("CHECKPOINT")
    storage.close()
    return db


def consensus(storage: DuckDBStorage) -> dict[str, dict[str, Any]]:
    """Per player: the board's consensus line and the consensus book's offer there (select_lines' choice)."""
    names, rows = offer_rows(storage, DAY, market="pra")
    offers = [dict(zip(names, r, strict=True)) for r in rows]
    out: dict[str, dict[str, Any]] = {}
    for player in {o["player_lookup"] for o in offers}:
        mains = sorted(
            o["line"] for o in offers if o["player_lookup"] == player and o["is_main"] and not o["outlier"]
        )
        line = float(np.median(mains))
        at = [o for o in offers if o["player_lookup"] == player and o["line"] == line and o["over_price"]]
        out[player] = {"line": line, "book": at[0]["bookmaker"] if at else None, "offers": offers}
    return out


def write_bets(
    storage: DuckDBStorage, bets: tuple[tuple[Any, ...], ...] = BETS, system: str = "ensemble"
) -> None:
    market = consensus(storage)
    with storage.session() as session:
        for k, (player, team, opponent, game, rec, p_win, edge) in enumerate(bets):
            line = market[player]["line"]
            lease = Lease("b1", player, 1, "w", player.title(), k, team, opponent, game, True)
            rows = staging_rows(
                batch_id="b1",
                game_date=DAY,
                leases=[lease],
                market="pra",
                system_id=system,
                predicted_value=np.array([line + edge]),
                model_version="ensemble@pra-20240110-abcd1234",
                feature_version="t",
                now=NOW,
                line_value=np.array([line]),
                over_price=np.array([-110.0]),
                under_price=np.array([-110.0]),
                recommendation=[rec],
                confidence_score=np.array([p_win]),
                expected_value=np.array([p_win * (100 / 110) - (1 - p_win)]),
                sportsbook=[market[player]["book"]],
            )
            name = session.temp_name("bets")
            session.register(name, rows)
            session.execute(f"INSERT INTO player_prop_predictions BY NAME SELECT * FROM {name}")


@pytest.fixture
def night(lined_file: Path, tmp_path: Path) -> Iterator[DuckDBStorage]:
    db = tmp_path / "night.duckdb"
    shutil.copyfile(lined_file, db)
    storage = open_storage(db)
    write_bets(storage)
    yield storage
    storage.close()


LOOSE = Settings(max_bet_fraction=1.0, max_team_fraction=1.0, max_game_fraction=1.0, max_night_fraction=1.0)


def offers_of(storage: DuckDBStorage, player: str) -> list[dict[str, Any]]:
    names, rows = offer_rows(storage, DAY, market="pra")
    return [o for o in (dict(zip(names, r, strict=True)) for r in rows) if o["player_lookup"] == player]


def test_each_bet_goes_to_the_best_eligible_offer_and_is_staked_at_its_price(night: DuckDBStorage) -> None:
    result = picks(night, LOOSE, DAY, bankroll=1000.0)
    chosen = {p["player_lookup"]: p for p in result["picks"]}
    assert {"alperensengun", "fredvanvleet", "tyresemaxey", "kyrieirving"} <= set(chosen)
    for player, pick in chosen.items():
        offers = offers_of(night, player)
        taken = [o for o in offers if o["bookmaker"] == pick["bookmaker"] and o["line"] == pick["line"]]
        assert len(taken) == 1 and taken[0]["eligible"]
        side = pick["side"]
        assert pick["price"] == taken[0][f"{side}_price"]
        assert pick["fair_p"] == pytest.approx(
            taken[0]["fair_p_over"]
            if side == "over"
            else 1 - taken[0]["fair_p_over"] - taken[0]["fair_p_push"],
            abs=1e-6,
        )
        # the stake is Kelly at the chosen offer's price, not at the system's own book's -110
        full = kelly(pick["p_win"], pick["price"], pick["p_lose"])
        assert pick["kelly_full"] == pytest.approx(full, abs=1e-6)
        assert pick["stake"] == pick["kelly_stake"] and pick["cut_by"] is None
        if pick["sized_by"] == "kelly":  # alone on its game
            assert pick["stake"] == pytest.approx(1000 * 0.25 * full, abs=1e-3) and pick["sized_with"] == 1
        else:  # sized with the game's other bets (tests/test_stakes.py); their correlations are small
            assert pick["sized_with"] == sum(p["game_id"] == pick["game_id"] for p in result["picks"]) > 1
            assert pick["stake"] == pytest.approx(1000 * 0.25 * full, rel=0.2)  # large edges: stakes add up
        # no other offer of the side it could take has a higher EV
        assert pick["ev"] >= 0.02 and pick["offers"] >= 1
    # at the system's own line the probability is the calibrated one, unchanged
    same_line = [p for p in result["picks"] if p["line"] == p["system_line"]]
    assert all(p["p_win"] == pytest.approx(p["system_p_win"], abs=1e-4) for p in same_line)
    # Zion's 51% over clears no margin at any price: not a pick
    assert "zionwilliamson" not in chosen and result["dropped_below_margin"] >= 1


def test_the_chosen_offer_has_the_best_ev_of_the_side_among_those_it_can_take(night: DuckDBStorage) -> None:
    pricing = price_offers_of(night, DAY, markets=["pra"])
    assert pricing is not None
    market = consensus(night)
    bets = SystemBets(
        player_lookup=["alperensengun"], market=["pra"], over=np.array([True]),
        line=np.array([market["alperensengun"]["line"]]), p_win=np.array([0.6]),
        predicted=np.array([market["alperensengun"]["line"] + 4.0]),
    )  # fmt: skip
    choice = choose_offers(bets, pricing)
    every = choice.every.to_pylist()
    assert len(every) == len(offers_of(night, "alperensengun")) > 5  # every (book, line) of the side priced
    takeable = [e for e in every if e["takeable"]]
    assert choice.ev[0] == max(e["ev"] for e in takeable)
    # the probability falls as the line rises: carried along the distribution, not copied
    by_line = sorted({(e["line"], round(e["p_win"], 9)) for e in every})
    assert all(a[1] > b[1] for a, b in zip(by_line, by_line[1:], strict=False) if a[0] < b[0])


@pytest.mark.parametrize("via", ["argument", "setting"])
def test_an_excluded_book_is_never_picked(night: DuckDBStorage, via: str) -> None:
    everyone = picks(night, LOOSE, DAY, bankroll=1000.0)
    taken = {p["bookmaker"] for p in everyone["picks"]}
    assert taken
    allowed = ["BetMGM", "caesars"]  # any case
    if via == "argument":
        result = picks(night, LOOSE, DAY, bankroll=1000.0, books=allowed)
    else:
        result = picks(night, LOOSE.replace(books=tuple(allowed)), DAY, bankroll=1000.0)
    assert result["picks"] and {p["bookmaker"] for p in result["picks"]} <= {"BetMGM", "Caesars"}
    assert result["books"] == allowed
    # a book no one posts: nothing to take, and the night says so
    none = picks(night, LOOSE, DAY, bankroll=1000.0, books=["NoSuchBook"])
    assert none["picks"] == [] and none["dropped_no_offer"] == 5
    assert "have no offer they can take (at NoSuchBook" in none["no_bets"][0]


def test_a_price_guarded_line_is_never_picked(night: DuckDBStorage) -> None:
    """Kyrie's 44.5 at BetRivers and Unibet (-275 / +170) is the night's juiciest under at the fair price (EV
    about +0.2): the price guard marks it not eligible, so the under goes elsewhere."""
    kyrie = offers_of(night, "kyrieirving")
    guarded = [o for o in kyrie if not o["eligible"]]
    assert {o["bookmaker"] for o in guarded} >= {"BetRivers", "Unibet"}
    result = picks(night, LOOSE, DAY, bankroll=1000.0)
    pick = next(p for p in result["picks"] if p["player_lookup"] == "kyrieirving")
    assert pick["bookmaker"] not in {o["bookmaker"] for o in guarded if o["line"] == pick["line"]}
    for p in result["picks"]:
        offer = next(
            o
            for o in offers_of(night, p["player_lookup"])
            if o["bookmaker"] == p["bookmaker"] and o["line"] == p["line"]
        )
        assert offer["eligible"] and not offer["outlier"]


def test_an_outlier_or_quarantined_line_is_never_picked(lined_file: Path, tmp_path: Path) -> None:
    """Two gifts for a Sengun under: 47 at +300 (11.5 from the median of every book's lines, so ingest keeps it,
    but 12.5 from the consensus of the main lines: an outlier on the board) and 21.5 at -100 (14 from the median:
    quarantined at ingest). Either is the best EV at the fair price; neither is ever picked."""
    db = tmp_path / "outlier.duckdb"
    shutil.copyfile(lined_file, db)
    rows = [
        {"game_date": DAY.isoformat(), "player_name": "Alperen Sengun", "market": "pra", "line": line,
         "bookmaker": book, "over_price": over, "under_price": under, "posted_at": "2024-01-15T18:00:00Z"}
        for line, book, over, under in (("47", "FarBook", "-500", "+300"), ("21.5", "TypoBook", "-130", "-100"))
    ]  # fmt: skip
    storage = open_storage(db)
    try:
        ingest_lines(storage, [write_csv(tmp_path / "typo.csv", rows, list(rows[0]))])
        assert storage.scalar("SELECT quarantine_reason FROM prop_lines WHERE bookmaker = 'TypoBook'")
        write_bets(storage, (("alperensengun", "HOU", "PHI", HOU_PHI, "UNDER", 0.6, -4.0),))
        offers = offers_of(storage, "alperensengun")
        far = [o for o in offers if o["bookmaker"] == "FarBook"]
        assert far and far[0]["outlier"] and not far[0]["eligible"] and far[0]["ev_under"] > 0.5
        assert not [o for o in offers if o["bookmaker"] == "TypoBook"]
        result = picks(storage, LOOSE, DAY, bankroll=1000.0)
        assert [p["player_lookup"] for p in result["picks"]] == ["alperensengun"]
        assert result["picks"][0]["bookmaker"] not in {"FarBook", "TypoBook"}
        assert result["picks"][0]["line"] < 40
    finally:
        storage.close()


def test_two_picks_on_one_game_are_cut_by_the_game_cap(night: DuckDBStorage) -> None:
    settings = Settings(
        max_bet_fraction=0.05, max_team_fraction=1.0, max_game_fraction=0.06, max_night_fraction=1.0
    )
    loose = {p["player_lookup"]: p for p in picks(night, LOOSE, DAY, bankroll=1000.0)["picks"]}
    result = picks(night, settings, DAY, bankroll=1000.0)
    hou_phi = [p for p in result["picks"] if p["game_id"] == HOU_PHI]
    assert len(hou_phi) >= 2
    assert sum(p["stake"] for p in hou_phi) == pytest.approx(60.0, abs=1e-3)
    cut = [p for p in hou_phi if p["cut_by"] == "game_cap"]
    assert cut and all(p["stake"] < loose[p["player_lookup"]]["stake"] for p in cut)
    assert all(p["kelly_stake"] == pytest.approx(loose[p["player_lookup"]]["stake"], abs=1e-3) for p in cut)
    assert result["cut"]["game_cap"] == len(cut) and result["max_game"] == 60.0
    # the other game's pick is not touched by this game's cap
    kyrie = next(p for p in result["picks"] if p["player_lookup"] == "kyrieirving")
    assert kyrie["cut_by"] is None and kyrie["stake"] == loose["kyrieirving"]["stake"]


def test_two_picks_on_one_team_are_cut_by_the_team_cap_and_the_night_cap_drops(night: DuckDBStorage) -> None:
    settings = Settings(
        max_bet_fraction=0.05, max_team_fraction=0.06, max_game_fraction=1.0, max_night_fraction=1.0
    )
    result = picks(night, settings, DAY, bankroll=1000.0)
    houston = [p for p in result["picks"] if p["team"] == "HOU"]
    assert len(houston) == 2 and sum(p["stake"] for p in houston) == pytest.approx(60.0, abs=1e-3)
    assert [p["cut_by"] for p in houston][-1] == "team_cap"
    tight = Settings(
        max_bet_fraction=0.05, max_team_fraction=1.0, max_game_fraction=1.0, max_night_fraction=0.05
    )
    night_cut = picks(night, tight, DAY, bankroll=1000.0)
    assert night_cut["staked"] == pytest.approx(50.0, abs=1e-3) and night_cut["dropped_night_cap"] >= 1
    assert night_cut["picks"][0]["cut_by"] in (None, "bet_cap", "night_cap")


def test_the_pick_log_holds_the_offer_once_per_night(night: DuckDBStorage) -> None:
    result = picks(night, LOOSE, DAY, bankroll=1000.0, record=True, made_at=NOW)
    assert result["recorded"] == len(result["picks"]) > 0 and result["already_recorded"] == 0
    logged = {r["player_lookup"]: r for r in logged_picks(night, DAY).to_pylist()}
    for pick in result["picks"]:
        row = logged[pick["player_lookup"]]
        assert (row["bookmaker"], row["line"], row["side"], row["price"]) == (
            pick["bookmaker"], pick["line"], pick["side"], pick["price"],
        )  # fmt: skip
        assert (
            row["fair_p"] == pick["fair_p"]
            and row["p_win"] == pick["p_win"]
            and row["stake"] == pick["stake"]
        )
        assert row["system_id"] == "ensemble" and row["batch_id"] == "b1" and row["made_at"] == NOW
    again = picks(
        night, LOOSE, DAY, bankroll=500.0, record=True, made_at=datetime(2024, 1, 15, 23, tzinfo=UTC)
    )
    assert again["recorded"] == 0 and again["already_recorded"] == len(again["picks"])
    rows = logged_picks(night, DAY).to_pylist()
    assert len(rows) == len(result["picks"]) and {r["made_at"] for r in rows} == {
        NOW
    }  # the first record stands
    assert picks(night, LOOSE, DAY)["picks"]  # a run without --record writes nothing
    assert len(logged_picks(night, DAY)) == len(rows)


@pytest.mark.parametrize(
    "books",
    [
        ["'; DROP TABLE pick_log; --"],
        ['=HYPERLINK("http://evil.example","x")', "BetMGM"],
        ["\x00", " ", "Bet\nMGM"],
        ["%", "_", "*"],
    ],
)
def test_hostile_books_are_only_names(night: DuckDBStorage, books: list[str]) -> None:
    result = picks(night, LOOSE, DAY, bankroll=1000.0, books=books, record=True, made_at=NOW)
    assert {p["bookmaker"] for p in result["picks"]} <= {"BetMGM"}
    assert night.scalar("SELECT count(*) FROM pick_log") == len(result["picks"])
    assert night.scalar("SELECT count(*) FROM prop_lines") > 800


def test_too_many_books_are_refused(night: DuckDBStorage) -> None:
    with pytest.raises(InputError, match="--books lists 101 books; at most 100"):
        picks(night, LOOSE, DAY, books=[f"b{i}" for i in range(101)])


def test_one_pick_per_player_unless_correlated(lined_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    shutil.copyfile(lined_file, db)
    storage = open_storage(db)
    try:
        write_bets(storage, BETS[:1])
        write_bets(storage, BETS[:1], system="gbm")  # another system's row is not this one's pick
        result = picks(storage, LOOSE, DAY, bankroll=1000.0)
        assert [p["player_lookup"] for p in result["picks"]] == ["alperensengun"]
        assert picks(storage, LOOSE, DAY, system="gbm")["count"] == 1
    finally:
        storage.close()


def test_min_ev_raises_the_margin_and_picks_carry_their_batch_and_model(night: DuckDBStorage) -> None:
    every = picks(night, LOOSE, DAY, bankroll=1000.0)
    evs = sorted(p["ev"] for p in every["picks"])
    high = picks(night, LOOSE, DAY, bankroll=1000.0, min_ev=evs[-1])
    assert [p["ev"] for p in high["picks"]] == [evs[-1]] and high["ev_margin"] == evs[-1]
    assert high["picks"][0]["batch_id"] == "b1" and high["picks"][0]["trained_through"] == "2024-01-10"


def test_kelly_with_a_push_sizes_on_the_settled_bet() -> None:
    assert kelly(0.53, -110.0) == pytest.approx(0.53 - 0.47 / (100 / 110))
    # a 10% push refunds: Kelly of the 0.5 / 0.4 bet is that of 5/9 against 4/9, not of 0.5 against 0.5
    assert kelly(0.5, 100.0, 0.4) == pytest.approx(kelly(5 / 9, 100.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"system": "nope"}, "unknown system"),
        ({"market": "steals"}, "unknown market"),
        ({"bankroll": 0.0}, "--bankroll must be positive"),
        ({"bankroll": float("nan")}, "--bankroll must be positive"),
    ],
)
def test_bad_choices_are_refused(night: DuckDBStorage, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        picks(night, Settings(), DAY, **kwargs)  # type: ignore[arg-type]


def test_a_date_without_predictions_is_refused(storage: DuckDBStorage) -> None:
    with pytest.raises(InputError, match="no active prediction for 2024-01-15"):
        picks(storage, Settings(), DAY)


def _bets_file(lined_file: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "nbaprops.duckdb"
    shutil.copyfile(lined_file, db)
    storage = open_storage(db)
    write_bets(storage)
    storage.close()
    return db


def test_the_cli_picks_at_your_books_records_once_and_says_how_stakes_were_cut(
    lined_file: Path, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from nbaprops.cli import app

    db = _bets_file(lined_file, tmp_path)
    runner = CliRunner()
    base = ["picks", "--date", DAY.isoformat(), "--db", str(db)]
    shown = runner.invoke(app, [*base, "--books", "BetMGM,Caesars", "--record"])
    assert shown.exit_code == 0, shown.stderr
    assert "cut by" in shown.stdout and "bet_cap" in shown.stdout and "game cap" in shown.stdout
    assert "pick_log: " in shown.stdout and "recorded, 0 already recorded" in shown.stdout
    as_json = json.loads(
        runner.invoke(app, [*base, "--books", "BetMGM,Caesars", "--record", "--json"]).stdout
    )
    assert as_json["recorded"] == 0 and as_json["already_recorded"] == as_json["count"] > 0
    assert {p["bookmaker"] for p in as_json["picks"]} <= {"BetMGM", "Caesars"}
    assert {p["cut_by"] for p in as_json["picks"]} <= {None, "bet_cap", "team_cap", "game_cap", "night_cap"}
    env = {"NBAPROPS_BOOKS": "FanDuel"}
    table = runner.invoke(app, [*base, "--csv"], env=env).stdout.splitlines()
    header = table[0].split(",")
    assert {"bookmaker", "line", "price", "fair_p", "p_win", "ev", "stake", "cut_by"} <= set(header)
    assert {r.split(",")[header.index("bookmaker")] for r in table[1:]} == {"FanDuel"}
    hostile = runner.invoke(app, [*base, "--books", "=cmd|' /C calc'!A0,'; DROP TABLE prop_lines; --"])
    assert hostile.exit_code == 0 and "No picks of ensemble for 2024-01-15" in hostile.stdout
    storage = open_storage(db, read_only=True)
    try:
        assert storage.scalar("SELECT count(*) FROM prop_lines") > 800
        logged = logged_picks(storage, DAY).to_pylist()
        assert len(logged) == as_json["count"]  # the first record only
        # The log keeps how each stake was sized, as the picks said it.
        sized = {p["player_lookup"]: (p["sized_by"], p["sized_with"]) for p in as_json["picks"]}
        assert {r["player_lookup"]: (r["sized_by"], r["sized_with"]) for r in logged} == sized
        assert {by for by, _ in sized.values()} <= {"kelly", "joint"}
    finally:
        storage.close()


def test_the_api_serves_the_same_picks_and_refuses_what_is_not_a_pick(
    lined_file: Path, tmp_path: Path
) -> None:
    import httpx
    from tests.service.conftest import KEYS, LiveServer, service_settings

    db = _bets_file(lined_file, tmp_path / "api")
    settings = service_settings(db, tmp_path / "artifacts", read_auth=True)
    with open_storage(db, read_only=True) as storage:
        library = picks(storage, settings, DAY, books=["BetMGM"])
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as client,
    ):
        served = client.get("/v1/picks", params={"date": DAY.isoformat(), "books": "BetMGM"})
        hostile = client.get(
            "/v1/picks", params={"date": DAY.isoformat(), "books": "'; DROP TABLE pick_log; --"}
        )
        bad = [
            client.get("/v1/picks", params={"date": DAY.isoformat(), **extra})
            for extra in ({"system": "nope"}, {"bankroll": "0"}, {"bankroll": "nan"}, {"min_ev": "1e400"})
        ]
        empty = client.get("/v1/picks", params={"date": "2024-01-20"})
        anonymous = httpx.get(f"{server.url}/v1/picks", params={"date": DAY.isoformat()})
        logged = server.runtime.storage.scalar("SELECT count(*) FROM pick_log")
    assert served.status_code == 200 and served.json()["picks"] == library["picks"] and library["count"] > 0
    assert hostile.status_code == 200 and hostile.json()["picks"] == []
    assert [r.status_code for r in bad] == [422, 422, 422, 422]
    assert empty.status_code == 422 and empty.json()["error"].startswith(
        "no active prediction for 2024-01-20"
    )
    assert anonymous.status_code == 401
    assert logged == 0  # a GET never records


def test_the_offer_taken_is_the_one_the_backtest_grades(night: DuckDBStorage) -> None:
    """picks carries the system's probability with the backtest's ``ev`` rule (docs/backtest.md): for the same
    bets on the same priced offers, both take an offer of the same line, price and EV."""
    from nbaprops.evaluation.offers import _choose
    from nbaprops.picks.offers import _group_of

    pricing = price_offers_of(night, DAY, markets=["pra"])
    assert pricing is not None
    market = consensus(night)
    players = [b[0] for b in BETS]
    over = np.array([b[4] == "OVER" for b in BETS])
    p_win = np.array([b[5] for b in BETS])
    bets = SystemBets(
        players, ["pra"] * len(BETS), over, np.array([market[p]["line"] for p in players]), p_win,
        np.array([market[p]["line"] + b[6] for p, b in zip(players, BETS, strict=True)]),
    )  # fmt: skip
    mine = choose_offers(bets, pricing)
    theirs = _choose(
        pricing, "ev", _group_of(bets, pricing), over, bets.line, np.where(over, p_win, 1 - p_win),
        np.array([market[p]["book"] for p in players], dtype=object),
    )  # fmt: skip
    offers = pricing.offers.to_pylist()
    assert (mine.offer >= 0).all() and (theirs >= 0).all()
    for i, (a, b) in enumerate(zip(mine.offer, theirs, strict=True)):
        side = "over" if over[i] else "under"
        assert (offers[a]["line"], offers[a][f"{side}_price"]) == (
            offers[b]["line"],
            offers[b][f"{side}_price"],
        )
