"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver), against
the progress app served over real HTTP. Screenshots land in var/screenshots/ to look at."""
from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from shared.config import VAR_DIR
from tests.integration.test_progress_api import DEADLINE, NORTH, world  # noqa: F401  (fixture)
from tests.support import statements as s
from tests.support.flows import AUTH

SCREENSHOTS = VAR_DIR / "screenshots"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert browser and driver, "no chromium/chromedriver: run `make system-deps` (Debian's chromium, chromium-driver)"
    return browser, driver


@pytest.fixture
def served(world):  # noqa: F811
    client, clock, regs = world
    app = client.application
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", clock, app
    server.shutdown()


@pytest.fixture
def browser():
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    # Operator credentials on every request, as a browser does after the Basic prompt.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": AUTH})
    yield driver
    driver.quit()


def _loaded(driver, timeout=30):
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


def _shot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _tile(driver, name: str) -> str:
    return driver.execute_script(f'return document.querySelector(\'.tile[data-count="{name}"] b\').textContent')


def _rows(driver, css: str) -> list[dict]:
    """Read rows in one script call: the page re-renders live, so element handles go stale."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(r => ({"
        "  cls: r.className, cells: [...r.querySelectorAll('td')].map(td => td.textContent)}))", css)


def test_campaign_overview(served, browser):
    base, _, _ = served
    browser.get(f"{base}/dashboard")
    _loaded(browser)
    assert _tile(browser, "enrolled") == "4" and _tile(browser, "certified") == "1"
    assert len(_rows(browser, "#cohorts tbody tr")) == 2
    agencies = {row["cells"][0] for row in _rows(browser, "#by-agency tbody tr")}
    assert agencies == {"Customs", "Revenue agency"}
    assert _shot(browser, "campaign").stat().st_size > 10_000


def test_cohort_page_table_sort_filter_overdue_and_live_refresh(served, browser):
    base, clock, app = served
    clock.now = DEADLINE + timedelta(hours=2)
    browser.get(f"{base}/dashboard/cohorts/{NORTH}?refresh=500")
    _loaded(browser)
    assert _tile(browser, "overdue") == "2"
    rows = _rows(browser, "#learners tbody tr")
    assert len(rows) == 4
    assert {r["cells"][0] for r in rows if "overdue" in r["cls"]} == {"Learner 1", "Learner 2"}
    assert browser.find_element(By.CSS_SELECTOR, "#chart path.line.enrolled").get_attribute("d").startswith("M")
    _shot(browser, "cohort")

    header = browser.find_element(By.CSS_SELECTOR, '#learners th[data-sort="name"]')
    header.click()  # already sorted by name ascending: now descending
    WebDriverWait(browser, 10).until(lambda d: _rows(d, "#learners tbody tr")[0]["cells"][0].startswith("Learner 3"))

    Select(browser.find_element(By.NAME, "state")).select_by_visible_text("overdue")
    WebDriverWait(browser, 10).until(lambda d: len(_rows(d, "#learners tbody tr")) == 2)
    assert "state=overdue" in browser.find_element(By.ID, "csv").get_attribute("href")

    # A new fact reaches the read model: the page shows it without a reload.
    from services.progress.service import SERVICE
    from shared import db
    from shared.consumer import ProjectionRunner

    settings = app.config["LEARNSTREAM_SETTINGS"]
    engine = db.create_engine(settings.database_url)
    runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed)
    runner.process(s.as_records([s.completed(2, s.MODULES[0], DEADLINE - timedelta(days=1))]))
    engine.dispose()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _tile(browser, "started") != "3":
        time.sleep(0.2)
    assert _tile(browser, "started") == "3"
    _shot(browser, "cohort-filtered")
