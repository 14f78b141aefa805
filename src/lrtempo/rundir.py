"""The run directory: one type that knows where every file of a run is and how each is written and read.

``lrtempo train`` writes its runs through :class:`RunDir`, the monitor writes
``events.jsonl`` and ``layers.csv`` through it, and ``lrtempo analyze`` and
``lrtempo report`` find the files with it; your own training loop can use it
too, and then those commands read its runs like any other. docs/run-directory.md
describes the layout and shows a loop that writes one. This module needs neither
torch nor anything heavier than NumPy: readers that must not need torch import it.

>>> import tempfile
>>> run = RunDir(tempfile.mkdtemp())
>>> run.log.name, run.config.name, run.checkpoint(40).name
('log.csv', 'config.yaml', 'step-00000040.pt')
>>> with run.lock():
...     log = run.start("schedule: {type: constant, lr: 0.1}\\n")
...     log.append(step=0, lr=0.1, grad_l2_norm=1.5, loss=2.0)
...     log.close()
>>> run.log.read_text().splitlines()
['step,lr,grad_l2_norm,loss', '0,0.1,1.5,2.0']
>>> run.read_meta()["log_columns"]
['step', 'lr', 'grad_l2_norm', 'loss']
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._atomic import atomic_write_text
from ._rundir_schema import (
    EXTRA_COLUMNS,
    LAYER_COLUMNS,
    LOG_COLUMNS,
    LOG_SCHEMA_VERSION,
    MONITOR_COLUMNS,
    NUMERIC_COLUMNS,
    RUN_FILES,
    SCHEMA_COLUMNS,
    TENSORBOARD_FOLDER,
    RunFiles,
)

__all__ = ["RunDir", "RunLog", "RunLock", "RunDirInUse", "RunFiles", "RUN_FILES", "LOG_SCHEMA_VERSION",
           "SCHEMA_COLUMNS", "EXTRA_COLUMNS", "LOG_COLUMNS", "MONITOR_COLUMNS", "NUMERIC_COLUMNS", "LAYER_COLUMNS",
           "environment", "git_state", "header_mismatch", "truncate_step_file", "append_event", "append_layer_rows",
           "checkpoint_files", "checkpoint_name", "checkpoint_step"]

#: a checkpoint's file name in ``checkpoints/`` (``step-00000040.pt``), and what a kill mid-write leaves
_CHECKPOINT = re.compile(r"^step-(\d+)\.pt$")
_CHECKPOINT_TEMP = re.compile(r"^\.step-\d+\.pt(\.[0-9a-f]+)?\.tmp$")
#: how long ``git`` may take to say the commit and whether the tree is dirty (a hung one is given up on)
GIT_TIMEOUT_S = 5.0


class RunDirInUse(RuntimeError):
    """The run directory's lock is held by another process."""


