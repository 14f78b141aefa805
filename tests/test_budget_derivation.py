"""The run's budget (``total:``): the derivation against hand computations, its invariants, ``auto`` filled in
the schedule's unit and position, and one clear line for every bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lrtempo.config import ConfigError, Problem, build_schedule
from lrtempo.config._horizon import (
    DataFacts,
    auto_field,
    data_facts,
    derive_horizon,
    fill_auto,
    read_total,
    run_horizon,
)
from lrtempo.schedules import NATIVE_TYPES

# -- the derivation, by hand --------------------------------------------------------------------------------------

# (facts, epochs, updates by hand, samples consumed by hand); G = batch_size x accumulation_steps x world_size
EPOCH_CASES = [
    # 1000 / 64 = 15.625: the last update of an epoch takes the 40 left over, or they are dropped
    (DataFacts(examples=1000, batch_size=32, accumulation_steps=2), 3, 3 * 16, 3 * 1000),
    (DataFacts(examples=1000, batch_size=32, accumulation_steps=2, drop_last=True), 3, 3 * 15, 3 * 15 * 64),
    # an even split: both rules give 1024 / 64 = 16
    (DataFacts(examples=1024, batch_size=64), 2, 2 * 16, 2 * 1024),
    (DataFacts(examples=1024, batch_size=64, drop_last=True), 2, 2 * 16, 2 * 1024),
    # one example past a whole batch: a second update of 1 example, or none
    (DataFacts(examples=65, batch_size=64), 1, 2, 65),
    (DataFacts(examples=65, batch_size=64, drop_last=True), 1, 1, 64),
    # world size and accumulation: G = 8 x 4 x 8 = 256; 10_000 / 256 = 39.06
    (DataFacts(examples=10_000, batch_size=8, accumulation_steps=4, world_size=8), 5, 5 * 40, 5 * 10_000),
    (DataFacts(examples=10_000, batch_size=8, accumulation_steps=4, world_size=8, drop_last=True), 5, 5 * 39,
     5 * 39 * 256),
    # a measured count per epoch overrides the division
    (DataFacts(examples=10_000, batch_size=8, steps_per_epoch=390), 3, 3 * 390, 3 * 390 * 8),
    # a task whose every update sees its whole data: one update an epoch whatever the accumulation
    (DataFacts(examples=16, update_batch=16, accumulation_steps=4, world_size=2), 7, 7, 7 * 16),
]


@pytest.mark.parametrize("facts, epochs, steps, samples", EPOCH_CASES)
def test_epochs_give_the_hand_counted_updates_and_samples(facts, epochs, steps, samples):
    h = derive_horizon("epochs", epochs, facts)
    assert (h.steps, h.samples) == (steps, samples)
    assert h.given == {"epochs": epochs} and h.derivation.split("; ")[0].endswith(f"= {steps} updates")


def test_the_derivation_reads_as_the_arithmetic():
    h = derive_horizon("epochs", 3, DataFacts(examples=1000, batch_size=32, accumulation_steps=2, drop_last=True))
    assert h.derivation == ("3 epochs x floor(1000 / 64) = 3 x 15 = 45 updates; global batch 64 = 32 x 2 x 1 "
                            "(batch_size x accumulation_steps x world_size)")


@pytest.mark.parametrize("samples, g, steps", [(1000, 64, 16), (1024, 64, 16), (1025, 64, 17), (1, 64, 1),
                                               (64, 1, 64)])
def test_a_samples_budget_is_the_fewest_updates_that_see_it(samples, g, steps):
    """ceil(M / G): 1000 / 64 = 15.625 -> 16 updates, 1024 samples consumed."""
    h = derive_horizon("samples", samples, DataFacts(batch_size=g))
    assert (h.steps, h.samples, h.tokens) == (steps, steps * g, None)


def test_a_tokens_budget_by_hand():
    """2e9 tokens at 8 x 4 x 8 = 256 sequences of 2048 tokens = 524,288 tokens an update: 2e9 / 524,288 =
    3814.7, so 3815 updates (3814 see 1,999,634,432 tokens, short of the budget)."""
    facts = DataFacts(batch_size=8, accumulation_steps=4, world_size=8, tokens_per_sample=2048)
    h = derive_horizon("tokens", 2_000_000_000, facts)
    assert 3814 * 524_288 == 1_999_634_432 < 2_000_000_000 <= 3815 * 524_288
    assert (h.steps, h.samples, h.tokens) == (3815, 3815 * 256, 3815 * 524_288)


def test_a_steps_budget_counts_the_samples_and_tokens_when_the_batch_is_known():
    assert derive_horizon("steps", 100, DataFacts()).samples is None
    h = derive_horizon("steps", 100, DataFacts(batch_size=4, world_size=2, tokens_per_sample=10))
    assert (h.steps, h.samples, h.tokens) == (100, 800, 8000)


@pytest.mark.parametrize("key, facts, needs", [
    ("epochs", DataFacts(batch_size=8), "data.examples"),
    ("epochs", DataFacts(examples=100), "data.batch_size"),
    ("epochs", DataFacts(examples=10, batch_size=64, drop_last=True), "0 updates per epoch"),
    ("samples", DataFacts(), "data.batch_size"),
    ("tokens", DataFacts(batch_size=8), "data.tokens_per_sample"),
])
def test_a_budget_without_the_facts_it_needs_names_them(key, facts, needs):
    with pytest.raises(ValueError, match=needs):
        derive_horizon(key, 3, facts)


# -- invariants ---------------------------------------------------------------------------------------------------

@given(examples=st.integers(1, 10**7), batch=st.integers(1, 4096), accumulation=st.integers(1, 64),
       world=st.integers(1, 512), epochs=st.integers(1, 1000), drop_last=st.booleans())
@example(examples=65, batch=64, accumulation=1, world=1, epochs=1, drop_last=False)
@example(examples=64, batch=64, accumulation=1, world=1, epochs=1, drop_last=True)
def test_epoch_updates_cover_the_data_and_one_fewer_does_not(examples, batch, accumulation, world, epochs,
                                                             drop_last):
    g = batch * accumulation * world
    facts = DataFacts(examples=examples, batch_size=batch, accumulation_steps=accumulation, world_size=world,
                      drop_last=drop_last)
    if drop_last and examples < g:
        with pytest.raises(ValueError, match="0 updates per epoch"):
            derive_horizon("epochs", epochs, facts)
        return
    h = derive_horizon("epochs", epochs, facts)
    per = h.steps // epochs
    assert h.steps == epochs * per
    if drop_last:  # full batches only: they fit in the epoch, one more would not
        assert per * g <= examples < (per + 1) * g and h.samples == h.steps * g
    else:  # every example seen: the updates cover the epoch, one fewer would not
        assert (per - 1) * g < examples <= per * g and h.samples == epochs * examples


@given(samples=st.integers(1, 10**15), g=st.integers(1, 10**6), tokens_per_sample=st.integers(1, 10**5))
@example(samples=1000, g=64, tokens_per_sample=1)
def test_samples_and_tokens_budgets_are_the_fewest_updates_that_see_them(samples, g, tokens_per_sample):
    h = derive_horizon("samples", samples, DataFacts(batch_size=g))
    assert h.steps * g >= samples > (h.steps - 1) * g
    tokens = samples  # the same count read as tokens
    t = derive_horizon("tokens", tokens, DataFacts(batch_size=g, tokens_per_sample=tokens_per_sample))
    per = g * tokens_per_sample
    assert t.steps * per >= tokens > (t.steps - 1) * per and t.tokens == t.steps * per


# -- total: exactly one key, a whole number >= 1 ------------------------------------------------------------------

@pytest.mark.parametrize("value, problem", [
    ({"epochs": 3, "steps": 10}, "total: must be a mapping with exactly one of steps, epochs, samples, tokens"),
    ({}, "total: must be a mapping with exactly one of"),
    (3, "total: must be a mapping with exactly one of steps, epochs, samples, tokens, e.g. {epochs: 3} (got 3)"),
    ({"epoch": 3}, "total.epoch: unknown key; did you mean 'epochs'?"),
    ({"epochs": 0}, "total.epochs: must be a whole number >= 1 (got 0)"),
    ({"steps": -5}, "total.steps: must be a whole number >= 1 (got -5)"),
    ({"epochs": 2.5}, "total.epochs: must be a whole number >= 1 (got 2.5); for part of an epoch give samples"),
    ({"tokens": 2.5e9 + 0.5}, "total.tokens: must be a whole number"),
    ({"tokens": float("inf")}, "total.tokens: must be a whole number"),
    ({"tokens": float("nan")}, "total.tokens: must be a whole number"),
    ({"steps": True}, "total.steps: must be a whole number >= 1 (got True)"),
    ({"steps": "100"}, "total.steps: must be a whole number >= 1"),
])
def test_a_bad_total_is_one_problem_naming_the_field_and_what_is_valid(value, problem):
    problems: list[Problem] = []
    assert read_total(value, "total", problems) is None
    assert len(problems) == 1 and str(problems[0]).startswith(problem), str(problems[0])


def test_a_whole_float_total_is_read_exactly():
    problems: list[Problem] = []
    assert read_total({"tokens": 2.0e9}, "total", problems) == ("tokens", 2_000_000_000) and not problems


@pytest.mark.parametrize("data, problem", [
    ({"examples": 0}, "data.examples: must be a whole number >= 1 (got 0)"),
    ({"batch_size": 1.5}, "data.batch_size: must be a whole number >= 1 (got 1.5)"),
    ({"world_size": "2"}, "data.world_size: must be a whole number >= 1 (got '2')"),
    ({"drop_last": "yes"}, "data.drop_last: must be true or false (got 'yes')"),
])
def test_a_bad_data_fact_is_one_problem(data, problem):
    problems: list[Problem] = []
    data_facts(data, 1, None, problems)
    assert [str(p) for p in problems] == [problem]


def test_the_data_section_may_not_contradict_the_task():
    task = DataFacts(examples=1000, batch_size=32, tokens_per_sample=64, source={"batch_size": "task_options"})
    problems: list[Problem] = []
    facts = data_facts({"world_size": 4}, 2, task, problems, task_name="task charlm")
    assert not problems and facts.global_batch == 32 * 2 * 4 and facts.source["world_size"] == "data"
    data_facts({"batch_size": 16}, 1, task, problems, task_name="task charlm")
    assert [str(p) for p in problems] == ["data.batch_size: 16 differs from task charlm's 32 (task_options), "
                                          "which training uses"]


def test_run_horizon_reads_total_over_the_data_section_and_the_task():
    run = {"task": "t", "total": {"epochs": 2}, "accumulation_steps": 3, "data": {"world_size": 2}}
    problems: list[Problem] = []
    h = run_horizon(run, problems, lambda name, options: DataFacts(examples=600, batch_size=10))
    assert not problems and h.steps == 2 * math.ceil(600 / 60)
    assert run_horizon({"task": "t"}, problems) is None and not problems


# -- auto ---------------------------------------------------------------------------------------------------------

#: the native types whose end ``auto`` fills, and a spec of each with that field left to fill
AUTO_SPECS = {
    "warmup_cosine": {"type": "warmup_cosine", "peak_lr": 1.0, "warmup_steps": 10},
    "wsd": {"type": "wsd", "peak_lr": 1.0, "warmup_steps": 10, "decay_steps": 20},
    "warmup_plateau_cosine": {"type": "warmup_plateau_cosine", "peak_lr": 1.0, "warmup_steps": 10,
                              "plateau_steps": 10},
    "one_cycle": {"type": "one_cycle", "max_lr": 1.0},
    "cosine": {"type": "cosine", "peak_lr": 1.0},
    "polynomial": {"type": "polynomial", "peak_lr": 1.0},
    "tanh": {"type": "tanh", "peak_lr": 1.0},
    "linear": {"type": "linear", "start_lr": 1.0, "end_lr": 0.0},
    "ramp": {"type": "ramp", "start_lr": 1.0, "end_lr": 0.0},
}


def _budget(steps: int, g: int = 4, tokens: int = 8):
    return derive_horizon("steps", steps, DataFacts(batch_size=g, tokens_per_sample=tokens))


def _filled(spec, steps=100, **kw):
    problems: list[Problem] = []
    filled: list = []
    out = fill_auto(spec, _budget(steps, **kw), "schedule", problems, filled)
    assert not problems, problems
    return out, filled


def test_auto_fills_every_type_that_has_an_end_and_the_schedule_then_ends_at_the_budget():
    """Every native type with a total (a new family with one fails here until it has a case)."""
    assert {name for name in NATIVE_TYPES if auto_field(name)} == set(AUTO_SPECS)
    for name, spec in AUTO_SPECS.items():
        field = auto_field(name)
        out, filled = _filled({**spec, field: "auto"}, 100)
        assert out[field] == 100 and filled == [(f"schedule.{field}", 100)]
        assert build_schedule(out).end_step == 100, name


def test_auto_is_filled_before_fractions_resolve():
    out, _ = _filled({"type": "wsd", "peak_lr": 1.0, "total_steps": "auto", "warmup": 0.05, "decay": 0.2}, 1000)
    s = build_schedule(out)
    assert (s.total_steps, s.warmup_steps, s.decay_steps) == (1000, 50, 200)


def test_auto_in_nested_specs_takes_what_the_budget_leaves_on_that_clock():
    cosine = {"type": "cosine", "peak_lr": 1.0, "decay_steps": "auto"}
    warm = {"type": "warmup", "warmup_steps": 30, "schedule": cosine}
    out, filled = _filled({"type": "clamp", "min_lr": 0.01, "schedule": {"type": "scale", "factor": 0.5,
                                                                          "schedule": warm}}, 100)
    assert out["schedule"]["schedule"]["schedule"]["decay_steps"] == 70
    assert filled == [("schedule.schedule.schedule.schedule.decay_steps", 70)]
    assert build_schedule(out).end_step == 100
    join = {"type": "join", "pieces": [{"schedule": {"type": "constant", "lr": 1.0}, "steps": 25},
                                       {"schedule": {**cosine}}]}
    out, _ = _filled(join, 100)
    assert out["pieces"][1]["schedule"]["decay_steps"] == 75 and build_schedule(out).end_step == 100
    assert warm["schedule"]["decay_steps"] == "auto"  # the spec given is not changed


@pytest.mark.parametrize("unit, total", [("steps", 100), ("samples", 100 * 4), ("tokens", 100 * 4 * 8)])
def test_auto_takes_the_budget_in_the_schedules_unit(unit, total):
    out, _ = _filled({"type": "cosine", "peak_lr": 1.0, "decay_steps": "auto", "unit": unit}, 100)
    assert out["decay_steps"] == total


@pytest.mark.parametrize("spec, problem", [
    ({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 100, "warmup_steps": "auto"},
     "schedule.warmup_steps: auto fills only a schedule's total (total_steps takes it); give a number"),
    ({"type": "step", "base_lr": 1.0, "step_size": "auto"},
     "schedule.step_size: auto fills only a schedule's total (this type has no total that takes it)"),
    ({"type": "restarts", "period": 10, "schedule": {"type": "cosine", "peak_lr": 1.0, "decay_steps": "auto"}},
     "schedule.schedule.decay_steps: auto inside 'restarts': its inner schedule's steps are not the run's"),
    ({"type": "warmup", "warmup_steps": 100, "schedule": {"type": "cosine", "peak_lr": 1.0,
                                                         "decay_steps": "auto"}},
     "schedule.schedule.decay_steps: auto: the budget leaves 0 steps for this schedule"),
    ({"type": "compat", "library": "transformers", "name": "cosine", "kwargs": {"num_training_steps": "auto"}},
     "schedule.kwargs.num_training_steps: auto fills only a schedule's total"),
])
def test_auto_where_it_has_no_meaning_is_one_clear_problem(spec, problem):
    problems: list[Problem] = []
    fill_auto(spec, _budget(100), "schedule", problems)
    assert len(problems) == 1 and str(problems[0]).startswith(problem), [str(p) for p in problems]


def test_auto_without_a_budget_says_what_it_needs_when_built():
    with pytest.raises(ConfigError) as info:
        build_schedule({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": "auto", "warmup": 0.1})
    assert [str(p) for p in info.value.problems] == [
        "total_steps: auto takes the run's budget: give the run config total: {steps: N} (or epochs, samples, "
        "tokens), or a number"]


def test_a_budget_with_no_count_in_the_schedules_unit_is_a_problem():
    problems: list[Problem] = []
    fill_auto({"type": "cosine", "peak_lr": 1.0, "decay_steps": "auto", "unit": "tokens"},
              derive_horizon("steps", 10, DataFacts(batch_size=4)), "schedule", problems)
    assert [str(p) for p in problems] == ["schedule.decay_steps: auto has no count of tokens in the budget "
                                          "{steps: 10}: give data.batch_size and data.tokens_per_sample"]


def test_the_json_schema_takes_auto_exactly_where_auto_fills():
    jsonschema = pytest.importorskip("jsonschema")
    from lrtempo.config import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    for name, spec in AUTO_SPECS.items():
        assert not list(validator.iter_errors({**spec, auto_field(name): "auto"})), name
    assert list(validator.iter_errors({"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 10,
                                       "warmup_steps": "auto"}))
