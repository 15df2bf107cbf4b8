"""The booking widget in a real browser (Debian's Chromium driven by Playwright) against the
real app served by uvicorn on a free port (tests.api.test_widget_api.serve), on the test
database, with the demo tenant: three locations in two zones.

Every flow runs at 1280 px and at 375 px. Screenshots of each step land in test-artifacts/
(git-ignored); docs/widget-*.png are copies of the best of them.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page

from slotmill import seed
from slotmill.config import Settings
from slotmill.demo import DEMO_PUBLISHABLE_KEY, DEMO_SLUG, demo_id
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.outbox import sequence_events
from slotmill.materializer.refresh import refresh
from tests.api.conftest import Site
from tests.api.test_widget_api import serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Upper bound for things that happen after the page is gone (a keepalive DELETE): a bound on
# waiting, not a performance threshold.
SETTLE_S = 30.0
WIDTHS = {"desktop": (1280, 900), "phone": (375, 812)}
LOCATIONS = {
    "Shoreditch": ("Fern & Finch, Shoreditch", "Europe/London"),
    "Camden": ("Fern & Finch, Camden", "Europe/London"),
    "Brooklyn": ("Fern & Finch, Brooklyn", "America/New_York"),
}
CONTACT = {"name": "Grace Hopper", "email": "grace@example.org", "phone": "+44 20 7946 0000"}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _context(
    browser: Browser,
    *,
    zone: str = "Europe/London",
    size: str = "desktop",
    locale: str = "en-GB",
    **kw: Any,
) -> BrowserContext:
    ARTIFACTS.mkdir(exist_ok=True)
    width, height = WIDTHS[size]
    if size == "phone":
        kw = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2, **kw}
    return browser.new_context(viewport={"width": width, "height": height}, timezone_id=zone, locale=locale, **kw)


def _watch(page: Page, errors: list[str]) -> Page:
    """Collect the page's script errors (not the browser's notes on 4xx answers, which the
    widget expects and handles)."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )
    return page


def _open(ctx: BrowserContext, url: str, errors: list[str]) -> Page:
    page = _watch(ctx.new_page(), errors)
    page.goto(url)
    page.wait_for_selector("#widget[data-step='pick']")
    return page


def _ready(page: Page) -> None:
    page.wait_for_selector("#widget[data-ready='1']")


def _choose(
    page: Page, site: Site, *, location: str | None = None, service: str | None = None, staff: str | None = None
) -> None:
    """Location (its short name), then service and person (names) as a customer would."""
    if location is not None:
        page.locator("#location-list label", has_text=location).click()
        if page.input_value("#service"):
            _ready(page)
    if service is not None:
        page.select_option("#service", site.service(service))
        _ready(page)
    if staff is not None:
        page.select_option("#staff", site.staff(staff) if staff else "")
        _ready(page)


def _until(check: Any) -> Any:
    deadline = time.monotonic() + SETTLE_S
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _active_id(page: Page) -> str:
    return str(
        page.evaluate(
            "(() => { const h = document.querySelector('.slotmill-booking');"
            " const a = h && h.shadowRoot.activeElement; return a ? a.id : ''; })()"
        )
    )


def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=ARTIFACTS / f"widget-{name}.png", full_page=full_page, animations="disabled")


def _fill_contact(page: Page, contact: dict[str, str], prefix: str = "") -> None:
    for field in ("name", "email", "phone"):
        page.fill(f"#{prefix}{field}", contact.get(field, ""))


def _local(text: str, zone: str) -> datetime:
    return _instant(text).astimezone(ZoneInfo(zone))


def _clock(t: datetime) -> set[str]:
    """How en-GB writes a time: 09:15 (either form is fine)."""
    return {t.strftime("%H:%M"), f"{t.hour}:{t.minute:02d}"}


def _axe(page: Page, step: str) -> None:
    """axe-core over the page and the widget's shadow root: no serious or critical finding."""
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    # Targets inside a shadow root are lists (host, then inner selector).
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} at {n['target']}: {n.get('failureSummary', '')}"
        for v in bad
        for n in v["nodes"]
    ]
    assert found == [], f"{step}:\n" + "\n".join(found)


