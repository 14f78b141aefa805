"""The schedule contract, enforced by the base class: registration, the checks when a family's class is
made, the finishing step, and no change to a schedule after construction."""

from __future__ import annotations

import copy
import doctest
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings

from lrtempo.schedules import NATIVE_TYPES, Checks, Schedule, _base, families
from test_properties import schedules

#: the order config lists the native types in (error messages, ``lrtempo schema``): unchanged
ORDER = ["constant", "linear", "ramp", "step", "multistep", "exponential", "polynomial", "cosine", "inverse_sqrt",
         "tanh", "cyclic", "one_cycle", "join", "warmup", "restarts", "clamp", "scale", "warmup_cosine", "wsd",
         "warmup_plateau_cosine", "noam", "branch", "plateau"]


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_family_registers_itself_in_the_order_config_lists_them():
    import lrtempo.schedules.compat  # noqa: F401 - compat registers too, apart from the native types

    assert list(NATIVE_TYPES) == ORDER
    assert "compat" in families() and "compat" not in NATIVE_TYPES
    with pytest.raises(KeyError):
        NATIVE_TYPES["compat"]
    for cls in _all_subclasses(Schedule):  # every class that names a type is the one registered under it
        if "type_name" in cls.__dict__ and cls.__module__.startswith("lrtempo."):
            assert families()[cls.type_name].__qualname__ == cls.__qualname__, cls


def _refused(match, make):
    with pytest.raises(TypeError, match=match):
        make()


def test_a_family_that_breaks_the_contract_is_refused_when_its_class_is_made():
    def bad_name():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            type_name: ClassVar[str] = "Bad-Name"

    def not_frozen():
        @dataclass(slots=True)
        class Bad(Schedule):
            """Doc."""
            type_name: ClassVar[str] = "contract_not_frozen"

    def no_doc():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            type_name: ClassVar[str] = "contract_no_doc"

    def unknown_hint():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            rates: list
            type_name: ClassVar[str] = "contract_unknown_hint"

    def field_called_type():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            type: str
            type_name: ClassVar[str] = "contract_type_field"

    def choice_not_a_field():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            lr: float
            type_name: ClassVar[str] = "contract_choice"
            field_choices: ClassVar[dict] = {"shape": ("linear",)}

    def default_not_a_choice():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            shape: str = "cosine"
            type_name: ClassVar[str] = "contract_default"
            field_choices: ClassVar[dict] = {"shape": ("linear",)}

    def fraction_without_total():
        @dataclass(frozen=True, slots=True)
        class Bad(Schedule):
            """Doc."""
            warmup_steps: int
            type_name: ClassVar[str] = "contract_fraction"
            fraction_fields: ClassVar[dict] = {"warmup": "warmup_steps"}

    def taken_name():
        @dataclass(frozen=True, slots=True)
        class Cosine(Schedule):
            """Doc."""
            type_name: ClassVar[str] = "cosine"

    _refused(r"Bad: type_name must be lower-case letters, digits and _ \(got 'Bad-Name'\)", bad_name)
    _refused(r"Bad: must be @dataclass\(frozen=True, slots=True\)", not_frozen)
    _refused(r"Bad: needs a docstring", no_doc)
    _refused(r"Bad: field 'rates': config cannot read its type <class 'list'>", unknown_hint)
    _refused(r"no field may be called 'type'", field_called_type)
    _refused(r"field_choices: 'shape' is not a str field", choice_not_a_field)
    _refused(r"field_choices\['shape'\] lacks the field's default 'cosine'", default_not_a_choice)
    _refused(r"fraction_fields: 'warmup' needs int fields 'warmup_steps' and 'total_steps'", fraction_without_total)
    _refused(r"Cosine: type_name 'cosine' is taken by lrtempo.schedules._families.CosineDecay", taken_name)
    assert list(NATIVE_TYPES) == ORDER  # nothing refused was registered


