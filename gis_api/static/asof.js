/* Shequ GIS web map: the "as of" date (网格时点). Picking a date redraws the grid layers (网格, and 微网格
 * when shown) as they were at the end of that day (China time), from OGC API Features with the
 * `datetime` parameter: /collections/{id}/items?datetime=…&bbox=… answers the versions valid then.
 * While a date is set the live tiles of those layers are drawn empty; 现行 goes back to them.
 * Hooks into app.js through window.shequMap only. */
(function () {
  "use strict";

  var AS = { date: null, instant: null, layers: {}, drawn: {}, seq: 0, loading: false };
  window.shequAsOf = AS;
  var saved = {};  // layer id → its live tile style, while hidden

  function $(id) { return document.getElementById(id); }
  // dates are China's calendar days (UTC+8) whatever the browser's zone
  function today() { return new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10); }
  function instantOf(date) { return date + "T23:59:59+08:00"; }

  function temporalLayers() {
    return window.shequMap.meta.layers.filter(function (l) { return l.temporal && (l.id === "grid" || l.id === "microgrid"); });
  }
  // a layer is on when its overlay is on the map, or it is part of the visible basemap
  function isOn(l) {
    var st = window.shequMap, map = st.map;
    if (st.layers[l.id] && map.hasLayer(st.layers[l.id])) { return true; }
    return l.basemap && st.basemap && map.hasLayer(st.basemap) && st.meta.basemap.layers.indexOf(l.id) >= 0;
  }

  // draw (or stop drawing) the live tiles of the temporal layers: an empty style list draws nothing
  function hideLive(hide) {
    var st = window.shequMap, touched = [];
    temporalLayers().forEach(function (l) {
      [st.basemap, st.layers[l.id]].forEach(function (vg) {
        if (!vg || !vg.options.vectorTileLayerStyles || !(l.id in vg.options.vectorTileLayerStyles)) { return; }
        var styles = vg.options.vectorTileLayerStyles, key = (vg === st.basemap ? "base:" : "ovl:") + l.id;
        if (hide && !(key in saved)) { saved[key] = styles[l.id]; styles[l.id] = []; touched.push(vg); }
        if (!hide && key in saved) { styles[l.id] = saved[key]; delete saved[key]; touched.push(vg); }
      });
    });
    touched.forEach(function (vg) { if (st.map.hasLayer(vg)) { vg.redraw(); } });
  }

  function status(text, bad) {
    var el = $("asof-status");
    el.textContent = text;
    el.className = bad ? "bad" : "";
  }

  function clearDrawn() {
    Object.keys(AS.layers).forEach(function (id) { window.shequMap.map.removeLayer(AS.layers[id]); });
    AS.layers = {};
    AS.drawn = {};
  }

  function bboxOfView() {
    var b = window.shequMap.map.getBounds().pad(0.25);
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
  }

  function load() {
    if (!AS.date) { return; }
    var st = window.shequMap, seq = ++AS.seq, z = st.map.getZoom();
    var layers = temporalLayers().filter(function (l) { return isOn(l) && z >= l.min_zoom; });
    AS.loading = true;
    document.body.dataset.asOf = AS.date + ":loading";
    status("正在加载 " + AS.date + " 的网格…");
    Promise.all(layers.map(function (l) {
      var url = "/collections/" + encodeURIComponent(l.id) + "/items?limit=10000&datetime=" +
                encodeURIComponent(AS.instant) + "&bbox=" + bboxOfView();
      return fetch(url, { headers: { Accept: "application/geo+json" } }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(function (fc) { return { layer: l, fc: fc }; });
    })).then(function (got) {
      if (seq !== AS.seq) { return; }  // a newer date or view was asked for meanwhile
      clearDrawn();
      var n = 0;
      got.forEach(function (g) {
        var style = Object.assign({}, g.layer.style.leaflet, { interactive: false });
        AS.drawn[g.layer.id] = {};
        g.fc.features.forEach(function (f) { AS.drawn[g.layer.id][f.properties.code] = f.properties.version; });
        n += g.fc.features.length;
        AS.layers[g.layer.id] = L.geoJSON(g.fc, { style: function () { return style; } }).addTo(st.map);
      });
      AS.loading = false;
      status(AS.date === today() ? "显示今日现行网格（" + n + " 个）" : "显示 " + AS.date + " 的历史网格（" + n + " 个）");
      document.body.dataset.asOf = AS.date + ":loaded";
    }).catch(function (err) {
      if (seq !== AS.seq) { return; }
      AS.loading = false;
      status("历史网格加载失败：" + err.message, true);
      document.body.dataset.asOf = AS.date + ":error";
    });
  }

  function setDate(date) {
    if (!date) { reset(); return; }
    if (date > today()) { date = today(); $("asof-date").value = date; }
    AS.date = date;
    AS.instant = instantOf(date);
    window.shequMap.asOf = AS.instant;  // app.js asks the same versions when a feature is clicked
    hideLive(true);
    $("asof-now").disabled = false;
    load();
  }

  function reset() {
    AS.seq += 1;
    AS.date = null;
    AS.instant = null;
    window.shequMap.asOf = null;
    clearDrawn();
    hideLive(false);
    $("asof-date").value = "";
    $("asof-now").disabled = true;
    status("");
    document.body.dataset.asOf = "live";
  }

  function start() {
    var st = window.shequMap;
    if (!temporalLayers().length) { return; }
    var Ctl = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var div = L.DomUtil.create("div", "asof");
        div.innerHTML = '<label for="asof-date">网格时点</label>' +
          '<input id="asof-date" type="date" aria-label="查看该日期的网格" title="查看该日期（当日结束时）的网格与微网格">' +
          '<button id="asof-now" type="button" disabled title="回到现行网格">现行</button>' +
          '<div id="asof-status" role="status"></div>';
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    new Ctl().addTo(st.map);
    var input = $("asof-date");
    input.max = today();
    input.addEventListener("change", function () { setDate(input.value); });
    $("asof-now").addEventListener("click", reset);
    var timer = null;
    st.map.on("moveend", function () {
      if (!AS.date) { return; }
      clearTimeout(timer);
      timer = setTimeout(load, 250);
    });
    st.map.on("overlayadd overlayremove baselayerchange", function () {
      if (AS.date) { hideLive(true); load(); }
    });
    AS.setDate = setDate;
    AS.reset = reset;
    document.body.dataset.asOf = "live";
  }

  (function waitForMap() {
    if (window.shequMap && window.shequMap.ready) { start(); } else { setTimeout(waitForMap, 200); }
  })();
})();
