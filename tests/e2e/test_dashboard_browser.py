"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver), against
the progress app served over real HTTP (and enrollment's, for the accounts' admin pages,
on a second port). Screenshots land in var/screenshots/ to look at."""
from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from shared.config import VAR_DIR
from tests.conftest import CREDENTIALS, UNIT_OPERATOR
from tests.integration.test_cmi5 import package
from tests.integration.test_progress_api import DEADLINE, NORTH, SOUTH, world  # noqa: F401  (fixture)
from tests.support import statements as s
from tests.support.cmi5 import satisfy
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
def admin_served(served, deployment):
    """Enrollment's app (the accounts' admin pages) on a port of its own, each app told
    where the other is (their *_PUBLIC_URL): the sign-in on progress's port opens it."""
    base, _, progress_app = served
    enrollment_app = deployment.app("enrollment")
    server = make_server("127.0.0.1", 0, enrollment_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    urls = {"progress": base, "enrollment": f"http://127.0.0.1:{server.server_port}"}
    for app in (progress_app, enrollment_app):
        settings = app.config["LEARNSTREAM_SETTINGS"]
        app.config["LEARNSTREAM_SETTINGS"] = replace(settings, service_urls=urls,
                                                     configured_public_url=urls[settings.service])
    yield base, urls["enrollment"], enrollment_app
    server.shutdown()


def _driver(languages: str = "en-GB,en"):
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})  # Accept-Language
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture
def browser():
    driver = _driver()
    # Operator credentials on every request, as a script sends them (the pages take Basic too).
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": AUTH})
    yield driver
    driver.quit()


@pytest.fixture
def vietnamese_browser():
    """A browser that asks for Vietnamese and signs in through the dashboard's own page."""
    driver = _driver("vi-VN,vi")
    yield driver
    driver.quit()


def _loaded(driver, timeout=30):
    # Right after a sign-in or a language switch the page may still be replaced: a body
    # found a moment before may be gone (stale) when asked.
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


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
    # The chart is redrawn on every refresh: read its path in one script call, not by a handle.
    assert browser.execute_script(
        "return document.querySelector('#chart path.line.enrolled').getAttribute('d')").startswith("M")
    _shot(browser, "cohort")

    header = browser.find_element(By.CSS_SELECTOR, '#learners th[data-sort="name"]')
    header.click()  # already sorted by name ascending: now descending
    WebDriverWait(browser, 10).until(lambda d: _rows(d, "#learners tbody tr")[0]["cells"][0].startswith("Learner 3"))

    Select(browser.find_element(By.NAME, "state")).select_by_visible_text("overdue")
    WebDriverWait(browser, 10).until(lambda d: len(_rows(d, "#learners tbody tr")) == 2)
    assert "state=overdue" in browser.find_element(By.ID, "csv").get_attribute("href")

    # A new fact reaches the read model: the page shows it without a reload.
    _project(app, [s.completed(2, s.MODULES[0], DEADLINE - timedelta(days=1))])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _tile(browser, "started") != "3":
        time.sleep(0.2)
    assert _tile(browser, "started") == "3"
    _shot(browser, "cohort-filtered")


def test_the_learner_table_shows_each_au_of_a_cmi5_course(served, browser):
    base, clock, app = served
    client = app.test_client()
    course = client.post("/cmi5/courses", data=package(aus=2), content_type="application/zip", headers=AUTH).json
    # cmi5 knows learners by account (9.2.0.0-2): one enrolled so.
    registration = s.new_id()
    _project(app, [s.programme_defined(DEADLINE - timedelta(days=9), cmi5_course=course["id"]),
                   s.enrolled(9, registration, NORTH, DEADLINE - timedelta(days=9), DEADLINE,
                              actor=s.account_learner(9), cmi5_course=course["id"])])
    satisfy(client, course["id"], registration, 0, s.account_learner(9))

    browser.get(f"{base}/dashboard/cohorts/{NORTH}")
    _loaded(browser)
    assert browser.find_element(By.ID, "aus-heading").is_displayed()
    # One script call: the table is re-rendered on each refresh, so handles could go stale.
    squares = browser.execute_script(
        "const row = [...document.querySelectorAll('#learners tbody tr')]"
        "  .find(r => r.querySelector('td').textContent.startsWith('Learner 9'));"
        "return [...row.querySelectorAll('.au')].map(q => ({cls: q.className, title: q.title}))")
    assert [q["cls"] for q in squares] == ["au satisfied", "au not_attempted"]
    assert squares[0]["title"] == "AU 0: satisfied"
    _shot(browser, "cohort-cmi5")


