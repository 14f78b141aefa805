"""PNG plots through matplotlib (an optional dependency, imported on use).

Every PNG the package writes is drawn here, from plain data: a schedule
(:func:`png_plot`), a run's log with its phases and events (:func:`log_png`, the
figure of ``lrtempo analyze``) and an LR range test (:func:`range_test_png`, the
figure of ``lrtempo find-lr``). Nothing here reads a file or analyses a log; the
caller hands over what to draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._util import MissingDependency
from ..schedules import Schedule
from ._text import column_ranges
from ._thin import thin_rows

__all__ = ["PHASE_COLORS", "MissingDependency", "log_png", "png_figure", "png_plot", "range_test_png"]

#: the band colour of each phase in every plot of a run (PNG and HTML)
PHASE_COLORS = {"warmup": "#fde2e2", "plateau": "#e2f0fd", "early_decay": "#e4f7e4", "mid_decay": "#f3f7d9",
                "late_decay": "#f7ecd9", "past_end": "#e6e6e6"}


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
        ax.set_xlabel("step (optimizer updates applied)" if schedule.unit == "steps"
                      else f"{schedule.unit} (consumed before the update)")
        ax.set_ylabel("learning rate")
        if title:
            ax.set_title(title, pad=18)
        ax.grid(alpha=0.3)
    path = Path(path)
    return path


#: step buckets the log PNG's series are thinned to (twice its width in pixels: 12 in at 100 dpi)
PNG_BUCKETS = 2_400
#: event labels per kind across the log PNG (one per slot of the step range; every event keeps its line)
PNG_LABEL_SLOTS = 120


def _png_series(m: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rows the PNG draws: all of a short log; of a long one, each bucket's first, last, lowest and highest
    value of every drawn series and its first gap (:func:`~lrtempo.plot._thin.thin_rows`)."""
    n = int(m["step"].size)
    if n <= 4 * PNG_BUCKETS:
        return np.arange(n), m
    rows = thin_rows(n, [m[c] for c in ("lr", "grad_l2_norm", "loss")], PNG_BUCKETS, gaps="bucket")
    out = {c: m[c][rows] for c in ("step", "lr", "grad_l2_norm", "loss")}
    if "val_loss" in m:
        ok = np.flatnonzero(np.isfinite(m["val_loss"]))
        if ok.size > 4 * PNG_BUCKETS:
            ok = ok[thin_rows(ok.size, [m["val_loss"][ok]], PNG_BUCKETS)]
        out["val_steps"], out["val_loss"] = m["step"][ok], m["val_loss"][ok]
    return rows, out


def _mark_steps(events: list[dict[str, Any]], first: int, last: int) -> np.ndarray:
    """The steps to mark with an event line: one per bucket of :data:`PNG_BUCKETS` of the steps (the first event
    step in it), since lines closer than a pixel column draw as one; every bucket with an event keeps a line.

    >>> _mark_steps([{"step": s} for s in (0, 1, 2, 5000, 9999)], 0, 9999).tolist()
    [0, 1, 2, 5000, 9999]
    >>> _mark_steps([{"step": s} for s in range(0, 10**6, 7)], 0, 10**6 - 1).size
    2400
    """
    steps = np.unique(np.asarray([e["step"] for e in events], dtype=np.int64))
    if steps.size <= PNG_BUCKETS:
        return steps
    span = max(1, last - first + 1)
    bucket = (steps - first) * PNG_BUCKETS // span
    return steps[np.flatnonzero(np.diff(bucket, prepend=-1))]


def _mark_lines(ax: Any, steps: np.ndarray) -> None:
    """A dotted line from bottom to top of ``ax`` at each step, as one path broken by NaN (one artist, however
    many lines)."""
    x = np.repeat(steps.astype(np.float64), 3)
    x[2::3] = np.nan
    y = np.tile([0.0, 1.0, np.nan], steps.size)
    ax.plot(x, y, transform=ax.get_xaxis_transform(), color="tab:red", lw=0.8, ls=":")


