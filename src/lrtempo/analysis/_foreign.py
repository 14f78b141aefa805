"""Other trainers' run records read as a run log: a Hugging Face ``trainer_state.json``, a Lightning
``metrics.csv``, TensorBoard event files, and any CSV whose columns a mapping names.

Every reader gives the :class:`~._logfile.LogFile` that the log CSV reader gives, by the same rules
(``docs/diagnostics.md``, "Logs from other trainers"): steps int64 and strictly increasing, a step that goes
back to one logged before is a resumed run whose later values replace the earlier ones (said in a note),
``lr`` finite and >= 0 on every row, ``grad_l2_norm`` >= 0, and a refusal is one line naming the file and
the entry. The rows are the steps with a logged rate; ``grad_l2_norm`` and ``loss`` are NaN where the
record has none. The columns come from the record's own names (:data:`DEFAULT_TAGS`) or from ``mapping``
(lrtempo column -> the record's key, column or tag).

The step conventions (checked in transformers 5.24 and lightning 2.6, and by tests on records they write):

* lrtempo: row ``step`` is update number ``step`` counted from 0 (the updates applied before it): the rate
  it used, the norm of its gradient, the loss of its batch, the validation loss after it.
* Hugging Face Trainer: an entry at global step ``s`` is written after update ``s`` counted from 1, with
  the rate that update used (the Trainer reads the rate after ``optimizer.step()`` and before
  ``lr_scheduler.step()``), its gradient norm before clipping, the mean loss since the last entry, and
  the evaluation after it: lrtempo's step ``s - 1``. Its TensorBoard files use the same global step.
* Lightning: ``step`` is the number of updates applied before the row's (``LearningRateMonitor`` logs the
  rate at the batch's start; ``self.log`` values and validation are logged before the counter moves):
  lrtempo's convention, the step as written. So are TensorBoard files of any other writer.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._rundir_schema import RUN_FILES
from .._util import MissingDependency
from ..config import ConfigError, Problem
from ._logfile import (
    MAX_STEP,
    NUMERIC,
    REQUIRED,
    LogFile,
    _check_names,
    _check_regular,
    _read_rows,
    _refuse,
    _resume_order,
    is_regular,
    parse_number,
    parse_step,
    read_log_file,
)

__all__ = ["DEFAULT_TAGS", "MAPPED", "TB_INSTALL", "check_foreign_folder", "parse_mapping", "read_any_log"]

#: the columns a mapping may name, lrtempo's names (``step`` only for a CSV: the other records carry their own)
MAPPED = (*REQUIRED, "val_loss")

#: where each column is read from when no mapping names it: the first of these the record has (lrtempo's
#: own name, then Hugging Face's in trainer_state.json and in TensorBoard, then Lightning's). The rate also
#: comes from Lightning's ``LearningRateMonitor`` tag ``lr-<optimizer>`` when the record has exactly one.
DEFAULT_TAGS = {
    "lr": ("lr", "learning_rate", "train/learning_rate"),
    "grad_l2_norm": ("grad_l2_norm", "grad_norm", "train/grad_norm", "grad_2.0_norm_total"),
    "loss": ("loss", "train/loss", "train_loss", "train_loss_step"),
    "val_loss": ("val_loss", "eval_loss", "eval/loss"),
}
_LR_MONITOR = re.compile(r"lr-.+")
#: lrtempo's other drawn columns, read from a tag or column of the same name (lrtempo's own TensorBoard files)
_SAME_NAME = tuple(c for c in NUMERIC if c not in MAPPED)

TB_PREFIX = "events.out.tfevents"
TB_INSTALL = ("reading TensorBoard event files needs the tensorboard package, which is not installed: "
              "pip install tensorboard")
HF_STATE = "trainer_state.json"
LIGHTNING_CSV = "metrics.csv"
_VERSION = re.compile(r"version_(\d+)")
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_LISTED = 12  # how many names a message lists before "and N more"

_HF = ("Hugging Face Trainer: an entry at global step s is logged after update s (counted from 1) with the "
       "rate that update used, so it is lrtempo's step s - 1")
_AS_WRITTEN = "step as written: the updates applied before the row's (lrtempo's and Lightning's convention)"


def parse_mapping(text: str) -> dict[str, str]:
    """``lr=TAG,grad_l2_norm=TAG,...`` as a dict; a ``ValueError`` (one line) names what is wrong.

    >>> parse_mapping("lr=lr-AdamW, loss=train/loss")
    {'lr': 'lr-AdamW', 'loss': 'train/loss'}
    """
    out: dict[str, str] = {}
    for item in text.split(","):
        column, eq, tag = (part.strip() for part in item.partition("="))
        if not eq or not column or not tag:
            raise ValueError(f"{item.strip()[:60]!r} is not COLUMN=TAG (write e.g. lr=learning_rate,loss=train_loss)")
        if column not in MAPPED:
            raise ValueError(f"unknown column {column[:40]!r} (the columns are {', '.join(MAPPED)})")
        if column in out:
            raise ValueError(f"{column} is named twice")
        out[column] = tag
    return out


def _checked_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    problems = [f"unknown column {k!r} (the columns are {', '.join(MAPPED)})" for k in (mapping or {})
                if k not in MAPPED]
    problems += [f"{k}: the tag must be a non-empty string (got {v!r})" for k, v in (mapping or {}).items()
                 if k in MAPPED and not (isinstance(v, str) and v)]
    if problems:
        raise ConfigError([Problem("mapping", p) for p in problems])
    return dict(mapping or {})


# -- a record: named series of (step, value), each in the order written ----------------------------------------

@dataclass(frozen=True)
class _Record:
    """What a reader found: ``series(name)`` gives ``(places, steps, values)`` of one key, column or tag in the
    order written (``values`` raw; ``number`` reads one, or None when it is not a number); ``where(place)``
    says where a value is, for a message; lrtempo's step is the record's minus ``shift``."""

    path: Path
    what: str
    noun: str
    names: tuple[str, ...]
    series: Callable[[str], tuple[list[Any], np.ndarray, list[Any]]]
    number: Callable[[Any], float | None]
    where: Callable[[Any], str]
    shift: int = 0
    convention: str = _AS_WRITTEN
    notes: tuple[str, ...] = ()


def _listed(names: list[str] | tuple[str, ...]) -> str:
    """
    >>> _listed(["a", "b"]), _listed([str(i) for i in range(14)])[-20:]
    ('a, b', '9, 10, 11 and 2 more')
    """
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "") if names else "none"


def _default_tag(record: _Record, column: str) -> str | None:
    names = set(record.names)
    tag = next((t for t in DEFAULT_TAGS[column] if t in names), None)
    if tag is None and column == "lr":
        monitors = [n for n in record.names if _LR_MONITOR.fullmatch(n)]
        if len(monitors) > 1:
            raise _refuse(record.path, f"several rate {record.noun}s ({_listed(monitors)}): name the one to read "
                                       "with --map lr=TAG")
        tag = monitors[0] if monitors else None
    return tag


def _chosen(record: _Record, mapping: dict[str, str]) -> dict[str, str | None]:
    """The record's name each column is read from (None: not in the record)."""
    chosen: dict[str, str | None] = {}
    for column in MAPPED[1:]:
        tag = mapping.get(column)
        if tag is not None and tag not in record.names:
            raise _refuse(record.path, f"--map {column}={tag}: no {record.noun} {tag!r} in {record.what} (its "
                                       f"{record.noun}s: {_listed(sorted(record.names))})")
        chosen[column] = tag if tag is not None else _default_tag(record, column)
    if chosen["lr"] is None:
        known = ", ".join((*DEFAULT_TAGS["lr"], "lr-<optimizer>"))
        raise _refuse(record.path, f"no learning-rate {record.noun} in {record.what} (looked for {known}; its "
                                   f"{record.noun}s: {_listed(sorted(record.names))}): name it with --map lr=TAG")
    return chosen


