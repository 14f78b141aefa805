"""Reduce-on-plateau: the schedule of a base and recorded reductions, its rule against torch's
ReduceLROnPlateau, and the adapter's observe() with an exact resume."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lrtempo.config import build_schedule, format_config, parse_config_text, schedule_to_spec, spec_hash
from lrtempo.schedules import (
    Constant,
    CosineDecay,
    ParameterError,
    Plateau,
    Reduction,
    Scale,
    Warmup,
    WarmupCosine,
    find_plateau,
)
from test_properties import schedules

torch = pytest.importorskip("torch")
from torch.optim.lr_scheduler import ReduceLROnPlateau  # noqa: E402

from lrtempo.torch import LRTempoScheduler  # noqa: E402

BASE = WarmupCosine(peak_lr=0.1, total_steps=1000, warmup_steps=100, min_lr=1e-3)


def expected(base, reductions, min_lr, k):
    """The documented formula, written out: ``min(base(k), max(base(k) * m(k), min_lr))``."""
    m = 1.0
    for r in reductions:
        if r[0] <= k:
            m *= r[1]
    b = base(k)
    return min(b, max(b * m, min_lr))


# -- the schedule: a pure function of the step and the record --------------------------------------------------


def test_values_at_every_reduction_and_its_neighbours_follow_the_formula():
    record = [(150, 0.5), (400, 0.1), (400, 0.5), (990, 0.5)]
    p = Plateau(BASE, factor=0.5, min_lr=2e-4).with_reductions(record)
    steps = sorted({s + d for s, _ in record for d in (-1, 0, 1)} | {0, 99, 100, 101, 999, 1000, 1001, 10**6})
    assert p.at(steps).tolist() == [expected(BASE, record, 2e-4, k) for k in steps]
    assert [p(k) for k in steps] == p.at(steps).tolist()
    assert p(149) == BASE(149) and p(150) == BASE(150) * 0.5
    assert p(400) == max(BASE(400) * (0.5 * 0.1 * 0.5), 2e-4)


def test_without_reductions_it_is_the_base_bit_for_bit():
    p = Plateau(BASE)
    steps = np.arange(0, 1200)
    assert p.at(steps).tolist() == BASE.at(steps).tolist()
    assert p.phases(1200) == BASE.phases(1200) and p.end_step is None


def test_the_floor_holds_reductions_up_but_never_lifts_the_base():
    warm = Warmup(Constant(0.1), 10)  # the base starts at 0, below min_lr
    p = Plateau(warm, factor=0.1, min_lr=0.02).with_reductions([(0, 0.1)])
    assert [p(k) for k in (0, 1)] == [warm(0), warm(1)] and warm(1) < 0.02  # the base below the floor: as it is
    assert p(3) == 0.02 and warm(3) * 0.1 < 0.02 < warm(3)  # reduced below the floor: floored
    assert p(10) == 0.02 and p(10**6) == 0.02


def test_the_reductions_are_no_part_of_the_spec_or_its_hash():
    p = build_schedule({"type": "plateau", "base": {"type": "cosine", "peak_lr": 0.1, "decay_steps": 100}})
    q = p.with_reductions([Reduction(10, 0.1)])
    assert spec_hash(p) == spec_hash(q) and schedule_to_spec(p) == schedule_to_spec(q)
    assert q != p and q.reductions == (Reduction(10, 0.1),) and p.reductions == ()
    assert q(10) == p(10) * 0.1  # the record changes the values, not the schedule it was recorded for
    for copied in (pickle.loads(pickle.dumps(q)), copy.deepcopy(q), q.canonical()):
        assert copied == q and copied.at(np.arange(100)).tolist() == q.at(np.arange(100)).tolist()


def test_torchs_names_and_defaults():
    p = build_schedule({"type": "plateau", "base": {"type": "constant", "lr": 0.1}})
    t = ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    for name in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps"):
        assert getattr(p, name) == getattr(t, name), name
    assert p.min_lr == t.min_lrs[0] and p.monitor == "val_loss"


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"factor": 1.0}, "factor", "must be < 1"),
    ({"factor": -0.1}, "factor", "must be >= 0"),
    ({"patience": -1}, "patience", "must be >= 0"),
    ({"patience": 1.5}, "patience", "whole number"),
    ({"threshold": -1e-4}, "threshold", "must be >= 0"),
    ({"threshold": 1.0}, "threshold", "must be < 1 with mode 'min' and threshold_mode 'rel'"),
    ({"threshold_mode": "relative"}, "threshold_mode", "must be one of 'rel', 'abs'"),
    ({"mode": "minimum"}, "mode", "must be one of 'min', 'max'"),
    ({"cooldown": -2}, "cooldown", "must be >= 0"),
    ({"min_lr": -1.0}, "min_lr", "must be >= 0"),
    ({"eps": float("nan")}, "eps", "must be finite"),
    ({"monitor": "val_los"}, "monitor", "must be one of 'val_loss', 'loss' .*did you mean 'val_loss'"),
])
def test_each_bad_parameter_is_named(spec, field, message):
    with pytest.raises(ParameterError, match=rf"^{field}: .*{message}"):
        Plateau(Constant(0.1), **spec)


def test_large_thresholds_are_valid_where_they_can_be_met():
    assert Plateau(Constant(0.1), threshold=2.0, mode="max").threshold == 2.0
    assert Plateau(Constant(0.1), threshold=2.0, threshold_mode="abs").threshold == 2.0


def test_one_rule_per_schedule_and_only_outermost():
    with pytest.raises(ParameterError, match="^base: must not itself reduce on plateau"):
        Plateau(Warmup(Plateau(Constant(0.1)), 5))
    with pytest.raises(ValueError, match="must be the outermost schedule .*inside type: warmup"):
        find_plateau(Warmup(Plateau(Constant(0.1)), 5))
    assert find_plateau(BASE) is None


@pytest.mark.parametrize(("record", "message"), [
    ([(-1, 0.5)], "step must be a whole number"),
    ([(2**53 + 1, 0.5)], "step must be a whole number"),
    ([(1.5, 0.5)], "step must be a whole number"),
    ([(3, 1.5)], "factor must be a number from 0 to 1"),
    ([(3, float("nan"))], "factor must be a number from 0 to 1"),
    ([(5, 0.5), (4, 0.5)], "in order of step"),
    (["x"], "must be"),
])
def test_a_bad_record_is_refused(record, message):
    with pytest.raises(ValueError, match=message):
        Plateau(Constant(0.1)).with_reductions(record)


def test_a_reduction_of_eps_or_less_is_not_made():
    p = Plateau(Constant(1.0), factor=0.5, min_lr=0.3, eps=0.1)
    one = p.reduced_at(4)
    assert one(4) == 0.5 and one(3) == 1.0
    two = one.reduced_at(6)  # 0.5 -> max(0.25, 0.3) = 0.3: a change of 0.2 > eps
    assert two(6) == 0.3
    assert two.reduced_at(9) is None  # at the floor: no change
    with pytest.raises(ValueError, match="before the last one"):
        two.reduced_at(5)


@st.composite
def records(draw):
    steps = sorted(draw(st.lists(st.integers(0, 6000), max_size=8)))
    return [(s, draw(st.sampled_from([0.1, 0.5, 0.3, 0.0, 1.0, 0.9]))) for s in steps]


@settings(max_examples=200, deadline=None)
@given(schedules(), records(), st.floats(0.0, 1e-2))
def test_properties_over_random_bases_and_records(base, record, min_lr):
    p = Plateau(base, min_lr=min_lr).with_reductions(record)
    steps = np.asarray(sorted({0, 1, *(s + d for s, _ in record for d in (-1, 0, 1) if s + d >= 0),
                               base.horizon, base.horizon + 1, 10 * base.horizon + 7}), dtype=np.int64)
    values = p.at(steps)
    assert [p(int(k)) for k in steps] == values.tolist()  # one step and an array agree bit for bit
    assert values.tolist() == [expected(base, record, min_lr, int(k)) for k in steps]
    assert np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(values <= base.at(steps))
    spec = schedule_to_spec(p)
    for fmt in ("yaml", "json", "toml"):
        again = build_schedule(parse_config_text(format_config(spec, fmt), fmt))
        assert again == Plateau(base, min_lr=min_lr) and spec_hash(again) == spec_hash(p)


# -- the rule, against torch's ReduceLROnPlateau -------------------------------------------------------------------


def _both(settings_, lr, losses, every, groups=1):
    """Run torch's ReduceLROnPlateau and the adapter side by side: ``every`` updates between evaluations.

    Returns the steps where torch's rate changed and ours were recorded, after checking the rule's state
    and the rates after every evaluation."""
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    ref_opt = torch.optim.SGD(copy.deepcopy(params), lr=lr)
    ref = ReduceLROnPlateau(ref_opt, **settings_)
    opt = torch.optim.SGD(params, lr=0.0)
    ours = LRTempoScheduler(opt, Plateau(Constant(lr), **settings_))
    changed, step = [], 0
    for loss in losses:
        for _ in range(every):
            ref_opt.step(), opt.step(), ours.step()
            step += 1
        before = ref_opt.param_groups[0]["lr"]
        ref.step(loss)
        ours.observe(loss)
        if ref_opt.param_groups[0]["lr"] != before:
            changed.append(step)
        decider = ours._plateau.decider
        assert decider.best == ref.best or (math.isnan(ref.best) and math.isnan(decider.best))
        assert (decider.num_bad_epochs, decider.cooldown_counter) == (ref.num_bad_epochs, ref.cooldown_counter)
        for a, b in zip(opt.param_groups, ref_opt.param_groups):
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-13, abs=0.0)
    return changed, [r.step for r in ours.schedule.reductions]


KNOWN = [1.0, 0.9, 0.95, 0.92, 0.91, 0.9, 0.89, 0.905, 0.9, 0.9, 0.9, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86]


@pytest.mark.parametrize(("settings_", "reduced_at"), [
    # no improvement by 1e-4 of the best for more than 2 evaluations: after 0.9 (step 20), 0.89 (70), 0.8 (120)
    ({"patience": 2}, [50, 100, 150, 180]),
    ({"patience": 2, "threshold": 0.02}, [50, 80, 110, 150, 180]),  # 0.89 is no 2% improvement on 0.9
    ({"patience": 2, "threshold": 0.02, "threshold_mode": "abs"}, [50, 80, 110, 150, 180]),
    ({"patience": 1, "cooldown": 2}, [40, 90, 140, 180]),  # bad evaluations in the cooldown do not count
    # every evaluation is worse than the first: a reduction each time until one would change the rate by
    # eps or less (0.1 * 0.1 ** 7 = 1e-8 -> 1e-9)
    ({"patience": 0, "mode": "max"}, [20, 30, 40, 50, 60, 70, 80]),
    ({"patience": 0, "mode": "max", "factor": 0.5, "min_lr": 0.02}, [20, 30, 40]),  # then at the floor
])
def test_a_known_loss_sequence_gives_torchs_reductions_at_the_same_steps(settings_, reduced_at):
    theirs, ours = _both(settings_, 0.1, KNOWN, every=10)
    assert theirs == ours == reduced_at


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({
    "mode": st.sampled_from(["min", "max"]), "threshold_mode": st.sampled_from(["rel", "abs"]),
    "factor": st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.37]), "patience": st.integers(0, 4),
    "threshold": st.sampled_from([0.0, 1e-4, 0.05, 0.5]), "cooldown": st.integers(0, 3),
    "min_lr": st.sampled_from([0.0, 1e-4, 0.01, 0.05, 0.2]), "eps": st.sampled_from([0.0, 1e-8, 1e-3, 0.05])}),
    st.sampled_from([0.1, 1.0, 0.37, 3e-4]),
    st.lists(st.one_of(st.sampled_from([1.0, 0.9, 1.1, 0.5, 2.0, -0.5, float("nan"), float("inf")]),
                       st.floats(-2.0, 2.0)), min_size=1, max_size=40),
    st.integers(1, 3), st.integers(1, 2))
@example({"mode": "min", "threshold_mode": "rel", "factor": 0.1, "patience": 0, "threshold": 0.0,
          "cooldown": 0, "min_lr": 0.01, "eps": 1e-8}, 1.0, [1.0] * 6, 1, 1)  # 0.1 * 0.1 lies an ulp above 0.01
def test_random_loss_sequences_and_settings_match_torch(settings_, lr, losses, every, groups):
    theirs, ours = _both(settings_, lr, losses, every, groups)
    assert theirs == ours


# -- the adapter: observe(), the state, an exact resume --------------------------------------------------------------


def _opt(groups=2):
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    params[-1]["group_multiplier"] = 0.25
    return torch.optim.SGD(params, lr=1.0)


def _advanced(schedule, steps=200):
    """A scheduler past the base's warmup (at step 0 its rate is 0, which no reduction changes)."""
    opt = _opt()
    sched = LRTempoScheduler(opt, schedule)
    for _ in range(steps):
        opt.step(), sched.step()
    return sched


