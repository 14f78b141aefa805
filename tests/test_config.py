"""Config files: formats, numbers as people write them, every bad input with its one-line error."""

from __future__ import annotations

import json
import re

import pytest

from lrtempo.config import (
    ConfigError,
    Problem,
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
    assert data == {"a": 3e-4, "b": 1e6, "c": -2.5e-3, "d": 0.5, "e": 100, "f": "3e-4", "g": "1_000"}
    assert type(data["b"]) is float and type(data["e"]) is int


# YAML 1.2.2, 10.3.2 (core schema): plain scalar -> value; everything not matched is a string
CORE_SCHEMA = [
    ("null", None), ("Null", None), ("NULL", None), ("~", None), ("", None), ("nULL", "nULL"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False),
    ("tRUE", "tRUE"), ("yes", "yes"), ("No", "No"), ("on", "on"), ("off", "off"), ("y", "y"),
    ("0", 0), ("-0", 0), ("+12", 12), ("0144", 144), ("-0144", -144), ("007", 7),
    ("0o14", 12), ("0o0", 0), ("0o8", "0o8"), ("0O14", "0O14"), ("-0o14", "-0o14"),
    ("0x1F", 31), ("0xff", 255), ("0x", "0x"), ("0X1F", "0X1F"), ("-0x1F", "-0x1F"), ("0b101", "0b101"),
    ("1e3", 1000.0), ("1E3", 1000.0), ("1e+3", 1000.0), ("-1e-3", -0.001), ("1.", 1.0), ("-1.", -1.0),
    (".5", 0.5), ("+.5", 0.5), ("-.5e2", -50.0), ("0.1", 0.1), ("3.0e-4", 3e-4), ("00.5", 0.5),
    (".", "."), ("e3", "e3"), ("1e", "1e"), ("1.e3", 1000.0), ("1e3.5", "1e3.5"), ("--1", "--1"),
    (".inf", float("inf")), (".Inf", float("inf")), (".INF", float("inf")), ("+.inf", float("inf")),
    ("-.inf", float("-inf")), ("-.Inf", float("-inf")), (".iNF", ".iNF"), ("inf", "inf"), ("infinity", "infinity"),
    ("1_000", "1_000"), ("1,000", "1,000"), ("1:40", "1:40"), ("190:20:30", "190:20:30"),
    ("2001-12-14", "2001-12-14"), ("=", "="), ("<<", "<<"), ("0.1.2", "0.1.2"), ("12abc", "12abc"),
]


@pytest.fixture(params=["libyaml", "python"])
def yaml_loader(request):
    from lrtempo.config import _files

    if request.param == "libyaml":
        if _files._CParser is None:
            pytest.skip("PyYAML without libyaml")
        return _files._CLoader
    return _files._PyLoader


@pytest.mark.parametrize("text, expected", CORE_SCHEMA)
def test_yaml_12_core_schema(yaml_loader, text, expected):
    from lrtempo.config._files import _load_yaml

    value = _load_yaml(f"v: {text}\n", yaml_loader)["v"]
    assert value == expected and type(value) is type(expected), (text, value)
    quoted = _load_yaml(f"v: '{text}'\n", yaml_loader)["v"]
    assert quoted == text  # quoted scalars are always strings


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_yaml_12_nan(yaml_loader, text):
    from lrtempo.config._files import _load_yaml

    value = _load_yaml(f"v: {text}\n", yaml_loader)["v"]
    assert isinstance(value, float) and value != value
    assert _load_yaml("v: .nAn\n", yaml_loader)["v"] == ".nAn" and _load_yaml("v: -.nan\n", yaml_loader)["v"] == "-.nan"


@pytest.mark.parametrize("text, expected", [
    ("!!int '0x10'", 16), ("!!int '0144'", 144), ("!!float '1'", 1.0), ("!!float '.inf'", float("inf")),
    ("!!str 12", "12"), ("!!bool 'True'", True), ("!!null ''", None),
])
def test_yaml_core_explicit_tags(yaml_loader, text, expected):
    from lrtempo.config._files import _load_yaml

    value = _load_yaml(f"v: {text}\n", yaml_loader)["v"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, message", [
    ("!!bool yes", "'yes' is not a YAML 1.2 boolean"),
    ("!!int 1_000", "not a YAML 1.2 integer"),
    ("!!int 1:40", "not a YAML 1.2 integer"),
    ("!!float 1,5", "not a YAML 1.2 float"),
    ("!!timestamp 2001-12-14", "could not determine a constructor"),
    ("!!binary aGk=", "could not determine a constructor"),
    ("!!set {a}", "could not determine a constructor"),
    ("!!python/tuple [1]", "could not determine a constructor"),
    ("1e400", "the number 1e400 is out of range"),
    ("-1e400", "out of range"),
    ("1e-400", "too small to tell from 0"),
    ("9" * 400, "(400 digits) is out of range"),
    ("0x" + "f" * 300, "is out of range"),
    ("9" * 5000, "(5000 digits) is out of range"),
])
def test_yaml_numbers_read_exactly_or_refused(yaml_loader, text, message):
    from lrtempo.config._files import _parse, _Refused

    with pytest.raises(_Refused, match=re.escape(message)):
        _parse(f"v: {text}\n", "yaml") if yaml_loader.__name__ == "_CLoader" else _parse_with(yaml_loader, text)