def test_a_family_that_is_no_slotted_dataclass_is_refused_when_built():
    @dataclass(frozen=True)
    class Loose(Schedule):
        """Doc."""
        lr: float
        type_name: ClassVar[str] = "contract_loose"

        @property
        def end_step(self) -> int:
            return 0

        def _values(self, steps):
            return np.full(steps.shape, self.lr)

    with pytest.raises(TypeError, match=r"sets type_name 'contract_loose' but is not registered: a family is a "
                                        r"@dataclass\(frozen=True, slots=True\)"):
        Loose(1.0)
    assert "contract_loose" not in families()


def test_the_finishing_step_runs_after_construction_without_being_called():
    @dataclass(frozen=True, slots=True)
    class Half(Schedule):
        """``lr / 2`` at every step."""
        lr: float
        type_name: ClassVar[str] = "contract_half"

        def __post_init__(self) -> None:
            c = Checks(self)
            c.real("lr", low=0.0)
            c.done()

        @property
        def end_step(self) -> int:
            return 0

        def _values(self, steps):
            return np.full(steps.shape, self.lr / 2)

    try:
        s = Half(3)
        assert s(0) == s(10**12) == 1.5 and s.at([0, 5]).tolist() == [1.5, 1.5] and s.lr == 3.0
        assert copy.deepcopy(s)(7) == 1.5  # rebuilt from its parameters: finished again
    finally:
        _base._FAMILIES.pop("contract_half")


def _state(obj):
    """Every slot of a schedule and of the schedules inside it, copied (arrays and lists by value)."""
    out = {}
    for cls in type(obj).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            value = getattr(obj, slot, None)
            out[(cls.__name__, slot)] = (id(value), value.copy() if isinstance(value, (np.ndarray, list)) else value)
            if isinstance(value, Schedule):
                out[(cls.__name__, slot, "inner")] = _state(value)
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _same(a[key], b[key])
            continue
        (ida, va), (idb, vb) = a[key], b[key]
        assert ida == idb, key  # nothing rebound
        if isinstance(va, np.ndarray):
            assert np.array_equal(va, vb), key  # nothing changed in place
        elif isinstance(va, list):
            assert va == vb, key


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_evaluating_never_changes_a_schedule(s):
    before = _state(s)
    h = s.horizon
    s.at(np.arange(0, min(h + 3, 5000)))
    s.at([0, h, 10 * h + 7, 2**53, 2**62])
    for k in (0, 1, h - 1, h, h + 1, 2**53, 2**62):
        s(max(k, 0))
    s.phases(h)
    _same(before, _state(s))


# -- phase kinds ---------------------------------------------------------------------------------------------

def _kinds(s, horizon=None):
    return [(p.name, p.kind) for p in s.phases(horizon)]


def test_every_native_phase_says_its_kind():
    from lrtempo.schedules import (
        WSD,
        Constant,
        CosineDecay,
        Cyclic,
        ExponentialDecay,
        InverseSqrt,
        Join,
        Linear,
        MultiStepDecay,
        OneCycle,
        Piece,
        Ramp,
        Restarts,
        StepDecay,
        Warmup,
        WarmupCosine,
        WarmupPlateauCosine,
    )

    assert _kinds(Constant(1.0), 5) == [("constant", "hold")]
    assert _kinds(Linear(0.0, 1.0, 4)) == [("linear", "ramp")] and _kinds(Ramp(1.0, 0.0, 4)) == [("ramp", "ramp")]
    assert _kinds(CosineDecay(1.0, 4)) == [("cosine", "decay")]
    assert _kinds(ExponentialDecay(1.0, 0.5, end_lr=0.1)) == [("exponential", "decay")]
    assert _kinds(StepDecay(1.0, 2), 4) == [("level 0", "decay"), ("level 1", "decay")]
    assert _kinds(MultiStepDecay(1.0, (2,))) == [("level 0", "decay")]
    assert _kinds(InverseSqrt(1.0, 2), 5) == [("warmup", "warmup"), ("decay", "decay")]
    assert _kinds(Cyclic(0.0, 1.0, 2), 4) == [("cycle 0 up", "cycle"), ("cycle 0 down", "decay")]
    assert _kinds(OneCycle(1.0, 10, three_phase=True)) == [("warmup", "warmup"), ("anneal down", "decay"),
                                                             ("annihilate", "decay")]
    assert _kinds(Restarts(1.0, 2, max_cycles=2)) == [("cycle 0", "cycle"), ("cycle 1", "cycle")]
    assert _kinds(Restarts(1.0, 2, period_mult=2, max_cycles=2)) == [("cycle 0", "cycle"), ("cycle 1", "cycle")]
    assert _kinds(Warmup(CosineDecay(1.0, 4), 2)) == [("warmup", "warmup"), ("cosine", "decay")]
    assert _kinds(Join((Piece(Constant(1.0), 3), Piece(Linear(1.0, 0.0, 5), 4)))) == [("constant", "hold"),
                                                                                      ("linear", "ramp")]
    assert _kinds(WarmupCosine(1.0, 10, 2)) == [("warmup", "warmup"), ("decay", "decay")]
    assert _kinds(WSD(1.0, 10, 4, 2)) == [("warmup", "warmup"), ("stable", "hold"), ("decay", "decay")]
    assert _kinds(WarmupPlateauCosine(1.0, 10, 2, 3)) == [("warmup", "warmup"), ("plateau", "hold"),
                                                          ("decay", "decay")]


