/* Side panel of the zoning map: popups, search, click/typed-coordinate checks, site checks.
 *
 * No coordinate maths here: a typed coordinate goes to the API with its CRS, and the
 * marker is placed at the WGS84 point the API sends back. Clicked points are already
 * WGS84 (the map's own coordinates).
 */
(function () {
  "use strict";

  var T = {
    zh: {
      loading: "查询中…", inside: "位于以下分区内", none: "不在任何分区内",
      nearby: "附近的分区边界", point: "查询点", input: "输入", showOnMap: "在地图上显示",
      site: "地块查询", siteArea: "地块面积", overlap: "重叠面积", shareOfSite: "占地块",
      shareOfZone: "占分区", noOverlap: "地块不与任何分区重叠", error: "查询失败",
      network: "无法连接查询服务", badNumber: "请输入数字形式的经度和纬度",
      standalone: "离线导出文件没有查询服务：请用 zoning serve 打开地图进行点位和地块查询。",
      layer: "图层", kind: "类型", district: "所属区", document: "依据文件", article: "条款",
      issuer: "发布机关", dates: "日期", issued: "发布", effective: "施行", until: "废止",
      inForce: "现行有效", area: "面积", stated: "文件所述", computed: "计算", accuracy: "边界精度",
      method: "方法", parent: "上级分区", rules: "管控规定", notes: "备注", dataVersion: "数据版本",
      noMatch: "没有匹配的分区", km2: "平方公里", distance: "距离", id: "编号", link: "链接", sep: "；",
      notDigitised: "本区另有未能绘制的分区（无法判断是否位于其中）",
      verdicts: "能否在此进行", prohibited: "禁止", restricted: "有条件限制", unknown: "无法判断",
      no_rule_found: "未发现规定（不等于允许）", atLeast: "至少", deciding: "依据", undrawn: "未绘制、可能作出规定的分区",
      sharedWith: "同一范围的其他分区", nearBoundary: "距近似边界较近", whatToDo: "怎么办",
      legendActivity: "所选活动", legendUnknown: "所在区有未绘制的分区可能作出规定"
    },
    en: {
      loading: "Checking…", inside: "Inside these zones", none: "Not inside any zone",
      nearby: "Nearest zone boundaries", point: "Point", input: "input", showOnMap: "Show on map",
      site: "Site check", siteArea: "Site area", overlap: "Overlap", shareOfSite: "of site",
      shareOfZone: "of zone", noOverlap: "The site overlaps no zone", error: "Check failed",
      network: "Cannot reach the lookup service", badNumber: "Enter longitude and latitude as numbers",
      standalone: "This offline export has no lookup service: open the map with zoning serve to check points and sites.",
      layer: "Layer", kind: "Kind", district: "District", document: "Document", article: "Article",
      issuer: "Issuer", dates: "Dates", issued: "issued", effective: "in force from", until: "repealed",
      inForce: "in force", area: "Area", stated: "stated", computed: "computed", accuracy: "Accuracy",
      method: "Method", parent: "Parent zone", rules: "Rules", notes: "Notes", dataVersion: "data version",
      noMatch: "No matching zone", km2: "km²", distance: "distance", id: "Zone id", link: "link", sep: "; ",
      notDigitised: "Zones of this district that could not be drawn (no answer for them)",
      verdicts: "May this be done here?", prohibited: "Prohibited", restricted: "Restricted", unknown: "Unknown",
      no_rule_found: "No rule found (not a permission)", atLeast: "at least", deciding: "Under",
      undrawn: "Zones not drawn that could rule on it", sharedWith: "Other zones with the same extent",
      nearBoundary: "near an approximate boundary", whatToDo: "What to do",
      legendActivity: "Selected activity", legendUnknown: "District with undrawn zones that could rule on it"
    }
  };

  // Leaflet.draw reads its labels when its toolbar is built, before init() runs.
  if (window.L && L.drawLocal && document.documentElement.lang.indexOf("zh") === 0) {
    var d = L.drawLocal.draw, e = L.drawLocal.edit;
    d.toolbar.actions = { title: "取消绘制", text: "取消" };
    d.toolbar.finish = { title: "完成绘制", text: "完成" };
    d.toolbar.undo = { title: "删除最后一个点", text: "撤销" };
    d.toolbar.buttons.polygon = "画多边形地块并查询";
    d.toolbar.buttons.rectangle = "画矩形地块并查询";
    d.handlers.polygon.tooltip = { start: "点击开始绘制", cont: "点击继续绘制", end: "点击第一个点结束" };
    d.handlers.rectangle.tooltip.start = "按住并拖动绘制矩形";
    d.handlers.simpleshape.tooltip.end = "松开鼠标完成绘制";
    e.toolbar.actions.save = { title: "保存修改", text: "保存" };
    e.toolbar.actions.cancel = { title: "放弃修改", text: "取消" };
    e.toolbar.actions.clearAll = { title: "清除全部地块", text: "全部清除" };
    e.toolbar.buttons = { edit: "编辑地块", editDisabled: "没有可编辑的地块", remove: "删除地块", removeDisabled: "没有可删除的地块" };
  }

  var S = { map: null, cfg: null, overlays: {}, byId: {}, entries: [], marker: null, seq: 0, tool: false,
            activity: null, hatch: null, last: null, searchSeq: 0, effects: {}, effectsSeq: 0,
            tileTip: null, tileTipZone: null };

  function t(key) { return (T[S.cfg.lang] || T.zh)[key] || key; }
  function esc(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function has(value) { return value !== null && value !== undefined && value !== ""; }
  function layerTitle(id) {
    var spec = S.cfg.layers[id];
    return spec ? spec[S.cfg.lang] : (id || "");
  }
  function layerColor(id) { var spec = S.cfg.layers[id]; return spec ? spec.color : "#888"; }
  function accuracyText(key) {
    var spec = S.cfg.accuracy[key];
    return spec ? spec[S.cfg.lang] : (key || "");
  }
  function names(p) {
    return "<b>" + esc(p.name_zh) + "</b>" + (has(p.name_en) ? "<br><span class=\"zp-sub\">" + esc(p.name_en) + "</span>" : "");
  }
  function km2(value) { return has(value) ? Number(value).toLocaleString(undefined, { maximumFractionDigits: 3 }) + " " + t("km2") : "—"; }
  function metres(value) {
    if (!has(value)) return "";
    return value >= 1000 ? (value / 1000).toFixed(value >= 10000 ? 1 : 2) + " km" : Math.round(value) + " m";
  }
  function area(m2) {
    if (!has(m2)) return "—";
    return m2 >= 1e6 ? (m2 / 1e6).toFixed(3) + " " + t("km2") : Math.round(m2).toLocaleString() + " m²";
  }
  function percent(share) { return has(share) ? (share * 100).toFixed(share < 0.01 ? 2 : 1) + "%" : "—"; }
  function ruleText(rule) {
    if (S.cfg.lang === "en" && has(rule.text_en)) {
      return esc(rule.text_en) + (has(rule.text_zh) ? "<br><span class=\"zp-sub\">" + esc(rule.text_zh) + "</span>" : "");
    }
    return esc(rule.text_zh || rule.text_en || rule.code);
  }
  function row(label, html) { return html ? "<tr><th>" + esc(t(label)) + "</th><td>" + html + "</td></tr>" : ""; }

  function popupHtml(p) {
    var doc = [p.source_doc_no, has(p.source_title) ? "《" + p.source_title + "》" : ""].filter(has).map(esc).join(" ");
    var dates = [
      has(p.issued_on) ? t("issued") + " " + esc(p.issued_on) : "",
      has(p.effective_from) ? t("effective") + " " + esc(p.effective_from) : "",
      has(p.effective_to) ? t("until") + " " + esc(p.effective_to) : t("inForce")
    ].filter(has).join(t("sep"));
    var parent = "";
    if (has(p.parent_id)) {
      var pe = S.byId[p.parent_id];
      parent = "<a data-zone=\"" + esc(p.parent_id) + "\">" + esc(pe ? pe.props.name_zh : p.parent_id) + "</a>";
    }
    var rules = (p.rules || []).map(function (r) { return "<li>" + ruleText(r) + "</li>"; }).join("");
    var shared = (p.shared_with || []).map(function (id) {
      var other = S.byId[id];
      return "<li><a data-zone=\"" + esc(id) + "\">" + esc(other ? zoneName(other.props) : id) + "</a>" +
        (other ? " <span class=\"zp-sub\">" + esc(layerTitle(other.props.layer)) + "</span>" : "") + "</li>";
    }).join("");
    return "<div class=\"zp-popup\" data-zone-id=\"" + esc(p.zone_id) + "\"><h3>" + esc(p.name_zh) + "</h3>" +
      (has(p.name_en) ? "<div class=\"zp-sub\">" + esc(p.name_en) + "</div>" : "") +
      "<table class=\"zp-table\">" +
      row("id", "<code>" + esc(p.zone_id) + "</code>" + (S.cfg.api ? " <a href=\"?" +
        esc(new URLSearchParams({ zone: p.zone_id, lang: S.cfg.lang }).toString()) + "\">" + esc(t("link")) + "</a>" : "")) +
      row("layer", esc(layerTitle(p.layer)) + (has(p.kind) ? " · " + esc(p.kind) : "")) +
      row("district", esc(p.district_name)) +
      row("document", doc) +
      row("article", esc(p.source_article)) +
      row("issuer", esc(p.issuer)) +
      row("dates", dates) +
      row("area", t("stated") + " " + km2(p.stated_area_km2) + t("sep") + t("computed") + " " + km2(p.area_km2)) +
      row("accuracy", "<span class=\"zp-badge " + esc(p.accuracy) + "\">" + esc(accuracyText(p.accuracy)) + "</span>") +
      row("method", esc(p.method)) +
      row("parent", parent) +
      row("notes", esc(p.notes)) +
      "</table>" + (rules ? "<b>" + esc(t("rules")) + "</b><ul>" + rules + "</ul>" : "") +
      (shared ? "<b>" + esc(t("sharedWith")) + "</b><ul class=\"zp-shared\">" + shared + "</ul>" : "") + "</div>";
  }
  /* A zone of an API answer (source nested) in the flat shape popupHtml reads. */
  function flatZone(z) {
    var s = z.source || {}, p = {};
    Object.keys(z).forEach(function (k) { p[k] = z[k]; });
    p.source_doc_no = s.doc_no; p.source_title = s.title; p.source_article = s.article; p.issuer = s.issuer;
    p.issued_on = s.issued_on; p.effective_from = s.effective_from; p.effective_to = s.effective_to;
    return p;
  }

  /* Tile mode: the page has no zones, so the clicked point's popup is built from the check answer. */
  function answerPopup(body, wgs) {
    var inside = body.inside || [];
    if (!S.cfg.tiled || !wgs || !inside.length) return;
    var html = inside.map(function (z) { return popupHtml(flatZone(z)); }).join("<hr>") + disclaimer(body);
    L.popup({ maxWidth: 380, maxHeight: 420, className: "zoning-answer-popup" })
      .setLatLng([wgs[1], wgs[0]]).setContent(html).openOn(S.map);
  }

  function zoneName(p) { return S.cfg.lang === "en" && has(p.name_en) ? p.name_en : p.name_zh; }

  /* Hover text of a zone, inline or from a tile's properties: its names, its layer and, when
     the zone is not official, its accuracy in words (a zone drawn from text never looks official). */
  function tooltipHtml(p) {
    return names(p) + "<br><span class=\"zp-tt-layer\">" + esc(layerTitle(p.layer)) + "</span>" +
      (has(p.accuracy) && p.accuracy !== "official" ?
        "<br><span class=\"zp-tt-accuracy\">" + esc(accuracyText(p.accuracy)) + "</span>" : "");
  }

  function closeTileTip() { if (S.tileTip && S.map) S.map.closeTooltip(S.tileTip); }

  // ------------------------------------------------------------------ result panel

  function panel(state, html) {
    var el = document.getElementById("zp-result");
    el.innerHTML = html;
    el.setAttribute("data-state", state);
    el.setAttribute("data-seq", String(S.seq));
    if (state !== "loading") el.scrollIntoView({ block: "nearest" });
  }

  function zoneCard(z, extra) {
    var rules = (z.rules || []).map(function (r) { return "<li>" + ruleText(r) + "</li>"; }).join("");
    var source = z.source || { doc_no: z.source_doc_no, article: z.source_article };
    var doc = [source.doc_no, source.article].filter(has).map(esc).join(" · ");
    return "<div class=\"zp-card\" data-zone-id=\"" + esc(z.zone_id) + "\" style=\"border-left-color:" +
      esc(layerColor(z.layer)) + "\"><h3>" + esc(z.name_zh) + "</h3>" +
      (has(z.name_en) ? "<div class=\"zp-sub\">" + esc(z.name_en) + "</div>" : "") +
      "<div class=\"zp-meta\">" + esc(layerTitle(z.layer)) + (doc ? " · " + doc : "") + "</div>" +
      (has(z.accuracy) ? "<span class=\"zp-badge " + esc(z.accuracy) + "\">" + esc(accuracyText(z.accuracy)) + "</span>" : "") +
      (extra || "") + (rules ? "<ul>" + rules + "</ul>" : "") +
      (S.byId[z.zone_id] || S.cfg.tiled ? "<button type=\"button\" class=\"zp-show\" data-zone=\"" + esc(z.zone_id) + "\">" +
        esc(t("showOnMap")) + "</button>" : "") + "</div>";
  }

  function lonLat(point) {
    if (!point) return null;
    if (Array.isArray(point)) return [Number(point[0]), Number(point[1])];
    if (has(point.lon)) return [Number(point.lon), Number(point.lat)];
    if (point.coordinates) return [Number(point.coordinates[0]), Number(point.coordinates[1])];
    return null;
  }

  function disclaimer(body) {
    return has(body.disclaimer) ? "<p class=\"zp-disclaimer\">" + esc(body.disclaimer) + "</p>" : "";
  }

  function verdictHtml(verdicts) {
    if (!verdicts || !verdicts.length) return "";
    return "<div class=\"zp-verdicts\"><h2>" + esc(t("verdicts")) + "</h2>" + verdicts.map(function (v) {
      var deciding = (v.deciding || []).map(function (d) {
        return "<li>" + esc(t(d.effect === "required" ? "restricted" : d.effect)) + " · " + esc(d.name) + " · " +
          esc([d.source.doc_no, d.source.article].filter(has).join(" ")) + "<br><span class=\"zp-sub\">“" +
          esc(d.quote_zh) + "”" + (has(d.condition) ? " — " + esc(d.condition) : "") +
          (has(d.share_of_site) ? " · " + esc(percent(d.share_of_site)) + " " + esc(t("shareOfSite")) : "") +
          "</span></li>";
      }).join("");
      var undrawn = (v.undrawn || []).map(function (u) {
        return "<li>" + esc(u.name) + ((u.parts || []).length ? " <span class=\"zp-sub\">(" + esc(u.parts.join("、")) +
          ")</span>" : "") + "<br><span class=\"zp-sub\">" + esc(u.reason) + " " + esc(u.what_to_do) + "</span></li>";
      }).join("");
      return "<div class=\"zp-verdict zp-verdict-" + esc(v.verdict) + "\" data-verdict=\"" + esc(v.verdict) + "\">" +
        "<div class=\"zp-verdict-word\">" + esc(v.name) + "：" + esc(t(v.verdict)) +
        (has(v.at_least) ? " (" + esc(t("atLeast")) + " " + esc(t(v.at_least)) + ")" : "") +
        (v.near_approximate_boundary ? " · " + esc(t("nearBoundary")) : "") + "</div>" +
        "<div class=\"zp-verdict-summary\">" + esc(v.summary) + "</div>" +
        (deciding ? "<b>" + esc(t("deciding")) + "</b><ul>" + deciding + "</ul>" : "") +
        (undrawn ? "<b>" + esc(t("undrawn")) + "</b><ul>" + undrawn + "</ul>" : "") + "</div>";
    }).join("") + "</div>";
  }

  function coverageHtml(body) {
    if (!has(body.coverage_note)) return "";
    return "<div class=\"zp-coverage zp-coverage-" + esc(body.coverage) + "\">" + esc(body.coverage_note) + "</div>";
  }

  function renderCheck(body) {
    var point = body.point || {};
    var wgs = lonLat(point.wgs84);
    if (wgs) placeMarker(wgs);
    answerPopup(body, wgs);
    var typed = lonLat(point.input);
    var html = verdictHtml(body.verdicts) + coverageHtml(body) +
      "<h2>" + esc(t("point")) + "</h2><div class=\"zp-point\">WGS84 " +
      (wgs ? wgs[0].toFixed(6) + ", " + wgs[1].toFixed(6) : "") +
      (typed && has(point.crs) && point.crs !== "wgs84" ? " (" + esc(t("input")) + " " + esc(point.crs) + " " +
        typed[0] + ", " + typed[1] + ")" : "") + "</div>";
    var inside = body.inside || [];
    if (inside.length) {
      html += "<h2>" + esc(t("inside")) + " (" + inside.length + ")</h2>" + inside.map(function (z) { return zoneCard(z); }).join("");
    } else if (body.coverage !== "none") {  // without data for the district, "in no zone" would mislead
      html += "<div class=\"zp-none\">" + esc(t("none")) + "</div>";
    }
    var missing = body.not_digitised || [];
    if (missing.length) {  // zones the texts define here that could not be drawn: no answer for them
      html += "<h2>" + esc(t("notDigitised")) + "</h2><ul class=\"zp-list zp-undrawn\">" + missing.map(function (z) {
        return "<li>" + esc(z.name || z.name_zh || z.zone_id) + " <span class=\"zp-sub\">" + esc(z.layer_title || "") +
          "</span>" + (has(z.reason) ? "<br><span class=\"zp-sub\">" + esc(z.reason) + " " + esc(z.what_to_do || "") +
          "</span>" : "") + "</li>";
      }).join("") + "</ul>";
    }
    var nearby = body.nearby || [];
    if (nearby.length) {
      html += "<h2>" + esc(t("nearby")) + "</h2><ul class=\"zp-list\">" + nearby.map(function (z) {
        return "<li data-zone=\"" + esc(z.zone_id) + "\">" + esc(z.name_zh) + " · " + esc(layerTitle(z.layer)) +
          " — " + esc(metres(z.distance_m)) + "</li>";
      }).join("") + "</ul>";
    }
    panel("done", html + disclaimer(body));
  }

  function renderSite(body) {
    var zones = body.zones || [];
    var html = verdictHtml(body.verdicts) + coverageHtml(body) +
      "<h2>" + esc(t("site")) + "</h2><div class=\"zp-point\">" + esc(t("siteArea")) + " " +
      esc(area((body.site || {}).area_m2)) + "</div>";
    if (zones.length) {
      html += zones.map(function (z) {
        var extra = "<div class=\"zp-meta\">" + esc(t("overlap")) + " " + esc(area(z.overlap_area_m2)) +
          " · " + esc(percent(z.share_of_site)) + " " + esc(t("shareOfSite")) +
          " · " + esc(percent(z.share_of_zone)) + " " + esc(t("shareOfZone")) + "</div>";
        return zoneCard(z, extra);
      }).join("");
    } else {
      html += "<div class=\"zp-none\">" + esc(t("noOverlap")) + "</div>";
    }
    panel("done", html + disclaimer(body));
  }

  function fail(detail) {
    if (Array.isArray(detail)) {  // FastAPI validation errors: [{loc, msg, type}, ...]
      detail = detail.map(function (d) { return d && d.msg ? d.msg : JSON.stringify(d); }).join("; ");
    } else if (detail && typeof detail !== "string") detail = JSON.stringify(detail);
    panel("error", "<div class=\"zp-error\"><b>" + esc(t("error")) + "</b><br>" + esc(detail || t("network")) + "</div>");
  }

  function request(url, init, render) {
    if (!S.cfg.api) { panel("done", "<div class=\"zp-error\">" + esc(t("standalone")) + "</div>"); return; }
    var seq = ++S.seq;
    panel("loading", "<p>" + esc(t("loading")) + "</p>");
    fetch(url, init).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; },
        function () { return { ok: false, body: { detail: response.status + " " + response.statusText } }; });
    }).then(function (res) {
      if (seq !== S.seq) return;  // a newer request superseded this one
      if (res.ok) render(res.body); else fail(res.body.detail);
    }, function () { if (seq === S.seq) fail(t("network")); });
  }

  function check(x, y, crs) {
    var q = new URLSearchParams({ lon: String(x), lat: String(y), crs: crs, lang: S.cfg.lang });
    if (S.activity) q.set("activity", S.activity);
    S.last = [x, y, crs];
    request(S.cfg.api + "check?" + q.toString(), { headers: { Accept: "application/json" } }, renderCheck);
  }

  function checkLatLng(latlng) {
    if (S.tool) return;  // a click that belongs to drawing or measuring
    check(latlng.lng.toFixed(7), latlng.lat.toFixed(7), "wgs84");
  }

  function checkSite(layer) {
    var feature = layer.toGeoJSON();
    var q = new URLSearchParams({ crs: "wgs84", lang: S.cfg.lang });
    if (S.activity) q.set("activity", S.activity);
    request(S.cfg.api + "check/site?" + q.toString(), {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(feature)
    }, renderSite);
  }

  function placeMarker(lonlat) {
    var latlng = L.latLng(lonlat[1], lonlat[0]);
    if (S.marker) S.marker.setLatLng(latlng);
    else {
      S.marker = L.circleMarker(latlng, { radius: 7, color: "#111", weight: 2, fillColor: "#ffeb3b", fillOpacity: 1,
        interactive: false, className: "zoning-check-marker" }).addTo(S.map);
    }
    if (!S.map.getBounds().contains(latlng)) S.map.setView(latlng, Math.max(S.map.getZoom(), 12));
  }

  // ------------------------------------------------------------------ zones

  /* Tile mode: the zone's geometry and properties come from /v1/zones/{id}. */
  function focusRemoteZone(id) {
    fetch(S.cfg.api + "zones/" + encodeURIComponent(id) + "?lang=" + S.cfg.lang,
          { headers: { Accept: "application/json" } }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (feature) {
        if (!feature || !feature.geometry) return;
        var overlay = S.overlays[feature.properties.layer];
        if (overlay && !S.map.hasLayer(overlay)) S.map.addLayer(overlay);
        var bounds = L.geoJSON(feature).getBounds();
        S.map.fitBounds(bounds, { maxZoom: 15, padding: [20, 20] });
        L.popup({ maxWidth: 380, maxHeight: 420 }).setLatLng(bounds.getCenter())
          .setContent(popupHtml(flatZone(feature.properties))).openOn(S.map);
      });
  }

  function focusZone(id) {
    if (S.cfg.tiled) { focusRemoteZone(id); return; }
    var entry = S.byId[id];
    if (!entry) return;
    var overlay = S.overlays[entry.props.layer];
    if (overlay && !S.map.hasLayer(overlay)) S.map.addLayer(overlay);
    var bounds = entry.layer.getBounds ? entry.layer.getBounds() : L.latLngBounds([entry.layer.getLatLng()]);
    S.map.fitBounds(bounds, { maxZoom: 15, padding: [20, 20] });
    entry.layer.openPopup();
  }

  function searchRemote(q, list) {
    var seq = ++S.searchSeq;
    fetch(S.cfg.api + "zones?" + new URLSearchParams({ q: q }).toString(), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { zones: [] }; })
      .then(function (body) {
        if (seq !== S.searchSeq) return;
        var hits = (body.zones || []).slice(0, 50);
        list.innerHTML = hits.length ? hits.map(function (z) {
          return "<li tabindex=\"0\" data-zone=\"" + esc(z.zone_id) + "\">" + esc(z.name_zh) +
            " <span class=\"zp-sub\">" + esc(z.name_en) + " · " + esc(layerTitle(z.layer)) + "</span></li>";
        }).join("") : "<li class=\"zp-sub\">" + esc(t("noMatch")) + "</li>";
      });
  }

  function search(query) {
    var list = document.getElementById("zp-search-results");
    var q = query.trim().toLowerCase();
    if (!q) { list.innerHTML = ""; return; }
    if (S.cfg.tiled) { searchRemote(query.trim(), list); return; }
    var hits = S.entries.filter(function (e) {
      var p = e.props;
      return [p.name_zh, p.name_en, p.zone_id, p.kind].some(function (v) { return has(v) && String(v).toLowerCase().indexOf(q) >= 0; });
    }).slice(0, 50);
    list.innerHTML = hits.length ? hits.map(function (e) {
      return "<li tabindex=\"0\" data-zone=\"" + esc(e.props.zone_id) + "\">" + esc(e.props.name_zh) +
        " <span class=\"zp-sub\">" + esc(e.props.name_en) + " · " + esc(layerTitle(e.props.layer)) + "</span></li>";
    }).join("") : "<li class=\"zp-sub\">" + esc(t("noMatch")) + "</li>";
  }

  function onZoneLink(event) {
    var target = event.target.closest("[data-zone]");
    if (target && (S.cfg.tiled || S.byId[target.getAttribute("data-zone")])) {
      event.preventDefault();
      focusZone(target.getAttribute("data-zone"));
    }
  }

  // ------------------------------------------------------------------ activity picker

  var EFFECT_RANK = { prohibited: 3, restricted: 2, required: 2, permitted: 1 };
  var EFFECT_STYLE = {
    prohibited: { color: "#b2182b", fillColor: "#b2182b", fillOpacity: 0.45, opacity: 1, weight: 2 },
    restricted: { color: "#e08214", fillColor: "#fdb863", fillOpacity: 0.45, opacity: 1, weight: 2 },
    none: { fillOpacity: 0, opacity: 0.35, weight: 1 }
  };

  /* The strongest effect the zone's rules give the activity: prohibited > restricted/required > other. */
  function effectOf(props, activity) {
    var best = null;
    (props.rules || []).forEach(function (r) {
      (r.activities || []).forEach(function (m) {
        if (m.activity === activity && (!best || EFFECT_RANK[m.effect] > EFFECT_RANK[best])) best = m.effect;
      });
    });
    return best === "required" ? "restricted" : (best === "permitted" ? null : best);
  }

  /* Tile mode: the zones limiting the activity come from the API, then every tile is redrawn. */
  function shadeTiles() {
    var seq = ++S.effectsSeq;
    function redraw() {
      Object.keys(S.overlays).forEach(function (id) { if (S.overlays[id].redraw) S.overlays[id].redraw(); });
    }
    if (!S.activity) { S.effects = {}; redraw(); return; }
    fetch(S.cfg.api + "activities/" + encodeURIComponent(S.activity) + "/zones",
          { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { zones: {} }; }, function () { return { zones: {} }; })
      .then(function (body) {
        if (seq !== S.effectsSeq) return;  // the picker moved on
        S.effects = body.zones || {};
        redraw();
      });
  }

  function shade(activity) {
    S.activity = activity || null;
    if (S.cfg.tiled) shadeTiles();
    S.entries.forEach(function (e) {
      var overlay = S.overlays[e.props.layer];
      if (overlay && overlay.resetStyle) overlay.resetStyle(e.layer);
      var effect = S.activity ? effectOf(e.props, S.activity) : null;
      if (S.activity && e.layer.setStyle) e.layer.setStyle(EFFECT_STYLE[effect || "none"]);
      if (e.layer.getElement && e.layer.getElement()) e.layer.getElement().setAttribute("data-effect", effect || "");
    });
    if (S.hatch) { S.map.removeLayer(S.hatch); S.hatch = null; }
    if (S.activity) {
      var features = Object.keys(S.cfg.hatch || {}).filter(function (code) {
        return (S.cfg.undrawn[code] || []).indexOf(S.activity) >= 0;
      }).map(function (code) {
        var d = S.cfg.hatch[code];
        return { type: "Feature", properties: { adcode: code, name: S.cfg.lang === "en" ? d.name_en : d.name_zh },
                 geometry: d.geometry };
      });
      S.hatch = L.geoJSON({ type: "FeatureCollection", features: features }, {
        interactive: false, style: { color: "#54278f", weight: 1, opacity: 0.8, fillOpacity: 1,
                                     className: "zoning-unknown" }
      }).addTo(S.map);
      S.hatch.bringToBack();
      S.hatch.eachLayer(function (l) {
        var el = l.getElement();
        if (el) { el.setAttribute("fill", hatchFill()); el.style.fill = hatchFill(); }
      });
    }
    var legend = document.getElementById("zp-map-legend-activity");
    if (legend) legend.style.display = S.activity ? "" : "none";
    if (S.last) check(S.last[0], S.last[1], S.last[2]);  // the shown answer follows the picker
  }

  var HATCH = "zoning-hatch";
  function hatchFill() { return "url(#" + HATCH + ")"; }

  function addHatchPattern() {
    // Parsed as HTML, the <svg> gets the SVG namespace without naming it.
    var holder = document.createElement("div");
    holder.style.position = "absolute"; holder.style.width = "0"; holder.style.height = "0";
    holder.innerHTML = "<svg width=\"0\" height=\"0\"><defs><pattern id=\"" + HATCH + "\" patternUnits=\"userSpaceOnUse\" " +
      "width=\"10\" height=\"10\" patternTransform=\"rotate(45)\"><rect width=\"10\" height=\"10\" fill=\"#bcbddc\" " +
      "fill-opacity=\"0.15\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"10\" stroke=\"#6a51a3\" stroke-width=\"3\" " +
      "stroke-opacity=\"0.55\"/></pattern></defs></svg>";
    document.body.appendChild(holder);
  }

  /* Hide district labels that would overlap a label already shown (bigger districts first). */
  function declutter() {
    var kept = [];
    document.querySelectorAll(".zoning-district-label span").forEach(function (span) {
      span.style.visibility = "";
      var r = span.getBoundingClientRect();
      var clash = kept.some(function (k) {
        return r.left < k.right + 2 && r.right + 2 > k.left && r.top < k.bottom + 1 && r.bottom + 1 > k.top;
      });
      if (clash) span.style.visibility = "hidden"; else kept.push(r);
    });
  }

  function mapLegend() {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "zp-map-legend");
      div.id = "zp-map-legend";
      var acc = Object.keys(S.cfg.accuracy).map(function (key) {
        var a = S.cfg.accuracy[key];
        return "<div data-accuracy=\"" + esc(key) + "\"><svg class=\"zl-line\" viewBox=\"0 0 36 10\"><line x1=\"0\" y1=\"5\" " +
          "x2=\"36\" y2=\"5\" stroke=\"#333\" stroke-width=\"2\"" + (a.dash ? " stroke-dasharray=\"" + esc(a.dash) + "\"" : "") +
          "/></svg> " + esc(a[S.cfg.lang]) + "</div>";
      }).join("");
      div.innerHTML = "<b>" + esc(t("accuracy")) + "</b>" + acc +
        "<div id=\"zp-map-legend-activity\" style=\"display:none\"><b>" + esc(t("legendActivity")) + "</b>" +
        "<div><span class=\"zl-swatch\" style=\"border-color:#b2182b;background:#b2182b88\"></span> " + esc(t("prohibited")) + "</div>" +
        "<div><span class=\"zl-swatch\" style=\"border-color:#e08214;background:#fdb86388\"></span> " + esc(t("restricted")) + "</div>" +
        "<div><svg class=\"zl-swatch\" width=\"18\" height=\"12\"><rect width=\"18\" height=\"12\" fill=\"" + hatchFill() + "\" " +
        "stroke=\"#54278f\"/></svg> " + esc(t("unknown")) + "：" + esc(t("legendUnknown")) + "</div></div>";
      L.DomEvent.disableClickPropagation(div);
      return div;
    };
    control.addTo(S.map);
  }

  // ------------------------------------------------------------------ public

  window.ZoningMap = {
    /* Tile mode: the VectorGrid style of a layer's features, by accuracy (styles from the server). */
    tileStyle: function (layerId, styles) {
      var outline = null;
      return function (props) {
        if (!outline) {  // tiles arrive after init(), but read the page's own config to not depend on it
          outline = {};
          JSON.parse(document.getElementById("zoning-config").textContent).outline_only.forEach(function (id) {
            outline[id] = true;
          });
        }
        var style = styles[props.accuracy] || styles.approximate;
        var out = {};
        Object.keys(style).forEach(function (k) { out[k] = style[k]; });
        if (outline[props.zone_id]) { out.fillOpacity = 0; out.weight = 1.5; }
        if (S.activity) {  // the picker's shading, as the inline layers get it
          var effect = S.effects[props.zone_id] || "none";
          Object.keys(EFFECT_STYLE[effect]).forEach(function (k) { out[k] = EFFECT_STYLE[effect][k]; });
          out.className += " zoning-effect-" + effect;
        }
        if (!out.dashArray) delete out.dashArray;
        return out;
      };
    },

    /* Tile mode: the district base layer's style, by the unit's kind (district or neighbour). */
    baseStyle: function (layerId, styles) {
      return function (props) { return styles[props.kind] || styles.district; };
    },

    /* Tile mode: a tooltip that follows the pointer over the zone under it (its tile's
       properties). One for all layers: a tile redrawn under a still pointer sends no mouseout. */
    hoverTiles: function (grid) {
      grid.on("mouseover mousemove", function (e) {
        var p = e.layer && e.layer.properties;
        if (!p || !S.map) return;
        var tip = S.tileTip || (S.tileTip = L.tooltip({ direction: "auto", className: "zoning-tile-tooltip" }));
        if (S.tileTipZone !== p.zone_id || !S.map.hasLayer(tip)) { tip.setContent(tooltipHtml(p)); S.tileTipZone = p.zone_id; }
        tip.setLatLng(e.latlng);
        if (!S.map.hasLayer(tip)) S.map.openTooltip(tip);
      });
      grid.on("mouseout remove", closeTileTip);
    },

    /* GeoJson onEachFeature for every zone overlay. */
    bindZone: function (feature, layer) {
      var p = feature.properties;
      // Content as functions: this runs while the overlays are built, before init().
      layer.bindTooltip(function () { return tooltipHtml(p); }, { sticky: true });
      layer.bindPopup(function () { return popupHtml(p); }, { maxWidth: 380 });
      // The popup stops the click reaching the map, so a zone click runs the check itself.
      layer.on("click", function (e) { checkLatLng(e.latlng); });
    },

    init: function (map, overlays, cfg) {
      S.map = map; S.cfg = cfg; S.overlays = overlays;
      window.ZoningMap.map = map;
      Object.keys(overlays).forEach(function (layerId) {
        if (!overlays[layerId].eachLayer) return;  // a vector-tile layer: no zones in the page
        overlays[layerId].eachLayer(function (layer) {
          var entry = { props: layer.feature.properties, layer: layer };
          S.entries.push(entry);
          S.byId[entry.props.zone_id] = entry;
          var el = layer.getElement ? layer.getElement() : null;
          if (el) el.setAttribute("data-zone-id", entry.props.zone_id);
        });
      });
      map.on("click", function (e) { checkLatLng(e.latlng); });
      if (cfg.tiled) {  // the pointer left every tiled zone (or its tile was redrawn): no tooltip
        map.on("mousemove", function (e) {
          var target = e.originalEvent && e.originalEvent.target;
          if (!(target && target.closest && target.closest(".leaflet-tile path"))) closeTileTip();
        });
        map.on("mouseout", closeTileTip);
      }
      // While drawing or measuring, clicks belong to the tool. Release a little after the
      // tool stops so the finishing click is not taken as a check.
      function busy() { S.tool = true; }
      function idle() { setTimeout(function () { S.tool = false; }, 300); }
      map.on("draw:drawstart draw:editstart draw:deletestart measurestart", busy);
      map.on("draw:drawstop draw:editstop draw:deletestop measurefinish", idle);
      map.on("draw:created", function (e) { checkSite(e.layer); });
      map.on("draw:edited", function (e) { e.layers.eachLayer(checkSite); });

      var input = document.getElementById("zp-search");
      input.addEventListener("input", function () { search(input.value); });
      document.getElementById("zoning-panel").addEventListener("click", onZoneLink);
      document.getElementById("zoning-panel").addEventListener("keydown", function (e) {
        if (e.key === "Enter") onZoneLink(e);
      });
      map.getContainer().addEventListener("click", function (e) {
        if (e.target.closest && e.target.closest(".zp-popup [data-zone]")) onZoneLink(e);
      });

      document.getElementById("zp-locate").addEventListener("submit", function (e) {
        e.preventDefault();
        var lon = document.getElementById("zp-lon").value.trim();
        var lat = document.getElementById("zp-lat").value.trim();
        if (!isFinite(Number(lon)) || !isFinite(Number(lat)) || lon === "" || lat === "") { fail(t("badNumber")); return; }
        check(lon, lat, document.getElementById("zp-crs").value);
      });

      var lang = document.getElementById("zp-lang");
      if (lang) {  // keep ?zone= and the rest of the query when switching language
        var url = new URL(window.location.href);
        url.searchParams.set("lang", cfg.lang === "zh" ? "en" : "zh");
        lang.setAttribute("href", url.search);
      }
      addHatchPattern();
      mapLegend();
      var picker = document.getElementById("zp-activity");
      if (picker) picker.addEventListener("change", function () { shade(picker.value); });
      map.on("zoomend moveend", declutter);
      declutter();
      if (cfg.focus && (cfg.tiled || S.byId[cfg.focus.zone_id])) focusZone(cfg.focus.zone_id);
      document.body.setAttribute("data-zoning-ready", "1");
    },

    check: check,
    focusZone: focusZone,
    shade: shade,
    declutter: declutter
  };
})();
