/* Shequ GIS web map: Leaflet + VectorGrid drawing the server's own MVT tiles on canvas.
 * Layers, styles and URLs come from /map/layers.json (the layer registry), so a newly
 * registered layer shows up here with no change to this file. */
(function () {
  "use strict";

  var state = { map: null, layers: {}, meta: null, tilesLoaded: 0, tileErrors: 0, ready: false, lastPopup: null };
  window.shequMap = state;

  function showMessage(text, ms) {
    var el = document.getElementById("message");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(showMessage._t);
    showMessage._t = setTimeout(function () { el.hidden = true; }, ms || 4000);
  }

  function escapeHtml(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function styleFor(layer) {
    var s = Object.assign({}, layer.style.leaflet);
    if (layer.geometry_type.indexOf("LineString") >= 0) { s.fill = false; }
    var weights = {};
    (layer.style.kind_weights || []).forEach(function (kw) { weights[kw[0]] = kw[1]; });
    if (!Object.keys(weights).length) { return s; }
    // width by kind (trunk roads wider than lanes), a little thinner when zoomed out
    return function (props, zoom) {
      var w = weights[props.kind] || s.weight;
      return Object.assign({}, s, { weight: zoom < 15 ? Math.max(0.5, w * 0.7) : w });
    };
  }

  function trackTiles(vg) {
    vg.on("tileload", function () { state.tilesLoaded += 1; document.body.dataset.tilesLoaded = state.tilesLoaded; });
    vg.on("tileerror", function () { state.tileErrors += 1; });
    return vg;
  }

  function vectorGrid(url, styles, pane) {
    return trackTiles(L.vectorGrid.protobuf(url, {
      rendererFactory: L.canvas.tile,
      vectorTileLayerStyles: styles,
      interactive: false,
      maxNativeZoom: 18,
      maxZoom: 20,
      pane: pane || "overlayPane",
      attribution: "© OpenStreetMap 贡献者"
    }));
  }

  function buildLegend(meta) {
    var legend = L.control({ position: "bottomleft" });
    legend.onAdd = function () {
      var div = L.DomUtil.create("div", "legend");
      L.DomEvent.disableClickPropagation(div);
      legend.div = div;
      return div;
    };
    legend.refresh = function () {
      var html = "<h4>图例</h4>";
      meta.layers.forEach(function (layer) {
        var on = isVisible(layer.id);
        if (!on) { return; }
        var s = layer.style.leaflet, cls = "swatch", css;
        if (layer.geometry_type.indexOf("Point") >= 0) {
          cls += " point"; css = "background:" + s.fillColor + ";border:1px solid " + s.color;
        } else if (layer.geometry_type.indexOf("LineString") >= 0) {
          cls += " line"; css = "border-top-color:" + s.color;
        } else {
          css = "background:" + s.fillColor + ";opacity:" + Math.max(s.fillOpacity, 0.25) +
                ";border:2px " + (s.dashArray ? "dashed " : "solid ") + s.color;
        }
        html += '<div class="row" data-layer="' + layer.id + '"><span class="' + cls + '" style="' + css +
                '"></span>' + escapeHtml(layer.title) + "</div>";
      });
      legend.div.innerHTML = html;
    };
    return legend;
  }

  var basemapOn = true;
  function isVisible(id) {
    var layer = state.meta.layers.find(function (l) { return l.id === id; });
    if (!layer) { return false; }
    if (state.layers[id] && state.map.hasLayer(state.layers[id])) { return true; }
    return layer.basemap && basemapOn && state.map.hasLayer(state.basemap);
  }

  // Click: ask the visible layers' OGC items endpoint for what is under the cursor
  // (points first, then lines, then areas) and show its properties.
  function onMapClick(e) {
    var map = state.map, p = map.latLngToContainerPoint(e.latlng), r = 6;
    // while the grid editor draws (a split line, a police-station area) a click places a point, not a popup
    if (map.pm && map.pm.globalDrawModeEnabled && map.pm.globalDrawModeEnabled()) { return; }
    var sw = map.containerPointToLatLng([p.x - r, p.y + r]), ne = map.containerPointToLatLng([p.x + r, p.y - r]);
    var bbox = [sw.lng, sw.lat, ne.lng, ne.lat].map(function (v) { return v.toFixed(7); }).join(",");
    // Points, then lines, then filled areas, then outline-only areas (boundaries): the smallest thing wins.
    var rank = function (l) {
      if (l.geometry_type.indexOf("Point") >= 0) { return 0; }
      if (l.geometry_type.indexOf("Line") >= 0) { return 1; }
      return l.style.fill_opacity > 0 ? 2 : 3;
    };
    var candidates = state.meta.layers.filter(function (l) {
      var z = map.getZoom();
      return isVisible(l.id) && z >= l.min_zoom && z <= l.max_zoom;
    }).sort(function (a, b) { return rank(a) - rank(b) || b.order - a.order; });
    // Ask every candidate at once; the best rank wins, then the smallest feature (a building
    // inside a grid inside a district).
    Promise.all(candidates.map(function (layer) {
      // with the "as of" date set (asof.js), layers with valid time answer the versions valid then
      var when = state.asOf && layer.temporal ? "&datetime=" + encodeURIComponent(state.asOf) : "";
      return fetch(layer.items + "?limit=1&bbox=" + bbox + when).then(function (resp) {
        return resp.ok ? resp.json() : { features: [] };
      }).then(function (fc) {
        var f = fc.features && fc.features[0];
        return f ? { layer: layer, feature: f, rank: rank(layer), size: bboxArea(f.geometry) } : null;
      }).catch(function () { return null; });
    })).then(function (hits) {
      hits = hits.filter(Boolean).sort(function (a, b) { return a.rank - b.rank || a.size - b.size; });
      if (hits.length) { openPopup(hits[0].layer, hits[0].feature, e.latlng); }
    });
  }

  function bboxArea(geom) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    (function walk(c) {
      if (typeof c[0] === "number") {
        x0 = Math.min(x0, c[0]); x1 = Math.max(x1, c[0]); y0 = Math.min(y0, c[1]); y1 = Math.max(y1, c[1]);
      } else { c.forEach(walk); }
    })(geom ? geom.coordinates : [0, 0]);
    return (x1 - x0) * (y1 - y0);
  }

  function openPopup(layer, feature, latlng) {
    var props = feature.properties || {};
    var label = (layer.style.label_field && props[layer.style.label_field]) || props.name || "";
    var rows = layer.properties.map(function (p) {
      var v = props[p.name];
      if (v === null || v === undefined || v === "") { return ""; }
      if (typeof v === "boolean") { v = v ? "是" : "否"; }
      return "<tr><th>" + escapeHtml(p.title) + "</th><td>" + escapeHtml(v) + "</td></tr>";
    }).join("");
    var html = '<div class="popup-layer">' + escapeHtml(layer.title) + " · 编号 " + escapeHtml(feature.id) + "</div>" +
               '<div class="popup-title">' + escapeHtml(label || "（无名称）") + "</div>" +
               '<table class="popup-table">' + rows + "</table>";
    state.lastPopup = { layer: layer.id, id: feature.id, properties: props };
    L.popup({ maxWidth: 360 }).setLatLng(latlng).setContent(html).openOn(state.map);
  }

  // Search box → the geocoder (GET /geocode?q=), if this deployment has it.
  function resultsOf(body) {
    if (Array.isArray(body)) { return body; }
    var keys = ["results", "candidates", "matches", "features", "items"];
    for (var i = 0; i < keys.length; i++) { if (Array.isArray(body[keys[i]])) { return body[keys[i]]; } }
    return [];
  }
  function lonLatOf(r) {
    if (r.geometry && r.geometry.coordinates) { return r.geometry.coordinates; }
    var lon = r.lon !== undefined ? r.lon : r.lng !== undefined ? r.lng : r.longitude;
    var lat = r.lat !== undefined ? r.lat : r.latitude;
    return lon === undefined || lat === undefined || lon === null ? null : [lon, lat];
  }
  function labelOf(r) {
    var p = r.properties || r;
    return p.formatted || p.address || p.full_address || p.name || p.label || "（未命名）";
  }
  function onSearch(ev) {
    ev.preventDefault();
    var q = document.getElementById("search-input").value.trim();
    var list = document.getElementById("search-results");
    list.hidden = true; list.innerHTML = "";
    if (!q) { return; }
    fetch("/geocode?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } }).then(function (resp) {
      if (resp.status === 404 && !resp.headers.get("content-type").match(/json/)) { throw new Error("nogeocoder"); }
      return resp.json().then(function (body) { return { status: resp.status, body: body }; });
    }).then(function (res) {
      if (res.status === 404 && res.body && /not.?found|Not Found/i.test(res.body.message || "") &&
          !resultsOf(res.body).length) {
        showMessage("地址搜索服务暂未启用（/geocode 不可用）");
        return;
      }
      if (res.status >= 400) { showMessage("搜索失败：" + ((res.body && res.body.message) || res.status)); return; }
      var results = resultsOf(res.body).filter(lonLatOf);
      if (!results.length) { showMessage("没有找到与“" + q + "”匹配的地址"); return; }
      results.slice(0, 10).forEach(function (r) {
        var li = document.createElement("li"), ll = lonLatOf(r);
        li.innerHTML = escapeHtml(labelOf(r)) + (r.level ? "<small>" + escapeHtml(r.level) + "</small>" : "");
        li.addEventListener("click", function () {
          list.hidden = true;
          state.map.setView([ll[1], ll[0]], 18);
          L.popup().setLatLng([ll[1], ll[0]]).setContent(escapeHtml(labelOf(r))).openOn(state.map);
        });
        list.appendChild(li);
      });
      list.hidden = false;
    }).catch(function () { showMessage("地址搜索服务暂未启用（/geocode 不可用）"); });
  }

  function init(meta) {
    state.meta = meta;
    var map = L.map("map", { zoomControl: false, preferCanvas: true, maxZoom: 20, minZoom: 3 })
      .setView(meta.center, meta.zoom);
    state.map = map;
    L.control.zoom({ zoomInTitle: "放大", zoomOutTitle: "缩小" }).addTo(map);
    map.attributionControl.setPrefix("Leaflet");
    L.control.scale({ imperial: false }).addTo(map);

    var byId = {};
    meta.layers.forEach(function (l, i) { l.order = i; byId[l.id] = l; });
    var baseStyles = {};
    meta.basemap.layers.forEach(function (id) { if (byId[id]) { baseStyles[id] = styleFor(byId[id]); } });
    state.basemap = vectorGrid(meta.basemap.tiles, baseStyles, "tilePane");
    var blank = L.layerGroup();
    var baseLayers = { "矢量底图（道路·建筑·水系·行政区）": state.basemap, "无底图": blank };
    state.basemap.addTo(map);

    var overlays = {};
    meta.layers.forEach(function (l) {
      var styles = {};
      styles[l.id] = styleFor(l);
      var vg = vectorGrid(l.tiles, styles, "overlayPane");
      vg.options.minZoom = l.min_zoom;
      state.layers[l.id] = vg;
      overlays[l.title] = vg;
      // Layers not in the basemap start visible; basemap layers can be drawn again on top.
      if (!l.basemap && l.web_default) { vg.addTo(map); }
    });
    var narrow = window.matchMedia("(max-width: 600px)").matches;  // phones: the list opens from its button
    L.control.layers(baseLayers, overlays, { collapsed: narrow, position: "topright" }).addTo(map);

    var legend = buildLegend(meta);
    legend.addTo(map);
    legend.refresh();
    map.on("overlayadd overlayremove baselayerchange", function (e) {
      if (e.type === "baselayerchange") { basemapOn = e.layer === state.basemap; }
      legend.refresh();
    });
    map.on("click", onMapClick);
    document.getElementById("search").addEventListener("submit", onSearch);
    state.ready = true;
    document.body.dataset.ready = "1";
  }

  // ---- account: browser login with a session cookie (HttpOnly) and a csrf cookie echoed on writes ----
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function showAccount(me) {
    var who = document.getElementById("who");
    var loggedIn = me && me.authenticated;
    who.hidden = !loggedIn;
    who.textContent = loggedIn ? (me.display_name || me.name) + "（" + me.role_title + "）" : "";
    document.getElementById("login-btn").hidden = !!loggedIn;
    document.getElementById("logout-btn").hidden = !loggedIn;
    document.body.dataset.user = loggedIn ? me.name : "";
  }

  function setupAccount() {
    var dialog = document.getElementById("login-dialog");
    var error = document.getElementById("login-error");
    fetch("/auth/me").then(function (r) { return r.json(); }).then(showAccount).catch(function () {});
    document.getElementById("login-btn").addEventListener("click", function () {
      error.hidden = true;
      dialog.showModal();
      document.getElementById("login-user").focus();
    });
    document.getElementById("login-cancel").addEventListener("click", function () { dialog.close(); });
    document.getElementById("login-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      fetch("/auth/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: document.getElementById("login-user").value,
                               password: document.getElementById("login-password").value })
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) { throw new Error(body.message || ("HTTP " + resp.status)); }
          dialog.close();
          location.reload();  // the layer list and tiles now follow the new role
        });
      }).catch(function (err) { error.textContent = err.message; error.hidden = false; });
    });
    document.getElementById("logout-btn").addEventListener("click", function () {
      fetch("/auth/logout", { method: "POST", headers: { "X-CSRF-Token": cookie("shequ_csrf") || "" } })
        .then(function () { location.reload(); });
    });
  }

  setupAccount();

  fetch("/map/layers.json").then(function (r) {
    if (!r.ok) { throw new Error("HTTP " + r.status); }
    return r.json();
  }).then(init).catch(function (err) {
    showMessage("图层清单加载失败：" + err.message, 60000);
  });
})();
