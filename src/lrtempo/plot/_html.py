"""The HTML run report: one self-contained page of interactive charts and tables for a run.

:func:`run_report` reads a run directory (or any log CSV with
``step,lr,grad_l2_norm,loss``), runs the same analysis as ``lrtempo analyze``
and writes one HTML file holding:

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
charts are SVG drawn by a small hand-written script (``report.js``); logs longer
than :data:`MAX_ROWS` rows are thinned to the first, lowest, highest and last
value of each of :data:`BUCKETS` step buckets (spikes survive), which the page
says.
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._atomic import atomic_write_text
from .._rundir_schema import LAYER_COLUMNS, RUN_FILES
from ..analysis import Analysis, analyze_log
from ..analysis._analyze import PHASE_COLORS
from ..analysis._logfile import is_regular
from ..analysis._thin import thin_rows
from ..config import ConfigError, Problem, read_config_file, spec_hash

__all__ = ["REPORT_CHARTS", "Report", "report_html", "run_report", "MAX_ROWS", "BUCKETS"]

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
class Report:
    """What :func:`run_report` wrote: the file, the rows it drew from, and anything it had to leave out."""

    path: Path
    rows: int
    points: int
    charts: tuple[str, ...]
    events: int
    notes: tuple[str, ...] = ()


def _asset(name: str) -> str:
    return resources.files("lrtempo.plot").joinpath(name).read_text(encoding="utf-8")


def _json_list(values: np.ndarray) -> list[Any]:
    """Floats as the shortest repr that reads back exactly; NaN and infinities as null (a gap)."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _thin(n: int, ys: list[np.ndarray], buckets: int = BUCKETS) -> np.ndarray:
    """Row indices that keep, per bucket of rows, the first, last, lowest and highest value of every series
    (and every gap): :func:`lrtempo.analysis._thin.thin_rows`.

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


def _unreadable(path: Path, notes: list[str]) -> bool:
    """A side file that exists but is not a regular file (a FIFO would block the report): noted, left out."""
    if path.exists() and not is_regular(path):
        notes.append(f"{path.name} is not a regular file; left out")
        return True
    return False


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        notes.append(f"no {path.name} in the run directory")
        return None
    if _unreadable(path, notes):
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        notes.append(f"{path.name} is not readable JSON ({exc}); left out")
        return None
    if not isinstance(value, dict):
        notes.append(f"{path.name} holds a {type(value).__name__}, not an object; left out")
        return None
    return value


def _last_layers(path: Path, notes: list[str]) -> tuple[int | None, list[dict[str, str]]]:
    """The rows of ``layers.csv`` at its last step with a value (the last monitored step)."""
    if not path.exists() or _unreadable(path, notes):
        return None, []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        notes.append(f"layers.csv is not a readable CSV ({exc}); left out")
        return None, []
    last: int | None = None
    for r in rows:
        try:
            step = int(r.get("step") or "")
        except ValueError:
            continue
        if (r.get("effective_lr_median") or "").strip() and (last is None or step > last):
            last = step
    return last, [r for r in rows if last is not None and (r.get("step") or "").strip() == str(last)]


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


def _config_section(run_dir: Path | None, analysis_notes: list[str]) -> str:
    if run_dir is None:
        return '<p class="empty">a bare log: no config recorded</p>'
    parts = []
    meta = _read_json(run_dir / RUN_FILES.meta, analysis_notes) or {}
    cfg = run_dir / RUN_FILES.config
    recorded = meta.get("spec_hash")
    check = ""
    text = None
    if cfg.exists():
        text = cfg.read_text(encoding="utf-8", errors="replace")
        try:
            data = read_config_file(cfg)
            now = spec_hash(data["schedule"]) if isinstance(data, dict) and "schedule" in data else None
        except (ConfigError, ValueError, KeyError) as exc:
            now = None
            check = f' <span class="bad">(config.yaml does not build: {html.escape(str(exc))})</span>'
        if now is not None and recorded:
            check = (' <span class="ok">(config.yaml\'s schedule has this hash)</span>' if now == recorded else
                     f' <span class="bad">(config.yaml\'s schedule now hashes to {now[:12]}: edited after the run?)'
                     "</span>")
    else:
        analysis_notes.append("no config.yaml in the run directory")
    rows = [["config_hash", f"<code>{html.escape(str(meta.get('config_hash', '–')))}</code>"],
            ["spec_hash", f"<code>{html.escape(str(recorded or '–'))}</code>{check}"],
            ["log_schema_version", _num(meta.get("log_schema_version"))],
            ["world_size", _num(meta.get("world_size"))] if "world_size" in meta else None]
    parts.append(_table(["field", "value"], [r for r in rows if r is not None]))
    changes = meta.get("schedule_changes") or []
    if changes:
        parts.append("<h3>schedule changes on resume</h3>")
        short = lambda h: f"<code>{html.escape(str(h))[:12]}</code>"
        parts.append(_table(["step", "from", "to"], [[_num(c.get("step")), short(c.get("from")), short(c.get("to"))]
                                                     for c in changes if isinstance(c, dict)]))
    if text is not None:
        parts.append(f"<h3>config.yaml</h3><pre>{html.escape(text)}</pre>")
    return "".join(parts)


def report_html(target: str | Path, *, trap_window: int | None = None, max_rows: int = MAX_ROWS,
                buckets: int = BUCKETS) -> tuple[str, Report]:
    """The report page for a run directory or a log CSV, and what went into it (``path`` is the target).

    A log of more than ``max_rows`` rows is thinned to ``buckets`` buckets (see :func:`_thin`).
    """
    target = Path(target)
    analysis: Analysis = analyze_log(target, trap_window=trap_window)
    run_dir = target if target.is_dir() else None
    notes = list(analysis.notes)  # what reading the log handled (a resumed run's rows, a torn line, ...)
    m = analysis.metrics  # one row per step, steps increasing (read_log_file)
    n = int(m["step"].size)
    dense = [m[c] for c in dict.fromkeys(s.column for c in REPORT_CHARTS for s in c.series if s.dense) if c in m]
    rows = _thin(n, dense, buckets) if n > max_rows else np.arange(n)
    if rows.size < n:
        notes.append(f"{n} log rows thinned to {rows.size} for the page: per bucket of about {n // buckets} rows, "
                     "the first, lowest, highest and last values (log.csv has every row)")
    charts, chart_notes, points = _chart_data(m, rows, max_rows, buckets)
    notes += chart_notes
    summary = _read_json(run_dir / RUN_FILES.summary, notes) if run_dir else None
    config_html = _config_section(run_dir, notes)
    layer_step, layers = _last_layers(run_dir / RUN_FILES.layers, notes) if run_dir else (None, [])

    title = run_dir.resolve().name if run_dir else target.name
    payload = {
        "steps": m["step"][rows].astype(np.int64).tolist(),
        "charts": charts,
        "phases": [{"phase": p["phase"], "first_step": p["first_step"], "last_step": p["last_step"]}
                   for p in analysis.phases],
        "phase_colors": PHASE_COLORS,
        "events": [{"step": int(e["step"]), "kind": str(e["kind"]), "message": str(e.get("message", ""))}
                   for e in analysis.events],
    }
    data_json = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")

    summary_html = _table(["field", "value"], [[html.escape(k), _num(v)] for k, v in summary.items()]) \
        if summary else '<p class="empty">no summary (a bare log, or the run wrote none)</p>'
    phases_html = _table(
        ["phase", "first step", "last step", "updates", "loss change", "mean grad_l2_norm", "lr min", "lr max"],
        [[html.escape(p["phase"]), _num(p["first_step"]), _num(p["last_step"]), _num(p["updates"]),
          _num(p["loss_change"]), _num(p["mean_grad_l2_norm"]), _num(p["lr_min"]), _num(p["lr_max"])]
         for p in analysis.phases], steps=[p["first_step"] for p in analysis.phases], numeric={1, 2, 3, 4, 5, 6, 7})
    events_html = _table(["step", "kind", "message"],
                         [[_num(e["step"]), html.escape(str(e["kind"])), html.escape(str(e.get("message", "")))]
                          for e in analysis.events], steps=[int(e["step"]) for e in analysis.events], numeric={0})
    trap_html = _table(["first step", "last step", "trap_status"],
                       [[_num(t["first_step"]), _num(t["last_step"]), html.escape(t["status"])]
                        for t in analysis.trap_timeline], numeric={0, 1})
    layer_cols = list(LAYER_COLUMNS[2:])  # after step and layer
    layers_html = (f"<p>at step {layer_step}</p>" + _table(["layer", *layer_cols],
                   [[html.escape(r.get("layer", "")), *(_num(r.get(c, "")) for c in layer_cols)] for r in layers],
                   numeric=set(range(1, 7)))) if layers else '<p class="empty">no per-layer log (layers.csv)</p>'
    chart_html = "".join(
        f'<div class="chart-head" id="head-{c["id"]}"><h3>{html.escape(c["title"])}</h3></div>'
        f'<div class="chart" id="chart-{c["id"]}"></div>' for c in charts)
    notes_html = "".join(f"<li>{html.escape(t)}</li>" for t in notes)
    first, last = (int(m["step"][0]), int(m["step"][-1])) if n else (0, 0)
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lrtempo {__version__}">
<title>lrtempo report: {html.escape(title)}</title>
<style>
{_asset("report.css")}
</style>
</head>
<body>
<header>
<h1>lrtempo report: {html.escape(title)}</h1>
<p class="sub">{html.escape(analysis.source)} · {n} logged updates, steps {first}–{last} · \
phases from {html.escape(analysis.phase_source)} · lrtempo {__version__}</p>
{f'<ul class="notes">{notes_html}</ul>' if notes else ''}
</header>
<div id="report-error" hidden></div>
<noscript><p>The charts need JavaScript; the tables below are complete without it.</p></noscript>
<section id="summary"><h2>Summary</h2>{summary_html}</section>
<section id="charts">
<h2>Charts</h2>
<div class="toolbar"><span id="zoom-range"></span><button type="button" id="reset-zoom">reset zoom</button>
<span class="hint">drag across a chart to zoom all of them · double-click to reset · hover for values ·
click a phase or event row below to jump there</span></div>
<div id="phase-legend"></div>
<div id="readout">hover over a chart to read the values at a step</div>
{chart_html}
</section>
<section id="phases"><h2>Phases</h2>{phases_html}</section>
<section id="events"><h2>Events ({len(analysis.events)})</h2>{events_html}</section>
<section id="trap"><h2>Trap status over time</h2>{trap_html}</section>
<section id="layers"><h2>Per-layer effective rate</h2>{layers_html}</section>
<section id="config"><h2>Config</h2>{config_html}</section>
<script id="report-data" type="application/json">{data_json}</script>
<script>
{_asset("report.js")}
</script>
</body>
</html>
"""
    return page, Report(target, n, points, tuple(c["id"] for c in charts), len(analysis.events), tuple(notes))


def run_report(target: str | Path, output: str | Path | None = None, *, trap_window: int | None = None,
               max_rows: int = MAX_ROWS, buckets: int = BUCKETS) -> Report:
    """Write the report of a run directory (default ``RUN_DIR/report.html``) or of a log CSV (default
    ``LOG.report.html`` beside it), atomically; returns what was written."""
    target = Path(target)
    if output is None:
        output = target / "report.html" if target.is_dir() else target.with_name(target.stem + ".report.html")
    output = Path(output)
    if output.is_dir():
        raise ConfigError([Problem("output", f"{output} is a folder; give a file name such as report.html")])
    if not output.parent.is_dir():
        raise ConfigError([Problem("output", f"the folder {output.parent} does not exist")])
    page, report = report_html(target, trap_window=trap_window, max_rows=max_rows, buckets=buckets)
    atomic_write_text(output, page)
    return replace(report, path=output)
