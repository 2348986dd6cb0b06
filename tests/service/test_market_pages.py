"""The dashboard's market pages (issue 20) through HTTP on a real DuckDB file: the shipped box scores, the real PRA
lines of 2024-01-15 (up to 9 books per player, alternate lines) and the system's bets of ``tests/test_picks.py``
written in. ``/picks/{date}`` shows what ``GET /v1/picks`` answers, ``/ladder/{date}`` what ``GET /v1/ladder``
answers; hostile query values are refused or shown as text, never as markup, and never cost a 500.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.service.conftest import KEYS, LiveServer, service_settings
from tests.test_picks import DAY, _bets_file, lined_file  # noqa: F401 (lined_file: a fixture used here)

DATE = DAY.isoformat()
BOOKS = "BetMGM,Caesars"
TAG = '<q data-hostile="1">'  # markup a hostile value carries: the page must show it as text, never as a tag


class Tables(HTMLParser):
    """The text of every cell of every table of a page, by the table's class: {class: [[cell, ...], ...]}, and
    the links of each cell."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_body = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
            self.tables.setdefault(self._table, [])
            self.links.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None and (self._in_body or "kv" in self._table):
            self.tables[self._table].append([])
            self.links[self._table].append([])
        elif tag == "tbody":
            self._in_body = True
        elif tag in ("td", "th") and self._table is not None and self.tables[self._table]:
            self._cell = []
        elif tag == "a" and self._cell is not None and self._table is not None:
            self.links[self._table][-1].append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def odds(value: float | None) -> str:
    return "" if value is None else f"{value:+.0f}"


