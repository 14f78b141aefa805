"""The HTML run report: one self-contained page of interactive charts and tables for a run.

:func:`render_report` draws a :class:`ReportData` (what ``lrtempo analyze`` found
in a log, plus what the run directory's other files hold; gathered by
:func:`lrtempo.analysis.report_data`) as one HTML page holding:

* charts of ``lr``, ``grad_l2_norm``, ``loss`` with ``val_loss``, and the
  effective rate (``effective_lr_median``/``_p90``/``_max``) on one shared step
  axis, with the phase bands and the events marked on each;
* the summary (``summary.json``), the phases, the events, the trap status over
  time, the per-layer effective rates at the last monitored step (``layers.csv``);
* the config as written (``config.yaml``), its hashes from ``run.json`` and
  whether the config's schedule still has the hash the run recorded.

The page fetches nothing: its script and style are inlined, and its
Content-Security-Policy (``default-src 'none'``) forbids any request, so it
opens the same from a laptop, a CI artifact or an air-gapped cluster. The
charts are SVG drawn by a small hand-written script (``report.js``, with the
helpers it shares with the multi-run page in ``chart.js``); logs longer than
:data:`MAX_ROWS` rows are thinned to the first, lowest, highest and last value
of each of :data:`BUCKETS` step buckets (spikes survive), which the page says.
Nothing here reads a file but the page's own script and style.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._rundir_schema import LAYER_COLUMNS
from ._png import PHASE_COLORS
from ._thin import thin_rows

__all__ = ["REPORT_CHARTS", "Report", "ReportData", "RunRecord", "render_report", "MAX_ROWS", "BUCKETS"]

#: the page may run its own inline script and style and fetch nothing at all
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
#: logs with more rows than this are thinned per bucket before they go into the page
MAX_ROWS = 50_000
#: step buckets a thinned log keeps the first, min, max and last value of
BUCKETS = 4_000


@dataclass(frozen=True)
class SeriesSpec:
    """One log column drawn on a chart.

    ``dense``: a value on (nearly) every row, a gap breaks the line; otherwise
    only the rows that have a value are kept, and joined.
    """

    column: str
    dense: bool = True
    markers: bool = False
    dashed: bool = False


@dataclass(frozen=True)
class ChartSpec:
    """A chart: its id, title, y-axis label (the column name), series and default scale.

    ``log_y``: ``"auto"`` is log when every plotted value is positive and they span over a decade.
    """

    id: str
    title: str
    ylabel: str
    series: tuple[SeriesSpec, ...]
    log_y: bool | str = False
    zero: bool = False  # a linear axis that starts at 0 when every value is >= 0


REPORT_CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("lr", "learning rate", "lr", (SeriesSpec("lr"),), zero=True),
    ChartSpec("grad_l2_norm", "gradient L2 norm (before clipping)", "grad_l2_norm",
              (SeriesSpec("grad_l2_norm"),), log_y="auto"),
    ChartSpec("loss", "training loss and validation loss", "loss",
              (SeriesSpec("loss"), SeriesSpec("val_loss", dense=False, markers=True))),
    ChartSpec("effective_lr", "effective rate Adam applies per parameter (median, p90, max) and lr", "effective_lr",
              (SeriesSpec("effective_lr_median", dense=False), SeriesSpec("effective_lr_p90", dense=False),
               SeriesSpec("effective_lr_max", dense=False), SeriesSpec("lr", dashed=True)), log_y=True),
)


@dataclass(frozen=True)
class RunRecord:
    """What a run directory holds besides its log, as the report shows it.

    ``meta``: ``run.json`` (``{}`` when missing or unreadable); ``config_text``: ``config.yaml`` as written
    (``None`` when missing); ``current_hash``: the ``spec_hash`` of that file's schedule now (``None`` when it
    has none or does not build); ``config_error``: why it does not build; ``summary``: ``summary.json``;
    ``layers``: the rows of ``layers.csv`` at ``layer_step``, its last monitored step.
    """

    meta: dict[str, Any]
    config_text: str | None = None
    current_hash: str | None = None
    config_error: str | None = None
    summary: dict[str, Any] | None = None
    layer_step: int | None = None
    layers: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportData:
    """Everything the report page shows.

    ``metrics``: the log's columns, one row per step, steps increasing; ``phases``, ``events`` and
    ``trap_status``: as :class:`lrtempo.analysis.Analysis` holds them; ``run``: ``None`` for a bare log.
    The page lists ``log_notes`` (what reading the log handled), then its own (thinning, charts left out),
    then ``file_notes`` (what reading the run directory's other files handled).
    """

    target: Path
    title: str
    source: str
    phase_source: str
    metrics: dict[str, np.ndarray]
    phases: list[dict[str, Any]]
    events: list[dict[str, Any]]
    trap_status: list[dict[str, Any]]
    run: RunRecord | None = None
    log_notes: tuple[str, ...] = ()
    file_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """What the report drew: the file (or target), the rows it drew from, and anything it had to leave out."""

    path: Path
    rows: int
    points: int
    charts: tuple[str, ...]
    events: int
    notes: tuple[str, ...] = ()


def _asset(name: str) -> str:
    return resources.files("lrtempo.plot").joinpath(name).read_text(encoding="utf-8")


def page_head(title: str, *styles: str) -> str:
    """A report page's start up to ``</head>``: the no-request policy, ``title`` (HTML already) and the style
    sheets ``styles`` inlined, in order."""
    css = "\n".join(_asset(name) for name in styles)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lrtempo {__version__}">
<title>lrtempo report: {title}</title>
<style>
{css}
</style>
</head>
"""


def _json_list(values: np.ndarray) -> list[Any]:
    """Floats as the shortest repr that reads back exactly; NaN and infinities as null (a gap)."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _thin(n: int, ys: list[np.ndarray], buckets: int = BUCKETS) -> np.ndarray:
    """Row indices that keep, per bucket of rows, the first, last, lowest and highest value of every series
    (and every gap): :func:`lrtempo.plot._thin.thin_rows`.

    >>> _thin(10, [np.arange(10.0)], buckets=2)
    array([0, 4, 5, 9])
    """
    return thin_rows(n, ys, buckets)


def _chart_data(m: dict[str, np.ndarray], rows: np.ndarray, max_rows: int, buckets: int
                ) -> tuple[list[dict[str, Any]], list[str], int]:
    charts, notes, points = [], [], 0
    for spec in REPORT_CHARTS:
        series = []
        for s in spec.series:
            if s.column not in m or not np.isfinite(m[s.column]).any():
                continue
            y = m[s.column]
            if s.dense:
                series.append({"name": s.column, "x": None, "y": _json_list(y[rows]), "markers": s.markers,
                               "dashed": s.dashed})
                points += rows.size
            else:
                ok = np.flatnonzero(np.isfinite(y))
                if ok.size > max_rows:
                    ok = ok[_thin(ok.size, [y[ok]], buckets)]
                series.append({"name": s.column, "x": m["step"][ok].astype(np.int64).tolist(),
                               "y": _json_list(y[ok]), "markers": s.markers, "dashed": s.dashed})
                points += ok.size
        own = [x for x in series if not (x["dashed"] and x["name"] == "lr")]
        if not own:
            missing = ", ".join(s.column for s in spec.series if not s.dashed)
            notes.append(f"no {spec.title} chart: the log has no values in {missing}")
            continue
        log_y = spec.log_y
        if log_y == "auto":
            values = np.concatenate([m[x["name"]][np.isfinite(m[x["name"]])] for x in own])
            log_y = bool(values.size and values.min() > 0 and values.max() / values.min() > 10)
        charts.append({"id": spec.id, "title": spec.title, "ylabel": spec.ylabel, "log_y": bool(log_y),
                       "zero": spec.zero, "series": series})
    return charts, notes, points


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value).lower() if isinstance(value, bool) else "–")
    if isinstance(value, float):
        if not math.isfinite(value):
            return html.escape(repr(value))
        return f'<span title="{value!r}">{value:.6g}</span>'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            return _num(float(value)) if value.strip() else "–"
        except ValueError:
            return html.escape(value)
    return html.escape(json.dumps(value))


def _table(head: list[str], rows: list[list[str]], *, steps: list[int] | None = None,
           numeric: frozenset[int] | set[int] = frozenset()) -> str:
    if not rows:
        return '<p class="empty">none</p>'
    out = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for k, r in enumerate(rows):
        attr = f' data-step="{steps[k]}" title="show step {steps[k]} on the charts"' if steps is not None else ""
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _hash_check(config: RunRecord) -> str:
    """Whether ``config.yaml``'s schedule still has the hash the run recorded, as a note after the hash."""
    recorded = config.meta.get("spec_hash")
    if config.config_error is not None:
        return f' <span class="bad">(config.yaml does not build: {html.escape(config.config_error)})</span>'
    if config.current_hash is None or not recorded:
        return ""
    if config.current_hash == recorded:
        return ' <span class="ok">(config.yaml\'s schedule has this hash)</span>'
    return (f' <span class="bad">(config.yaml\'s schedule now hashes to {config.current_hash[:12]}: edited after the '
            "run?)</span>")


def _config_section(config: RunRecord | None) -> str:
    if config is None:
        return '<p class="empty">a bare log: no config recorded</p>'
    meta = config.meta
    rows = [["config_hash", f"<code>{html.escape(str(meta.get('config_hash', '–')))}</code>"],
            ["spec_hash", f"<code>{html.escape(str(meta.get('spec_hash') or '–'))}</code>{_hash_check(config)}"],
            ["log_schema_version", _num(meta.get("log_schema_version"))],
            ["world_size", _num(meta.get("world_size"))] if "world_size" in meta else None]
    parts = [_table(["field", "value"], [r for r in rows if r is not None])]
    changes = meta.get("schedule_changes") or []
    if changes:
        parts.append("<h3>schedule changes on resume</h3>")
        short = lambda h: f"<code>{html.escape(str(h))[:12]}</code>"
        parts.append(_table(["step", "from", "to"], [[_num(c.get("step")), short(c.get("from")), short(c.get("to"))]
                                                     for c in changes if isinstance(c, dict)]))
    if config.config_text is not None:
        parts.append(f"<h3>config.yaml</h3><pre>{html.escape(config.config_text)}</pre>")
    return "".join(parts)


def _page_rows(m: dict[str, np.ndarray], max_rows: int, buckets: int) -> tuple[np.ndarray, list[str]]:
    """The log rows the page draws: all of them, or of a log over ``max_rows`` rows the thinned ones (noted)."""
    n = int(m["step"].size)
    dense = [m[c] for c in dict.fromkeys(s.column for c in REPORT_CHARTS for s in c.series if s.dense) if c in m]
    rows = _thin(n, dense, buckets) if n > max_rows else np.arange(n)
    if rows.size < n:
        return rows, [f"{n} log rows thinned to {rows.size} for the page: per bucket of about {n // buckets} rows, "
                      "the first, lowest, highest and last values (log.csv has every row)"]
    return rows, []


def _data_json(data: ReportData, rows: np.ndarray, charts: list[dict[str, Any]]) -> str:
    """The page's data block: the drawn steps, the charts' series, phases, phase colours and events."""
    payload = {
        "steps": data.metrics["step"][rows].astype(np.int64).tolist(),
        "charts": charts,
        "phases": [{"phase": p["phase"], "first_step": p["first_step"], "last_step": p["last_step"]}
                   for p in data.phases],
        "phase_colors": PHASE_COLORS,
        "events": [{"step": int(e["step"]), "kind": str(e["kind"]), "message": str(e.get("message", ""))}
                   for e in data.events],
    }
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


#: the per-layer columns the report's layer table shows: layers.csv's after ``step`` and ``layer``
LAYER_VALUES = LAYER_COLUMNS[2:]


def _sections(data: ReportData) -> dict[str, str]:
    """The HTML of each table section: summary, phases, events, trap status, per-layer rates, config."""
    run = data.run
    summary = run.summary if run else None
    layers = run.layers if run else []
    return {
        "summary": _table(["field", "value"], [[html.escape(k), _num(v)] for k, v in summary.items()])
        if summary else '<p class="empty">no summary (a bare log, or the run wrote none)</p>',
        "phases": _table(
            ["phase", "first step", "last step", "updates", "loss change", "mean grad_l2_norm", "lr min", "lr max"],
            [[html.escape(p["phase"]), _num(p["first_step"]), _num(p["last_step"]), _num(p["updates"]),
              _num(p["loss_change"]), _num(p["mean_grad_l2_norm"]), _num(p["lr_min"]), _num(p["lr_max"])]
             for p in data.phases], steps=[p["first_step"] for p in data.phases], numeric={1, 2, 3, 4, 5, 6, 7}),
        "events": _table(["step", "kind", "message"],
                         [[_num(e["step"]), html.escape(str(e["kind"])), html.escape(str(e.get("message", "")))]
                          for e in data.events], steps=[int(e["step"]) for e in data.events], numeric={0}),
        "trap": _table(["first step", "last step", "trap_status"],
                       [[_num(t["first_step"]), _num(t["last_step"]), html.escape(t["status"])]
                        for t in data.trap_status], numeric={0, 1}),
        "layers": (f"<p>at step {run.layer_step}</p>" + _table(
            ["layer", *LAYER_VALUES],
            [[html.escape(r.get("layer", "")), *(_num(r.get(c, "")) for c in LAYER_VALUES)] for r in layers],
            numeric=set(range(1, 7)))) if layers else '<p class="empty">no per-layer log (layers.csv)</p>',
        "config": _config_section(run),
    }


def render_report(data: ReportData, *, max_rows: int = MAX_ROWS, buckets: int = BUCKETS) -> tuple[str, Report]:
    """The report page of ``data``, and what went into it (``path`` is ``data.target``).

    A log of more than ``max_rows`` rows is thinned to ``buckets`` buckets (see :func:`_thin`).
    """
    m = data.metrics  # one row per step, steps increasing
    n = int(m["step"].size)
    rows, thin_notes = _page_rows(m, max_rows, buckets)
    charts, chart_notes, points = _chart_data(m, rows, max_rows, buckets)
    notes = [*data.log_notes, *thin_notes, *chart_notes, *data.file_notes]
    first, last = (int(m["step"][0]), int(m["step"][-1])) if n else (0, 0)
    sub = (f"{html.escape(data.source)} · {n} logged updates, steps {first}–{last} · "
           f"phases from {html.escape(data.phase_source)} · lrtempo {__version__}")
    chart_html = "".join(
        f'<div class="chart-head" id="head-{c["id"]}"><h3>{html.escape(c["title"])}</h3></div>'
        f'<div class="chart" id="chart-{c["id"]}"></div>' for c in charts)
    page = _page(html.escape(data.title), sub, notes, chart_html, _sections(data), len(data.events),
                 _data_json(data, rows, charts))
    return page, Report(data.target, n, points, tuple(c["id"] for c in charts), len(data.events), tuple(notes))


def _page(title: str, sub: str, notes: list[str], chart_html: str, sections: dict[str, str], n_events: int,
          data_json: str) -> str:
    """The page template: ``title``, ``sub`` and ``sections`` are HTML already; ``notes`` plain text."""
    notes_html = "".join(f"<li>{html.escape(t)}</li>" for t in notes)
    return f"""{page_head(title, "report.css")}<body>
<header>
<h1>lrtempo report: {title}</h1>
<p class="sub">{sub}</p>
{f'<ul class="notes">{notes_html}</ul>' if notes else ''}
</header>
<div id="report-error" hidden></div>
<noscript><p>The charts need JavaScript; the tables below are complete without it.</p></noscript>
<section id="summary"><h2>Summary</h2>{sections["summary"]}</section>
<section id="charts">
<h2>Charts</h2>
<div class="toolbar"><span id="zoom-range"></span><button type="button" id="reset-zoom">reset zoom</button>
<span class="hint">drag across a chart to zoom all of them · double-click to reset · hover for values ·
click a phase or event row below to jump there</span></div>
<div id="phase-legend"></div>
<div id="readout">hover over a chart to read the values at a step</div>
{chart_html}
</section>
<section id="phases"><h2>Phases</h2>{sections["phases"]}</section>
<section id="events"><h2>Events ({n_events})</h2>{sections["events"]}</section>
<section id="trap"><h2>Trap status over time</h2>{sections["trap"]}</section>
<section id="layers"><h2>Per-layer effective rate</h2>{sections["layers"]}</section>
<section id="config"><h2>Config</h2>{sections["config"]}</section>
<script id="report-data" type="application/json">{data_json}</script>
<script>
{_asset("chart.js")}
{_asset("report.js")}
</script>
</body>
</html>
"""
