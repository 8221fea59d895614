/* 规划工作台 (planner workbench) on the map page: coverage choropleth, isochrones, MCLP scenarios as
 * jobs, comparison and PDF reports. Shown to the planner and admin roles only; every request goes to
 * this server (no outside host). Hooks into app.js through window.shequMap only. */
(function () {
  "use strict";

  var ROLES = ["planner", "admin"];
  var wb = { layers: {}, scenarios: [], job: null, communities: null, lastCoverage: null };
  window.shequWorkbench = wb;

  function $(id) { return document.getElementById(id); }
  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function pct(v) { return v === null || v === undefined ? "" : (v * 100).toFixed(1) + "%"; }

  function api(method, url, body, raw) {
    var opts = { method: method, headers: { "X-CSRF-Token": cookie("shequ_csrf") || "" }, credentials: "same-origin" };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          throw new Error(b.message || ("HTTP " + r.status));
        });
      }
      return raw ? r.blob() : r.json();
    });
  }

  function error(msg) {
    var el = $("wb-error");
    el.textContent = msg || "";
    el.hidden = !msg;
  }
  function busy(on, text) {
    $("workbench").dataset.busy = on ? "1" : "";
    $("wb-status").textContent = text || "";
  }

  function params() {
    var radius = parseFloat($("wb-radius").value);
    var p = { facility_type: $("wb-type").value, distance: $("wb-distance").value };
    if ($("wb-radius").value !== "") { p.radius_m = radius; }
    if ($("wb-area").value === "__drawn") {
      if (!wb.drawn) { throw new Error("请先在地图上绘制范围"); }
      p.area = wb.drawn;
    } else if ($("wb-area").value) { p.community_code = $("wb-area").value; }
    return p;
  }

  // 绘制范围: click the map to add corners, press 完成绘制 to close the polygon
  function toggleDraw() {
    var map = window.shequMap.map, btn = $("wb-draw");
    if (!wb.drawing) {
      wb.drawing = [];
      btn.textContent = "完成绘制";
      setLayer("drawn", null);
      map.on("click", addCorner);
      $("wb-status").textContent = "在地图上点击添加范围顶点（至少 3 个），再按“完成绘制”";
      return;
    }
    map.off("click", addCorner);
    btn.textContent = "绘制范围";
    var pts = wb.drawing;
    wb.drawing = null;
    if (pts.length < 3) { error("范围至少需要 3 个顶点"); setLayer("drawn", null); return; }
    var ring = pts.map(function (ll) { return [ll.lng, ll.lat]; });
    ring.push(ring[0]);
    wb.drawn = { type: "Polygon", coordinates: [ring] };
    setLayer("drawn", L.polygon(pts, { color: "#7048e8", weight: 2, dashArray: "4 4", fillOpacity: 0.05 }));
    $("wb-area").value = "__drawn";
    $("wb-status").textContent = "已绘制范围（" + pts.length + " 个顶点）";
  }

  function addCorner(e) {
    if (!wb.drawing) { return; }
    wb.drawing.push(e.latlng);
    setLayer("drawn", L.polyline(wb.drawing, { color: "#7048e8", weight: 2, dashArray: "4 4" }));
  }

  function setLayer(key, layer) {
    var map = window.shequMap.map;
    if (wb.layers[key]) { map.removeLayer(wb.layers[key]); }
    wb.layers[key] = layer;
    if (layer) { layer.addTo(map); }
  }

  function shareColour(s) {
    return s >= 0.9 ? "#2b8a3e" : s >= 0.7 ? "#74b816" : s >= 0.5 ? "#fab005" : s >= 0.3 ? "#f76707" : "#c92a2a";
  }

  var polygons = {};
  function collection(id) {  // a polygon layer of the registry (communities, townships, districts, grids)
    if (polygons[id]) { return Promise.resolve(polygons[id]); }
    return api("GET", "/collections/" + id + "/items?limit=5000").then(function (fc) {
      polygons[id] = fc;
      return fc;
    });
  }
  function communities() { return collection("admin_community"); }

  function drawCoverage(res) {
    var s = res.summary, byCode = {}, byGrid = $("wb-by").value === "grid";
    (byGrid ? s.by_grid : s.by_area).forEach(function (a) { if (a.code) { byCode[a.code] = a; } });
    wb.lastCoverage = res;
    var layerId = byGrid ? "grid" : { district: "admin_district", township: "admin_township" }[s.area_level] ||
                  "admin_community";
    var areas = s.area_level === "drawn" && !byGrid ?  // the drawn polygon is its own (one) area
      Promise.resolve({ features: [{ type: "Feature", geometry: wb.drawn, properties: { code: "drawn" } }] }) :
      collection(layerId);
    areas.then(function (fc) {
      var feats = fc.features.filter(function (f) { return byCode[f.properties.code]; });
      setLayer("choropleth", L.geoJSON({ type: "FeatureCollection", features: feats }, {
        style: function (f) {
          var a = byCode[f.properties.code];
          return { color: "#343a40", weight: 1, fillColor: shareColour(a.covered_share), fillOpacity: 0.45 };
        },
        onEachFeature: function (f, l) {
          var a = byCode[f.properties.code];
          l.bindPopup(esc(a.name || a.code) + "<br>覆盖 " + a.covered_households + " / " + a.households + " 户（" +
                      pct(a.covered_share) + "）");
        }
      }));
      var bounds = wb.layers.choropleth.getBounds();
      if (bounds.isValid()) {  // on a phone the panel covers the lower part of the map: keep the result above it
        var narrow = window.matchMedia("(max-width: 600px)").matches;
        window.shequMap.map.fitBounds(bounds, { paddingTopLeft: [10, 10],
                                               paddingBottomRight: [10, narrow ? Math.round(window.innerHeight * 0.6) : 10] });
      }
      setLayer("uncovered", L.geoJSON(res.layers.uncovered_buildings || res.layers.buildings, {
        filter: function (f) { return !f.properties.covered; },
        style: function () { return { color: "#c92a2a", weight: 1, fillColor: "#c92a2a", fillOpacity: 0.8 }; }
      }));
      setLayer("facilities", L.geoJSON(res.layers.facilities, {
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, { radius: 7, color: "#fff", weight: 2, fillColor: "#1971c2", fillOpacity: 1 });
        },
        onEachFeature: function (f, l) {
          l.bindPopup(esc(f.properties.name || s.facility_type) + "<br>服务 " + f.properties.catchment_households + " 户");
        }
      }));
    }).catch(function (e) { error("边界加载失败：" + e.message); });
    var rows = (byGrid ? s.by_grid : s.by_area).map(function (a) {
      return "<tr><td>" + esc(a.name || a.code) + "</td><td>" + a.covered_households + "/" + a.households + "</td><td>" +
             pct(a.covered_share) + "</td></tr>";
    }).join("");
    $("wb-summary").innerHTML = "<p><b>" + esc(s.facility_type) + "</b> " + s.radius_m + " 米（" +
      (s.distance === "walk" ? "步行" : "直线") + "）：覆盖 " + s.covered_households + " / " + s.households +
      " 户，<b>" + pct(s.covered_share) + "</b>；未覆盖建筑 " + s.uncovered_buildings + " 栋</p>" +
      '<table class="wb-table" id="wb-area-table"><tr><th>' + (byGrid ? "网格" : "区域") + '</th><th>覆盖/住户</th><th>覆盖率</th></tr>' + rows + "</table>";
  }

  function runCoverage(ev) {
    ev.preventDefault();
    error("");
    var p;
    try { p = params(); } catch (e) { error(e.message); return; }
    busy(true, "覆盖分析中…");
    p.include_buildings = false;
    api("POST", "/analysis/coverage", p).then(function (res) {
      drawCoverage(res);
      busy(false, "覆盖分析完成（" + res.summary.seconds + " 秒）");
    }).catch(function (e) { busy(false); error(e.message); });
  }

  function runIsochrones() {
    error("");
    var p;
    try { p = params(); } catch (e) { error(e.message); return; }
    if (p.area) { error("等时圈按行政区划或全部计算，不支持绘制范围"); return; }
    busy(true, "计算等时圈…");
    var body = { facility_type: p.facility_type, minutes: [5, 10, 15] };
    if (p.community_code) { body.community_code = p.community_code; }
    api("POST", "/analysis/isochrones", body).then(function (res) {
      var shades = { 5: "#1864ab", 10: "#4dabf7", 15: "#a5d8ff" };
      setLayer("isochrones", L.geoJSON(res.layers.isochrones, {
        style: function (f) {
          var c = shades[f.properties.minutes] || "#74c0fc";
          return { color: c, weight: 1, fillColor: c, fillOpacity: 0.25 };
        },
        onEachFeature: function (f, l) { l.bindPopup(esc(f.properties.name || "") + " " + f.properties.minutes + " 分钟步行"); }
      }));
      busy(false, "等时圈：" + res.summary.isochrones + " 个（" + res.summary.seconds + " 秒）");
    }).catch(function (e) { busy(false); error(e.message); });
  }

  function downloadBlob(blob, name) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function coveragePdf() {
    error("");
    var p;
    try { p = params(); } catch (e) { error(e.message); return; }
    busy(true, "生成 PDF…");
    api("POST", "/analysis/coverage/report.pdf", p, true).then(function (blob) {
      downloadBlob(blob, "coverage-report.pdf");
      busy(false, "PDF 已下载");
    }).catch(function (e) { busy(false); error(e.message); });
  }

  function drawSites(key, fc, colour) {
    setLayer(key, L.geoJSON(fc, {
      pointToLayer: function (f, ll) {
        var planned = f.properties.status === "planned";
        return L.circleMarker(ll, { radius: planned ? 8 : 6, color: "#fff", weight: 2,
                                    fillColor: planned ? colour : "#1971c2", fillOpacity: 1 });
      },
      onEachFeature: function (f, l) {
        l.bindPopup((f.properties.status === "planned" ? "方案新增" : "现有") + " " + esc(f.properties.name || "") +
                    "<br>新增覆盖 " + (f.properties.new_households_covered || 0) + " 户");
      }
    }));
  }

  function refreshScenarios() {
    return api("GET", "/analysis/scenarios").then(function (list) {
      wb.scenarios = list;
      var opts = list.map(function (s) {
        return '<option value="' + s.id + '">' + esc(s.name) + " 第" + s.version + "版（新增 " + s.summary.new_sites +
               "，覆盖 " + pct(s.summary.covered_share_after) + "）</option>";
      }).join("");
      $("wb-a").innerHTML = opts;
      $("wb-b").innerHTML = opts;
      if (list.length > 1) { $("wb-a").value = String(list[1].id); $("wb-b").value = String(list[0].id); }
      $("wb-list").innerHTML = list.slice(0, 8).map(function (s) {
        return "<li>" + esc(s.name) + " 第" + s.version + '版 <a class="wb-pdf" href="/analysis/scenarios/' + s.id +
               '/report.pdf" download>PDF</a> <a href="/analysis/scenarios/' + s.id + '/report.gpkg" download>GPKG</a></li>';
      }).join("");
    });
  }

  function poll(id) {
    return api("GET", "/analysis/jobs/" + id).then(function (st) {
      $("wb-progress").value = st.progress;
      busy(true, "方案计算中：" + Math.round(st.progress * 100) + "% " + (st.message || ""));
      if (st.state === "queued" || st.state === "running") {
        return new Promise(function (ok) { setTimeout(ok, 700); }).then(function () { return poll(id); });
      }
      return st;
    });
  }

  function runScenario() {
    error("");
    var p;
    try { p = params(); } catch (e) { error(e.message); return; }
    if (p.area) { error("选址方案的范围须为行政区划（或全部），不支持绘制范围"); return; }
    var n = parseInt($("wb-new").value, 10);
    var body = { name: $("wb-name").value.trim(), facility_type: p.facility_type, model: "mclp", new_sites: n,
                 distance: p.distance };
    if (p.radius_m !== undefined) { body.radius_m = p.radius_m; }
    if (p.community_code) { body.area_code = p.community_code; }
    if ($("wb-cost").value !== "") { body.cost_per_site = parseFloat($("wb-cost").value); }
    $("wb-progress").hidden = false;
    $("wb-cancel").hidden = false;
    api("POST", "/analysis/jobs", { kind: "scenario", params: body }).then(function (job) {
      wb.job = job.id;
      return poll(job.id);
    }).then(function (st) {
      $("wb-progress").hidden = true;
      $("wb-cancel").hidden = true;
      wb.job = null;
      if (st.state !== "done") { busy(false); error(st.state === "cancelled" ? "方案已取消" : "方案失败：" + st.message); return null; }
      return api("GET", "/analysis/jobs/" + st.id + "/result").then(function (res) {
        drawSites("sites", res.layers.sites, "#f76707");
        busy(false, "方案已保存：" + res.scenario.name + " 第" + res.scenario.version + "版，覆盖 " +
             pct(res.summary.covered_share_after) + "（原 " + pct(res.summary.covered_share_before) + "）");
        return refreshScenarios();
      });
    }).catch(function (e) {
      $("wb-progress").hidden = true;
      $("wb-cancel").hidden = true;
      busy(false);
      error(e.message);
    });
  }

  function cancelJob() {
    if (wb.job) { api("POST", "/analysis/jobs/" + wb.job + "/cancel").catch(function (e) { error(e.message); }); }
  }

  function compare() {
    error("");
    var a = $("wb-a").value, b = $("wb-b").value;
    api("GET", "/analysis/scenarios/compare?a=" + a + "&b=" + b).then(function (res) {
      var head = "<tr><th>指标</th><th>A：" + esc(res.a.name) + " 第" + res.a.version + "版</th><th>B：" +
                 esc(res.b.name) + " 第" + res.b.version + "版</th><th>B−A</th></tr>";
      var rows = res.rows.map(function (r) {
        var fmt = function (v) { return r.key.indexOf("share") >= 0 && v !== null ? pct(v) : esc(v); };
        return "<tr><td>" + esc(r.label) + "</td><td>" + fmt(r.a) + "</td><td>" + fmt(r.b) + "</td><td>" +
               (r.b_minus_a === null ? "" : fmt(r.b_minus_a)) + "</td></tr>";
      }).join("");
      $("wb-compare-table").innerHTML = head + rows;
      drawSites("sites_a", res.layers.a_sites, "#7048e8");
      drawSites("sites", res.layers.b_sites, "#f76707");
    }).catch(function (e) { error(e.message); });
  }

  function build() {
    var panel = document.createElement("section");
    panel.id = "workbench";
    panel.hidden = true;
    panel.setAttribute("aria-label", "规划工作台");
    panel.innerHTML =
      '<header><b>规划工作台</b><button type="button" id="wb-close" aria-label="关闭">×</button></header>' +
      '<form id="wb-form" novalidate>' +
      '<label>设施类型 <select id="wb-type"></select></label>' +
      '<label>服务半径（米，空 = 国标） <input id="wb-radius" type="number" min="1" step="any" inputmode="decimal"></label>' +
      '<label>距离 <select id="wb-distance"><option value="walk">步行路网</option><option value="line">直线</option></select></label>' +
      '<div class="wb-row"><label>范围 <select id="wb-area"><option value="">全部</option>' +
      '<option value="__drawn">绘制范围</option></select></label>' +
      '<button id="wb-draw" type="button">绘制范围</button></div>' +
      '<label>分区着色 <select id="wb-by"><option value="area">按社区（所选区划）</option><option value="grid">按网格</option></select></label>' +
      '<div class="wb-row"><button id="wb-coverage" type="submit">覆盖分析</button>' +
      '<button id="wb-iso" type="button">等时圈</button><button id="wb-cov-pdf" type="button">覆盖 PDF</button></div>' +
      "</form>" +
      '<p id="wb-status" role="status"></p><p id="wb-error" role="alert" hidden></p>' +
      '<div id="wb-summary"></div>' +
      "<h4>选址方案（MCLP，现有设施保留）</h4>" +
      '<label>方案名称 <input id="wb-name" value="补点方案" maxlength="100"></label>' +
      '<div class="wb-row"><label>新增设施 <input id="wb-new" type="number" min="0" value="3"></label>' +
      '<label>每处成本（万元） <input id="wb-cost" type="number" min="0" step="any"></label></div>' +
      '<div class="wb-row"><button id="wb-run" type="button">运行方案</button><button id="wb-cancel" type="button" hidden>取消</button>' +
      '<progress id="wb-progress" max="1" value="0" hidden></progress></div>' +
      '<ul id="wb-list"></ul>' +
      "<h4>方案比较</h4>" +
      '<div class="wb-row"><select id="wb-a" aria-label="方案 A"></select><select id="wb-b" aria-label="方案 B"></select>' +
      '<button id="wb-compare" type="button">比较</button></div>' +
      '<table class="wb-table" id="wb-compare-table"></table>';
    document.body.appendChild(panel);
    var toggle = document.createElement("button");
    toggle.id = "wb-toggle";
    toggle.type = "button";
    toggle.textContent = "规划工作台";
    document.body.appendChild(toggle);
    toggle.addEventListener("click", function () { panel.hidden = !panel.hidden; });
    $("wb-close").addEventListener("click", function () { panel.hidden = true; });
    $("wb-form").addEventListener("submit", runCoverage);
    $("wb-iso").addEventListener("click", runIsochrones);
    $("wb-cov-pdf").addEventListener("click", coveragePdf);
    $("wb-run").addEventListener("click", runScenario);
    $("wb-cancel").addEventListener("click", cancelJob);
    $("wb-compare").addEventListener("click", compare);
    $("wb-draw").addEventListener("click", toggleDraw);
    $("wb-type").addEventListener("change", function () {
      var t = wb.types[$("wb-type").selectedIndex];
      $("wb-radius").placeholder = t ? t.radius_m + "（" + t.clause + "）" : "";
      $("wb-distance").value = t ? t.distance : "walk";
    });
    return Promise.all([
      api("GET", "/analysis/facility-types").then(function (types) {
        wb.types = types;
        $("wb-type").innerHTML = types.map(function (t) {
          return '<option value="' + esc(t.code) + '">' + esc(t.name) + "（" + t.radius_m + " 米）</option>";
        }).join("");
        $("wb-type").dispatchEvent(new Event("change"));
      }),
      Promise.all([["admin_district", "区"], ["admin_township", "街道"], ["admin_community", "社区"]].map(function (lv) {
        return collection(lv[0]).then(function (fc) {
          return '<optgroup label="' + lv[1] + '">' + fc.features.map(function (f) {
            return '<option value="' + esc(f.properties.code) + '">' + esc(f.properties.name) + "</option>";
          }).join("") + "</optgroup>";
        }).catch(function () { return ""; });
      })).then(function (groups) { $("wb-area").innerHTML += groups.join(""); }),
      refreshScenarios()
    ]);
  }

  function start() {
    fetch("/auth/me", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (me) {
      if (!me || ROLES.indexOf(me.role) < 0) { return null; }
      return build().then(function () { document.body.dataset.workbench = "1"; });
    }).catch(function (e) { if ($("wb-error")) { error(e.message); } });
  }

  (function waitForMap() {
    if (window.shequMap && window.shequMap.ready) { start(); } else { setTimeout(waitForMap, 200); }
  })();
})();
