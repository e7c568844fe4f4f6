/* The case desk (web/casedesk.py): the case list's map linked to its rows, a case's small map and its
 * next steps (note, photo, confirmation), and "用我的位置" on the grid page's report form.
 * Texts come from the page's data-t (the project's language); the JSON API checks every step again. */
(function () {
  "use strict";

  function texts(el) { try { return JSON.parse(el.getAttribute("data-t") || "{}"); } catch (e) { return {}; } }
  function fill(s, vals) {
    return String(s || "").replace(/\{(\w+)\}/g, function (_, k) { return vals[k] === undefined ? "" : String(vals[k]); });
  }
  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("sg-error", isError === true);
    el.classList.toggle("sg-ok", isError === false);
  }
  function send(url, method, body, isForm) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (isForm) opts.body = body;
    else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var d = data && data.detail;
          throw new Error(d ? (typeof d === "string" ? d : JSON.stringify(d)) : r.status + " " + r.statusText);
        }
        return data;
      });
    });
  }

  /* ------------------------------------------------------------ the small maps */
  function smallMap(el) {
    var opts = JSON.parse(el.getAttribute("data-map") || "{}");
    var map = L.map(el, { zoomControl: true, maxZoom: opts.max_zoom || 19, scrollWheelZoom: false });
    map.setView([28.3, 117.2], 13);  /* a view before any layer is added; fitted to the data below */
    map.attributionControl.setPrefix("Leaflet");
    if (opts.tiles) L.tileLayer(opts.tiles, { subdomains: opts.subdomains, maxZoom: opts.max_zoom || 19 }).addTo(map);
    if (opts.attribution) map.attributionControl.addAttribution(opts.attribution.replace(/</g, "&lt;"));
    var grids = JSON.parse(el.getAttribute("data-grids") || "null");
    var outline = null;
    if (grids && grids.features && grids.features.length) {
      outline = L.geoJSON(grids, { interactive: false, style: { color: "#555", weight: 1, fill: false, dashArray: "4 3" } })
        .addTo(map);
    }
    return { map: map, outline: outline };
  }

  /* the case list: each row has its marker; a row's click zooms to it, a marker's click opens its row */
  function caseList(root) {
    var el = document.getElementById("cd-map");
    var rows = root.querySelectorAll("tr.cd-row");
    if (!el || typeof L === "undefined") return;
    var m = smallMap(el), map = m.map, markers = {}, pts = [];
    Array.prototype.forEach.call(rows, function (tr) {
      var lon = parseFloat(tr.getAttribute("data-lon")), lat = parseFloat(tr.getAttribute("data-lat"));
      if (isNaN(lon) || isNaN(lat)) return;
      var id = tr.getAttribute("data-id"), colour = tr.getAttribute("data-colour");
      var mk = L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 1.5, fillColor: colour, fillOpacity: 0.95 })
        .bindTooltip(id, { permanent: rows.length <= 60, direction: "right", className: "cd-num", offset: [5, 0] })
        .addTo(map);
      mk.on("click", function () { pick(id, false); });
      markers[id] = mk;
      pts.push([lat, lon]);
    });
    function pick(id, zoom) {
      Array.prototype.forEach.call(root.querySelectorAll("tr.cd-hit"), function (x) { x.classList.remove("cd-hit"); });
      var tr = document.getElementById("case-" + id), mk = markers[id];
      if (tr) {
        tr.classList.add("cd-hit");
        if (!zoom) tr.scrollIntoView({ block: "nearest" });
      }
      if (mk) {
        if (zoom) map.setView(mk.getLatLng(), Math.max(map.getZoom(), 17));
        mk.bringToFront();
        mk.setStyle({ color: "#111", weight: 3 });
        Object.keys(markers).forEach(function (k) { if (k !== id) markers[k].setStyle({ color: "#fff", weight: 1.5 }); });
      }
      root.setAttribute("data-picked", id);
    }
    Array.prototype.forEach.call(rows, function (tr) {
      tr.addEventListener("click", function (ev) {
        if (ev.target.closest && ev.target.closest("a")) return;  /* the number opens the case page */
        pick(tr.getAttribute("data-id"), true);
      });
    });
    /* the view's address carries only the filters chosen (a bookmark reads as what it shows) */
    Array.prototype.forEach.call(root.querySelectorAll("form[method=get]"), function (f) {
      f.addEventListener("submit", function () {
        Array.prototype.forEach.call(f.elements, function (x) { if (x.name && !x.value) x.disabled = true; });
      });
    });
    if (pts.length) map.fitBounds(pts, { padding: [20, 20], maxZoom: 17 });
    else if (m.outline) map.fitBounds(m.outline.getBounds());
    document.documentElement.setAttribute("data-cd-ready", "1");
  }

  /* ------------------------------------------------------------ a case's page */
  function casePage(root) {
    var T = texts(root), id = root.getAttribute("data-id"), msg = document.getElementById("cd-msg");
    var el = document.getElementById("cd-map");
    if (el && typeof L !== "undefined") {
      var m = smallMap(el), pt = JSON.parse(el.getAttribute("data-point"));
      var streets = JSON.parse(el.getAttribute("data-streets") || "null");
      if (streets) L.geoJSON(streets, {
        style: function (f) { return { color: f.properties.kind === "alleys" ? "#9e9e9e" : "#616161",
          weight: f.properties.kind === "alleys" ? 2 : 4, opacity: 0.8 }; },
        onEachFeature: function (f, layer) {
          if (f.properties.name) layer.bindTooltip(f.properties.name, { sticky: true, className: "cd-street" });
        }
      }).addTo(m.map);
      L.circleMarker([pt[1], pt[0]], { radius: 9, color: "#111", weight: 2, fillColor: el.getAttribute("data-colour"),
        fillOpacity: 0.95 }).addTo(m.map);
      m.map.setView([pt[1], pt[0]], 16);
    }
    var done = sessionStorage.getItem("cd-done-" + id);
    if (done) { sessionStorage.removeItem("cd-done-" + id); say(msg, done, false); }
    var form = document.getElementById("cd-act");
    var prio = root.querySelector("button.cd-priority");
    if (prio) {
      prio.addEventListener("click", function () {
        prio.disabled = true;
        send("/api/problems/" + id + "/priority", "PUT", { priority: prio.getAttribute("data-on") === "1" })
          .then(function () { location.reload(); })
          .catch(function (e) { prio.disabled = false; say(msg, e.message, true); });
      });
    }
    if (!form) { document.documentElement.setAttribute("data-cd-ready", "1"); return; }
    var confirmBox = form.querySelector(".cd-confirm"), confirmText = form.querySelector(".cd-confirm-text");
    var need = form.querySelector(".cd-need"), file = form.elements.photo, chosen = null;
    var status = root.querySelector(".cd-status").textContent;
    function buttons(on) {
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = !on; });
    }
    function upload() {
      if (!file || !file.files.length) return Promise.resolve(null);
      say(msg, T.c_uploading, null);
      var data = new FormData();
      data.append("photo", file.files[0]);
      return send("/api/problems/" + id + "/photos", "POST", data, true);
    }
    form.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("button.cd-step") : null;
      if (!b) return;
      chosen = b;
      Array.prototype.forEach.call(form.querySelectorAll("button.cd-step"), function (x) {
        x.classList.toggle("cd-chosen", x === b);
      });
      confirmText.textContent = fill(T.c_confirm, { from: status, to: b.getAttribute("data-to") });
      confirmBox.hidden = false;
      if (need) need.hidden = !(b.getAttribute("data-photo") && !(file && file.files.length));
      form.querySelector(".cd-do").focus();
    });
    if (file) file.addEventListener("change", function () {
      if (need && chosen) need.hidden = !(chosen.getAttribute("data-photo") && !file.files.length);
    });
    form.querySelector(".cd-cancel").addEventListener("click", function () {
      chosen = null;
      confirmBox.hidden = true;
      if (need) need.hidden = true;
      Array.prototype.forEach.call(form.querySelectorAll("button.cd-step"), function (x) { x.classList.remove("cd-chosen"); });
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!chosen) return;
      var to = chosen.getAttribute("data-to");
      buttons(false);
      upload()
        .then(function () {
          say(msg, T.sending, null);
          return send("/api/problems/" + id + "/transitions", "POST", { to_status: to, note: form.elements.note.value });
        })
        .then(function (rec) {
          sessionStorage.setItem("cd-done-" + id, fill(T.c_done, { from: rec.from_status, to: rec.to_status }));
          location.reload();
        })
        .catch(function (e) { buttons(true); say(msg, e.message, true); });
    });
    var only = form.querySelector("button.cd-upload");
    if (only) only.addEventListener("click", function () {
      if (!file.files.length) { file.click(); return; }
      buttons(false);
      upload()
        .then(function () { sessionStorage.setItem("cd-done-" + id, T.c_uploaded); location.reload(); })
        .catch(function (e) { buttons(true); say(msg, e.message, true); });
    });
    document.documentElement.setAttribute("data-cd-ready", "1");
  }

  /* ------------------------------------------------------------ the grid page: 用我的位置 */
  /* The browser's position is WGS84: the form then says coords=wgs84; a click on the map (in the
   * basemap's coordinates) clears that again. */
  function locate(form) {
    var b = form.querySelector("button.cd-locate");
    if (!b) return;
    var T = texts(b), f = form.elements, where = form.querySelector(".sg-where"), marker = null;
    b.addEventListener("click", function () {
      if (!navigator.geolocation) { where.textContent = fill(T.c_no_place, { why: "—" }); return; }
      where.textContent = T.c_locating;
      navigator.geolocation.getCurrentPosition(function (p) {
        f.lon.value = p.coords.longitude.toFixed(7);
        f.lat.value = p.coords.latitude.toFixed(7);
        f.coords.value = "wgs84";
        where.textContent = fill(T.c_located, { lon: f.lon.value, lat: f.lat.value, m: Math.round(p.coords.accuracy) });
        var sg = window.sanigrid;
        if (sg && sg.map && sg.opts && sg.opts.coords === "wgs84") {
          var ll = [p.coords.latitude, p.coords.longitude];
          if (marker) marker.setLatLng(ll);
          else marker = L.circleMarker(ll, { radius: 9, color: "#0b61a4", weight: 3, fillColor: "#fff", fillOpacity: 0.8,
            interactive: false }).addTo(sg.map);
          sg.map.panTo(ll);
        }
      }, function (e) {
        where.textContent = fill(T.c_no_place, { why: e.message || e.code });
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
    var sg = window.sanigrid;
    if (sg && sg.map) sg.map.on("preclick", function () {
      if (f.coords.value) { f.coords.value = ""; if (marker) { marker.remove(); marker = null; } }
    });
  }

  function start() {
    var list = document.querySelector("main.cd-list");
    if (list) caseList(list);
    var one = document.querySelector("main.cd-case");
    if (one) casePage(one);
    var report = document.getElementById("sg-report");
    if (report) locate(report);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
