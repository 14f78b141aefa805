"""Built-in tasks on real data, nothing downloaded: linear, flipnet, quadratic, charlm."""

from __future__ import annotations

from ._base import Task
from .charlm import CharLMTask
from .flipnet import FlipNetTask
from .linear import LinearTask
from .quadratic import QuadraticTask

#: task name -> class (built as ``cls(options, seed, rank, world_size)``)
TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (LinearTask, FlipNetTask, QuadraticTask, CharLMTask)}

__all__ = ["TASKS", "Task", "CharLMTask", "FlipNetTask", "LinearTask", "QuadraticTask", "task_data_facts"]


def task_data_facts(task: str, options: dict):
    """The :meth:`Task.data_facts` of the built-in task ``task`` (KeyError: no such task)."""
    return TASKS[task].data_facts(dict(options))
