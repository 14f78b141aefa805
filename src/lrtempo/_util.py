"""Helpers shared by every layer of the package: the "did you mean" hint and the missing-dependency error.

Import them from here, not from the module that defines them: ``did_you_mean`` is
defined in the lowest layer (``schedules/``, which imports nothing else of the
project) and reused by ``config/`` and ``train/``; ``MissingDependency`` is raised
by whatever needs an optional package (matplotlib for the PNG plots) and turned
into one line with the install command by the CLI.
"""

from __future__ import annotations

from .schedules._base import did_you_mean

__all__ = ["MissingDependency", "did_you_mean"]


class MissingDependency(RuntimeError):
    """An optional package needed for this feature is not installed."""
