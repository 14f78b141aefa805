"""PNG plots through matplotlib (an optional dependency, imported on use)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..schedules import Schedule
from ._text import column_ranges

__all__ = ["png_plot", "png_figure", "MissingDependency"]


class MissingDependency(RuntimeError):
    """An optional package needed for this feature is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency(
            "PNG plots need matplotlib, which is not installed: pip install 'lrtempo[plot]'"
        ) from None
    return plt


@contextmanager
def png_figure(path: str | Path, nrows: int = 1, *, figsize: tuple[float, float] = (10, 5), **subplots: Any
               ) -> Iterator[tuple[Any, Any]]:
    """``with png_figure(path) as (fig, ax):`` draw, and the figure is laid out, saved and closed."""
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, 1, figsize=figsize, dpi=100, **subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(Path(path))
    finally:
        plt.close(fig)


def png_plot(
    schedule: Schedule,
    path: str | Path,
    *,
    last_step: int | None = None,
    log_y: bool = False,
    title: str | None = None,
    width_px: int = 1200,
    height_px: int = 500,
) -> Path:
    """Write a PNG of the schedule over ``[0, last_step]`` with its phase boundaries marked."""
    last = schedule.horizon if last_step is None else last_step
    first, lows, highs = column_ranges(schedule, last, min(4000, last + 1))
    with png_figure(path, figsize=(width_px / 100, height_px / 100)) as (fig, ax):
        if np.array_equal(lows, highs):
            ax.plot(first, lows, color="tab:blue", lw=1.5, label="lr")
        else:
            ax.fill_between(first, lows, highs, step="post", color="tab:blue", alpha=0.6, lw=0)
            ax.plot(first, highs, color="tab:blue", lw=1.0, label="lr")
        for phase in schedule.phases(last):
            if 0 < phase.start <= last:
                ax.axvline(phase.start, color="0.5", ls="--", lw=0.8)
            mid_stop = last if phase.stop is None else min(phase.stop, last)
            ax.annotate(phase.name, xy=((phase.start + mid_stop) / 2, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", fontsize=8, color="0.35")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlim(0, last)
        ax.set_xlabel("step (optimizer updates applied)")
        ax.set_ylabel("learning rate")
        if title:
            ax.set_title(title, pad=18)
        ax.grid(alpha=0.3)
    path = Path(path)
    return path
