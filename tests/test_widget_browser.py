"""The booking widget in a real browser (Debian's Chromium driven by Playwright) against the
real app served by uvicorn on a free port (tests.test_widget_api.serve), on the test
database, in demo mode.

Screenshots land in test-artifacts/ (git-ignored); docs/widget.png is a copy of one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from slotmill import seed
from slotmill.config import Settings
from slotmill.demo import DEMO_SLUG, load_demo
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.test_widget_api import serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Upper bound for things that happen after the page is gone (a keepalive DELETE): a bound on
# waiting, not a performance threshold.
SETTLE_S = 30.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium`"
            " (.ci/run does)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Site:
    base: str
    db_url: str
    catalog: dict[str, Any]

    def service(self, name: str) -> str:
        return next(str(s["id"]) for s in self.catalog["services"] if s["name"] == name)

    def staff(self, name: str) -> str:
        return next(str(s["id"]) for s in self.catalog["staff"] if s["display_name"] == name)

    def slot_starts(
        self, service_id: str, staff_id: str, day: date, zone: str = "Europe/London"
    ) -> set[datetime]:
        """A fresh API read of one staff member's day."""
        r = httpx.get(
            f"{self.base}/v1/tenants/{DEMO_SLUG}/slots",
            params={
                "service_id": service_id,
                "staff_id": staff_id,
                "from": str(day),
                "to": str(day),
                "tz": zone,
            },
        )
        assert r.status_code == 200, r.text
        return {_instant(s["starts_at"]) for s in r.json()["slots"]}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(sql, params).fetchall()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def site(env_db: str) -> Iterator[Site]:
    with psycopg.connect(env_db) as conn:
        load_demo(conn)
        conn.commit()
        refresh(conn, load_tenant(conn, DEMO_SLUG))
    settings = Settings(demo_mode=True, rate_limit_reads=100_000, rate_limit_holds=100_000)
    with serve(settings) as base:
        catalog = httpx.get(f"{base}/v1/tenants/{DEMO_SLUG}/catalog").json()
        yield Site(base, env_db, catalog)


def _context(
    browser: Browser,
    *,
    zone: str = "Europe/London",
    width: int = 1280,
    height: int = 900,
    **kw: Any,
) -> BrowserContext:
    ARTIFACTS.mkdir(exist_ok=True)
    return browser.new_context(
        viewport={"width": width, "height": height}, timezone_id=zone, locale="en-GB", **kw
    )


def _page(ctx: BrowserContext, url: str, errors: list[str]) -> Page:
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#week[data-week]")
    return page


def _shown_week(page: Page) -> str:
    week = page.get_attribute("#week", "data-week")
    assert week
    return week


def _choose(page: Page, *, service_id: str, staff_id: str = "") -> None:
    """Pick service and staff member, then go to next week (a full week, whatever today is)."""
    page.select_option("#service", service_id)
    page.wait_for_selector("#week[data-week]")
    page.select_option("#staff", staff_id)
    page.wait_for_selector("#week[data-week]")
    expected = str(date.fromisoformat(_shown_week(page)) + timedelta(days=7))
    page.click("#next")
    page.wait_for_selector(f"#week[data-week='{expected}']")


def _open(ctx: BrowserContext, site: Site, errors: list[str], **choice: str) -> Page:
    page = _page(ctx, f"{site.base}/widget/?tenant={DEMO_SLUG}", errors)
    _choose(page, **choice)
    return page


def _until(check: Any) -> Any:
    deadline = time.monotonic() + SETTLE_S
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _active_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


# --- tests ----------------------------------------------------------------------------------


