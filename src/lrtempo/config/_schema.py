"""A JSON Schema (draft 2020-12) of the schedule spec, generated from the registry."""

from __future__ import annotations

from typing import Any

from ..schedules import MAX_STEPS

__all__ = ["json_schema"]

_INT = {"type": "integer", "minimum": 0, "maximum": MAX_STEPS}


def _field_schema(kind: str, choices: tuple[str, ...] | None) -> dict[str, Any]:
    base = kind.rstrip("?")
    if base == "number":
        out: dict[str, Any] = {"type": "number"}
    elif base == "integer":
        out = dict(_INT)
    elif base == "boolean":
        out = {"type": "boolean"}
    elif base == "string":
        out = {"type": "string", "enum": list(choices)} if choices else {"type": "string"}
    elif base == "schedule":
        out = {"$ref": "#/$defs/schedule"}
    elif base == "integer_list":
        out = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS}, "minItems": 1}
    else:  # pieces
        out = {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"schedule": {"$ref": "#/$defs/schedule"},
                               "steps": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS}},
                "required": ["schedule"],
                "additionalProperties": False,
            },
        }
    if kind.endswith("?"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a schedule spec (or a run config holding one under ``schedule``)."""
    from ..schedules.compat import LIBRARIES
    from ._build import REGISTRY

    defs: dict[str, Any] = {}
    for name, ts in REGISTRY.items():
        props: dict[str, Any] = {"type": {"const": name}}
        for f in ts.fields:
            props[f.name] = _field_schema(f.kind, f.choices)
            if f.default is not None:
                props[f.name]["default"] = f.default
        for alias, steps_field in ts.fractions.items():
            props[alias] = {"type": "number", "minimum": 0, "maximum": 1,
                            "description": f"{steps_field} as a fraction of total_steps"}
        defs[name] = {
            "type": "object",
            "description": ts.doc,
            "properties": props,
            "required": ["type", *(f.name for f in ts.fields if f.required and f.name not in ts.fractions.values())],
            "additionalProperties": False,
        }
    defs["compat"] = {
        "type": "object",
        "description": "Another library's named schedule, value for value (see docs/compat.md).",
        "properties": {
            "type": {"const": "compat"},
            "library": {"enum": sorted(LIBRARIES)},
            "name": {"type": "string"},
            "base_lr": {"type": "number", "minimum": 0},
            "kwargs": {"type": "object"},
            "context": {"type": "object", "description": "what the schedule needs beyond its kwargs "
                                                        "(timm's epoch mode: {updates_per_epoch: N})"},
        },
        "required": ["type", "library", "name"],
        "additionalProperties": False,
    }
    defs["schedule"] = {"oneOf": [{"$ref": f"#/$defs/{name}"} for name in [*REGISTRY, "compat"]]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lrtempo.invalid/schema/schedule.json",
        "title": "lrtempo schedule spec",
        "description": "A schedule spec (a mapping with 'type'), or a run config with the spec under 'schedule'.",
        "anyOf": [
            {"$ref": "#/$defs/schedule"},
            {"type": "object", "properties": {"schedule": {"$ref": "#/$defs/schedule"}}, "required": ["schedule"]},
        ],
        "$defs": defs,
    }
