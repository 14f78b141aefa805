"""The value checks every config walker shares: numbers, whole numbers, and how a value is quoted back.

Used by the schedule-spec builder (``_build``) and the typed-settings walker
(``_typed``), so that a number is refused with the same words wherever it is.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping
from typing import Any

from ._errors import Problem


def _brief(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut in the middle when longer than ``limit`` (a message stays one short line).

    >>> _brief("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxx...(102 characters)...xxxxxxxxxxxxxxxxxxxxxxxx'"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    half = (limit - 10) // 2
    return f"{text[:half]}...({len(text)} characters)...{text[-half:]}"


def _join(path: str, key: Any) -> str:
    if key == "":
        return path
    key = key if isinstance(key, str) and len(key) <= 60 else _brief(key)
    return f"{path}.{key}" if path else str(key)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{value!r}, a boolean"
    if isinstance(value, str):
        return f"{_brief(value)}, a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _check_number(value: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        problems.append(Problem(path, f"must be a number (got {_describe(value)})"))
        return None
    if isinstance(value, numbers.Integral) and abs(value) > sys.float_info.max:
        problems.append(Problem(path, f"must be a number within -1.8e308..1.8e308 (got an integer of "
                                      f"{abs(value).bit_length()} bits)"))
        return None
    if not math.isfinite(value):
        problems.append(Problem(path, f"must be a finite number (got {value!r})"))
        return None
    return value


def _check_integer(value: Any, path: str, problems: list[Problem]) -> Any:
    value = _check_number(value, path, problems)
    if value is None:
        return None
    if isinstance(value, float):
        if not value.is_integer():
            problems.append(Problem(path, f"must be a whole number of steps (got {value!r})"))
            return None
        value = int(value)
    return value