def _project(app, facts) -> None:
    from services.progress.service import SERVICE
    from shared import db
    from shared.consumer import ProjectionRunner

    settings = app.config["LEARNSTREAM_SETTINGS"]
    engine = db.create_engine(settings.database_url)
    runner = ProjectionRunner(settings, engine, SERVICE.projection(settings), SERVICE.offsets, SERVICE.processed)
    runner.process(s.as_records(facts))
    engine.dispose()


def _sign_in(driver, base: str, key: str, secret: str, then: str = "/dashboard"):
    driver.get(f"{base}{then}")
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.NAME, "secret").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" not in d.current_url)
    _loaded(driver)


def _text(driver, css: str) -> str:
    return driver.execute_script("return document.querySelector(arguments[0]).textContent", css)


def test_sign_in_see_the_dashboard_in_vietnamese_and_sign_out(served, vietnamese_browser):
    base, clock, _ = served
    driver = vietnamese_browser
    driver.get(f"{base}/dashboard")
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    assert "Đăng nhập" in _text(driver, "#sign-in h1")
    _shot(driver, "sign-in-vi")

    # A wrong secret: the page again, with the error in Vietnamese.
    driver.find_element(By.NAME, "key").send_keys("ops")
    driver.find_element(By.NAME, "secret").send_keys("wrong")
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sign-in .error"))
    assert _text(driver, "#sign-in .error") == "Sai khóa hoặc mật khẩu."

    _sign_in(driver, base, "ops", CREDENTIALS["ops"])
    cookie = driver.get_cookie("learnstream_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
    assert _text(driver, "#title") == "Tổng quan chiến dịch"
    assert _tile(driver, "enrolled") == "4"
    assert driver.execute_script("return document.querySelector('.tile.enrolled span').textContent").startswith(
        "Đã ghi danh")
    assert _text(driver, "#sign-out button") == "Đăng xuất"
    _shot(driver, "campaign-vi")

    clock.now = DEADLINE + timedelta(hours=2)
    driver.get(f"{base}/dashboard/cohorts/{NORTH}")
    _loaded(driver)
    assert "trang 1 / 1 · 4 học viên" == _text(driver, "#page")
    assert _tile(driver, "overdue") == "2" and _text(driver, '#learners th[data-sort="deadline"]') == "Hạn chót"
    _shot(driver, "cohort-vi")

    # The switch: English for this session, whatever the browser asks for.
    driver.find_element(By.CSS_SELECTOR, '#language button[value="en"]').click()
    _loaded(driver)
    assert driver.current_url.endswith(f"/dashboard/cohorts/{NORTH}")
    assert _text(driver, "#sign-out button") == "Sign out"
    driver.find_element(By.CSS_SELECTOR, '#language button[value="vi"]').click()
    _loaded(driver)

    driver.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)
    _shot(driver, "signed-out-vi")
    driver.get(f"{base}/dashboard")
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)  # the session is gone
    assert driver.execute_script(
        "return fetch('/campaign', {headers: {'X-Requested-With': 'XMLHttpRequest'}}).then(r => r.status)") == 401


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(served, vietnamese_browser):
    base, _, _ = served
    driver = vietnamese_browser
    _sign_in(driver, base, "ops", CREDENTIALS["ops"])
    # What a page on another site would post: the form without the token.
    driver.execute_script("document.querySelector('#sign-out input[name=csrf_token]').remove()")
    driver.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    # The page is being replaced meanwhile: its old body may go stale under the lookup.
    WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "CSRF" in d.find_element(By.TAG_NAME, "body").text)
    _shot(driver, "csrf-refused")
    driver.get(f"{base}/dashboard")
    _loaded(driver)  # still signed in
    assert driver.execute_script("return fetch('/campaign').then(r => r.status)") == 200


