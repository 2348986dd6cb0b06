"""The dashboard in a real headless browser (Debian's chromium driven by Selenium through chromium-driver):
the progress bar of a running batch moves, the board shows the predictions with their lines, the picks page the
API's picks, a board market's link its ladder, and nothing is loaded from anywhere but the server. Screenshots are saved under the test's tmp dir."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import PRA_LINES
from tests.service.conftest import KEYS, LiveServer, copy_db, service_settings, wait_for

from nbaprops.pipeline.slate import SlatePredictor

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run "
    "installs them)",
)
DAY = "2025-02-23"  # a date with real PRA lines


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def slow_live(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server whose one worker claims 4 requests at a time and pauses 60 ms before each chunk, so a slate
    takes several seconds to watch on any machine (unpaced, a fast CI machine finished 301 requests in 3 s and
    the page saw one value between the first and the last; progress is read every half second)."""
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("browser"))
    predict_chunk = SlatePredictor.predict_chunk

    def paced(self: SlatePredictor, storage: Any, leases: Any) -> Any:
        time.sleep(0.06)
        return predict_chunk(self, storage, leases)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SlatePredictor, "predict_chunk", paced)
        settings = service_settings(db, artifacts, chunk_size=4, workers=1, upload_limit_mb=8.0)
        with LiveServer(settings) as server:
            yield server


def lines_of(day: str) -> str:
    with PRA_LINES["2024-25"].open() as handle:
        rows = list(csv.reader(handle))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(rows[0])
    writer.writerows(r for r in rows[1:] if r[2] == day)
    return out.getvalue()


def progress(driver: Any) -> tuple[float, float, str] | None:
    return driver.execute_script(  # type: ignore[no-any-return]
        "const p = document.querySelector('#progress progress');"
        "const s = document.querySelector('#progress [data-field=state]');"
        "return p && s ? [p.value, p.max, s.textContent] : null;"
    )


