"""The operator console in a real browser (Debian's Chromium driven by Playwright) against
the real app on uvicorn (tests.api.test_widget_api.serve) and the demo tenant.

A receptionist's question, "why can't I book Ava at ten to four?", answered by looking:
sign in with the admin key, open the tenant, open Ava's partially booked day, click an
instant inside a booking's buffer and read `booked` with the booking's range. Also: a
recalculation followed to the end, the heatmap, webhooks and feeds when the status has
them, nothing shown or fetched without the key, and axe-core on every view.

Screenshots land in test-artifacts/ (git-ignored); docs/console-*.png are copies.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from slotmill.config import Settings
from slotmill.demo import DEMO_SLUG, demo_id, load_demo
from slotmill.jobs.queue import drain_one
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.api.test_console_day import partially_booked_day
from tests.api.test_widget_api import serve
from tests.api.test_widget_browser import ARTIFACTS

pytestmark = pytest.mark.browser

KEY = "console-" + "k" * 32
LONDON = ZoneInfo("Europe/London")
AVA, HAIRCUT = demo_id("staff", "Ava Clarke"), demo_id("service", "Haircut")
# A bound on waiting for the page, not a performance threshold.
SETTLE_S = 30.0


@dataclass
class Console:
    base: str
    db_url: str
    day: date  # Ava's partially booked day: a Haircut 15:00-15:45, 15 minutes after
    booked: datetime

    @property
    def url(self) -> str:
        return f"{self.base}/admin/"


@pytest.fixture
def console(env_db: str) -> Iterator[Console]:
    with psycopg.connect(env_db) as conn:
        t = load_demo(conn)
        conn.commit()
        refresh(conn, load_tenant(conn, DEMO_SLUG))
        day, booked = partially_booked_day(conn, t)
    with serve(Settings(admin_key=KEY, rate_limit_reads=100_000, rate_limit_holds=100_000)) as base:
        yield Console(base, env_db, day, booked)


@dataclass
class Tab:
    page: Page
    errors: list[str]
    requests: list[str]

    def admin_requests(self) -> list[str]:
        return [u for u in self.requests if "/v1/" in u]


def _open(browser: Browser, url: str, *, width: int = 1280, height: int = 900) -> tuple[BrowserContext, Tab]:
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": width, "height": height}, timezone_id="Europe/London", locale="en-GB")
    page = ctx.new_page()
    tab = Tab(page, [], [])
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.on("request", lambda r: tab.requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("#login:not([hidden]), #tenants:not([hidden]), #tenant:not([hidden])")
    return ctx, tab


def _sign_in(tab: Tab, key: str = KEY) -> None:
    tab.page.fill("#key", key)
    tab.page.click("#login-form button[type=submit]")


def _open_tenant(tab: Tab) -> None:
    page = tab.page
    page.wait_for_selector("#tenants:not([hidden])")
    page.click("#tenant-table a[href='#/t/demo']")
    page.wait_for_selector("#tenant:not([hidden]) #status-list dt")


def _open_day(tab: Tab, console: Console) -> None:
    page = tab.page
    page.select_option("#day-staff", str(AVA))
    page.select_option("#day-service", str(HAIRCUT))
    page.fill("#day-date", console.day.isoformat())
    page.click("#day-form button[type=submit]")
    page.wait_for_selector("#day-view:not([hidden]) #timeline svg")


def _click_instant(page: Page, at: datetime) -> None:
    """Click the timeline where ``at`` is drawn."""
    svg = page.locator("#timeline svg")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    assert box is not None
    start, end, x0, x1, width = page.eval_on_selector(
        "#timeline svg", "s => ['start', 'end', 'x0', 'x1', 'width'].map(k => Number(s.dataset[k]))"
    )
    t = at.timestamp()
    assert start <= t < end
    px = x0 + (t - start) / (end - start) * (x1 - x0)
    page.mouse.click(box["x"] + px * box["width"] / width, box["y"] + box["height"] - 30)


def _axe(page: Page, step: str) -> None:
    """axe-core over the page: no serious or critical finding."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{step}:\n" + results.generate_report()


def _hhmm(t: datetime) -> str:
    return t.astimezone(LONDON).strftime("%H:%M")