def _no_horizontal_scroll(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


# --- the whole flow, per location, at both widths ----------------------------------------------


@pytest.mark.parametrize("size", list(WIDTHS))
@pytest.mark.parametrize("where", list(LOCATIONS))
def test_book_at_each_location(browser: Browser, site: Site, where: str, size: str) -> None:
    name, zone = LOCATIONS[where]
    width = WIDTHS[size][0]
    errors: list[str] = []
    ctx = _context(browser, size=size)
    page = _open(ctx, site.url(key=DEMO_PUBLISHABLE_KEY), errors)
    tag = f"{size}-{where.lower()}"
    # Nothing is chosen for the customer but "any location": no service by name order.
    assert page.input_value("#service") == ""
    assert page.is_visible("#prompt") and not page.is_visible("#calendar")
    _shot(page, f"{tag}-1-start")

    _choose(page, site, location=where, service="Haircut")
    # Loading times moves no focus (no ring on a heading after each load).
    assert _active_id(page) not in ("day-heading", "week-label")
    # The first day with times is chosen, and its times are this location's only.
    groups = page.locator("#groups .group-heading")
    assert groups.count() == 1 and name in groups.first.inner_text()
    assert page.locator(".day-button[aria-pressed='true']").count() == 1
    pressed = page.get_attribute(".day-button[aria-pressed='true']", "data-date")
    assert page.locator(".day-button[aria-pressed='true'].open").count() == 1
    slot = page.locator("button.slot").first
    starts_at = slot.get_attribute("data-starts-at") or ""
    assert slot.get_attribute("data-location-id") == str(demo_id("location", name))
    local = _local(starts_at, zone)
    assert str(local.date()) == pressed
    assert page.inner_text("button.slot >> nth=0 >> .t") in _clock(local)
    _no_horizontal_scroll(page, width)
    _shot(page, f"{tag}-2-times")
    _shot(page, f"{tag}-2-times-screen", full_page=False)

    slot.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    assert _active_id(page) == "hold-heading"
    page.wait_for_function(
        "() => /^[0-9]+:[0-5][0-9]$/.test(document.querySelector('.slotmill-booking')"
        ".shadowRoot.getElementById('countdown').textContent)"
    )
    hold_id, _staff, location_id, held_at = site.held()
    assert (location_id, held_at) == (demo_id("location", name), _instant(starts_at))
    summary = page.inner_text("#hold-summary")
    assert name in summary and any(c in summary for c in _clock(local))
    assert ("New York time" if zone == "America/New_York" else "London time") in summary
    _fill_contact(page, CONTACT)
    _no_horizontal_scroll(page, width)
    _shot(page, f"{tag}-3-hold")

    page.click("#confirm")
    page.wait_for_selector("#step-done:not([hidden])")
    assert _active_id(page) == "done-heading"
    done = page.inner_text("#step-done")
    assert name in done and "grace@example.org" in done
    _shot(page, f"{tag}-4-done")
    assert site.query("SELECT status, customer_ref, contact FROM bookings WHERE id = %s", hold_id) == [
        ("confirmed", "widget", CONTACT)
    ]

    # Another booking: back on the times, the booked one gone.
    page.click("#again")
    page.wait_for_selector("#step-pick:not([hidden])")
    _ready(page)
    assert page.locator(f"button.slot[data-starts-at='{starts_at}']").count() == 0 or where != "Camden"
    assert errors == []
    ctx.close()


def test_any_location_names_each_location_and_holds_there(browser: Browser, site: Site) -> None:
    """The bug of the issue: a London customer booked in Brooklyn without noticing."""
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, service="Haircut")
    # Pick a weekday that both London and Brooklyn staff work.
    monday = page.get_attribute(".day-button >> nth=0", "data-date") or ""
    friday = str(date.fromisoformat(monday) + timedelta(days=4))
    if page.locator(f".day-button[data-date='{friday}']").is_disabled():
        page.click("#next")
        _ready(page)
        monday = page.get_attribute(".day-button >> nth=0", "data-date") or ""
        friday = str(date.fromisoformat(monday) + timedelta(days=4))
    page.click(f".day-button[data-date='{friday}']")
    headings = page.locator("#groups .group-heading").all_inner_texts()
    assert any("Shoreditch" in h and "London time" in h for h in headings), headings
    assert any("Brooklyn" in h and "New York time" in h for h in headings), headings
    # Every Brooklyn time shows the customer's own time beside it, and names Brooklyn.
    brooklyn = page.locator(f"button.slot[data-location-id='{demo_id('location', 'Fern & Finch, Brooklyn')}']")
    assert brooklyn.count() > 0
    label = brooklyn.first.get_attribute("aria-label") or ""
    assert "Fern & Finch, Brooklyn" in label and "New York time" in label and "your time" in label
    _shot(page, "desktop-any-location")

    brooklyn.first.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    _, staff_id, location_id, _ = site.held()
    assert location_id == demo_id("location", "Fern & Finch, Brooklyn")
    assert staff_id in (demo_id("staff", "Diego Reyes"), demo_id("staff", "Emi Tanaka"))
    assert "Brooklyn" in page.inner_text("#hold-summary")
    page.click("#release")
    page.wait_for_selector("#step-pick:not([hidden])")
    assert errors == []
    ctx.close()


