"""Change one number in a config file in place, keeping every other byte (comments, layout, other numbers).

No YAML, JSON or TOML reader reports where a value sits in the text, so the
number is located by trial: every numeric token in the text that equals the
current value is a candidate; a candidate is the value's only if replacing
that token alone, and nothing else, gives exactly the original mapping with the
one value changed. Exactly one candidate must pass; otherwise the edit is
refused (the value is shared through a YAML anchor, written in a form no token
matches, or not in the file at all). The same rule serves all three formats.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_text
from ..config import ConfigError, Problem, parse_config_text

__all__ = ["number_text", "replace_number", "write_number"]

# a number as YAML, JSON or TOML write one, not inside a word or a longer number
_NUMBER = re.compile(r"(?<![\w.+-])[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?(?![\w.])")
_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


def number_text(value: float) -> str:
    """``repr(value)``, with a ``.0`` in an exponent form so every YAML reader takes it for a float.

    >>> number_text(0.00123), number_text(1e-05), number_text(3.5e-07)
    ('0.00123', '1.0e-05', '3.5e-07')
    """
    text = repr(float(value))
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def replace_number(text: str, fmt: str, data: dict, target: Callable[[dict], dict], key: str, value: float,
                   source: str, where: str) -> str:
    """``text`` with only the token holding ``target(data)[key]`` replaced by ``value``.

    ``data`` is ``text`` parsed; ``target`` picks the mapping that holds ``key``.
    ``where`` names the field in errors (``schedule.peak_lr``).

    >>> text = "# tuned\\nschedule: {type: constant, lr: 0.1}  # lr: 0.1 before\\nsteps: 100\\n"
    >>> data = parse_config_text(text, "yaml")
    >>> print(replace_number(text, "yaml", data, lambda d: d["schedule"], "lr", 0.02, "f.yaml", "schedule.lr"),
    ...       end="")
    # tuned
    schedule: {type: constant, lr: 0.02}  # lr: 0.1 before
    steps: 100
    """
    old = target(data).get(key)
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        raise ConfigError([Problem(where, f"is {old!r}, not a number, so it cannot be set in place")], source=source)
    expected = copy.deepcopy(data)
    target(expected)[key] = float(value)
    new = number_text(value)
    hits = []
    for match in _NUMBER.finditer(text):
        if _as_number(match.group()) != old:
            continue
        edited = text[:match.start()] + new + text[match.end():]
        if _parses_to(edited, fmt, expected):
            hits.append(edited)
    if len(hits) != 1:
        why = ("no single number in the file holds it (shared through a YAML anchor, or written in a form that "
               "cannot be changed alone)") if not hits else f"{len(hits)} places in the file hold it"
        raise ConfigError([Problem(where, f"cannot be set to {new} in place: {why}; edit it by hand")],
                          source=source)
    return hits[0]


def write_number(path: str | Path, target: Callable[[dict], dict], key: str, value: float, where: str) -> None:
    """Set one number in a config file in place (see :func:`replace_number`), atomically."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError([Problem("", f"unknown config file suffix {path.suffix!r}")], source=str(path))
    with open(path, encoding="utf-8", newline="") as fh:  # newline="": keep the file's line ends
        text = fh.read()
    data = parse_config_text(text, fmt, source=str(path))
    atomic_write_text(path, replace_number(text, fmt, data, target, key, value, str(path), where))


def _as_number(token: str) -> float | None:
    try:
        return float(token.replace("_", ""))
    except ValueError:
        return None


def _parses_to(text: str, fmt: str, expected: Any) -> bool:
    try:
        data = parse_config_text(text, fmt)
    except (ConfigError, ValueError):
        return False
    return _same(data, expected)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types throughout (``1 == 1.0 == True`` must not hide a changed value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