def _until(check: Any) -> Any:
    deadline = time.monotonic() + SETTLE_S
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --- the receptionist's question --------------------------------------------------------------


def test_sign_in_open_a_day_and_click_inside_a_buffer(browser: Browser, console: Console) -> None:
    ctx, tab = _open(browser, console.url)
    page = tab.page
    assert page.is_visible("#login") and tab.admin_requests() == []
    page.screenshot(path=ARTIFACTS / "console-login.png")
    _sign_in(tab)
    _open_tenant(tab)
    status = page.inner_text("#status-list")
    assert "Slots" in status and "Queue" in status
    assert page.inner_text("#tenant-heading") == "Fern & Finch Salon"

    _open_day(tab, console)
    summary = page.inner_text("#day-summary")
    assert summary.startswith("Ava Clarke, ") and "Haircut" in summary and "Europe/London" in summary
    # What is drawn is the day's own: the booking and its buffer, slots and the starts it removed.
    assert page.locator("#timeline rect.booked").count() >= 1
    assert page.locator("#timeline rect.buffer").count() >= 1
    assert page.locator("#timeline rect.cand-slot").count() > 0
    assert page.locator("#timeline rect.cand-no").count() > 0
    assert page.locator("#timeline rect.drift").count() == 0

    # 15:52, in the 15 minutes after the 15:00-15:45 Haircut.
    inside = console.booked + timedelta(minutes=52)
    _click_instant(page, inside)
    page.wait_for_selector("#explain:not([hidden]) #explain-reasons li")
    assert page.inner_text("#explain-verdict") == "Not offered."
    booked = page.locator("#explain-reasons li[data-code='booked']")
    assert booked.count() == 1
    text = booked.inner_text()
    own = f"{_hhmm(console.booked)}–{_hhmm(console.booked + timedelta(minutes=45))}"
    assert own in text and "cust-test" in text  # the booking's range, as booked
    assert f"{_hhmm(console.booked)}–{_hhmm(console.booked + timedelta(hours=1))}" in text  # with its buffer
    at = int(page.get_attribute("#timeline line.cursor", "data-at") or 0)
    assert console.booked.timestamp() + 45 * 60 <= at < console.booked.timestamp() + 60 * 60
    page.screenshot(path=ARTIFACTS / "console-day.png", full_page=False)
    page.locator("#day").screenshot(path=ARTIFACTS / "console-timeline.png")

    # The same question by keyboard: type a time.
    page.fill("#explain-time", _hhmm(console.booked - timedelta(minutes=30)))
    page.press("#explain-time", "Enter")
    expect(page.locator("#explain-heading")).to_have_text(
        re.compile("^Why " + _hhmm(console.booked - timedelta(minutes=30)))
    )
    page.wait_for_selector("#explain-reasons li[data-code='booked']")

    # A free start says so; the rows below list every start with its reasons.
    page.click("#day-details summary")
    offered = page.locator("#candidate-rows tr", has=page.locator("td.good")).first
    offered.locator("button").click()
    page.wait_for_selector("#explain-reasons li[data-code='available']")
    assert page.inner_text("#explain-verdict").startswith("Offered")
    assert "None: the table holds exactly" in page.inner_text("#drift-text")

    # The key never went into a URL, and is kept in this tab's session storage only.
    assert all(KEY not in u for u in tab.requests) and KEY not in page.url
    assert page.evaluate("sessionStorage.getItem('slotmill.adminKey')") == KEY
    assert page.evaluate("localStorage.length") == 0
    assert tab.errors == []
    ctx.close()


