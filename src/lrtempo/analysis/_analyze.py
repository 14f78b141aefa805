"""``lrtempo analyze``: a run (or any CSV with ``step,lr,grad_l2_norm,loss``) phase by phase.

For an lrtempo run directory the phases come from its schedule and the events
from ``events.jsonl``; for any other CSV the phases come from the rate column
(rising to the peak is warmup, holding it a plateau, then decay bands by the
ratio to the peak). In both cases the trap detector and the spike and restart
detectors run over the log, the same code as the live monitor.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, Problem, build_schedule, read_config_file
from ..monitor import MonitorSettings
from ..monitor._offline import STATUSES, DetectorSettings, detect_log
from ..monitor._phases import PHASES, PhaseMap, phase_labels_from_rates, restart_points
from ..plot import log_png
from ..rundir import RunDir
from ..schedules import POSITION_COLUMNS, ByUpdate
from ._foreign import read_any_log
from ._logfile import REQUIRED, is_regular, read_events, read_log_file, resolve_log

__all__ = ["Analysis", "REQUIRED", "analysis_png", "analyze_log", "read_metrics"]


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The numeric columns of a log CSV, read exactly (:func:`read_log_file`): ``step`` as int64, the rest
    float64 (a blank cell is NaN), one row per step (a resumed run's later rows replace earlier ones)."""
    return read_log_file(path).columns


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyze_log` found; ``notes`` says, one line each, what it handled or could not do."""

    source: str
    rows: int
    phases: list[dict[str, Any]]
    events: list[dict[str, Any]]
    #: runs of one trap status, ``{status, first_step, last_step}`` each (the log's ``trap_status`` column, over
    #: time; ``trap_status`` in the JSON too)
    trap_status: list[dict[str, Any]]
    phase_source: str
    metrics: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    labels: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    notes: tuple[str, ...] = ()

    @property
    def trap_timeline(self) -> list[dict[str, Any]]:
        """The former name of :attr:`trap_status`."""
        warnings.warn("Analysis.trap_timeline is renamed trap_status (the log column's and the JSON key's name)",
                      DeprecationWarning, stacklevel=2)
        return self.trap_status

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "phase_source": self.phase_source, "notes": list(self.notes),
                "phases": self.phases, "events": self.events, "trap_status": self.trap_status}

    def text(self) -> str:
        lines = [f"{self.source}: {self.rows} updates (phases from {self.phase_source})",
                 *(f"note: {n}" for n in self.notes), "",
                 f"{'phase':12s} {'steps':>16s} {'count':>7s} {'loss change':>12s} {'mean grad norm':>15s} "
                 f"{'lr range':>24s}"]
        for p in self.phases:
            lines.append(f"{p['phase']:12s} {p['first_step']:>7}..{p['last_step']:<8} {p['updates']:>7} "
                         f"{p['loss_change']:>+12.4g} {p['mean_grad_l2_norm']:>15.4g} "
                         f"{p['lr_min']:>11.3g}..{p['lr_max']:<11.3g}")
        lines += ["", "trap status over time"]
        lines += [f"  steps {t['first_step']}..{t['last_step']}: {t['status']}" for t in self.trap_status]
        lines += ["", f"events ({len(self.events)})"]
        lines += [f"  step {e['step']}: [{e['kind']}] {e['message']}" for e in self.events] or ["  none"]
        return "\n".join(lines)


def _run_schedule(run_dir: Path):
    cfg = RunDir(run_dir).config
    if not cfg.exists():
        return None, {}
    if not is_regular(cfg):
        raise ConfigError([Problem("", "not a regular file (the run's schedule is read from a file on disk)")],
                          source=str(cfg))
    data = read_config_file(cfg)
    if not isinstance(data, dict) or not isinstance(data.get("schedule"), dict):
        raise ConfigError([Problem("schedule", "missing: a run's config.yaml holds its schedule")], source=str(cfg))
    monitor = data.get("monitor") if isinstance(data.get("monitor"), dict) else {}
    return build_schedule(data["schedule"], "schedule", source=str(cfg)), _detector_settings(monitor, cfg)


#: the monitor's defaults, which analyze uses where a run's ``monitor`` mapping (or a bare log) gives none
_MONITOR = MonitorSettings()


def _least(name: str) -> Any:
    """The least valid value of a monitor setting (a window's ``minimum``, a factor's ``exclusive_minimum``)."""
    meta = next(f.metadata for f in fields(MonitorSettings) if f.name == name)
    return meta["minimum"] if "minimum" in meta else meta["exclusive_minimum"]


#: the detector settings analyze takes from a run's ``monitor`` mapping: default and least valid value
_DETECTOR_SETTINGS = {name: (getattr(_MONITOR, name), _least(name))
                      for name in ("trap_window", "spike_window", "restart_window", "trap_threshold", "spike_factor")}


def _detector_settings(monitor: dict[str, Any], cfg: Path) -> dict[str, Any]:
    """The detector settings of a run's config (defaults where absent): windows whole numbers, the
    threshold and factor finite numbers above their least value; anything else is refused, by field."""
    out, problems = {}, []
    for key, (default, least) in _DETECTOR_SETTINGS.items():
        value = monitor.get(key, default)
        whole = isinstance(default, int)
        ok = (isinstance(value, int) if whole else isinstance(value, (int, float))) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < least or (not whole and value <= least):
            want = f"a whole number >= {least}" if whole else f"a finite number > {least}"
            problems.append(Problem(f"monitor.{key}", f"must be {want} (got {value!r})"))
        out[key] = value
    if problems:
        raise ConfigError(problems, source=str(cfg))
    return out


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def _phase_rows(steps: np.ndarray, labels: np.ndarray, m: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per phase: its step range, updates, loss change (last minus first finite loss), the mean of its
    finite gradient norms and its rate range."""
    lr, norm, loss = m["lr"], m["grad_l2_norm"], m["loss"]
    phases = []
    for idx, name in enumerate(PHASES):
        sel = np.flatnonzero(labels == idx)
        if sel.size == 0:
            continue
        finite = sel[np.isfinite(loss[sel])]
        phases.append({
            "phase": name, "first_step": int(steps[sel[0]]), "last_step": int(steps[sel[-1]]),
            "updates": int(sel.size),
            "loss_change": float(loss[finite[-1]] - loss[finite[0]]) if finite.size else math.nan,
            "mean_grad_l2_norm": _finite_mean(norm[sel]),
            "lr_min": float(lr[sel].min()), "lr_max": float(lr[sel].max()),
        })
    return phases


def _merge_events(recorded: tuple[dict[str, Any], ...], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's recorded events, plus what the detectors found that it did not record, by step."""
    seen = {(e["step"], e["kind"]) for e in recorded}
    events = list(recorded) + [e for e in found if (e["step"], e["kind"]) not in seen]
    events.sort(key=lambda e: e["step"])
    return events


def analyze_log(target: str | Path, *, trap_window: int | None = None,
                mapping: Mapping[str, str] | None = None) -> Analysis:
    """Analyze a run directory, a log CSV (read by :func:`read_log_file`: exactly, or refused) or another
    trainer's record (a Hugging Face output or checkpoint folder, a Lightning CSV log, a TensorBoard folder:
    :func:`~._foreign.read_any_log`); ``mapping`` names the record's columns (lrtempo column -> its tag)."""
    target = Path(target)
    run_dir, log_path = resolve_log(target)
    schedule, monitor_settings = _run_schedule(run_dir) if run_dir else (None, {})
    unit = None if schedule is None or schedule.unit == "steps" else POSITION_COLUMNS[schedule.unit]
    # the drawn columns, the wall-clock column (the multi-run report's time axis) and a unit's only
    log = read_any_log(log_path, mapping=mapping, columns=("seconds", *((unit,) if unit else ())))
    m, steps = log.columns, log.steps
    notes = list(log.notes)
    notes += [f"no finite values in column {c}: the detectors that need it found nothing"
              for c in ("grad_l2_norm", "loss") if not np.isfinite(m[c]).any()]
    if unit:  # the phases go by update: the schedule at what the updates before each consumed
        schedule = _by_update(schedule, m.get(unit), steps)
        if schedule is None:
            notes.append(f"the schedule counts {unit} but the log's {unit} column does not give them for every "
                         "update from 0: the phases come from the lr column")
    if schedule is not None:
        labels = PhaseMap(schedule, max(int(steps[-1]) + 1, schedule.horizon)).labels(steps)
        phase_source = "the run's schedule"
    else:
        labels = phase_labels_from_rates(steps, m["lr"])
        phase_source = "the lr column"
    window = trap_window or monitor_settings.get("trap_window", _MONITOR.trap_window)
    events, timeline = _detect(steps, m["lr"], m["grad_l2_norm"], m["loss"], window, schedule, monitor_settings)
    if run_dir is not None:
        recorded, event_notes = read_events(RunDir(run_dir).events)
        events = _merge_events(recorded, events)
        notes += event_notes
    return Analysis(str(target), log.rows, _phase_rows(steps, labels, m), events, timeline, phase_source, m,
                    labels, tuple(notes))


def _by_update(schedule, consumed, steps: np.ndarray):
    """A samples or tokens schedule as a function of the update, from the log's column of what the updates
    consumed through each (past the log: at its last update's batch), or None without such a column."""
    if consumed is None or steps.size == 0 or not np.array_equal(steps, np.arange(steps.size)):
        return None
    consumed = np.asarray(consumed, dtype=np.float64)
    if not np.all(np.isfinite(consumed)) or np.any(np.diff(consumed) < 0) or consumed[0] < 0:
        return None
    after = consumed.astype(np.int64)
    before = np.concatenate([[0], after[:-1]])
    rows, batch = before.size, int(after[-1] - before[-1])

    def positions(n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=np.int64)
        return np.where(n < rows, before[np.minimum(n, rows - 1)], after[-1] + (n - rows) * batch)

    def updates_for(p: int) -> int:
        i = int(np.searchsorted(before, p, side="left"))
        return i if i < rows or batch <= 0 else rows + -(-(p - int(after[-1])) // batch)

    return ByUpdate(schedule, positions, updates_for)


def _detect(steps, lr, norm, loss, window, schedule, settings, mode=detect_log):
    """Events and the trap status over time: the detectors over the rows with a finite loss and gradient norm
    (``mode``: :func:`~lrtempo.monitor._offline.detect_log`, or the live detectors row by row)."""
    peak = float(lr.max())
    last = int(steps[-1])
    if schedule is not None:
        restart_steps = restart_points(schedule.phases(last + 1))
    else:  # a foreign log: a restart is the rate jumping back up by half its peak or more
        jumps = np.flatnonzero(np.diff(lr) > 0.5 * peak) + 1
        restart_steps = steps[jumps].tolist()
    fed = np.isfinite(loss) & np.isfinite(norm)  # a mask (one byte a row), not row numbers
    s = DetectorSettings(trap_window=window, trap_threshold=settings.get("trap_threshold", _MONITOR.trap_threshold),
                         spike_window=settings.get("spike_window", _MONITOR.spike_window),
                         spike_factor=settings.get("spike_factor", _MONITOR.spike_factor),
                         restart_window=settings.get("restart_window", _MONITOR.restart_window))
    if fed.all():  # every row (the usual case): no copies
        at, lr_, norm_, loss_ = steps, lr, norm, loss
    else:
        at, lr_, norm_, loss_ = steps[fed], lr[fed], norm[fed], loss[fed]
    events, codes = mode(at, lr_, norm_, loss_, peak, last - at, restart_steps, s)
    return [e.to_json() for e in events], _timeline(at, codes)


def _timeline(steps: np.ndarray, codes: np.ndarray) -> list[dict[str, Any]]:
    """Runs of one trap status: ``{status, first_step, last_step}`` each."""
    if codes.size == 0:
        return []
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    stops = np.append(starts[1:], codes.size) - 1
    return [{"status": STATUSES[c], "first_step": int(a), "last_step": int(b)}
            for c, a, b in zip(codes[starts].tolist(), steps[starts].tolist(), steps[stops].tolist())]


def analysis_png(analysis: Analysis, path: str | Path) -> Path:
    """Rate, gradient norm and loss on a shared step axis, with phase bands and event marks: the analysis
    handed to :func:`lrtempo.plot.log_png` (a long log is thinned there, so the plot costs the same for a
    thousand rows as for ten million)."""
    return log_png(path, analysis.metrics, analysis.phases, analysis.events, title=analysis.source)