def test_a_phase_of_another_library_gets_the_kind_its_name_says():
    from lrtempo.schedules import Phase

    assert [Phase(n, 0, 1).kind for n in ("warmup", "stable", "plateau", "constant", "hold", "cycle 3",
                                          "decay", "segment 0")] == \
        ["warmup", "hold", "hold", "hold", "hold", "cycle", "ramp", "ramp"]
    with pytest.raises(ValueError, match=r"phase kind must be one of warmup, hold, decay, cycle, ramp \(got 'up'\)"):
        Phase("x", 0, 1, "up")


def _two_phase_family(first: tuple[str, str], second: tuple[str, str]):
    """A family of two phases ``(name, kind)``: rising from 0 over 10 steps, then 1.0 for 10 (ends at 20)."""

    @dataclass(frozen=True, slots=True)
    class TwoPhases(Schedule):
        """A rise, then 1.0."""
        lr: float = 1.0
        type_name: ClassVar[str] = "contract_two_phases"

        @property
        def end_step(self) -> int:
            return 20

        def _values(self, steps):
            return np.where(steps < 10, 0.05 * steps, 1.0) * self.lr

        def _phases(self, horizon):
            from lrtempo.schedules import Phase

            return [Phase(first[0], 0, 10, first[1]), Phase(second[0], 10, 20, second[1])]

    try:
        return TwoPhases()
    finally:
        _base._FAMILIES.pop("contract_two_phases")  # only its phases matter here


def test_monitor_and_analysis_go_by_the_kind_of_a_phase_never_its_name():
    from lrtempo.monitor._phases import PhaseMap, restart_points

    named_but_other = _two_phase_family(("warmup", "ramp"), ("plateau", "decay"))
    pm = PhaseMap(named_but_other, 20)
    assert (pm.warmup_end, pm.holds) == (10, [])  # no warmup kind: the rising first phase is taken for one
    assert restart_points(named_but_other.phases()) == []
    kinds_only = _two_phase_family(("rise", "warmup"), ("top", "hold"))
    pm = PhaseMap(kinds_only, 20)
    assert (pm.warmup_end, pm.holds) == (10, [(10, 20)])
    assert pm.coarse_counts(22) == {"warmup": 10, "plateau": 10, "decay": 1, "past_end": 1}
    cycles = _two_phase_family(("a", "cycle"), ("b", "cycle"))
    assert PhaseMap(cycles, 20).warmup_end == 0 and restart_points(cycles.phases()) == [10]


# -- a family made outside the package: what docs/contributing.md promises -------------------------------------

GUIDE = Path(__file__).parent.parent / "docs" / "contributing.md"


