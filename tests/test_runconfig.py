"""Run configs as typed settings: one walker over the dataclass fields, every problem at once, one source of
defaults, the resolved config written exactly as before, and the JSON Schema from the same fields."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from lrtempo.config import ConfigError, OptimizerConfig, format_config, read_config_file
from lrtempo.config._typed import settings_fields
from lrtempo.monitor import MonitorSettings
from lrtempo.train import DEFAULT_RUN, RunConfig, parse_run_config

EXAMPLE = Path(__file__).parent.parent / "examples" / "run_config.yaml"
BASE = {"task": "linear", "schedule": {"type": "constant", "lr": 0.1}, "steps": 10}


def _problems(**over) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_run_config({**BASE, **over})
    return [str(p) for p in info.value.problems]


# --- the classes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [RunConfig, OptimizerConfig, MonitorSettings])
def test_settings_are_frozen_keyword_only_dataclasses_with_a_doc_per_field(cls):
    params = dataclasses.fields(cls)
    assert cls.__dataclass_params__.frozen
    assert all(f.kw_only for f in params)
    assert all(f.metadata.get("doc") for f in params), [f.name for f in params if not f.metadata.get("doc")]
    with pytest.raises(TypeError):
        cls(*[None] * 3)


def test_settings_cannot_be_changed_after_construction():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MonitorSettings().trap_window = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        OptimizerConfig().name = "sgd"


@pytest.mark.parametrize("make, message", [
    (lambda: MonitorSettings(trap_window=1), "monitor.trap_window: must be >= 2 (got 1)"),
    (lambda: MonitorSettings(effective_every=0), "monitor.effective_every: must be >= 1 (got 0)"),
    (lambda: MonitorSettings(spike_factor=math.nan), "monitor.spike_factor: must be a finite number (got nan)"),
    (lambda: MonitorSettings(per_layer="yes"), "monitor.per_layer: must be true or false (got 'yes', a string)"),
    (lambda: OptimizerConfig(betas=(0.9, 1.0)), "optimizer.betas[1]: must be < 1 (got 1.0)"),
    (lambda: OptimizerConfig(name="adam"),
     "optimizer.name: must be 'adamw', 'sgd' or 'schedulefree' (got 'adam'); did you mean"),
])
def test_settings_built_in_python_are_checked_by_the_same_rules(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message)


# --- the walker --------------------------------------------------------------------------------------------------

def test_every_problem_comes_at_once_each_with_its_field_path():
    found = _problems(optimizer={"betas": [0.9, 1.5], "eps": 0, "nam": "adamw"}, seed=-1, bf16="no",
                      monitor={"trap_window": 1, "spike_factr": 2}, device="gpu", grad_clip=-1.0, tsk="linear")
    assert found == [
        "tsk: unknown key in a run config; did you mean 'task'? (valid keys: task, schedule, momentum, weight_decay, "
        "name, task_options, seed, steps, total, optimizer, grad_clip, accumulation_steps, batch_ramp, bf16, "
        "checkpoint_every, keep_checkpoints, checkpoint_at, eval_every, max_consecutive_skips, device, distributed, "
        "monitor, tensorboard, data)",
        "seed: must be >= 0 (got -1)",
        "optimizer.nam: unknown key in the optimizer settings; did you mean 'name'? (valid keys: name, betas, eps, "
        "weight_decay, momentum)",
        "optimizer.betas[1]: must be < 1 (got 1.5)",
        "optimizer.eps: must be > 0 (got 0)",
        "grad_clip: must be > 0 (got -1.0)",
        "bf16: must be true or false (got 'no', a string)",
        "device: must be 'cpu', 'cuda' or 'auto' (got 'gpu'); did you mean 'cpu'?",
        "monitor.spike_factr: unknown key in the monitor settings; did you mean 'spike_factor'? (valid keys: "
        "effective_every, per_layer, every_signal, trap_window, trap_threshold, spike_window, spike_factor, "
        "staleness_window, staleness_threshold, restart_window)",
        "monitor.trap_window: must be >= 2 (got 1)",
    ]


@pytest.mark.parametrize("over, message", [
    ({"seed": 2.5}, "seed: must be a whole number (got 2.5)"),
    ({"seed": True}, "seed: must be a number (got True, a boolean)"),
    ({"steps": 0}, "steps: must be >= 1 (got 0)"),
    ({"eval_every": -1}, "eval_every: must be >= 0 (got -1)"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas: must be a list of 2 numbers (got a list)"),
    ({"optimizer": {"betas": [-0.1, 0.9]}}, "optimizer.betas[0]: must be >= 0 (got -0.1)"),
    ({"optimizer": {"betas": ["a", 0.9]}}, "optimizer.betas[0]: must be a number (got 'a', a string)"),
    ({"optimizer": {"momentum": 2}}, "optimizer.momentum: must be <= 1 (got 2)"),
    ({"optimizer": 3}, "optimizer: must be a mapping of the optimizer settings (got 3)"),
    ({"monitor": 3}, "monitor: must be true, false or a mapping of the monitor settings (got 3)"),
    ({"monitor": {"effective_every": 1e400}}, "monitor.effective_every: must be a finite number (got inf)"),
    ({"name": "a/b"}, "name: must be a plain folder name (got 'a/b')"),
    ({"name": ".."}, "name: must be a plain folder name (got '..')"),
    ({"name": 5}, "name: must be a string (got 5)"),
    ({"task_options": [1]}, "task_options: must be a mapping (got a list)"),
    ({"data": "x"}, "data: must be a mapping (got 'x', a string)"),
    ({"task": "charlmm"}, "task: must be 'linear', 'flipnet', 'quadratic' or 'charlm' (got 'charlmm'); "
                          "did you mean 'charlm'?"),
    ({"task": None}, "task: missing: the task to train (one of: linear, flipnet, quadratic, charlm)"),
    ({"schedule": None}, "schedule: missing: a schedule spec (see `lrtempo schema`)"),
    ({"schedule": {"type": "cosine", "peak_lr": -1, "decay_steps": 5}}, "schedule.peak_lr: must be >= 0 (got -1.0)"),
    ({"steps": None, "schedule": {"type": "constant", "lr": 0.1}},
     "steps: missing: this schedule never ends, so give the number of updates to run"),
])
def test_each_kind_of_bad_value_is_named_with_what_would_be_valid(over, message):
    assert _problems(**over) == [message]


def test_a_key_given_as_null_takes_its_default():
    config = parse_run_config({**BASE, "seed": None, "optimizer": None, "task_options": None, "bf16": None})
    assert (config.seed, config.optimizer, config.task_options, config.bf16) == (0, OptimizerConfig(), {}, False)
    assert parse_run_config({**BASE, "grad_clip": None}).grad_clip is None
    assert parse_run_config({**BASE, "monitor": None}).monitor is None  # null is "no monitor", as false


def test_values_come_back_as_their_fields_types():
    config = parse_run_config({**BASE, "seed": 3.0, "steps": 12.0, "grad_clip": 1,
                               "optimizer": {"betas": [0, 1e-1], "eps": 1}})
    assert (config.seed, config.steps, config.grad_clip) == (3, 12, 1.0)
    assert type(config.seed) is int and type(config.grad_clip) is float
    assert config.optimizer.betas == (0.0, 0.1) and type(config.optimizer.betas) is tuple
    assert type(config.optimizer.eps) is float


def test_the_monitor_section_is_kept_as_written_and_builds_the_settings():
    config = parse_run_config({**BASE, "monitor": {"trap_threshold": 1, "trap_window": 300.0, "per_layer": True}})
    assert config.monitor == {"trap_threshold": 1, "trap_window": 300, "per_layer": True}
    assert list(config.monitor) == ["trap_threshold", "trap_window", "per_layer"]
    assert type(config.monitor["trap_threshold"]) is int  # as written: config.yaml reads back to the same bytes
    assert MonitorSettings(**config.monitor) == MonitorSettings(trap_threshold=1.0, trap_window=300, per_layer=True)
    assert parse_run_config({**BASE, "monitor": True}).monitor == {}


# --- one source of defaults, and the resolved config as it was ---------------------------------------------------

def test_the_dataclasses_are_the_defaults_of_training_lint_and_analyze():
    import inspect

    from lrtempo.analysis._analyze import _DETECTOR_SETTINGS
    from lrtempo.analysis._lint import _OPT
    from lrtempo.train import build_optimizer

    sig = inspect.signature(build_optimizer).parameters
    opt = OptimizerConfig()
    assert {k: sig[k].default for k in ("name", "betas", "eps", "weight_decay", "momentum")} == dataclasses.asdict(opt)
    assert _OPT == opt
    ms = MonitorSettings()
    assert {k: d for k, (d, _) in _DETECTOR_SETTINGS.items()} == {k: getattr(ms, k) for k in _DETECTOR_SETTINGS}
    assert {k: least for k, (_, least) in _DETECTOR_SETTINGS.items()} == {
        "trap_window": 2, "spike_window": 1, "restart_window": 1, "trap_threshold": 0.0, "spike_factor": 0.0}


#: ``config.yaml`` of ``lrtempo train examples/run_config.yaml`` (a run directory written before the settings
#: were typed resumes only if this stays byte for byte)
EXAMPLE_RESOLVED = """\
task: charlm
name: run_config
task_options:
  d_model: 96
  n_layer: 3
  n_head: 4
  context: 64
  batch_size: 32
