"""Config files: formats, numbers as people write them, every bad input with its one-line error."""

from __future__ import annotations

import json

import pytest

from lrtempo.config import (
    ConfigError,
    build_schedule,
    canonical_spec,
    format_config,
    json_schema,
    load_schedule,
    parse_config_text,
    read_config_file,
    schedule_to_spec,
    spec_hash,
    write_config_file,
)
from lrtempo.schedules import WarmupCosine

GOOD = {"type": "warmup_cosine", "peak_lr": 3e-4, "min_lr": 3e-5, "total_steps": 1000, "warmup_steps": 20}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".toml"])
def test_formats_round_trip(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    write_config_file(GOOD, path)
    assert read_config_file(path) == GOOD
    assert load_schedule(path) == WarmupCosine(3e-4, 1000, 20, 3e-5)


def test_yaml_reads_numbers_as_people_write_them():
    data = parse_config_text("a: 3e-4\nb: 1e6\nc: -2.5E-3\nd: .5\ne: 100\nf: '3e-4'\ng: 1_000\n", "yaml")
    assert data == {"a": 3e-4, "b": 1e6, "c": -2.5e-3, "d": 0.5, "e": 100, "f": "3e-4", "g": 1000}


def test_integral_floats_are_step_counts():
    s = build_schedule({"type": "cosine", "peak_lr": 1e-3, "decay_steps": 1e6})
    assert s.decay_steps == 1_000_000 and isinstance(s.decay_steps, int)


def test_run_config_with_schedule_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: charlm\nschedule:\n  type: cosine\n  peak_lr: 0.1\n  decay_steps: 10\n")
    assert load_schedule(path)(10) == 0.0


def test_fraction_resolved_once_with_documented_rounding():
    s = build_schedule({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 5, "warmup": 0.3})
    assert s.warmup_steps == 2  # 0.3 * 5 = 1.5 exactly, rounded half up
    w = build_schedule({"type": "wsd", "peak_lr": 1.0, "total_steps": 1000, "warmup": 0.025, "decay": 0.1})
    assert (w.warmup_steps, w.decay_steps) == (25, 100)


def test_equivalent_specs_share_a_hash():
    a = {"type": "warmup_cosine", "peak_lr": 1, "total_steps": 1000, "warmup": 0.1}
    b = {"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 1000, "warmup_steps": 100, "min_lr": 0.0}
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash({**b, "min_lr": 1e-9})
    assert canonical_spec(a) == schedule_to_spec(build_schedule(b))


def test_canonical_spec_is_stable_text():
    spec = canonical_spec(GOOD)
    assert list(spec) == ["type", "peak_lr", "total_steps", "warmup_steps", "min_lr", "warmup_start_lr"]
    assert spec_hash(GOOD) == spec_hash(json.loads(json.dumps(spec)))


def test_nested_specs_and_paths():
    spec = {"type": "warmup", "warmup_steps": 10,
            "schedule": {"type": "join", "pieces": [
                {"schedule": {"type": "constant", "lr": 0.1}, "steps": 5},
                {"schedule": {"type": "cosine", "peak_lr": 0.1, "decay_steps": 10, "min_lr": 0.5}},
            ]}}
    with pytest.raises(ConfigError) as info:
        build_schedule(spec, "schedule")
    assert str(info.value) == "schedule.schedule.pieces[1].schedule.min_lr: must be <= peak_lr (got 0.5 > 0.1)"


BAD = [
    ("type: cosin\npeak_lr: 1\ndecay_steps: 5\n", "type: unknown type 'cosin'; did you mean 'cosine'?"),
    ("type: cosine\npeak_lr: 1\ndecay_step: 5\n",
     "decay_step: unknown key for type 'cosine'; did you mean 'decay_steps'?"),
    ("type: cosine\npeak_lr: 1\n", "decay_steps: missing (required for type 'cosine')"),
    ("peak_lr: 1\n", "not a schedule spec (no 'type' key) nor a run config"),
    ("type: cosine\npeak_lr: fast\ndecay_steps: 5\n", "peak_lr: must be a number (got 'fast', a string)"),
    ("type: cosine\npeak_lr: true\ndecay_steps: 5\n", "peak_lr: must be a number (got True, a boolean)"),
    ("type: cosine\npeak_lr: [1]\ndecay_steps: 5\n", "peak_lr: must be a number (got a list)"),
    ("type: cosine\npeak_lr: .nan\ndecay_steps: 5\n", "peak_lr: must be a finite number (got nan)"),
    ("type: cosine\npeak_lr: .inf\ndecay_steps: 5\n", "peak_lr: must be a finite number (got inf)"),
    ("type: cosine\npeak_lr: -1\ndecay_steps: 5\n", "peak_lr: must be >= 0 (got -1.0)"),
    ("type: cosine\npeak_lr: 1\ndecay_steps: 0\n", "decay_steps: must be >= 1 (got 0)"),
    ("type: cosine\npeak_lr: 1\ndecay_steps: -5\n", "decay_steps: must be >= 1 (got -5)"),
    ("type: cosine\npeak_lr: 1\ndecay_steps: 2.5\n", "decay_steps: must be a whole number of steps (got 2.5)"),
    ("type: warmup_cosine\npeak_lr: 1\ntotal_steps: 100\nwarmup: 1.5\n",
     "warmup: must be a fraction of total_steps in [0, 1] (got 1.5)"),
    ("type: warmup_cosine\npeak_lr: 1\ntotal_steps: 100\nwarmup: -0.1\n",
     "warmup: must be a fraction of total_steps in [0, 1] (got -0.1)"),
    ("type: warmup_cosine\npeak_lr: 1\ntotal_steps: 100\nwarmup_steps: 200\n",
     "warmup_steps: must be < total_steps (got 200 > 100)"),
    ("type: warmup_cosine\npeak_lr: 1\ntotal_steps: 100\nwarmup: 0.1\nwarmup_steps: 10\n",
     "warmup: give warmup_steps (steps) or warmup (a fraction of total_steps), not both"),
    ("type: cosine\npeak_lr: 0.01\nmin_lr: 0.1\ndecay_steps: 5\n", "min_lr: must be <= peak_lr (got 0.1 > 0.01)"),
    ("", "the file is empty"),
    ("# only a comment\n", "the file holds no data"),
    ("- 1\n- 2\n", "the top level must be a mapping (got a list)"),
    ("type: [cosine\n", "invalid YAML: line 2, column 1"),
    ("type: cosine\ntype: linear\n", "duplicate key 'type'"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_yaml_inputs(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_schedule(path)
    assert message in info.value.one_line()
    assert "\n" not in info.value.one_line()


@pytest.mark.parametrize("suffix, text, message", [
    (".toml", "type = 'cosine'\npeak_lr = \n", "invalid TOML"),
    (".json", '{"type": "cosine",}', "invalid JSON: line 1"),
    (".json", "[1, 2]", "the top level must be a mapping"),
    (".txt", "type: cosine", "unknown config file suffix '.txt'"),
])
def test_bad_files(tmp_path, suffix, text, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_schedule(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_schedule(tmp_path / "nope.yaml")


def test_all_problems_reported_together():
    with pytest.raises(ConfigError) as info:
        build_schedule({"type": "wsd", "peak_lr": "x", "total_steps": -1, "decay": 2, "colour": 1})
    paths = [p.path for p in info.value.problems]
    assert paths == ["colour", "decay", "peak_lr", "total_steps"] or set(paths) >= {"colour", "decay", "peak_lr"}


def test_yaml_never_executes(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("type: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_schedule(path)


def test_schema_accepts_every_example_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    from pathlib import Path

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.*"))
    assert len(examples) >= 20
    for path in examples:
        validator.validate(read_config_file(path))
    assert not validator.is_valid({"type": "cosine", "peak_lr": 1.0, "decay_step": 10})
    assert not validator.is_valid({"type": "nope"})


def test_format_config_toml_inline_tables_round_trip():
    spec = schedule_to_spec(build_schedule({"type": "join", "pieces": [
        {"schedule": {"type": "linear", "start_lr": 0.0, "end_lr": 1e-3, "steps": 5}, "steps": 5},
        {"schedule": {"type": "multistep", "base_lr": 1e-3, "milestones": [10, 20]}}]}))
    assert parse_config_text(format_config(spec, "toml"), "toml") == spec