def _value_problem(column: str, tag: str, value: float) -> str | None:
    name = column if tag == column else f"{tag} (read as {column})"
    if column == "lr" and not (math.isfinite(value) and value >= 0):
        return f"{name}: must be a finite number >= 0 (got {value!r})"
    if column == "grad_l2_norm" and value < 0:
        return f"{name}: a norm is >= 0 (got {value!r})"
    return None


def _series(record: _Record, column: str, tag: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One column's steps (lrtempo's) and float64 values, checked, a resumed run's values in effect."""
    places, steps, raw = record.series(tag)
    read = list(map(record.number, raw))
    if None in read:  # a value that is not a number
        k = read.index(None)
        beyond = isinstance(raw[k], float) and math.isinf(raw[k])  # 1e400 in a JSON file
        problem = "beyond the float64 range (about 1.8e308)" if beyond else f"not a number (got {str(raw[k])[:40]!r})"
        raise _refuse(record.path, f"{record.where(places[k])}: {tag}: {problem}")
    values = np.asarray(read, dtype=np.float64).reshape(-1)
    wrong = ~(np.isfinite(values) & (values >= 0)) if column == "lr" else values < 0 if column == "grad_l2_norm" \
        else None
    if wrong is not None and wrong.any():
        k = int(np.argmax(wrong))
        raise _refuse(record.path, f"{record.where(places[k])}: {_value_problem(column, tag, float(values[k]))}")
    steps = steps - record.shift
    early = steps < 0
    if early.any():  # an evaluation before the first update (Hugging Face: trainer.evaluate() at step 0)
        notes.append(f"{tag}: {int(early.sum())} value(s) logged at global step 0, before any update, left out")
        keep = ~early
        places, steps, values = [p for p, k in zip(places, keep) if k], steps[keep], values[keep]
    keep, note = _resume_order(record.path, steps, None, where=lambda i: record.where(places[i]))
    if note:
        notes.append(f"{note} ({tag})")
    return steps[keep], values[keep]