def _parse_with(loader, text):
    import yaml as pyyaml

    from lrtempo.config._files import _load_yaml, _Refused

    try:
        return _load_yaml(f"v: {text}\n", loader)
    except pyyaml.YAMLError as exc:
        raise _Refused(str(exc)) from None


def test_numbers_that_round_to_zero_only_when_written_as_zero():
    assert parse_config_text("a: 0.0e-999\nb: 0e5\nc: -0.0\n", "yaml") == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert parse_config_text("a: 5e-324\n", "yaml")["a"] == 5e-324  # the smallest subnormal is a number


@pytest.mark.parametrize("fmt, text, message", [
    ("yaml", "a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key 'a'"),
    ("yaml", "a: {x: 1, x: 2}\n", "duplicate key 'x'"),
    ("yaml", "1: a\n1: b\n", "duplicate key 1"),
    ("json", '{"a": 1, "b": 2, "a": 3}', "invalid JSON: duplicate key 'a'"),
    ("json", '{"s": {"x": 1, "x": 1}}', "invalid JSON: duplicate key 'x'"),
    ("toml", "a = 1\na = 2\n", "invalid TOML: Cannot overwrite a value"),
    ("toml", "[s]\nx = 1\n[s]\ny = 2\n", "invalid TOML"),
])
def test_duplicate_keys_are_errors_in_every_format(fmt, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config_text(text, fmt)


@pytest.mark.parametrize("fmt, text, message", [
    ("yaml", "[1, 2]: 3\n", "a mapping key must be a scalar (got a list)"),
    ("yaml", "? {a: 1}\n: 3\n", "a mapping key must be a scalar (got a mapping)"),
    ("yaml", "a: &x [*x]\n", "recursive"),
    ("json", '{"a": NaN}', "NaN is not a JSON number"),
    ("json", '{"a": -Infinity}', "-Infinity is not a JSON number"),
    ("json", '{"a": 1e400}', "the number 1e400 is out of range"),
    ("json", '{"a": ' + "9" * 5000 + "}", "(5000 digits) is out of range"),
    ("json", '{"a": 1e-400}', "too small to tell from 0"),
    ("toml", "a = " + "9" * 400, "is out of range"),
    ("toml", "a = " + "9" * 5000, "invalid TOML: Exceeds the limit (4300 digits)"),
    ("toml", "a = 1e400", "the number 1e400 is out of range"),
    ("json", "[" * 150 + "]" * 150, "nested deeper than 100 levels"),
    ("json", '{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 100 levels"),
    ("yaml", "a: " + "[" * 150 + "]" * 150, "nested deeper than 100 levels"),
    ("yaml", "a: " + "[" * 5000 + "]" * 5000, "nested deeper than 100 levels"),
    ("yaml", "".join(" " * i + "a:\n" for i in range(120)) + " " * 120 + "b: 1\n", "nested deeper than 100 levels"),
    ("toml", "a = " + "[" * 150 + "]" * 150, "nested deeper than 100 levels"),
])
def test_hostile_data_is_refused_in_one_problem(fmt, text, message):
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, fmt)
    assert message in info.value.one_line() and len(info.value.problems) == 1


def test_yaml_alias_expansion_is_bounded():
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ConfigError, match="more than 1000000 values"):
        parse_config_text("\n".join(lines) + "\n", "yaml")
    small = parse_config_text("a: &a [1, 2]\nb: *a\n", "yaml")
    assert small == {"a": [1, 2], "b": [1, 2]}