def test_recalculate_shows_progress_until_the_queue_is_drained(browser: Browser, console: Console) -> None:
    ctx, tab = _open(browser, console.url)
    page = tab.page
    _sign_in(tab)
    _open_tenant(tab)
    page.click("#recalc")
    with psycopg.connect(console.db_url) as conn:
        (request_id,) = _until(
            lambda: [r[0] for r in conn.execute("SELECT id FROM recompute_requests WHERE reason = 'admin'")]
        )
    # Queued, then followed: the queue's depth while the workers drain it.
    expect(page.locator("#recalc-status")).to_have_text(re.compile(rf"^Recalculating \(request {request_id}\): \d+"))
    assert page.is_disabled("#recalc") and page.is_visible("#recalc-progress")
    page.screenshot(path=ARTIFACTS / "console-recalculating.png")
    # A worker drains the queue (here, the test in its stead).
    with psycopg.connect(console.db_url) as conn:
        while drain_one(conn) is not None:
            pass
    expect(page.locator("#recalc-status")).to_have_text(re.compile(r"^Recalculated"), timeout=SETTLE_S * 1000)
    assert not page.is_disabled("#recalc")
    value, top = page.eval_on_selector("#recalc-progress", "p => [p.value, p.max]")
    assert value == top >= 1
    # The freshness charts have been drawing the queue meanwhile.
    assert page.locator("#depth-chart polyline").count() == 1
    assert page.inner_text("#depth-now") == "0"
    page.locator("#status").screenshot(path=ARTIFACTS / "console-status.png")
    assert tab.errors == []
    ctx.close()


def test_the_heatmap_shows_booked_against_offered(browser: Browser, console: Console) -> None:
    ctx, tab = _open(browser, console.url)
    page = tab.page
    _sign_in(tab)
    _open_tenant(tab)
    page.select_option("#usage-scope", f"staff:{AVA}")
    page.fill("#usage-from", console.day.isoformat())
    page.fill("#usage-to", console.day.isoformat())
    page.click("#usage-form button[type=submit]")
    page.wait_for_selector("#usage-view:not([hidden]) #heatmap tbody td")
    weekday, hour = console.day.isoweekday(), console.booked.astimezone(LONDON).hour
    booked_cell = page.locator(f"#heatmap td[data-weekday='{weekday}'][data-hour='{hour}']")
    # 15:00-15:45 booked; 15:45-16:00 is its buffer: no slot covers it, so 45 of 45 open minutes.
    assert booked_cell.inner_text() == "100%"
    assert "45 min booked of 45 min open" in (booked_cell.get_attribute("title") or "")
    busiest = page.locator("#busiest li").all_inner_texts()
    assert (
        f"{console.day.strftime('%A')} {hour:02d}:00–{hour + 1:02d}:00: 100% booked (45 min of 45 min open)" in busiest
    )
    page.locator("#usage").screenshot(path=ARTIFACTS / "console-usage.png")
    assert tab.errors == []
    ctx.close()


def test_webhooks_and_feeds_show_once_the_status_reports_them(browser: Browser, console: Console) -> None:
    # The status lists the tenant's webhook endpoints and calendar feeds; the demo has none,
    # so the browser plays rows of each state on top of the real answer.
    def with_lists(route: Route, request: Request) -> None:
        response = route.fetch()
        body = orjson.loads(response.body())
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body["webhooks"] = [
            {
                "id": str(UUID(int=1)),
                "url": "https://hooks.example/slots",
                "active": True,
                "circuit": "closed",
                "disabled_reason": None,
                "consecutive_failures": 0,
                "failing_since": None,
                "last_attempt_at": now,
                "last_status": 204,
                "last_error": None,
                "last_success_at": now,
                "pending": 2,
                "oldest_pending_at": now,
            },
            {
                "id": str(UUID(int=2)),
                "url": "https://dead.example/hook",
                "active": False,
                "circuit": "open",
                "disabled_reason": "circuit",
                "consecutive_failures": 9,
                "failing_since": now,
                "last_attempt_at": now,
                "last_status": None,
                "last_error": "connection refused",
                "last_success_at": None,
                "pending": 0,
                "oldest_pending_at": None,
            },
        ]
        body["feeds"] = [
            {
                "id": str(UUID(int=3)),
                "staff_id": str(AVA),
                "url": "https://cal.example/ava.ics",
                "active": True,
                "refresh_minutes": 15,
                "last_status": "error",
                "last_http_status": 500,
                "last_error": "HTTP 500",
                "last_sync_at": now,
                "last_success_at": None,
                "next_sync_at": now,
                "busy_count": 4,
                "failures": 2,
            },
        ]
        route.fulfill(response=response, body=orjson.dumps(body))

    ctx, tab = _open(browser, console.url)
    page = tab.page
    page.route("**/v1/admin/tenants/demo/status", with_lists)
    _sign_in(tab)
    _open_tenant(tab)
    page.wait_for_selector("#webhooks:not([hidden]) #webhook-rows tr")
    rows = page.locator("#webhook-rows tr")
    assert rows.count() == 2
    assert "HTTP 204" in rows.nth(0).inner_text() and "connection refused" in rows.nth(1).inner_text()
    assert "disabled (circuit)" in rows.nth(1).inner_text()
    feed = page.inner_text("#feed-rows tr")
    assert "Ava Clarke" in feed and "HTTP 500" in feed and "4" in feed
    _axe(page, "status with webhooks and feeds")
    assert tab.errors == []
    ctx.close()


