"""Checkpoints: atomic writes, and everything an exact resume needs.

A checkpoint holds the model, the optimizer's moments, the schedule's spec and
hash, the global step, the RNG states (Python, NumPy, torch), each rank's data
position and the log position. It is written to a temp file, fsynced and
renamed, so a crash leaves the previous checkpoint intact, and a failed write
(a full disk) removes its temp file before the error goes on; it loads with
``torch.load(weights_only=True)``. A run under FSDP2 (``distributed: fsdp``) writes each checkpoint as a
folder of the same name (see :mod:`lrtempo.train._fsdp`): its ``state.pt`` holds all of this but the model
and optimizer, which are sharded in ``torch.distributed.checkpoint`` files beside it.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_replace
from ..rundir import checkpoint_files, checkpoint_name, checkpoint_step
from ._runconfig import KEEP_CHECKPOINTS

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "checkpoint_step",
           "rng_state", "set_rng_state", "prune_checkpoints", "remove_checkpoint"]

CHECKPOINT_FORMAT = 1
#: in a checkpoint folder (FSDP2), the file with everything but the sharded model and optimizer
STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states, as plain values and tensors (loadable with weights_only)."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(py_state), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def save_checkpoint(folder: str | Path, step: int, payload: dict[str, Any], *, keep: int | None = KEEP_CHECKPOINTS,
                    protect: Collection[int] = ()) -> Path:
    """Write ``folder/step-NNNNNNNN.pt`` atomically; then keep the newest ``keep`` checkpoints (None: all) and
    every one whose step is in ``protect``, removing the others."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    with atomic_replace(path, binary=True) as fh:  # a failed write (a full disk) leaves no temp file
        torch.save({"format": CHECKPOINT_FORMAT, "step": step, **payload}, fh)
    prune_checkpoints(folder, keep, protect)
    return path


def prune_checkpoints(folder: str | Path, keep: int | None, protect: Collection[int] = ()) -> None:
    """Keep the newest ``keep`` checkpoints (None: all) and those whose step is in ``protect``; remove the rest."""
    if keep is not None:
        prunable = [p for p in checkpoint_files(folder) if checkpoint_step(p) not in protect]
        for old in prunable[:-keep]:
            remove_checkpoint(old)


def remove_checkpoint(path: str | Path) -> None:
    """Remove a checkpoint file, or a checkpoint folder (FSDP2) with what it holds."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest checkpoint in a ``checkpoints/`` folder, or None."""
    found = checkpoint_files(folder)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents (of a folder, FSDP2's: its ``state.pt``, without the sharded model and optimizer)."""
    path = Path(path)
    try:
        state = torch.load(path / STATE_FILE if path.is_dir() else path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: say which and why
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
    return state