@dataclass(frozen=True)
class RunDir:
    """A run directory at ``path``: the paths of its files, and the few ways each is written and read.

    Only the run's writer (holding :meth:`lock`) writes; anyone may read. ``path`` need not exist yet.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # -- where each file is ------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved run config; the first file a run writes (a folder without it holds no run)."""
        return self.path / RUN_FILES.config

    @property
    def meta(self) -> Path:
        """``run.json``: hashes, the log schema, what reproducing the run needs, changes made on resume."""
        return self.path / RUN_FILES.meta

    @property
    def log(self) -> Path:
        """``log.csv``: one row per applied update, ``step,lr,grad_l2_norm,loss`` first."""
        return self.path / RUN_FILES.log

    @property
    def events(self) -> Path:
        """``events.jsonl``: one JSON object per monitor event."""
        return self.path / RUN_FILES.events

    @property
    def reductions(self) -> Path:
        """``reductions.jsonl``: the rate reductions a ``type: plateau`` schedule decided (:meth:`record_reduction`)."""
        return self.path / RUN_FILES.reductions

    @property
    def layers(self) -> Path:
        """``layers.csv``: the monitor's per-layer rows (:data:`LAYER_COLUMNS`)."""
        return self.path / RUN_FILES.layers

    @property
    def summary(self) -> Path:
        """``summary.json``: status, steps, final and best losses."""
        return self.path / RUN_FILES.summary

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: the saved training states, ``step-NNNNNNNN.pt``."""
        return self.path / RUN_FILES.checkpoints

    @property
    def tensorboard(self) -> Path:
        """``tensorboard/``: the log's rows as TensorBoard event files (``tensorboard: true``)."""
        return self.path / TENSORBOARD_FOLDER

    @property
    def lock_file(self) -> Path:
        return self.path / RUN_FILES.lock

    @property
    def schedule_text(self) -> Path:
        return self.path / RUN_FILES.schedule_text

    @property
    def schedule_png(self) -> Path:
        return self.path / RUN_FILES.schedule_png

    @property
    def analysis_png(self) -> Path:
        """Where ``lrtempo analyze RUN_DIR`` draws the run by default."""
        return self.path / RUN_FILES.analysis_png

    @property
    def report(self) -> Path:
        """Where ``lrtempo report RUN_DIR`` writes the page by default."""
        return self.path / RUN_FILES.report

    def config_before(self, step: int) -> Path:
        """The config a run was trained under up to ``step``, kept when a resume there changed its schedule."""
        return self.path / f"config.before-step-{step}.yaml"

    def checkpoint(self, step: int) -> Path:
        """The checkpoint of the state after ``step`` updates."""
        return self.checkpoints / checkpoint_name(step)

    # -- what is there -------------------------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether the folder holds a run (its ``config.yaml``)."""
        return self.config.exists()

    def checkpoint_files(self) -> list[Path]:
        """The checkpoints, oldest first."""
        return checkpoint_files(self.checkpoints)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoint_files()
        return found[-1] if found else None

    def remove_stale_temps(self) -> None:
        """Remove what checkpoint writes interrupted by a kill left (call with the lock held)."""
        if self.checkpoints.is_dir():
            for p in self.checkpoints.iterdir():
                if _CHECKPOINT_TEMP.match(p.name):
                    if p.is_dir() and not p.is_symlink():  # a checkpoint folder's (FSDP2) unfinished write
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)

    def read_meta(self) -> dict[str, Any]:
        """``run.json``, or ``{}`` when it is missing or unreadable."""
        return _read_object(self.meta)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``, or ``{}`` when it is missing or unreadable."""
        return _read_object(self.summary)

    # -- writing (the lock held) -----------------------------------------------------------------------------------
    def lock(self) -> RunLock:
        """Take the run directory's lock (creating the folder); :class:`RunDirInUse` if another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        return RunLock(self.path)

    def write(self, path: Path, text: str) -> None:
        """Replace one of the run's files atomically (a reader sees the old file or the whole new one)."""
        atomic_write_text(path, text)

    def write_config(self, text: str) -> None:
        self.write(self.config, text)

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.write(self.meta, strict_json(meta, indent=2) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.write(self.summary, strict_json(summary, indent=2) + "\n")

    def clear_steps(self) -> None:
        """Remove the per-step files (``log.csv``, ``events.jsonl``, ``layers.csv``, ``reductions.jsonl``): a run
        starting from step 0."""
        for name in RUN_FILES.per_step:
            (self.path / name).unlink(missing_ok=True)

    def cut_back(self, step: int) -> None:
        """Drop the rows of ``events.jsonl`` and ``layers.csv`` at or past ``step``, the reductions past it (one
        at ``step`` was decided before the checkpoint of ``step``: it is that state's), and a torn last line."""
        truncate_step_file(self.events, step, header=False, step_of=_event_step)
        truncate_step_file(self.layers, step, header=True, step_of=lambda line: int(line.split(",", 1)[0]))
        truncate_step_file(self.reductions, step + 1, header=False, step_of=_event_step)

    def record_reduction(self, reduction: dict[str, Any]) -> None:
        """Append one reduction, ``{"step": S, "factor": F}`` (the rate times F from update S on), to
        ``reductions.jsonl``, flushed at once (the writer, lock held)."""
        append_event(self.reductions, reduction)

    def read_reductions(self) -> list[dict[str, Any]]:
        """The recorded reductions, oldest first (none when the file is missing); a torn last line (a kill
        mid-write) is left out, any other unreadable line is a ValueError naming it."""
        if not self.reductions.exists():
            return []
        lines = self.reductions.read_text(encoding="utf-8").split("\n")
        out = []
        for number, line in enumerate(lines[:-1], 1):  # the last element is "" or a torn line
            try:
                value = json.loads(line)
                _event_step(line)
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.reductions}: line {number} is not a reduction "
                                 f"({{\"step\": S, \"factor\": F}}): {line[:60]!r}") from None
            out.append(value)
        return out

    def open_log(self, extra_columns: Sequence[str] = (), *, resume_step: int | None = None) -> RunLog:
        """The log for appending: a new one (``resume_step`` None) or the existing one cut back to ``resume_step``."""
        return RunLog(self.log, tuple(extra_columns), resume_step=resume_step)

    def start(self, config_text: str, *, extra_columns: Sequence[str] = (), meta: dict[str, Any] | None = None,
              env: dict[str, Any] | None = None) -> RunLog:
        """Begin a new run here (from your own loop; take :meth:`lock` first) and return its open log.

        Refused with ``FileExistsError`` when the folder already holds a run. Writes ``config.yaml`` (the
        config as text: the record of the run, and where ``analyze`` finds its ``schedule`` mapping), then
        ``run.json`` (the log schema, ``meta``, and ``env``: what :func:`environment` returns, by default
        for this process on CPU), then the log's header.
        """
        self.check_new()
        self.clear_steps()
        self.write_config(config_text)
        columns = [*SCHEMA_COLUMNS, *extra_columns]
        self.write_meta({**(meta or {}), "log_schema_version": LOG_SCHEMA_VERSION, "log_columns": columns,
                         "environment": env if env is not None else environment()})
        return self.open_log(extra_columns)

    def check_new(self) -> None:
        """``FileExistsError`` when the folder already holds a run: what :meth:`start` checks first, for a caller
        that claims the lock only once the start is accepted."""
        if self.holds_run():
            raise FileExistsError(f"{self.path} already holds a run ({RUN_FILES.config}): choose another folder")

    def resume(self, step: int, extra_columns: Sequence[str] = ()) -> RunLog:
        """Continue the run here from the checkpoint of ``step``: every per-step file cut back, the log opened."""
        self.cut_back(step)
        return self.open_log(extra_columns, resume_step=step)