def test_pick_hold_and_confirm_a_slot(browser: Browser, site: Site) -> None:
    haircut = site.service("Haircut")
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site, errors, service_id=haircut)
    assert page.input_value("#tz") == "Europe/London"  # the viewer's own zone
    assert page.input_value("#staff") == ""  # anyone
    page.screenshot(path=ARTIFACTS / "widget-week.png", full_page=False)

    slot = page.locator("button.slot").first
    starts_at = _instant(slot.get_attribute("data-starts-at") or "")
    # By keyboard: a slot is a real button; focus moves to the hold.
    slot.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-hold:not([hidden])")
    assert _active_id(page) == "hold-heading"
    page.wait_for_function(
        "/^[0-9]+:[0-5][0-9]$/.test(document.getElementById('countdown').textContent)"
    )
    held = site.query(
        "SELECT id, staff_id FROM bookings WHERE status = 'held' AND starts_at = %s", starts_at
    )
    assert len(held) == 1
    hold_id, staff_id = held[0]
    local = starts_at.astimezone(ZoneInfo("Europe/London"))
    assert local.strftime("%H:%M") in page.inner_text("#hold-summary")
    page.screenshot(path=ARTIFACTS / "widget-hold.png")

    page.keyboard.press("Tab")
    assert _active_id(page) == "name"
    page.keyboard.type("Test Person")
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-done:not([hidden])")
    assert _active_id(page) == "done-heading"
    summary = page.inner_text("#done-summary")
    assert "Test Person" in summary and local.strftime("%H:%M") in summary
    page.screenshot(path=ARTIFACTS / "widget-confirmed.png")

    assert site.query("SELECT status, customer_ref FROM bookings WHERE id = %s", hold_id) == [
        ("confirmed", "demo:Test Person")
    ]
    assert starts_at not in site.slot_starts(haircut, str(staff_id), local.date())

    # Booking another: back on the week, and the booked time is not offered by that person.
    page.click("#again")
    page.wait_for_selector("#step-pick:not([hidden]) #week[data-week]")
    assert errors == []
    ctx.close()


def test_a_held_slot_disappears_for_another_visitor(browser: Browser, site: Site) -> None:
    haircut, ava = site.service("Haircut"), site.staff("Ava Clarke")
    errors: list[str] = []
    ctx_a, ctx_b = _context(browser), _context(browser)
    a = _open(ctx_a, site, errors, service_id=haircut, staff_id=ava)
    b = _open(ctx_b, site, errors, service_id=haircut, staff_id=ava)
    slot_id = a.locator("button.slot").first.get_attribute("data-slot-id")
    assert slot_id
    this_slot = f"button.slot[data-slot-id='{slot_id}']"
    assert b.locator(this_slot).count() == 1

    a.click(this_slot)
    a.wait_for_selector("#step-hold:not([hidden])")

    # B refreshes: the held slot is gone.
    b.reload()
    b.wait_for_selector("#week[data-week]")
    _choose(b, service_id=haircut, staff_id=ava)
    assert b.locator(this_slot).count() == 0
    assert b.locator("button.slot").count() > 0

    # A releases it ("Choose another time"): it is back for both.
    a.click("#release")
    a.wait_for_selector("#step-pick:not([hidden]) #week[data-week]")
    assert a.locator(this_slot).count() == 1
    week = _shown_week(b)
    b.click("#prev")
    b.wait_for_selector(f"#week[data-week='{date.fromisoformat(week) - timedelta(days=7)}']")
    b.click("#next")
    b.wait_for_selector(f"#week[data-week='{week}']")
    assert b.locator(this_slot).count() == 1
    assert errors == []
    ctx_a.close()
    ctx_b.close()


def test_a_slot_taken_meanwhile_says_so_and_refreshes(browser: Browser, site: Site) -> None:
    haircut, ava = site.service("Haircut"), site.staff("Ava Clarke")
    errors: list[str] = []
    ctx_a, ctx_b = _context(browser), _context(browser)
    a = _open(ctx_a, site, errors, service_id=haircut, staff_id=ava)
    b = _open(ctx_b, site, errors, service_id=haircut, staff_id=ava)
    slot_id = a.locator("button.slot").nth(2).get_attribute("data-slot-id")
    this_slot = f"button.slot[data-slot-id='{slot_id}']"
    a.click(this_slot)
    a.wait_for_selector("#step-hold:not([hidden])")

    b.click(this_slot)  # still on B's (stale) page
    b.wait_for_selector("#alert:not([hidden])")
    assert "just taken" in b.inner_text("#alert")
    b.wait_for_selector("#week[data-week]")
    assert b.locator(this_slot).count() == 0
    assert b.is_visible("#step-pick") and not b.is_visible("#step-hold")
    assert errors == []
    ctx_a.close()
    ctx_b.close()


