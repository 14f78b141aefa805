"""The PNG of ``lrtempo race``: every schedule's training-loss curve, the mean over seeds with ± one std shaded.

Like every view here it takes plain data, the curves by schedule name, and reads
or trains nothing; ``lrtempo race`` runs the race and hands the curves over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._png import label_axes, png_figure

__all__ = ["race_png"]


def race_png(curves: Mapping[str, Sequence[Sequence[float]]], path: str | Path, *, title: str,
             x_label: str = "update") -> Path:
    """Draw ``curves`` (schedule name -> one loss curve per seed) into ``path``; returns the path.

    Each schedule's line is the mean over its seeds at each point (NaN-aware), shaded by ± the standard
    deviation when there is more than one seed; the loss axis is logarithmic.
    """
    with png_figure(path, figsize=(10, 5)) as (fig, ax):
        for name, runs in curves.items():
            arr = np.asarray(runs, dtype=np.float64)
            mean = np.nanmean(arr, axis=0)
            x = np.arange(mean.size)
            ax.plot(x, mean, lw=1.4, label=name)
            if arr.shape[0] > 1:
                std = np.nanstd(arr, axis=0)
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        label_axes(ax, title=title, x_label=x_label, y_label="training loss", y_scale="log")
    return Path(path)
