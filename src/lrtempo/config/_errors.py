"""Config errors: every problem with its field path, reported together."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "Problem", "SHOWN_PROBLEMS"]

#: how many problems a message lists before counting the rest
SHOWN_PROBLEMS = 20
#: the longest a listed problem may be; longer ones (a huge value quoted back) are cut in the middle
PROBLEM_CHARS = 500


def _cut(text: str) -> str:
    if len(text) <= PROBLEM_CHARS:
        return text
    half = (PROBLEM_CHARS - 30) // 2
    return f"{text[:half]} ...({len(text) - 2 * half} characters cut)... {text[-half:]}"


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

    def _shown(self) -> list[str]:
        """The first :data:`SHOWN_PROBLEMS` problems, then ``... and K more problems``."""
        shown = [_cut(str(p)) for p in self.problems[:SHOWN_PROBLEMS]]
        rest = len(self.problems) - len(shown)
        if rest > 0:
            shown.append(f"... and {rest} more problem{'s' if rest > 1 else ''}")
        return shown

    def summary(self) -> str:
        """One problem a line (at most :data:`SHOWN_PROBLEMS`, then a count of the rest)."""
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(prefix + line for line in self._shown())

    def one_line(self) -> str:
        """The problems on one line, for the CLI's stderr (the first few, then a count).

        >>> err = ConfigError([Problem(f"k{i}", "unknown key") for i in range(25)], source="a.yaml")
        >>> err.one_line()[-41:]
        'k19: unknown key; ... and 5 more problems'
        """
        prefix = f"{self.source}: " if self.source else ""
        return prefix + "; ".join(self._shown())
