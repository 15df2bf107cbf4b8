// slotmill booking widget: plain browser JavaScript, no build step.
//
// Flow: catalog -> week of slots (viewer's zone) -> hold (POST holds, countdown to
// expires_at) -> name -> confirm (demo route) -> confirmation. Leaving a held slot any way
// (button, browser back, closing the page) releases the hold.
(function () {
  "use strict";

  var COMMON_ZONES = [
    "UTC",
    "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin",
    "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw",
    "Europe/Athens", "Europe/Istanbul", "Europe/Moscow", "Africa/Lagos", "Africa/Cairo",
    "Africa/Johannesburg", "Africa/Nairobi", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong",
    "Asia/Tokyo", "Asia/Seoul", "Australia/Perth", "Australia/Adelaide", "Australia/Sydney",
    "Pacific/Auckland", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Phoenix", "America/Chicago", "America/Mexico_City",
    "America/New_York", "America/Toronto", "America/Bogota", "America/Lima",
    "America/Santiago", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
  ];
  var SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
  var DAY_MS = 86400000;

  var el = {};
  [
    "widget", "tenant-name", "tenant-sub", "alert", "status", "step-pick", "service", "staff",
    "tz", "prev", "next", "week-label", "empty", "empty-text", "jump", "week", "step-hold",
    "hold-heading", "hold-summary", "countdown", "confirm-form", "name", "name-error", "confirm",
    "release", "step-done", "done-heading", "done-summary", "again",
  ].forEach(function (id) {
    el[id.replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); })] = document.getElementById(id);
  });

  var params = new URLSearchParams(window.location.search);
  var state = {
    slug: params.get("tenant") || "demo",
    catalog: null,
    serviceId: "",
    staffId: "", // "" = anyone
    zone: viewerZone(),
    weekStart: "", // Monday of the shown week, YYYY-MM-DD in state.zone
    jumpTo: "",
    loadSeq: 0, // a newer load makes older answers stale
    hold: null,
    holdSlot: null,
    skewMs: 0, // server clock minus ours, from the hold response's Date header
    timer: 0,
    warned: false,
    historyPushed: false,
    releasedOnHide: false,
    busy: false,
  };

  // ---- plain dates (YYYY-MM-DD) and zones --------------------------------------------

  function viewerZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  function validZone(zone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: zone });
      return true;
    } catch (e) {
      return false;
    }
  }

  // Building an Intl.DateTimeFormat costs far more than using one, and a week can show
  // hundreds of slots: keep one per (locale, options).
  var formatters = {};
  function formatter(locale, opts) {
    var key = (locale || "") + JSON.stringify(opts);
    return formatters[key] || (formatters[key] = new Intl.DateTimeFormat(locale, opts));
  }

  function parts(instant, zone) {
    var out = {};
    formatter("en-US", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    }).formatToParts(instant).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  function localDate(instant, zone) {
    var p = parts(instant, zone);
    return p.year + "-" + p.month + "-" + p.day;
  }

  function dateUTC(iso) {
    var a = iso.split("-").map(Number);
    return new Date(Date.UTC(a[0], a[1] - 1, a[2]));
  }

  function addDays(iso, n) {
    return new Date(dateUTC(iso).getTime() + n * DAY_MS).toISOString().slice(0, 10);
  }

  function mondayOf(iso) {
    return addDays(iso, -((dateUTC(iso).getUTCDay() + 6) % 7));
  }

  function today() {
    return localDate(new Date(), state.zone);
  }

  // A calendar date is shown as itself, whatever the zone: format it at UTC midnight in UTC.
  function fmtDate(iso, opts) {
    return formatter(undefined, Object.assign({ timeZone: "UTC" }, opts)).format(dateUTC(iso));
  }

  function fmtTime(instant) {
    return formatter(undefined, { timeZone: state.zone, hour: "2-digit", minute: "2-digit" }).format(instant);
  }

  function fmtLongDate(instant) {
    return formatter(undefined, {
      timeZone: state.zone, weekday: "long", day: "numeric", month: "long", year: "numeric",
    }).format(instant);
  }

  function zoneLabel(zone) {
    var offset = "";
    try {
      var p = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "shortOffset" })
        .formatToParts(new Date())
        .filter(function (x) { return x.type === "timeZoneName"; })[0];
      offset = p ? " (" + p.value + ")" : "";
    } catch (e) {
      offset = "";
    }
    return zone.replace(/_/g, " ") + offset;
  }

  // ---- the API --------------------------------------------------------------------------

  function tenantPath(rest) {
    return "/v1/tenants/" + encodeURIComponent(state.slug) + rest;
  }

  function ApiError(status, body) {
    this.status = status;
    this.code = (body && body.code) || "http_" + status;
    this.detail = (body && (body.detail || body.title)) || "The server answered " + status + ".";
  }

  function api(method, path, body) {
    var init = { method: method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        if (res.status === 204) return { res: res, data: null };
        return res.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = null;
          }
          if (!res.ok) throw new ApiError(res.status, data);
          return { res: res, data: data };
        });
      },
      function () {
        throw new ApiError(0, { code: "network", detail: "Could not reach the booking server. Check your connection and try again." });
      }
    );
  }

  function slotsUrl(from, to) {
    var q = new URLSearchParams({ service_id: state.serviceId, from: from, to: to, tz: state.zone });
    if (state.staffId) q.set("staff_id", state.staffId);
    else q.set("group", "time");
    return tenantPath("/slots?" + q.toString());
  }

  function fetchWeek(weekStart) {
    return api("GET", slotsUrl(weekStart, addDays(weekStart, 6))).then(function (r) {
      return (r.data && r.data.slots) || [];
    });
  }

  // ---- messages ---------------------------------------------------------------------------

  function say(text) {
    el.status.textContent = text;
  }

  function alertUser(text) {
    el.alert.textContent = text;
    el.alert.hidden = !text;
  }

  function friendly(err) {
    if (err.status === 429) return "Too many requests from this address. Please wait a minute and try again.";
    return err.detail;
  }

  function showStep(name) {
    el.widget.dataset.step = name;
    el.stepPick.hidden = name !== "pick";
    el.stepHold.hidden = name !== "hold";
    el.stepDone.hidden = name !== "done";
  }

  // ---- catalog and controls ---------------------------------------------------------------

  function staffById(id) {
    var staff = (state.catalog && state.catalog.staff) || [];
    for (var i = 0; i < staff.length; i++) if (staff[i].id === id) return staff[i];
    return null;
  }

  function serviceById(id) {
    var services = (state.catalog && state.catalog.services) || [];
    for (var i = 0; i < services.length; i++) if (services[i].id === id) return services[i];
    return null;
  }

  function locationById(id) {
    var locations = (state.catalog && state.catalog.locations) || [];
    for (var i = 0; i < locations.length; i++) if (locations[i].id === id) return locations[i];
    return null;
  }

  function option(value, text) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  }

  function fillServices() {
    el.service.replaceChildren();
    state.catalog.services.forEach(function (s) {
      el.service.appendChild(option(s.id, s.name + " · " + s.duration_minutes + " min"));
    });
    state.serviceId = state.catalog.services.length ? state.catalog.services[0].id : "";
    el.service.value = state.serviceId;
  }

  function fillStaff() {
    el.staff.replaceChildren(option("", "Anyone available"));
    var keep = false;
    state.catalog.staff.forEach(function (s) {
      if (s.service_ids.indexOf(state.serviceId) === -1) return;
      var loc = locationById(s.location_id);
      el.staff.appendChild(option(s.id, s.display_name + (loc ? " · " + loc.name : "")));
      if (s.id === state.staffId) keep = true;
    });
    if (!keep) state.staffId = "";
    el.staff.value = state.staffId;
  }

  function fillZones() {
    var zones = [state.zone];
    var tenantZone = state.catalog && state.catalog.tenant.timezone;
    if (tenantZone && zones.indexOf(tenantZone) === -1) zones.push(tenantZone);
    COMMON_ZONES.forEach(function (z) {
      if (zones.indexOf(z) === -1 && validZone(z)) zones.push(z);
    });
    el.tz.replaceChildren();
    zones.forEach(function (z) {
      el.tz.appendChild(option(z, zoneLabel(z)));
    });
    el.tz.value = state.zone;
  }

  function loadCatalog() {
    if (!SLUG.test(state.slug)) {
      alertUser("“" + state.slug + "” is not a valid booking page name.");
      el.tenantSub.textContent = "";
      return;
    }
    say("Loading…");
    api("GET", tenantPath("/catalog")).then(
      function (r) {
        state.catalog = r.data;
        el.tenantName.textContent = r.data.tenant.name;
        document.title = "Book · " + r.data.tenant.name;
        el.tenantSub.textContent = "Book an appointment";
        if (!r.data.services.length) {
          say("");
          alertUser("There is nothing to book here yet.");
          return;
        }
        fillServices();
        fillStaff();
        fillZones();
        state.weekStart = mondayOf(today());
        showStep("pick");
        loadWeek();
      },
      function (err) {
        say("");
        el.tenantSub.textContent = "";
        alertUser(err.status === 404 ? "There is no booking page called “" + state.slug + "”." : friendly(err));
      }
    );
  }

  // ---- the week -----------------------------------------------------------------------------

  function lastBookableDay() {
    var days = (state.catalog && state.catalog.tenant.horizon_days) || 60;
    return addDays(today(), days);
  }

  function setBusy(busy) {
    el.week.setAttribute("aria-busy", busy ? "true" : "false");
    el.week.classList.toggle("loading", busy);
  }

  function updateNav() {
    el.prev.disabled = state.weekStart <= mondayOf(today());
    el.next.disabled = addDays(state.weekStart, 7) > lastBookableDay();
    var end = addDays(state.weekStart, 6);
    el.weekLabel.textContent =
      fmtDate(state.weekStart, { day: "numeric", month: "short" }) + " – " +
      fmtDate(end, { day: "numeric", month: "short", year: "numeric" });
  }

  function loadWeek() {
    var seq = ++state.loadSeq;
    updateNav();
    alertUser("");
    el.empty.hidden = true;
    delete el.week.dataset.week;
    setBusy(true);
    say("Loading times…");
    return fetchWeek(state.weekStart).then(
      function (slots) {
        if (seq !== state.loadSeq) return;
        setBusy(false);
        renderWeek(slots);
        if (slots.length) {
          say(slots.length + (slots.length === 1 ? " time" : " times") + " available this week.");
        } else {
          say(""); // #empty-text speaks for itself (a live region)
          lookAhead(seq);
        }
      },
      function (err) {
        if (seq !== state.loadSeq) return;
        setBusy(false);
        el.week.replaceChildren();
        say("");
        alertUser("Could not load times: " + friendly(err));
      }
    );
  }

  function renderWeek(slots) {
    var byDay = {};
    slots.forEach(function (s) {
      var d = localDate(new Date(s.starts_at), state.zone);
      (byDay[d] = byDay[d] || []).push(s);
    });
    var first = today();
    var frag = document.createDocumentFragment();
    for (var i = 0; i < 7; i++) {
      var day = addDays(state.weekStart, i);
      var section = document.createElement("section");
      section.className = "day" + (day < first ? " past" : "") + (day === first ? " today" : "");
      section.dataset.date = day;
      var h = document.createElement("h4");
      h.id = "day-" + day;
      h.textContent = fmtDate(day, { weekday: "short", day: "numeric", month: "short" });
      section.appendChild(h);
      var list = byDay[day] || [];
      if (!list.length) {
        var none = document.createElement("p");
        none.className = "none";
        none.textContent = "No times";
        section.appendChild(none);
      } else {
        var ul = document.createElement("ul");
        ul.className = "slots";
        ul.setAttribute("aria-labelledby", h.id);
        list.forEach(function (s) { ul.appendChild(slotItem(s, day)); });
        section.appendChild(ul);
      }
      frag.appendChild(section);
    }
    el.week.replaceChildren(frag);
    el.week.dataset.week = state.weekStart; // what is shown is current (tests wait on it)
  }

  function slotItem(slot, day) {
    var li = document.createElement("li");
    var b = document.createElement("button");
    b.type = "button";
    b.className = "slot";
    var start = new Date(slot.starts_at);
    b.textContent = fmtTime(start);
    b.setAttribute("aria-label", fmtTime(start) + " to " + fmtTime(new Date(slot.ends_at)) + ", " +
      fmtDate(day, { weekday: "long", day: "numeric", month: "long" }));
    b.dataset.startsAt = slot.starts_at;
    if (slot.id) b.dataset.slotId = slot.id;
    if (slot.staff_id) b.dataset.staffId = slot.staff_id;
    b.addEventListener("click", function () { holdSlot(slot, b); });
    li.appendChild(b);
    return li;
  }

  // An empty week: walk forward a week at a time (to the horizon) for the next free day.
  function lookAhead(seq) {
    el.empty.hidden = false;
    el.jump.hidden = true;
    el.emptyText.textContent = "No slots this week — looking for the next available day…";
    var limit = lastBookableDay();
    var week = addDays(state.weekStart, 7);

    function step() {
      if (seq !== state.loadSeq) return;
      if (week > limit) {
        el.emptyText.textContent = "No slots this week, and none in the weeks we can book.";
        return;
      }
      fetchWeek(week).then(
        function (slots) {
          if (seq !== state.loadSeq) return;
          if (!slots.length) {
            week = addDays(week, 7);
            step();
            return;
          }
          var first = slots.reduce(function (a, b) { return a.starts_at < b.starts_at ? a : b; });
          var firstDay = localDate(new Date(first.starts_at), state.zone);
          state.jumpTo = week;
          el.emptyText.textContent = "No slots this week — next available on " +
            fmtDate(firstDay, { weekday: "long", day: "numeric", month: "long" }) + ".";
          el.jump.textContent = "Show the week of " + fmtDate(week, { day: "numeric", month: "long" });
          el.jump.hidden = false;
        },
        function (err) {
          if (seq !== state.loadSeq) return;
          el.emptyText.textContent = "No slots this week.";
          alertUser("Could not look further ahead: " + friendly(err));
        }
      );
    }
    step();
  }

  // ---- hold, countdown, release --------------------------------------------------------------

  function setSlotsDisabled(disabled) {
    el.week.querySelectorAll("button.slot").forEach(function (b) { b.disabled = disabled; });
  }

  function holdSlot(slot, button) {
    if (state.busy) return;
    state.busy = true;
    setSlotsDisabled(true);
    var label = button.textContent;
    button.textContent = "Holding…";
    alertUser("");
    say("Holding " + label + "…");
    var body = slot.id ? { slot_id: slot.id } : { service_id: state.serviceId, starts_at: slot.starts_at };
    api("POST", tenantPath("/holds"), body).then(
      function (r) {
        state.busy = false;
        var serverNow = Date.parse(r.res.headers.get("Date") || "");
        // Date has whole seconds: only trust it when the clocks clearly disagree.
        var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
        state.skewMs = Math.abs(skew) > 2000 ? skew : 0;
        state.hold = r.data;
        state.holdSlot = slot;
        enterHold();
      },
      function (err) {
        state.busy = false;
        button.textContent = label;
        setSlotsDisabled(false);
        if (err.code === "slot_unavailable" || err.status === 409) {
          loadWeek().then(function () {
            alertUser("Sorry, that time was just taken by someone else. The times below are up to date.");
            el.weekLabel.focus();
          });
        } else {
          say("");
          alertUser("Could not hold that time: " + friendly(err));
          button.focus();
        }
      }
    );
  }

  function describeHold(h) {
    var start = new Date(h.starts_at);
    var end = new Date(h.ends_at);
    var service = serviceById(h.service_id);
    var staff = staffById(h.staff_id);
    var loc = staff && locationById(staff.location_id);
    return (service ? service.name : "Appointment") +
      (staff ? " with " + staff.display_name : "") +
      " on " + fmtLongDate(start) + ", " + fmtTime(start) + "–" + fmtTime(end) +
      " (" + state.zone.replace(/_/g, " ") + ")" +
      (loc ? " at " + loc.name : "") + ".";
  }

  function enterHold() {
    el.holdSummary.textContent = describeHold(state.hold);
    el.nameError.hidden = true;
    el.name.removeAttribute("aria-invalid");
    el.confirm.disabled = false;
    el.release.disabled = false;
    state.warned = false;
    showStep("hold");
    say("Held. Enter your name to confirm.");
    if (!state.historyPushed) {
      // Browser back from the hold step returns to the week and releases the hold.
      history.pushState({ slotmill: "hold" }, "");
      state.historyPushed = true;
    }
    startCountdown();
    el.holdHeading.focus();
  }

  function remainingMs() {
    return Date.parse(state.hold.expires_at) - (Date.now() + state.skewMs);
  }

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
    if (!state.hold) return stopCountdown();
    var ms = remainingMs();
    if (ms <= 0) {
      el.countdown.textContent = "0:00";
      expired();
      return;
    }
    var s = Math.ceil(ms / 1000);
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

  function backToWeek(problem, news) {
    clearHold();
    state.busy = false;
    showStep("pick");
    return loadWeek().then(function () {
      if (problem) alertUser(problem);
      if (news) say(news);
      el.weekLabel.focus();
    });
  }

  function expired() {
    backToWeek("Your hold ran out before it was confirmed. Please choose a time again.");
  }

  function releaseHold(keepalive) {
    var h = state.hold;
    if (!h) return Promise.resolve();
    var url = tenantPath("/holds/" + encodeURIComponent(h.hold_id));
    if (keepalive) {
      // fetch keepalive (unlike sendBeacon, which can only POST) outlives the page.
      try {
        fetch(url, { method: "DELETE", keepalive: true });
      } catch (e) {
        /* the hold expires on its own */
      }
      return Promise.resolve();
    }
    return api("DELETE", url).catch(function () { /* it expires on its own */ });
  }

  function releaseAndReturn() {
    if (!state.hold) {
      showStep("pick");
      return;
    }
    el.confirm.disabled = true;
    el.release.disabled = true;
    say("Releasing your held time…");
    releaseHold(false).then(function () {
      backToWeek("", "Your held time was released.");
    });
  }

  function onRelease() {
    if (state.historyPushed) {
      history.back(); // popstate releases: one path for the button and the browser's back
    } else {
      releaseAndReturn();
    }
  }

  window.addEventListener("popstate", function () {
    if (!state.historyPushed) return;
    state.historyPushed = false;
    if (state.hold) {
      releaseAndReturn();
    } else if (el.widget.dataset.step === "done") {
      resetToPick();
    }
  });

  window.addEventListener("pagehide", function () {
    if (state.hold) {
      releaseHold(true);
      clearHold();
      state.releasedOnHide = true;
    }
  });

  // Back from the back/forward cache: the hold was released on pagehide.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted && state.releasedOnHide) {
      state.releasedOnHide = false;
      backToWeek("Your held time was released when you left the page.");
    }
  });

  // ---- confirm ---------------------------------------------------------------------------------

  function nameProblem(text) {
    el.nameError.textContent = text;
    el.nameError.hidden = false;
    el.name.setAttribute("aria-invalid", "true");
    el.name.focus();
  }

  function onConfirm(ev) {
    ev.preventDefault();
    if (!state.hold || state.busy) return;
    var name = el.name.value.trim();
    if (!name) return nameProblem("Please enter your name.");
    el.nameError.hidden = true;
    el.name.removeAttribute("aria-invalid");
    state.busy = true;
    el.confirm.disabled = true;
    el.release.disabled = true;
    el.confirm.textContent = "Confirming…";
    say("Confirming your booking…");
    var h = state.hold;
    var path = "/v1/demo/tenants/" + encodeURIComponent(state.slug) + "/holds/" +
      encodeURIComponent(h.hold_id) + "/confirm";
    api("POST", path, { name: name }).then(
      function (r) {
        state.busy = false;
        el.confirm.textContent = "Confirm booking";
        var booking = Object.assign({}, h, r.data || {});
        clearHold();
        showDone(booking, name);
      },
      function (err) {
        state.busy = false;
        el.confirm.textContent = "Confirm booking";
        if (err.status === 410) {
          backToWeek("Your hold ran out before it was confirmed. Please choose a time again.");
        } else if (err.status === 409) {
          backToWeek("Sorry, that time is no longer available. The times below are up to date.");
        } else if (err.status === 422) {
          el.confirm.disabled = false;
          el.release.disabled = false;
          say("");
          nameProblem(err.detail);
        } else {
          el.confirm.disabled = false;
          el.release.disabled = false;
          say("");
          alertUser(err.status === 404 && err.code !== "hold_not_found"
            ? "This page cannot confirm bookings: the server is not running in demo mode."
            : "Could not confirm: " + friendly(err));
        }
      }
    );
  }

  function showDone(booking, name) {
    el.doneSummary.textContent = "Thank you, " + name + ". " + describeHold(booking);
    el.name.value = "";
    showStep("done");
    say("Booking confirmed.");
    el.doneHeading.focus();
  }

  function resetToPick() {
    clearHold();
    showStep("pick");
    loadWeek().then(function () { el.weekLabel.focus(); });
  }

  // ---- wiring ------------------------------------------------------------------------------------

  el.service.addEventListener("change", function () {
    state.serviceId = el.service.value;
    fillStaff();
    loadWeek();
  });
  el.staff.addEventListener("change", function () {
    state.staffId = el.staff.value;
    loadWeek();
  });
  el.tz.addEventListener("change", function () {
    state.zone = el.tz.value;
    // Keep roughly the same week, but never one that has fully passed in the new zone.
    var monday = mondayOf(today());
    state.weekStart = state.weekStart < monday ? monday : mondayOf(state.weekStart);
    loadWeek();
  });
  el.prev.addEventListener("click", function () {
    state.weekStart = addDays(state.weekStart, -7);
    loadWeek().then(function () { if (el.prev.disabled) el.next.focus(); });
  });
  el.next.addEventListener("click", function () {
    state.weekStart = addDays(state.weekStart, 7);
    loadWeek().then(function () { if (el.next.disabled) el.prev.focus(); });
  });
  el.jump.addEventListener("click", function () {
    if (!state.jumpTo) return;
    state.weekStart = state.jumpTo;
    loadWeek().then(function () { el.weekLabel.focus(); });
  });
  el.confirmForm.addEventListener("submit", onConfirm);
  el.release.addEventListener("click", onRelease);
  el.again.addEventListener("click", function () {
    if (state.historyPushed) {
      history.back();
    } else {
      resetToPick();
    }
  });

  loadCatalog();
})();
