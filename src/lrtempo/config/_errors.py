"""Config errors: every problem with its field path, reported together."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config: where (a dotted field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` holds every problem found.

    >>> str(ConfigError([Problem("schedule.peak_lr", "must be >= 0 (got -1.0)")]))
    'schedule.peak_lr: must be >= 0 (got -1.0)'
    """

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self.summary())

    def summary(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(prefix + str(p) for p in self.problems)

    def one_line(self) -> str:
        """All problems on one line, for the CLI's stderr."""
        prefix = f"{self.source}: " if self.source else ""
        return prefix + "; ".join(str(p) for p in self.problems)