def _losses(n, seed=0):
    rng = np.random.default_rng(seed)
    return (1.0 + 0.05 * rng.standard_normal(n)).tolist()


def test_observe_records_from_the_next_update_and_sets_every_group_at_once():
    opt = _opt()
    sched = LRTempoScheduler(opt, Plateau(BASE, patience=0, mode="max", factor=0.5))
    for _ in range(120):
        opt.step(), sched.step()
    assert sched.observe(torch.tensor(2.0)) is None  # the first evaluation sets the best
    for _ in range(10):
        opt.step(), sched.step()
    reduction = sched.observe(1.0)
    assert reduction == Reduction(130, 0.5) and sched.schedule.reductions == (reduction,)
    assert opt.param_groups[0]["lr"] == BASE(130) * 0.5 and opt.param_groups[1]["lr"] == BASE(130) * 0.5 * 0.25
    opt.step(), sched.step()
    assert opt.param_groups[0]["lr"] == BASE(131) * 0.5
    assert sched.spec_hash == spec_hash(Plateau(BASE, patience=0, mode="max", factor=0.5))


def test_resume_after_a_reduction_is_exact():
    rule = Plateau(BASE, patience=1, factor=0.5, cooldown=1)
    losses = _losses(60, seed=3)

    def run(sched, opt, start, stop):
        rates = []
        for k in range(start, stop):
            rates.append([g["lr"] for g in opt.param_groups])
            opt.step(), sched.step()
            if (k + 1) % 10 == 0:
                sched.observe(losses[k // 10])
        return rates

    opt = _opt()
    whole = LRTempoScheduler(opt, rule)
    reference = run(whole, opt, 0, 600)
    assert len(whole.schedule.reductions) >= 3
    first = LRTempoScheduler(opt_a := _opt(), rule)
    head = run(first, opt_a, 0, 330)
    saved = copy.deepcopy(first.state_dict())
    assert saved["plateau"]["reductions"] and saved["plateau"]["reductions"][-1][0] <= 330
    second = LRTempoScheduler(opt_b := _opt(), rule)
    second.load_state_dict(torch.load(_saved(saved), weights_only=True))
    tail = run(second, opt_b, 330, 600)
    assert head + tail == reference  # bit for bit, through the reductions after the resume
    assert second.schedule.reductions == whole.schedule.reductions
    assert second.state_dict() == whole.state_dict()


def _saved(state):
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return buf


def test_an_older_state_without_a_plateau_record_loads_with_none():
    sched = _advanced(Plateau(BASE, patience=0, mode="max"), 250)
    sched.observe(1.0), sched.observe(0.5)
    assert sched.schedule.reductions == (Reduction(250, 0.1),)
    sched.load_state_dict({"step": 200, "spec_hash": sched.spec_hash})
    assert sched.schedule.reductions == () and sched.optimizer.param_groups[0]["lr"] == BASE(200)
    assert sched._plateau.decider.evaluations == 0
    plain = LRTempoScheduler(_opt(), BASE)
    plain.load_state_dict(sched.state_dict() | {"spec_hash": plain.spec_hash})  # a plateau record is ignored
    assert "plateau" not in plain.state_dict()


@pytest.mark.parametrize(("plateau", "message"), [
    ({"reductions": [[300, 0.5]], "decider": {}}, "reduction at step 300, past its step 200"),
    ({"reductions": [[30, 2.0]]}, "factor must be a number from 0 to 1"),
    ({"reductions": [[30, 0.5]], "decider": {"best": "x"}}, "best must be a number"),
    ({"reductions": [], "decider": {"best": 1.0, "num_bad_epochs": -1}}, "num_bad_epochs must be a whole number"),
    ("nonsense", "must hold a list of reductions"),
])
def test_a_bad_plateau_state_is_refused_and_changes_nothing(plateau, message):
    sched = _advanced(Plateau(BASE, patience=0, mode="max"))
    sched.observe(1.0), sched.observe(0.5)
    before = sched.state_dict()
    assert before["plateau"]["reductions"] == [[200, 0.1]]
    with pytest.raises(ValueError, match=message):
        sched.load_state_dict({"step": 200, "spec_hash": sched.spec_hash, "plateau": plateau})
    assert sched.state_dict() == before


def test_observe_needs_a_plateau_schedule_and_a_number():
    with pytest.raises(TypeError, match="observe\\(\\) needs a schedule of type: plateau .*type: warmup_cosine"):
        LRTempoScheduler(_opt(), BASE).observe(1.0)
    sched = LRTempoScheduler(_opt(), Plateau(BASE))
    for bad in ("0.5", torch.ones(3), None):
        with pytest.raises(TypeError, match="loss must be a number or a one-element tensor"):
            sched.observe(bad)
    assert sched._plateau.decider.evaluations == 0


def test_a_nested_plateau_or_another_unit_is_refused_by_the_adapter(monkeypatch):
    with pytest.raises(ValueError, match="outermost"):
        LRTempoScheduler(_opt(), Warmup(Plateau(CosineDecay(0.1, 100)), 5))
    monkeypatch.setattr(Plateau, "unit", "tokens", raising=False)
    with pytest.raises(ValueError, match="supports unit: steps only \\(got unit: tokens\\)"):
        LRTempoScheduler(_opt(), Plateau(BASE))


def test_a_changed_plateau_schedule_keeps_the_record_and_the_rules_state():
    sched = _advanced(Plateau(BASE, patience=0, mode="max"))
    sched.observe(1.0), sched.observe(0.5)
    changed = Plateau(Scale(BASE, 2.0), patience=0, mode="max", factor=0.5)
    again = LRTempoScheduler(_opt(), changed, allow_schedule_change=True)
    again.load_state_dict(sched.state_dict())
    assert again.schedule.reductions == (Reduction(200, 0.1),) and again.schedule.base == changed.base
    assert again.optimizer.param_groups[0]["lr"] == 2.0 * BASE(200) * 0.1
    assert again._plateau.decider.state_dict() == sched._plateau.decider.state_dict()


def test_a_plateau_under_a_unit_is_refused_naming_the_unit_and_unit_steps_is_the_plain_rule():
    """The spec's ``unit`` is a key of the spec, not a schedule around it: the message names ``unit``, never a
    class; ``unit: steps`` (the default, said aloud) is the plain plateau rule."""
    from lrtempo.schedules import InUnit

    for unit in ("samples", "tokens"):
        wrapped = InUnit(Plateau(BASE), unit)
        for refuse in (lambda: find_plateau(wrapped), lambda: LRTempoScheduler(_opt(), wrapped)):
            with pytest.raises(ValueError) as info:
                refuse()
            assert str(info.value) == (f"type: plateau counts optimizer updates (its reductions are decided at "
                                       f"evaluations and recorded at update counts), so it takes no unit of samples "
                                       f"or tokens (got unit: {unit}); remove unit")
    assert find_plateau(InUnit(Plateau(BASE), "steps")) == Plateau(BASE)
    with pytest.raises(ValueError, match=r"inside type: clamp\)") as info:
        find_plateau(InUnit(build_schedule({"type": "clamp", "min_lr": 0.0, "schedule": {
            "type": "plateau", "base": {"type": "constant", "lr": 0.1}}}), "tokens"))
    spec = {"type": "plateau", "unit": "steps", "base": schedule_to_spec(BASE)}
    assert build_schedule(spec) == Plateau(BASE) and spec_hash(build_schedule(spec)) == spec_hash(Plateau(BASE))


@pytest.mark.parametrize("command", ["show", "values", "plot", "lint", "budget", "train"])
def test_every_command_refuses_a_plateau_under_a_unit_in_one_line_naming_the_field(tmp_path, capsys, command):
    from lrtempo.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(format_config({"task": "linear", "steps": 10, "eval_every": 5, "schedule": {
        "type": "plateau", "unit": "tokens", "monitor": "loss", "base": {"type": "constant", "lr": 0.01}}}, "yaml"))
    extra = ["--out", str(tmp_path / "runs")] if command == "train" else []
    assert main([command, str(cfg), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "InUnit" not in err, err
    assert "schedule.unit: type: plateau counts optimizer updates" in err and "(got unit: tokens)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]