def _aligned(rows: np.ndarray, steps: np.ndarray, values: np.ndarray, tag: str, notes: list[str]) -> np.ndarray:
    """``values`` on the rows' steps (NaN where none); values at a step with no rate are left out, noted."""
    out = np.full(rows.size, np.nan)
    at = np.minimum(np.searchsorted(rows, steps), max(rows.size - 1, 0))
    hit = rows[at] == steps if rows.size else np.zeros(steps.size, dtype=bool)
    out[at[hit]] = values[hit]
    if not hit.all():
        missed = steps[~hit]
        notes.append(f"{tag}: {missed.size} value(s) at steps with no rate logged left out (the first at step "
                     f"{int(missed[0])}): a row needs its rate")
    return out


def _to_log(record: _Record, mapping: dict[str, str]) -> LogFile:
    """The record as a :class:`LogFile`: one row per step with a rate, the other columns on those rows."""
    if "step" in mapping and record.noun != "column":
        raise _refuse(record.path, f"--map step=...: {record.what} carries its own steps (step is mapped only "
                                   "for a CSV)")
    chosen = _chosen(record, mapping)
    notes: list[str] = []
    rows, lr = _series(record, "lr", chosen["lr"], notes)
    if rows.size == 0:
        raise _refuse(record.path, f"{chosen['lr']}: no values: the record has no update with a rate")
    columns: dict[str, np.ndarray] = {"step": rows, "lr": lr}
    for column in ("grad_l2_norm", "loss", "val_loss", *_SAME_NAME):
        tag = chosen.get(column, column if column in record.names else None)
        if tag is not None:
            columns[column] = _aligned(rows, *_series(record, column, tag, notes), tag, notes)
        elif column in REQUIRED:
            columns[column] = np.full(rows.size, np.nan)
    read = ", ".join(f"{c} <- {t}" for c, t in chosen.items() if t is not None)
    said = (*record.notes, f"{record.what}: read {read}; {record.convention}", *notes)
    return LogFile(record.path, rows, columns, said)


# -- Hugging Face trainer_state.json ------------------------------------------------------------------------

class _OutOfRange(float):
    """A JSON number beyond the float64 range (``1e400``): refused rather than read as infinite."""


def _json_float(text: str) -> float:
    value = float(text)
    return _OutOfRange(value) if math.isinf(value) else value


def _json_number(value: Any) -> float | None:
    """A JSON value as a float64: a number, or null as NaN; None for anything else (text, true, 1e400)."""
    kind = type(value)  # exact types: bool is an int and _OutOfRange a float, neither a number here
    if kind is float:
        return value
    if kind is int:
        return float(value) if -_FLOAT_MAX <= value <= _FLOAT_MAX else None
    return math.nan if value is None else None


def _json_finite_number(value: Any) -> float | None:
    """:func:`_json_number` of a file without ``Infinity``, where an infinite float is a number beyond range."""
    number = _json_number(value)
    return None if number is not None and math.isinf(number) else number


_FLOAT_MAX = int(np.finfo(np.float64).max)


