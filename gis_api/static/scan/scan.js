// The plate scan page: reads /plates/{code}?c=… and shows the address, its grid and whom to contact.
// Every value is written with textContent (never as HTML). window.scanPage.ready is set once rendered.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var parts = location.pathname.split("/");
  var code = decodeURIComponent(parts[parts.length - 1] || "");
  var check = new URLSearchParams(location.search).get("c") || "";
  var state = (window.scanPage = { ready: false, data: null, error: null });

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

  load();
})();
