"""The PNG of ``lrtempo race``: every schedule's training-loss curve, the mean over seeds with ± one std shaded;
and the race's multi-run page beside it: every (schedule, seed) a run of its own.

Like every view here it takes plain data, the curves by schedule name, and reads
or trains nothing; ``lrtempo race`` runs the race and hands the curves over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._multi import MultiRun, render_multi_report
from ._png import label_axes, png_figure

__all__ = ["race_png", "race_page", "race_report", "race_report_path", "race_runs"]


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


def race_page(result: object, path: str | Path, *, png: str | Path | None, command: str) -> Path:
    """One self-contained HTML page of a race: its table (with its notes), the command that reproduces it, and
    the PNG of every curve embedded (when one was drawn). ``result`` is a race result (``table()``, ``title``)."""
    import base64
    import html

    from .._atomic import atomic_write_text

    image = ""
    if png is not None:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        image = f'<img alt="loss curves" style="max-width:100%" src="data:image/png;base64,{data}">'
    title = html.escape(result.title)  # type: ignore[attr-defined]
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif;max-width:70em;margin:2em auto'><h1>{title}</h1>"
            f"<p>Reproduce: <code>{html.escape(command)}</code></p>"
            f"<pre>{html.escape(result.table())}</pre>{image}</body></html>\n")  # type: ignore[attr-defined]
    atomic_write_text(Path(path), body)
    return Path(path)


def race_report_path(png: str | Path) -> Path:
    """Where the race's multi-run page goes: beside its PNG, ``NAME.report.html`` for ``NAME.png``.

    >>> race_report_path("out/race.png").as_posix()
    'out/race.report.html'
    """
    png = Path(png)
    return png.with_name(png.stem + ".report.html")


def race_runs(result: object) -> list[MultiRun]:
    """Every (schedule, seed) of a race result as a run: its loss curve as ``loss`` by point (update or epoch),
    with the columns the race recorded (``lr``; ``grad_l2_norm`` and ``seconds`` for a training race) and the
    schedule's hash. A run is named by its schedule, and its seed when the race has several."""
    seeds = list(result.seeds)  # type: ignore[attr-defined]
    columns = getattr(result, "columns", {})
    hashes = getattr(result, "hashes", {})
    runs = []
    for name, curves in result.curves.items():  # type: ignore[attr-defined]
        for k, (seed, curve) in enumerate(zip(seeds, curves)):
            loss = np.asarray(curve, dtype=np.float64)
            metrics = {"step": np.arange(loss.size, dtype=np.int64), "loss": loss}
            extra = columns.get(name, [])
            for column, values in (extra[k] if k < len(extra) else {}).items():
                metrics[column] = np.asarray(values, dtype=np.float64)
            runs.append(MultiRun(f"{name} (seed {seed})" if len(seeds) > 1 else name, f"seed {seed}", metrics,
                                 hashes.get(name)))
    return runs


def race_report(result: object, path: str | Path) -> Path:
    """Write the race's multi-run page (:func:`race_runs`, drawn by :func:`lrtempo.plot.render_multi_report`)
    to ``path``, atomically; returns the path."""
    from .._atomic import atomic_write_text

    page, _ = render_multi_report(race_runs(result), title=str(result.title),  # type: ignore[attr-defined]
                                  x_label=str(result.x_label))  # type: ignore[attr-defined]
    atomic_write_text(Path(path), page)
    return Path(path)