# --- zones ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(WIDTHS))
def test_times_in_the_locations_zone_with_the_customers_beside(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    # A customer in Tokyo looks at Brooklyn, then at Shoreditch.
    ctx = _context(browser, zone="Asia/Tokyo", size=size)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Brooklyn", service="Haircut")
    assert "New York time" in page.inner_text("#zone-note")
    assert "Tokyo time" in page.inner_text("#zone-note")
    slot = page.locator("button.slot").first
    starts_at = slot.get_attribute("data-starts-at") or ""
    ny, tokyo = _local(starts_at, "America/New_York"), _local(starts_at, "Asia/Tokyo")
    assert page.inner_text("button.slot >> nth=0 >> .t") in _clock(ny)
    yours = page.inner_text("button.slot >> nth=0 >> .yours")
    assert any(c in yours for c in _clock(tokyo))
    if tokyo.date() != ny.date():  # the customer's day is another day: it says which
        assert tokyo.strftime("%a") in yours
    _shot(page, f"{size}-zones")

    _choose(page, site, location="Shoreditch")
    slot = page.locator("button.slot").first
    london = _local(slot.get_attribute("data-starts-at") or "", "Europe/London")
    assert page.inner_text("button.slot >> nth=0 >> .t") in _clock(london)
    assert "London time" in page.inner_text("#zone-note")

    # A customer in London looking at London: no second time.
    ctx2 = _context(browser, zone="Europe/London", size=size)
    page2 = _open(ctx2, site.url(), errors)
    _choose(page2, site, location="Shoreditch", service="Haircut")
    assert page2.locator("button.slot .yours").count() == 0
    assert "shown beside" not in page2.inner_text("#zone-note")
    assert errors == []
    ctx.close()
    ctx2.close()


def test_us_english_times_have_no_leading_zero(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser, zone="America/New_York", locale="en-US")
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Brooklyn", service="Haircut")
    times = page.locator("button.slot .t").all_inner_texts()
    assert times and all(re.fullmatch(r"[1-9][0-2]?:[0-5][0-9]\s?[AP]M", t) for t in times), times
    assert errors == []
    ctx.close()


# --- the phone layout ----------------------------------------------------------------------------


def test_phone_layout_is_a_day_at_a_time_with_sticky_days(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser, size="phone")
    page = _open(ctx, site.url(), errors)
    _choose(page, site, service="Haircut")
    _no_horizontal_scroll(page, 375)
    # Every day of the week is one tap away. The busiest day (late in the evening, today
    # may have a time or two left) shows its times several to a row, not one column of a
    # whole week, and the days stay on screen while its times scroll under them.
    assert page.locator(".day-button").count() == 7
    counts = page.locator(".day-button.open .count").all_inner_texts()
    busiest = page.locator(".day-button.open").nth(counts.index(max(counts, key=int)))
    busiest.click()
    tops = page.locator("button.slot").evaluate_all("bs => bs.slice(0, 4).map(b => b.getBoundingClientRect().top)")
    assert len(tops) == 4 and len(set(tops)) < 4, tops
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 812 * 1.5
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_function("() => window.scrollY > 0")
    box = page.locator(".daybar").bounding_box()
    assert box is not None and -1 <= box["y"] <= 1, box
    _shot(page, "phone-scrolled")
    page.evaluate("window.scrollTo(0, 0)")
    # A day chosen in the strip shows that day.
    target = page.locator(".day-button.open:not([aria-pressed='true'])").first
    if target.count():
        day = target.get_attribute("data-date") or ""
        target.click()
        assert page.get_attribute(".day-button[aria-pressed='true']", "data-date") == day
        assert page.inner_text("#day-heading") == datetime.fromisoformat(day).strftime("%A %-d %B")
    assert errors == []
    ctx.close()


@pytest.mark.parametrize("size", list(WIDTHS))
def test_names_fit_their_pickers(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    ctx = _context(browser, size=size)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, service="Colour")
    # Every option's text fits its select (measured in the select's own font), arrow aside.
    too_wide = page.evaluate(
        """() => {
        const root = document.querySelector('.slotmill-booking').shadowRoot;
        const ctx = document.createElement('canvas').getContext('2d');
        const out = [];
        for (const id of ['service', 'staff']) {
            const select = root.getElementById(id);
            const style = getComputedStyle(select);
            ctx.font = style.font;
            const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
            for (const o of select.options) if (ctx.measureText(o.text).width > room) out.push(o.text);
        }
        return out;
    }"""
    )
    assert page.locator("#staff option").count() > 3
    assert too_wide == []
    assert errors == []
    ctx.close()


def test_days_past_the_booking_limit_are_not_closed_days(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site.url(), errors)
    # Consultation: bookable 14 days ahead at most.
    _choose(page, site, service="Consultation")
    while not page.is_disabled("#next"):
        page.click("#next")
        _ready(page)
    later = page.locator(".day-button.later")
    assert later.count() > 0
    assert later.first.inner_text().endswith("Not yet")
    assert "not open for booking yet" in (later.first.get_attribute("aria-label") or "")
    later.first.click()
    assert "open on" in page.inner_text("#empty-text")
    closed = page.locator(".day-button.none")
    if closed.count():
        assert closed.first.inner_text().endswith("No times")
    _shot(page, "desktop-booking-limit")
    assert errors == []
    ctx.close()


def test_opens_on_the_first_day_with_times(browser: Browser, env_db: str) -> None:
    today = datetime.now(UTC).date()
    with psycopg.connect(env_db) as conn:
        t = seed.tenant(conn, "quiet", name="Quiet Studio", timezone="UTC", horizon_days=60)
        zoe = seed.staff(conn, t, "Zoe")
        seed.service(conn, t, "Lesson", 60, staff_ids=[zoe])
        # Nothing until three weeks from now.
        seed.template(conn, t, zoe, range(1, 8), "09:00", "12:00", valid_from=today + timedelta(days=21))
        conn.commit()
        refresh(conn, load_tenant(conn, "quiet"))
    errors: list[str] = []
    with serve(Settings(demo_mode=True, rate_limit_reads=100_000, rate_limit_holds=100_000)) as base:
        ctx = _context(browser, zone="UTC")
        page = _open(ctx, f"{base}/widget/?tenant=quiet", errors)
        assert page.inner_text("#tenant-name") == "Quiet Studio"
        _ready(page)  # the only service is chosen
        first_day = today + timedelta(days=21)
        assert page.get_attribute(".day-button[aria-pressed='true']", "data-date") == str(first_day)
        assert page.locator("button.slot").count() == 3
        assert "first free time" in page.inner_text("#status")

        # Back to this week: empty, and it points to the first free day.
        while not page.is_disabled("#prev"):
            page.click("#prev")
            _ready(page)
        page.wait_for_selector("#jump:not([hidden])")
        assert f"{first_day.day} {first_day.strftime('%B')}" in page.inner_text("#empty-text")
        _shot(page, "desktop-empty-week")
        page.click("#jump")
        _ready(page)
        assert page.get_attribute(".day-button[aria-pressed='true']", "data-date") == str(first_day)

        # An unknown tenant is said plainly.
        page.goto(f"{base}/widget/?tenant=nobody")
        page.wait_for_selector("#alert:not([hidden])")
        assert "no booking page" in page.inner_text("#alert").lower()
        ctx.close()
    assert errors == [] or all("404" in e for e in errors)


# --- contact details -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(WIDTHS))
def test_contact_details_are_checked_before_confirming(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    ctx = _context(browser, size=size)
    page = _open(ctx, site.url(key=DEMO_PUBLISHABLE_KEY), errors)
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    page.locator("button.slot").first.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    hold_id = site.held()[0]

    def errors_shown() -> dict[str, str]:
        return {f: page.inner_text(f"#{f}-error") for f in ("name", "email", "phone") if page.is_visible(f"#{f}-error")}

    page.click("#confirm")  # nothing filled in
    assert set(errors_shown()) == {"name", "email"}
    assert "email address or a phone number" in errors_shown()["email"]
    assert page.get_attribute("#name", "aria-invalid") == "true"
    assert _active_id(page) == "name"

    _fill_contact(page, {"name": "Ada", "email": "ada@", "phone": "12"})
    page.click("#confirm")
    assert set(errors_shown()) == {"email", "phone"}
    assert "email address" in errors_shown()["email"] and "phone number" in errors_shown()["phone"]
    assert _active_id(page) == "email"
    _shot(page, f"{size}-contact-errors")
    _axe(page, "contact errors")
    assert site.query("SELECT status, contact FROM bookings WHERE id = %s", hold_id) == [("held", None)]

    # A phone number alone is enough.
    _fill_contact(page, {"name": "Ada Lovelace", "phone": "+44 (0)20 7946-0000"})
    page.click("#confirm")
    page.wait_for_selector("#step-done:not([hidden])")
    assert site.query("SELECT status, contact FROM bookings WHERE id = %s", hold_id) == [
        ("confirmed", {"name": "Ada Lovelace", "phone": "+44 (0)20 7946-0000"})
    ]
    assert errors == []
    ctx.close()


# --- times that went meanwhile ------------------------------------------------------------------


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_time_taken_meanwhile_says_so(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    ctx_a, ctx_b = _context(browser), _context(browser, size=size)
    a = _open(ctx_a, site.url(), errors)
    b = _open(ctx_b, site.url(), errors)
    for page in (a, b):
        _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    key = a.locator("button.slot").nth(2).get_attribute("data-key")
    this_slot = f"button.slot[data-key='{key}']"
    a.click(this_slot)
    a.wait_for_selector("#step-hold:not([hidden])")

    b.click(this_slot)  # still on B's (stale) page
    b.wait_for_selector("#day-alert:not([hidden])")
    assert "someone else has just taken" in b.inner_text("#day-alert")
    assert b.locator(this_slot).count() == 0
    assert b.is_visible("#step-pick") and not b.is_visible("#step-hold")
    _shot(b, f"{size}-taken")
    assert errors == []
    ctx_a.close()
    ctx_b.close()


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_time_the_salon_removed_says_so(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    ctx = _context(browser, size=size)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    slot = page.locator("button.slot").nth(1)
    key = slot.get_attribute("data-key")
    start = _instant(slot.get_attribute("data-starts-at") or "")
    # Ava takes that hour off; the worker would recompute, here the test does.
    with psycopg.connect(site.db_url) as conn:
        tenant = load_tenant(conn, DEMO_SLUG)
        seed.time_off(conn, tenant.id, demo_id("staff", "Ava Clarke"), start, start + timedelta(hours=1), "Dentist")
        conn.commit()
        refresh(conn, tenant)

    page.click(f"button.slot[data-key='{key}']")
    page.wait_for_selector("#day-alert:not([hidden])")
    text = page.inner_text("#day-alert")
    assert "no longer offered" in text and "changed its schedule" in text, text
    assert "taken" not in text and "Dentist" not in text
    assert page.locator(f"button.slot[data-key='{key}']").count() == 0
    assert site.query("SELECT count(*) FROM bookings WHERE status = 'held'") == [(0,)]
    _shot(page, f"{size}-removed")
    assert errors == []
    ctx.close()


def test_times_read_long_ago_are_read_again_before_a_hold(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser)
    page = _watch(ctx.new_page(), errors)
    page.clock.install()
    page.goto(site.url())
    page.wait_for_selector("#widget[data-step='pick']")
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    slot = page.locator("button.slot").nth(2)
    key = slot.get_attribute("data-key")
    r = httpx.post(f"{site.base}/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": slot.get_attribute("data-slot-id")})
    assert r.status_code == 201
    holds: list[str] = []
    page.on("request", lambda q: holds.append(q.url) if q.method == "POST" and q.url.endswith("/holds") else None)
    page.clock.fast_forward("01:01")  # the page was left open for a minute
    page.click(f"button.slot[data-key='{key}']")
    page.wait_for_selector("#day-alert:not([hidden])")
    assert "someone else has just taken" in page.inner_text("#day-alert")
    assert holds == []  # read again, seen gone: not even tried
    assert page.locator(f"button.slot[data-key='{key}']").count() == 0
    assert errors == []
    ctx.close()


def test_focus_redraws_the_times(browser: Browser, site: Site) -> None:
    """Without the event stream (not on this server yet), coming back to the page reads again."""
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    slot = page.locator("button.slot").nth(3)
    key = slot.get_attribute("data-key")
    r = httpx.post(f"{site.base}/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": slot.get_attribute("data-slot-id")})
    assert r.status_code == 201
    assert page.locator(f"button.slot[data-key='{key}']").count() == 1  # stale until...
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    page.wait_for_selector(f"button.slot[data-key='{key}']", state="detached")
    assert errors == []
    ctx.close()


# --- the countdown against the server's expiry ----------------------------------------------------


def test_the_countdown_never_ends_before_the_servers_hold(browser: Browser, site: Site) -> None:
    site.settings(hold_ttl_seconds=6)
    errors: list[str] = []
    ctx = _context(browser)
    page = _watch(ctx.new_page(), errors)
    # The customer's clock is 40 s fast: a countdown to expires_at by this clock would say
    # the hold ran out before it started.
    page.clock.install(time=datetime.now(UTC) + timedelta(seconds=40))
    page.goto(site.url())
    page.wait_for_selector("#widget[data-step='pick']")
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    page.locator("button.slot").first.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    hold_id = site.held()[0]

    samples = 0
    while True:
        # The page first, the server after: a page that gave up while the server still
        # holds would be caught.
        shown = page.inner_text("#countdown")
        step = page.get_attribute("#widget", "data-step")
        ((left,),) = site.query(
            "SELECT extract(epoch FROM expires_at - clock_timestamp())::float FROM bookings WHERE id = %s", hold_id
        )
        if step != "hold":
            assert left <= 0, f"the page let go {left:.3f} s before the server"
            break
        if re.fullmatch(r"[0-9]+:[0-5][0-9]", shown):
            minutes, seconds = shown.split(":")
            assert int(minutes) * 60 + int(seconds) >= left, (shown, left)
            samples += 1
        time.sleep(0.05)
    assert samples >= 3
    page.wait_for_selector("#day-alert:not([hidden])")
    assert "ran out" in page.inner_text("#day-alert")
    assert errors == []
    ctx.close()


# --- releasing -----------------------------------------------------------------------------------


def test_leaving_a_held_time_releases_it(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser)
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")

    def hold_first() -> Any:
        page.locator("button.slot").first.click()
        page.wait_for_selector("#step-hold:not([hidden])")
        return site.held()[0]

    def status(hold_id: Any) -> str:
        return str(site.query("SELECT status FROM bookings WHERE id = %s", hold_id)[0][0])

    # "Choose another time", then the browser's back button.
    first = hold_first()
    page.click("#release")
    page.wait_for_selector("#step-pick:not([hidden])")
    assert _until(lambda: status(first) == "cancelled")
    second = hold_first()
    page.go_back()
    page.wait_for_selector("#step-pick:not([hidden])")
    assert _until(lambda: status(second) == "cancelled")

    # Closing the page (or navigating away): a keepalive DELETE on pagehide.
    third = hold_first()
    page.close(run_before_unload=True)
    assert _until(lambda: status(third) == "cancelled")
    assert site.query("SELECT count(*) FROM bookings WHERE status = 'held'") == [(0,)]
    assert errors == []
    ctx.close()


# --- accessibility ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(WIDTHS))
def test_axe_finds_no_serious_violation(browser: Browser, site: Site, size: str) -> None:
    errors: list[str] = []
    ctx = _context(browser, size=size)
    page = _open(ctx, site.url(key=DEMO_PUBLISHABLE_KEY), errors)
    _axe(page, "start")
    _choose(page, site, service="Styling workshop")
    _axe(page, "group service, any location")
    _choose(page, site, location="Brooklyn", service="Haircut")
    _axe(page, "times")
    page.locator("button.slot").first.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    _axe(page, "hold")
    _fill_contact(page, CONTACT)
    page.click("#confirm")
    page.wait_for_selector("#step-done:not([hidden])")
    _axe(page, "done")
    # Keyboard only: a day, a time, the form.
    page.click("#again")
    page.wait_for_selector("#step-pick:not([hidden])")
    _ready(page)
    # a day that still has times (the one just booked may have had its last one, late in
    # the day wherever Brooklyn's clock is)
    page.focus(".day-button:not(.none)")
    page.keyboard.press("Enter")
    page.wait_for_selector("button.slot")
    page.locator("button.slot").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-hold:not([hidden])")
    assert _active_id(page) == "hold-heading"
    page.keyboard.press("Tab")
    assert _active_id(page) == "name"
    assert errors == []
    ctx.close()


# --- the event stream and the waitlist: the page uses them where the catalog says they exist


def _with_features(page: Page, **features: bool) -> None:
    """Make the catalog say this server lacks (or has) a feature, to show the page follows it."""

    def catalog(route: Any) -> None:
        response = route.fetch()
        data = response.json()
        data["features"].update(features)
        route.fulfill(response=response, json=data)

    page.route(f"**/v1/tenants/{DEMO_SLUG}/catalog", catalog)


def test_live_events_redraw_the_times(browser: Browser, site: Site) -> None:
    """Another customer's hold reaches an open page through the real event stream: the time
    goes without a reload or a click."""
    haircut = site.service("Haircut")
    errors: list[str] = []
    ctx = _context(browser)
    page = _watch(ctx.new_page(), errors)
    subscribed: list[str] = []
    page.on("request", lambda r: subscribed.append(r.url) if "/events?" in r.url else None)
    page.goto(site.url())
    page.wait_for_selector("#widget[data-step='pick']")
    # the stream's headers come once the server has subscribed it: from then on, no change is missed
    with page.expect_response(lambda r: "/events?" in r.url and f"service_id={haircut}" in r.url):
        _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    slot = page.locator("button.slot").nth(3)
    key = slot.get_attribute("data-key")
    r = httpx.post(f"{site.base}/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": slot.get_attribute("data-slot-id")})
    assert r.status_code == 201
    # the worker's part: number the hold's event, which the stream then sends
    with psycopg.connect(site.db_url, autocommit=True) as conn:
        sequence_events(conn)
    page.wait_for_selector(f"button.slot[data-key='{key}']", state="detached")
    assert subscribed and f"service_id={haircut}" in subscribed[0]
    assert errors == []
    ctx.close()


def test_a_day_without_times_offers_the_waitlist(browser: Browser, site: Site) -> None:
    errors: list[str] = []
    ctx = _context(browser, size="phone")
    # A server without a waitlist: none offered.
    plain = _watch(ctx.new_page(), errors)
    _with_features(plain, waitlist=False)
    plain.goto(site.url())
    plain.wait_for_selector("#widget[data-step='pick']")
    _choose(plain, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    plain.locator(".day-button.none").first.click()
    assert plain.is_visible("#empty") and not plain.is_visible("#waitlist-open")
    plain.close()

    # This server has one: the page joins it for real.
    page = _open(ctx, site.url(), errors)
    _choose(page, site, location="Shoreditch", service="Haircut", staff="Ava Clarke")
    day = page.locator(".day-button.none").first
    iso = day.get_attribute("data-date")
    day.click()
    page.click("#waitlist-open")
    assert _active_id(page) == "waitlist-heading"
    page.click("#waitlist-join")  # nothing filled in
    assert page.is_visible("#wl-name-error")
    assert site.query("SELECT count(*) FROM waitlist_entries") == [(0,)]
    _fill_contact(page, CONTACT, prefix="wl-")
    _shot(page, "phone-waitlist")
    page.click("#waitlist-join")
    page.wait_for_selector("#waitlist-form", state="hidden")
    assert "on the waitlist" in page.inner_text("#empty-text")
    rows = site.query(
        "SELECT service_id, staff_id, location_id, from_date, to_date, contact, contact_ref FROM waitlist_entries"
    )
    assert [(str(a), str(b), str(c), str(d), str(e), f, g) for a, b, c, d, e, f, g in rows] == [
        (
            site.service("Haircut"),
            site.staff("Ava Clarke"),
            str(demo_id("location", "Fern & Finch, Shoreditch")),
            iso,
            iso,
            CONTACT,
            None,
        )
    ]
    assert errors == []
    ctx.close()