def test_an_agency_operator_sees_only_their_units(served, vietnamese_browser):
    base, _, _ = served
    driver = vietnamese_browser
    key, secret, unit = UNIT_OPERATOR
    _sign_in(driver, base, key, secret)
    assert unit in _text(driver, "#who")
    assert [row["cells"][1] for row in _rows(driver, "#cohorts tbody tr")] == [unit]
    assert {row["cells"][0] for row in _rows(driver, "#by-agency tbody tr")} == {unit}
    assert _tile(driver, "enrolled") == "3"
    _shot(driver, "campaign-agency-operator")
    status = driver.execute_script(f"return fetch('/cohorts/{SOUTH}').then(r => r.status)")
    assert status == 404


def test_manage_an_account_on_the_admin_pages_signed_in_on_the_dashboard(admin_served, vietnamese_browser):
    base, admin, enrollment_app = admin_served
    driver = vietnamese_browser
    # Signed out: the admin page sends the browser to the dashboard's sign-in, which brings it back.
    _sign_in(driver, admin, "ops", CREDENTIALS["ops"], then="/admin/accounts")
    assert driver.current_url == f"{admin}/admin/accounts"
    assert _text(driver, "#title") == "Tài khoản" and _text(driver, "#sign-out button") == "Đăng xuất"
    _shot(driver, "accounts-vi")

    driver.find_element(By.NAME, "key").send_keys("lms-hanoi")
    driver.find_element(By.NAME, "display_name").send_keys("LMS Hà Nội")
    Select(driver.find_element(By.NAME, "role")).select_by_value("lms_client")
    driver.find_element(By.NAME, "cohorts").send_keys(f"{NORTH}")
    driver.find_element(By.CSS_SELECTOR, 'input[name=scopes][value="statements/write"]').click()
    driver.find_element(By.CSS_SELECTOR, "#create button[type=submit]").click()
    WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements(By.ID, "secret"))
    secret = _text(driver, "#secret")
    assert len(secret) > 20
    assert [row["cells"][:3] for row in _rows(driver, "#accounts tbody tr")] == [
        ["lms-hanoi", "LMS Hà Nội", "máy khách LMS (LRS)"]]
    _shot(driver, "account-created-vi")
    # The account is the API's, and the new key works (here, enrollment's own table: at once).
    from shared.auth import AccountDirectory

    directory: AccountDirectory = enrollment_app.extensions["learnstream_accounts"]
    directory.refresh()
    assert directory.check("lms-hanoi", secret).role == "lms_client"

    driver.find_element(By.LINK_TEXT, "lms-hanoi").click()  # its page: change, new secret, disable
    WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements(By.ID, "change"))
    assert not driver.find_elements(By.ID, "secret")  # the secret was shown once
    _shot(driver, "account-vi")
    driver.get(f"{admin}/admin/accounts")
    _loaded(driver)
    assert not driver.find_elements(By.ID, "secret")
    # The language switch (the dashboard's, same session) comes back here in English.
    driver.find_element(By.CSS_SELECTOR, '#language button[value="en"]').click()
    WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.ID, "title").text == "Accounts")
    assert driver.current_url == f"{admin}/admin/accounts"
    _shot(driver, "accounts-en")

    # The dashboard links the admin pages for an administrator.
    driver.get(f"{base}/dashboard")
    _loaded(driver)
    assert driver.find_element(By.ID, "accounts-link").get_attribute("href") == f"{admin}/admin/accounts"

    driver.get(f"{admin}/admin/accounts")
    _loaded(driver)
    driver.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)
    driver.get(f"{admin}/admin/accounts")
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/sign-in" in d.current_url)  # signed out there too
