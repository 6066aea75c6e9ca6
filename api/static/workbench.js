/* The digitising workbench page (/workbench). Talks only to this service's /v1 API.
 * Left: worklist, sheet upload, control points, trace, draft, review. Middle: the sheet
 * (Leaflet CRS.Simple, 1 unit = 1 pixel, y up so lat = -row). Right: the map with the
 * warped sheet under the drawing (Leaflet-Geoman: draw, edit vertices, snap). */
(function () {
  "use strict";
  var S = { csrf: null, user: null, sheet: null, page: 1, points: [], pending: null, mode: null,
            georefBody: null, overlay: null, zone: null, traceParams: null, edited: false, review: null };
  function $(id) { return document.getElementById(id); }
  function say(msg) { $("status").textContent = msg || ""; }
  function esc(v) { return String(v == null ? "" : v).replace(/[&<>"]/g, function (c) {
    return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }

  async function api(method, url, body, isForm) {
    var opts = { method: method, headers: {}, credentials: "same-origin" };
    if (S.csrf && method !== "GET") opts.headers["X-CSRF-Token"] = S.csrf;
    if (body !== undefined) {
      if (isForm) { opts.body = body; } else { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    }
    var r = await fetch(url, opts), data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      var d = data && data.detail;
      throw new Error(typeof d === "string" ? d : JSON.stringify(d || r.status));
    }
    return data;
  }
  function guarded(fn) {
    return async function (ev) {
      if (ev && ev.preventDefault) ev.preventDefault();
      try { say(""); await fn(ev); } catch (e) { say("错误 Error: " + e.message); }
    };
  }

  // ---------------------------------------------------------------- the two panes
  var image = L.map("image", { crs: L.CRS.Simple, minZoom: -6, maxZoom: 4, zoomSnap: 0.25, attributionControl: false })
    .setView([0, 0], 0);
  var map = L.map("map", { zoomSnap: 0.5 }).setView([39.95, 116.0], 10);
  var bases = { "空白 Blank": L.layerGroup().addTo(map) };
  if (window.WORKBENCH.tianditu.length) {
    bases["天地图 Tianditu"] = L.layerGroup(window.WORKBENCH.tianditu.map(function (u) {
      return L.tileLayer(u, { subdomains: "01234567", maxZoom: 18 }); }));
  }
  var context = L.featureGroup().addTo(map);   // district outline, served zone (snapping targets)
  var drawn = L.featureGroup().addTo(map);     // the draft's polygons
  var gcpMarkers = L.layerGroup().addTo(image), mapMarkers = L.layerGroup().addTo(map);
  L.control.layers(bases, { "区界与现状 Context": context, "草稿 Draft": drawn }).addTo(map);
  map.pm.addControls({ position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false,
                       drawCircle: false, drawText: false, rotateMode: false });
  map.pm.setGlobalOptions({ snappable: true, snapDistance: 15, layerGroup: drawn });
  map.on("pm:create", function (e) { drawn.addLayer(e.layer); watch(e.layer); S.edited = true; areaLive(); });
  function watch(layer) { layer.on("pm:edit pm:cut", function () { S.edited = true; areaLive(); }); }
  var sheetLayer = null, sheetCanvas = null;

  function setMode(mode) {
    S.mode = S.mode === mode ? null : mode;
    $("gcp-mode").classList.toggle("mode", S.mode === "gcp");
    $("pick-mode").classList.toggle("mode", S.mode === "pick");
  }

  // ---------------------------------------------------------------- login
  async function start() {
    try {
      var me = await api("GET", "v1/auth/me");
      if (!me.name) return;  // not logged in: the form stays
      S.user = me; S.csrf = me.csrf;
      showWork();
    } catch (e) { /* not logged in: the form stays */ }
  }
  function showWork() {
    $("who").textContent = S.user.name + " (" + S.user.role + ")";
    $("login-panel").classList.add("hidden");
    $("work").classList.remove("hidden");
    loadWorklist(); loadDrafts();
  }
  $("login-form").addEventListener("submit", guarded(async function () {
    var form = new FormData($("login-form"));
    var answer = await api("POST", "v1/auth/login", form, true);
    S.user = answer.user; S.csrf = answer.csrf;
    showWork();
  }));

  // ---------------------------------------------------------------- worklist and zone
  async function loadWorklist() {
    var data = await api("GET", "v1/workbench/worklist"), html = "";
    data.districts.forEach(function (d) {
      html += "<div class='district'><b>" + esc(d.district_name) + "</b> " + d.progress.done + "/" + d.progress.total +
        " 完成 done <progress max='" + d.progress.total + "' value='" + d.progress.done + "'></progress>";
      d.items.forEach(function (i) {
        html += "<div class='item' data-zone='" + esc(i.zone_id) + "'><span class='badge " + i.status + "'>" +
          { todo: "待数字化 to do", improve: "可改进 improve", done: "完成 done" }[i.status] + "</span> " +
          esc(i.name_zh) + (i.pending_drafts ? " <span class='badge'>待审 " + i.pending_drafts + "</span>" : "") + "</div>";
      });
      html += "</div>";
    });
    $("worklist").innerHTML = html;
    Array.prototype.forEach.call(document.querySelectorAll("#worklist .item"), function (el) {
      el.addEventListener("click", guarded(function () { return selectZone(el.dataset.zone); }));
    });
  }
  async function selectZone(zoneId) {
    var data = await api("GET", "v1/workbench/zones/" + encodeURIComponent(zoneId)), z = data.zone;
    S.zone = z;
    Array.prototype.forEach.call(document.querySelectorAll("#worklist .item"), function (el) {
      el.classList.toggle("sel", el.dataset.zone === zoneId); });
    var rows = [["分区 Zone", z.name_zh + " / " + z.name_en], ["编号 id", z.zone_id], ["文号 Document", z.source_doc_no],
      ["条款 Article", z.source_article], ["发布 Issuer", z.issuer], ["生效 Effective", z.effective_from],
      ["文件面积 Stated", z.stated_area_km2 == null ? "—" : z.stated_area_km2 + " km²"],
      ["边界说明 Boundary", z.boundary_text], ["规则 Rules", (z.rules || []).map(function (r) { return r.text_zh; }).join(" ")]];
    $("zone-meta").innerHTML = rows.map(function (r) { return "<dt>" + r[0] + "</dt><dd>" + esc(r[1]) + "</dd>"; }).join("");
    $("zone-panel").classList.remove("hidden");
    context.clearLayers();
    var district = await api("GET", "v1/workbench/districts/" + z.district_code);
    L.geoJSON(district, { style: { color: "#333", weight: 2, fill: false } }).addTo(context);
    if (data.served) L.geoJSON(data.served.geometry, { style: { color: "#888", dashArray: "6 4", weight: 2, fillOpacity: 0.05 } }).addTo(context);
    map.fitBounds(context.getBounds());
    areaLive();
    // The district's other zones, thin and grey: context, and vertices to snap to when drawing.
    var others = await fetch("v1/export?format=geojson&district=" + z.district_code, { credentials: "same-origin" });
    if (others.ok) {
      var fc = await others.json();
      fc.features = fc.features.filter(function (f) { return f.properties.layer !== "admin" && f.properties.zone_id !== z.zone_id; });
      L.geoJSON(fc, { style: { color: "#64748b", weight: 1, fillOpacity: 0, dashArray: "2 3" } }).addTo(context);
    }
  }

  // ---------------------------------------------------------------- sheet
  $("sheet-upload").addEventListener("click", guarded(async function () {
    var file = $("sheet-file").files[0];
    if (!file) throw new Error("请选择文件 choose a file first");
    var form = new FormData(); form.append("file", file);
    var sheet = await api("POST", "v1/workbench/sheets", form, true);
    S.page = parseInt($("sheet-page").value, 10) || 1;
    if (S.page > sheet.pages.length) throw new Error("the sheet has " + sheet.pages.length + " page(s)");
    S.sheet = sheet; S.points = []; S.pending = null; renderPoints();
    showSheet();
  }));
  function showSheet() {
    var size = S.sheet.pages[S.page - 1], w = size[0], h = size[1];
    var url = "v1/workbench/sheets/" + S.sheet.sha256 + "/pages/" + S.page + ".png";
    if (sheetLayer) image.removeLayer(sheetLayer);
    sheetLayer = L.imageOverlay(url, [[-h, 0], [0, w]]).addTo(image);
    image.fitBounds([[-h, 0], [0, w]]);
    $("sheet-info").textContent = S.sheet.filename + " · " + w + " × " + h + " px · SHA-256 " + S.sheet.sha256.slice(0, 12) + "…";
    var img = new Image();
    img.onload = function () {
      sheetCanvas = document.createElement("canvas"); sheetCanvas.width = w; sheetCanvas.height = h;
      sheetCanvas.getContext("2d").drawImage(img, 0, 0);
    };
    img.src = url;
  }

  // ---------------------------------------------------------------- control points
  $("gcp-mode").addEventListener("click", function () { setMode("gcp"); });
  $("pick-mode").addEventListener("click", function () { setMode("pick"); });
  image.on("click", function (e) {
    if (!S.sheet) return;
    var px = e.latlng.lng, py = -e.latlng.lat;
    if (S.mode === "gcp") {
      S.pending = { px: px, py: py };
      gcpMarkers.addLayer(L.circleMarker(e.latlng, { radius: 5, color: "#d97706" }));
      say("已选像素 pixel " + px.toFixed(1) + ", " + py.toFixed(1) + " — 现在点击地图或输入坐标 now click the map or type the coordinate");
    } else if (S.mode === "pick" && sheetCanvas) {
      var d = sheetCanvas.getContext("2d").getImageData(Math.floor(px), Math.floor(py), 1, 1).data;
      $("trace-colour").value = "#" + [d[0], d[1], d[2]].map(function (v) { return ("0" + v.toString(16)).slice(-2); }).join("");
      setMode(null);
    }
  });
  map.on("click", function (e) {
    if (S.mode !== "gcp" || !S.pending) return;
    addPoint(e.latlng.lng, e.latlng.lat, "wgs84");
  });
  $("gcp-typed").addEventListener("click", guarded(function () {
    if (!S.pending) throw new Error("先在图上点击像素 click the sheet first");
    var x = parseFloat($("gcp-x").value), y = parseFloat($("gcp-y").value);
    if (!isFinite(x) || !isFinite(y)) throw new Error("坐标须为数字 the coordinate must be two numbers");
    addPoint(x, y, $("gcp-crs").value);
  }));
  function addPoint(x, y, crs) {
    S.points.push({ px: S.pending.px, py: S.pending.py, x: x, y: y, crs: crs });
    S.pending = null; renderPoints();
    say("控制点 " + S.points.length + " 已添加 point added");
  }
  function renderPoints(georef) {
    var rows = S.points.map(function (p, i) {
      var r = georef ? georef.residuals_m[i] : null, loo = georef ? georef.loo_m[i] : null;
      var out = georef && georef.outlier === i;
      return "<tr" + (out ? " class='outlier'" : "") + "><td>" + (i + 1) + "</td><td>" + p.px.toFixed(1) + ", " + p.py.toFixed(1) +
        "</td><td>" + esc(p.x) + ", " + esc(p.y) + " <small>" + esc(p.crs) + "</small></td><td>" + (r == null ? "" : r.toFixed(2)) +
        "</td><td>" + (loo == null ? "" : loo.toFixed(2)) + "</td><td>" + (out ? "离群? outlier?" : "") +
        " <button data-del='" + i + "'>✕</button></td></tr>";
    });
    document.querySelector("#gcp-table tbody").innerHTML = rows.join("");
    Array.prototype.forEach.call(document.querySelectorAll("#gcp-table button[data-del]"), function (b) {
      b.addEventListener("click", function () { S.points.splice(+b.dataset.del, 1); renderPoints(); });
    });
    gcpMarkers.clearLayers(); mapMarkers.clearLayers();
    S.points.forEach(function (p, i) {
      gcpMarkers.addLayer(L.circleMarker([-p.py, p.px], { radius: 5, color: "#1d4ed8" }).bindTooltip(String(i + 1), { permanent: true }));
      if (p.crs === "wgs84") mapMarkers.addLayer(L.circleMarker([p.y, p.x], { radius: 5, color: "#1d4ed8", pmIgnore: true }));
    });
  }
  function georefBody(overlay) {
    var crs = S.points.length ? S.points[0].crs : "wgs84";
    return { sheet: S.sheet.sha256, page: S.page, method: $("georef-method").value, crs: crs, overlay: overlay,
             points: S.points.map(function (p) { return { px: p.px, py: p.py, x: p.x, y: p.y, crs: p.crs }; }) };
  }
  $("georef-fit").addEventListener("click", guarded(async function () {
    if (!S.sheet) throw new Error("先上传附图 upload a sheet first");
    var body = georefBody(true), answer = await api("POST", "v1/workbench/georef", body);
    var g = answer.georef;
    S.georefBody = georefBody(false);
    renderPoints(g);
    $("georef-rms").textContent = "RMS " + g.rms_m.toFixed(2) + " m" + (g.loo_rms_m == null ? "" : " · 留一 LOO " + g.loo_rms_m.toFixed(2) + " m");
    if (S.overlay) map.removeLayer(S.overlay);
    var b = answer.overlay.bounds;
    S.overlay = L.imageOverlay(answer.overlay.png, [[b[1], b[0]], [b[3], b[2]]],
                               { opacity: parseFloat($("overlay-opacity").value), pmIgnore: true }).addTo(map);
    S.overlay.bringToBack();
    if (!S.zone) map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  }));
  $("overlay-opacity").addEventListener("input", function () { if (S.overlay) S.overlay.setOpacity(parseFloat(this.value)); });

  // ---------------------------------------------------------------- trace
  $("trace-run").addEventListener("click", guarded(async function () {
    if (!S.georefBody) throw new Error("先配准 fit the control points first");
    var params = { colour: $("trace-colour").value, tolerance: +$("trace-tolerance").value, close_px: +$("trace-close").value,
                   min_area_m2: +$("trace-min-area").value, simplify_m: +$("trace-simplify").value,
                   line_width_px: +$("trace-line").value,
                   clip_district: $("trace-clip").checked && S.zone ? S.zone.district_code : null };
    var answer = await api("POST", "v1/workbench/trace", Object.assign({ georef: S.georefBody }, params));
    drawn.clearLayers();
    L.geoJSON(answer.feature, { style: { color: "#1d4ed8", weight: 2, fillOpacity: 0.2 } }).eachLayer(function (l) {
      drawn.addLayer(l); l.pm.enable({ snappable: true }); l.pm.disable(); watch(l);
    });
    S.traceParams = answer.feature.properties.trace; S.edited = false;
    $("trace-info").textContent = (answer.feature.properties.area_m2 / 1e6).toFixed(4) + " km², " +
      answer.feature.properties.parts_dropped + " 小斑块已去除 specks dropped";
    areaLive();
  }));

  // Spherical polygon area (km²), for the live figure; the saved draft gets the geodesic one.
  function ringArea(latlngs) {
    var R = 6378137, area = 0, n = latlngs.length;
    for (var i = 0; i < n; i++) {
      var p1 = latlngs[i], p2 = latlngs[(i + 1) % n];
      area += (p2.lng - p1.lng) * Math.PI / 180 * (2 + Math.sin(p1.lat * Math.PI / 180) + Math.sin(p2.lat * Math.PI / 180));
    }
    return Math.abs(area * R * R / 2);
  }
  function drawnArea() {
    var total = 0;
    drawn.eachLayer(function (l) {
      if (!l.getLatLngs) return;
      var polys = L.LineUtil.isFlat(l.getLatLngs()) ? [[l.getLatLngs()]] : l.getLatLngs();
      if (polys.length && !Array.isArray(polys[0][0])) polys = [polys];
      polys.forEach(function (rings) { rings.forEach(function (ring, k) { total += (k ? -1 : 1) * ringArea(ring); }); });
    });
    return total / 1e6;
  }
  function areaLive() {
    var area = drawnArea(), stated = S.zone ? S.zone.stated_area_km2 : null, text = "≈ " + area.toFixed(4) + " km²";
    if (stated != null && area > 0) {
      var ratio = area / stated, ok = Math.abs(ratio - 1) <= 0.05;
      text += " · 文件 stated " + stated + " km² · " + (ratio * 100).toFixed(1) + " % <span class='" + (ok ? "ok'>±5 % 内 within" : "bad'>超出 ±5 % outside") + "</span>";
    }
    $("area-check").innerHTML = text;
  }

  // ---------------------------------------------------------------- drafts and review
  function drawnGeometry() {
    var polys = [];
    drawn.eachLayer(function (l) {
      var g = l.toGeoJSON().geometry;
      if (g.type === "Polygon") polys.push(g.coordinates);
      if (g.type === "MultiPolygon") polys = polys.concat(g.coordinates);
    });
    if (!polys.length) throw new Error("没有多边形 nothing drawn or traced yet");
    return polys.length === 1 ? { type: "Polygon", coordinates: polys[0] } : { type: "MultiPolygon", coordinates: polys };
  }
  $("draft-save").addEventListener("click", guarded(async function () {
    if (!S.zone) throw new Error("先在工作清单中选择分区 choose the zone in the worklist first");
    var draft = await api("POST", "v1/workbench/drafts", { zone_id: S.zone.zone_id, geometry: drawnGeometry(),
      georef: S.georefBody, trace: S.traceParams, edited: S.edited });
    var c = draft.area_check;
    $("draft-info").textContent = "草稿 draft " + draft.id + " 已保存 saved: " + c.area_km2 + " km²" +
      (c.ratio == null ? "" : " (" + (c.ratio * 100).toFixed(1) + " % of stated)") + " — 待审核 waiting for review";
    loadDrafts(); loadWorklist();
  }));
  async function loadDrafts() {
    var data = await api("GET", "v1/workbench/drafts"), html = "<table><tr><th>#</th><th>分区 zone</th><th>状态 status</th><th>作者 author</th><th>意见 comment</th></tr>";
    data.drafts.forEach(function (d) {
      html += "<tr class='item' data-draft='" + d.id + "'><td>" + d.id + "</td><td>" + esc(d.zone_id) + "</td><td>" + esc(d.status) +
        "</td><td>" + esc(d.author) + "</td><td>" + esc(d.comment || "") + "</td></tr>";
    });
    $("drafts").innerHTML = html + "</table>";
    Array.prototype.forEach.call(document.querySelectorAll("#drafts tr[data-draft]"), function (el) {
      el.addEventListener("click", guarded(function () { return openDraft(+el.dataset.draft); }));
    });
  }
  $("drafts-refresh").addEventListener("click", guarded(loadDrafts));
  async function openDraft(id) {
    var d = await api("GET", "v1/workbench/drafts/" + id), c = d.area_check;
    S.review = d;
    var rows = [["草稿 Draft", d.id + " · " + d.status], ["分区 Zone", d.record.name_zh + " (" + d.zone_id + ")"],
      ["作者 Author", d.author], ["面积 Area", c.area_km2 + " km²" + (c.stated_area_km2 == null ? "" : " / 文件 stated " + c.stated_area_km2 +
        " km² (" + (c.ok ? "±5 % 内 within" : "超出 ±5 % outside") + ")")],
      ["现行版本 Served", d.served ? d.served.accuracy + ", " + d.served.area_km2 + " km², 重叠 overlap " + d.served.overlap_share : "未绘制 not drawn"],
      ["方法 Method", d.record.method]];
    $("review-meta").innerHTML = rows.map(function (r) { return "<dt>" + r[0] + "</dt><dd>" + esc(r[1]) + "</dd>"; }).join("");
    $("review-panel").classList.remove("hidden");
    context.clearLayers();
    if (d.served) L.geoJSON(d.served.geometry, { style: { color: "#888", dashArray: "6 4", fillOpacity: 0.05 } }).addTo(context);
    L.geoJSON(d.geometry, { style: { color: "#16a34a", weight: 2, fillOpacity: 0.2 }, pmIgnore: true }).addTo(context);
    map.fitBounds(context.getBounds());
    var sheet = d.provenance.sheet;
    if (sheet && d.provenance.georef) {  // the reviewer sees the sheet and its overlay under the polygon
      var ov = await api("GET", "v1/workbench/drafts/" + id + "/overlay"), b = ov.bounds;
      if (S.overlay) map.removeLayer(S.overlay);
      S.overlay = L.imageOverlay(ov.png, [[b[1], b[0]], [b[3], b[2]]],
                                 { opacity: parseFloat($("overlay-opacity").value), pmIgnore: true }).addTo(map);
      S.overlay.bringToBack();
      var all = await api("GET", "v1/workbench/sheets");
      var found = all.sheets.filter(function (s) { return s.sha256 === sheet.sha256; })[0];
      if (found) { S.sheet = found; S.page = sheet.page || 1; showSheet(); }
    }
  }
  async function decide(approve) {
    if (!S.review) throw new Error("先选择草稿 open a draft first");
    var d = await api("POST", "v1/workbench/drafts/" + S.review.id + "/review",
                      { approve: approve, comment: $("review-comment").value || null });
    $("review-info").textContent = d.status === "published"
      ? "已发布 published as " + d.data_version : "已退回 rejected: " + (d.comment || "");
    loadDrafts(); loadWorklist();
  }
  $("review-approve").addEventListener("click", guarded(function () { return decide(true); }));
  $("review-reject").addEventListener("click", guarded(function () { return decide(false); }));

  window.workbenchState = S;  // for the browser test and the console
  window.workbenchMaps = { image: image, map: map };
  start();
})();