def test_nesting_at_the_limit_is_read():
    deep = "[" * 99 + "1" + "]" * 99  # 100 levels with the top mapping
    data = parse_config_text(f'{{"a": {deep}}}', "json")
    for _ in range(100):
        data = data["a"] if isinstance(data, dict) else data[0]
    assert data == 1
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        parse_config_text(f'{{"a": [{deep}]}}', "json")


def test_only_regular_files_are_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is a FIFO \\(named pipe\\), not a regular file"):
        read_config_file(fifo)  # refused without opening it: no reader would ever come
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="is a character device, not a regular file"):
        read_config_file(link)
    good = tmp_path / "good.yaml"
    good.write_text("type: constant\nlr: 0.5\n")
    alias = tmp_path / "alias.yaml"
    alias.symlink_to(good)
    assert read_config_file(alias) == {"type": "constant", "lr": 0.5}  # a symlink to a regular file is fine
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        read_config_file(tmp_path / "dir.yaml")


def test_files_over_the_size_limit_are_refused(tmp_path):
    from lrtempo.config import MAX_CONFIG_BYTES

    path = tmp_path / "big.yaml"
    body = "type: constant\nlr: 0.5\n"
    path.write_text(body + "#" * (MAX_CONFIG_BYTES - len(body) - 1) + "\n")
    assert read_config_file(path) == {"type": "constant", "lr": 0.5}  # exactly the limit
    path.write_text(body + "#" * (MAX_CONFIG_BYTES - len(body)) + "\n")
    with pytest.raises(ConfigError, match=f"is {MAX_CONFIG_BYTES + 1} bytes; a config file may hold at most"):
        read_config_file(path)


def test_error_lists_are_bounded():
    from lrtempo.config import SHOWN_PROBLEMS

    spec = {"type": "constant", "lr": 1.0, **{f"k{i}": 1 for i in range(5000)}}
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    assert len(info.value.problems) == 5000
    line = info.value.one_line()
    assert line.count("unknown key") == SHOWN_PROBLEMS
    assert line.endswith(f"... and {5000 - SHOWN_PROBLEMS} more problems")
    assert info.value.summary().count("\n") == SHOWN_PROBLEMS
    one = ConfigError([Problem("a", "x")] * (SHOWN_PROBLEMS + 1)).one_line()
    assert one.endswith("; ... and 1 more problem")


def test_huge_integers_from_python_are_problems_not_crashes():
    with pytest.raises(ConfigError, match="lr: must be a number within -1.8e308..1.8e308"):
        build_schedule({"type": "constant", "lr": 10**400})
    with pytest.raises(ConfigError, match="decay_steps: must be <= 2\\*\\*53"):
        build_schedule({"type": "cosine", "peak_lr": 1.0, "decay_steps": 2**63})
    with pytest.raises(ConfigError, match=r"decay_steps: must be <= 2\*\*53 = 9007199254740992, the longest "
                                          r"schedule \(got about 1e\+300\)"):
        build_schedule({"type": "cosine", "peak_lr": 1.0, "decay_steps": 1e300})
    with pytest.raises(ConfigError, match="total_steps: must be a number within -1.8e308..1.8e308"):
        build_schedule({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 10**400, "warmup": 0.1})
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        spec = {"type": "constant", "lr": 1.0}
        for _ in range(150):
            spec = {"type": "scale", "factor": 1.0, "schedule": spec}
        build_schedule(spec)


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
    found = {p.path: p.message for p in info.value.problems}
    assert sorted(found) == ["colour", "decay", "decay_steps", "peak_lr", "total_steps"]
    assert found["total_steps"] == "must be >= 1 (got -1)"  # a range check, though others stop the build
    assert found["peak_lr"] == "must be a number (got 'x', a string)"
    assert found["decay_steps"] == "missing (required for type 'wsd')"


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
    assert validator.is_valid({"type": "cosine", "peak_lr": 1.0, "decay_steps": 2**53})
    assert not validator.is_valid({"type": "cosine", "peak_lr": 1.0, "decay_steps": 2**53 + 1})
    assert not validator.is_valid({"type": "multistep", "base_lr": 1.0, "milestones": [2**53 + 1]})