seed: 0
steps: 300
optimizer:
  name: adamw
  betas:
  - 0.9
  - 0.95
  eps: 1.0e-08
  weight_decay: 0.1
  momentum: 0.0
grad_clip: 1.0
accumulation_steps: 1
bf16: false
checkpoint_every: 50
eval_every: 50
max_consecutive_skips: 5
device: cpu
monitor: {}
schedule:
  type: wsd
  peak_lr: 0.003
  total_steps: 300
  decay_steps: 60
  warmup_steps: 30
  min_lr: 3.0e-05
  decay_shape: 1-sqrt
  power: 1.0
  warmup_start_lr: 0.0
"""


def test_the_resolved_config_is_written_as_before():
    data = read_config_file(EXAMPLE)
    data.pop("name")
    mapping = parse_run_config(data, default_name="run_config").to_mapping()
    assert format_config(mapping, "yaml") == EXAMPLE_RESOLVED
    assert parse_run_config(mapping).to_mapping() == mapping  # and reads back to itself
    default = parse_run_config(DEFAULT_RUN).to_mapping()
    assert list(default) == ["task", "name", "task_options", "seed", "steps", "optimizer", "grad_clip",
                             "accumulation_steps", "bf16", "checkpoint_every", "eval_every", "max_consecutive_skips",
                             "device", "monitor", "schedule"]
    off = parse_run_config({**BASE, "monitor": False, "data": {"examples": 10}}).to_mapping()
    assert off["monitor"] is False and off["data"] == {"examples": 10} and "grad_clip" not in off


# --- the JSON Schema ---------------------------------------------------------------------------------------------

def _conforms(value, schema, defs, path="") -> list[str]:
    """The places where ``value`` breaks ``schema``: the subset of JSON Schema that ``settings_schema`` writes
    (type, enum, const, bounds, properties, required, additionalProperties, prefixItems, anyOf, oneOf, $ref)."""
    if "$ref" in schema:
        return _conforms(value, defs[schema["$ref"].rsplit("/", 1)[1]], defs, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            fits = [not _conforms(value, s, defs, path) for s in schema[key]]
            ok = any(fits) if key == "anyOf" else sum(fits) == 1
            return [] if ok else [f"{path}: fits {sum(fits)} of the {key} alternatives"]
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    want = schema.get("type")
    if want in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (want == "integer" and value % 1):
            return [f"{path}: not a {want}"]
    elif want is not None and not isinstance(value, kinds[want]):
        return [f"{path}: not a {want}"]
    bad = []
    if "enum" in schema and value not in schema["enum"]:
        bad.append(f"{path}: not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        bad.append(f"{path}: not {schema['const']!r}")
    for key, fails in (("minimum", lambda v, b: v < b), ("exclusiveMinimum", lambda v, b: v <= b),
                       ("maximum", lambda v, b: v > b), ("exclusiveMaximum", lambda v, b: v >= b)):
        if key in schema and fails(value, schema[key]):
            bad.append(f"{path}: breaks {key} {schema[key]}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        bad += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                bad += _conforms(v, props[k], defs, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                bad.append(f"{path}.{k}: not allowed")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            bad.append(f"{path}: {len(value)} items")
        for i, (v, s) in enumerate(zip(value, schema.get("prefixItems", []))):
            bad += _conforms(v, s, defs, f"{path}[{i}]")
        if "items" in schema:
            for i, v in enumerate(value):
                bad += _conforms(v, schema["items"], defs, f"{path}[{i}]")
    return bad


def _schema() -> dict:
    from lrtempo.train._runconfig import run_config_schema

    return json.loads(json.dumps(run_config_schema()))  # as printed: plain JSON


def test_the_schema_has_every_field_with_its_doc_and_default():
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for cls, node in ((RunConfig, schema), (OptimizerConfig, schema["properties"]["optimizer"]),
                      (MonitorSettings, schema["properties"]["monitor"]["anyOf"][1])):
        keys = [f.name for f, _ in settings_fields(cls) if not f.metadata.get("derived")]
        assert list(node["properties"]) == keys
        assert node["additionalProperties"] is False
        for f, _ in settings_fields(cls):
            if f.name in node["properties"]:
                assert node["properties"][f.name]["description"] == f.metadata["doc"]
    assert schema["required"] == ["task", "schedule"]
    assert schema["properties"]["seed"]["default"] == 0
    assert schema["properties"]["optimizer"]["properties"]["betas"]["default"] == [0.9, 0.999]
    assert schema["properties"]["task"]["enum"] == ["linear", "flipnet", "quadratic", "charlm"]
    assert schema["properties"]["monitor"]["anyOf"][1]["properties"]["trap_window"]["minimum"] == 2


@pytest.mark.parametrize("data", [read_config_file(EXAMPLE), DEFAULT_RUN, {**BASE, "monitor": False},
                                  {**BASE, "monitor": {"per_layer": True, "trap_threshold": 1e-3}}])
def test_the_example_and_the_default_run_validate_against_the_schema(data):
    schema = _schema()
    assert _conforms(data, schema, schema["$defs"]) == []


@pytest.mark.parametrize("over, where", [
    ({"seed": -1}, ".seed"), ({"optimizer": {"betas": [0.9, 1.0]}}, ".optimizer.betas[1]"),
    ({"device": "gpu"}, ".device"), ({"monitor": {"trap_window": 1}}, ".monitor"), ({"tsk": 1}, ".tsk"),
    ({"optimizer": {"nam": "sgd"}}, ".optimizer.nam"), ({"schedule": {"type": "cosin"}}, ".schedule"),
])
def test_what_the_parser_refuses_the_schema_refuses(over, where):
    schema = _schema()
    found = _conforms({**BASE, **over}, schema, schema["$defs"])
    assert found and found[0].startswith(where), found
    with pytest.raises(ConfigError):
        parse_run_config({**BASE, **over})


def test_lrtempo_schema_run_prints_the_run_config_schema(capsys):
    from lrtempo.cli import main

    assert main(["schema", "--run"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out) == _schema()
    assert json.loads(out)["title"] == "lrtempo run config"
    assert main(["schema"]) == 0  # without --run: the schedule spec's, as before
    assert json.loads(capsys.readouterr().out)["title"] == "lrtempo schedule spec"


# --- the docs' tables --------------------------------------------------------------------------------------------

def _default_cell(f: dataclasses.Field) -> str:
    """How docs/config.md writes a field's default."""
    meta = f.metadata
    if meta.get("computed"):
        return meta["doc"].split("(default: ", 1)[1].split(")")[0]
    if meta.get("section") is not None:
        return "true"
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if dataclasses.is_dataclass(value):
        return "below"
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{x:g}" for x in value) + "]"
    return "{}" if isinstance(value, dict) else f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("cls", [RunConfig, OptimizerConfig, MonitorSettings])
