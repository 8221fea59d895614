/* Shequ GIS grid editor (网格编辑, issue 11): Leaflet-Geoman on the map page.
 * Grid managers and office staff load a community's grids, select one, drag a vertex (the server moves
 * it in every grid that shares it), draw a split line, merge grids, click buildings and move them to a
 * neighbouring grid, see live figures, save a draft and submit it; community / street staff approve or
 * reject submitted edits. Dragged vertices and split lines snap (server side, within the tolerance chosen
 * in 吸附) to roads, street-block edges and footprints. All rules are the server's: this file only
 * collects operations and shows what /grid-edits/preview answers. */
(function () {
  "use strict";

  var EDIT_ROLES = ["grid_manager", "community", "street", "admin"];
  var REVIEW_ROLES = ["community", "street", "admin"];
  var RULES = {
    gap: "出现空隙", overhang: "超出社区边界", overlap: "网格重叠", not_connected: "网格不连通",
    grid_emptied: "网格被清空", building_stranded: "建筑无所属网格", building_multiple: "建筑属于多个网格",
    self_intersection: "边界自相交", invalid_geometry: "几何无效", vertex_not_found: "附近没有顶点",
    split_line_open: "分割线未穿过网格", split_line_self_intersecting: "分割线自相交",
    split_piece_too_small: "分割后碎片过小", merge_not_adjacent: "网格不相邻", merge_too_few: "至少合并两个网格",
    not_adjacent: "不相邻", stale_base: "所依据的版本已变化", microgrid_not_nested: "微网格未嵌套"
  };
  var SNAP_KINDS = { road: "道路", block: "街区边界", building: "建筑轮廓" };
  var ED = { me: null, community: null, base: {}, ops: [], selected: null, mergeSet: [], figures: null,
             draft: null, layer: null, issueLayer: null, loaded: false, busy: false, pending: [],
             picking: false, picked: [], bLayer: null, bLayers: {}, micro: null };
  window.shequEditor = ED;

  function $(id) { return document.getElementById(id); }
  function esc(v) {
    return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function api(method, url, body) {
    var opts = { method: method, headers: { "X-CSRF-Token": cookie("shequ_csrf") || "" } };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) { return { ok: r.ok, status: r.status, body: b }; });
    });
  }
  function status(text, bad) {
    var el = $("ed-status");
    el.textContent = text;
    el.className = bad ? "bad" : "";
    document.body.dataset.editorStatus = text;
  }
  function errorText(res) {
    var b = res.body || {}, d = b.detail || {};
    var rule = d.rule || b.error || "";
    return (RULES[rule] ? RULES[rule] + "：" : "") + (b.message || ("HTTP " + res.status));
  }

  // ---- the grids of one community, drawn on top (SVG, so Geoman can edit them) ----
  var svg = null;
  function styleOf(code) {
    var sel = code === ED.selected, merging = ED.mergeSet.indexOf(code) >= 0;
    return { color: sel ? "#d9480f" : (merging ? "#7048e8" : "#1c7ed6"), weight: sel ? 3 : 2,
             fillOpacity: merging ? 0.25 : 0.08, fillColor: merging ? "#7048e8" : "#1c7ed6" };
  }
  function view() {
    var out = {}, f = ED.figures;
    Object.keys(ED.base).forEach(function (c) { out[c] = ED.base[c]; });
    if (f) {
      (f.retired || []).forEach(function (c) { delete out[c]; });
      Object.keys(f.geometries || {}).forEach(function (c) { out[c] = f.geometries[c]; });
    }
    return out;
  }
  function draw() {
    var map = window.shequMap.map;
    if (ED.layer) { map.removeLayer(ED.layer); }
    svg = svg || L.svg({ padding: 0.5 });
    var geoms = view();
    ED.layer = L.layerGroup().addTo(map);
    ED.layers = {};
    Object.keys(geoms).sort().forEach(function (code) {
      var lyr = L.geoJSON({ type: "Feature", geometry: geoms[code], properties: { code: code } },
                          { renderer: svg, style: function () { return styleOf(code); }, pmIgnore: code !== ED.selected });
      lyr.eachLayer(function (poly) {
        poly.on("click", function (e) { L.DomEvent.stop(e); onGridClick(code, e.originalEvent); });
        poly.bindTooltip(ED.micro ? "微网格 " + code.slice(-2) : "网格 " + code.slice(-3), { sticky: true, direction: "top" });
        ED.layers[code] = poly;
      });
      lyr.addTo(ED.layer);
    });
    if (ED.selected && ED.layers[ED.selected] && !ED.picking) { enableVertexEditing(ED.layers[ED.selected]); }
    if (ED.picking && ED.bLayer) { ED.bLayer.bringToFront(); restyleBuildings(); }
    document.body.dataset.editorGrids = String(Object.keys(geoms).length);
  }

  // ---- buildings: click them (in 点选建筑 mode), then click the neighbouring grid they go to ----
  function bStyle(id) {
    var on = ED.picked.indexOf(id) >= 0;
    var moved = ED.figures && (ED.figures.moved_buildings || []).some(function (m) { return m.building === id; });
    if (on) { return { color: "#e8590c", weight: 2, fillColor: "#ff922b", fillOpacity: 0.8 }; }
    if (moved) { return { color: "#2b8a3e", weight: 2, fillColor: "#40c057", fillOpacity: 0.7 }; }
    return { color: "#5f3dc4", weight: 1, fillColor: "#9775fa", fillOpacity: 0.15 };
  }
  function restyleBuildings() {
    Object.keys(ED.bLayers).forEach(function (id) { ED.bLayers[id].setStyle(bStyle(Number(id))); });
    $("ed-picked").textContent = ED.picking ? (ED.picked.length ? "已选建筑 " + ED.picked.length +
      " 栋：点击要移入的相邻网格" : "点击建筑以选择（可多选），再点击目标网格") : "";
    document.body.dataset.editorPicked = ED.picked.join(",");
  }
  function loadBuildings() {
    if (ED.bLayer) { return Promise.resolve(); }
    var b = L.featureGroup(Object.values(ED.layers)).getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    return fetch("/collections/building/items?limit=10000&bbox=" + bbox).then(function (r) { return r.json(); })
      .then(function (fc) {
        ED.bLayers = {};
        ED.bLayer = L.geoJSON(fc, {
          renderer: svg, pmIgnore: true, style: function (f) { return bStyle(Number(f.id)); },
          onEachFeature: function (f, lyr) {
            var id = Number(f.id);
            ED.bLayers[id] = lyr;
            lyr.on("click", function (e) { L.DomEvent.stop(e); toggleBuilding(id); });
            lyr.bindTooltip("建筑 " + id + (f.properties && f.properties.households_est ? "（约 " +
                            f.properties.households_est + " 户）" : ""), { sticky: true, direction: "top" });
          }
        });
        document.body.dataset.editorBuildings = String(Object.keys(ED.bLayers).length);
      });
  }
  function toggleBuilding(id) {
    var i = ED.picked.indexOf(id);
    if (i >= 0) { ED.picked.splice(i, 1); } else { ED.picked.push(id); }
    restyleBuildings();
  }
  function setPicking(on) {
    var map = window.shequMap.map;
    ED.picking = on;
    ED.picked = [];
    $("ed-buildings").textContent = on ? "结束点选" : "点选建筑";
    if (!on) {
      if (ED.bLayer) { map.removeLayer(ED.bLayer); }
      draw();
      restyleBuildings();
      return Promise.resolve();
    }
    status("正在载入建筑…");
    return loadBuildings().then(function () {
      ED.bLayer.addTo(map);
      draw();
      restyleBuildings();
      status("点选建筑模式：点击建筑，再点击目标网格");
    });
  }
  function enableVertexEditing(poly) {
    poly.bringToFront();
    poly.pm.enable({ snappable: false, allowSelfIntersection: false, draggable: false, removeLayerBelowMinVertexCount: false });
    var from = null;
    poly.on("pm:markerdragstart", function (e) {
      var ll = e.markerEvent && e.markerEvent.target && e.markerEvent.target.getLatLng();
      from = ll ? [ll.lng, ll.lat] : null;
    });
    poly.on("pm:markerdragend", function (e) {
      var ll = e.markerEvent && e.markerEvent.target && e.markerEvent.target.getLatLng();
      if (!from || !ll) { return; }
      addOp({ op: "move_vertex", from: from, to: [ll.lng, ll.lat] });
      from = null;
    });
    poly.on("pm:vertexadded pm:vertexremoved", function () { preview(); });  // not an operation: redraw
  }
  function onGridClick(code, ev) {
    if (ED.picking) {
      if (!ED.picked.length) { status("请先点击要移动的建筑", true); return; }
      var ids = ED.picked.slice();
      ED.picked = [];
      restyleBuildings();
      addOp({ op: "move_buildings", buildings: ids, to: code });
      return;
    }
    if (ev && (ev.shiftKey || ev.ctrlKey || ev.metaKey || ED.merging)) {
      var i = ED.mergeSet.indexOf(code);
      if (i >= 0) { ED.mergeSet.splice(i, 1); } else { ED.mergeSet.push(code); }
      $("ed-merge").disabled = ED.mergeSet.length < 2;
    } else {
      ED.select(code);
      return;
    }
    draw();
    showSelection();
  }
  ED.select = function (code) {
    ED.selected = code;
    draw();
    showSelection();
  };
  function showSelection() {
    var what = ED.micro ? "微网格" : "网格";
    $("ed-selected").textContent = ED.selected ? "已选" + what + "：" + ED.selected + "（拖动顶点改边界）" : "点击地图上的" + what + "以选择";
    $("ed-split").disabled = !ED.selected;
    $("ed-history").disabled = !ED.selected;
    if (!ED.micro) { $("ed-micro").disabled = !ED.selected; }
    $("ed-merge-list").textContent = ED.mergeSet.length ? "合并：" + ED.mergeSet.map(function (c) { return c.slice(-3); }).join("、") : "";
    document.body.dataset.editorSelected = ED.selected || "";
  }

  // micro-grid level: the selected grid's micro-grids take the grids' place; every operation carries
  // level "microgrid" and the grid ("in"); 返回网格 goes back to the community's grids
  ED.loadMicro = function (grid) {
    return ED.load(ED.community, grid);
  };
  ED.load = function (community, micro) {
    ED.community = community;
    ED.micro = micro || null;
    ED.ops = []; ED.figures = null; ED.draft = null; ED.selected = null; ED.mergeSet = []; ED.loaded = false;
    if (ED.picking) { setPicking(false); }
    if (ED.bLayer) { window.shequMap.map.removeLayer(ED.bLayer); ED.bLayer = null; ED.bLayers = {}; }
    var url = ED.micro ? "/grids?level=microgrid&limit=500&parent=" + encodeURIComponent(ED.micro)
                       : "/grids?level=grid&limit=500&parent=" + encodeURIComponent(community);
    return fetch(url).then(function (r) { return r.json(); })
      .then(function (fc) {
        ED.base = {};
        (fc.features || []).forEach(function (f) { ED.base[f.properties.code] = f.geometry; });
        if (!Object.keys(ED.base).length) { status("该社区没有网格", true); return; }
        draw();
        window.shequMap.map.fitBounds(L.featureGroup(Object.values(ED.layers)).getBounds(), { animate: false });
        ED.loaded = true;
        document.body.dataset.editorLoaded = "1";
        $("ed-buildings").disabled = false;
        refreshButtons();
        showSelection();
        $("ed-micro").textContent = ED.micro ? "返回网格" : "编辑微网格";
        $("ed-micro").disabled = !ED.micro;
        document.body.dataset.editorLevel = ED.micro ? "microgrid:" + ED.micro : "grid";
        status("已载入 " + Object.keys(ED.base).length + (ED.micro ? " 个微网格（网格 " + ED.micro.slice(-3) + "）" : " 个网格"));
      });
  };

  function addOp(op) {
    if (ED.micro) { op.level = "microgrid"; op["in"] = ED.micro; }
    ED.ops.push(op);
    ED.draft = ED.draft && ED.draft.status === "draft" ? ED.draft : null;
    refreshButtons();
    return preview();
  }
  function preview() {
    if (!ED.ops.length) { ED.figures = null; draw(); renderFigures(); return Promise.resolve(); }
    ED.busy = true;
    document.body.dataset.editorBusy = "1";
    var body = { community_code: ED.community, operations: ED.ops, snap_m: Number($("ed-snap").value) };
    return api("POST", "/grid-edits/preview", body).then(function (res) {
      ED.busy = false;
      document.body.dataset.editorBusy = "";
      if (!res.ok) {
        ED.ops.pop();
        status("操作被拒绝：" + errorText(res), true);
        showIssue(res.body && res.body.detail && res.body.detail.geometry);
        draw();
        return;
      }
      ED.figures = res.body;
      ED.ops = res.body.operations || ED.ops;  // snapped points (each operation is snapped once)
      ED.snaps = res.body.snaps || [];
      document.body.dataset.editorSnaps = String(ED.snaps.length);
      if (ED.figures.retired && ED.figures.retired.indexOf(ED.selected) >= 0) { ED.selected = null; }
      draw();
      renderFigures();
      showIssue(null);
      if (!res.body.valid) {
        status("不满足规则：" + res.body.issues.map(function (i) { return RULES[i.rule] || i.rule; }).join("、"), true);
        showIssue(res.body.issues[0] && res.body.issues[0].geometry);
      } else {
        var snapped = ED.snaps.filter(function (x) { return x.op === ED.ops.length - 1; });
        status("预览已更新：" + ED.ops.length + " 个操作" + (snapped.length ? "（已吸附到" +
               snapped.map(function (x) { return SNAP_KINDS[x.kind] || x.kind; }).join("、") + "）" : ""));
      }
      refreshButtons();
    });
  }
  function showIssue(geom) {
    var map = window.shequMap.map;
    if (ED.issueLayer) { map.removeLayer(ED.issueLayer); ED.issueLayer = null; }
    if (geom) { ED.issueLayer = L.geoJSON(geom, { style: { color: "#e03131", weight: 3, fillOpacity: 0.35 } }).addTo(map); }
  }
  function renderFigures() {
    var f = ED.figures, el = $("ed-figures");
    $("ed-ops").textContent = "操作：" + ED.ops.length;
    if (!f) { el.innerHTML = ""; return; }
    var rows = f.grids.map(function (g) {
      return "<tr><td>" + esc(g.code.slice(ED.micro ? -2 : -3)) + (g.status === "new" ? "（新）" : "") + "</td><td>" + g.households +
        "</td><td class='" + (g.in_band ? "ok" : "bad") + "'>" + (g.in_band ? "是" : "否") + "</td><td>" +
        (g.compactness_before == null ? "" : g.compactness_before.toFixed(2) + "→") + g.compactness.toFixed(2) + "</td></tr>";
    }).join("");
    el.innerHTML = "<table class='ed-table'><tr><th>网格</th><th>户数</th><th>" + f.grids[0].band.join("–") +
      "</th><th>紧凑度</th></tr>" + rows + "</table><p>移动建筑 " + f.moved_buildings.length + " 栋（" +
      f.households_moved + " 户）；受影响的网格人员任职 " + (f.staff_affected || []).length + " 项" +
      (f.retired.length ? "；停用编码 " + esc(f.retired.join("、")) : "") + "</p>";
  }
  function refreshButtons() {
    $("ed-save").disabled = !ED.ops.length || !(ED.figures && ED.figures.valid);
    $("ed-submit").disabled = !(ED.draft && ED.draft.status === "draft");
    $("ed-undo").disabled = !ED.ops.length;
  }

  function save() {
    var body = { community_code: ED.community, operations: ED.ops, reason: $("ed-reason").value || "" };
    var req = ED.draft && ED.draft.status === "draft" ? api("PUT", "/grid-edits/" + ED.draft.id, body)
                                                      : api("POST", "/grid-edits", body);
    return req.then(function (res) {
      if (!res.ok) { status("保存失败：" + errorText(res), true); return; }
      ED.draft = res.body;
      document.body.dataset.editorDraft = String(res.body.id);
      status("草稿 #" + res.body.id + " 已保存");
      refreshButtons();
    });
  }
  function submit() {
    return api("POST", "/grid-edits/" + ED.draft.id + "/submit").then(function (res) {
      if (!res.ok) { status("提交失败：" + errorText(res), true); return; }
      ED.draft = res.body;
      document.body.dataset.editorSubmitted = String(res.body.id);
      status("编辑 #" + res.body.id + " 已提交，等待社区 / 街道审批");
      refreshButtons();
    });
  }
  function split() {
    var map = window.shequMap.map;
    status("在地图上画一条穿过所选网格的线，双击结束");
    map.pm.enableDraw("Line", { snappable: false, finishOn: "dblclick" });
    map.once("pm:create", function (e) {
      var line = e.layer.getLatLngs().map(function (ll) { return [ll.lng, ll.lat]; });
      map.removeLayer(e.layer);
      map.pm.disableDraw();
      addOp({ op: "split", grid: ED.selected, line: line });
    });
  }
  function merge() {
    var grids = ED.mergeSet.slice();
    ED.mergeSet = [];
    $("ed-merge").disabled = true;
    showSelection();
    return addOp({ op: "merge", grids: grids });
  }
  function undo() { ED.ops.pop(); refreshButtons(); return preview(); }

  // ---- history of a grid: its versions, and a diff drawn on the map (gained green, lost red) ----
  ED.history = function (code) {
    return api("GET", "/grids/" + encodeURIComponent(code) + "/history").then(function (res) {
      var el = $("ed-timeline");
      if (!res.ok) { el.textContent = errorText(res); return; }
      el.innerHTML = "<table class='ed-table'><tr><th>版本</th><th>起始</th><th>户数</th><th>修改人 / 理由</th><th></th></tr>" +
        res.body.versions.map(function (v) {
          var e = v.edit || {};
          return "<tr><td>" + v.version + "</td><td>" + esc((v.valid_from || "").slice(0, 16).replace("T", " ")) +
            "</td><td>" + v.households + "</td><td>" + esc(e.by ? e.by + "：" + (e.reason || "") : v.source) + "</td><td>" +
            (v.version > 1 ? "<button data-code='" + esc(code) + "' data-v='" + v.version + "'>差异</button>" : "") + "</td></tr>";
        }).join("") + "</table>" +
        (res.body.code_map.length ? "<p>编码映射：" + res.body.code_map.map(function (m) {
          return esc(m.old_code.slice(-3) + "→" + m.new_code.slice(-3) + "（" + m.kind + "）");
        }).join("、") + "</p>" : "");
      document.body.dataset.editorHistory = code + ":" + res.body.versions.length;
    });
  };
  ED.diff = function (code, v1, v2) {
    return api("GET", "/grids/" + encodeURIComponent(code) + "/diff?from=" + v1 + "&to=" + v2).then(function (res) {
      var map = window.shequMap.map;
      if (ED.diffLayer) { map.removeLayer(ED.diffLayer); }
      if (!res.ok) { status(errorText(res), true); return; }
      var d = res.body;
      ED.diffLayer = L.layerGroup().addTo(map);
      if (d.gained) { L.geoJSON(d.gained, { style: { color: "#2b8a3e", fillColor: "#2b8a3e", fillOpacity: 0.5 } }).addTo(ED.diffLayer); }
      if (d.lost) { L.geoJSON(d.lost, { style: { color: "#c92a2a", fillColor: "#c92a2a", fillOpacity: 0.5 } }).addTo(ED.diffLayer); }
      status("第 " + v1 + "→" + v2 + " 版：增加 " + d.area_gained_m2 + " m²，减少 " + d.area_lost_m2 + " m²；户数 " +
             d.households[0] + "→" + d.households[1] + "；建筑 +" + d.buildings_gained.length + " / −" + d.buildings_lost.length);
      document.body.dataset.editorDiff = code + ":" + v1 + ":" + v2;
    });
  };

  // ---- approvals (community / street staff, admins) ----
  ED.refreshPending = function () {
    return api("GET", "/grid-edits?status=submitted").then(function (res) {
      var ul = $("ed-pending");
      ED.pending = res.ok ? res.body.edits : [];
      ul.innerHTML = ED.pending.length ? "" : "<li>没有待审批的编辑</li>";
      ED.pending.forEach(function (e) {
        var li = document.createElement("li");
        li.innerHTML = "<b>#" + e.id + "</b> " + esc(e.community_code) + " 网格 " +
          esc((e.touched || []).map(function (c) { return c.slice(-3); }).join("、")) + "<br><small>" + esc(e.created_by) +
          "：" + esc(e.reason || "（无理由）") + "</small><br><input class='ed-why' placeholder='审批意见 / 驳回理由'>" +
          "<button class='ed-approve' data-id='" + e.id + "'>批准</button><button class='ed-reject' data-id='" + e.id + "'>驳回</button>" +
          "<button class='ed-show' data-id='" + e.id + "'>查看</button>";
        ul.appendChild(li);
      });
      document.body.dataset.editorPending = ED.pending.map(function (e) { return e.id; }).join(",");
    });
  };
  function decide(id, verb, reason) {
    return api("POST", "/grid-edits/" + id + "/" + verb, { reason: reason }).then(function (res) {
      if (!res.ok) { status((verb === "approve" ? "批准" : "驳回") + "失败：" + errorText(res), true); return; }
      status("编辑 #" + id + (verb === "approve" ? " 已批准，新版本已生效" : " 已驳回"));
      document.body.dataset.editorDecided = id + ":" + res.body.status;
      Object.keys(window.shequMap.layers || {}).forEach(function (k) {
        var l = window.shequMap.layers[k];
        if (l && l.redraw) { l.redraw(); }
      });
      ED.refreshPending();
      if (ED.community) { ED.load(ED.community); }
    });
  }
  function onPendingClick(ev) {
    var t = ev.target, id = t.dataset && t.dataset.id;
    if (!id) { return; }
    var why = t.parentNode.querySelector(".ed-why").value;
    if (t.classList.contains("ed-approve")) { decide(id, "approve", why); }
    if (t.classList.contains("ed-reject")) {
      if (!why.trim()) { status("驳回须填写理由", true); return; }
      decide(id, "reject", why);
    }
    if (t.classList.contains("ed-show")) {
      var e = ED.pending.filter(function (x) { return String(x.id) === id; })[0];
      if (!e) { return; }
      var op0 = e.operations[0] || {};
      ED.load(e.community_code, op0.level === "microgrid" ? op0["in"] : null).then(function () {
        ED.ops = e.operations.slice();
        return preview();
      });
    }
  }

  // ---- police-station areas (admins): draw a polygon, saved through POST /police-areas ----
  function drawPoliceArea() {
    var code = $("ed-pa-code").value.trim(), name = $("ed-pa-name").value.trim(), map = window.shequMap.map;
    if (!code || !name) { status("请填写辖区代码与派出所名称", true); return; }
    status("在地图上逐点画出辖区范围，点击起点结束");
    map.pm.enableDraw("Polygon", { snappable: false });
    map.once("pm:create", function (e) {
      var gj = e.layer.toGeoJSON();
      map.removeLayer(e.layer);
      map.pm.disableDraw();
      gj.properties = { code: code, name: name };
      api("POST", "/police-areas", { type: "FeatureCollection", features: [gj] }).then(function (res) {
        if (!res.ok) { status("保存辖区失败：" + errorText(res), true); return; }
        L.geoJSON(gj, { style: { color: "#1864ab", weight: 2, dashArray: "6 4", fillOpacity: 0.1 } }).addTo(map);
        status("派出所辖区 " + code + "（" + name + "）已保存");
        document.body.dataset.editorPolice = code;
      });
    });
  }

  // ---- reshape a stored police-station area (admins): load it by code, drag its vertices, save (PUT) ----
  var PA = { layer: null, code: null, version: null };
  window.shequEditor.police = PA;
  function loadPoliceArea() {
    var code = $("ed-pa-code").value.trim(), map = window.shequMap.map;
    if (!code) { status("请填写辖区代码", true); return; }
    api("GET", "/police-areas/" + encodeURIComponent(code)).then(function (res) {
      if (!res.ok) { status("载入辖区失败：" + errorText(res), true); return; }
      if (PA.layer) { map.removeLayer(PA.layer); }
      svg = svg || L.svg({ padding: 0.5 });
      PA.layer = L.geoJSON(res.body, { renderer: svg, style: { color: "#1864ab", weight: 3, fillOpacity: 0.12 } })
        .getLayers()[0].addTo(map);
      PA.code = code;
      PA.version = res.body.properties.version;
      $("ed-pa-name").value = res.body.properties.name;
      map.fitBounds(PA.layer.getBounds(), { animate: false, padding: [30, 30] });
      PA.layer.pm.enable({ snappable: false, allowSelfIntersection: false });
      $("ed-pa-save").disabled = false;
      status("辖区 " + code + " 已载入（第 " + PA.version + " 版）：拖动顶点修改形状后保存");
      document.body.dataset.editorPoliceLoaded = code + ":" + PA.version;
    });
  }
  function savePoliceArea() {
    if (!PA.layer) { return; }
    var geometry = PA.layer.toGeoJSON().geometry;
    api("PUT", "/police-areas/" + encodeURIComponent(PA.code), { geometry: geometry, base_version: PA.version })
      .then(function (res) {
        if (!res.ok) {
          status((res.status === 412 ? "辖区已被他人修改，请重新载入：" : "保存辖区失败：") + errorText(res), true);
          return;
        }
        PA.version = res.body.properties.version;
        status("派出所辖区 " + PA.code + " 的新范围已保存（第 " + PA.version + " 版）");
        document.body.dataset.editorPoliceSaved = PA.code + ":" + PA.version;
      });
  }

  // ---- the panel ----
  function buildPanel(me) {
    var panel = document.createElement("section");
    panel.id = "editor-panel";
    panel.hidden = true;
    panel.setAttribute("aria-label", "网格编辑");
    panel.innerHTML =
      "<header><h3>网格编辑</h3><button id='ed-close' type='button' aria-label='关闭'>×</button></header>" +
      "<div class='ed-row'><input id='ed-community' placeholder='社区编码（12 位）' inputmode='numeric'>" +
      "<button id='ed-load' type='button'>载入网格</button></div>" +
      "<p id='ed-selected'>点击地图上的网格以选择</p>" +
      "<div class='ed-row'><button id='ed-split' type='button' disabled>画线分割</button>" +
      "<button id='ed-merge' type='button' disabled title='按住 Shift 点击网格以加入合并'>合并所选</button>" +
      "<button id='ed-undo' type='button' disabled>撤销</button>" +
      "<button id='ed-history' type='button' disabled>历史与差异</button>" +
      "<button id='ed-micro' type='button' disabled title='在所选网格内编辑其微网格'>编辑微网格</button></div><p id='ed-merge-list'></p>" +
      "<div class='ed-row'><button id='ed-buildings' type='button' disabled>点选建筑</button>" +
      "<label for='ed-snap'>吸附</label><select id='ed-snap' title='拖动的顶点与分割线吸附到道路、街区边界、建筑轮廓'>" +
      "<option value='0'>不吸附</option><option value='1'>1 米</option><option value='2' selected>2 米</option>" +
      "<option value='5'>5 米</option><option value='10'>10 米</option></select></div><p id='ed-picked'></p>" +
      "<div id='ed-timeline'></div>" +
      "<p id='ed-ops'>操作：0</p><div id='ed-figures'></div>" +
      "<input id='ed-reason' placeholder='编辑理由（如：按新建小区调整边界）'>" +
      "<div class='ed-row'><button id='ed-save' type='button' disabled>保存草稿</button>" +
      "<button id='ed-submit' type='button' disabled>提交审批</button></div>" +
      "<p id='ed-status' role='status'></p>" +
      "<div id='ed-review' hidden><h4>待审批的编辑</h4><ul id='ed-pending'></ul></div>" +
      "<div id='ed-police' hidden><h4>派出所辖区（管理员）</h4><div class='ed-row'>" +
      "<input id='ed-pa-code' placeholder='辖区代码'><input id='ed-pa-name' placeholder='派出所名称'></div>" +
      "<button id='ed-pa-draw' type='button'>绘制辖区</button>" +
      "<button id='ed-pa-load' type='button' title='按代码载入已有辖区，拖动顶点修改其范围'>载入辖区</button>" +
      "<button id='ed-pa-save' type='button' disabled>保存辖区范围</button></div>";
    document.body.appendChild(panel);
    var grid = (me.jurisdictions || []).filter(function (j) { return j.kind === "grid"; })[0];
    var comm = (me.jurisdictions || []).filter(function (j) { return j.kind === "community"; })[0];
    $("ed-community").value = comm ? comm.code : (grid ? grid.code.slice(0, 12) : "");
    $("ed-close").onclick = function () { panel.hidden = true; };
    $("ed-load").onclick = function () { ED.load($("ed-community").value.trim()); };
    $("ed-split").onclick = split;
    $("ed-merge").onclick = merge;
    $("ed-undo").onclick = undo;
    $("ed-history").onclick = function () { ED.history(ED.selected); };
    $("ed-buildings").onclick = function () { if (ED.loaded) { setPicking(!ED.picking); } };
    $("ed-micro").onclick = function () {
      if (ED.micro) { ED.load(ED.community); } else if (ED.selected) { ED.loadMicro(ED.selected); }
    };
    $("ed-timeline").addEventListener("click", function (ev) {
      var v = ev.target.dataset && ev.target.dataset.v;
      if (v) { ED.diff(ev.target.dataset.code, Number(v) - 1, Number(v)); }
    });
    $("ed-save").onclick = save;
    $("ed-submit").onclick = submit;
    $("ed-pending").addEventListener("click", onPendingClick);
    if (REVIEW_ROLES.indexOf(me.role) >= 0) { $("ed-review").hidden = false; }
    if (me.role === "admin") { $("ed-police").hidden = false; $("ed-pa-draw").onclick = drawPoliceArea;
      $("ed-pa-load").onclick = loadPoliceArea; $("ed-pa-save").onclick = savePoliceArea; }
  }
  function addButton() {
    var Ctl = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var b = L.DomUtil.create("button", "ed-open");
        b.id = "ed-open";
        b.type = "button";
        b.textContent = "网格编辑";
        L.DomEvent.disableClickPropagation(b);
        b.onclick = function () {
          var p = $("editor-panel");
          p.hidden = !p.hidden;
          if (!p.hidden && $("ed-review").hidden === false) { ED.refreshPending(); }
        };
        return b;
      }
    });
    new Ctl().addTo(window.shequMap.map);
  }

  function start(me) {
    ED.me = me;
    if (!me || EDIT_ROLES.indexOf(me.role) < 0 || !window.L || !L.PM) { return; }
    buildPanel(me);
    addButton();
    window.shequMap.map.pm.setLang("zh");
    document.body.dataset.editor = "1";
  }
  function whenReady(fn) {
    if (window.shequMap && window.shequMap.ready) { fn(); return; }
    setTimeout(function () { whenReady(fn); }, 100);
  }
  whenReady(function () {
    fetch("/auth/me").then(function (r) { return r.json(); }).then(start).catch(function () {});
  });
})();
