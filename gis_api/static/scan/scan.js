// The plate scan page: reads /plates/{code}?c=… and shows the address, its grid and whom to contact.
// Every value is written with textContent (never as HTML). window.scanPage.ready is set once rendered.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var parts = location.pathname.split("/");
  var code = decodeURIComponent(parts[parts.length - 1] || "");
  var check = new URLSearchParams(location.search).get("c") || "";
  var state = (window.scanPage = { ready: false, data: null, error: null,
                                   staff: { ready: false, denied: false, people: 0, units: 0, reports: 0 } });
  var STAFF_ROLES = ["admin", "street", "community", "grid_manager", "police"];

  function show(id, on) { $(id).hidden = !on; }
  function text(id, value) { $(id).textContent = value == null || value === "" ? "—" : value; }
  function unit(u) { return u ? (u.name || u.code) : "—"; }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function fail(title, message) {
    show("loading", false);
    text("error-title", title);
    text("error-text", message);
    show("error", true);
    state.error = message;
    state.ready = true;
  }

  function contactItem(role, name, phone, extra) {
    var li = document.createElement("li");
    var r = document.createElement("span"); r.className = "role"; r.textContent = role; li.appendChild(r);
    var n = document.createElement("span"); n.className = "name"; n.textContent = name || "—"; li.appendChild(n);
    if (extra) { var e = document.createElement("span"); e.className = "hint"; e.textContent = extra; li.appendChild(e); }
    if (phone) {
      var clear = phone.indexOf("*") < 0;
      var p = document.createElement(clear ? "a" : "span");
      p.className = "phone"; p.textContent = phone;
      if (clear) p.href = "tel:" + phone.replace(/[^\d+]/g, "");
      li.appendChild(p);
    }
    return li;
  }

  function render(d) {
    text("level", d.level_title);
    text("short", d.short || d.formatted);
    text("formatted", d.formatted);
    text("code", d.code);
    text("township", unit(d.township));
    text("community", unit(d.community));
    text("grid", unit(d.grid));
    text("microgrid", unit(d.microgrid));
    var list = $("contact-list");
    list.textContent = "";
    var c = d.contacts || { grid_staff: [], police: [] };
    c.grid_staff.forEach(function (s) {
      list.appendChild(contactItem(s.role, s.person_ref, null, s.grid_code === (d.microgrid || {}).code ? "微网格" : ""));
    });
    c.police.forEach(function (p) {
      list.appendChild(contactItem(p.role, p.name, p.phone, p.police_area_name));
    });
    if (!list.children.length) {
      var li = document.createElement("li"); li.className = "none";
      li.textContent = "暂无登记的网格员或社区民警，请联系所在社区居委会。";
      list.appendChild(li);
    }
    show("masked-note", !!c.masked && list.querySelector(".role") !== null);
    if (d.user) { $("who").textContent = (d.user.display_name || d.user.name) + " · " + d.user.role_title; show("who", true); }
    ["address", "area", "contacts", "report"].forEach(function (id) { show(id, true); });
    var places = $("place-list"); places.textContent = "";
    (d.key_places || []).forEach(function (k) {
      var li = document.createElement("li");
      var n = document.createElement("span"); n.className = "main"; n.textContent = k.name; li.appendChild(n);
      var s = document.createElement("span"); s.className = "sub"; s.textContent = k.category_name + " · 约 " + Math.round(k.distance_m) + " 米";
      li.appendChild(s); places.appendChild(li);
    });
    show("places", places.children.length > 0);
    if (d.user && STAFF_ROLES.indexOf(d.user.role) >= 0) loadStaff();
    else if (!d.user) show("login", true);
    show("loading", false);
    document.title = (d.short || d.formatted) + " · 社区门牌";
  }

  function load() {
    fetch("/plates/" + encodeURIComponent(code) + "?c=" + encodeURIComponent(check),
          { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) { return { res: res, body: body }; });
      })
      .then(function (x) {
        if (x.res.ok) { state.data = x.body; render(x.body); state.ready = true; return; }
        if (x.res.status === 400) return fail("门牌无法核验", "该二维码门牌未能通过校验，可能是伪造、损坏或输入有误的门牌。");
        if (x.res.status === 404) return fail("地址不存在或已注销", "标准地址 " + code + " 不存在或已注销。");
        if (x.res.status === 401) return fail("请先登录", "户室级门牌仅限工作人员查看，请登录后再扫码。");
        fail("暂时无法读取", (x.body && x.body.message) || "服务暂时不可用，请稍后再试。");
      })
      .catch(function () { fail("网络错误", "无法连接服务器，请检查网络后重试。"); });
  }

  $("report-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var btn = $("report-btn");
    btn.disabled = true;
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    var csrf = cookie("shequ_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
    var note = $("report-note").value.trim();
    fetch("/plates/" + encodeURIComponent(code) + "/reports", {
      method: "POST", credentials: "same-origin", headers: headers,
      body: JSON.stringify({ c: check, kind: $("report-kind").value, note: note || null })
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        var out = $("report-result");
        out.textContent = res.ok ? "已提交（编号 " + body.id + "），社区将核实处理，感谢反馈。"
          : res.status === 429 ? "提交过于频繁，请稍后再试。" : "提交失败：" + (body.message || res.status);
        out.hidden = false;
        btn.disabled = res.ok;
      });
    }).catch(function () {
      $("report-result").textContent = "网络错误，未能提交。"; $("report-result").hidden = false; btn.disabled = false;
    });
  });

  // ---- staff: the three 实 at the address (masked by role by the API), add / correct, plate reports ----

  function api(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var csrf = cookie("shequ_csrf");
    if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
    return fetch(url, { method: method, credentials: "same-origin", headers: headers,
                        body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (b) { return { ok: res.ok, status: res.status, body: b }; });
      });
  }
  function el(tag, cls, value) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (value != null) e.textContent = value;
    return e;
  }
  function say(id, ok, message) { var o = $(id); o.textContent = message; o.className = "hint result " + (ok ? "ok" : "bad"); o.hidden = false; }
  function formData(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (f) { if (f.name && f.value.trim() !== "") out[f.name] = f.value.trim(); });
    return out;
  }
  function why(x) { return (x.body && x.body.message) || ("错误 " + x.status); }
  var base = "/residents/addresses/" + encodeURIComponent(code);
  var house = null;

  function personItem(p) {
    var li = el("li");
    li.appendChild(el("span", "main", p.name));
    var btn = el("button", "act", "更正"); btn.type = "button"; li.appendChild(btn);
    var sub = [p.registration, p.id_number ? "证件 " + p.id_number : "", p.phone ? "电话 " + p.phone : "",
               p.key_groups ? "重点人群 " + p.key_groups.join("、") : "",
               p.residence && p.residence.address_code !== code ? "住址 " + p.residence.address_code : ""];
    li.appendChild(el("span", "sub", sub.filter(Boolean).join(" · ")));
    btn.addEventListener("click", function () {
      if (li.querySelector("form")) return;
      var f = el("form", "form");
      f.innerHTML = '<label>姓名</label><input name="name" maxlength="200"><label>电话</label><input name="phone" type="tel" maxlength="20">' +
        '<button type="submit" class="primary">保存更正</button><p class="hint result" hidden></p>';
      if (p.name && p.name.indexOf("*") < 0) f.elements.name.value = p.name;
      if (p.phone && p.phone.indexOf("*") < 0) f.elements.phone.value = p.phone;
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var body = formData(f); body.version = p.version;
        api("PATCH", "/residents/people/" + p.id, body).then(function (x) {
          var out = f.querySelector(".result"); out.hidden = false;
          out.textContent = x.ok ? "已更正（版本 " + x.body.version + "）" : "未保存：" + why(x);
          out.className = "hint result " + (x.ok ? "ok" : "bad");
          if (x.ok) loadPeople();
        });
      });
      li.appendChild(f);
    });
    return li;
  }

  function loadPeople() {
    return api("GET", base + "/people?below=true&limit=200").then(function (x) {
      if (x.status === 403) { deny(); return; }
      var list = $("people-list"); list.textContent = "";
      var people = x.ok ? x.body.people : [];
      people.forEach(function (p) { list.appendChild(personItem(p)); });
      if (!people.length) list.appendChild(el("li", "sub", x.ok ? "暂无登记人员" : "无法读取：" + why(x)));
      $("people-count").textContent = people.length; state.staff.people = people.length;
    });
  }
  function loadHouse() {
    return api("GET", base + "/house").then(function (x) {
      house = x.ok ? x.body.house : null;
      var h = house;
      $("house-info").textContent = h ? ["用途 " + h.use, h.floor_area ? h.floor_area + " ㎡" : "",
        h.tenant_count != null ? "租住 " + h.tenant_count + " 人" : "", "版本 " + h.version].filter(Boolean).join(" · ")
        : (x.ok ? "尚未登记房屋信息" : "该层级地址不登记房屋信息");
      if (h) $("hf-use").value = h.use;
    });
  }
  function loadUnits() {
    return api("GET", base + "/units").then(function (x) {
      var list = $("unit-list"); list.textContent = "";
      var units = x.ok ? x.body.units : [];
      units.forEach(function (u) {
        var li = el("li"); li.appendChild(el("span", "main", u.name));
        li.appendChild(el("span", "sub", [u.kind, u.credit_code ? "信用代码 " + u.credit_code : "无信用代码",
          u.contact_phone ? "电话 " + u.contact_phone : ""].filter(Boolean).join(" · ")));
        list.appendChild(li);
      });
      if (!units.length) list.appendChild(el("li", "sub", "暂无登记单位"));
      $("units-count").textContent = units.length; state.staff.units = units.length;
    });
  }
  function reportItem(r) {
    var li = el("li");
    li.appendChild(el("span", "main", r.kind_title));
    li.appendChild(el("span", "count", { open: "待处理", confirmed: "已确认", corrected: "已更正", dismissed: "已驳回" }[r.state] || r.state));
    li.appendChild(el("span", "sub", [r.note || "", "报告于 " + (r.created_at || "").slice(0, 16).replace("T", " "),
      r.state_reason ? "处理说明 " + r.state_reason : ""].filter(Boolean).join(" · ")));
    if (r.state === "open") {
      var f = el("form", "form");
      f.innerHTML = '<input name="reason" maxlength="500" placeholder="处理说明（驳回必填）">' +
        '<button type="submit" class="primary" value="corrected">已更正，关闭</button>' +
        '<button type="submit" value="dismissed">驳回</button><p class="hint result" hidden></p>';
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var to = ev.submitter ? ev.submitter.value : "corrected";
        api("POST", "/plate-reports/" + r.id + "/state", { state: to, reason: f.elements.reason.value.trim() || null })
          .then(function (x) {
            var out = f.querySelector(".result"); out.hidden = false;
            out.textContent = x.ok ? "已处理" : "未处理：" + why(x); out.className = "hint result " + (x.ok ? "ok" : "bad");
            if (x.ok) loadReports();
          });
      });
      li.appendChild(f);
    }
    return li;
  }
  function loadReports() {
    return api("GET", "/plate-reports?address_code=" + encodeURIComponent(code)).then(function (x) {
      if (!x.ok) return;
      var list = $("staff-report-list"); list.textContent = "";
      x.body.reports.forEach(function (r) { list.appendChild(reportItem(r)); });
      if (!x.body.reports.length) list.appendChild(el("li", "sub", "暂无报告"));
      state.staff.reports = x.body.reports.filter(function (r) { return r.state === "open"; }).length;
      show("staff-reports", true);
    });
  }
  function deny() { state.staff.denied = true; show("staff-denied", true); show("staff-body", false); }

  function loadStaff() {
    show("staff", true);
    $("staff-note").textContent = "仅工作人员可见，个人信息按角色脱敏";
    show("staff-body", true);
    Promise.all([loadPeople(), loadHouse(), loadUnits(), loadReports()])
      .catch(function () { state.staff.error = "network"; })
      .then(function () { state.staff.ready = true; });
  }

  function submitter(formId, resultId, method, url, build, after) {
    $(formId).addEventListener("submit", function (ev) {
      ev.preventDefault();
      api(method, url(), build(formData($(formId)))).then(function (x) {
        say(resultId, x.ok, x.ok ? "已保存" : "未保存：" + why(x));
        if (x.ok) { $(formId).reset(); after(); }
      });
    });
  }
  submitter("person-form", "pf-result", "POST", function () { return base + "/people"; },
            function (b) { return b; }, loadPeople);
  submitter("unit-form", "uf-result", "POST", function () { return base + "/units"; },
            function (b) { return b; }, loadUnits);
  submitter("house-form", "hf-result", "PUT", function () { return base + "/house"; }, function (b) {
    if (b.floor_area) b.floor_area = Number(b.floor_area);
    if (b.tenant_count) b.tenant_count = Number(b.tenant_count);
    b.version = house ? house.version : 0;
    return b;
  }, loadHouse);

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/auth/login", { username: $("login-user").value, password: $("login-password").value })
      .then(function (x) {
        if (x.ok) { location.reload(); return; }
        say("login-error", false, "登录失败：" + why(x));
      });
  });

  load();
})();