def _read_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint after ``step`` updates (its step zero-padded to eight digits, so the
    names sort as the steps do).

    >>> checkpoint_name(40)
    'step-00000040.pt'
    """
    return f"step-{step:08d}.pt"


def checkpoint_files(folder: str | Path) -> list[Path]:
    """The checkpoints in a ``checkpoints/`` folder, oldest first (none when it is missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _CHECKPOINT.match(p.name))


def checkpoint_step(path: str | Path) -> int:
    """The step in a checkpoint's file name.

    >>> checkpoint_step("runs/a/checkpoints/step-00000040.pt")
    40
    """
    match = _CHECKPOINT.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path}: not a checkpoint file name (step-NNNNNNNN.pt)")
    return int(match.group(1))


# -- the step-keyed files: appended row by row, cut back on resume --------------------------------------------------


def truncate_step_file(path: Path, resume_step: int, *, header: bool, step_of: Callable[[str], int]) -> int:
    """Keep the lines before the first at or past ``resume_step``, or unreadable, or torn; returns the rows kept.

    The one truncation on resume, for every per-step file. ``step_of`` reads a line's step (raising
    ``ValueError``, ``KeyError``, ``IndexError`` or ``TypeError`` for a line it cannot read, which ends what
    is kept). The last line counts only when it ends in a newline (else a kill tore it). The file is replaced
    atomically, and only when that changes it; a missing file stays missing.
    """
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    kept = lines[:1] if header else []
    for line in lines[1 if header else 0:-1]:  # the last element is "" after a final newline, or a torn line
        try:
            if step_of(line) >= resume_step:
                break
        except (ValueError, KeyError, IndexError, TypeError):
            break
        kept.append(line)
    new = "\n".join(kept) + ("\n" if kept else "")
    if new != text:
        atomic_write_text(path, new)
    return len(kept) - (1 if header else 0)


def _event_step(line: str) -> int:
    step = json.loads(line)["step"]
    if not isinstance(step, int) or isinstance(step, bool):
        raise ValueError(f"not a step: {step!r}")
    return step