def test_format_config_toml_inline_tables_round_trip():
    spec = schedule_to_spec(build_schedule({"type": "join", "pieces": [
        {"schedule": {"type": "linear", "start_lr": 0.0, "end_lr": 1e-3, "steps": 5}, "steps": 5},
        {"schedule": {"type": "multistep", "base_lr": 1e-3, "milestones": [10, 20]}}]}))
    assert parse_config_text(format_config(spec, "toml"), "toml") == spec


def test_yaml_written_reads_back_with_the_same_types():
    # PyYAML quotes by the YAML 1.1 rules alone: it wrote "1e3" plain, which 1.2 reads as 1000.0
    looks_like = ["1e3", "0o14", "+.5", "1.e3", "0144", "yes", "1:40", "true", "1_000", ".5", "-.inf", "0x1F",
                  "Null", "~", "", "abc", "2001-12-14"]
    data = {"names": looks_like, **{f"k{i}": v for i, v in enumerate(looks_like)},
            "rate": 1e-5, "steps": 3, "inf": float("inf"), "none": None, "flag": True, "neg": -0.0}
    text = format_config(data, "yaml")
    back = parse_config_text(text, "yaml")
    assert back == data and [type(v) for v in back.values()] == [type(v) for v in data.values()]
    assert "'1e3'" in text and "rate: 1.0e-05" in text


@pytest.mark.parametrize("text, message", [
    ("a: " + "[" * 5000 + "]" * 5000, "nested deeper than 100 levels"),
    ("a: " + "[" * 150 + "]" * 150, "nested deeper than 100 levels"),
    ("a: 1\na: 2\n", "line 2, column 1: duplicate key 'a'"),
    ("[1]: 2\n", "a mapping key must be a scalar"),
    ("a: 0144\nb: 1e400\n", "line 2, column 4: the number 1e400 is out of range"),
])
def test_the_pure_python_yaml_loader_refuses_the_same(monkeypatch, text, message):
    from lrtempo.config import _files

    monkeypatch.setattr(_files, "_Loader", _files._PyLoader)  # what runs where PyYAML lacks libyaml
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "yaml")
    assert message in info.value.one_line() and len(info.value.problems) == 1


def test_explicit_tags_take_the_whole_scalar():
    with pytest.raises(ConfigError, match="'12\\\\n' is not a YAML 1.2 integer"):
        parse_config_text('v: !!int "12\\n"\n', "yaml")


def test_long_values_and_keys_are_cut_in_messages():
    for spec in ({"type": "x" * 100_000}, {"type": "constant", "lr": "y" * 100_000},
                 {"type": "constant", "lr": 1.0, "z" * 100_000: 1}):
        with pytest.raises(ConfigError) as info:
            build_schedule(spec)
        line = info.value.one_line()
        assert len(line) < 400 and "(100002 characters)" in line


def test_every_listed_problem_is_bounded():
    from lrtempo.config._errors import PROBLEM_CHARS

    spec = {"type": "compat", "library": "torch", "name": "StepLR", "base_lr": 0.1,
            "kwargs": {"step_size": 10, "gamma": "g" * 100_000}}
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    line = info.value.one_line()
    assert line.startswith("kwargs.gamma: must be a number (got 'ggg") and len(line) <= PROBLEM_CHARS
    assert "characters cut)" in line and line.endswith("ggg')")