def test_docs_list_every_setting_with_its_default_and_doc(cls):
    text = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    rows = "\n".join(f"| `{f.name}` | {_default_cell(f)} | {f.metadata['doc']} |"
                     for f, _ in settings_fields(cls) if not f.metadata.get("derived"))
    assert f"| key | default | meaning |\n| --- | --- | --- |\n{rows}\n" in text


# --- any value, anywhere: a run config or one ConfigError, never another exception ---------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from(["adamw", "sgd", "cpu", "auto", "x", "", "a/b"]),
                 st.lists(st.floats(-1, 2), max_size=3), st.just({}))
_KEYS = st.sampled_from([f.name for f, _ in settings_fields(RunConfig) if f.name not in ("schedule_spec", "task",
                                                                                           "schedule")] + ["typo"])
_SECTION = {"optimizer": st.dictionaries(st.sampled_from(["name", "betas", "eps", "weight_decay", "momentum", "nme"]),
                                         _ANY, max_size=4),
            "monitor": st.dictionaries(st.sampled_from([*MonitorSettings.KEYS, "trap_windw"]), _ANY, max_size=4)}


@st.composite
def _run_configs(draw):
    data = dict(BASE)
    for key in draw(st.lists(_KEYS, max_size=5, unique=True)):
        data[key] = draw(st.one_of(_ANY, _SECTION[key]) if key in _SECTION else _ANY)
    return data


@settings(max_examples=300, deadline=None)
@given(_run_configs())
def test_any_run_config_parses_or_is_refused_with_config_errors_only(data):
    try:
        config = parse_run_config(data)
    except ConfigError as exc:
        assert exc.problems and all(p.path for p in exc.problems)
        return
    mapping = config.to_mapping()
    assert parse_run_config(mapping).to_mapping() == mapping  # the resolved config reads back to itself
    schema = _schema()
    assert _conforms(json.loads(json.dumps(mapping)), schema, schema["$defs"]) == []
