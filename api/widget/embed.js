// slotmill booking widget, embedded with one tag on any site:
//
//   <script src="https://slots.example/widget/embed.js" data-tenant="demo"
//           data-key="smp_..." async></script>
//
// Draws the widget right where the tag is (or into data-target, a CSS selector), in a shadow
// root of its own. Options, all data-* attributes of the tag: tenant (the booking page's
// slug), key (the tenant's publishable key, to confirm from the page), location, service,
// staff (ids to start with), lang (a BCP 47 locale for dates and times; default the
// browser's), heading (the level of the widget's title, default 2), api (the API's origin;
// default the origin of this script). data-from-url reads missing ones from the page's own
// query string (?tenant=&key=&location=&service=&staff=&lang=), as slotmill's own page does.
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script) return;
  const base = new URL(".", script.src).href;
  const names = ["tenant", "key", "location", "service", "staff", "lang", "heading", "api"];
  const opts = {};
  const query = new URLSearchParams(window.location.search);
  names.forEach((n) => {
    const v = script.dataset[n] || (script.hasAttribute("data-from-url") ? query.get(n) : null);
    if (v) opts[n] = v;
  });
  opts.standalone = script.hasAttribute("data-standalone");

  let host = script.dataset.target ? document.querySelector(script.dataset.target) : null;
  if (!host) {
    host = document.createElement("div");
    host.className = "slotmill-booking";
    script.after(host);
  }

  function mount() {
    window.Slotmill.mount(host, opts);
  }
  if (window.Slotmill && window.Slotmill.mount) {
    mount();
    return;
  }
  const widget = document.createElement("script");
  widget.src = base + "widget.js";
  widget.addEventListener("load", mount);
  document.head.append(widget);
})();