def _load_json(path: Path) -> tuple[Any, Callable[[Any], float | None]]:
    """The file's JSON and how to read its numbers. Python writes an infinite float as ``Infinity``; in a file
    without that word an infinite value can only be a number beyond float64's range (refused, as in a log CSV).
    Only a file with both is parsed number by number (a hook per float costs 3x the parse)."""
    _check_regular(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        if "Infinity" not in text:
            return json.loads(text), _json_finite_number
        return json.loads(text, parse_float=_json_float), _json_number
    except UnicodeDecodeError as exc:
        raise _refuse(path, f"not UTF-8 text ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise _refuse(path, f"not JSON ({str(exc)[:80]})") from None
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror})") from None


def _history(path: Path, data: Any) -> list[dict[str, Any]]:
    history = data.get("log_history") if isinstance(data, dict) else None
    if not isinstance(history, list):
        raise _refuse(path, "no log_history list (a Hugging Face trainer_state.json has one)")
    for k, entry in enumerate(history, start=1):
        if not isinstance(entry, dict):
            raise _refuse(path, f"log_history entry {k}: not an object (got a JSON {type(entry).__name__})")
        step = entry.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
            raise _refuse(path, f"log_history entry {k}: step must be a whole number from 0 to 2**63 - 1 "
                                f"(got {str(step)[:40]})")
    return history


def _hf_record(path: Path, history: list[dict[str, Any]], number: Callable[[Any], float | None],
               notes: tuple[str, ...]) -> _Record:
    names = tuple(dict.fromkeys(k for entry in history for k in entry if k != "step"))

    def series(name: str):
        at = [(k, e["step"], e[name]) for k, e in enumerate(history, start=1) if name in e]
        return [a[0] for a in at], np.asarray([a[1] for a in at], dtype=np.int64), [a[2] for a in at]

    return _Record(path, f"{path.parent.name}/{path.name}" if path.parent.name else path.name, "key", names,
                   series, number, lambda k: f"log_history entry {k}", 1, _HF, notes)


def _hf_state(folder: Path) -> tuple[Path, list[dict[str, Any]], Callable[[Any], float | None], tuple[str, ...]]:
    """The most complete ``trainer_state.json`` of an output directory (its own and its ``checkpoint-N``'s):
    the latest global step, then the longest history; a tie goes to the output directory's own, then to
    the later checkpoint."""
    found = [folder / HF_STATE] if (folder / HF_STATE).is_file() else []
    checkpoints = [d for d in folder.iterdir() if _CHECKPOINT.fullmatch(d.name) and (d / HF_STATE).is_file()]
    found += [d / HF_STATE for d in sorted(checkpoints, key=lambda d: -int(d.name.split("-")[1]))]
    read = []
    for rank, path in enumerate(found):
        data, number = _load_json(path)
        history = _history(path, data)
        step = data.get("global_step") if isinstance(data.get("global_step"), int) else -1
        read.append(((step, len(history), -rank), path, history, number))
    _, path, history, number = max(read, key=lambda r: r[0])
    if len(found) == 1:
        return path, history, number, ()
    others = ", ".join(str(p.parent.relative_to(folder)) if p.parent != folder else HF_STATE for p in found)
    return path, history, number, (f"{folder.name}: read {path.relative_to(folder)}, the most complete of its "
                           f"{len(found)} records (the latest global step, then the longest history; "
                           f"of {others})",)


# -- CSV: Lightning's metrics.csv, or any CSV with a mapping ----------------------------------------------------

def _csv_record(path: Path, step_name: str, notes: tuple[str, ...] = ()) -> _Record:
    header, rows, numbers, read_notes = _read_rows(path)
    seen = _check_names(path, header)
    if step_name not in seen:
        raise _refuse(path, f"no {step_name!r} column (found {', '.join(header)}): name the step column with "
                            "--map step=COLUMN")
    width = len(header)
    for row, number in zip(rows, numbers):
        if len(row) != width:
            raise _refuse(path, f"line {number}: {len(row)} cells, but the header has {width} columns")
    col = seen[step_name] - 1
    steps = []
    for row, number in zip(rows, numbers):
        value = parse_step(row[col])
        if value is None:
            raise _refuse(path, f"line {number}: {step_name}: must be a whole number from 0 to 2**63 - 1 "
                                f"(got {row[col].strip()[:40]!r})")
        steps.append(value)
    steps_array = np.asarray(steps, dtype=np.int64)
    names = tuple(n for n in header if n and n != step_name)

    def series(name: str):
        i = seen[name] - 1
        at = [k for k, row in enumerate(rows) if row[i].strip()]  # a blank cell: no value on that row
        return [numbers[k] for k in at], steps_array[at] if at else steps_array[:0], [rows[k][i] for k in at]

    lightning = path.name == LIGHTNING_CSV and "epoch" in seen
    what = f"{path.name} (Lightning CSVLogger)" if lightning else path.name
    return _Record(path, what, "column", names, series, parse_number, lambda n: f"line {n}", 0, _AS_WRITTEN,
                   (*notes, *read_notes))


