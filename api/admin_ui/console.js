/* slotmill operator console: plain JavaScript over the admin API, no build step.
 *
 * The admin key is typed once, kept in sessionStorage (this tab only, gone when it closes)
 * and sent as "Authorization: Bearer" on every fetch; it never goes into a URL. Without it
 * nothing but the sign-in form is shown and nothing is fetched; a 401 forgets it.
 *
 * Views: #/ (tenants) and #/t/<slug> (one tenant: status and recalculation, freshness,
 * the day timeline, utilization). Times on the timeline are the staff member's zone's, as
 * the day endpoint computes them; everything drawn comes from that one answer.
 */
(function () {
  "use strict";

  var KEY = "slotmill.adminKey";
  var POLL_MS = 5000;
  var POLL_FAST_MS = 1000;
  var SAMPLES = 60;
  var STALL_MS = 20000;
  var SVG = "http://www.w3.org/2000/svg";

  var state = {
    slug: null,
    directory: null,
    status: null,
    samples: [],
    poll: null,
    pollMs: POLL_MS,
    recalc: null,
    day: null,
    cursor: null,
    tenantsAfter: null,
    generation: 0
  };

  function $(id) { return document.getElementById(id); }

  // --- the API ------------------------------------------------------------------------

  function SignedOut() { this.name = "SignedOut"; }
  SignedOut.prototype = Object.create(Error.prototype);

  function ApiError(status, body) {
    this.name = "ApiError";
    this.status = status;
    this.body = body || {};
    this.message = (body && (body.detail || body.title)) || ("HTTP " + status);
  }
  ApiError.prototype = Object.create(Error.prototype);

  function adminKey() {
    try { return sessionStorage.getItem(KEY); } catch (e) { return null; }
  }

  function api(path, options) {
    var key = adminKey();
    if (!key) {
      signOut();
      return Promise.reject(new SignedOut());
    }
    options = options || {};
    var headers = { "Authorization": "Bearer " + key, "Accept": "application/json" };
    var init = { method: options.method || "GET", headers: headers, cache: "no-store", credentials: "omit" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    var generation = state.generation;
    return fetch(path, init).then(function (r) {
      if (generation !== state.generation) throw new SignedOut(); // signed out meanwhile
      if (r.status === 401) {
        signOut("That admin key was refused. Check SLOTMILL_ADMIN_KEY on the server.");
        throw new SignedOut();
      }
      return r.json().catch(function () { return null; }).then(function (body) {
        if (!r.ok) throw new ApiError(r.status, body);
        return body;
      });
    });
  }

  function tenantPath(suffix) {
    return "/v1/admin/tenants/" + encodeURIComponent(state.slug) + suffix;
  }

  function fail(e) {
    if (e instanceof SignedOut) return;
    if (e instanceof ApiError && e.body && e.body.code === "admin_not_configured") {
      signOut("The server has no admin key configured: set SLOTMILL_ADMIN_KEY and restart the API.");
      return;
    }
    showAlert(e instanceof ApiError ? e.message : "The API did not answer: " + (e && e.message ? e.message : e));
  }

  // --- formatting ---------------------------------------------------------------------

  var formatters = {};
  function formatter(zone, kind) {
    var k = zone + "|" + kind;
    if (!formatters[k]) {
      var opts = { timeZone: zone };
      if (kind === "time") { opts.hour = "2-digit"; opts.minute = "2-digit"; opts.hourCycle = "h23"; }
      if (kind === "day") { opts.weekday = "long"; opts.day = "numeric"; opts.month = "long"; opts.year = "numeric"; }
      if (kind === "stamp") {
        opts.day = "numeric"; opts.month = "short"; opts.year = "numeric";
        opts.hour = "2-digit"; opts.minute = "2-digit"; opts.hourCycle = "h23";
      }
      if (kind === "ymd") { opts.year = "numeric"; opts.month = "2-digit"; opts.day = "2-digit"; }
      formatters[k] = new Intl.DateTimeFormat(kind === "ymd" ? "en-CA" : undefined, opts);
    }
    return formatters[k];
  }
  function secs(iso) { return Math.round(Date.parse(iso) / 1000); }
  function isoOf(t) { return new Date(t * 1000).toISOString().replace(".000Z", "Z"); }
  function hhmm(t, zone) { return formatter(zone, "time").format(new Date(t * 1000)); }
  function range(a, b, zone) { return hhmm(a, zone) + "–" + hhmm(b, zone); }
  function stamp(iso, zone) { return iso ? formatter(zone, "stamp").format(new Date(iso)) : "never"; }
  function localDate(t, zone) {
    var parts = {};
    formatter(zone, "ymd").formatToParts(new Date(t * 1000)).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day;
  }
  function addDays(ymd, n) {
    var d = new Date(ymd + "T12:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  var numberFmt = new Intl.NumberFormat();
  function num(n) { return numberFmt.format(n); }
  function minutes(n) { return num(Math.round(n)) + " min"; }
  function seconds(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return (Math.round(s * 10) / 10) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return (Math.round(s / 360) / 10) + " h";
  }
  function weekdayName(iso, style) {
    // 2024-01-01 was a Monday
    return new Intl.DateTimeFormat(undefined, { weekday: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, iso)));
  }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  // --- DOM helpers --------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAll(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    setAll(node, attrs);
    append(node, children);
    return node;
  }
  function setAll(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
  }
  function append(node, children) {
    if (children === undefined || children === null) return;
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function cell(text, cls) { return el("td", { "class": cls, text: text }); }

  function showAlert(text) { var a = $("alert"); a.textContent = text; a.hidden = false; }
  function clearAlert() { var a = $("alert"); a.textContent = ""; a.hidden = true; }

  function show(view) {
    ["login", "tenants", "tenant"].forEach(function (id) { $(id).hidden = id !== view; });
    $("sign-out").hidden = view === "login";
  }

  // --- signing in and out --------------------------------------------------------------

  function forget() {
    state.generation += 1;
    stopPolling();
    state.slug = null;
    state.directory = null;
    state.status = null;
    state.samples = [];
    state.recalc = null;
    state.day = null;
    state.cursor = null;
    // Nothing of what was shown stays in the page.
    ["tenant-table", "failure-rows", "webhook-rows", "feed-rows", "rule-rows", "candidate-rows", "status-list",
      "timeline", "explain-reasons", "busiest", "emptiest", "day-staff", "day-service", "usage-scope"].forEach(function (id) {
      var node = $(id);
      if (id === "tenant-table") node = node.tBodies[0];
      clear(node);
    });
    clear($("heatmap").tHead);
    clear($("heatmap").tBodies[0]);
    ["tenant-heading", "tenant-sub", "day-summary", "usage-summary", "usage-caption", "recalc-status",
      "drift-text", "explain-heading", "explain-verdict"].forEach(function (id) { $(id).textContent = ""; });
    ["day-view", "usage-view", "explain", "failures", "webhooks", "feeds", "recalc-progress"].forEach(function (id) {
      $(id).hidden = true;
    });
    $("recalc").disabled = false;
    drawSparks();
  }

  function signOut(message) {
    try { sessionStorage.removeItem(KEY); } catch (e) { /* storage disabled: nothing kept */ }
    forget();
    clearAlert();
    show("login");
    var err = $("key-error");
    err.textContent = message || "";
    err.hidden = !message;
    $("key").setAttribute("aria-invalid", message ? "true" : "false");
    $("key").focus();
  }

  function signIn(ev) {
    ev.preventDefault();
    var input = $("key");
    var value = input.value.trim();
    input.value = "";
    if (!value) {
      signOut("Enter the admin key.");
      return;
    }
    try {
      sessionStorage.setItem(KEY, value);
    } catch (e) {
      signOut("This browser keeps no session storage, so the console cannot keep the key.");
      return;
    }
    $("key-error").hidden = true;
    route();
  }

  // --- routing ------------------------------------------------------------------------

  function route() {
    clearAlert();
    if (!adminKey()) {
      signOut();
      return;
    }
    var m = /^#\/t\/([a-z0-9][a-z0-9-]{0,62})$/.exec(location.hash);
    if (m) openTenant(m[1]).catch(fail);
    else openTenants().catch(fail);
  }

  // --- tenants ------------------------------------------------------------------------

  function openTenants(more) {
    stopPolling();
    state.slug = null;
    var q = "?limit=200" + (more && state.tenantsAfter ? "&after=" + encodeURIComponent(state.tenantsAfter) : "");
    return api("/v1/admin/tenants" + q).then(function (page) {
      var body = $("tenant-table").tBodies[0];
      if (!more) clear(body);
      page.tenants.forEach(function (t) {
        body.appendChild(el("tr", null, [
          el("td", null, el("a", { href: "#/t/" + t.slug, text: t.name })),
          cell(t.slug), cell(t.timezone),
          cell(num(t.active_staff) + (t.active_staff !== t.staff ? " of " + num(t.staff) : ""), "num"),
          cell(t.horizon_days + " days", "num")
        ]));
      });
      state.tenantsAfter = page.next_after;
      $("tenants-more").hidden = !page.next_after;
      show("tenants");
      if (!more) $("tenants-heading").focus({ preventScroll: true });
    });
  }

  function openTenant(slug) {
    var fresh = state.slug !== slug;
    stopPolling();
    state.slug = slug;
    if (fresh) {
      state.samples = [];
      state.recalc = null;
      state.day = null;
      $("day-view").hidden = true;
      $("usage-view").hidden = true;
      $("recalc-status").textContent = "";
      $("recalc-progress").hidden = true;
      $("recalc").disabled = false;
    }
    return Promise.all([api(tenantPath("/directory")), api(tenantPath("/status"))]).then(function (both) {
      if (state.slug !== slug) return;
      state.directory = both[0];
      var t = both[0].tenant;
      $("tenant-heading").textContent = t.name;
      $("tenant-sub").textContent = t.slug + " · " + t.timezone + " · " + num(both[0].staff.length) + " staff, " +
        num(both[0].services.length) + " services, " + num(both[0].locations.length) + " locations";
      if (fresh) fillForms();
      renderStatus(both[1]);
      show("tenant");
      $("tenant-heading").focus({ preventScroll: true });
      startPolling(POLL_MS);
    });
  }

  function staffName(id) {
    var s = state.directory && state.directory.staff.find(function (x) { return x.id === id; });
    return s ? s.display_name : (id || "whole tenant");
  }

  function fillForms() {
    var dir = state.directory;
    var staffSel = $("day-staff");
    clear(staffSel);
    dir.staff.forEach(function (s) {
      staffSel.appendChild(el("option", { value: s.id, text: s.display_name + (s.active ? "" : " (inactive)") }));
    });
    var first = dir.staff.find(function (s) { return s.active && s.service_ids.length; }) || dir.staff[0];
    if (first) staffSel.value = first.id;
    fillServices();
    var scope = $("usage-scope");
    clear(scope);
    scope.appendChild(el("option", { value: "", text: "Whole tenant" }));
    if (dir.locations.length) {
      scope.appendChild(el("optgroup", { label: "Locations" }, dir.locations.map(function (l) {
        return el("option", { value: "location:" + l.id, text: l.name });
      })));
    }
    scope.appendChild(el("optgroup", { label: "Staff" }, dir.staff.map(function (s) {
      return el("option", { value: "staff:" + s.id, text: s.display_name });
    })));
    var today = localDate(Date.now() / 1000, dir.tenant.timezone);
    $("usage-from").value = today;
    $("usage-to").value = addDays(today, 27);
  }

  function fillServices() {
    var dir = state.directory;
    var staff = dir.staff.find(function (s) { return s.id === $("day-staff").value; });
    var sel = $("day-service");
    var keep = sel.value;
    clear(sel);
    var linked = staff ? dir.services.filter(function (v) { return staff.service_ids.indexOf(v.id) >= 0; }) : [];
    var rest = dir.services.filter(function (v) { return linked.indexOf(v) < 0; });
    function opt(v) { return el("option", { value: v.id, text: v.name + (v.active ? "" : " (inactive)") }); }
    if (linked.length) sel.appendChild(el("optgroup", { label: "Performed" }, linked.map(opt)));
    if (rest.length) sel.appendChild(el("optgroup", { label: "Not performed" }, rest.map(opt)));
    if (keep && linked.some(function (v) { return v.id === keep; })) sel.value = keep;
    else if (linked.length) sel.value = linked[0].id;
    if (staff) $("day-date").value = localDate(Date.now() / 1000, staff.zone);
  }

  // --- status, recalculation, freshness ----------------------------------------------

  function fact(list, term, value, cls) {
    list.appendChild(el("dt", { text: term }));
    list.appendChild(el("dd", { "class": cls }, value));
  }

  function renderStatus(s) {
    state.status = s;
    var zone = s.timezone;
    var list = $("status-list");
    clear(list);
    if (s.error) fact(list, "Error", s.error, "bad");
    if (s.horizon) {
      fact(list, "Horizon", s.horizon.days + " days, to " + stamp(s.horizon.end, zone) + " — " +
        (s.horizon.covered ? "covered" : "not covered by the last full refresh"), s.horizon.covered ? null : "warn");
    }
    fact(list, "Slots", num(s.slots));
    var last = s.last_full_refresh;
    if (last) {
      fact(list, "Last full refresh", stamp(last.finished_at, zone) + " (" + num(last.staff) + " staff, " +
        num(last.slots_written) + " slots written)");
      fact(list, "Drift it repaired", last.drift === null ? "not counted" : num(last.drift),
        last.drift === null ? null : last.drift ? "bad" : "good");
    } else {
      fact(list, "Last full refresh", "none yet", "warn");
    }
    var q = s.queue;
    fact(list, "Queue", q.depth ? num(q.depth) + " waiting, oldest " + seconds(q.oldest_age_seconds) : "empty",
      q.depth ? "warn" : "good");
    fact(list, "Failed recomputes", s.failures.length ? num(s.failures.length) : "none", s.failures.length ? "bad" : "good");

    var rows = $("failure-rows");
    clear(rows);
    s.failures.forEach(function (f) {
      rows.appendChild(el("tr", null, [
        cell(f.staff_id ? staffName(f.staff_id) : "whole tenant"),
        cell(f.reason),
        cell(num(f.attempts), "num"),
        cell(f.parked ? "parked since " + stamp(f.since, zone) : "retried " + stamp(f.next_attempt_at, zone), f.parked ? "bad" : "warn")
      ]));
    });
    $("failures").hidden = !s.failures.length;
    renderWebhooks(s, zone);
    renderFeeds(s, zone);
    sample(s);
    followRecalc(s);
  }

  function renderWebhooks(s, zone) {
    // Shown once the server reports webhook endpoints (the events work); absent: hidden.
    var box = $("webhooks");
    var rows = $("webhook-rows");
    clear(rows);
    box.hidden = !Array.isArray(s.webhooks);
    if (box.hidden) return;
    if (!s.webhooks.length) rows.appendChild(el("tr", null, el("td", { colspan: 4, text: "No webhook endpoints." })));
    s.webhooks.forEach(function (w) {
      var stateText = !w.active ? "disabled" + (w.disabled_reason ? " (" + w.disabled_reason + ")" : "") :
        (w.circuit === "open" ? "circuit open" : "active");
      var result = w.last_attempt_at ? (w.last_status ? "HTTP " + w.last_status : "no answer") + " at " +
        stamp(w.last_attempt_at, zone) + (w.last_error ? ": " + w.last_error : "") : "not called yet";
      rows.appendChild(el("tr", null, [
        cell(w.url), cell(stateText, w.active && w.circuit !== "open" ? "good" : "bad"),
        cell(result, w.last_error ? "bad" : null), cell(num(w.pending || 0), "num")
      ]));
    });
  }

  function renderFeeds(s, zone) {
    var box = $("feeds");
    var rows = $("feed-rows");
    clear(rows);
    box.hidden = !Array.isArray(s.feeds);
    if (box.hidden) return;
    if (!s.feeds.length) rows.appendChild(el("tr", null, el("td", { colspan: 4, text: "No calendar feeds." })));
    s.feeds.forEach(function (f) {
      var result = f.last_sync_at ? (f.last_status || "synced") + " at " + stamp(f.last_sync_at, zone) +
        (f.last_error ? ": " + f.last_error : "") : "not synced yet";
      rows.appendChild(el("tr", null, [
        cell(staffName(f.staff_id)), cell(f.url), cell(result, f.last_status === "error" ? "bad" : null),
        cell(num(f.busy_count || 0), "num")
      ]));
    });
  }

  function pollStatus() {
    if (!state.slug) return;
    var slug = state.slug;
    api(tenantPath("/status")).then(function (s) {
      if (state.slug === slug) renderStatus(s);
    }).catch(fail);
  }

  function startPolling(ms) {
    stopPolling();
    state.pollMs = ms;
    state.poll = setInterval(pollStatus, ms);
  }
  function stopPolling() {
    if (state.poll) clearInterval(state.poll);
    state.poll = null;
  }

  function recalculate() {
    var slug = state.slug;
    $("recalc").disabled = true;
    var progress = $("recalc-progress");
    progress.hidden = false;
    progress.max = 1;
    progress.value = 0;
    $("recalc-status").textContent = "Queuing a recalculation of every staff member…";
    api("/v1/admin/recalculate", { method: "POST", body: { tenant: slug } }).then(function (r) {
      state.recalc = { id: r.request_id, started: Date.now(), max: 1, depth: null, changed: Date.now() };
      $("recalc-status").textContent = "Queued as request " + r.request_id + ". Waiting for a worker…";
      startPolling(POLL_FAST_MS);
      pollStatus();
    }).catch(function (e) {
      $("recalc").disabled = false;
      progress.hidden = true;
      $("recalc-status").textContent = "";
      fail(e);
    });
  }

  function followRecalc(s) {
    var rc = state.recalc;
    if (!rc) return;
    var depth = s.queue.depth;
    var progress = $("recalc-progress");
    if (depth !== rc.depth) { rc.depth = depth; rc.changed = Date.now(); }
    rc.max = Math.max(rc.max, depth);
    progress.max = rc.max;
    progress.value = rc.max - depth;
    if (depth === 0) {
      state.recalc = null;
      progress.value = progress.max;
      $("recalc").disabled = false;
      $("recalc-status").textContent = "Recalculated: the queue is empty again; the table holds " + num(s.slots) + " slots.";
      startPolling(POLL_MS);
      return;
    }
    var text = "Recalculating (request " + rc.id + "): " + num(depth) + " request" + (depth === 1 ? "" : "s") +
      " waiting in the queue, oldest " + seconds(s.queue.oldest_age_seconds) + ".";
    if (Date.now() - rc.changed > STALL_MS) text += " Nothing has moved for a while: is a worker (slotmill worker) running?";
    $("recalc-status").textContent = text;
  }

  function sample(s) {
    state.samples.push({ depth: s.queue.depth, lag: s.queue.oldest_age_seconds || 0 });
    if (state.samples.length > SAMPLES) state.samples.shift();
    drawSparks();
  }

  function drawSpark(id, key, cls, label, unit) {
    var chart = $(id);
    var desc = chart.querySelector("desc");
    Array.prototype.slice.call(chart.childNodes).forEach(function (n) { if (n !== desc) chart.removeChild(n); });
    var values = state.samples.map(function (x) { return x[key]; });
    var width = Math.max(120, chart.clientWidth || 300);
    var height = 48;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    if (!values.length) {
      desc.textContent = "No samples yet.";
      return;
    }
    var top = Math.max.apply(null, values.concat([1]));
    var step = width / (SAMPLES - 1);
    var x0 = width - (values.length - 1) * step;
    var pts = values.map(function (v, i) {
      return (x0 + i * step).toFixed(1) + "," + (height - 3 - (v / top) * (height - 8)).toFixed(1);
    });
    chart.appendChild(svg("polygon", { "class": "area-" + cls, points: x0.toFixed(1) + "," + height + " " + pts.join(" ") + " " + width + "," + height }));
    chart.appendChild(svg("polyline", { "class": "line-" + cls, points: pts.join(" ") }));
    var last = values[values.length - 1];
    desc.textContent = label + " over the last " + values.length + " readings: now " + unit(last) + ", highest " + unit(top) + ".";
  }

  function drawSparks() {
    drawSpark("lag-chart", "lag", "lag", "Recompute lag", seconds);
    drawSpark("depth-chart", "depth", "depth", "Queue depth", function (v) { return num(v) + " waiting"; });
    var last = state.samples[state.samples.length - 1];
    $("lag-now").textContent = last ? seconds(last.lag) : "–";
    $("depth-now").textContent = last ? num(last.depth) : "–";
  }

  // --- the day timeline ---------------------------------------------------------------

  function showDay(ev) {
    if (ev) ev.preventDefault();
    var staff = $("day-staff").value;
    var service = $("day-service").value;
    var date = $("day-date").value;
    if (!staff || !service || !date) return;
    var q = "?date=" + encodeURIComponent(date) + "&service_id=" + encodeURIComponent(service);
    api(tenantPath("/staff/" + encodeURIComponent(staff) + "/day" + q)).then(function (d) {
      state.day = d;
      state.cursor = null;
      $("explain").hidden = true;
      renderDay(d);
    }).catch(fail);
  }

  function candidateStatus(c) {
    if (!c.slot) return "no";
    return c.available ? "slot" : "hidden";
  }

  function renderDay(d) {
    var zone = d.zone;
    var start = secs(d.day.start);
    var slots = d.candidates.filter(function (c) { return c.slot; }).length;
    var offered = d.candidates.filter(function (c) { return c.slot && c.available; }).length;
    var buffers = [];
    if (d.buffer_before_minutes) buffers.push(d.buffer_before_minutes + " min before");
    if (d.buffer_after_minutes) buffers.push(d.buffer_after_minutes + " min after");
    var text = d.staff_name + ", " + formatter(zone, "day").format(new Date(start * 1000)) + ", " + d.service_name +
      " (" + d.duration_minutes + " min" + (buffers.length ? ", buffers " + buffers.join(" and ") : "") + ", every " +
      d.interval_minutes + " min). Times in " + zone + ". " + num(slots) + " of " + num(d.candidates.length) +
      " starts are slots, " + num(offered) + " offered now.";
    if (!d.offered) text += " No slots at all: the staff member does not perform this service, or one of them is inactive.";
    var tableEnd = secs(d.horizon.table_end);
    if (secs(d.day.end) > tableEnd) {
      text += tableEnd <= start ? " The whole day is past the slot table's end: reads compute its slots on demand." :
        " From " + hhmm(tableEnd, zone) + " on the day is past the slot table's end: reads compute those slots on demand.";
    }
    var drift = d.drift.missing.length + d.drift.unexpected.length + d.drift.changed.length;
    if (drift) text += " The table differs from the engine at " + num(drift) + " start" + (drift === 1 ? "" : "s") + ".";
    $("day-summary").textContent = text;
    $("day-view").hidden = false;
    drawTimeline(d);
    renderDayTables(d);
  }

  function ruleClass(r) {
    if (r.kind === "holiday") return "rule-holiday";
    if (r.kind === "override") return r.is_available ? "rule-on" : "rule-off";
    return "rule-template";
  }

  function ruleText(r, zone) {
    var times = r.start_time ? r.start_time + "–" + r.end_time : "all day";
    if (r.kind === "holiday") return "Holiday" + (r.tenant_wide ? " (whole tenant)" : "") + ": " + (r.label || "unnamed");
    if (r.kind === "override") {
      return (r.is_available ? "Override, working " : "Override, not working ") + times + (r.label ? " (" + r.label + ")" : "") +
        (r.rrule ? ", repeats " + r.rrule : "");
    }
    return "Template " + weekdayName(r.weekday, "short") + " " + times;
  }

  function axisOf(d) {
    // The hours that matter (rules, windows, bookings and holds, an hour either side), or
    // the whole day when asked or when nothing is there; hours counted from local midnight.
    var start = secs(d.day.start), end = secs(d.day.end);
    if ($("day-whole").checked) return [start, end];
    var lo = Infinity, hi = -Infinity;
    function take(a, b) {
      a = secs(a); b = secs(b);
      if (b <= start || a >= end) return;
      lo = Math.min(lo, a); hi = Math.max(hi, b);
    }
    d.rules.forEach(function (r) { r.spans.forEach(function (s) { if (r.kind === "template" || r.start_time) take(s.start, s.end); }); });
    d.windows.forEach(function (w) { take(w.start, w.end); });
    d.busy.forEach(function (b) { take(b.start, b.end); });
    d.holds.forEach(function (h) { take(h.start, h.end); });
    if (lo === Infinity) return [start, end];
    lo = start + Math.floor((Math.max(lo, start) - start) / 3600 - 1) * 3600;
    hi = start + Math.ceil((Math.min(hi, end) - start) / 3600 + 1) * 3600;
    return [Math.max(lo, start), Math.min(hi, end)];
  }

  function drawTimeline(d) {
    var zone = d.zone;
    var box = $("timeline");
    clear(box);
    var axis = axisOf(d);
    var start = axis[0];
    var end = axis[1];
    var width = Math.max(300, box.clientWidth || 960);
    var narrow = width < 760;
    var x0 = narrow ? 60 : 86;
    var x1 = width - 12;
    var X = function (t) { return x0 + (Math.min(Math.max(t, start), end) - start) / (end - start) * (x1 - x0); };
    var ruleRows = Math.max(1, d.rules.length);
    var lanes = [
      { key: "rules", label: "Rules", height: 6 + ruleRows * 14 },
      { key: "windows", label: "Working", height: 26 },
      { key: "busy", label: "Busy", height: 30 },
      { key: "holds", label: "Holds", height: 24 },
      { key: "starts", label: "Starts", height: 26 },
      { key: "table", label: "Table", height: 22 }
    ];
    var y = 22;
    lanes.forEach(function (l) { l.y = y; y += l.height + 4; });
    var height = y + 2;
    var hits = d.candidates.length;
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "tl-title tl-desc",
      "data-start": start, "data-end": end, "data-x0": x0, "data-x1": x1, "data-width": width
    });
    root.appendChild(svg("title", { id: "tl-title", text: "Timeline of " + d.staff_name + "'s day, " + d.date }));
    root.appendChild(svg("desc", {
      id: "tl-desc",
      text: d.windows.length + " working windows, " + d.busy.length + " busy ranges, " + d.holds.length + " holds, " +
        hits + " starts on the grid. Click an instant to explain it; the tables below list the same."
    }));
    var defs = svg("defs");
    [["hatch", "#8e97a6"], ["hatch-red", "#c95b63"]].forEach(function (h) {
      defs.appendChild(svg("pattern", { id: h[0], width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, [
        svg("rect", { width: 6, height: 6, fill: "#ffffff" }),
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: h[1], "stroke-width": 3 })
      ]));
    });
    root.appendChild(defs);

    lanes.forEach(function (l) {
      root.appendChild(svg("rect", { "class": "lane-bg", x: x0, y: l.y, width: x1 - x0, height: l.height }));
      root.appendChild(svg("text", { "class": "lane-label", x: 6, y: l.y + Math.min(l.height, 26) / 2 + 4, text: l.label }));
    });
    // hour ticks (every hour of the zone's day), labelled as often as they fit
    var perHour = (x1 - x0) / ((end - start) / 3600);
    var every = [1, 2, 3, 4, 6, 12].find(function (n) { return n * perHour >= 38; }) || 24;
    var hourIndex = 0;
    for (var t = start; t <= end; t += 3600) {
      var x = X(t);
      root.appendChild(svg("line", { "class": "tick", x1: x, y1: 16, x2: x, y2: height }));
      if (hourIndex % every === 0 && t < end && x < x1 - 20) {
        root.appendChild(svg("text", { "class": "tick-label", x: x + 2, y: 12, text: hhmm(t, zone) }));
      }
      hourIndex += 1;
    }

    function bar(lane, a, b, cls, title, top, h, extra) {
      if (b <= start || a >= end || b <= a) return null;
      var attrs = { "class": cls, x: X(a), y: lane.y + (top || 3), width: Math.max(1.5, X(b) - X(a)), height: h || lane.height - 6 };
      var node = svg("rect", Object.assign(attrs, extra || {}), svg("title", { text: title }));
      root.appendChild(node);
      return node;
    }
    var L = {};
    lanes.forEach(function (l) { L[l.key] = l; });

    d.rules.forEach(function (r, i) {
      r.spans.forEach(function (s) {
        bar(L.rules, secs(s.start), secs(s.end), ruleClass(r), ruleText(r, zone), 4 + i * 14, 11, { "data-kind": r.kind });
      });
    });
    d.windows.forEach(function (w) {
      bar(L.windows, secs(w.start), secs(w.end), "window", "Working " + range(secs(w.start), secs(w.end), zone), 3, 20);
    });
    d.busy.forEach(function (b) {
      var a = secs(b.start), z = secs(b.end);
      b.travel.forEach(function (w) {
        bar(L.busy, secs(w.start), secs(w.end), "travel", "With travel, for starts at another location: " +
          range(secs(w.start), secs(w.end), zone), 2, 26);
      });
      if (b.kind === "booked" && b.booking) {
        var s0 = secs(b.booking.starts_at), s1 = secs(b.booking.ends_at);
        var what = (b.booking.service_name || "Booking") + " " + range(s0, s1, zone) +
          (b.booking.customer_ref ? " (" + b.booking.customer_ref + ")" : "");
        bar(L.busy, a, s0, "buffer", "Buffer before " + what, 6, 20, { "data-kind": "buffer" });
        bar(L.busy, s1, z, "buffer", "Buffer after " + what, 6, 20, { "data-kind": "buffer" });
        bar(L.busy, s0, s1, "booked", what, 6, 20, { "data-kind": "booked", "data-id": b.id });
      } else {
        var label = (b.kind === "time_off" ? "Time off" : b.kind === "busy" ? "Busy" : "Booking") + " " + range(a, z, zone) +
          (b.label ? " (" + b.label + ")" : "");
        bar(L.busy, a, z, b.kind === "booked" ? "booked" : b.kind, label, 6, 20, { "data-kind": b.kind });
      }
    });
    d.holds.forEach(function (h) {
      bar(L.holds, secs(h.start), secs(h.end), "hold", "Hold " + range(secs(h.start), secs(h.end), zone) + ", until " +
        hhmm(secs(h.expires_at), zone), 3, 18);
    });
    var step = d.interval_minutes * 60;
    d.candidates.forEach(function (c) {
      var a = secs(c.starts_at);
      var status = candidateStatus(c);
      var w = Math.max(2, X(a + step) - X(a) - 1);
      var why = c.reasons.map(function (r) { return r.code; }).join(", ");
      var node = svg("rect", {
        "class": "cand-" + status, x: X(a), y: L.starts.y + 4, width: w, height: 18,
        "data-start": a, "data-status": status
      }, svg("title", { text: hhmm(a, zone) + ": " + (status === "slot" ? "offered" : status === "hidden" ? "slot, hidden now (" + why + ")" : "not a slot (" + why + ")") }));
      root.appendChild(node);
    });
    var drift = {};
    d.drift.missing.forEach(function (t) { drift[secs(t)] = "missing from the table"; });
    d.drift.unexpected.forEach(function (t) { drift[secs(t)] = "in the table, not offered by the engine"; });
    d.drift.changed.forEach(function (t) { drift[secs(t)] = "different in the table"; });
    d.table.forEach(function (s) {
      var a = secs(s.starts_at);
      if (drift[a]) return;
      root.appendChild(svg("rect", { "class": "table-row", x: X(a), y: L.table.y + 5, width: Math.max(2, X(a + step) - X(a) - 1), height: 12 },
        svg("title", { text: hhmm(a, zone) + ": in the table" })));
    });
    Object.keys(drift).forEach(function (k) {
      var a = Number(k);
      root.appendChild(svg("rect", { "class": "drift", x: X(a) - 1, y: L.table.y + 2, width: Math.max(4, X(a + step) - X(a)), height: 18, "data-drift": drift[k] },
        svg("title", { text: hhmm(a, zone) + ": " + drift[k] })));
    });
    var now = secs(d.now);
    if (now > start && now < end) {
      root.appendChild(svg("line", { "class": "now", x1: X(now), y1: 16, x2: X(now), y2: height }, svg("title", { text: "Now" })));
    }
    root.addEventListener("click", function (ev) {
      var rect = root.getBoundingClientRect();
      var px = (ev.clientX - rect.left) * (width / rect.width);
      if (px < x0 || px > x1) return;
      var instant = start + (px - x0) / (x1 - x0) * (end - start);
      explainAt(Math.min(end - 60, Math.floor(instant / 60) * 60));
    });
    box.appendChild(root);
    state.timeline = { root: root, X: X, height: height };
    if (state.cursor !== null) drawCursor(state.cursor);
  }

  function drawCursor(t) {
    state.cursor = t;
    var tl = state.timeline;
    if (!tl) return;
    var old = tl.root.querySelector(".cursor");
    if (old) old.parentNode.removeChild(old);
    tl.root.appendChild(svg("line", { "class": "cursor", x1: tl.X(t), y1: 16, x2: tl.X(t), y2: tl.height, "data-at": t }));
  }

  function renderDayTables(d) {
    var zone = d.zone;
    var rules = $("rule-rows");
    clear(rules);
    if (!d.rules.length) rules.appendChild(el("tr", null, el("td", { colspan: 4, text: "No rule applies on this date." })));
    d.rules.forEach(function (r) {
      var dates = r.kind === "template" ? (r.valid_from || "always") + " to " + (r.valid_until || "open") : (r.on_date || "") + (r.rrule ? ", " + r.rrule : "");
      rules.appendChild(el("tr", null, [
        cell(r.kind), cell(r.start_time ? r.start_time + "–" + r.end_time : "all day"), cell(dates), cell(ruleText(r, zone))
      ]));
    });
    var rows = $("candidate-rows");
    clear(rows);
    if (!d.candidates.length) rows.appendChild(el("tr", null, el("td", { colspan: 3, text: "No working window on this date." })));
    d.candidates.forEach(function (c) {
      var status = candidateStatus(c);
      var a = secs(c.starts_at);
      rows.appendChild(el("tr", { "data-start": a }, [
        el("td", null, el("button", { type: "button", "class": "link", "data-explain": a, text: hhmm(a, zone) })),
        cell(status === "slot" ? "offered" : status === "hidden" ? "slot, hidden now" : "not a slot", status === "slot" ? "good" : status === "hidden" ? "warn" : "bad"),
        cell(c.reasons.map(function (r) { return r.code + ": " + r.detail; }).join("; "))
      ]));
    });
    var drift = d.drift;
    var parts = [];
    if (drift.missing.length) parts.push(drift.missing.length + " missing from the table (" + drift.missing.map(function (t) { return hhmm(secs(t), zone); }).join(", ") + ")");
    if (drift.unexpected.length) parts.push(drift.unexpected.length + " in the table the engine does not offer (" + drift.unexpected.map(function (t) { return hhmm(secs(t), zone); }).join(", ") + ")");
    if (drift.changed.length) parts.push(drift.changed.length + " different (" + drift.changed.map(function (t) { return hhmm(secs(t), zone); }).join(", ") + ")");
    $("drift-text").textContent = parts.length ? "The table differs: " + parts.join("; ") + ". A recalculation repairs it." :
      "None: the table holds exactly the " + num(d.slots.length) + " slots the engine computes for this day.";
  }

  function explainAt(t) {
    var d = state.day;
    if (!d) return;
    drawCursor(t);
    var zone = d.zone;
    var q = "?staff_id=" + encodeURIComponent(d.staff_id) + "&service_id=" + encodeURIComponent(d.service_id) +
      "&starts_at=" + encodeURIComponent(isoOf(t));
    api(tenantPath("/explain" + q)).then(function (e) {
      if (state.day !== d) return;
      $("explain-heading").textContent = "Why " + hhmm(t, zone) + " (" + range(secs(e.starts_at), secs(e.ends_at), zone) + ")?";
      var verdict = $("explain-verdict");
      verdict.textContent = e.available ? "Offered: a customer can book it now." : "Not offered.";
      verdict.className = "verdict " + (e.available ? "good" : "bad");
      var list = $("explain-reasons");
      clear(list);
      e.reasons.forEach(function (r) {
        list.appendChild(el("li", { "data-code": r.code }, [el("code", { text: r.code }), " — " + r.detail, related(r, d)]));
      });
      $("explain").hidden = false;
      $("explain-time").value = hhmm(t, zone);
    }).catch(fail);
  }

  function related(reason, d) {
    // The booking or hold a reason names, in the staff member's local time.
    var zone = d.zone;
    var busy = d.busy.find(function (b) { return b.id && reason.detail.indexOf(b.id) >= 0; });
    if (busy && busy.booking) {
      var bk = busy.booking;
      return el("span", { "class": "booking", text: "Booking: " + (bk.service_name || "") + " " + range(secs(bk.starts_at), secs(bk.ends_at), zone) +
        (bk.customer_ref ? " (" + bk.customer_ref + ")" : "") + ", blocked with its buffers " + range(secs(busy.start), secs(busy.end), zone) + "." });
    }
    if (busy) {
      return el("span", { "class": "booking", text: (busy.kind === "time_off" ? "Time off " : "Busy ") + range(secs(busy.start), secs(busy.end), zone) +
        (busy.label ? " (" + busy.label + ")" : "") + "." });
    }
    var hold = d.holds.find(function (h) { return h.id && reason.detail.indexOf(h.id) >= 0; });
    if (hold) {
      return el("span", { "class": "booking", text: "Hold " + range(secs(hold.start), secs(hold.end), zone) + " until " + hhmm(secs(hold.expires_at), zone) + "." });
    }
    return null;
  }

  function explainTyped(ev) {
    ev.preventDefault();
    var d = state.day;
    var value = $("explain-time").value;
    if (!d || !/^\d{2}:\d{2}$/.test(value)) return;
    // The first instant of the day whose wall-clock time reads so (a repeated hour: its first).
    var start = secs(d.day.start), end = secs(d.day.end);
    for (var t = start; t < end; t += 60) {
      if (hhmm(t, d.zone) === value) {
        explainAt(t);
        return;
      }
    }
    showAlert(value + " does not exist on " + d.date + " in " + d.zone + " (the clocks skip it).");
  }

  // --- utilization --------------------------------------------------------------------

  function showUsage(ev) {
    if (ev) ev.preventDefault();
    var scope = $("usage-scope").value;
    var q = "?from=" + encodeURIComponent($("usage-from").value) + "&to=" + encodeURIComponent($("usage-to").value);
    if (scope.indexOf("staff:") === 0) q += "&staff_id=" + encodeURIComponent(scope.slice(6));
    if (scope.indexOf("location:") === 0) q += "&location_id=" + encodeURIComponent(scope.slice(9));
    api(tenantPath("/utilization" + q)).then(renderUsage).catch(fail);
  }

  function cellText(c) {
    return weekdayName(c.weekday, "long") + " " + pad2(c.hour) + ":00–" + pad2((c.hour + 1) % 24) + ":00";
  }

  function renderUsage(u) {
    var t = u.totals;
    $("usage-summary").textContent = u.scope.name + ": " + minutes(t.booked_minutes) + " booked of " +
      minutes(t.open_minutes) + " open (" + (t.share === null ? "nothing open" : Math.round(t.share * 1000) / 10 + "%") +
      "), " + minutes(t.offered_minutes) + " still offered, " + u.from + " to " + u.to + ".";
    $("usage-caption").textContent = "Share of open time booked, per weekday and hour (" + u.zone + ")";
    var table = $("heatmap");
    clear(table.tHead);
    clear(table.tBodies[0]);
    var head = el("tr", null, el("td"));
    for (var h = 0; h < 24; h++) head.appendChild(el("th", { scope: "col", text: pad2(h) }));
    table.tHead.appendChild(head);
    for (var w = 1; w <= 7; w++) {
      var row = el("tr", null, el("th", { scope: "row", text: weekdayName(w, "short") }));
      u.cells.filter(function (c) { return c.weekday === w; }).forEach(function (c) {
        var title = cellText(c) + ": " + (c.open_minutes ? minutes(c.booked_minutes) + " booked of " + minutes(c.open_minutes) + " open" : "nothing open");
        if (c.share === null) {
          row.appendChild(el("td", { "class": "heat-none", title: title, "data-weekday": c.weekday, "data-hour": c.hour }));
        } else {
          row.appendChild(el("td", {
            "class": "heat-" + Math.round(c.share * 10), title: title, "data-weekday": c.weekday, "data-hour": c.hour,
            text: Math.round(c.share * 100) + "%"
          }));
        }
      });
      table.tBodies[0].appendChild(row);
    }
    function ranked(id, cells, empty) {
      var list = $(id);
      clear(list);
      if (!cells.length) list.appendChild(el("li", { text: empty }));
      cells.forEach(function (c) {
        list.appendChild(el("li", { text: cellText(c) + ": " + Math.round(c.share * 100) + "% booked (" + minutes(c.booked_minutes) + " of " + minutes(c.open_minutes) + " open)" }));
      });
    }
    ranked("busiest", u.busiest, "Nothing booked in this range.");
    ranked("emptiest", u.emptiest, "Nothing open in this range.");
    $("usage-view").hidden = false;
  }

  // --- wiring -------------------------------------------------------------------------

  var resizeTimer = null;
  function onResize() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (state.day && !$("day-view").hidden) drawTimeline(state.day);
      drawSparks();
    }, 150);
  }

  function start() {
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", function () { signOut(); });
    $("tenants-next").addEventListener("click", function () { openTenants(true).catch(fail); });
    $("recalc").addEventListener("click", recalculate);
    $("day-form").addEventListener("submit", showDay);
    $("day-staff").addEventListener("change", fillServices);
    $("day-whole").addEventListener("change", function () { if (state.day) drawTimeline(state.day); });
    $("explain-form").addEventListener("submit", explainTyped);
    $("usage-form").addEventListener("submit", showUsage);
    $("candidate-rows").addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-explain]");
      if (b) explainAt(Number(b.getAttribute("data-explain")));
    });
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", onResize);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
