/* lrtempo chart helpers, shared by the run report (report.js) and the multi-run page (multi.js): SVG nodes,
 * number formatting, axis ticks, the y domain's padding and the per-pixel-column choice of points to draw.
 * Each page's script reads them from lrtempoChart; nothing is fetched.
 */
var lrtempoChart = (function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name; nothing is fetched

  function el(tag, attrs, parent) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) { return "–"; }
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) { // 5e-4, 2.5e5: the mantissa without trailing zeros
      var parts = v.toExponential(3).split("e");
      return String(Number(parts[0])) + "e" + Number(parts[1]);
    }
    return String(Number(v.toPrecision(4)));
  }

  function lowerBound(arr, v) { // first index with arr[i] >= v
    var lo = 0, hi = arr.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] < v) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }

  function niceTicks(a, b, count, minStep) {
    var span = b - a;
    if (!(span > 0)) { return [a]; }
    var raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag, step;
    if (r < 1.5) { step = mag; } else if (r < 3) { step = 2 * mag; } else if (r < 7) { step = 5 * mag; } else { step = 10 * mag; }
    step = Math.max(step, minStep || 0);
    var out = [], k0 = Math.ceil(a / step - 1e-9), k1 = Math.floor(b / step + 1e-9);
    for (var k = k0; k <= k1; k++) { out.push(k * step); }
    return out;
  }

  function logTicks(a, b) {
    var lo = Math.ceil(Math.log10(a) - 1e-9), hi = Math.floor(Math.log10(b) + 1e-9), out = [];
    if (hi - lo >= 1) {
      var stride = Math.max(1, Math.ceil((hi - lo + 1) / 7));
      for (var e = lo; e <= hi; e += stride) { out.push(Math.pow(10, e)); }
      return out;
    }
    return niceTicks(a, b, 4).filter(function (t) { return t > 0; });
  }

  function picks(x, y, i0, i1, sx, width) {
    // indices to draw: all of them, or the first, min, max and last of each pixel column when
    // there are more points than 2 per column (spikes survive, the path stays small)
    if (i1 - i0 <= 2 * width) { var all = []; for (var i = i0; i < i1; i++) { all.push(i); } return all; }
    var out = [], col = null, lo = -1, hi = -1, first = -1, last = -1;
    function flush() {
      if (first < 0) { return; }
      [first, lo, hi, last].filter(function (v, k, arr) { return v >= 0 && arr.indexOf(v) === k; })
        .sort(function (p, q) { return p - q; }).forEach(function (v) { out.push(v); });
    }
    for (var j = i0; j < i1; j++) {
      var c = Math.floor(sx(x[j]));
      if (c !== col) { flush(); col = c; first = lo = hi = last = -1; }
      if (y[j] === null) { flush(); out.push(j); first = lo = hi = last = -1; continue; }
      if (first < 0) { first = j; lo = j; hi = j; }
      if (y[j] < y[lo]) { lo = j; }
      if (y[j] > y[hi]) { hi = j; }
      last = j;
    }
    flush();
    return out;
  }

  // the y domain of the values lo..hi drawn (Infinity: none): 5% of margin (on a log scale, of the ratio),
  // down to 0 for a chart that starts at zero, a width for a single value
  function paddedDomain(lo, hi, log, zero) {
    if (lo === Infinity) { return log ? [0.1, 10] : [0, 1]; }
    if (log) {
      if (lo === hi) { return [lo / 2, hi * 2]; }
      var pad = Math.pow(hi / lo, 0.05);
      return [lo / pad, hi * pad];
    }
    if (zero && lo >= 0) { lo = 0; }
    if (lo === hi) { var d = lo === 0 ? 1 : Math.abs(lo) * 0.1; return [lo - d, hi + d]; }
    var margin = (hi - lo) * 0.05;
    return [zero && lo === 0 ? 0 : lo - margin, hi + margin];
  }

  return { el: el, fmt: fmt, lowerBound: lowerBound, niceTicks: niceTicks, logTicks: logTicks, picks: picks,
           paddedDomain: paddedDomain };
})();