@pytest.fixture
def inverse_time():
    """The worked example of docs/contributing.md, run as a module of its own; unregistered afterwards."""
    text = GUIDE.read_text()
    code = text[text.index("```python\n") + len("```python\n"):]
    code = code[:code.index("```")]
    module = types.ModuleType("lrtempo_guide_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, str(GUIDE), "exec"), module.__dict__)
        yield module.InverseTimeDecay
    finally:
        _base._FAMILIES.pop("inverse_time", None)
        del sys.modules[module.__name__]


def test_a_new_family_is_picked_up_by_config_schema_lint_and_the_cli(inverse_time, tmp_path, capsys):
    from lrtempo.cli import main
    from lrtempo.config import REGISTRY, ConfigError, build_schedule, json_schema, schedule_to_spec, spec_hash
    from lrtempo.monitor._phases import PhaseMap

    assert families()["inverse_time"] is inverse_time and list(NATIVE_TYPES)[-1] == "inverse_time"
    runner = doctest.DocTestRunner()
    globs = {"InverseTimeDecay": inverse_time}
    for test in doctest.DocTestFinder().find(inverse_time, "InverseTimeDecay", globs=globs):
        runner.run(test)
    assert runner.summarize(verbose=False) == (0, 2)  # the docstring's example holds
    ts = REGISTRY["inverse_time"]
    assert [(f.name, f.kind, f.required, f.default) for f in ts.fields] == [
        ("base_lr", "number", True, None), ("decay_rate", "number", True, None), ("decay_steps", "integer", False, 1)]
    spec = {"type": "inverse_time", "base_lr": 1e-3, "decay_rate": 0.5, "decay_steps": 1000}
    s = build_schedule(spec)
    assert isinstance(s, inverse_time) and s(0) == 1e-3 and s(2000) == 1e-3 / 2.0 and s.at([2000]).tolist() == [5e-4]
    assert schedule_to_spec(s) == spec and build_schedule(schedule_to_spec(s)) == s
    assert spec_hash(spec) == spec_hash({**spec, "decay_steps": 1000.0})
    with pytest.raises(ConfigError, match=r"decay_step: unknown key for type 'inverse_time'; did you mean "
                                          r"'decay_steps'\? \(valid keys: base_lr, decay_rate, decay_steps\)"):
        build_schedule({"type": "inverse_time", "base_lr": 1e-3, "decay_rate": 0.5, "decay_step": 10})
    with pytest.raises(ConfigError, match=r"decay_steps: must be a whole number of steps \(got 10.5\)"):
        build_schedule({**spec, "decay_steps": 10.5})
    with pytest.raises(ConfigError, match=r"decay_rate: must be >= 0 \(got -1.0\)"):
        build_schedule({**spec, "decay_rate": -1.0})
    schema = json_schema()["$defs"]
    assert schema["inverse_time"]["required"] == ["type", "base_lr", "decay_rate"]
    assert schema["inverse_time"]["properties"]["decay_steps"]["default"] == 1
    assert {"$ref": "#/$defs/inverse_time"} in schema["schedule"]["oneOf"]
    assert PhaseMap(s, s.horizon).coarse_counts(100) == {"warmup": 0, "plateau": 0, "decay": 100, "past_end": 0}

    path = tmp_path / "inverse_time.yaml"
    path.write_text("type: inverse_time\nbase_lr: 1e-3\ndecay_rate: 0.5\ndecay_steps: 1000\n")
    assert main(["values", "--steps", "0,2000", str(path)]) == 0
    assert capsys.readouterr().out == "step,lr\n0,0.001\n2000,0.0005\n"
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "type      inverse_time" in out and "inverse_time  [0, )" in out and "min       0.0001 at step 18000" in out
    assert main(["lint", str(path)]) == 1  # no warmup with Adam
    assert "LR002" in capsys.readouterr().out
    assert main(["schema"]) == 0 and '"inverse_time"' in capsys.readouterr().out
    path.write_text("type: inverse_time\nbase_lr: 1e-3\ndecay_rate: 0.5\ndecay_steps: 10.5\n")
    assert main(["show", str(path)]) == 2
    assert "decay_steps: must be a whole number of steps (got 10.5)" in capsys.readouterr().err


def test_a_new_family_leaves_no_trace_once_unregistered(inverse_time):
    from lrtempo.config import REGISTRY

    assert "inverse_time" in REGISTRY
    _base._FAMILIES.pop("inverse_time")
    assert "inverse_time" not in REGISTRY and list(NATIVE_TYPES) == ORDER
