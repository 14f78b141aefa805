"""The multi-run report: several runs overlaid on one self-contained page.

:func:`render_multi_report` draws a list of :class:`MultiRun` (a run's name, its
log's columns and the schedule hash it recorded; gathered from run directories
and log CSVs by :func:`lrtempo.analysis.multi_report_data`, or from a race's
curves) as one HTML page holding:

* one chart per column (``lr``, ``grad_l2_norm``, ``loss``, ``val_loss``,
  ``effective_lr_median``), each run a line of its own colour;
* a legend naming each run (a click hides or shows it on every chart);
* a smoothing control: an exponential moving average applied by the page's
  script to ``grad_l2_norm``, ``loss`` and ``val_loss`` (``lr`` and the
  effective rate are drawn as logged), bias-corrected, over the points of
  each line in order (:data:`EMA_FORMULA`); the unsmoothed line stays faintly
  behind it;
* a step / wall-clock axis toggle: the wall-clock axis is the log's
  ``seconds`` column; a run whose log has none (or whose ``seconds`` are not
  finite and non-decreasing) is left off that axis, which the page says, and
  with no such run the toggle is disabled;
* a table per run: rows, last step, final loss (the last logged value), the
  lowest ``val_loss``, the last ``seconds`` and the schedule hash when known.

The page fetches nothing (the same Content-Security-Policy as the single-run
report). Each log is thinned exactly as the single-run report thins it (more
than :data:`~lrtempo.plot.MAX_ROWS` rows: per bucket of rows its first, lowest,
highest and last values), and the smoothing runs over the points the page
holds, so over a thinned log it averages the thinned points (the page says
which runs were thinned). The view state (smoothing, axis, zoom) is kept in
the address, ``#smooth=0.9&axis=seconds&zoom=A:B``, so a view can be shared.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ._html import (
    BUCKETS,
    MAX_ROWS,
    ChartSpec,
    SeriesSpec,
    _asset,
    _json_list,
    _num,
    _page_rows,
    _table,
    _thin,
    page_head,
)

__all__ = ["EMA_FORMULA", "MULTI_CHARTS", "MultiReport", "MultiRun", "render_multi_report", "run_names"]

#: the charts of the multi-run page, one column each (its runs overlaid)
MULTI_CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("lr", "learning rate", "lr", (SeriesSpec("lr"),), zero=True),
    ChartSpec("grad_l2_norm", "gradient L2 norm (before clipping)", "grad_l2_norm", (SeriesSpec("grad_l2_norm"),),
              log_y="auto"),
    ChartSpec("loss", "training loss", "loss", (SeriesSpec("loss"),)),
    ChartSpec("val_loss", "validation loss", "val_loss", (SeriesSpec("val_loss", dense=False, markers=True),)),
    ChartSpec("effective_lr_median", "median effective rate Adam applies per parameter", "effective_lr_median",
              (SeriesSpec("effective_lr_median", dense=False),), log_y=True),
)
#: the charts the smoothing control applies to
SMOOTHED = frozenset({"grad_l2_norm", "loss", "val_loss"})
#: the run colours, in order (repeated past the tenth run)
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
              "#17becf")
#: the page's smoothing, as it states it
EMA_FORMULA = ("s_k = (1 - a) * sum_j a^(k-j) * y_j / (1 - a^(k+1)) over the line's finite points y_0..y_k, "
               "for the weight a in [0, 0.999] (0: no smoothing): an exponential moving average, bias-corrected "
               "so that s_0 = y_0 (the same as dividing by sum_j a^(k-j))")


@dataclass(frozen=True)
class MultiRun:
    """One run of the multi-run page.

    ``metrics``: its log's columns (``step`` increasing, float64 columns, NaN for no value); ``source``: where
    it was read (a path, or a race's description); ``spec_hash``: the schedule hash its ``run.json`` recorded
    (``None`` when unknown); ``notes``: what reading it handled, shown on the page after the run's name.
    """

    name: str
    source: str
    metrics: dict[str, np.ndarray]
    spec_hash: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MultiReport:
    """What the multi-run page drew: the file, the runs' names and rows, the charts, and the page's notes."""

    path: Path
    runs: tuple[str, ...]
    rows: tuple[int, ...]
    charts: tuple[str, ...]
    notes: tuple[str, ...] = ()


def run_names(paths: Sequence[Path]) -> list[str]:
    """Distinct display names of ``paths``: each the shortest tail of its path that no other path shares.

    >>> run_names([Path("/r/seed-0/stable"), Path("/r/seed-1/stable"), Path("/r/seed-0/cosine")])
    ['seed-0/stable', 'seed-1/stable', 'cosine']
    >>> run_names([Path("/a/log.csv"), Path("/b/log.csv")])
    ['a/log.csv', 'b/log.csv']
    """
    parts = [p.parts for p in paths]
    depth = [1] * len(paths)
    while True:
        names = ["/".join(ps[-d:]) for ps, d in zip(parts, depth)]
        clash = [i for i, n in enumerate(names) if names.count(n) > 1 and depth[i] < len(parts[i])]
        if not clash:
            return names
        for i in clash:
            depth[i] += 1


def _seconds(m: dict[str, np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    """The run's wall-clock column, or ``None`` and why it has none."""
    t = m.get("seconds")
    if t is None or not np.isfinite(t).any():
        return None, "no wall-clock axis: the log has no seconds column"
    if not np.isfinite(t).all() or np.any(np.diff(t) < 0):
        return None, "no wall-clock axis: its seconds column has blank or decreasing values"
    return t, None


def _series(m: dict[str, np.ndarray], spec: SeriesSpec, rows: np.ndarray, t: np.ndarray | None, max_rows: int,
            buckets: int) -> dict[str, Any] | None:
    """One run's line on a chart: ``x`` (``None``: the run's drawn steps), ``t`` (its seconds) and ``y``."""
    y = m.get(spec.column)
    if y is None or not np.isfinite(y).any():
        return None
    if spec.dense:
        return {"x": None, "t": None, "y": _json_list(y[rows])}
    ok = np.flatnonzero(np.isfinite(y))
    if ok.size > max_rows:
        ok = ok[_thin(ok.size, [y[ok]], buckets)]
    return {"x": m["step"][ok].astype(np.int64).tolist(), "t": None if t is None else _json_list(t[ok]),
            "y": _json_list(y[ok])}


def _run_payload(k: int, run: MultiRun, max_rows: int, buckets: int) -> tuple[dict[str, Any], list[str], dict]:
    """The run's block of the page's data, its notes, and its lines by chart id."""
    m = run.metrics
    rows, thin_notes = _page_rows(m, max_rows, buckets)
    t, t_note = _seconds(m)
    lines = {c.id: line for c in MULTI_CHARTS
             if (line := _series(m, c.series[0], rows, t, max_rows, buckets)) is not None}
    notes = [f"{run.name}: {n}" for n in (*run.notes, *thin_notes, *([t_note] if t_note else []))]
    block = {"name": run.name, "color": RUN_COLORS[k % len(RUN_COLORS)],
             "steps": m["step"][rows].astype(np.int64).tolist(),
             "seconds": None if t is None else _json_list(t[rows]), "no_seconds": t_note}
    return block, notes, lines


def _log_y(spec: ChartSpec, runs: Sequence[MultiRun]) -> bool:
    """A chart's default scale; ``"auto"``: log when every value of every run is positive and they span over
    a decade."""
    if spec.log_y != "auto":
        return bool(spec.log_y)
    col = spec.series[0].column
    values = np.concatenate([r.metrics[col][np.isfinite(r.metrics[col])] for r in runs if col in r.metrics] or
                            [np.zeros(0)])
    return bool(values.size and values.min() > 0 and values.max() / values.min() > 10)


def _page_data(runs: Sequence[MultiRun], x_label: str, max_rows: int, buckets: int
               ) -> tuple[dict[str, Any], list[str]]:
    blocks, notes, lines = [], [], []
    for k, run in enumerate(runs):
        block, run_notes, run_lines = _run_payload(k, run, max_rows, buckets)
        blocks.append(block)
        notes += run_notes
        lines.append(run_lines)
    charts = []
    for spec in MULTI_CHARTS:
        series = [{"run": k, **ls[spec.id]} for k, ls in enumerate(lines) if spec.id in ls]
        if not series:
            notes.append(f"no {spec.title} chart: no run logs {spec.series[0].column}")
            continue
        charts.append({"id": spec.id, "title": spec.title, "ylabel": spec.ylabel, "log_y": _log_y(spec, runs),
                       "zero": spec.zero, "smooth": spec.id in SMOOTHED, "markers": spec.series[0].markers,
                       "series": series})
    return {"x_label": x_label, "runs": blocks, "charts": charts}, notes


def _last_finite(y: np.ndarray | None) -> float | None:
    if y is None:
        return None
    ok = np.flatnonzero(np.isfinite(y))
    return float(y[ok[-1]]) if ok.size else None


def _min_finite(y: np.ndarray | None) -> float | None:
    return float(np.nanmin(y)) if y is not None and np.isfinite(y).any() else None


def _run_table(runs: Sequence[MultiRun]) -> str:
    """One row per run: its colour and name, where it was read, rows, last step, final loss, lowest val_loss,
    last seconds and schedule hash."""
    rows = []
    for k, run in enumerate(runs):
        m = run.metrics
        swatch = f'<i class="swatch" style="background:{RUN_COLORS[k % len(RUN_COLORS)]}"></i>'
        h = (f'<code title="{html.escape(run.spec_hash)}">{html.escape(run.spec_hash[:12])}</code>'
             if run.spec_hash else "–")
        last = int(m["step"][-1]) if m["step"].size else None
        rows.append([swatch + html.escape(run.name), html.escape(run.source), _num(int(m["step"].size)), _num(last),
                     _num(_last_finite(m.get("loss"))), _num(_min_finite(m.get("val_loss"))),
                     _num(_last_finite(m.get("seconds"))), h])
    return _table(["run", "read from", "rows", "last step", "final loss", "lowest val_loss", "seconds",
                   "spec_hash"], rows, numeric={2, 3, 4, 5, 6})


def render_multi_report(runs: Sequence[MultiRun], *, title: str | None = None, x_label: str = "step",
                        max_rows: int = MAX_ROWS, buckets: int = BUCKETS) -> tuple[str, MultiReport]:
    """The multi-run page of ``runs`` (distinct names, at least one) and what went into it (``path`` empty).

    ``x_label``: what a point of the step axis is (``"step"``; a race of epochs says ``"epoch"``). Each log of
    more than ``max_rows`` rows is thinned to ``buckets`` buckets, as :func:`lrtempo.plot.render_report` does.
    """
    names = [r.name for r in runs]
    if not runs or len(set(names)) != len(names):
        raise ValueError(f"runs: need at least one, with distinct names (got {names})")
    data, notes = _page_data(runs, x_label, max_rows, buckets)
    title = title or f"{len(runs)} runs"
    sub = (f"{' · '.join(html.escape(n) for n in names)} · lrtempo {__version__}")
    chart_html = "".join(
        f'<div class="chart-head" id="head-{c["id"]}"><h3>{html.escape(c["title"])}</h3></div>'
        f'<div class="chart" id="chart-{c["id"]}"></div>' for c in data["charts"])
    block = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    page = _page(html.escape(title), sub, notes, chart_html, _run_table(runs), block)
    return page, MultiReport(Path(), tuple(names), tuple(int(r.metrics["step"].size) for r in runs),
                             tuple(c["id"] for c in data["charts"]), tuple(notes))


def _page(title: str, sub: str, notes: list[str], chart_html: str, table: str, data_json: str) -> str:
    """The page template: ``title``, ``sub``, ``chart_html`` and ``table`` are HTML already; ``notes`` text."""
    notes_html = "".join(f"<li>{html.escape(t)}</li>" for t in notes)
    return f"""{page_head(title, "report.css", "multi.css")}<body>
<header>
<h1>lrtempo report: {title}</h1>
<p class="sub">{sub}</p>
{f'<ul class="notes">{notes_html}</ul>' if notes else ''}
</header>
<div id="report-error" hidden></div>
<noscript><p>The charts need JavaScript; the table below is complete without it.</p></noscript>
<section id="runs"><h2>Runs</h2>{table}</section>
<section id="charts">
<h2>Charts</h2>
<div class="toolbar">
<label class="smooth-control">smoothing <input type="range" id="smooth" min="0" max="0.999" step="0.001" value="0">
<output id="smooth-value">0</output></label>
<span class="axis-control">x axis
<label><input type="radio" name="axis" id="axis-step" value="step" checked> step</label>
<label><input type="radio" name="axis" id="axis-seconds" value="seconds"> wall-clock (seconds)</label></span>
<span id="zoom-range"></span><button type="button" id="reset-zoom">reset zoom</button>
</div>
<p class="hint">smoothing (grad_l2_norm, loss and val_loss; lr and the effective rate are drawn as logged, and
the unsmoothed line stays faintly behind): {html.escape(EMA_FORMULA)}</p>
<p class="hint">drag across a chart to zoom all of them · double-click to reset · hover for values · click a run
in the legend to hide or show it</p>
<p id="axis-note" class="axis-note" hidden></p>
<div id="run-legend" class="legend"></div>
<div id="readout">hover over a chart to read the values</div>
{chart_html}
</section>
<script id="report-data" type="application/json">{data_json}</script>
<script>
{_asset("chart.js")}
{_asset("multi.js")}
</script>
</body>
</html>
"""