def finite_or_null(data: Any) -> Any:
    """``data`` with every non-finite float (NumPy's too) replaced by None, through dicts, lists and tuples."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_null(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_null(v) for v in data]
    if type(data).__module__ == "numpy" and hasattr(data, "item"):  # a NumPy scalar
        return finite_or_null(data.item())
    return data


def strict_json(data: Any, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259 has no NaN or Infinity) for the run directory's files: a non-finite number is null.

    >>> strict_json({"final_loss": float("nan"), "lr": [0.1, float("inf")]})
    '{"final_loss": null, "lr": [0.1, null]}'
    """
    return json.dumps(finite_or_null(data), indent=indent, allow_nan=False, default=str)


def append_event(path: Path, record: dict[str, Any]) -> None:
    """Append one event (a JSON object with ``step`` and ``kind``) to an ``events.jsonl``."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(strict_json(record) + "\n")


def append_layer_rows(path: Path, rows: Iterable[str]) -> None:
    """Append rows (CSV lines of :data:`LAYER_COLUMNS`) to a ``layers.csv``, writing its header first if new."""
    rows = list(rows)
    if not rows:
        return
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as fh:
        if new:
            fh.write(",".join(LAYER_COLUMNS) + "\n")
        fh.write("\n".join(rows) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def header_mismatch(path: str | Path, extra_columns: Sequence[str] = ()) -> str | None:
    """Why the log at ``path`` cannot be continued with these columns, or None when it can (reads only)."""
    header = ",".join((*SCHEMA_COLUMNS, *extra_columns))
    path = Path(path)
    if not path.exists():
        return f"{path}: missing"
    with open(path, encoding="utf-8", newline="") as fh:
        found = fh.readline().rstrip("\n")
    if found != header:
        return f"{path}: its header {found or '(empty file)'!r} is not this run's {header!r}"
    return None


class RunLog:
    """The run log: rows of ``step,lr,grad_l2_norm,loss`` and ``extra_columns`` in a CSV file.

    Append-only and resume-safe: a row is flushed as it is written and the file is fsynced by
    :meth:`sync` (at each checkpoint); with ``resume_step``, rows at or past it (and a torn last line)
    are dropped, atomically, before appending again. So after a crash and resume no row is duplicated,
    torn or lost up to the last checkpoint. A float is written with ``repr`` (it reads back to the same
    bits); ``None`` is an empty cell.
    """

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = (), *, resume_step: int | None = None):
        self.path = Path(path)
        self.columns = (*SCHEMA_COLUMNS, *extra_columns)
        if resume_step is None:
            if self.path.exists() and self.path.stat().st_size:
                raise FileExistsError(f"{self.path} exists: resume the run or choose another output folder")
            atomic_write_text(self.path, ",".join(self.columns) + "\n")
            self.rows = 0
        else:
            problem = header_mismatch(self.path, extra_columns)
            if problem is not None:
                raise ValueError(problem)
            self.rows = truncate_step_file(self.path, resume_step, header=True, step_of=self._step_of)
        self._fh = open(self.path, "a", encoding="utf-8", newline="")

    def _step_of(self, line: str) -> int:
        cells = line.split(",")
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells, not {len(self.columns)}")
        return int(cells[0])

    def append(self, **values: Any) -> None:
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"not columns of this log: {sorted(unknown)}")
        self._fh.write(",".join(_cell(values.get(c)) for c in self.columns) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        """Flush and fsync: called at every checkpoint."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