def same_origin_only(driver: Any, origin: str) -> None:
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(origin) for url in loaded), loaded
    severe = [
        e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert not severe, severe


def test_progress_moves_live_and_the_board_shows_the_lines(
    browser: Any, slow_live: LiveServer, pra_lines: dict[str, Path], tmp_path: Path
) -> None:
    base = slow_live.url
    with httpx.Client(base_url=base, headers={"X-API-Key": KEYS[0]}, timeout=60) as client:
        ingested = client.post(
            "/v1/ingest/lines", files={"files": ("pra_odds.csv", lines_of(DAY), "text/csv")}
        )
        assert ingested.status_code == 200 and ingested.json()["rows_added"] > 100, ingested.text
        browser.get(base + "/")
        # Once in a full parallel run (load about 2 per core) the page source read right after get() was empty:
        # wait for the page rather than take the first read.
        wait_for(lambda: "No batch yet" in browser.page_source, timeout=30, interval=0.1)
        started = client.post("/v1/batches", json={"game_date": DAY, "markets": ["pra"]})
        assert started.status_code == 202, started.text
        batch_id = started.json()["batch_id"]

    browser.get(f"{base}/batches/{batch_id}")
    seen: list[tuple[float, float, str]] = []

    def ended() -> bool:
        value = progress(browser)
        if value is not None:
            seen.append(value)
        return value is not None and value[2] != "running" and value[0] == value[1]

    wait_for(ended, timeout=180, interval=0.05)
    values = [v for v, _, _ in seen]
    assert values == sorted(values), values
    running = {v for v, total, state in seen if state == "running" and 0 < v < total}
    assert len(running) >= 2, seen  # the bar moved while the page stayed open, without a reload
    assert seen[-1][2] == "complete"
    wait_for(lambda: "rows_inserted" in browser.page_source, timeout=10)  # the page reloads itself at the end
    browser.save_screenshot(str(tmp_path / "batch.png"))
    assert browser.find_element("css selector", "svg[aria-label='Requests by state']")
    same_origin_only(browser, base)

    browser.get(f"{base}/board/{DAY}")
    rows = browser.find_elements("css selector", "table.board tbody tr")
    assert len(rows) > 50
    with_line = [r for r in rows if r.find_elements("css selector", "td")[6].text]
    assert with_line and all(
        r.find_elements("css selector", "td")[7].text for r in with_line
    )  # P(over) beside
    chart = browser.find_element("css selector", "svg[aria-label^='Prediction vs line']")
    assert chart.find_elements("css selector", "path") and "nothing to compare" not in chart.get_attribute(
        "outerHTML"
    )
    header = browser.find_elements("css selector", "table.board th")[9]
    assert header.text.startswith("EV")
    header.click()
    assert header.get_attribute("aria-sort") in ("ascending", "descending")
    browser.save_screenshot(str(tmp_path / "board.png"))
    same_origin_only(browser, base)

    browser.get(f"{base}/board/{DAY}?system=moving_average&bets_only=true")
    bets = browser.find_elements("css selector", "table.board tbody tr")
    assert all(r.find_elements("css selector", "td")[8].text in ("OVER", "UNDER") for r in bets)
    expected = httpx.get(
        f"{base}/v1/predictions", params={"date": DAY, "system": "moving_average", "bets_only": True}
    ).json()["count"]
    assert len(bets) == expected  # the filter is the API's (how many bets there are is the model's business)
    if not bets:
        assert "No active prediction" in browser.page_source

    # The picks of the night: the API's, rendered (a table, or the reason there is none), from the server only.
    browser.get(f"{base}/picks/{DAY}?system=moving_average&market=pra")
    wait_for(lambda: f"Picks of {DAY}" in browser.page_source, timeout=30, interval=0.1)
    picked = browser.find_elements("css selector", "table.picks tbody tr")
    api_picks = httpx.get(
        f"{base}/v1/picks", params={"date": DAY, "system": "moving_average", "market": "pra"}
    ).json()
    assert len(picked) == api_picks["count"]
    if picked:
        header = browser.find_elements("css selector", "table.picks th")[10]
        assert header.text.startswith("EV")
        header.click()
        assert header.get_attribute("aria-sort") in ("ascending", "descending")
    else:
        reasons = browser.find_elements("css selector", "ul.messages li")
        assert (
            "No picks of moving_average" in browser.page_source
            and len(reasons) == len(api_picks["no_bets"]) > 0
        )
    browser.save_screenshot(str(tmp_path / "picks.png"))
    same_origin_only(browser, base)
    # A lined market of the board opens its ladder: fair odds at every half point, the books' offers beside.
    browser.get(f"{base}/board/{DAY}?market=pra")
    browser.find_element("css selector", "table.board tbody td a").click()
    wait_for(lambda: browser.find_elements("css selector", "table.ladder tbody tr"), timeout=30, interval=0.1)
    rungs = browser.find_elements("css selector", "table.ladder tbody tr")
    assert len(rungs) >= 20 and browser.find_elements(
        "css selector", "table.ladder tr.consensus td.offers span"
    )
    browser.find_elements("css selector", "table.ladder th")[0].click()
    first = browser.find_elements("css selector", "table.ladder tbody tr td")[0].text
    assert float(first) == max(float(r.find_elements("css selector", "td")[0].text) for r in rungs)
    browser.save_screenshot(str(tmp_path / "ladder.png"))
    same_origin_only(browser, base)

    browser.get(base + "/")
    assert browser.find_element("css selector", f"#batch-{batch_id} [data-field=state]").text == "complete"
    browser.save_screenshot(str(tmp_path / "batches.png"))
    assert (tmp_path / "board.png").stat().st_size > 10_000


EVIL_PAGE = """<!doctype html><html><body>
<form id="upload" method="post" enctype="multipart/form-data" action="{service}/v1/ingest/lines">
  <input type="file" name="files" id="files">
</form>
<form id="stalled" method="post" action="{service}/v1/check-stalled">
  <input type="hidden" name="stall_minutes" value="0">
</form>
<script>
  const csv = {lines};
  const transfer = new DataTransfer();
  transfer.items.add(new File([csv], "lines.csv", {{type: "text/csv"}}));
  document.getElementById("files").files = transfer.files;
  document.getElementById("{form}").submit();
</script>
</body></html>"""


def answered(server: LiveServer, route: str, status: int) -> float:
    """How many POSTs to ``route`` the server answered with ``status`` (its latency histogram's count)."""
    import re

    metrics = httpx.get(f"{server.url}/metrics").text
    series = re.escape(f'{{method="POST",route="{route}",status="{status}"}}')
    found = re.search(rf"nbaprops_http_request_duration_seconds_count{series} (\S+)", metrics)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def open_live(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server without API keys (loopback only, every caller trusted): what a page elsewhere would attack."""
    db = copy_db(loaded_db_file, tmp_path_factory.mktemp("browser-open"))
    with LiveServer(service_settings(db, artifacts, api_keys=())) as server:
        yield server


@pytest.fixture(scope="module")
def evil_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A web server on another loopback port (another origin) serving the pages of ``pages`` by name."""
    import http.server
    import threading

    pages: dict[str, str] = {}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.lstrip("/"), "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("form", ["upload", "stalled"])
def test_a_page_on_another_origin_cannot_post_to_a_keyless_server(
    browser: Any, open_live: LiveServer, evil_site: tuple[str, dict[str, str]], form: str
) -> None:
    """A real page on another origin (another loopback port) submits a form to the service: a multipart upload
    of a lines file (set through DataTransfer, as a script can), or a form post to /v1/check-stalled.

    Before: the upload stored its rows and check-stalled ran (200), since multipart and form posts need no
    CORS preflight and the service never looked at ``Origin``. Now: 403 and nothing stored.
    """
    import json

    origin, pages = evil_site
    day_lines = lines_of(DAY)
    pages[f"{form}.html"] = EVIL_PAGE.format(service=open_live.url, lines=json.dumps(day_lines), form=form)
    storage = open_live.runtime.storage
    before = storage.scalar("SELECT count(*) FROM prop_lines")
    path = "/v1/ingest/{kind}" if form == "upload" else "/v1/check-stalled"
    answered_before = answered(open_live, path, 200)

    browser.get(f"{origin}/{form}.html")
    wait_for(lambda: browser.current_url.startswith(open_live.url), timeout=30, interval=0.05)
    wait_for(lambda: "cross-site request refused" in browser.page_source, timeout=30, interval=0.05)
    assert "Forbidden" in browser.page_source
    assert storage.scalar("SELECT count(*) FROM prop_lines") == before
    assert answered(open_live, path, 200) == answered_before  # the route never answered 200
    assert answered(open_live, "unmatched", 403) >= 1  # refused before any route ran