def _labelled(events: list[dict[str, Any]], first: int, last: int) -> list[dict[str, Any]]:
    """The events to label: the first of each kind in each of :data:`PNG_LABEL_SLOTS` slots of the steps."""
    span = max(1, last - first + 1)
    seen, out = set(), []
    for e in events:
        key = (e["kind"], (int(e["step"]) - first) * PNG_LABEL_SLOTS // span)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def log_png(path: str | Path, metrics: dict[str, np.ndarray], phases: list[dict[str, Any]],
            events: list[dict[str, Any]], title: str) -> Path:
    """Rate, gradient norm and loss of a log on a shared step axis, with phase bands and event marks.

    ``metrics``: the log's columns (``step``, ``lr``, ``grad_l2_norm``, ``loss``, optionally ``val_loss``), one
    row per step; ``phases``: ``{phase, first_step, last_step}`` each; ``events``: ``{step, kind}`` each. A long
    log is thinned per bucket of steps first (:func:`_png_series`), and so are its event lines
    (:func:`_mark_steps`), so the plot costs the same for a thousand rows or events as for ten million.
    """
    _, m = _png_series(metrics)
    steps = m["step"]
    marks = _mark_steps(events, int(steps[0]), int(steps[-1])) if steps.size else np.zeros(0, dtype=np.int64)
    labels = _labelled(events, int(steps[0]), int(steps[-1])) if steps.size else []
    with png_figure(path, 3, sharex=True, figsize=(12, 8)) as (fig, axes):
        series = [("lr", "learning rate", False), ("grad_l2_norm", "gradient L2 norm", True), ("loss", "loss", False)]
        for ax, (col, ylabel, logy) in zip(axes, series):
            ax.plot(steps, m[col], lw=1.0, color="tab:blue", label=col)
            if col == "loss" and "val_loss" in m and np.isfinite(m["val_loss"]).any():
                ok = np.isfinite(m["val_loss"])
                val_steps = m.get("val_steps", steps)
                ax.plot(val_steps[ok], m["val_loss"][ok], "o-", ms=3, color="tab:orange", label="val_loss")
                ax.legend(loc="upper right", fontsize=8)
            shown = m[col][np.isfinite(m[col])]
            if logy and shown.size and np.all(shown > 0):
                ax.set_yscale("log")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            for p in phases:
                ax.axvspan(p["first_step"], p["last_step"] + 1, color=PHASE_COLORS[p["phase"]], alpha=0.8, lw=0,
                           zorder=0)
            if marks.size:
                _mark_lines(ax, marks)
        for p in phases:
            axes[0].annotate(p["phase"], xy=((p["first_step"] + p["last_step"]) / 2, 1.0),
                             xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
        for e in labels:
            axes[2].annotate(e["kind"], xy=(e["step"], 0.02), xycoords=("data", "axes fraction"), rotation=90,
                             fontsize=7, color="tab:red", va="bottom")
        axes[-1].set_xlabel("step")
        fig.suptitle(title)
    return Path(path)


def range_test_png(path: str | Path, lrs: list[float], losses: list[float], smoothed: list[float],
                   suggestions: dict[str, float | None], title: str = "LR range test") -> Path:
    """Loss and smoothed loss against rate (log scale), each suggestion (``{"steepest": lr, ...}``; ``None``
    when there is none) marked."""
    colors = {"steepest": "tab:orange", "valley": "tab:green"}
    with png_figure(path, figsize=(9, 5)) as (fig, ax):
        ax.plot(lrs, losses, color="0.75", lw=0.8, label="loss")
        ax.plot(lrs, smoothed, color="tab:blue", lw=1.6, label="smoothed loss")
        for name, lr in suggestions.items():
            if lr is not None:
                ax.axvline(lr, color=colors.get(name, "tab:red"), ls="--", lw=1.2, label=f"{name}: {lr:.2e}")
        label_axes(ax, title=title, x_label="learning rate (log scale)", y_label="loss", x_scale="log")
    return Path(path)


def label_axes(ax: Any, *, title: str, x_label: str, y_label: str, x_scale: str = "linear",
               y_scale: str = "linear") -> None:
    """Title, axis labels and scales, a light grid on both tick levels, and the legend of a one-panel plot."""
    ax.set_xscale(x_scale)
    ax.set_yscale(y_scale)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
