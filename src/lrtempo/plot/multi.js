/* lrtempo multi-run report: several runs overlaid on SVG charts, drawn from the JSON in #report-data.
 *
 * No library and no network: everything the page needs is in the page.
 * Controls: the smoothing weight a (an exponential moving average, bias-corrected; see ema below), the
 * x axis (step, or the log's seconds column: wall-clock), drag to zoom every chart, double-click (or
 * "reset zoom") for the whole range, "log y" per chart, a click on a run in the legend hides or shows it.
 * The view is kept in the address as #smooth=A&axis=seconds&zoom=FIRST:LAST, so it can be shared.
 *
 * Each chart's <svg> carries data-chart, data-axis, data-smooth, data-x-domain, data-y-domain,
 * data-y-scale and data-plot (left top width height of the plot area, in px); each run's line is a
 * <g data-series=NAME data-run=K data-points=N> whose path.main is what is plotted (smoothed when the
 * smoothing applies) and path.raw the unsmoothed line behind it, so a test can map the drawing back to
 * the runs' numbers.
 */
(function () {
  "use strict";

  var el = lrtempoChart.el, fmt = lrtempoChart.fmt, lowerBound = lrtempoChart.lowerBound;
  var niceTicks = lrtempoChart.niceTicks, logTicks = lrtempoChart.logTicks, picks = lrtempoChart.picks;
  var paddedDomain = lrtempoChart.paddedDomain;
  var HEIGHT = 230;
  var MARGIN = { left: 78, right: 18, top: 12, bottom: 40 };
  var MAX_SMOOTH = 0.999;

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var runs = data.runs;
  var state = { smooth: 0, axis: "step" };
  var hidden = {};
  var logY = {};
  var crosshairs = [];
  var full = [0, 1], view = [0, 1];
  var hasSeconds = runs.some(function (r) { return r.seconds !== null; });
  data.charts.forEach(function (c) { logY[c.id] = c.log_y; });

  // The smoothing: over the line's finite points y_0..y_k in order (a null is a gap: drawn as one, skipped
  // by the average), m_k = a m_(k-1) + (1 - a) y_k from m_(-1) = 0, and w_k = a w_(k-1) + (1 - a) = 1 - a^(k+1);
  // s_k = m_k / w_k = (1 - a) sum_j a^(k-j) y_j / (1 - a^(k+1)): bias-corrected, s_0 = y_0, a = 0 gives y.
  function ema(y, a) {
    var out = new Array(y.length), m = 0, w = 0;
    for (var i = 0; i < y.length; i++) {
      if (y[i] === null) { out[i] = null; continue; }
      m = a * m + (1 - a) * y[i];
      w = a * w + (1 - a);
      out[i] = m / w;
    }
    return out;
  }

  // A run's line on the current axis: its x, the plotted y and the logged y; null when it is not on the axis.
  function lineOf(chart, s) {
    var run = runs[s.run];
    var x = state.axis === "step" ? (s.x === null ? run.steps : s.x) : (s.x === null ? run.seconds : s.t);
    if (x === null) { return null; }
    var smoothed = chart.smooth && state.smooth > 0;
    if (smoothed && s.emaWeight !== state.smooth) { s.emaY = ema(s.y, state.smooth); s.emaWeight = state.smooth; }
    return { x: x, y: smoothed ? s.emaY : s.y, raw: s.y, smoothed: smoothed };
  }

  function linesOf(chart) {
    var out = [];
    chart.series.forEach(function (s) {
      if (hidden[s.run]) { return; }
      var line = lineOf(chart, s);
      if (line !== null && line.x.length) { line.run = s.run; out.push(line); }
    });
    return out;
  }

  function fullRange() {
    var lo = Infinity, hi = -Infinity;
    data.charts.forEach(function (c) {
      linesOf(c).forEach(function (l) {
        lo = Math.min(lo, l.x[0]); hi = Math.max(hi, l.x[l.x.length - 1]);
      });
    });
    if (lo === Infinity) { return [0, 1]; }
    if (lo === hi) { return [lo - 1, hi + 1]; }
    return [lo, hi];
  }

  function visibleSlice(x) { // one point either side of the view, so lines reach the edges
    return [Math.max(0, lowerBound(x, view[0]) - 1), Math.min(x.length, lowerBound(x, view[1] + 1e-9) + 1)];
  }

  function yDomain(chart, lines, log) {
    var lo = Infinity, hi = -Infinity;
    lines.forEach(function (l) {
      var r = visibleSlice(l.x);
      for (var i = r[0]; i < r[1]; i++) {
        [l.y[i], l.raw[i]].forEach(function (v) {
          if (v === null || l.x[i] < view[0] || l.x[i] > view[1] || (log && !(v > 0))) { return; }
          if (v < lo) { lo = v; }
          if (v > hi) { hi = v; }
        });
      }
    });
    return paddedDomain(lo, hi, log, chart.zero);
  }

  function path(l, ys, sx, sy, log, pw, markers) {
    var r = visibleSlice(l.x), idx = picks(l.x, ys, r[0], r[1], sx, pw), d = [], pen = false, n = 0, dots = [];
    idx.forEach(function (i) {
      var v = ys[i];
      if (v === null || (log && !(v > 0))) { pen = false; return; }
      d.push((pen ? "L" : "M") + sx(l.x[i]).toFixed(2) + " " + sy(v).toFixed(2));
      pen = true; n += 1;
      if (markers && idx.length <= 400) { dots.push([sx(l.x[i]), sy(v)]); }
    });
    return { d: d.join(""), n: n, dots: dots };
  }

  function axisLabel() { return state.axis === "step" ? data.x_label : "wall-clock seconds"; }

  function drawChart(chart, box) {
    box.textContent = "";
    var width = Math.max(320, box.clientWidth || 960);
    var pw = width - MARGIN.left - MARGIN.right, ph = HEIGHT - MARGIN.top - MARGIN.bottom;
    var log = logY[chart.id], lines = linesOf(chart), yd = yDomain(chart, lines, log);
    var sx = function (v) { return MARGIN.left + (v - view[0]) / (view[1] - view[0]) * pw; };
    var ty = log ? Math.log10 : function (v) { return v; };
    var y0 = ty(yd[0]), y1 = ty(yd[1]);
    var sy = function (v) { return MARGIN.top + ph - (ty(v) - y0) / (y1 - y0) * ph; };
    var smoothing = chart.smooth && state.smooth > 0;
    var svg = el("svg", {
      width: width, height: HEIGHT, viewBox: "0 0 " + width + " " + HEIGHT, "class": "chart-svg",
      "data-chart": chart.id, "data-axis": state.axis, "data-smooth": smoothing ? state.smooth : 0,
      "data-x-domain": view[0] + " " + view[1], "data-y-domain": yd[0] + " " + yd[1],
      "data-y-scale": log ? "log" : "linear", "data-plot": [MARGIN.left, MARGIN.top, pw, ph].join(" "),
      role: "img", "aria-label": chart.title + " against " + axisLabel()
    }, box);
    var clipId = "clip-" + chart.id;
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph, "class": "plot-bg" }, svg);
    var grid = el("g", { "class": "grid" }, svg);
    var xt = niceTicks(view[0], view[1], Math.max(2, Math.floor(pw / 110)), state.axis === "step" ? 1 : 0);
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
      .textContent = axisLabel();
    el("text", { x: 14, y: MARGIN.top + ph / 2, "text-anchor": "middle", "class": "axis-label y-label",
      transform: "rotate(-90 14 " + (MARGIN.top + ph / 2) + ")" }, svg).textContent = chart.ylabel;

    var plot = el("g", { "class": "series", "clip-path": "url(#" + clipId + ")" }, svg);
    lines.forEach(function (l) {
      var run = runs[l.run], main = path(l, l.y, sx, sy, log, pw, chart.markers);
      var g = el("g", { "data-series": run.name, "data-run": l.run, "data-points": main.n }, plot);
      if (l.smoothed) {
        el("path", { d: path(l, l.raw, sx, sy, log, pw, false).d, stroke: run.color, "class": "line raw" }, g);
      }
      el("path", { d: main.d, stroke: run.color, "class": "line main" }, g);
      main.dots.forEach(function (p) { el("circle", { cx: p[0].toFixed(2), cy: p[1].toFixed(2), r: 2.5, fill: run.color }, g); });
    });

    var cross = el("line", { y1: MARGIN.top, y2: MARGIN.top + ph, "class": "crosshair", visibility: "hidden" }, svg);
    var brush = el("rect", { y: MARGIN.top, height: ph, width: 0, "class": "brush", visibility: "hidden" }, svg);
    var overlay = el("rect", { x: MARGIN.left, y: MARGIN.top, width: pw, height: ph, "class": "overlay" }, svg);
    var toX = function (px) { return view[0] + (px - MARGIN.left) / pw * (view[1] - view[0]); };
    crosshairs.push({ line: cross, sx: sx });
    var dragFrom = null;
    function localX(ev) { return ev.clientX - svg.getBoundingClientRect().left; }
    overlay.addEventListener("mousemove", function (ev) {
      var px = localX(ev);
      showAt(toX(px));
      if (dragFrom !== null) {
        brush.setAttribute("x", Math.min(dragFrom, px));
        brush.setAttribute("width", Math.abs(px - dragFrom));
      }
    });
    overlay.addEventListener("mouseleave", hideCross);
    overlay.addEventListener("mousedown", function (ev) {
      dragFrom = localX(ev);
      brush.setAttribute("visibility", "visible");
      brush.setAttribute("width", 0);
    });
    overlay.addEventListener("mouseup", function (ev) {
      var px = localX(ev);
      brush.setAttribute("visibility", "hidden");
      if (dragFrom !== null && Math.abs(px - dragFrom) > 4) { setView(toX(Math.min(px, dragFrom)), toX(Math.max(px, dragFrom))); }
      dragFrom = null;
    });
    overlay.addEventListener("dblclick", function () { setView(full[0], full[1]); });
  }

  function showAt(at) {
    crosshairs.forEach(function (c) {
      c.line.setAttribute("x1", c.sx(at)); c.line.setAttribute("x2", c.sx(at));
      c.line.setAttribute("visibility", "visible");
    });
    var rows = ["<b>" + axisLabel() + " " + fmt(at) + "</b>"];
    data.charts.forEach(function (c) {
      var parts = [];
      linesOf(c).forEach(function (l) {
        var j = lowerBound(l.x, at + 1e-9) - 1; // the last point at or before the cursor
        if (j < 0) { return; }
        parts.push(runs[l.run].name.replace(/[&<>"]/g, function (ch) { return "&#" + ch.charCodeAt(0) + ";"; }) +
          " " + fmt(l.y[j]));
      });
      if (parts.length) { rows.push(c.ylabel + ": " + parts.join(", ")); }
    });
    document.getElementById("readout").innerHTML = rows.join(" · ");
  }

  function hideCross() {
    crosshairs.forEach(function (c) { c.line.setAttribute("visibility", "hidden"); });
  }

  function writeHash() {
    var parts = [];
    if (state.smooth > 0) { parts.push("smooth=" + state.smooth); }
    if (state.axis !== "step") { parts.push("axis=" + state.axis); }
    if (view[0] !== full[0] || view[1] !== full[1]) { parts.push("zoom=" + view[0] + ":" + view[1]); }
    try {
      history.replaceState(null, "", location.pathname + location.search + (parts.length ? "#" + parts.join("&") : ""));
    } catch (err) { /* some viewers forbid history changes on file: pages */ }
  }

  function setView(a, b) {
    if (state.axis === "step") { a = Math.floor(a); b = Math.ceil(b); }
    a = Math.max(full[0], a); b = Math.min(full[1], b);
    if (!(b > a)) { a = full[0]; b = full[1]; }
    view = [a, b];
    writeHash();
    render();
  }

  function render() {
    crosshairs = [];
    data.charts.forEach(function (c) { drawChart(c, document.getElementById("chart-" + c.id)); });
    var zoomed = view[0] !== full[0] || view[1] !== full[1];
    document.getElementById("zoom-range").textContent = axisLabel() + " " + fmt(view[0]) + "–" + fmt(view[1]) +
      (zoomed ? " (zoomed)" : "");
    document.getElementById("reset-zoom").disabled = !zoomed;
  }

  function setAxis(axis) {
    state.axis = axis === "seconds" && hasSeconds ? "seconds" : "step";
    document.getElementById("axis-" + state.axis).checked = true;
    full = fullRange(); view = full.slice();
  }

  function setSmooth(a) {
    state.smooth = isFinite(a) ? Math.min(MAX_SMOOTH, Math.max(0, a)) : 0;
    document.getElementById("smooth").value = state.smooth;
    document.getElementById("smooth-value").textContent = String(state.smooth);
  }

  function axisNote() {
    var note = document.getElementById("axis-note"), missing = runs.filter(function (r) { return r.seconds === null; });
    if (!missing.length) { return; }
    note.textContent = !hasSeconds ? "wall-clock axis off: no run logs a seconds column"
      : "on the wall-clock axis, left off: " + missing.map(function (r) { return r.name + " (" + r.no_seconds + ")"; }).join("; ");
    note.hidden = false;
    document.getElementById("axis-seconds").disabled = !hasSeconds;
  }

  function buildControls() {
    var legend = document.getElementById("run-legend");
    runs.forEach(function (r, k) {
      var item = document.createElement("button");
      item.type = "button";
      item.className = "legend-item" + (r.seconds === null ? " no-seconds" : "");
      item.setAttribute("data-run", k);
      item.innerHTML = '<i style="background:' + r.color + '"></i>';
      item.appendChild(document.createTextNode(r.name));
      item.title = "show or hide " + r.name + (r.seconds === null ? " (" + r.no_seconds + ")" : "");
      item.addEventListener("click", function () {
        hidden[k] = !hidden[k];
        item.classList.toggle("off", !!hidden[k]);
        full = fullRange(); view = full.slice(); writeHash();
        render();
      });
      legend.appendChild(item);
    });
    data.charts.forEach(function (c) {
      var head = document.getElementById("head-" + c.id);
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
    document.getElementById("smooth").addEventListener("input", function (ev) {
      setSmooth(Number(ev.target.value)); writeHash(); render();
    });
    ["step", "seconds"].forEach(function (axis) {
      document.getElementById("axis-" + axis).addEventListener("change", function () {
        setAxis(axis); writeHash(); render();
      });
    });
    document.getElementById("reset-zoom").addEventListener("click", function () { setView(full[0], full[1]); });
    axisNote();
  }

  function fromHash() {
    var h = location.hash || "", m;
    m = /smooth=([0-9.]+)/.exec(h);
    setSmooth(m ? Number(m[1]) : 0);
    m = /axis=(\w+)/.exec(h);
    setAxis(m ? m[1] : "step");
    m = /zoom=(-?[0-9.e+-]+):(-?[0-9.e+-]+)/.exec(h);
    if (m && Number(m[2]) > Number(m[1])) {
      view = [Math.max(full[0], Number(m[1])), Math.min(full[1], Number(m[2]))];
      if (!(view[1] > view[0])) { view = full.slice(); }
    }
  }

  try {
    buildControls();
    fromHash();
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