@pytest.fixture(scope="module")
def market_live(lined_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:  # noqa: F811
    """A server (reads behind a key) over the night of 2024-01-15 with the system's bets written in."""
    folder = tmp_path_factory.mktemp("market-pages")
    db = _bets_file(lined_file, folder)
    with LiveServer(service_settings(db, folder / "artifacts", read_auth=True)) as server:
        yield server


@pytest.fixture(scope="module")
def client(market_live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=market_live.url, headers={"X-API-Key": KEYS[0]}, timeout=60) as c:
        yield c


def only_own_scripts(page: str) -> None:
    """The page's scripts are the shipped file only (the CSP allows nothing else): no inline script."""
    assert re.findall(r"<script[^>]*>", page) == [
        re.search(r'<script src="[^"]*/static/app\.js" defer>', page)[0]
    ]  # type: ignore[index]


def test_the_picks_page_shows_the_picks_of_the_api(client: httpx.Client) -> None:
    api = client.get("/v1/picks", params={"date": DATE, "books": BOOKS}).json()
    response = client.get(f"/picks/{DATE}", params={"books": BOOKS})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = Tables(response.text)
    rows = page.tables["sortable picks"]
    assert api["count"] > 0 and len(rows) == api["count"]
    shown = sorted(
        (r[0], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[13], r[14]) for r in rows
    )  # player, market, side, book, line, price, fair P, P(win), EV, stake, cut by
    expected = sorted(
        (p["player_name"], p["market"], p["side"], p["bookmaker"], f"{p['line']:.1f}", odds(p["price"]),
         f"{p['fair_p']:.3f}", f"{p['p_win']:.3f}", f"{p['ev']:.3f}", f"{p['stake']:.2f}", p["cut_by"] or "")
        for p in api["picks"]
    )  # fmt: skip
    assert shown == expected
    assert {r[5] for r in rows} <= {"BetMGM", "Caesars"}  # the user's books only
    assert any(r[14] for r in rows)  # at least one stake was cut by a cap, and the page says which
    totals = dict(page.tables["kv totals"])  # type: ignore[arg-type]
    assert totals["picks"] == str(api["count"])
    assert totals["staked"].startswith(f"{api['staked']:.2f} of {api['bankroll']:.2f}")
    assert all(f"{cap} {n}" in totals["stakes cut by"] for cap, n in api["cut"].items())
    # each player links to the ladder of that player-market, which answers
    link = html.unescape(Tables(response.text).links["sortable picks"][0][0])
    assert "/ladder/2024-01-15?" in link and "market=pra" in link
    assert client.get(link).status_code == 200
    only_own_scripts(response.text)


def test_the_picks_page_takes_the_apis_parameters(client: httpx.Client) -> None:
    params = {"system": "ensemble", "market": "pra", "bankroll": "250", "min_ev": "0.1", "correlated": "true"}
    api = client.get("/v1/picks", params={"date": DATE, **params}).json()
    every = client.get("/v1/picks", params={"date": DATE, **params, "min_ev": "0"}).json()
    assert 0 < api["count"] < every["count"]  # the least EV leaves a pick out: the page must pass it on
    rows = Tables(client.get(f"/picks/{DATE}", params=params).text).tables["sortable picks"]
    assert len(rows) == api["count"] and all(float(r[10]) >= 0.1 for r in rows)
    assert sorted(r[13] for r in rows) == sorted(f"{p['stake']:.2f}" for p in api["picks"])
    page = Tables(client.get(f"/picks/{DATE}", params=params).text)
    assert dict(page.tables["kv totals"])["staked"].endswith(  # type: ignore[arg-type]
        f"of 250.00 ({100 * api['staked'] / 250:.1f}%)"
    )


def test_an_empty_night_says_why(client: httpx.Client) -> None:
    no_prediction = client.get("/picks/2024-01-20")
    assert no_prediction.status_code == 200
    assert "No picks of ensemble for 2024-01-20" in no_prediction.text
    assert "no active prediction for 2024-01-20" in no_prediction.text
    no_book = client.get(f"/picks/{DATE}", params={"books": "NoSuchBook"})
    assert no_book.status_code == 200 and "sortable picks" not in no_book.text
    assert "none at an offer" in no_book.text and "have no offer they can take (at NoSuchBook" in no_book.text


def test_an_unknown_field_of_a_pick_is_shown_as_text(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field a later version of the picks adds (a withdrawn flag, a note) gets a column of its own, escaped."""
    from nbaprops.service.routers import dashboard

    real = dashboard.night_picks

    def with_more(*args: Any, **kwargs: Any) -> dict[str, Any]:
        result = real(*args, **kwargs)
        for k, pick in enumerate(result["picks"]):
            pick["withdrawn"] = k == 0
            pick["note"] = TAG
        return result

    monkeypatch.setattr(dashboard, "night_picks", with_more)
    response = client.get(f"/picks/{DATE}")
    assert response.status_code == 200
    assert TAG not in response.text and "&lt;q data-hostile=&#34;1&#34;&gt;" in response.text
    rows = Tables(response.text).tables["sortable picks"]
    assert rows and rows[0][-2:] == ["True", TAG] and all(r[-2] == "False" for r in rows[1:])
    assert "<th>withdrawn</th><th>note</th>" in response.text


def test_the_ladder_page_shows_the_ladder_of_the_api(client: httpx.Client) -> None:
    params = {"date": DATE, "player": "Kyrie Irving", "market": "pra"}
    api = client.get("/v1/ladder", params=params).json()
    response = client.get(f"/ladder/{DATE}", params={"player": "Kyrie Irving", "market": "pra"})
    assert response.status_code == 200
    page = Tables(response.text)
    rows = page.tables["sortable ladder"]
    assert [r[:7] for r in rows] == [
        [f"{r['line']:.1f}", f"{r['p_over']:.3f}", f"{r['p_push']:.3f}", f"{r['p_under']:.3f}",
         odds(r["fair_over_odds"]), odds(r["fair_under_odds"]), str(len(r["offers"]))]
        for r in api["lines"]
    ]  # fmt: skip
    offered = [(r, a) for r, a in zip(rows, api["lines"], strict=True) if a["offers"]]
    assert sum(len(a["offers"]) for _, a in offered) >= 9  # the consensus line and alternates, many books
    for row, rung in offered:  # every offer at its line, with both prices
        for offer in rung["offers"]:
            assert f"{offer['bookmaker']} {odds(offer['over_price'])}" in row[7]
    assert dict(page.tables["kv"])["consensus line"] == f"{api['consensus_line']:.1f}"  # type: ignore[arg-type]
    assert response.text.count('class="consensus"') == 1
    only_own_scripts(response.text)
    narrow = Tables(client.get(f"/ladder/{DATE}", params={**params, "low": "20", "high": "22"}).text)
    assert [r[0] for r in narrow.tables["sortable ladder"]] == ["20.0", "20.5", "21.0", "21.5", "22.0"]
    # the form sends an empty range when none is typed: the default range, as without one
    empty = Tables(client.get(f"/ladder/{DATE}", params={**params, "low": "", "high": ""}).text)
    assert empty.tables["sortable ladder"] == rows


def test_the_board_links_each_lined_market_to_its_ladder_and_the_picks(client: httpx.Client) -> None:
    page = client.get(f"/board/{DATE}", params={"limit": "all"}).text
    tables = Tables(page)
    links = [html.unescape(cell) for row in tables.links["sortable board"] for cell in row]
    assert len(links) == 5 and all(  # the five bets written in, each with its line
        re.search(r"/ladder/2024-01-15\?player=[^&]+&market=pra$", u) for u in links
    )
    assert sum(1 for row in tables.tables["sortable board"] if row[12]) == len(links)  # the lined rows, each
    for url in links[:3]:
        assert client.get(url).status_code == 200
    assert f'/picks/{DATE}"' in page and re.search(r'<nav>.*href="[^"]*/picks"', page, re.S)


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/ladder/2024-01-15", {"player": "Nobody Atall", "market": "pra"}, 404, "no pra line for &#39;Nobody Atall&#39;"),
        ("/ladder/2024-01-20", {"player": "Kyrie Irving", "market": "pra"}, 404, "no lines on 2024-01-20"),
        ("/ladder/2024-01-15", {"player": "Kyrie Irving", "market": "blocks"}, 422, "market: Input should be"),
        ("/ladder/2024-01-15", {"player": "Kyrie Irving", "market": "pra", "low": "30", "high": "20"}, 422, "low 30 is above high 20"),
        ("/ladder/2024-01-15", {"player": "x" * 101, "market": "pra"}, 422, "player: String should have at most 100"),
        ("/ladder/2024-01-15", {"player": "Kyrie Irving", "market": "pra", "low": "-1"}, 422, "low: a line from 0 to 200"),
        ("/ladder/2024-01-15", {"player": "Kyrie Irving", "market": "pra", "high": "nan"}, 422, "high: a line from 0 to 200"),
        ("/ladder/2024-01-15", {"player": "Kyrie Irving", "market": "pra", "high": "<b>"}, 422, "high: a line from 0 to 200"),
        ("/ladder/2024-01-15", {"market": "pra"}, 422, "player: Field required"),
        ("/picks/2024-01-15", {"system": "nope"}, 422, "system: Input should be"),
        ("/picks/2024-01-15", {"market": "blocks"}, 422, "market: not a market"),
        ("/picks/2024-01-15", {"bankroll": "0"}, 422, "bankroll: Input should be greater than 0"),
        ("/picks/2024-01-15", {"bankroll": "nan"}, 422, "bankroll:"),
        ("/picks/2024-01-15", {"books": "a" * 2001}, 422, "books: String should have at most 2000"),
        ("/picks/2024-01-15", {"books": ",".join(f"b{i}" for i in range(101))}, 422, "books lists 101 books; at most 100"),
        ("/picks/15-01-2024", {}, 422, "is not a date"),
        # the other pages of the dashboard answer the same way now
        ("/batches/nope", {}, 404, "no batch &#39;nope&#39;"),
        ("/board/2024-01-15", {"market": "blocks"}, 422, "unknown market(s) blocks"),
    ],
)  # fmt: skip
def test_a_refused_page_says_why_in_a_page(
    client: httpx.Client, path: str, params: dict[str, str], status: int, says: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert says in response.text and 'class="error"' in response.text
    only_own_scripts(response.text)


def test_picks_without_a_date_go_to_the_newest_batchs_date(
    client: httpx.Client, market_live: LiveServer
) -> None:
    from nbaprops.clock import resolve_day

    today = resolve_day("TODAY", market_live.runtime.clock).isoformat()  # no batch in this file: today
    moved = client.get("/picks", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].endswith(f"/picks/{today}")


def test_the_pages_need_the_key_the_reads_need(market_live: LiveServer) -> None:
    for path in (f"/picks/{DATE}", f"/ladder/{DATE}?player=Kyrie+Irving&market=pra", "/picks"):
        refused = httpx.get(market_live.url + path, timeout=30)
        assert refused.status_code == 401 and refused.json()["kind"] == "Unauthorized"
        # even with a query that is not valid: the key is checked first, and the answer stays the API's
        invalid = httpx.get(market_live.url + path, params={"market": "blocks"}, timeout=30)
        assert invalid.status_code == 401 and invalid.json()["kind"] == "Unauthorized"


HOSTILE = st.text(st.characters(exclude_categories=("Cs",)), max_size=60).map(lambda t: t + TAG)


@given(books=HOSTILE, player=HOSTILE)
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_books_and_players_are_text_or_refused_never_markup(
    client: httpx.Client, books: str, player: str
) -> None:
    pages = [
        client.get(f"/picks/{DATE}", params={"books": books}),
        client.get(f"/ladder/{DATE}", params={"player": player, "market": "pra", "books": books}),
        client.get(f"/ladder/{DATE}", params={"player": "Kyrie Irving", "market": "pra", "books": books}),
    ]
    for response in pages:
        assert response.status_code in (200, 404, 422), response.text
        assert response.headers["content-type"].startswith("text/html")
        assert TAG not in response.text  # shown, if at all, as text
    assert pages[1].status_code in (404, 422)  # no player of that name has a line
    if pages[0].status_code == 200:  # books nobody posts: no pick, and the page says why
        assert "No picks of ensemble" in pages[0].text