def _csv_header(path: Path) -> list[str]:
    _check_regular(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except (UnicodeDecodeError, csv.Error):
        return []  # the reader refuses it, with its line


def _is_foreign_csv(header: list[str]) -> bool:
    """A CSV without lrtempo's columns that names a rate the way another trainer does."""
    return any(n in DEFAULT_TAGS["lr"][1:] or _LR_MONITOR.fullmatch(n) for n in header) and "step" in header


# -- TensorBoard event files -----------------------------------------------------------------------------------

def _tb_loader():
    try:
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
        from tensorboard.util.tensor_util import make_ndarray
    except ImportError:
        raise MissingDependency(TB_INSTALL) from None
    return LegacyEventFileLoader, make_ndarray  # the events as written (the migrating loader costs 4x more)


def _scalar(value: Any, make_ndarray: Callable[[Any], np.ndarray]) -> float | None:
    """A summary value's scalar (float32 as written, float64 when written so), or None (text, images, ...)."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(np.float32(value.simple_value))
    if kind != "tensor":
        return None
    try:
        array = make_ndarray(value.tensor)
    except (ValueError, TypeError):
        return None
    return float(array.reshape(())) if array.size == 1 and array.dtype.kind in "fiu" else None


def _tb_file(path: Path, loader: Any, make_ndarray: Any) -> tuple[float, list[tuple[str, int, float]], set[str]]:
    """The first wall time, the scalars ``(tag, step, value)`` in order, and every tag, of one event file."""
    first, scalars, tags = math.inf, [], set()
    try:
        for event in loader(str(path)).Load():
            first = min(first, event.wall_time)
            for value in event.summary.value if event.HasField("summary") else ():
                tags.add(value.tag)
                x = _scalar(value, make_ndarray)
                if x is not None:
                    scalars.append((value.tag, int(event.step), x))
    except Exception as exc:  # a damaged file: the protobuf or record reader's own error
        raise _refuse(path, f"not a readable TensorBoard event file ({type(exc).__name__}: {str(exc)[:60]})") \
            from None
    return first, scalars, tags


def _tb_record(target: Path, notes: tuple[str, ...]) -> _Record:
    loader, make_ndarray = _tb_loader()
    files = [target] if target.is_file() else _event_files(target)
    read = sorted(((*_tb_file(f, loader, make_ndarray), f) for f in files), key=lambda r: (r[0], r[3].name))
    tags = set().union(*(r[2] for r in read))
    by_tag: dict[str, list[tuple[int, int, float]]] = {}
    for index, (_, scalars, _, _) in enumerate(read):
        for tag, step, value in scalars:
            by_tag.setdefault(tag, []).append((index, step, value))
    for tag, entries in by_tag.items():
        for index, step, _ in entries:
            if step < 0:
                raise _refuse(read[index][3], f"{tag}: step must be >= 0 (got {step})")
    names = tuple(by_tag)
    order = [r[3].name for r in read]

    def series(name: str):
        at = by_tag[name]
        return [(i, s, name) for i, s, _ in at], np.asarray([s for _, s, _ in at], dtype=np.int64), [v for *_, v in at]

    hf = "train/learning_rate" in tags or "args/text_summary" in tags
    where = lambda p: f"{order[p[0]]}, {p[2]} at step {p[1]}"  # noqa: E731
    listed = f" ({len(read)} event files, read in the order written)" if len(read) > 1 else ""
    what = f"TensorBoard {'file' if target.is_file() else 'folder'} {target.name}{listed}"
    return _Record(target, what, "tag", names, series, lambda v: v, where, 1 if hf else 0,
                   _HF if hf else _AS_WRITTEN, notes)


def _event_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(TB_PREFIX) and is_regular(p))


# -- which record a target is --------------------------------------------------------------------------------

def _newest_version(folder: Path) -> Path | None:
    versions = [d for d in folder.iterdir() if _VERSION.fullmatch(d.name) and d.is_dir()]
    return max(versions, key=lambda d: int(d.name.split("_")[1])) if versions else None


def _newest_event_folder(folder: Path) -> tuple[Path, int] | None:
    """The folder below ``folder`` whose event files were written last, and how many folders hold some."""
    groups: dict[Path, float] = {}
    for path in folder.rglob(TB_PREFIX + "*"):
        if is_regular(path):
            groups[path.parent] = max(groups.get(path.parent, 0.0), os.stat(path).st_mtime)
    if not groups:
        return None
    return max(groups, key=lambda d: (groups[d], str(d))), len(groups)


def _source(folder: Path, notes: tuple[str, ...] = ()) -> tuple[str, Path, tuple[str, ...]]:
    """``(kind, path, notes)`` of a folder that is not an lrtempo run: ``hf`` (the output or checkpoint folder),
    ``csv`` (its metrics.csv) or ``tb`` (the folder of event files); else refused."""
    if (folder / HF_STATE).is_file() or any(_CHECKPOINT.fullmatch(d.name) and (d / HF_STATE).is_file()
                                            for d in folder.iterdir()):
        return "hf", folder, notes
    if (folder / LIGHTNING_CSV).is_file():
        return "csv", folder / LIGHTNING_CSV, notes
    if _event_files(folder):
        return "tb", folder, notes
    if (folder / "lightning_logs").is_dir():
        return _source(folder / "lightning_logs", notes)
    version = _newest_version(folder)
    if version is not None:
        count = sum(1 for d in folder.iterdir() if _VERSION.fullmatch(d.name) and d.is_dir())
        note = f"{folder.name}: read {version.name}, the newest of its {count} version folders"
        return _source(version, (*notes, note))
    newest = _newest_event_folder(folder)
    if newest is not None:
        where, count = newest
        note = (f"{folder.name}: read the TensorBoard files in {where.relative_to(folder)}"
                + (f", the newest of {count} folders of event files" if count > 1 else ""))
        return "tb", where, (*notes, note)
    raise _refuse(folder, "no log.csv (an lrtempo run), trainer_state.json (Hugging Face Trainer), metrics.csv "
                          "(Lightning CSVLogger) or TensorBoard event file in this folder")


def check_foreign_folder(folder: Path) -> None:
    """Refuse (one line) a folder that holds no run record this module reads."""
    _source(folder)


def read_any_log(path: str | Path, *, mapping: Mapping[str, str] | None = None,
                 columns: tuple[str, ...] | None = None) -> LogFile:
    """The run log of ``path``: an lrtempo log CSV (read by :func:`read_log_file`, with ``columns``), another
    trainer's record (a folder or file: see the module docstring), or any CSV with ``mapping`` naming its
    columns; refused in one line (:class:`~lrtempo.config.ConfigError`) by the rules of each."""
    path = Path(path)
    mapping = _checked_mapping(mapping)
    if path.is_dir() and (path / RUN_FILES.log).exists():  # an lrtempo run directory
        kind, source, notes = "csv", path / RUN_FILES.log, ()
    elif path.is_dir():
        kind, source, notes = _source(path)
    elif path.name.startswith(TB_PREFIX):
        kind, source, notes = "tb", path, ()
    elif path.suffix == ".json":
        kind, source, notes = "hf", path, ()
    else:
        kind, source, notes = "csv", path, ()
    if kind == "hf":
        if source.is_dir():
            state, history, number, notes = _hf_state(source)
        else:
            data, number = _load_json(source)
            state, history = source, _history(source, data)
        return _to_log(_hf_record(state, history, number, notes), mapping)
    if kind == "tb":
        return _to_log(_tb_record(source, notes), mapping)
    if not mapping:
        header = _csv_header(source)
        if not (source.name == LIGHTNING_CSV or _is_foreign_csv(header)) or all(c in header for c in REQUIRED):
            log = read_log_file(source, columns)
            return LogFile(log.path, log.steps, log.columns, (*notes, *log.notes)) if notes else log
    return _to_log(_csv_record(source, mapping.get("step", "step"), notes), mapping)
