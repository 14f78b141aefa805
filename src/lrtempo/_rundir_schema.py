"""The run directory's file names and the columns of its logs, spelled once.

Every writer (``lrtempo train``, the monitor, your own loop) and every reader
(``analyze``, ``report``, the CLI) takes the names from here, through
:class:`lrtempo.rundir.RunDir` (which places them in a run directory, and
spells the checkpoints' names), so a run directory written by one is read by the
others. This module imports nothing heavier than the standard library.

A run directory holds::

    config.yaml    the resolved run config (written first: it makes the folder a run)
    run.json       hashes, versions and the log schema of the run
    log.csv        one row per update: LOG_COLUMNS (+ MONITOR_COLUMNS when monitored, + those of
                   HYPER_COLUMNS that the run config schedules)
    events.jsonl   one JSON object per monitor event (and per plateau reduction)
    reductions.jsonl  the rate reductions a ``type: plateau`` schedule recorded, one JSON object each
    layers.csv     per-layer rows: LAYER_COLUMNS
    summary.json   final and best losses, status
    schedule.txt   the schedule over the run, as text (lrtempo train)
    lr_schedule.png  the same as a PNG (lrtempo train, with matplotlib)
    checkpoints/   the saved training states
    tensorboard/   the log's rows as TensorBoard event files (lrtempo train with ``tensorboard: true``)
    .lock          held by the one process writing the run
    analysis.png   written by ``lrtempo analyze RUN_DIR``
    report.html    written by ``lrtempo report RUN_DIR``

>>> RUN_FILES.log, RUN_FILES.config
('log.csv', 'config.yaml')
>>> (*SCHEMA_COLUMNS, *EXTRA_COLUMNS) == LOG_COLUMNS
True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunFiles", "RUN_FILES", "LOG_SCHEMA_VERSION", "SCHEMA_COLUMNS", "EXTRA_COLUMNS", "LOG_COLUMNS",
           "MONITOR_COLUMNS", "HYPER_COLUMNS", "NUMERIC_COLUMNS", "LAYER_COLUMNS", "TENSORBOARD_FOLDER"]


@dataclass(frozen=True)
class RunFiles:
    """The names of the files (and folders) of a run directory, relative to it."""

    config: str = "config.yaml"
    meta: str = "run.json"
    log: str = "log.csv"
    events: str = "events.jsonl"
    reductions: str = "reductions.jsonl"
    layers: str = "layers.csv"
    summary: str = "summary.json"
    checkpoints: str = "checkpoints"
    lock: str = ".lock"
    schedule_text: str = "schedule.txt"
    schedule_png: str = "lr_schedule.png"
    analysis_png: str = "analysis.png"
    report: str = "report.html"

    @property
    def per_step(self) -> tuple[str, ...]:
        """The files with one record per step (cut back to the checkpoint on resume)."""
        return (self.log, self.events, self.layers, self.reductions)


RUN_FILES = RunFiles()

#: the folder of a run's TensorBoard event files (apart from :class:`RunFiles`: the word is also a config key)
TENSORBOARD_FOLDER = "tensorboard"

#: bumped when the meaning or order of the log's columns changes (recorded in run.json)
LOG_SCHEMA_VERSION = 1

#: the columns every log.csv starts with, in order; ``analyze`` reads any CSV that has them
SCHEMA_COLUMNS = ("step", "lr", "grad_l2_norm", "loss")

#: the columns ``lrtempo train`` writes after the schema columns (``tokens`` and ``samples``: what the updates
#: consumed up to and including the row's, on all processes together)
EXTRA_COLUMNS = ("val_loss", "tokens", "seconds", "skipped_updates", "samples")

#: every column of an unmonitored ``lrtempo train`` log, in order
LOG_COLUMNS = (*SCHEMA_COLUMNS, *EXTRA_COLUMNS)

#: the extra log.csv columns the monitor fills, after LOG_COLUMNS
MONITOR_COLUMNS = ("phase", "trap_status", "effective_lr_median", "effective_lr_p90", "effective_lr_max",
                   "effective_lr_ratio", "update_ratio", "momentum_alignment")

#: the columns of the hyperparameters a run config schedules besides the rate, after the others, each only when
#: that schedule is given: the value of update ``step`` (the weight decay of a decayed group)
HYPER_COLUMNS = ("momentum", "weight_decay")

#: the log columns a reader parses as numbers (besides any other column that holds only numbers)
NUMERIC_COLUMNS = (*SCHEMA_COLUMNS, "val_loss", "effective_lr_median", "effective_lr_p90", "effective_lr_max",
                   *HYPER_COLUMNS)

#: the columns of layers.csv, in order
LAYER_COLUMNS = ("step", "layer", "effective_lr_median", "effective_lr_p90", "effective_lr_max",
                 "effective_lr_ratio", "update_ratio", "grad_l2_norm")
