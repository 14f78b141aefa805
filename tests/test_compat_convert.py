"""``lrtempo convert``: compat spec -> native spec, and ``lrtempo diff`` of the two within the stated bound."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lrtempo.cli import main
from lrtempo.config import build_schedule, load_schedule
from lrtempo.schedules.compat import _convert

#: the largest relative difference an exact conversion shows within the library's range (the two are
#: different float64 computations of one formula: the library's rounding against the native one's)
BOUND = 1e-11


def spec(library, name, kwargs, base=0.1):
    out = {"type": "compat", "library": library, "name": name, "kwargs": kwargs}
    if base is not None:
        out["base_lr"] = base
    return out


def chain(*children):
    return [{"name": n, "kwargs": kw} for n, kw in children]


CASES = [
    spec("torch", "StepLR", {"step_size": 7, "gamma": 0.5}),
    spec("torch", "MultiStepLR", {"milestones": [5, 20], "gamma": 0.3}),
    spec("torch", "MultiStepLR", {"milestones": [5, 5, 20]}),
    spec("torch", "ConstantLR", {"factor": 0.25, "total_iters": 6}),
    spec("torch", "ConstantLR", {"factor": 0.5, "total_iters": 0}),
    spec("torch", "LinearLR", {"start_factor": 0.1, "end_factor": 0.9, "total_iters": 13}),
    spec("torch", "LinearLR", {"start_factor": 0.1, "total_iters": 0}),
    spec("torch", "ExponentialLR", {"gamma": 0.97}),
    spec("torch", "PolynomialLR", {"total_iters": 17, "power": 2.5}),
    spec("torch", "PolynomialLR", {"total_iters": 0}),
    spec("torch", "CosineAnnealingLR", {"T_max": 23, "eta_min": 0.001}),
    spec("torch", "CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 0.01}),
    spec("torch", "CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "step_size_down": 7,
                               "mode": "triangular2"}, base=None),
    spec("torch", "OneCycleLR", {"max_lr": 0.5, "total_steps": 50, "three_phase": True,
                                 "anneal_strategy": "linear", "pct_start": 0.24}, base=None),
    spec("torch", "OneCycleLR", {"max_lr": 0.5, "total_steps": 50}, base=None),
    spec("torch", "OneCycleLR", {"max_lr": 0.5, "total_steps": 50, "pct_start": 0.25}, base=None),
    spec("torch", "SequentialLR", {"milestones": [5], "schedulers": chain(
        ("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
        ("CosineAnnealingLR", {"T_max": 20, "eta_min": 0.001}))}),
    spec("torch", "SequentialLR", {"milestones": [3, 10], "schedulers": chain(
        ("ConstantLR", {"factor": 0.5, "total_iters": 2}), ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingWarmRestarts", {"T_0": 4}))}),
    spec("transformers", "get_constant_schedule", {}),
    spec("transformers", "get_constant_schedule_with_warmup", {"num_warmup_steps": 10}),
    spec("transformers", "get_linear_schedule_with_warmup", {"num_warmup_steps": 10, "num_training_steps": 100}),
    spec("transformers", "get_cosine_schedule_with_warmup", {"num_warmup_steps": 10, "num_training_steps": 100}),
    spec("transformers", "get_cosine_with_min_lr_schedule_with_warmup",
         {"num_warmup_steps": 10, "num_training_steps": 100, "min_lr": 1e-3}),
    spec("transformers", "get_polynomial_decay_schedule_with_warmup",
         {"num_warmup_steps": 10, "num_training_steps": 100, "lr_end": 1e-4, "power": 2.0}),
    spec("transformers", "get_inverse_sqrt_schedule", {"num_warmup_steps": 8, "timescale": 50}),
    spec("transformers", "get_wsd_schedule", {"num_warmup_steps": 10, "num_decay_steps": 30, "num_training_steps": 100,
                                              "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
    spec("transformers", "get_scheduler", {"name": "cosine", "num_warmup_steps": 10, "num_training_steps": 100}),
    spec("optax", "constant_schedule", {"value": 0.3}, base=None),
    spec("optax", "linear_schedule", {"init_value": 1.0, "end_value": 0.01, "transition_steps": 100,
                                      "transition_begin": 5}, base=None),
    spec("optax", "warmup_constant_schedule", {"init_value": 0.01, "peak_value": 0.5, "warmup_steps": 20}, base=None),
    spec("optax", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 100, "alpha": 0.05}, base=None),
    spec("optax", "warmup_cosine_decay_schedule", {"init_value": 0.0, "peak_value": 1e-3, "warmup_steps": 20,
                                                   "decay_steps": 120, "end_value": 1e-5}, base=None),
    spec("optax", "exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 0.5,
                                        "transition_begin": 7, "staircase": True, "end_value": 0.01}, base=None),
    spec("optax", "piecewise_constant_schedule", {"init_value": 0.1, "boundaries_and_scales": {"0": 2.0, "30": 0.1,
                                                                                               "60": 0.5}}, base=None),
    spec("optax", "polynomial_schedule", {"init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 100,
                                          "transition_begin": 10}, base=None),
    spec("optax", "join_schedules", {"boundaries": [50], "schedules": [
        {"name": "constant_schedule", "kwargs": {"value": 0.2}},
        {"name": "cosine_decay_schedule", "kwargs": {"init_value": 0.2, "decay_steps": 100}}]}, base=None),
    spec("optax", "sgdr_schedule", {"cosine_kwargs": [
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 50},
        {"init_value": 0.0, "peak_value": 0.5, "warmup_steps": 5, "decay_steps": 100}]}, base=None),
    spec("timm", "CosineLRScheduler", {"t_initial": 100, "lr_min": 1e-6, "warmup_t": 10, "warmup_lr_init": 1e-6,
                                       "warmup_prefix": True, "t_in_epochs": False}),
    spec("timm", "CosineLRScheduler", {"t_initial": 100, "lr_min": 1e-6, "t_in_epochs": False}),
    spec("timm", "StepLRScheduler", {"decay_t": 30, "decay_rate": 0.5, "t_in_epochs": False}),
    *[{**spec("megatron", "OptimizerParamScheduler", {"init_lr": 1e-5, "max_lr": 3e-4, "min_lr": 3e-5,
                                                      "lr_warmup_steps": 32, "lr_decay_steps": 256, **kw}, base=None),
       "context": {"increment": 8}} for kw in (
        {"lr_decay_style": "cosine"}, {"lr_decay_style": "linear"},
        {"lr_decay_style": "WSD", "wsd_decay_steps": 64, "lr_wsd_decay_style": "minus_sqrt"})],
    {**spec("olmo-core", "CosWithWarmup", {"warmup": 10, "warmup_min_lr": 1e-4}), "context": {"t_max": 100}},
    {**spec("olmo-core", "LinearWithWarmup", {"warmup": 10, "t_max": 150}), "context": {"t_max": 100}},
    {**spec("olmo-core", "WSD", {"warmup_fraction": 0.05}), "context": {"t_max": 100}},
    {**spec("torchtitan", "LRSchedulersContainer", {"warmup_steps": 10, "decay_ratio": 0.2, "decay_type": "sqrt",
                                                    "min_lr_factor": 0.1}), "context": {"training_steps": 100}},
    {**spec("torchtitan", "LRSchedulersContainer", {"warmup_steps": 10, "total_steps": 80, "decay_type": "cosine"}),
     "context": {"training_steps": 100}},  # past total_steps: the nearest form
    spec("keras", "ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.8,
                                       "staircase": True}, base=None),
    spec("keras", "CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 50, "alpha": 0.1}, base=None),
    spec("keras", "CosineDecay", {"initial_learning_rate": 1e-4, "decay_steps": 50, "warmup_target": 1e-3,
                                  "warmup_steps": 10}, base=None),
    spec("keras", "PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "power": 2.0}, base=None),
    spec("keras", "PiecewiseConstantDecay", {"boundaries": [-3, 10, 30.5], "values": [1.0, 0.5, 0.1, 0.01]},
         base=None),
    {**spec("composer", "CosineAnnealingWithWarmupScheduler", {"t_warmup": "0.1dur", "alpha_f": 0.1}),
     "context": {"max_duration": "3ep", "batches_per_epoch": 20}},
    {**spec("composer", "LinearWithWarmupScheduler", {"t_warmup": "0ba", "alpha_i": 0.5, "t_max": "80ba"}),
     "context": {"max_duration": "60ba"}},
]


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_every_conversion_rule_has_a_case():
    covered = {(c["library"], c["name"]) for c in CASES}
    rules = {(lib, name) for lib, (table, _) in _convert._TABLES.items() for name in table}
    assert rules == covered


@pytest.mark.parametrize("compat", CASES, ids=[f"{c['library']}-{c['name']}-{i}" for i, c in enumerate(CASES)])
def test_diff_of_a_compat_spec_and_its_conversion_is_within_the_stated_bound(capsys, tmp_path, compat):
    source, target = tmp_path / "compat.json", tmp_path / "native.yaml"
    source.write_text(json.dumps(compat))
    code, out, err = run(capsys, "convert", str(source), "-o", str(target))
    assert code == 0 and out == "" and err.count("\n") == 1, err
    assert re.match(r"lrtempo convert: [\w-]+ \w+ -> \w+: (exact|nearest) native form", err)
    schedule, native = load_schedule(str(source)), load_schedule(str(target))
    assert native.type_name != "compat"
    end = schedule.horizon
    last = 2 * max(end, native.horizon)
    if schedule.last_valid_step is not None:
        last = min(last, schedule.last_valid_step)
    end = min(end, last)
    for lo, hi in ((0, end), (end + 1, last)):
        if hi < lo:
            continue
        code, out, _ = run(capsys, "diff", str(source), str(target), "--steps", f"{lo}:{hi + 1}", "--json")
        got = json.loads(out)
        assert code == (0 if got["identical"] else 1)
        stated = err.split(f"steps {lo}..{hi} ")[1].split(";")[0]
        if got["identical"]:
            assert stated.startswith("identical")
            continue
        assert f"largest difference {got['max_abs_difference']['value']!r} " in stated
        assert f"(relative {got['max_rel_difference']['value']!r})" in stated
        assert f"first at step {got['first_difference']['step']}" in stated
    # the same formula: within the bound to the library's end (or where the note says), and past it when exact
    conversion = _convert.to_native(schedule)
    agrees = last if conversion.exact else (end if conversion.agrees_until is None else conversion.agrees_until)
    if agrees >= 0:
        a, b = schedule.at(np.arange(agrees + 1)), native.at(np.arange(agrees + 1))
        np.testing.assert_allclose(a, b, rtol=BOUND, atol=0)


def test_sequential_linear_then_cosine_is_warmup_cosine_with_its_start_rate(capsys, tmp_path):
    source = tmp_path / "s.yaml"
    source.write_text(json.dumps(CASES[16]))
    code, out, _ = run(capsys, "convert", str(source))
    assert code == 0
    native = load_schedule_text(tmp_path, out)
    assert native.to_spec() if hasattr(native, "to_spec") else True
    want = build_schedule({"type": "warmup_cosine", "peak_lr": 0.1, "total_steps": 25, "warmup_steps": 5,
                           "min_lr": 0.001, "warmup_start_lr": 0.1 * 0.1})
    assert native.at(np.arange(40)).tolist() == want.at(np.arange(40)).tolist()


def load_schedule_text(tmp_path, text):
    path = tmp_path / "native.yaml"
    path.write_text(text)
    return load_schedule(str(path))


@pytest.mark.parametrize("compat, message", [
    (spec("torch", "ChainedScheduler", {"schedulers": chain(("ExponentialLR", {"gamma": 0.9}),)}),
     "no native form: torch ChainedScheduler has no native form"),
    (spec("transformers", "get_cosine_schedule_with_warmup",
          {"num_warmup_steps": 1, "num_training_steps": 10, "num_cycles": 1.5}), "num_cycles = 1.5 has no native"),
    (spec("timm", "CosineLRScheduler", {"t_initial": 10}) | {"context": {"updates_per_epoch": 4}},
     "timm's epoch mode holds the rate for a whole epoch"),
    (spec("optax", "exponential_decay", {"init_value": 1.0, "transition_steps": 10, "decay_rate": 1.5,
                                         "end_value": 3.0}, base=None), "decay_rate >= 1"),
    ({"type": "cosine", "peak_lr": 0.1, "decay_steps": 10}, "not a compat spec"),
])
def test_no_native_form_is_one_line_exit_2(capsys, tmp_path, compat, message):
    source, target = tmp_path / "c.json", tmp_path / "out.yaml"
    source.write_text(json.dumps(compat))
    target.write_text("keep me\n")
    code, out, err = run(capsys, "convert", str(source), "-o", str(target))
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert target.read_text() == "keep me\n"  # a refusal writes nothing


def test_output_suffix_is_checked(capsys, tmp_path):
    source = tmp_path / "c.json"
    source.write_text(json.dumps(CASES[0]))
    code, _, err = run(capsys, "convert", str(source), "-o", str(tmp_path / "out.txt"))
    assert code == 2 and "give a .yaml, .yml, .json or .toml file" in err
    code, _, err = run(capsys, "convert", str(source), "-o", str(tmp_path / "out.toml"))
    assert code == 0 and load_schedule(str(tmp_path / "out.toml")).type_name == "step"


def test_a_very_long_schedule_is_measured_at_a_stride(capsys, tmp_path):
    source = tmp_path / "long.yaml"
    source.write_text("type: compat\nlibrary: torch\nname: StepLR\nbase_lr: 0.1\n"
                      "kwargs: {step_size: 4503599627370496}\n")
    code, out, err = run(capsys, "convert", str(source))
    assert code == 0 and "exact native form" in err
    strides = [int(s) for s in re.findall(r" every (\d+) ", err)]
    assert len(strides) == 2 and all(s > 1 for s in strides)
