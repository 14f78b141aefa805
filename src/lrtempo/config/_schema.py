"""JSON Schemas (draft 2020-12): of the schedule spec, from the registry, and of a settings class (a run
config), from its fields."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ..schedules import MAX_STEPS, UNITS

__all__ = ["json_schema", "settings_schema"]

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
    from ..schedules.compat import CURVES, LIBRARIES
    from ._build import REGISTRY
    from ._horizon import auto_field

    defs: dict[str, Any] = {}
    for name, ts in REGISTRY.items():
        props: dict[str, Any] = {"type": {"const": name}}
        for f in ts.fields:
            props[f.name] = _field_schema(f.kind, f.choices)
            if f.default is not None:
                props[f.name]["default"] = f.default
            if f.name == auto_field(name):
                props[f.name] = {"anyOf": [props[f.name], {"const": "auto", "description": "the run config's "
                                                           "budget (total), in the schedule's unit"}]}
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
                                                        "(timm's epoch mode {updates_per_epoch: N}, megatron "
                                                        "{increment: N}, olmo-core {t_max: N}, torchtitan "
                                                        "{training_steps: N}, composer {max_duration, "
                                                        "batches_per_epoch})"},
            "curve": {"enum": list(CURVES), "description": "the rate (default) or the momentum the "
                                                                 "library sets with it (torch's cycle_momentum)"},
        },
        "required": ["type", "library", "name"],
        "additionalProperties": False,
    }
    for spec_def in defs.values():  # the unit is read on the top-level spec only; config refuses it inside
        spec_def["properties"]["unit"] = {"enum": list(UNITS), "default": "steps",
                                          "description": "what positions and durations count (top-level only)"}
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


_BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def _setting_schema(hint: Any, meta: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one settings field's values (its type hint and rules; see ``_typed``)."""
    from ..schedules import Schedule
    from ._typed import _choices, _optional

    hint, optional = _optional(hint)
    if meta.get("section") is not None:  # true, false, null or the section's mapping
        return {"anyOf": [{"type": "boolean"}, _settings_object(meta["section"], defs), {"type": "null"}]}
    if hint is bool:
        out: dict[str, Any] = {"type": "boolean"}
    elif hint in (int, float):
        out = {"type": "integer" if hint is int else "number"}
        for rule, key in zip(("minimum", "exclusive_minimum", "maximum", "exclusive_maximum"), _BOUNDS):
            if meta.get(rule) is not None:
                out[key] = meta[rule]
    elif hint is str:
        choices = _choices(meta)
        out = {"type": "string", "enum": list(choices)} if choices else {"type": "string"}
    elif typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
        out = {"type": "array", "items": _setting_schema(typing.get_args(hint)[0], meta, defs)}
    elif typing.get_origin(hint) is tuple:
        items = [_setting_schema(t, meta, defs) for t in typing.get_args(hint)]
        out = {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    elif hint is dict or typing.get_origin(hint) is dict:
        out = {"type": "object"}
    elif dataclasses.is_dataclass(hint):
        out = _settings_object(hint, defs)
    elif hint is Schedule:
        defs.update(json_schema()["$defs"])
        out = {"$ref": "#/$defs/schedule"}
    else:  # pragma: no cover - a programming error, as in the walker
        raise TypeError(f"no JSON Schema for a field of type {hint!r}")
    if meta.get("words"):
        out = {"anyOf": [out, {"type": "string", "enum": list(meta["words"])}]}
    return {"anyOf": [out, {"type": "null"}]} if optional else out


def _plain_default(f: dataclasses.Field) -> Any:
    """The field's default as JSON, or None where it has none (or one JSON cannot hold)."""
    value = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    if isinstance(value, tuple):
        return list(value)
    return value if isinstance(value, (bool, int, float, str, dict)) else None


def _settings_object(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema object of a settings class: every config key, its values, doc and default."""
    from ._typed import settings_fields

    props: dict[str, Any] = {}
    required = []
    for f, hint in settings_fields(cls):
        if f.metadata.get("derived"):
            continue
        prop = {**_setting_schema(hint, f.metadata, defs), "description": f.metadata["doc"]}
        default = None if f.metadata.get("computed") else _plain_default(f)
        if default is not None:
            prop["default"] = default
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    out = {"type": "object", "description": doc, "properties": props, "additionalProperties": False}
    return {**out, "required": required} if required else out


def settings_schema(cls: type, *, title: str, schema_id: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a settings class (``lrtempo schema --run``: of a run config), from
    the same fields, docs and rules that :func:`~lrtempo.config._typed.read_settings` checks."""
    defs: dict[str, Any] = {}
    body = _settings_object(cls, defs)
    out = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, "title": title, **body}
    return {**out, "$defs": defs} if defs else out