def test_leaving_a_held_slot_releases_it(browser: Browser, site: Site) -> None:
    haircut, ava = site.service("Haircut"), site.staff("Ava Clarke")
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site, errors, service_id=haircut, staff_id=ava)

    def hold_first() -> Any:
        page.locator("button.slot").first.click()
        page.wait_for_selector("#step-hold:not([hidden])")
        (hold_id,) = site.query("SELECT id FROM bookings WHERE status = 'held'")[0]
        return hold_id

    def status(hold_id: Any) -> str:
        return str(site.query("SELECT status FROM bookings WHERE id = %s", hold_id)[0][0])

    # The browser's back button.
    first = hold_first()
    page.go_back()
    page.wait_for_selector("#step-pick:not([hidden]) #week[data-week]")
    assert _until(lambda: status(first) == "cancelled")

    # Closing the page (or navigating away): a keepalive DELETE on pagehide.
    second = hold_first()
    page.close(run_before_unload=True)
    assert _until(lambda: status(second) == "cancelled")
    assert site.query("SELECT count(*) FROM bookings WHERE status = 'held'") == [(0,)]
    assert errors == []
    ctx.close()


def test_phone_width_and_another_zone(browser: Browser, site: Site) -> None:
    haircut = site.service("Haircut")
    errors: list[str] = []
    ctx = _context(
        browser,
        zone="America/New_York",
        width=375,
        height=812,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = _open(ctx, site, errors, service_id=haircut)
    assert page.input_value("#tz") == "America/New_York"
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=ARTIFACTS / "widget-phone.png")

    def first_time_matches(zone: str) -> None:
        slot = page.locator("button.slot").first
        start = _instant(slot.get_attribute("data-starts-at") or "").astimezone(ZoneInfo(zone))
        assert slot.inner_text() == start.strftime("%H:%M")
        day = slot.evaluate("b => b.closest('.day').dataset.date")
        assert day == str(start.date())

    first_time_matches("America/New_York")
    week = _shown_week(page)
    page.select_option("#tz", "Asia/Tokyo")
    page.wait_for_selector("#week[data-week]")
    assert _shown_week(page) == week
    first_time_matches("Asia/Tokyo")

    page.locator("button.slot").first.tap()
    page.wait_for_selector("#step-hold:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=ARTIFACTS / "widget-phone-hold.png")
    page.click("#release")
    page.wait_for_selector("#step-pick:not([hidden]) #week[data-week]")
    assert errors == []
    ctx.close()


def test_an_empty_week_points_to_the_next_available_day(browser: Browser, env_db: str) -> None:
    today = datetime.now(ZoneInfo("UTC")).date()
    with psycopg.connect(env_db) as conn:
        t = seed.tenant(conn, "quiet", name="Quiet Studio", timezone="UTC", horizon_days=60)
        zoe = seed.staff(conn, t, "Zoe")
        seed.service(conn, t, "Lesson", 60, staff_ids=[zoe])
        # Nothing until three weeks from now.
        seed.template(
            conn, t, zoe, range(1, 8), "09:00", "12:00", valid_from=today + timedelta(days=21)
        )
        conn.commit()
        refresh(conn, load_tenant(conn, "quiet"))
    errors: list[str] = []
    with serve(
        Settings(demo_mode=True, rate_limit_reads=100_000, rate_limit_holds=100_000)
    ) as base:
        ctx = _context(browser, zone="UTC")
        page = _page(ctx, f"{base}/widget/?tenant=quiet", errors)
        assert page.inner_text("#tenant-name") == "Quiet Studio"
        page.wait_for_selector("#jump:not([hidden])")
        first_day = today + timedelta(days=21)
        text = page.inner_text("#empty-text")
        assert text.startswith("No slots this week — next available on ")
        assert f"{first_day.day} {first_day.strftime('%B')}" in text
        page.screenshot(path=ARTIFACTS / "widget-empty.png")
        page.click("#jump")
        monday = first_day - timedelta(days=first_day.weekday())
        page.wait_for_selector(f"#week[data-week='{monday}']")
        assert page.locator("button.slot").count() > 0
        assert page.locator(f".day[data-date='{first_day}'] button.slot").count() == 3

        # An unknown tenant is said plainly.
        page.goto(f"{base}/widget/?tenant=nobody")
        page.wait_for_selector("#alert:not([hidden])")
        assert "no booking page" in page.inner_text("#alert").lower()
        ctx.close()
    assert errors == []
