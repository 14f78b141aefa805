/* lrtempo run report: SVG charts on one shared step axis, drawn from the JSON in #report-data.
 *
 * No library and no network: everything the page needs is in the page.
 * Interaction: hover shows the values at a step on every chart; drag across a
 * chart zooms every chart to those steps; double-click (or "reset zoom")
 * returns to the whole run; "log y" switches a chart's scale; a legend entry
 * hides or shows its series; a row of the events table zooms to that event.
 * The zoom is kept in the address as #zoom=FIRST:LAST, so a view can be shared.
 *
 * Each chart's <svg> carries data-x-domain, data-y-domain, data-y-scale and
 * data-plot (left top width height of the plot area, in px); each drawn series
 * carries data-series and data-points (vertices drawn), so a test can map the
 * drawing back to the run's numbers.
 */
(function () {
  "use strict";

  var el = lrtempoChart.el, fmt = lrtempoChart.fmt, lowerBound = lrtempoChart.lowerBound;
  var niceTicks = lrtempoChart.niceTicks, logTicks = lrtempoChart.logTicks, picks = lrtempoChart.picks;
  var paddedDomain = lrtempoChart.paddedDomain;
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
  var HEIGHT = 230;
  var MARGIN = { left: 78, right: 18, top: 12, bottom: 40 };

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var steps = data.steps;
  var full = [steps[0], steps[steps.length - 1]];
  if (full[0] === full[1]) { full = [full[0] - 1, full[1] + 1]; }
  var view = full.slice();
  var hidden = {};
  var logY = {};
  var crosshairs = [];
  data.charts.forEach(function (c) { logY[c.id] = c.log_y; });

  function seriesX(s) { return s.x === null ? steps : s.x; }

  function visibleSlice(x, x0, x1) { // one point either side of the view, so lines reach the edges
    var i0 = Math.max(0, lowerBound(x, x0) - 1);
    var i1 = Math.min(x.length, lowerBound(x, x1 + 1e-9) + 1);
    return [i0, i1];
  }

  function yDomain(chart, log) {
    var lo = Infinity, hi = -Infinity;
    chart.series.forEach(function (s) {
      if (hidden[s.name]) { return; }
      var x = seriesX(s), r = visibleSlice(x, view[0], view[1]);
      for (var i = r[0]; i < r[1]; i++) {
        var v = s.y[i];
        if (v === null || x[i] < view[0] || x[i] > view[1] || (log && !(v > 0))) { continue; }
        if (v < lo) { lo = v; }
        if (v > hi) { hi = v; }
      }
    });
    return paddedDomain(lo, hi, log, chart.zero);
  }

  function drawChart(chart, box) {
    box.textContent = "";
    var width = Math.max(320, box.clientWidth || 960);
    var pw = width - MARGIN.left - MARGIN.right, ph = HEIGHT - MARGIN.top - MARGIN.bottom;
    var log = logY[chart.id];
    var yd = yDomain(chart, log);
    var sx = function (v) { return MARGIN.left + (v - view[0]) / (view[1] - view[0]) * pw; };
    var ty = log ? Math.log10 : function (v) { return v; };
    var y0 = ty(yd[0]), y1 = ty(yd[1]);
    var sy = function (v) { return MARGIN.top + ph - (ty(v) - y0) / (y1 - y0) * ph; };
    var svg = el("svg", {
      width: width, height: HEIGHT, viewBox: "0 0 " + width + " " + HEIGHT, "class": "chart-svg",
      "data-chart": chart.id, "data-x-domain": view[0] + " " + view[1], "data-y-domain": yd[0] + " " + yd[1],
      "data-y-scale": log ? "log" : "linear", "data-plot": [MARGIN.left, MARGIN.top, pw, ph].join(" "),
      role: "img", "aria-label": chart.title + " against step"
    }, box);
    var clipId = "clip-" + chart.id;
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph, "class": "plot-bg" }, svg);

    var bands = el("g", { "class": "bands", "clip-path": "url(#" + clipId + ")" }, svg);
    data.phases.forEach(function (p) {
      var a = Math.max(p.first_step - 0.5, view[0]), b = Math.min(p.last_step + 0.5, view[1]); // a step owns +-0.5
      if (b <= a) { return; }
      var r = el("rect", { x: sx(a), y: MARGIN.top, width: Math.max(0.5, sx(b) - sx(a)), height: ph,
        fill: data.phase_colors[p.phase], "class": "band", "data-phase": p.phase }, bands);
      el("title", {}, r).textContent = p.phase + ": steps " + p.first_step + "–" + p.last_step;
    });

    var grid = el("g", { "class": "grid" }, svg);
    var xt = niceTicks(view[0], view[1], Math.max(2, Math.floor(pw / 110)), 1);
    xt.forEach(function (t) {
      if (t < view[0] || t > view[1]) { return; }
      el("line", { x1: sx(t), x2: sx(t), y1: MARGIN.top, y2: MARGIN.top + ph }, grid);
      el("text", { x: sx(t), y: MARGIN.top + ph + 15, "text-anchor": "middle", "class": "tick x-tick" }, svg)
        .textContent = fmt(t);
    });
    var yt = log ? logTicks(yd[0], yd[1]) : niceTicks(yd[0], yd[1], 5);
    yt.forEach(function (t) {
      if (t < yd[0] || t > yd[1]) { return; }
      el("line", { x1: MARGIN.left, x2: MARGIN.left + pw, y1: sy(t), y2: sy(t) }, grid);
      el("text", { x: MARGIN.left - 6, y: sy(t) + 4, "text-anchor": "end", "class": "tick y-tick" }, svg)
        .textContent = fmt(t);
    });
    el("text", { x: MARGIN.left + pw / 2, y: HEIGHT - 4, "text-anchor": "middle", "class": "axis-label x-label" }, svg)
      .textContent = "step";
    el("text", { x: 14, y: MARGIN.top + ph / 2, "text-anchor": "middle", "class": "axis-label y-label",
      transform: "rotate(-90 14 " + (MARGIN.top + ph / 2) + ")" }, svg).textContent = chart.ylabel;

    var marks = el("g", { "class": "events", "clip-path": "url(#" + clipId + ")" }, svg);
    data.events.forEach(function (e) {
      if (e.step < view[0] || e.step > view[1]) { return; }
      var line = el("line", { x1: sx(e.step), x2: sx(e.step), y1: MARGIN.top, y2: MARGIN.top + ph,
        "class": "event", "data-kind": e.kind }, marks);
      el("title", {}, line).textContent = "step " + e.step + " [" + e.kind + "] " + e.message;
    });

    var plot = el("g", { "class": "series", "clip-path": "url(#" + clipId + ")" }, svg);
    chart.series.forEach(function (s, k) {
      var color = COLORS[k % COLORS.length];
      if (hidden[s.name]) { return; }
      var x = seriesX(s), r = visibleSlice(x, view[0], view[1]);
      var idx = picks(x, s.y, r[0], r[1], sx, pw), d = [], pen = false, n = 0, dots = [];
      idx.forEach(function (i) {
        var v = s.y[i];
        if (v === null || (log && !(v > 0))) { pen = false; return; }
        d.push((pen ? "L" : "M") + sx(x[i]).toFixed(2) + " " + sy(v).toFixed(2));
        pen = true; n += 1;
        if (s.markers && idx.length <= 400) { dots.push([sx(x[i]), sy(v)]); }
      });
      var g = el("g", { "data-series": s.name, "data-points": n }, plot);
      el("path", { d: d.join(""), stroke: color, "class": "line" + (s.dashed ? " dashed" : "") }, g);
      dots.forEach(function (p) { el("circle", { cx: p[0].toFixed(2), cy: p[1].toFixed(2), r: 2.5, fill: color }, g); });
    });

    var cross = el("line", { y1: MARGIN.top, y2: MARGIN.top + ph, "class": "crosshair", visibility: "hidden" }, svg);
    var brush = el("rect", { y: MARGIN.top, height: ph, width: 0, "class": "brush", visibility: "hidden" }, svg);
    var overlay = el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph, "class": "overlay" }, svg);
    var toStep = function (px) { return view[0] + (px - MARGIN.left) / pw * (view[1] - view[0]); };
    crosshairs.push({ line: cross, sx: sx });
    var dragFrom = null;
    function localX(ev) { return ev.clientX - svg.getBoundingClientRect().left; }
    overlay.addEventListener("mousemove", function (ev) {
      var px = localX(ev);
      showAt(toStep(px));
      if (dragFrom !== null) {
        brush.setAttribute("x", Math.min(dragFrom, px));
        brush.setAttribute("width", Math.abs(px - dragFrom));
      }
    });
    overlay.addEventListener("mouseleave", function () { hideCross(); });
    overlay.addEventListener("mousedown", function (ev) {
      dragFrom = localX(ev);
      brush.setAttribute("visibility", "visible");
      brush.setAttribute("width", 0);
    });
    overlay.addEventListener("mouseup", function (ev) {
      var px = localX(ev);
      brush.setAttribute("visibility", "hidden");
      if (dragFrom !== null && Math.abs(px - dragFrom) > 4) { setView(toStep(Math.min(px, dragFrom)), toStep(Math.max(px, dragFrom))); }
      dragFrom = null;
    });
    overlay.addEventListener("dblclick", function () { setView(full[0], full[1]); });
  }

  function nearestIndex(x, step) {
    var i = lowerBound(x, step);
    if (i >= x.length) { return x.length - 1; }
    if (i > 0 && step - x[i - 1] < x[i] - step) { return i - 1; }
    return i;
  }

  function showAt(step) {
    var i = nearestIndex(steps, step), at = steps[i];
    crosshairs.forEach(function (c) {
      c.line.setAttribute("x1", c.sx(at)); c.line.setAttribute("x2", c.sx(at));
      c.line.setAttribute("visibility", "visible");
    });
    var rows = ["<b>step " + at + "</b>"];
    var phase = data.phases.filter(function (p) { return at >= p.first_step && at <= p.last_step; })[0];
    if (phase) { rows.push("phase " + phase.phase); }
    var shown = {};
    data.charts.forEach(function (c) {
      c.series.forEach(function (s) {
        var x = seriesX(s);
        if (!x.length || shown[s.name]) { return; }
        shown[s.name] = true;
        var j = s.x === null ? i : Math.min(x.length - 1, Math.max(0, lowerBound(x, at + 0.5) - 1));
        if (x[j] > at) { return; }
        var label = s.name + (x[j] === at ? "" : " (step " + x[j] + ")");
        rows.push(label + " " + fmt(s.y[j]));
      });
    });
    document.getElementById("readout").innerHTML = rows.join(" · ");
  }

  function hideCross() {
    crosshairs.forEach(function (c) { c.line.setAttribute("visibility", "hidden"); });
  }

  function setView(a, b) {
    a = Math.max(full[0], Math.floor(a)); b = Math.min(full[1], Math.ceil(b));
    if (b - a < 1) { b = Math.min(full[1], a + 1); a = Math.max(full[0], b - 1); }
    view = [a, b];
    try {
      var hash = (a === full[0] && b === full[1]) ? "" : "#zoom=" + a + ":" + b;
      history.replaceState(null, "", location.pathname + location.search + hash);
    } catch (err) { /* some viewers forbid history changes on file: pages */ }
    render();
  }

  function render() {
    crosshairs = [];
    data.charts.forEach(function (c) { drawChart(c, document.getElementById("chart-" + c.id)); });
    var zoomed = view[0] !== full[0] || view[1] !== full[1];
    document.getElementById("zoom-range").textContent = "steps " + view[0] + "–" + view[1] + (zoomed ? " (zoomed)" : "");
    document.getElementById("reset-zoom").disabled = !zoomed;
  }

  function buildControls() {
    data.charts.forEach(function (c) {
      var head = document.getElementById("head-" + c.id);
      var legend = document.createElement("span");
      legend.className = "legend";
      c.series.forEach(function (s, k) {
        var item = document.createElement("button");
        item.type = "button";
        item.className = "legend-item";
        item.setAttribute("data-series", s.name);
        item.innerHTML = '<i style="background:' + COLORS[k % COLORS.length] + '"></i>';
        item.appendChild(document.createTextNode(s.name + (s.x === null ? "" : " (" + s.x.length + ")")));
        item.title = "show or hide " + s.name;
        item.addEventListener("click", function () {
          hidden[s.name] = !hidden[s.name];
          item.classList.toggle("off", !!hidden[s.name]);
          render();
        });
        legend.appendChild(item);
      });
      head.appendChild(legend);
      var label = document.createElement("label");
      label.className = "log-toggle";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !!logY[c.id];
      box.addEventListener("change", function () { logY[c.id] = box.checked; render(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" log y"));
      head.appendChild(label);
    });
    document.getElementById("reset-zoom").addEventListener("click", function () { setView(full[0], full[1]); });
    Array.prototype.forEach.call(document.querySelectorAll("tr[data-step]"), function (row) {
      row.addEventListener("click", function () {
        var s = Number(row.getAttribute("data-step")), w = Math.max(5, Math.round((full[1] - full[0]) / 50));
        setView(s - w, s + w);
        document.getElementById("charts").scrollIntoView();
      });
    });
    var legend = document.getElementById("phase-legend");
    Object.keys(data.phase_colors).forEach(function (name) {
      if (!data.phases.some(function (p) { return p.phase === name; })) { return; }
      var item = document.createElement("span");
      item.className = "phase-key";
      item.innerHTML = '<i style="background:' + data.phase_colors[name] + '"></i>';
      item.appendChild(document.createTextNode(name));
      legend.appendChild(item);
    });
  }

  function zoomFromHash() {
    var m = /zoom=(-?\d+):(-?\d+)/.exec(location.hash || "");
    if (m && Number(m[2]) > Number(m[1])) {
      view = [Math.max(full[0], Number(m[1])), Math.min(full[1], Number(m[2]))];
      if (view[1] <= view[0]) { view = full.slice(); }
    }
  }

  try {
    buildControls();
    zoomFromHash();
    render();
    var pending = null;
    window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(render, 100); });
    document.body.setAttribute("data-rendered", "yes");
  } catch (err) {
    var banner = document.getElementById("report-error");
    banner.textContent = "The charts could not be drawn: " + err;
    banner.hidden = false;
    throw err;
  }
})();
