"""One canonical form per schedule: idle parameters change neither values, phases nor the hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.config import build_schedule, load_schedule, schedule_to_spec, spec_hash, spec_hashes
from lrtempo.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    Join,
    Piece,
    Ramp,
    Scale,
    Warmup,
    WarmupCosine,
)

COS = CosineDecay(peak_lr=1e-3, decay_steps=100, min_lr=1e-5)
EXAMPLES = Path(__file__).parents[1] / "examples"


def written_hash(schedule) -> str:
    """The hash of the spec as written out, without canonical forms (what runs recorded before them)."""
    text = json.dumps(schedule_to_spec(schedule), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_schedule(a, b) -> None:
    """Bit-identical values on both paths, the same phases and end: the two are one schedule."""
    horizon = max(a.horizon, b.horizon) + 20
    steps = np.arange(horizon + 1, dtype=np.int64)
    assert a.at(steps).tobytes() == b.at(steps).tobytes()
    assert [a(int(k)) for k in steps] == [b(int(k)) for k in steps]
    assert a.phases(horizon) == b.phases(horizon)
    assert a.end_step == b.end_step


IDLE = [
    (Warmup(COS, 0), COS),
    (Warmup(COS, 0, shape="cosine", start_lr=1e-4), COS),
    (Scale(COS, 1.0), COS),
    (Join((Piece(COS),)), COS),
    (Ramp(1.0, 0.0, 10, shape="cosine", power=3.0), Ramp(1.0, 0.0, 10, shape="cosine")),
    (ExponentialDecay(base_lr=1.0, decay_rate=0.9, decay_steps=1, staircase=True),
     ExponentialDecay(base_lr=1.0, decay_rate=0.9, decay_steps=1)),
    (Warmup(Scale(Join((Piece(Warmup(COS, 0)),)), 1.0), 0), COS),
    (Join((Piece(Constant(1e-3), 10), Piece(Scale(COS, 1.0)))), Join((Piece(Constant(1e-3), 10), Piece(COS)))),
]


@pytest.mark.parametrize("idle, plain", IDLE, ids=range(len(IDLE)))
def test_idle_parameters_change_nothing_and_hash_equal(idle, plain):
    same_schedule(idle, plain)
    assert idle.canonical() == plain.canonical()
    assert spec_hash(idle) == spec_hash(plain)
    assert spec_hash(schedule_to_spec(idle)) == spec_hash(plain)  # from the spec too, as a config gives it


def test_a_real_difference_keeps_its_own_hash():
    assert spec_hash(Warmup(COS, 1)) != spec_hash(COS)
    assert spec_hash(Scale(COS, 0.5)) != spec_hash(COS)
    assert spec_hash(Join((Piece(COS, 50),))) != spec_hash(COS)
    assert spec_hash(Ramp(1.0, 0.0, 10, shape="power", power=3.0)) != spec_hash(Ramp(1.0, 0.0, 10, shape="power"))
    assert spec_hash(ExponentialDecay(base_lr=1.0, decay_rate=0.9, decay_steps=2, staircase=True)) != spec_hash(
        ExponentialDecay(base_lr=1.0, decay_rate=0.9, decay_steps=2))


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.*") if p.name != "run_config.yaml"),
                         ids=lambda p: p.name)
def test_hashes_of_schedules_without_idle_parameters_are_unchanged(path):
    """A run recorded before canonical forms keeps its hash: the examples have no idle parameter."""
    schedule = load_schedule(path)
    assert spec_hash(schedule) == written_hash(schedule)
    assert spec_hashes(schedule) == {spec_hash(schedule)}


def test_an_older_runs_hash_is_the_same_schedule():
    """A checkpoint written with the hash of the spec as written (idle parameters in) loads without a change flag."""
    torch = pytest.importorskip("torch")
    from lrtempo.torch import LRTempoScheduler, ScheduleChangedError

    schedule = Warmup(COS, 0)
    assert written_hash(schedule) != spec_hash(schedule) and written_hash(schedule) in spec_hashes(schedule)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    sched = LRTempoScheduler(opt, schedule)
    sched.load_state_dict({"step": 7, "spec_hash": written_hash(schedule)})
    assert opt.param_groups[0]["lr"] == COS(7)
    with pytest.raises(ScheduleChangedError):
        sched.load_state_dict({"step": 7, "spec_hash": written_hash(Warmup(COS, 1))})


def test_resume_check_takes_an_older_runs_hash():
    from lrtempo.train._runconfig import parse_run_config
    from lrtempo.train._rundir import ConfigError, _schedule_change

    spec = {"type": "warmup", "warmup_steps": 0, "schedule": schedule_to_spec(COS)}
    config = parse_run_config({"task": "quadratic", "steps": 10, "schedule": spec})
    assert _schedule_change(written_hash(config.schedule), config, False, "schedule", 5, {}) is None
    with pytest.raises(ConfigError, match="allow-schedule-change"):
        _schedule_change(written_hash(Warmup(COS, 1)), config, False, "schedule", 5, {})


_bases = st.sampled_from([COS, Constant(0.1), WarmupCosine(peak_lr=1.0, total_steps=50, warmup_steps=5),
                          Ramp(0.0, 1.0, 8)])


@st.composite
def wrapped(draw):
    base = draw(_bases)
    s = base
    for kind in draw(st.lists(st.sampled_from(["warmup", "scale", "join"]), max_size=4)):
        s = {"warmup": lambda x: Warmup(x, 0), "scale": lambda x: Scale(x, 1.0),
             "join": lambda x: Join((Piece(x),))}[kind](s)
    return s, base


@settings(max_examples=60, deadline=None)
@given(wrapped())
def test_property_idle_wrappers_are_the_schedule(pair):
    s, base = pair
    same_schedule(s, base)
    assert spec_hash(s) == spec_hash(base)
    assert build_schedule(schedule_to_spec(s)).canonical() == base


def test_a_callback_record_under_an_older_runs_hash_resumes_without_a_change(tmp_path):
    """The integrations' run record takes the older hash as the same schedule too: no schedule change written."""
    from lrtempo.integrations._record import RunRecorder
    from lrtempo.rundir import RunDir

    schedule = Warmup(COS, 0)
    run = RunDir(tmp_path / "run")

    def recorder():
        return RunRecorder(run, schedule, None, total_steps=100, record={}, meta={"world_size": 1}, env={})

    first = recorder()
    first.begin(0, None)
    first.append({"step": 0, "lr": schedule(0), "grad_l2_norm": 1.0, "loss": 2.0})
    first.end("stopped", 1)
    run.write_meta({**run.read_meta(), "spec_hash": written_hash(schedule)})  # as a run before canonical forms
    again = recorder()
    again.begin(1, None)
    again.end("stopped", 1)
    meta = run.read_meta()
    assert "schedule_changes" not in meta and meta["spec_hash"] == written_hash(schedule)
    assert not run.config_before(1).exists()
