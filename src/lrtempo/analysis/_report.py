"""What ``lrtempo report`` shows of a run: the analysis of its log and its other files, handed to the page.

:func:`report_data` reads a run directory (or any log CSV with
``step,lr,grad_l2_norm,loss``), runs the same analysis as ``lrtempo analyze`` and
reads ``summary.json``, ``run.json``, ``config.yaml`` and ``layers.csv``, noting
(never failing on) a side file that is missing, unreadable or not a regular
file; :func:`lrtempo.plot.render_report` draws the page from it, and
:func:`run_report` writes it. :func:`run_multi_report` writes one page of
several runs overlaid (:func:`lrtempo.plot.render_multi_report`), each read by
:func:`report_data`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from ..config import ConfigError, Problem, read_config_file, spec_hash
from ..plot import BUCKETS, MAX_ROWS, Report, ReportData, RunRecord, render_report
from ..plot._multi import MultiReport, MultiRun, render_multi_report, run_names
from ..rundir import RunDir
from ._analyze import analyze_log
from ._logfile import is_regular, resolve_log

__all__ = ["MULTI_REPORT", "multi_report_data", "report_data", "report_html", "run_multi_report", "run_report"]

#: where ``lrtempo report A B ...`` writes its page when not told: in the current folder
MULTI_REPORT = "compare.html"


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
        notes.append(f"{path.name} is not a readable CSV ({exc}); left out")
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


def _config_file(cfg: Path, recorded: Any = None) -> tuple[str, str | None, str | None]:
    """``config.yaml`` as written, the ``spec_hash`` of its schedule now (``recorded``, the hash in ``run.json``,
    when that is one of the schedule's hashes: an older lrtempo's), and why it does not build (if so)."""
    text = cfg.read_text(encoding="utf-8", errors="replace")
    try:
        data = read_config_file(cfg)
        now = spec_hash(data["schedule"]) if isinstance(data, dict) and "schedule" in data else None
    except (ConfigError, ValueError, KeyError) as exc:
        return text, None, str(exc)
    return text, now, None


def _run_files(run_dir: Path, notes: list[str]) -> RunRecord:
    """What the run directory holds besides its log; each side file missing or left out is noted."""
    run = RunDir(run_dir)
    summary = _read_json(run.summary, notes)
    meta = _read_json(run.meta, notes) or {}
    cfg = run.config
    text = now = error = None
    if cfg.exists():
        text, now, error = _config_file(cfg, meta.get("spec_hash"))
    else:
        notes.append(f"no {cfg.name} in the run directory")
    layer_step, layers = _last_layers(run.layers, notes)
    return RunRecord(meta, text, now, error, summary, layer_step, layers)


def report_data(target: str | Path, *, trap_window: int | None = None,
                mapping: Mapping[str, str] | None = None) -> ReportData:
    """What the report of a run directory, a log CSV or another trainer's record shows (the log read by
    :func:`analyze_log`, ``mapping`` naming a record's columns)."""
    target = Path(target)
    analysis = analyze_log(target, trap_window=trap_window, mapping=mapping)
    run_dir = resolve_log(target)[0]
    file_notes: list[str] = []
    run = _run_files(run_dir, file_notes) if run_dir else None
    return ReportData(target, run_dir.resolve().name if run_dir else target.name, analysis.source,
                      analysis.phase_source, analysis.metrics, analysis.phases, analysis.events,
                      analysis.trap_status, run, analysis.notes, tuple(file_notes))


def report_html(target: str | Path, *, trap_window: int | None = None, max_rows: int = MAX_ROWS,
                buckets: int = BUCKETS, mapping: Mapping[str, str] | None = None) -> tuple[str, Report]:
    """The report page for a run directory or a log CSV, and what went into it (``path`` is the target).

    A log of more than ``max_rows`` rows is thinned to ``buckets`` buckets (:func:`lrtempo.plot.render_report`).
    """
    return render_report(report_data(target, trap_window=trap_window, mapping=mapping), max_rows=max_rows,
                         buckets=buckets)


def run_report(target: str | Path, output: str | Path | None = None, *, trap_window: int | None = None,
               max_rows: int = MAX_ROWS, buckets: int = BUCKETS, mapping: Mapping[str, str] | None = None) -> Report:
    """Write the report of a run directory or another trainer's folder (default ``FOLDER/report.html``) or of
    a log file (default ``LOG.report.html`` beside it), atomically; returns what was written."""
    target = Path(target)
    if output is None:
        output = RunDir(target).report if target.is_dir() else target.with_name(target.stem + ".report.html")
    output = Path(output)
    if output.is_dir():
        raise ConfigError([Problem("output", f"{output} is a folder; give a file name such as report.html")])
    if not output.parent.is_dir():
        raise ConfigError([Problem("output", f"the folder {output.parent} does not exist")])
    page, report = report_html(target, trap_window=trap_window, max_rows=max_rows, buckets=buckets, mapping=mapping)
    atomic_write_text(output, page)
    return replace(report, path=output)


def multi_report_data(targets: Sequence[str | Path], *, trap_window: int | None = None,
                      mapping: Mapping[str, str] | None = None) -> list[MultiRun]:
    """Each target (a run directory or a log CSV) read by :func:`report_data`, named apart by
    :func:`lrtempo.plot.run_names`, as the runs of the multi-run page. A target given twice is refused."""
    paths = [Path(t) for t in targets]
    seen: dict[Path, Path] = {}
    for p in paths:
        if p.resolve() in seen:
            also = "" if str(seen[p.resolve()]) == str(p) else f" (also as {seen[p.resolve()]})"
            raise ConfigError([Problem("", f"{p} is given twice{also}: give each run once")])
        seen[p.resolve()] = p
    # each run as `lrtempo report TARGET` reads it, with the same column mapping
    reports = [report_data(p, trap_window=trap_window, mapping=mapping) for p in paths]
    names = run_names([p.resolve() for p in paths])
    return [MultiRun(name, str(r.target), r.metrics, _recorded_hash(r.run), r.log_notes)
            for name, r in zip(names, reports)]


def _recorded_hash(run: RunRecord | None) -> str | None:
    """The schedule hash ``run.json`` recorded, or None (a bare log, or none recorded)."""
    value = run.meta.get("spec_hash") if run is not None else None
    return str(value) if value else None


def run_multi_report(targets: Sequence[str | Path], output: str | Path | None = None, *,
                     trap_window: int | None = None, max_rows: int = MAX_ROWS, buckets: int = BUCKETS,
                     mapping: Mapping[str, str] | None = None) -> MultiReport:
    """Write one page of the runs ``targets`` overlaid (default :data:`MULTI_REPORT` in the current folder),
    atomically, after every target has been read; returns what was written. The page's file name must end
    in ``.html`` or ``.htm``, so no log, config or record a run holds can be written over."""
    output = Path(MULTI_REPORT if output is None else output)
    if output.is_dir():
        raise ConfigError([Problem("output", f"{output} is a folder; give a file name such as compare.html")])
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError([Problem("output", f"{output}: the page's file name must end in .html or .htm")])
    if not output.parent.is_dir():
        raise ConfigError([Problem("output", f"the folder {output.parent} does not exist")])
    runs = multi_report_data(targets, trap_window=trap_window, mapping=mapping)
    page, report = render_multi_report(runs, max_rows=max_rows, buckets=buckets)
    atomic_write_text(output, page)
    return replace(report, path=output)
