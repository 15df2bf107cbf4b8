// slotmill booking widget: one classic script, no build step, no modules (a classic script
// loads from any site without CORS for itself).
//
// window.Slotmill.mount(element, options) draws the widget in a shadow root of `element`,
// so the host page's styles and ids never meet the widget's. embed.js does that for the
// one-tag embed on a salon's own site; index.html for the page slotmill serves itself.
//
// Flow: location (or any) -> service -> person (or anyone) -> a day of the week strip ->
// a time (a hold, with a countdown) -> contact details -> confirm (publishable key, the
// host's own confirm URL, or the demo route) -> confirmation. Times are shown in the
// location's zone, with the customer's own beside them when it differs. Leaving a held
// time any way (button, browser back, closing the page) releases it.
(() => {
  "use strict";
  if (window.Slotmill && window.Slotmill.mount) return;

  const SCRIPT = document.currentScript;
  const ASSETS = SCRIPT && SCRIPT.src ? new URL(".", SCRIPT.src).href : new URL("/widget/", location.href).href;
  const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
  const DAY_MS = 86400000;
  // The same checks as the API's (api/models.py Contact): a page that passes them is not
  // refused by the server.
  const EMAIL = /^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$/;
  const PHONE_SEPARATORS = /[\s().-]/g;
  const PHONE = /^\+?[0-9]{6,15}$/;
  const NAME_MAX = 100;
  // Times read longer ago than this are read again before a hold is tried.
  const STALE_MS = 60000;
  // How many staff an any-staff read names per start: the hold tries them in order.
  const CANDIDATES = 5;
  const MAX_PAGES = 10;
  const MAX_PARTY = 10;

  // ---- dates (YYYY-MM-DD), instants (ms) and zones ----------------------------------------

  function dateUTC(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return Date.UTC(y, m - 1, d);
  }

  function addDays(iso, n) {
    return new Date(dateUTC(iso) + n * DAY_MS).toISOString().slice(0, 10);
  }

  function daysBetween(a, b) {
    return Math.round((dateUTC(b) - dateUTC(a)) / DAY_MS);
  }

  const partsFormats = new Map();
  function zoneParts(ms, zone) {
    let f = partsFormats.get(zone);
    if (!f) {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      partsFormats.set(zone, f);
    }
    const out = {};
    f.formatToParts(ms).forEach((p) => { out[p.type] = p.value; });
    return out;
  }

  function localDate(ms, zone) {
    const p = zoneParts(ms, zone);
    return p.year + "-" + p.month + "-" + p.day;
  }

  // How far the zone's wall clock is ahead of UTC at an instant.
  function offsetMs(ms, zone) {
    const p = zoneParts(ms, zone);
    const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return wall - Math.floor(ms / 1000) * 1000;
  }

  // The instant a local date starts in a zone.
  function zonedMidnight(iso, zone) {
    const guess = dateUTC(iso);
    let t = guess - offsetMs(guess, zone);
    const again = offsetMs(t, zone);
    if (guess - again !== t) t = guess - again;
    return t;
  }

  function viewerZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  // "London time", "New York time": the city names people know their zones by.
  function zoneName(zone) {
    if (zone === "UTC" || zone.startsWith("Etc/")) return "UTC";
    return zone.split("/").pop().replace(/_/g, " ") + " time";
  }

  // ---- one widget ---------------------------------------------------------------------------

  function template(level) {
    const h = (n) => "h" + Math.min(level + n, 6);
    const contact = (prefix) => `
      <div class="field">
        <label for="${prefix}name">Your name</label>
        <input id="${prefix}name" name="name" type="text" autocomplete="name" maxlength="${NAME_MAX}" required
               aria-describedby="${prefix}name-error">
        <p id="${prefix}name-error" class="field-error" hidden></p>
      </div>
      <div class="field">
        <label for="${prefix}email">Email</label>
        <input id="${prefix}email" name="email" type="email" autocomplete="email" maxlength="254" inputmode="email"
               aria-describedby="${prefix}email-error ${prefix}reach-hint">
        <p id="${prefix}email-error" class="field-error" hidden></p>
      </div>
      <div class="field">
        <label for="${prefix}phone">Phone</label>
        <input id="${prefix}phone" name="phone" type="tel" autocomplete="tel" maxlength="40"
               aria-describedby="${prefix}phone-error ${prefix}reach-hint">
        <p id="${prefix}phone-error" class="field-error" hidden></p>
      </div>
      <p id="${prefix}reach-hint" class="hint">An email address or a phone number (or both), so we can reach you.</p>`;
    return `
<div class="widget" id="widget" data-step="loading" hidden>
  <header class="masthead">
    <${h(0)} id="tenant-name" class="title">Book an appointment</${h(0)}>
    <p class="sub" id="tenant-sub">Loading…</p>
  </header>

  <div id="alert" class="alert" role="alert" hidden></div>
  <p id="status" class="status" role="status" aria-live="polite"></p>

  <section id="step-pick" class="step" aria-labelledby="pick-heading" hidden>
    <${h(1)} id="pick-heading" class="visually-hidden">Choose a time</${h(1)}>
    <div class="layout">
      <div class="choices">
        <fieldset id="locations" class="field" hidden>
          <legend>Location</legend>
          <div id="location-list" class="chips"></div>
        </fieldset>
        <div class="field">
          <label for="service">Service</label>
          <select id="service" name="service" aria-describedby="service-hint"></select>
          <p id="service-hint" class="hint below" hidden></p>
        </div>
        <div class="field" id="staff-field">
          <label for="staff">With</label>
          <select id="staff" name="staff"></select>
        </div>
        <div class="field" id="seats-field" hidden>
          <label for="seats">Places</label>
          <select id="seats" name="seats"></select>
        </div>
      </div>

      <div class="times">
        <p id="prompt" class="prompt">Choose a service to see the free times.</p>
        <div id="calendar" hidden>
          <nav class="daybar" aria-label="Days">
            <div class="weekrow">
              <button type="button" id="prev" class="nav-button" aria-label="Previous week"><span aria-hidden="true">‹</span></button>
              <p id="week-label" class="week-label"></p>
              <button type="button" id="next" class="nav-button" aria-label="Next week"><span aria-hidden="true">›</span></button>
              <label class="go-date"><span class="visually-hidden">Go to a date</span>
                <input type="date" id="go-date" name="go-date"></label>
            </div>
            <ol id="days" class="days"></ol>
          </nav>

          <div id="day" class="day-panel" aria-busy="false">
            <div id="day-alert" class="alert" role="alert" hidden></div>
            <${h(2)} id="day-heading" class="day-heading" tabindex="-1"></${h(2)}>
            <p id="zone-note" class="zone-note"></p>
            <div id="groups"></div>
            <div id="empty" class="empty" hidden>
              <p id="empty-text"></p>
              <div class="actions">
                <button type="button" id="jump" class="primary" hidden></button>
                <button type="button" id="waitlist-open" hidden>Join the waitlist</button>
              </div>
            </div>
            <form id="waitlist-form" class="card" novalidate hidden aria-labelledby="waitlist-heading">
              <${h(3)} id="waitlist-heading" tabindex="-1">Join the waitlist</${h(3)}>
              <p id="waitlist-summary" class="summary"></p>
              ${contact("wl-")}
              <div class="actions">
                <button type="submit" id="waitlist-join" class="primary">Join the waitlist</button>
                <button type="button" id="waitlist-cancel">Cancel</button>
              </div>
            </form>
          </div>
        </div>
      </div>
    </div>
  </section>

  <section id="step-hold" class="step card" aria-labelledby="hold-heading" hidden>
    <${h(1)} id="hold-heading" tabindex="-1">Your time is held</${h(1)}>
    <p id="hold-summary" class="summary"></p>
    <p class="countdown">
      We hold it for you for <span id="countdown" class="countdown-value" role="timer" aria-live="off">–:––</span>
    </p>
    <form id="confirm-form" novalidate>
      ${contact("")}
      <div id="hold-alert" class="alert" role="alert" hidden></div>
      <div class="actions">
        <button type="submit" id="confirm" class="primary">Confirm booking</button>
        <button type="button" id="release">Choose another time</button>
      </div>
    </form>
  </section>

  <section id="step-done" class="step card" aria-labelledby="done-heading" hidden>
    <${h(1)} id="done-heading" tabindex="-1">You're booked</${h(1)}>
    <p id="done-summary" class="summary"></p>
    <p id="done-contact" class="summary"></p>
    <p id="done-message" class="summary" hidden></p>
    <button type="button" id="again" class="primary">Book another appointment</button>
  </section>

  <footer class="foot"><p>Powered by slotmill</p></footer>
</div>`;
  }

  function mount(host, options) {
    const opts = Object.assign({ tenant: "demo", heading: 2 }, options || {});
    const level = Math.max(1, Math.min(4, Number(opts.heading) || 2));
    const root = host.shadowRoot || host.attachShadow({ mode: "open" });
    const sheet = document.createElement("link");
    sheet.rel = "stylesheet";
    sheet.href = ASSETS + "widget.css";
    const box = document.createElement("div");
    box.innerHTML = template(level);
    root.replaceChildren(sheet, ...box.childNodes);
    const widget = createWidget(root, opts);
    // Shown once styled (or if the sheet cannot load): no flash of an unstyled form.
    const show = () => { widget.el.widget.hidden = false; };
    sheet.addEventListener("load", show);
    sheet.addEventListener("error", show);
    widget.start();
    return widget;
  }

  function createWidget(root, opts) {
    const el = {};
    root.querySelectorAll("[id]").forEach((node) => {
      el[node.id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = node;
    });

    const apiBase = String(opts.api || new URL(ASSETS).origin).replace(/\/+$/, "");
    const locale = opts.lang || undefined;
    const state = {
      slug: String(opts.tenant || ""),
      key: opts.key ? String(opts.key) : "",
      catalog: null,
      viewer: viewerZone(),
      locationId: "", // "" = any location
      serviceId: "",
      staffId: "", // "" = anyone
      seats: 1,
      weekStart: "",
      day: "",
      week: null, // {weekStart, days: {date: [slot]}, fetchedAt}
      loadSeq: 0,
      ahead: null, // the next week with times, when the shown one has none
      hold: null,
      holdSlot: null,
      deadline: 0, // performance.now() at which the hold lapses, never before the server's
      timer: 0,
      warned: false,
      busy: false,
      historyPushed: false,
      releasedOnHide: false,
      live: null,
    };

    // ---- formatting (Intl, the page's locale) ----------------------------------------------

    const formats = new Map();
    function fmt(options) {
      const key = JSON.stringify(options);
      let f = formats.get(key);
      if (!f) {
        f = new Intl.DateTimeFormat(locale, options);
        formats.set(key, f);
      }
      return f;
    }
    // hour "numeric": "1:00 PM" in US English, "13:00" in British English.
    const fmtTime = (ms, zone) => fmt({ timeZone: zone, hour: "numeric", minute: "2-digit" }).format(ms);
    const fmtDate = (iso, o) => fmt(Object.assign({ timeZone: "UTC" }, o)).format(dateUTC(iso));
    const fmtDayLong = (iso) => fmtDate(iso, { weekday: "long", day: "numeric", month: "long" });
    const fmtWeekday = (ms, zone) => fmt({ timeZone: zone, weekday: "short" }).format(ms);

    // ---- the API ------------------------------------------------------------------------------

    class ApiError extends Error {
      constructor(status, body) {
        super((body && (body.detail || body.message || body.title)) || "The server answered " + status + ".");
        this.status = status;
        this.code = (body && body.code) || "http_" + status;
        this.field = (body && body.field) || "";
        this.detail = this.message;
      }
    }

    async function request(method, url, body, init) {
      const options = Object.assign({ method, headers: { Accept: "application/json" } }, init || {});
      options.headers = Object.assign({ Accept: "application/json" }, (init && init.headers) || {});
      if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await fetch(url, options);
      } catch (e) {
        throw new ApiError(0, {
          code: "network",
          detail: "Could not reach the booking server. Check your connection and try again.",
        });
      }
      if (res.status === 204) return { res, data: null };
      const text = await res.text();
      let data = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (e) {
        data = null;
      }
      if (!res.ok) throw new ApiError(res.status, data);
      return { res, data };
    }

    const tenantPath = (rest) => apiBase + "/v1/tenants/" + encodeURIComponent(state.slug) + rest;

    function friendly(err) {
      if (err.status === 429) return "Too many requests from this address. Please wait a minute and try again.";
      return err.detail;
    }

    // ---- messages and steps -----------------------------------------------------------------------

    function say(text) {
      el.status.textContent = text;
    }

    // A problem is said where the customer is looking: at the top (the page), in the day's
    // times ("day": a time that went, a hold that ran out), or by the confirm button
    // ("hold"). Saying one clears the others; alertUser("") clears all.
    function alertUser(text, near) {
      const box = { day: el.dayAlert, hold: el.holdAlert }[near] || el.alert;
      [el.alert, el.dayAlert, el.holdAlert].forEach((b) => {
        b.textContent = b === box ? text : "";
        b.hidden = b !== box || !text;
      });
    }

    function showStep(name) {
      el.widget.dataset.step = name;
      el.stepPick.hidden = name !== "pick";
      el.stepHold.hidden = name !== "hold";
      el.stepDone.hidden = name !== "done";
    }

    const step = () => el.widget.dataset.step;

    function node(tag, cls, text) {
      const n = document.createElement(tag);
      if (cls) n.className = cls;
      if (text !== undefined) n.textContent = text;
      return n;
    }

    function option(value, text) {
      const o = node("option", "", text);
      o.value = value;
      return o;
    }

    // ---- the catalog -------------------------------------------------------------------------------

    const cat = () => state.catalog;
    const find = (list, id) => list.find((x) => x.id === id) || null;
    const serviceOf = (id) => find(cat().services, id);
    const staffOf = (id) => find(cat().staff, id);
    const locationOf = (id) => find(cat().locations, id);
    const tenantZone = () => cat().tenant.timezone;
    const locZone = (id) => {
      const l = id && locationOf(id);
      return l ? l.timezone : tenantZone();
    };
    const service = () => serviceOf(state.serviceId);
    const isGroup = () => !!service() && service().seats > 1;
    const performs = (s, serviceId) => s.service_ids.indexOf(serviceId) !== -1;
    const worksAt = (s, locationId) => !locationId || s.location_ids.indexOf(locationId) !== -1;

    // Location names often share the business's name ("Fern & Finch, Camden"): drop it where
    // space is short.
    let commonPrefix = "";
    function shortName(loc) {
      return loc.name.slice(commonPrefix.length) || loc.name;
    }
    function findCommonPrefix(names) {
      if (names.length < 2) return "";
      let p = names[0];
      names.forEach((n) => { while (!n.startsWith(p)) p = p.slice(0, -1); });
      let best = "";
      [", ", " - ", " · "].forEach((sep) => {
        const i = p.lastIndexOf(sep);
        if (i > 0 && i + sep.length > best.length) best = p.slice(0, i + sep.length);
      });
      return best;
    }

    // Locations where anyone works, those in the viewer's own zone first.
    function offeredLocations(serviceId) {
      const ids = new Set();
      cat().staff.forEach((s) => {
        if (!serviceId || performs(s, serviceId)) s.location_ids.forEach((id) => ids.add(id));
      });
      const mine = (l) => (l.timezone === state.viewer ? 0 : 1);
      return cat().locations.filter((l) => ids.has(l.id)).sort((a, b) => mine(a) - mine(b));
    }

    function locationsInScope() {
      if (state.locationId) return cat().locations.filter((l) => l.id === state.locationId);
      const staff = state.staffId ? staffOf(state.staffId) : null;
      return offeredLocations(state.serviceId).filter((l) => !staff || worksAt(staff, l.id));
    }

    function fillLocations() {
      const locs = offeredLocations("");
      el.locations.hidden = locs.length < 2;
      el.locationList.replaceChildren();
      const zones = new Set(locs.map((l) => l.timezone));
      const chip = (value, label, sub) => {
        const lab = node("label", "chip");
        const input = node("input");
        input.type = "radio";
        input.name = "location";
        input.value = value;
        input.checked = value === state.locationId;
        input.addEventListener("change", () => onLocation(value));
        lab.append(input, node("span", "chip-name", label));
        if (sub) lab.append(node("span", "chip-sub", sub));
        el.locationList.append(lab);
      };
      chip("", "Any location", "");
      locs.forEach((l) => chip(l.id, shortName(l), zones.size > 1 ? zoneName(l.timezone) : ""));
    }

    function fillServices() {
      const offered = cat().services.filter((v) =>
        cat().staff.some((s) => performs(s, v.id) && worksAt(s, state.locationId)));
      if (state.serviceId && !offered.some((v) => v.id === state.serviceId)) state.serviceId = "";
      el.service.replaceChildren(option("", offered.length ? "Choose a service" : "Nothing to book here"));
      offered.forEach((v) => el.service.append(option(v.id, v.name + " · " + v.duration_minutes + " min")));
      if (!state.serviceId && offered.length === 1) state.serviceId = offered[0].id;
      el.service.value = state.serviceId;
    }

    function fillStaff() {
      el.staff.replaceChildren(option("", "Anyone available"));
      const many = !state.locationId && offeredLocations(state.serviceId).length > 1;
      let keep = false;
      cat().staff.forEach((s) => {
        if (!performs(s, state.serviceId) || !worksAt(s, state.locationId)) return;
        const where = many ? s.location_ids.map((id) => locationOf(id)).filter(Boolean).map(shortName) : [];
        el.staff.append(option(s.id, s.display_name + (where.length ? " (" + where.join(", ") + ")" : "")));
        if (s.id === state.staffId) keep = true;
      });
      if (!keep) state.staffId = "";
      el.staff.value = state.staffId;
      el.staff.disabled = !state.serviceId;
    }

    function fillSeats() {
      el.seatsField.hidden = !isGroup();
      el.serviceHint.hidden = !isGroup();
      el.serviceHint.textContent = isGroup() ? "A group session of up to " + service().seats + " people." : "";
      if (!isGroup()) {
        state.seats = 1;
        return;
      }
      const max = Math.min(service().seats, MAX_PARTY);
      el.seats.replaceChildren();
      for (let n = 1; n <= max; n++) el.seats.append(option(String(n), n === 1 ? "1 place" : n + " places"));
      state.seats = Math.min(state.seats, max);
      el.seats.value = String(state.seats);
    }

    function fillChoices() {
      fillLocations();
      fillServices();
      fillStaff();
      fillSeats();
    }

    // ---- reading a week ------------------------------------------------------------------------

    // One read per location in scope (any staff) or one read of the chosen person: every
    // time then knows its location, and so its zone.
    function readPlan() {
      if (state.staffId) {
        const s = staffOf(state.staffId);
        const zone = state.locationId ? locZone(state.locationId) : (s ? s.timezone : tenantZone());
        return [{ staffId: state.staffId, locationId: state.locationId || null, zone }];
      }
      const locs = locationsInScope();
      if (!locs.length) return [{ staffId: null, locationId: null, zone: tenantZone() }];
      return locs.map((l) => ({ staffId: null, locationId: l.id, zone: l.timezone }));
    }

    // The zone "today" and the weeks are counted in: the one of everything shown, else the
    // business's.
    function anchorZone() {
      const zones = new Set(readPlan().map((p) => p.zone));
      return zones.size === 1 ? zones.values().next().value : tenantZone();
    }

    const today = () => localDate(Date.now(), anchorZone());

    function advanceDays() {
      const s = service();
      return s ? s.max_advance_days : cat().tenant.horizon_days;
    }

    // Starts from now + max_advance_days are not offered yet (as the server counts).
    const bookableUntil = () => Date.now() + advanceDays() * DAY_MS;
    // The strip shows seven days from today, then the next seven, and so on: never a week
    // of days gone by (a Sunday opened on a Monday-first week shows six).
    const windowOf = (iso) => addDays(today(), 7 * Math.floor(daysBetween(today(), iso) / 7));
    const lastWeek = () => windowOf(localDate(bookableUntil() - 1, anchorZone()));
    const firstWeek = () => today();

    function normalize(s, item) {
      const locationId = s.location_id !== undefined ? s.location_id : item.locationId;
      return {
        start: Date.parse(s.starts_at),
        end: Date.parse(s.ends_at),
        startsAt: s.starts_at,
        locationId,
        zone: locationId ? locZone(locationId) : item.zone,
        slotId: s.id || "",
        staffId: s.staff_id || "",
        candidates: s.candidates || (s.staff_id ? [s.staff_id] : []),
        seats: s.seats_left !== undefined ? s.seats_left : s.capacity,
      };
    }

    async function readItem(item, weekStart) {
      const q = new URLSearchParams({
        service_id: state.serviceId, from: weekStart, to: addDays(weekStart, 6), tz: item.zone, limit: "1000",
      });
      if (item.staffId) q.set("staff_id", item.staffId);
      else {
        q.set("group", "time");
        q.set("candidates", String(CANDIDATES));
      }
      if (item.locationId) q.set("location_id", item.locationId);
      const out = [];
      for (let page = 0; page < MAX_PAGES; page++) {
        const { data } = await request("GET", tenantPath("/slots?" + q.toString()));
        (data.slots || []).forEach((s) => out.push(normalize(s, item)));
        if (!data.next_from) break;
        // The rest of the week, from the first start left out (both bounds as instants).
        q.set("from", data.next_from);
        q.set("to", new Date(zonedMidnight(addDays(weekStart, 7), item.zone)).toISOString());
      }
      return out;
    }

    async function fetchWeek(weekStart) {
      const lists = await Promise.all(readPlan().map((item) => readItem(item, weekStart)));
      const days = {};
      for (let i = 0; i < 7; i++) days[addDays(weekStart, i)] = [];
      lists.flat().forEach((slot) => {
        if (isGroup() && slot.seats < state.seats) return;
        const day = localDate(slot.start, slot.zone);
        if (days[day]) days[day].push(slot);
      });
      Object.values(days).forEach((list) => list.sort((a, b) => a.start - b.start));
      return { weekStart, days, fetchedAt: performance.now() };
    }

    const countFrom = (week, from) =>
      Object.keys(week.days).filter((d) => d >= from).reduce((n, d) => n + week.days[d].length, 0);

    const slotKey = (s) => s.startsAt + "@" + (s.locationId || "");
    const weekSignature = (week) =>
      Object.keys(week.days).map((d) => d + ":" + week.days[d].map((s) => slotKey(s) + "/" + s.seats).join(",")).join(";");

    function dayState(iso) {
      const count = state.week && state.week.days[iso] ? state.week.days[iso].length : 0;
      if (count) return "open";
      if (iso < today()) return "past";
      if (zonedMidnight(iso, anchorZone()) >= bookableUntil()) return "later";
      return "none";
    }

    // ---- showing a week ------------------------------------------------------------------------

    function setBusy(busy) {
      el.day.setAttribute("aria-busy", busy ? "true" : "false");
      el.day.classList.toggle("loading", busy);
    }

    // Show the week starting `weekStart`. `first`: if it has no times from today on, look
    // ahead for the first week that has. `keepDay`: stay on that day. `quiet`: a refresh
    // that redraws only what changed, without moving focus or saying so.
    async function showWeek(weekStart, how) {
      how = how || {};
      const seq = ++state.loadSeq;
      state.weekStart = weekStart;
      if (!how.quiet) {
        state.ahead = null;
        // What is shown is current only once this is set again (tests wait on it too).
        delete el.widget.dataset.ready;
        setBusy(true);
        say("Loading times…");
        renderNav();
      }
      let week;
      try {
        week = await fetchWeek(weekStart);
        if (how.first && !countFrom(week, today())) {
          say("Looking for the first free time…");
          const found = await lookAhead(addDays(weekStart, 7), seq);
          if (found) week = found;
        }
      } catch (err) {
        if (seq !== state.loadSeq || how.quiet) return false; // a quiet refresh fails quietly
        setBusy(false);
        say("");
        alertUser("Could not load times: " + friendly(err));
        el.widget.dataset.ready = "error";
        return false;
      }
      if (seq !== state.loadSeq) return false;
      setBusy(false);
      const changed = !state.week || weekSignature(state.week) !== weekSignature(week) ||
        state.week.weekStart !== week.weekStart;
      state.weekStart = week.weekStart;
      const keep = how.keepDay && week.days[how.keepDay] !== undefined ? how.keepDay : "";
      state.week = week;
      state.day = keep || firstDay(week);
      if (how.quiet && !changed) return true;
      const focused = root.activeElement;
      const focusKey = focused && focused.dataset && focused.dataset.key;
      renderNav();
      renderDays();
      renderDay();
      el.widget.dataset.ready = "1";
      if (how.quiet && focusKey) {
        const again = el.groups.querySelector(`button.slot[data-key="${CSS.escape(focusKey)}"]`);
        if (again) again.focus();
      }
      if (!how.quiet) {
        const n = countFrom(week, today());
        if (n) {
          say(how.first && week.weekStart !== weekStart
            ? "The first free time is on " + fmtDayLong(state.day) + "."
            : n + (n === 1 ? " free time" : " free times") + " this week.");
        } else {
          say("");
          findNext(seq);
        }
      }
      return true;
    }

    function firstDay(week) {
      const from = today();
      const days = Object.keys(week.days).sort();
      return days.find((d) => d >= from && week.days[d].length) || days.find((d) => d >= from) || days[0];
    }

    async function lookAhead(weekStart, seq) {
      for (let w = weekStart; w <= lastWeek(); w = addDays(w, 7)) {
        const week = await fetchWeek(w);
        if (seq !== state.loadSeq) return null;
        if (countFrom(week, today())) return week;
      }
      return null;
    }

    // An empty week: find the next week with times, for a "show it" button.
    async function findNext(seq) {
      let found = null;
      try {
        found = await lookAhead(addDays(state.weekStart, 7), seq);
      } catch (err) {
        found = null;
      }
      if (seq !== state.loadSeq) return;
      state.ahead = found;
      renderDay();
    }

    function renderNav() {
      const end = addDays(state.weekStart, 6);
      el.weekLabel.textContent = fmtDate(state.weekStart, { day: "numeric", month: "short" }) + " – " +
        fmtDate(end, { day: "numeric", month: "short", year: "numeric" });
      el.prev.disabled = state.weekStart <= firstWeek();
      el.next.disabled = state.weekStart >= lastWeek();
      el.goDate.min = today();
      el.goDate.max = localDate(bookableUntil() - 1, anchorZone());
      el.goDate.value = state.day || "";
    }

    const DAY_WORDS = { open: "", none: "No times", past: "Past", later: "Not yet" };

    function renderDays() {
      const list = document.createDocumentFragment();
      const now = today();
      for (let i = 0; i < 7; i++) {
        const iso = addDays(state.weekStart, i);
        const st = dayState(iso);
        const count = st === "open" ? state.week.days[iso].length : 0;
        const li = node("li");
        const b = node("button", "day-button " + st + (iso === now ? " today" : ""));
        b.type = "button";
        b.dataset.date = iso;
        b.setAttribute("aria-pressed", iso === state.day ? "true" : "false");
        if (iso === now) b.setAttribute("aria-current", "date");
        b.disabled = st === "past";
        b.append(
          node("span", "dow", fmtDate(iso, { weekday: "short" })),
          node("span", "dom", fmtDate(iso, { day: "numeric" })),
          node("span", "count", st === "open" ? String(count) : DAY_WORDS[st]),
        );
        const what = st === "open" ? count + (count === 1 ? " free time" : " free times")
          : st === "later" ? "not open for booking yet" : st === "past" ? "past" : "no free times";
        b.setAttribute("aria-label", fmtDayLong(iso) + (iso === now ? ", today" : "") + ": " + what);
        b.addEventListener("click", () => selectDay(iso));
        li.append(b);
        list.append(li);
      }
      el.days.replaceChildren(list);
    }

    function selectDay(iso) {
      state.day = iso;
      el.days.querySelectorAll("button.day-button").forEach((b) => {
        b.setAttribute("aria-pressed", b.dataset.date === iso ? "true" : "false");
      });
      el.goDate.value = iso;
      renderDay();
    }

    // The customer's own time beside a time, when their clock would say something else.
    function viewerTime(ms, zone) {
      const theirs = fmtTime(ms, state.viewer);
      if (theirs === fmtTime(ms, zone) && localDate(ms, state.viewer) === localDate(ms, zone)) return "";
      return localDate(ms, state.viewer) === localDate(ms, zone) ? theirs : fmtWeekday(ms, state.viewer) + " " + theirs;
    }

    function seatsText(n) {
      return n === 1 ? "1 place left" : n + " places left";
    }

    function whereName(locationId) {
      const l = locationId && locationOf(locationId);
      return l ? l.name : "";
    }

    function renderDay() {
      const iso = state.day;
      hideWaitlist();
      el.dayHeading.textContent = iso ? fmtDayLong(iso) : "";
      const slots = (state.week && state.week.days[iso]) || [];
      const plan = readPlan();
      const zones = new Set(plan.map((p) => p.zone));
      const differs = (zone) => offsetMs(Date.now(), zone) !== offsetMs(Date.now(), state.viewer) ||
        slots.some((s) => s.zone === zone && viewerTime(s.start, zone));
      el.zoneNote.hidden = !slots.length;
      if (zones.size === 1) {
        const zone = zones.values().next().value;
        el.zoneNote.textContent = "Times are in " + zoneName(zone) +
          (differs(zone) ? "; yours (" + zoneName(state.viewer) + ") are shown beside them." : ".");
      } else {
        el.zoneNote.textContent = "Each location's times are in its own zone; yours (" + zoneName(state.viewer) +
          ") are shown beside them where they differ.";
      }

      const groups = new Map();
      plan.forEach((p) => { if (p.locationId) groups.set(p.locationId, []); });
      slots.forEach((s) => {
        const k = s.locationId || "";
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push(s);
      });
      const frag = document.createDocumentFragment();
      const named = cat().locations.length > 0;
      const heading = "h" + Math.min(Number(el.dayHeading.tagName.slice(1)) + 1, 6);
      groups.forEach((list, locationId) => {
        if (!list.length) return;
        const section = node("section", "group");
        const zone = list[0].zone;
        if (named) {
          const h = node(heading, "group-heading");
          h.id = "group-" + (locationId || "none");
          h.append(node("span", "", whereName(locationId) || cat().tenant.name));
          h.append(node("span", "group-zone", zoneName(zone)));
          section.append(h);
          section.setAttribute("aria-labelledby", h.id);
        }
        const ul = node("ul", "slots");
        list.forEach((s) => {
          const li = node("li");
          li.append(slotButton(s, iso));
          ul.append(li);
        });
        section.append(ul);
        frag.append(section);
      });
      el.groups.replaceChildren(frag);
      renderEmpty(iso, slots.length);
    }

    function slotButton(slot, iso) {
      const b = node("button", "slot");
      b.type = "button";
      const time = fmtTime(slot.start, slot.zone);
      const yours = viewerTime(slot.start, slot.zone);
      b.append(node("span", "t", time));
      if (yours) b.append(node("span", "yours", yours + " yours"));
      if (isGroup()) b.append(node("span", "seats", seatsText(slot.seats)));
      b.classList.toggle("two-zones", !!yours);
      b.dataset.key = slotKey(slot);
      b.dataset.startsAt = slot.startsAt;
      b.dataset.locationId = slot.locationId || "";
      if (slot.slotId) b.dataset.slotId = slot.slotId;
      if (slot.staffId) b.dataset.staffId = slot.staffId;
      const where = whereName(slot.locationId);
      b.setAttribute("aria-label",
        time + " to " + fmtTime(slot.end, slot.zone) + " " + zoneName(slot.zone) +
        (yours ? " (" + yours + " your time)" : "") +
        (where ? ", " + where : "") + ", " + fmtDayLong(iso) +
        (isGroup() ? ", " + seatsText(slot.seats) : ""));
      b.addEventListener("click", () => chooseTime(slot, b));
      return b;
    }

    function renderEmpty(iso, count) {
      if (count) {
        el.empty.hidden = true;
        return;
      }
      el.empty.hidden = false;
      el.jump.hidden = true;
      el.waitlistOpen.hidden = true;
      const st = dayState(iso);
      const weekCount = state.week ? countFrom(state.week, today()) : 0;
      let text;
      if (st === "past") text = "This day has passed.";
      else if (st === "later") {
        const opens = addDays(iso, -advanceDays());
        text = "Bookings for " + fmtDayLong(iso) + " open on " + fmtDayLong(opens > today() ? opens : today()) + ".";
      } else if (weekCount) text = "No free times on " + fmtDayLong(iso) + ".";
      else text = "No free times this week.";
      if (!weekCount && state.ahead) {
        const first = firstDay(state.ahead);
        text += " The next free time is on " + fmtDayLong(first) + ".";
        el.jump.textContent = "Show " + fmtDate(first, { weekday: "short", day: "numeric", month: "short" });
        el.jump.hidden = false;
      }
      el.emptyText.textContent = text;
      el.waitlistOpen.hidden = !(cat().features.waitlist && st === "none");
    }

    // ---- choices ------------------------------------------------------------------------------

    function refreshTimes(how) {
      const ready = !!state.serviceId;
      el.prompt.hidden = ready;
      el.calendar.hidden = !ready;
      if (state.live) state.live.follow();
      if (!ready) {
        say("");
        return Promise.resolve(false);
      }
      const start = state.weekStart && state.weekStart >= firstWeek() ? windowOf(state.weekStart) : firstWeek();
      return showWeek(how && how.keepWeek ? start : firstWeek(), Object.assign({ first: true }, how || {}));
    }

    function onLocation(id) {
      state.locationId = id;
      fillServices();
      fillStaff();
      fillSeats();
      alertUser("");
      refreshTimes();
    }

    el.service.addEventListener("change", () => {
      state.serviceId = el.service.value;
      fillStaff();
      fillSeats();
      alertUser("");
      refreshTimes();
    });
    el.staff.addEventListener("change", () => {
      state.staffId = el.staff.value;
      alertUser("");
      refreshTimes();
    });
    el.seats.addEventListener("change", () => {
      state.seats = Number(el.seats.value) || 1;
      refreshTimes({ keepWeek: true, keepDay: state.day });
    });
    el.prev.addEventListener("click", () => {
      alertUser("");
      showWeek(addDays(state.weekStart, -7)).then(() => { if (el.prev.disabled) el.next.focus(); });
    });
    el.next.addEventListener("click", () => {
      alertUser("");
      showWeek(addDays(state.weekStart, 7)).then(() => { if (el.next.disabled) el.prev.focus(); });
    });
    el.goDate.addEventListener("change", () => {
      const iso = el.goDate.value;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) return;
      alertUser("");
      if (windowOf(iso) === state.weekStart) selectDay(iso);
      else showWeek(windowOf(iso), { keepDay: iso });
    });
    el.jump.addEventListener("click", () => {
      const ahead = state.ahead;
      if (!ahead) return;
      showWeek(ahead.weekStart).then(() => el.dayHeading.focus());
    });

    // ---- hold ------------------------------------------------------------------------------

    function setSlotsDisabled(disabled) {
      el.groups.querySelectorAll("button.slot").forEach((b) => {
        b.disabled = disabled;
        if (!disabled) b.classList.remove("holding");
      });
    }

    function describeTime(slot) {
      const where = whereName(slot.locationId);
      return fmtTime(slot.start, slot.zone) + " on " + fmtDayLong(localDate(slot.start, slot.zone)) +
        (where ? " at " + where : "");
    }

    class Gone extends Error {}

    async function holdOnce(slot) {
      const seats = state.seats;
      const base = { service_id: state.serviceId, starts_at: slot.startsAt, seats };
      const bodies = slot.slotId ? [{ slot_id: slot.slotId, seats }]
        : slot.candidates.length ? slot.candidates.map((id) => Object.assign({ staff_id: id }, base)) : [base];
      let last = null;
      // Anyone: the candidates of this start at this location, best first; holding by time
      // without a staff member could pick someone at another location.
      for (const body of bodies) {
        try {
          const r = await request("POST", tenantPath("/holds"), body);
          return { hold: r.data, received: performance.now() };
        } catch (err) {
          last = err;
          if (err.status !== 409) throw err;
        }
      }
      throw last;
    }

    async function chooseTime(slot, button) {
      if (state.busy) return;
      state.busy = true;
      setSlotsDisabled(true);
      button.classList.add("holding");
      alertUser("");
      say("Holding " + describeTime(slot) + "…");
      try {
        if (performance.now() - state.week.fetchedAt > STALE_MS) {
          // Read again first: a page left open for a while shows old times.
          await showWeek(state.weekStart, { keepDay: state.day, quiet: true });
          setSlotsDisabled(true);
          const again = Object.values(state.week.days).flat().find((s) => slotKey(s) === slotKey(slot));
          if (!again) throw new Gone();
          slot = again;
        }
        const { hold, received } = await holdOnce(slot);
        state.busy = false;
        enterHold(hold, slot, received);
      } catch (err) {
        state.busy = false;
        await holdFailed(err, slot);
      }
    }

    async function whyGone(slot) {
      const staff = slot.slotId ? [slot.staffId] : slot.candidates;
      if (!staff.length) return "unavailable";
      const q = new URLSearchParams({ service_id: state.serviceId, starts_at: slot.startsAt });
      staff.forEach((id) => q.append("staff_id", id));
      try {
        const r = await request("GET", tenantPath("/slot-status?" + q.toString()));
        return r.data.status;
      } catch (err) {
        return "";
      }
    }

    async function holdFailed(err, slot) {
      let why = "";
      if (err instanceof Gone || err.code === "slot_unavailable") why = await whyGone(slot);
      else if (err.code === "slot_not_found") why = "unavailable";
      else if (err.code === "session_full") why = "full";
      else if (err.code === "resource_unavailable") why = "taken";
      const when = describeTime(slot);
      const who = slot.staffId && staffOf(slot.staffId);
      const messages = {
        taken: "Sorry, someone else has just taken " + when + ". The times below are up to date.",
        full: "Sorry, the session at " + when + " has just filled up. The times below are up to date.",
        unavailable: when.charAt(0).toUpperCase() + when.slice(1) + " is no longer offered: " + cat().tenant.name +
          " has changed its schedule. The times below are up to date.",
        available: "Could not hold " + when + " just now. Please try again.",
      };
      let text = messages[why];
      if (!text && err.code === "limit_reached") {
        text = (who ? who.display_name + " is" : "We are") + " fully booked on " +
          fmtDayLong(localDate(slot.start, slot.zone)) + ". The times below are up to date.";
      }
      if (!text && err.status === 409) text = "Sorry, " + when + " is no longer available. The times below are up to date.";
      if (!text) {
        setSlotsDisabled(false);
        say("");
        alertUser("Could not hold that time: " + friendly(err), "day");
        return;
      }
      await showWeek(state.weekStart, { keepDay: state.day, quiet: true });
      setSlotsDisabled(false);
      say("");
      alertUser(text, "day");
      el.dayHeading.focus();
    }

    // What, when (in the location's zone, and the customer's when it differs) and where.
    function describeHold(h) {
      const start = Date.parse(h.starts_at);
      const end = Date.parse(h.ends_at);
      const zone = h.location_id ? locZone(h.location_id) : (staffOf(h.staff_id) || { timezone: tenantZone() }).timezone;
      const v = serviceOf(h.service_id);
      const s = staffOf(h.staff_id);
      const mine = viewerTime(start, zone);
      const where = whereName(h.location_id);
      return [
        ["what", (v ? v.name : "Appointment") + (s ? " with " + s.display_name : "") +
          (h.seats > 1 ? " for " + h.seats + " people" : "")],
        ["when", fmtDayLong(localDate(start, zone)) + ", " + fmtTime(start, zone) + "–" + fmtTime(end, zone) + " " +
          zoneName(zone) + (mine ? " (" + mine + "–" + viewerTime(end, zone) + " your time)" : "")],
        ["where", where ? "at " + where : ""],
      ].filter((line) => line[1]);
    }

    function showSummary(target, h) {
      target.replaceChildren(...describeHold(h).map(([cls, text]) => node("span", "line " + cls, text)));
    }

    function enterHold(hold, slot, received) {
      state.hold = hold;
      state.holdSlot = slot;
      // The server's hold lapses hold_ttl_seconds after it was made, which was before its
      // answer arrived here: counting that long from the arrival, on this page's monotonic
      // clock, never ends first, whatever the customer's clock says.
      state.deadline = received + cat().booking.hold_ttl_seconds * 1000;
      showSummary(el.holdSummary, hold);
      clearErrors("");
      el.confirm.disabled = false;
      el.release.disabled = false;
      state.warned = false;
      showStep("hold");
      say("Held. Enter your details to confirm.");
      if (!state.historyPushed) {
        // Browser back from the hold step returns to the times and releases the hold.
        history.pushState({ slotmill: "hold" }, "");
        state.historyPushed = true;
      }
      startCountdown();
      el.holdHeading.focus();
    }

    const remainingMs = () => state.deadline - performance.now();

    function startCountdown() {
      stopCountdown();
      tick();
      state.timer = window.setInterval(tick, 250);
    }

    function stopCountdown() {
      if (state.timer) window.clearInterval(state.timer);
      state.timer = 0;
    }

    function tick() {
      if (!state.hold) {
        stopCountdown();
        return;
      }
      const ms = remainingMs();
      if (ms <= 0) {
        el.countdown.textContent = "0:00";
        backToPick("Your hold ran out before it was confirmed. Please choose a time again.");
        return;
      }
      const s = Math.ceil(ms / 1000);
      el.countdown.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
      el.countdown.classList.toggle("low", s <= 60);
      if (s <= 60 && !state.warned) {
        state.warned = true;
        say("Less than a minute left to confirm.");
      }
    }

    function clearHold() {
      stopCountdown();
      state.hold = null;
      state.holdSlot = null;
    }

    function backToPick(problem, news) {
      clearHold();
      state.busy = false;
      showStep("pick");
      return showWeek(state.weekStart || firstWeek(), { keepDay: state.day }).then(() => {
        if (problem) alertUser(problem, "day");
        if (news) say(news);
        el.dayHeading.focus();
      });
    }

    function releaseHold(keepalive) {
      const h = state.hold;
      if (!h) return Promise.resolve();
      const url = tenantPath("/holds/" + encodeURIComponent(h.hold_id));
      if (keepalive) {
        // fetch keepalive (unlike sendBeacon, which can only POST) outlives the page.
        try {
          fetch(url, { method: "DELETE", keepalive: true });
        } catch (e) {
          /* it expires on its own */
        }
        return Promise.resolve();
      }
      return request("DELETE", url).catch(() => { /* it expires on its own */ });
    }

    function releaseAndReturn() {
      if (!state.hold) {
        showStep("pick");
        return;
      }
      el.confirm.disabled = true;
      el.release.disabled = true;
      say("Releasing your held time…");
      releaseHold(false).then(() => backToPick("", "Your held time was released."));
    }

    el.release.addEventListener("click", () => {
      if (state.historyPushed) history.back(); // popstate releases: one path for both
      else releaseAndReturn();
    });

    window.addEventListener("popstate", () => {
      if (!state.historyPushed) return;
      state.historyPushed = false;
      if (state.hold) releaseAndReturn();
      else if (step() === "done") resetToPick();
    });

    window.addEventListener("pagehide", () => {
      if (state.hold) {
        releaseHold(true);
        clearHold();
        state.releasedOnHide = true;
      }
    });

    // Back from the back/forward cache: the hold was released on pagehide.
    window.addEventListener("pageshow", (e) => {
      if (e.persisted && state.releasedOnHide) {
        state.releasedOnHide = false;
        backToPick("Your held time was released when you left the page.");
      }
    });

    // ---- contact details ---------------------------------------------------------------------

    function fieldError(prefix, name, text) {
      const input = el[camel(prefix + name)];
      const p = el[camel(prefix + name + "-error")];
      p.textContent = text;
      p.hidden = !text;
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }

    function camel(id) {
      return id.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    }

    function clearErrors(prefix) {
      ["name", "email", "phone"].forEach((n) => fieldError(prefix, n, ""));
    }

    // The contact of the form with `prefix`, or null (and the errors shown, focus on the
    // first) when it would be refused.
    function readContact(prefix) {
      const value = (n) => el[camel(prefix + n)].value.trim();
      const name = value("name");
      const email = value("email");
      const phone = value("phone");
      const errors = {};
      if (!name) errors.name = "Please enter your name.";
      else if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) errors.name = "Please use letters, not special characters.";
      if (email && !EMAIL.test(email)) errors.email = "This does not look like an email address (like name@example.com).";
      if (phone && !PHONE.test(phone.replace(PHONE_SEPARATORS, ""))) {
        errors.phone = "This does not look like a phone number (6 to 15 digits, + for an international number).";
      }
      if (!email && !phone) errors.email = "Please give an email address or a phone number, so we can reach you.";
      clearErrors(prefix);
      const bad = ["name", "email", "phone"].filter((n) => errors[n]);
      bad.forEach((n) => fieldError(prefix, n, errors[n]));
      if (bad.length) {
        el[camel(prefix + bad[0])].focus();
        say(bad.length === 1 ? "One detail needs fixing." : bad.length + " details need fixing.");
        return null;
      }
      const out = { name };
      if (email) out.email = email;
      if (phone) out.phone = phone;
      return out;
    }

    // A 422 of the server names the field (body.contact.email, body.email): show it there.
    function serverFieldError(prefix, err) {
      const m = /(name|email|phone)$/.exec(err.field || "");
      if (!m) return false;
      fieldError(prefix, m[1], err.detail.replace(/^[\w.]+: /, ""));
      el[camel(prefix + m[1])].focus();
      return true;
    }

    // ---- confirm -----------------------------------------------------------------------------

    // How this page confirms: with the publishable key where the business allows it, else
    // through the business's own site, else (a server in demo mode) the demo route.
    function confirmMode() {
      const b = cat().booking;
      if (b.public_confirm && state.key) return "public";
      if (b.confirm_url) return "host";
      return "demo";
    }

    async function postToHost(h, contact) {
      // The business's own backend confirms with its secret key; same-origin cookies go
      // along, so it knows a signed-in customer.
      const body = {
        tenant: state.slug, hold_id: h.hold_id, service_id: h.service_id, staff_id: h.staff_id,
        location_id: h.location_id, starts_at: h.starts_at, ends_at: h.ends_at, expires_at: h.expires_at,
        seats: h.seats, contact,
      };
      return request("POST", cat().booking.confirm_url, body);
    }

    async function confirmHold(h, contact) {
      const mode = confirmMode();
      const id = encodeURIComponent(h.hold_id);
      if (mode === "public") {
        return request("POST", tenantPath("/holds/" + id + "/confirm/public"), { contact },
          { headers: { Authorization: "Bearer " + state.key } });
      }
      if (mode === "host") return postToHost(h, contact);
      return request("POST", apiBase + "/v1/demo/tenants/" + encodeURIComponent(state.slug) + "/holds/" + id + "/confirm",
        contact);
    }

    el.confirmForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!state.hold || state.busy) return;
      const contact = readContact("");
      if (!contact) return;
      state.busy = true;
      el.confirm.disabled = true;
      el.release.disabled = true;
      el.confirm.textContent = "Confirming…";
      say("Confirming your booking…");
      const h = state.hold;
      try {
        const r = await confirmHold(h, contact);
        state.busy = false;
        el.confirm.textContent = "Confirm booking";
        clearHold();
        showDone(Object.assign({}, h, (r.data && r.data.id ? r.data : {})), contact, r.data && r.data.message);
      } catch (err) {
        state.busy = false;
        el.confirm.textContent = "Confirm booking";
        if (err.status === 410) {
          backToPick("Your hold ran out before it was confirmed. Please choose a time again.");
          return;
        }
        if (err.status === 409) {
          backToPick("Sorry, that time is no longer available. The times below are up to date.");
          return;
        }
        el.confirm.disabled = false;
        el.release.disabled = false;
        say("");
        if (err.status === 422 && serverFieldError("", err)) return;
        const mode = confirmMode();
        if (mode === "demo" && err.status === 404 && err.code !== "hold_not_found") {
          alertUser("This page cannot confirm bookings: " + cat().tenant.name + " has not set up confirming from it.",
            "hold");
        } else if (mode === "public" && (err.status === 401 || err.status === 403)) {
          alertUser("This page cannot confirm bookings right now. Please contact " + cat().tenant.name + ".", "hold");
        } else {
          alertUser("Could not confirm: " + friendly(err), "hold");
        }
      }
    });

    function showDone(booking, contact, hostMessage) {
      showSummary(el.doneSummary, booking);
      const reach = [contact.email, contact.phone].filter(Boolean).join(" or ");
      el.doneContact.textContent = "Thank you, " + contact.name + ". " + cat().tenant.name +
        " will contact you at " + reach + " if anything changes.";
      el.doneMessage.textContent = hostMessage || "";
      el.doneMessage.hidden = !hostMessage;
      ["name", "email", "phone"].forEach((n) => { el[n].value = ""; });
      showStep("done");
      say("Booking confirmed.");
      el.doneHeading.focus();
    }

    function resetToPick() {
      clearHold();
      showStep("pick");
      showWeek(state.weekStart || firstWeek(), { keepDay: state.day }).then(() => el.dayHeading.focus());
    }

    el.again.addEventListener("click", () => {
      if (state.historyPushed) history.back();
      else resetToPick();
    });

    // ---- waitlist (shown only where the server has one: catalog features) ---------------------

    function hideWaitlist() {
      el.waitlistForm.hidden = true;
    }

    el.waitlistOpen.addEventListener("click", () => {
      el.waitlistSummary.textContent = waitlistWhat() + " We will tell you if a time frees up.";
      clearErrors("wl-");
      el.waitlistForm.hidden = false;
      el.waitlistHeading.focus();
    });
    el.waitlistCancel.addEventListener("click", () => {
      hideWaitlist();
      el.waitlistOpen.focus();
    });

    function waitlistWhat() {
      const v = service();
      const s = state.staffId && staffOf(state.staffId);
      const where = state.locationId ? whereName(state.locationId) : "";
      return (v ? v.name : "") + (s ? " with " + s.display_name : "") + " on " + fmtDayLong(state.day) +
        (where ? " at " + where : "") + ".";
    }

    // The request body of POST .../waitlist: one place to adapt it to the endpoint.
    function waitlistBody(contact) {
      // dates are local to the staff member's place, as the page shows them
      const body = { service_id: state.serviceId, from: state.day, to: state.day, contact };
      if (state.staffId) body.staff_id = state.staffId;
      if (state.locationId) body.location_id = state.locationId;
      return body;
    }

    el.waitlistForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const contact = readContact("wl-");
      if (!contact) return;
      el.waitlistJoin.disabled = true;
      try {
        await request("POST", tenantPath("/waitlist"), waitlistBody(contact));
        hideWaitlist();
        el.waitlistOpen.hidden = true;
        say("");
        el.emptyText.textContent = "You are on the waitlist for " + waitlistWhat() + " We will tell you if a time frees up.";
      } catch (err) {
        if (!(err.status === 422 && serverFieldError("wl-", err))) {
          alertUser("Could not join the waitlist: " + friendly(err), "day");
        }
      } finally {
        el.waitlistJoin.disabled = false;
      }
    });

    // ---- live: redraw when times change ---------------------------------------------------------

    // Where the server has an event stream (catalog features.events), follow the shown
    // service's slots.changed events; always also read again when the page comes back into
    // view (a laptop lid, another tab), which is all there is without the stream.
    function createLive() {
      let source = null;
      let following = "";
      let pending = 0;

      function soon() {
        if (pending) return;
        pending = window.setTimeout(() => {
          pending = 0;
          if (step() === "pick" && state.week && !state.busy && state.serviceId) {
            showWeek(state.weekStart, { keepDay: state.day, quiet: true });
          }
        }, 300);
      }

      function overlaps(data) {
        if (data.service_ids && data.service_ids.indexOf(state.serviceId) === -1) return false;
        if (!state.week) return false;
        const lo = zonedMidnight(state.weekStart, anchorZone()) - DAY_MS;
        const hi = zonedMidnight(addDays(state.weekStart, 7), anchorZone()) + DAY_MS;
        const from = data.from ? Date.parse(data.from) : -Infinity;
        const to = data.to ? Date.parse(data.to) : Infinity;
        return from < hi && to > lo;
      }

      function follow() {
        if (!cat().features.events || !window.EventSource || following === state.serviceId) return;
        stop();
        following = state.serviceId;
        if (!following) return;
        source = new EventSource(tenantPath("/events?service_id=" + encodeURIComponent(following)));
        source.addEventListener("slots.changed", (e) => {
          let data = {};
          try {
            data = JSON.parse(e.data);
          } catch (err) {
            data = {};
          }
          if (overlaps(data)) soon();
        });
        // EventSource reconnects by itself; closed for good (the endpoint refused) leaves
        // the focus refresh below.
        source.addEventListener("error", () => {
          if (source && source.readyState === EventSource.CLOSED) source = null;
        });
      }

      function stop() {
        if (source) source.close();
        source = null;
        following = "";
      }

      window.addEventListener("focus", soon);
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") soon();
      });
      return { follow, stop, soon };
    }

    // ---- start -------------------------------------------------------------------------------

    async function start() {
      if (!SLUG.test(state.slug)) {
        alertUser("“" + state.slug + "” is not a valid booking page name.");
        el.tenantSub.textContent = "";
        return;
      }
      say("Loading…");
      let r;
      try {
        // Revalidated, not taken from a cache: the hold countdown trusts its hold_ttl_seconds.
        r = await request("GET", tenantPath("/catalog"), undefined, { cache: "no-cache" });
      } catch (err) {
        say("");
        el.tenantSub.textContent = "";
        alertUser(err.status === 404 ? "There is no booking page called “" + state.slug + "”." : friendly(err));
        return;
      }
      state.catalog = r.data;
      commonPrefix = findCommonPrefix(cat().locations.map((l) => l.name));
      el.tenantName.textContent = cat().tenant.name;
      if (opts.standalone) document.title = "Book · " + cat().tenant.name;
      el.tenantSub.textContent = "Book an appointment";
      if (!cat().services.length) {
        say("");
        alertUser("There is nothing to book here yet.");
        return;
      }
      if (opts.location && locationOf(opts.location)) state.locationId = opts.location;
      if (opts.service && serviceOf(opts.service)) state.serviceId = opts.service;
      if (opts.staff && staffOf(opts.staff)) state.staffId = opts.staff;
      fillChoices();
      state.live = createLive();
      showStep("pick");
      say("");
      await refreshTimes();
    }

    return { el, state, start };
  }

  window.Slotmill = { mount, assets: ASSETS };
})();