# -- one writer at a time -------------------------------------------------------------------------------------------


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock``: ``with RunLock(run_dir):`` is the one writer of the run.

    Taken before anything in the run directory is read for a decision or written, and held until
    :meth:`release` or the end of the process (the kernel drops it however the process ends, so a killed
    run never leaves a stale lock). A second process finds it held and gets :class:`RunDirInUse` at once;
    opening the lock file to try changes nothing in the directory. A holder that goes on to write the run
    writes its pid into the file first (:meth:`claim`), so a refusal can name it. ``flock`` is advisory and
    POSIX-only (on a platform without ``fcntl`` there is no lock), and on a network file system it is only as
    good as the server's locking.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with RunLock(folder):
    ...     try:
    ...         RunLock(folder)
    ...     except RunDirInUse as exc:
    ...         print("refused:", "in use by another lrtempo process" in str(exc))
    refused: True
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / RUN_FILES.lock
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise RunDirInUse(f"{run_dir} is in use by another lrtempo process{pid}: "
                              "wait for it to end or stop it, then try again") from None
        self._fd = fd

    def claim(self) -> None:
        """Write this process's pid into the lock file (before the holder's first write to the run)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- what reproducing a run needs (run.json's "environment") ---------------------------------------------------------


def environment(*, device: str = "cpu", dtype: str = "float32", world_size: int = 1, strategy: str | None = None,
                seeds: dict[str, Any] | None = None, argv: Sequence[str] | None = None,
                cwd: str | Path | None = None) -> dict[str, Any]:
    """What reproducing a run needs besides its config: versions, device, precision, processes, seeds,
    determinism, the command line and the code's git state.

    ``dtype``: ``float32``, or ``bfloat16`` for bf16 autocast. ``strategy``: ``single``, ``ddp`` or
    ``fsdp`` (default: ``ddp`` when ``world_size > 1``). ``argv``: the command line (default ``sys.argv``). ``cwd``:
    the working directory whose git commit is recorded (default: this process's). torch's version and
    deterministic settings are read when torch is imported (this function never imports it); else the
    version comes from the installed package, and ``deterministic`` is None.

    >>> env = environment(argv=["train.py"], cwd="/")
    >>> env["strategy"], env["argv"], env["git"]["commit"]
    ('single', ['train.py'], None)
    """
    import numpy

    from . import __version__

    return {"lrtempo": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": _torch_version(), "device": device, "dtype": dtype, "world_size": world_size,
            "strategy": strategy or ("ddp" if world_size > 1 else "single"), "seeds": seeds or {},
            "deterministic": _deterministic(), "argv": list(sys.argv if argv is None else argv),
            "git": git_state(os.getcwd() if cwd is None else cwd)}


def _torch_version() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def _deterministic() -> dict[str, Any] | None:
    """torch's determinism switches, when torch is imported (None otherwise)."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "are_deterministic_algorithms_enabled"):
        return None
    cudnn = torch.backends.cudnn
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "deterministic_algorithms_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_enabled": bool(cudnn.enabled), "cudnn_deterministic": bool(cudnn.deterministic),
            "cudnn_benchmark": bool(cudnn.benchmark),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def git_state(folder: str | Path) -> dict[str, Any]:
    """``{"commit", "dirty", "note"}`` of the git working tree holding ``folder``; never raises.

    ``commit``: ``HEAD``'s hash; ``dirty``: whether tracked files differ from it (untracked files, such
    as a run directory inside the tree, do not count). Both are None, with ``note`` saying why, when git is
    not installed, ``folder`` is in no repository, the repository has no commit yet, or git fails or takes
    longer than :data:`GIT_TIMEOUT_S`; ``note`` is None when both are known.
    """
    head, problem = _git(folder, "rev-parse", "--verify", "HEAD")
    if problem is not None:
        return {"commit": None, "dirty": None, "note": problem}
    status, problem = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if problem is not None:
        return {"commit": head, "dirty": None, "note": problem}
    return {"commit": head, "dirty": bool(status), "note": None}


def _git(folder: str | Path, *args: str) -> tuple[str, str | None]:
    """git's output in ``folder``, or ``("", why it gave none)``."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # a status must not take the index's lock
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=GIT_TIMEOUT_S)
    except FileNotFoundError:
        return "", "git is not installed"
    except subprocess.TimeoutExpired:
        return "", f"git took longer than {GIT_TIMEOUT_S:g} s"
    except OSError as exc:
        return "", f"git could not run ({exc})"
    if done.returncode != 0:
        lines = (done.stderr or "").strip().splitlines()
        why = lines[0] if lines else f"exit status {done.returncode}"
        if "not a git repository" in why:
            return "", "not a git repository"
        if args[:2] == ("rev-parse", "--verify"):
            return "", f"no commit yet, or git failed ({why[:200]})"
        return "", f"git failed ({why[:200]})"
    return done.stdout.strip(), None