# --- the key -----------------------------------------------------------------------------------


def test_without_the_key_nothing_is_shown_and_nothing_is_fetched(browser: Browser, console: Console) -> None:
    ctx, tab = _open(browser, console.url + "#/t/demo")
    page = tab.page
    # Straight to a tenant's address, no key: the form, nothing else, and no admin request.
    assert page.is_visible("#login") and not page.is_visible("#tenant") and not page.is_visible("#tenants")
    assert page.is_hidden("#sign-out")
    page.wait_for_timeout(300)  # room for a request that should not happen
    assert tab.admin_requests() == []

    # A wrong key: refused, forgotten, said.
    _sign_in(tab, "wrong-" + KEY)
    page.wait_for_selector("#key-error:not([hidden])")
    assert "refused" in page.inner_text("#key-error")
    assert page.evaluate("sessionStorage.getItem('slotmill.adminKey')") is None
    assert not page.is_visible("#tenant") and page.inner_text("#status-list") == ""

    # The right one: the tenant's page.
    _sign_in(tab)
    page.wait_for_selector("#tenant:not([hidden]) #status-list dt")
    _open_day(tab, console)
    # The key stops working (rotated on the server, say): the next call gets a 401, and the
    # console forgets the key and everything it showed.
    page.evaluate("sessionStorage.setItem('slotmill.adminKey', 'rotated-away')")
    page.click("#day-form button[type=submit]")
    page.wait_for_selector("#login:not([hidden])", timeout=SETTLE_S * 1000)
    assert page.evaluate("sessionStorage.getItem('slotmill.adminKey')") is None
    assert page.inner_text("#status-list") == "" and page.locator("#timeline svg").count() == 0
    assert page.is_hidden("#tenant")
    before = len(tab.admin_requests())
    page.wait_for_timeout(POLL_WAIT_MS)
    assert len(tab.admin_requests()) == before  # and stops asking

    # Signing out does the same.
    _sign_in(tab)
    page.wait_for_selector("#tenant:not([hidden]) #status-list dt")
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0 and page.inner_text("#status-list") == ""
    assert tab.errors == []
    ctx.close()


# The console polls the status every 5 s: long enough to see that it stopped.
POLL_WAIT_MS = 6000


def test_another_tab_needs_the_key_again(browser: Browser, console: Console) -> None:
    ctx, tab = _open(browser, console.url)
    _sign_in(tab)
    tab.page.wait_for_selector("#tenants:not([hidden])")
    other = _open(browser, console.url)  # a new context: a new session, nothing kept
    assert other[1].page.is_visible("#login") and other[1].admin_requests() == []
    other[0].close()
    ctx.close()


# --- accessibility -------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_serious_violation(browser: Browser, console: Console, width: int) -> None:
    ctx, tab = _open(browser, console.url, width=width, height=900)
    page = tab.page
    _axe(page, "sign in")
    _sign_in(tab)
    page.wait_for_selector("#tenants:not([hidden])")
    _axe(page, "tenants")
    _open_tenant(tab)
    _axe(page, "tenant")
    _open_day(tab, console)
    _click_instant(page, console.booked + timedelta(minutes=50))
    page.wait_for_selector("#explain:not([hidden]) #explain-reasons li")
    page.click("#day-details summary")
    page.click("#usage-form button[type=submit]")
    page.wait_for_selector("#usage-view:not([hidden])")
    _axe(page, "day, explain and utilization")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if width < 500:
        page.screenshot(path=ARTIFACTS / "console-phone.png", full_page=True)
    assert tab.errors == []
    ctx.close()
