"""Batch-size ramps: the ramp's arithmetic, its config, lint's LR013, and lrtempo train under a ramp."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.analysis import lint_mapping
from lrtempo.config import BatchRamp, BatchRampConfig, ConfigError
from lrtempo.config._typed import settings_fields


def _brute(ramp: BatchRamp, updates: int) -> list[tuple[int, int]]:
    """``(batch, samples before)`` of each update, by the definition: the batch at the samples consumed."""
    out, consumed = [], 0
    for _ in range(updates):
        batch = ramp.start_batch_size + ramp.increment * min(ramp.stages, consumed * ramp.stages // ramp.ramp_samples)
        out.append((batch, consumed))
        consumed += batch
    return out


@st.composite
def _ramps(draw) -> BatchRamp:
    unit = draw(st.integers(1, 6))
    start = unit * draw(st.integers(1, 12))
    inc = unit * draw(st.integers(1, 6))
    return BatchRamp(start, inc, draw(st.integers(1, 2000)), start + inc * draw(st.integers(1, 10)), unit)


@settings(max_examples=300, deadline=None)
@given(_ramps())
@example(BatchRamp(2, 2, 12, 6))  # a stage boundary crossed mid-update: 10 + 4 samples carries past 12
@example(BatchRamp(32, 32, 1, 1024))  # every stage passed by the first update
def test_the_batches_and_samples_are_the_ramps_definition(ramp):
    brute = _brute(ramp, 120)
    assert [(ramp.batch_of_update(n), ramp.samples_before(n)) for n in range(120)] == brute
    assert all(b % ramp.multiple == 0 for b, _ in brute)
    assert ramp.batch_of_update(10**9) == ramp.batch_size
    ends = [s for _, s in brute] + [brute[-1][1] + brute[-1][0]]
    for samples in range(0, ends[-1] + 1, max(1, ends[-1] // 300)):
        n = ramp.updates_for(samples)
        assert ends[n] >= samples and (n == 0 or ends[n - 1] < samples), samples


def test_the_batch_reaches_the_run_batch_after_ramp_samples():
    ramp = BatchRamp(start_batch_size=32, increment=32, ramp_samples=3000, batch_size=128)
    assert [ramp.batch_at(s) for s in (0, 999, 1000, 1999, 2000, 2999, 3000, 10**12)] == \
        [32, 32, 64, 64, 96, 96, 128, 128]
    # the updates: 32 of 32 samples (to 1024 >= 1000), 16 of 64 (to 2048 >= 2000), 10 of 96 (to 3008), then 128
    assert [ramp.batch_of_update(n) for n in (0, 31, 32, 47, 48, 57, 58)] == [32, 32, 64, 64, 96, 96, 128]
    assert ramp.samples_before(58) == 32 * 32 + 16 * 64 + 10 * 96 == 3008 and ramp.updates_for(1024 + 1) == 33


@pytest.mark.parametrize("kwargs, message", [
    ({"start_batch_size": 128}, r"batch_ramp.start_batch_size: must be < the run's global batch 128"),
    ({"start_batch_size": 200}, r"batch_ramp.start_batch_size: must be < the run's global batch 128"),
    ({"start_batch_size": 20, "multiple": 8}, r"batch_ramp.start_batch_size: must be a multiple of 8"),
    ({"increment": 12, "multiple": 8}, r"batch_ramp.increment: must be a multiple of 8"),
    ({"increment": 40, "multiple": 8}, r"batch_ramp.increment: 128 - 32 \(the run's batch less start_batch_size\) "
                                       "must be a multiple of it"),
    ({"ramp_samples": 0}, r"batch_ramp.ramp_samples: must be a whole number >= 1 \(got 0\)"),
    ({"increment": 2.0}, r"batch_ramp.increment: must be a whole number >= 1 \(got 2.0\)"),
    ({"start_batch_size": 1, "increment": 1, "batch_size": 2_000_002}, "more than 1,000,000 stages"),
])
def test_each_validation_rule_names_its_field(kwargs, message):
    args = {"start_batch_size": 32, "increment": 32, "ramp_samples": 1000, "batch_size": 128, **kwargs}
    with pytest.raises(ValueError, match=message):
        BatchRamp(**args)


def test_the_config_section_reads_with_field_paths():
    from lrtempo.train._runconfig import parse_run_config

    base = {"task": "charlm", "schedule": {"type": "constant", "lr": 1e-3}, "steps": 10}
    config = parse_run_config({**base, "batch_ramp": {"start_batch_size": 8, "increment": 8, "ramp_samples": 64}})
    assert config.batch_ramp == BatchRampConfig(start_batch_size=8, increment=8, ramp_samples=64)
    assert config.to_mapping()["batch_ramp"] == {"start_batch_size": 8, "increment": 8, "ramp_samples": 64}
    assert "batch_ramp" not in parse_run_config(base).to_mapping()  # no ramp: the resolved config is as before
    with pytest.raises(ConfigError) as info:
        parse_run_config({**base, "batch_ramp": {"start_batch_size": 8, "incremnt": 8, "ramp_samples": -1}})
    paths = [p.path for p in info.value.problems]
    assert "batch_ramp.incremnt" in paths and "batch_ramp.ramp_samples" in paths and "batch_ramp.increment" in paths


def test_the_docs_list_the_ramp_settings():
    text = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    rows = "\n".join(f"| `{f.name}` | required | {f.metadata['doc']} |" for f, _ in settings_fields(BatchRampConfig))
    assert f"| key | default | meaning |\n| --- | --- | --- |\n{rows}\n" in text
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(BatchRampConfig))


# -- lint -----------------------------------------------------------------------------------------------------------

RAMP = {"start_batch_size": 8, "increment": 8, "ramp_samples": 4096}


def _run_config(schedule: dict, **over) -> dict:
    return {"task": "charlm", "schedule": schedule, "steps": 100, **over}


def test_lint_warns_of_a_ramp_under_a_steps_schedule_only():
    steps = {"type": "warmup_cosine", "peak_lr": 1e-3, "min_lr": 1e-5, "total_steps": 100, "warmup_steps": 10}
    hits = [f for f in lint_mapping(_run_config(steps, batch_ramp=RAMP)) if f.rule == "LR013"]
    assert len(hits) == 1 and hits[0].severity == "warning" and hits[0].field == "batch_ramp"
    assert "counts updates" in hits[0].message and "unit: samples" in hits[0].fix
    counted = {**steps, "unit": "samples", "total_steps": 100 * 32, "warmup_steps": 10 * 32}
    assert not [f for f in lint_mapping(_run_config(counted, batch_ramp=RAMP)) if f.rule == "LR013"]
    assert not [f for f in lint_mapping(_run_config(steps)) if f.rule == "LR013"]


def test_lint_measures_a_counted_schedule_in_its_unit_not_against_the_run_steps():
    # 100 updates of 32 samples: the warmup of 320 samples is 10% of the schedule, not 3.2 times the 100 steps
    counted = {"type": "warmup_cosine", "unit": "samples", "peak_lr": 1e-3, "min_lr": 1e-5, "total_steps": 3200,
               "warmup_steps": 320}
    rules = {f.rule for f in lint_mapping(_run_config(counted))}
    assert "LR004" not in rules and "LR003" not in rules
