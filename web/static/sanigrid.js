/* sanigrid map: catalogue-driven layers, legend, popups, search, server-side clusters.
 * Everything the page needs is described by the server (one config per catalogue layer);
 * this file has no per-layer code. */
(function () {
  "use strict";
  var SG = (window.sanigrid = { layers: [], pending: 0, drawn: false, t0: performance.now() });

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function fmt(v) {
    if (v === null || v === undefined || v === "") return "—";
    if (v === true) return SG.t.yes;
    if (v === false) return SG.t.no;
    return esc(v);
  }
  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.substr(i, 2), 16); }); }
  function rampColor(ramp, t) {
    t = Math.max(0, Math.min(1, t)) * (ramp.length - 1);
    var i = Math.min(Math.floor(t), ramp.length - 2), f = t - i, a = hex(ramp[i]), b = hex(ramp[i + 1]);
    return "#" + a.map(function (x, k) { return ("0" + Math.round(x + (b[k] - x) * f).toString(16)).slice(-2); }).join("");
  }
  function byColor(style, props) {
    if (!style.by) return null;
    var v = props[style.by.field];
    if (style.by.ramp) {
      var d = style.by.domain;
      if (v === null || v === undefined || !d) return null;
      return rampColor(style.by.ramp, d[1] > d[0] ? (v - d[0]) / (d[1] - d[0]) : 0);
    }
    var key = v === true ? "true" : v === false ? "false" : String(v);
    for (var i = 0; i < style.by.values.length; i++) {
      if (style.by.values[i][0] === key) return style.by.values[i][1];
    }
    return null;
  }
  function pathStyle(cfg, props) {
    var s = cfg.style, c = byColor(s, props || {});
    var st = {
      color: c || s.color, weight: s.weight, opacity: 0.9,
      fillColor: c || s.fill_color || s.color, fillOpacity: s.fill_opacity,
      dashArray: s.dash || null, radius: s.radius
    };
    if (cfg.geometry === "line") st.fill = false;
    if (s.status && props) {  // facility projects: planned hollow and dashed, building half filled, closed grey
      s.status.styles.forEach(function (e) {
        if (props[s.status.field] !== e[0]) return;
        var o = e[1];
        if (o.color) st.color = o.color;
        if (o.fill_color) st.fillColor = o.fill_color;
        if (o.fill_opacity !== undefined) st.fillOpacity = o.fill_opacity;
        if (o.dash) st.dashArray = o.dash;
        if (o.weight) st.weight = o.weight;
      });
    }
    if (cfg.overdue && props && props.overdue === true) { st.color = "#000"; st.weight = Math.max(2, s.weight); st.radius = s.radius + 2; }
    return st;
  }
  function named(cfg, field, v) {
    var names = cfg.labels && cfg.labels[field];
    return names && typeof v === "string" && names[v] !== undefined ? names[v] : v;
  }
  function popupHtml(cfg, props) {
    var rows = cfg.fields.map(function (f) {
      return "<tr><th>" + esc(f[1]) + "</th><td>" + fmt(named(cfg, f[0], props[f[0]])) + "</td></tr>";
    });
    if (cfg.overdue && props.overdue === true) rows.push("<tr><th>" + esc(SG.t.days_overdue) + "</th><td class='sg-late'>" + fmt(props.days_overdue) + "</td></tr>");
    var html = "<div class='sg-popup'><h4>" + esc(cfg.title) + "</h4><table>" + rows.join("") + "</table>";
    if (cfg.link) {
      var href = cfg.link.replace(/\{(\w+)\}/g, function (_, k) { return encodeURIComponent(props[k] || ""); });
      html += "<p><a href='" + esc(href) + "'>" + esc(cfg.link_text || SG.t.open_page) + " →</a></p>";
    }
    return html + "</div>";
  }
  function clusterIcon(p) {
    var n = p._count, size = n < 100 ? "small" : n < 1000 ? "medium" : "large";
    var late = p._overdue > 0 ? " sg-cluster-late" : "";
    return L.divIcon({
      html: "<div><span>" + (n >= 10000 ? Math.round(n / 1000) + "k" : n) + "</span></div>",
      className: "marker-cluster marker-cluster-" + size + late, iconSize: L.point(40, 40)
    });
  }
  function geoLayer(cfg, data) {
    var by = cfg.style.by;
    if (by && by.ramp && !by.fixed && data.features.length && data.features[0].properties._count === undefined) {
      var vals = data.features.map(function (f) { return f.properties[by.field]; })
        .filter(function (v) { return typeof v === "number"; });
      if (vals.length) by.domain = [Math.min.apply(null, vals), Math.max.apply(null, vals)];
    }
    return L.geoJSON(data, {
      style: function (f) { return pathStyle(cfg, f.properties); },
      pointToLayer: function (f, latlng) {
        if (f.properties && f.properties._count !== undefined) {
          var m = L.marker(latlng, { icon: clusterIcon(f.properties) });
          m.on("click", function () {
            var b = f.properties._bbox;
            SG.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: SG.map.getZoom() + 3, padding: [20, 20] });
          });
          m.bindTooltip(SG.t.cluster.replace("{n}", f.properties._count).replace("{open}", f.properties._open)
            .replace("{late}", f.properties._overdue));
          return m;
        }
        return L.circleMarker(latlng, pathStyle(cfg, f.properties));
      },
      onEachFeature: function (f, layer) {
        if (!f.properties || f.properties._count !== undefined) return;
        if (cfg.label_zoom !== undefined && cfg.label_field && f.properties[cfg.label_field]) {
          layer.bindTooltip(esc(f.properties[cfg.label_field]), { permanent: true, direction: "center",
            className: "sg-street-label", interactive: false, opacity: 1 });
          SG.labelZoom = Math.min(SG.labelZoom === undefined ? 99 : SG.labelZoom, cfg.label_zoom);
        }
        if (cfg.big && cfg.key) {  /* big layers: the popup's fields are fetched when it opens */
          layer.bindPopup(esc(SG.t.loading), { maxWidth: 360 });
          layer.on("popupopen", function (ev) {
            var k = f.properties[cfg.key];
            fetch(cfg.feature_url + encodeURIComponent(k) + "?coords=" + SG.opts.coords, { credentials: "same-origin" })
              .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
              .then(function (feat) { ev.popup.setContent(popupHtml(cfg, feat.properties)); })
              .catch(function (e) { ev.popup.setContent(esc(SG.t.no_results) + " (" + esc(e.message) + ")"); });
          });
        } else {
          layer.bindPopup(popupHtml(cfg, f.properties), { maxWidth: 360 });
        }
      }
    });
  }

  /* ------------------------------------------------------------ layers */
  SG.addLayer = function (group, cfg, data) {
    var entry = { cfg: cfg, group: group, ctrl: null, seq: 0 };
    SG.layers.push(entry);
    if (data) {
      geoLayer(cfg, data).addTo(group);
      entry.loaded = true;
    }
    return entry;
  };
  function dynamicUrl(entry) {
    var b = SG.map.getBounds(), cfg = entry.cfg;
    if (cfg.once) return cfg.url + (cfg.url.indexOf("?") >= 0 ? "&" : "?") + "coords=" + SG.opts.coords;
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    var sep = cfg.url.indexOf("?") >= 0 ? "&" : "?";
    return cfg.url + sep + "bbox=" + bbox + "&zoom=" + SG.map.getZoom() + "&coords=" + SG.opts.coords;
  }
  function refresh(entry) {
    if (!entry.cfg.url || !SG.map.hasLayer(entry.group)) return;
    if (entry.cfg.once && (entry.loaded || entry.ctrl)) return;
    if (entry.ctrl) entry.ctrl.abort();
    var ctrl = (entry.ctrl = new AbortController()), seq = ++entry.seq;
    SG.pending++;
    fetch(dynamicUrl(entry), { signal: ctrl.signal, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.json(); })
      .then(function (data) {
        if (seq !== entry.seq) return;
        entry.group.clearLayers();
        geoLayer(entry.cfg, data).addTo(entry.group);
        entry.clustered = !!data.clustered;
        entry.loaded = true;
        updateLegend();
      })
      .catch(function (e) { if (e.name !== "AbortError") console.warn("sanigrid: " + entry.cfg.kind + ": " + e.message); })
      .finally(function () { SG.pending--; if (entry.ctrl === ctrl) entry.ctrl = null; settle(); });
  }
  function settle() {
    if (SG.pending === 0 && !SG.drawn) {
      SG.drawn = true;
      SG.drawnMs = performance.now();
      document.documentElement.setAttribute("data-sg-drawn", "1");
      document.dispatchEvent(new CustomEvent("sanigrid:drawn"));
    }
  }
  function refreshAll() { SG.layers.forEach(refresh); }

  /* ------------------------------------------------------------ legend */
  function swatch(cfg, color, fill) {
    var s = cfg.style;
    if (cfg.geometry === "point")
      return "<i class='sg-sw sg-sw-pt' style='background:" + esc(fill || color) + ";border-color:" + esc(color) + "'></i>";
    if (cfg.geometry === "line")
      return "<i class='sg-sw sg-sw-ln' style='border-top:" + Math.max(2, Math.min(5, s.weight)) + "px " + (s.dash ? "dashed " : "solid ") + esc(color) + "'></i>";
    return "<i class='sg-sw sg-sw-pg' style='background:" + esc(fill || color) + ";opacity:" + Math.max(0.35, s.fill_opacity) + ";border-color:" + esc(color) + "'></i>";
  }
  SG.legendFolded = {};
  function updateLegend() {
    if (!SG.legendDiv) return;
    var closed = SG.legendDiv.classList.contains("sg-leg-closed");
    var html = "<button type='button' class='sg-leg-toggle' aria-expanded='" + (!closed) + "'>" +
      esc(closed ? SG.t.legend_show : SG.t.legend) + "</button><div class='sg-leg-body'>";
    SG.layers.forEach(function (e) {
      if (!SG.map.hasLayer(e.group)) return;
      var cfg = e.cfg, s = cfg.style;
      html += "<details class='sg-leg-layer' data-kind='" + esc(cfg.kind) + "' data-title='" + esc(cfg.title) + "'" +
        (SG.legendFolded[cfg.title] ? "" : " open") + "><summary>" + esc(cfg.title) + "</summary>";
      if (s.by && s.by.ramp) {
        var d = s.by.domain || ["", ""];
        html += "<div class='sg-leg-sub'>" + esc(s.by.label) + "</div><div class='sg-ramp'><span>" + esc(d[0]) +
          "</span><i style='background:linear-gradient(to right," + s.by.ramp.map(esc).join(",") + ")'></i><span>" +
          esc(d[1]) + "</span></div>";
      } else if (s.by) {
        html += "<div class='sg-leg-sub'>" + esc(s.by.label) + "</div>";
        s.by.values.forEach(function (v) { html += "<div>" + swatch(cfg, v[1], v[1]) + esc(v[2]) + "</div>"; });
      } else {
        html += "<div>" + swatch(cfg, s.color, s.fill_color) + esc(cfg.title) + "</div>";
      }
      if (s.status) s.status.styles.forEach(function (e) {
        var o = e[1], fill = o.fill_opacity === 0 ? "transparent" : (o.fill_color || s.fill_color || s.color);
        html += "<div>" + swatch(cfg, o.color || s.color, fill).replace("style='", "style='border-style:" +
          (o.dash ? "dashed" : "solid") + ";") + esc(e[2]) + "</div>";
      });
      if (cfg.overdue) html += "<div>" + swatch(cfg, "#000", "#fff") + esc(SG.t.overdue) + "</div>";
      if (e.clustered) html += "<div><i class='sg-sw sg-sw-cl'></i>" + esc(SG.t.clusters) + "</div>";
      html += "</details>";
    });
    SG.legendDiv.innerHTML = html + "</div>";
  }
  function legendEvents(d) {
    d.addEventListener("click", function (ev) {
      if (!ev.target.classList.contains("sg-leg-toggle")) return;
      d.classList.toggle("sg-leg-closed");
      updateLegend();
    });
    d.addEventListener("toggle", function (ev) {
      var t = ev.target.getAttribute && ev.target.getAttribute("data-title");
      if (t !== null && t !== undefined) SG.legendFolded[t] = !ev.target.open;
    }, true);
  }
  function labelsByZoom() {
    if (SG.labelZoom === undefined) return;
    L.DomUtil[SG.map.getZoom() >= SG.labelZoom ? "addClass" : "removeClass"](SG.map.getContainer(), "sg-labels-on");
  }

  /* ------------------------------------------------------------ search */
  /* an inline icon: the map page then needs no icon font (150 KB) */
  var LENS = "<svg width='14' height='14' viewBox='0 0 16 16' aria-hidden='true'><circle cx='6.5' cy='6.5' r='5' " +
    "fill='none' stroke='#fff' stroke-width='2'/><line x1='10.2' y1='10.2' x2='15' y2='15' stroke='#fff' stroke-width='2'/></svg>";
  function searchControl() {
    var c = L.control({ position: "topleft" });
    c.onAdd = function () {
      var div = L.DomUtil.create("div", "sg-search leaflet-bar");
      div.innerHTML = "<form><input type='search' name='q' placeholder='" + esc(SG.t.search) + "' aria-label='" + esc(SG.t.search) +
        "'><button type='submit' title='" + esc(SG.t.search) + "'>" + LENS + "</button></form><ul class='sg-results'></ul>";
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      var form = div.querySelector("form"), ul = div.querySelector("ul");
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var q = form.q.value.trim();
        if (!q) { ul.innerHTML = ""; return; }
        fetch(SG.opts.search_url + "?q=" + encodeURIComponent(q) + "&coords=" + SG.opts.coords, { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (hits) {
            if (!hits.length) { ul.innerHTML = "<li class='sg-none'>" + esc(SG.t.no_results) + "</li>"; return; }
            ul.innerHTML = hits.map(function (h, i) {
              return "<li data-i='" + i + "'><span class='sg-kind'>" + esc(h.layer_title) + "</span> " + esc(h.label) +
                (h.href ? " <a href='" + esc(h.href) + "'>" + esc(SG.t.open_page) + "</a>" : "") + "</li>";
            }).join("");
            Array.prototype.forEach.call(ul.querySelectorAll("li"), function (li) {
              li.addEventListener("click", function (ev) {
                if (ev.target.tagName === "A") return;
                var b = hits[+li.getAttribute("data-i")].bounds;
                SG.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 17, padding: [30, 30] });
              });
            });
            if (hits.length === 1) ul.querySelector("li").click();
          });
      });
      return div;
    };
    return c;
  }


  /* ------------------------------------------------------------ grid page: report a problem, next status */
  /* The side panel (web/gridpage.py) has the form and the step buttons only for accounts that may write;
   * the API checks again. Texts come from the panel's data-t (the project's language). */
  function show(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("sg-error", isError === true);
    el.classList.toggle("sg-ok", isError === false);  /* null: neither (in progress) */
  }
  function fill(s, vals) {
    return String(s).replace(/\{(\w+)\}/g, function (_, k) { return vals[k] === undefined ? "" : String(vals[k]); });
  }
  function postJson(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var d = data && data.detail;
          throw new Error(d ? (typeof d === "string" ? d : JSON.stringify(d)) : r.status + " " + r.statusText);
        }
        return data;
      });
    });
  }
  /* the open list again, from the page itself (the panel's HTML is made on the server); the map's
   * layers fetched from the server are fetched again (inline ones are as the page was made) */
  function reloadOpen() {
    refreshAll();
    return fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("sg-open");
        var old = document.getElementById("sg-open");
        if (fresh && old) old.replaceWith(document.importNode(fresh, true));
      });
  }
  function gridPanel(map) {
    var side = document.querySelector(".sg-side[data-t]");
    if (!side) return;
    var T = JSON.parse(side.getAttribute("data-t")), prefix = (SG.opts.search_url || "").replace(/\/api\/search$/, "");
    var form = document.getElementById("sg-report");
    if (form) {
      var f = form.elements, where = form.querySelector(".sg-where"), msg = form.querySelector(".sg-msg");
      var picking = false, marker = null;
      form.querySelector(".sg-pick").addEventListener("click", function () {
        picking = true;
        L.DomUtil.addClass(map.getContainer(), "sg-picking");
        where.textContent = T.picking;
      });
      /* preclick: a feature's popup stops the click itself from reaching the map */
      map.on("preclick", function (ev) {
        if (!picking) return;
        picking = false;
        L.DomUtil.removeClass(map.getContainer(), "sg-picking");
        setTimeout(function () { map.closePopup(); }, 0);  /* the click picked a place: no feature popup */
        f.lon.value = ev.latlng.lng.toFixed(7);
        f.lat.value = ev.latlng.lat.toFixed(7);
        where.textContent = f.lon.value + ", " + f.lat.value + " (" + SG.opts.coords + ")";
        if (marker) marker.setLatLng(ev.latlng);
        else marker = L.circleMarker(ev.latlng, { radius: 9, color: "#000", weight: 3, fillColor: "#fff",
          fillOpacity: 0.8, interactive: false, pane: map.getPane("sgfocus") ? "sgfocus" : "overlayPane" }).addTo(map);
      });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (!f.lon.value) { show(msg, T.need_where, true); return; }
        var btn = form.querySelector("button[type=submit]");
        btn.disabled = true;
        show(msg, T.sending, null);
        /* the map is drawn in the basemap's coordinates: the click is in them too */
        postJson(prefix + "/api/problems", { category: f.category.value, description: f.description.value,
          source: f.source.value, lon: +f.lon.value, lat: +f.lat.value,
          coords: (f.coords && f.coords.value) || SG.opts.coords })  /* wgs84 after 用我的位置 (cases.js) */
          .then(function (p) {
            var text = fill(T.accepted, { id: p.problem_id, deadline: String(p.deadline).slice(0, 16) });
            if (p.possible_duplicates && p.possible_duplicates.length)
              text += "; " + fill(T.dups, { ids: p.possible_duplicates.map(function (i) { return "#" + i; }).join(", ") });
            show(msg, text, false);
            f.description.value = "";
            return reloadOpen();
          })
          .catch(function (e) { show(msg, e.message, true); })
          .finally(function () { btn.disabled = false; });
      });
    }
    side.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("button.sg-step") : null;
      if (!b) return;
      var id = b.getAttribute("data-id"), row = b.closest("tr"), note = row.querySelector(".sg-note");
      var buttons = row.querySelectorAll("button.sg-step");
      Array.prototype.forEach.call(buttons, function (x) { x.disabled = true; });
      postJson(prefix + "/api/problems/" + encodeURIComponent(id) + "/transitions",
        { to_status: b.getAttribute("data-to"), note: note ? note.value : "" })
        .then(function (rec) {
          var text = fill(T.stepped, { id: rec.problem_id, from: rec.from_status, to: rec.to_status });
          return reloadOpen().then(function () { show(document.getElementById("sg-step-msg"), text, false); });
        })
        .catch(function (e) {
          /* refused (e.g. someone else moved the case meanwhile): the message, over the list as it is now */
          var text = "#" + id + ": " + e.message;
          Array.prototype.forEach.call(buttons, function (x) { x.disabled = false; });
          return reloadOpen().catch(function () { return null; })
            .then(function () { show(document.getElementById("sg-step-msg"), text, true); });
        });
    });
  }

  /* ------------------------------------------------------------ init */
  SG.init = function (map, opts) {
    SG.map = map; SG.opts = opts; SG.t = opts.t;
    map.attributionControl.setPrefix("Leaflet");
    if (opts.attribution) map.attributionControl.addAttribution(esc(opts.attribution));
    if (opts.crs_note) map.attributionControl.addAttribution(esc(opts.crs_note));
    if (opts.title) {
      var tc = L.control({ position: "topleft" });
      tc.onAdd = function () {
        var d = L.DomUtil.create("div", "sg-title");
        d.innerHTML = "<b>" + esc(opts.title) + "</b>" + (opts.user ? " <span class='sg-user'>" + esc(opts.user) + "</span>" : "") +
          (opts.links || []).map(function (l) { return " <a href='" + esc(l[1]) + "'>" + esc(l[0]) + "</a>"; }).join("");
        return d;
      };
      tc.addTo(map);
    }
    if (opts.search_url) searchControl().addTo(map);
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
    var lg = L.control({ position: "bottomleft" });
    lg.onAdd = function () {
      var d = (SG.legendDiv = L.DomUtil.create("div", "sg-legend"));
      if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) d.classList.add("sg-leg-closed");
      L.DomEvent.disableScrollPropagation(d);
      L.DomEvent.disableClickPropagation(d);
      legendEvents(d);
      return d;
    };
    lg.addTo(map);
    map.on("overlayadd", function (ev) {
      SG.layers.forEach(function (e) { if (e.group === ev.layer) refresh(e); });
      updateLegend();
    });
    map.on("overlayremove", updateLegend);
    map.on("moveend", refreshAll);
    map.on("zoomend", labelsByZoom);
    if (opts.focus) {
      map.createPane("sgfocus").style.zIndex = 450;
      L.geoJSON(opts.focus, { pane: "sgfocus", interactive: false,  /* this grid: the grids' colour, heavier */
        style: { color: opts.focus_colour || "#1f4e9c", weight: 4, fill: false, opacity: 0.9 } }).addTo(map);
    }
    if (opts.bounds) map.fitBounds([[opts.bounds[1], opts.bounds[0]], [opts.bounds[3], opts.bounds[2]]]);
    gridPanel(map);
  };
  /* called after every layer was added to the map */
  /* on a phone the layer list starts folded behind Leaflet's layers button (it would cover half the map) */
  function foldLayerList() {
    if (!(window.matchMedia && window.matchMedia("(max-width: 700px)").matches)) return;
    Array.prototype.forEach.call(document.querySelectorAll(".leaflet-control-layers"), function (c) {
      c.classList.remove("leaflet-control-layers-expanded");
      var link = c.querySelector(".leaflet-control-layers-toggle");
      if (link) link.addEventListener("click", function (ev) {
        ev.preventDefault();
        c.classList.toggle("leaflet-control-layers-expanded");
      });
    });
  }
  SG.ready = function () {
    foldLayerList();
    labelsByZoom();
    updateLegend();
    refreshAll();
    settle();
  };
})();
