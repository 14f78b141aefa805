"""``lrtempo scale`` and ``scale_spec``: a schedule rewritten for another batch size, against hand computations."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from lrtempo.cli import main
from lrtempo.config import ConfigError, build_schedule, read_config_file, scale_rate, scale_spec

EXAMPLES = Path(__file__).parent.parent / "examples"
WC = {"type": "warmup_cosine", "peak_lr": 0.003, "min_lr": 0.0003, "total_steps": 300, "warmup_steps": 30}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _half_up(d: int, b: int, b2: int) -> int:
    """The rounding rule, written out: d * b / b2 rounded half up, at least 1 for d >= 1, 0 stays 0."""
    return 0 if d == 0 else max(1, math.floor(Fraction(d * b, b2) + Fraction(1, 2)))


# -- the rules, by hand -------------------------------------------------------------------------------

def test_linear_rule_four_times_the_batch():
    s = scale_spec(WC, 256, 1024, rule="linear")
    c = s.config
    assert (c["peak_lr"], c["min_lr"], c["warmup_start_lr"]) == (0.012, 0.0012, 0.0)
    assert (c["total_steps"], c["warmup_steps"]) == (75, 8)  # 300 / 4; 30 / 4 = 7.5, half up
    assert s.k == 4 and s.unit == "steps"
    assert [str(ch) for ch in s.changes] == ["peak_lr: 0.003 -> 0.012", "total_steps: 300 -> 75",
                                             "warmup_steps: 30 -> 8", "min_lr: 0.0003 -> 0.0012"]
    # 30 updates of 256 covered 7680 samples; 8 of 1024 cover 8192: said
    assert len(s.warnings) == 1 and "7680" in s.warnings[0] and "8192" in s.warnings[0]
    assert build_schedule(c).end_step * 1024 == 300 * 256


def test_sqrt_rule():
    s = scale_spec(WC, 256, 1024, rule="sqrt")
    assert (s.config["peak_lr"], s.config["min_lr"]) == (0.003 * 2.0, 0.0003 * 2.0)
    assert s.config["total_steps"] == 75  # durations do not depend on the rule
    s = scale_spec(WC, 64, 96, rule="sqrt")
    assert s.config["peak_lr"] == 0.003 * math.sqrt(96 / 64)
    assert (s.config["total_steps"], s.config["warmup_steps"]) == (200, 20)


def test_a_smaller_batch_lowers_the_rates_and_lengthens_the_durations_exactly():
    s = scale_spec(WC, 300, 100, rule="linear")
    assert s.config["peak_lr"] == float(Fraction(0.003) / 3)  # the nearest float64 to 0.003 / 3, one rounding
    assert (s.config["total_steps"], s.config["warmup_steps"]) == (900, 90)
    assert s.warnings == ()  # every duration covers exactly the same samples


def test_linear_rate_is_rounded_once():
    # 0.1 * 7 / 3: the product and the quotient in float64 would round twice
    assert scale_rate(0.1, 3, 7, "linear") == float(Fraction(0.1) * 7 / 3)
    assert scale_rate(0.1, 3, 7, "sqrt") == 0.1 * math.sqrt(7 / 3)


@pytest.mark.parametrize(("d", "b", "b2", "want"), [
    (30, 256, 1024, 8),   # 7.5: half up
    (10, 1, 4, 3),        # 2.5: half up, not half to even
    (9, 1, 4, 2),         # 2.25: down
    (11, 1, 4, 3),        # 2.75: up
    (1, 1, 4, 1),         # 0.25: at least 1
    (3, 2, 1, 6),         # a smaller batch: times 2
])
def test_the_rounding_rule(d, b, b2, want):
    spec = {"type": "linear", "start_lr": 1.0, "end_lr": 0.5, "steps": d}
    got = scale_spec(spec, b, b2, rule="linear").config["steps"]
    assert got == want == _half_up(d, b, b2)


def test_zero_stays_zero():
    spec = dict(WC, warmup_steps=0)
    assert scale_spec(spec, 1, 4, rule="linear").config["warmup_steps"] == 0


def test_keep_steps_keeps_the_warmups_and_says_what_they_now_cover():
    s = scale_spec(WC, 256, 1024, rule="linear", warmup="keep-steps")
    assert (s.config["total_steps"], s.config["warmup_steps"]) == (75, 30)
    assert any("kept at 30 steps" in w and "30720" in w and "7680" in w for w in s.warnings)
    wrapped = {"type": "warmup", "warmup_steps": 12, "schedule": {"type": "cosine", "peak_lr": 0.01,
                                                                   "decay_steps": 100}}
    s = scale_spec(wrapped, 1, 2, rule="linear", warmup="keep-steps")
    assert (s.config["warmup_steps"], s.config["schedule"]["decay_steps"]) == (12, 50)
    assert scale_spec(wrapped, 1, 2, rule="linear").config["warmup_steps"] == 6


def test_keep_steps_that_outlasts_the_total_is_refused_naming_the_field():
    spec = dict(WC, total_steps=40)
    with pytest.raises(ConfigError, match=r"warmup_steps.*after rescaling for batch 1024 \(--warmup keep-steps\)"):
        scale_spec(spec, 256, 1024, rule="linear", warmup="keep-steps")


def test_fractions_are_resolved_first():
    spec = {"type": "wsd", "peak_lr": 3e-3, "min_lr": 3e-5, "total_steps": 300, "warmup": 0.1, "decay": 0.2}
    c = scale_spec(spec, 64, 128, rule="linear").config
    assert (c["total_steps"], c["warmup_steps"], c["decay_steps"], c["peak_lr"]) == (150, 15, 30, 6e-3)
    assert "warmup" not in c and "decay" not in c


# -- nested specs -------------------------------------------------------------------------------------

JOIN = {"type": "join", "pieces": [
    {"schedule": {"type": "linear", "start_lr": 0.0, "end_lr": 0.004, "steps": 5}, "steps": 5},
    {"schedule": {"type": "warmup", "warmup_steps": 3, "schedule": {
        "type": "clamp", "min_lr": 0.001, "schedule": {"type": "restarts", "peak_lr": 0.004, "period": 10,
                                                        "min_lr": 0.0005}}}, "steps": 35},
    {"schedule": {"type": "scale", "factor": 0.5, "schedule": {"type": "constant", "lr": 0.001}}}]}


def test_a_join_of_wrappers_and_restarts():
    c = scale_spec(JOIN, 32, 64, rule="linear").config
    p0, p1, p2 = c["pieces"]
    # the boundaries 5 and 40 become 2.5 -> 3 and 20: the pieces 3 and 17 steps
    assert (p0["steps"], p1["steps"]) == (3, 17)
    # inside a piece its durations follow the piece: times 3/5, times 17/35
    assert p0["schedule"]["steps"] == 3 and p0["schedule"]["end_lr"] == 0.008
    warm = p1["schedule"]
    assert warm["warmup_steps"] == _half_up(3, 17, 35) == 1  # 3 * 17 / 35 = 1.46
    clamp = warm["schedule"]
    assert clamp["min_lr"] == 0.002 and clamp.get("max_lr") is None
    restarts = clamp["schedule"]
    assert (restarts["peak_lr"], restarts["min_lr"], restarts["period"]) == (0.008, 0.001, 5)  # 10 * 17/35 = 4.86
    assert restarts["period_mult"] == 1 and restarts["peak_decay"] == 1.0  # factors kept
    assert p2["schedule"]["factor"] == 0.5 and p2["schedule"]["schedule"]["lr"] == 0.002  # a scale's factor kept
    s = build_schedule(c)
    assert s(0) == 0.0 and s(3) == 0.0 and s(20) == 0.001 and s(25) == 0.001


def test_noam_scale_is_its_rate_and_d_model_is_kept():
    c = scale_spec({"type": "noam", "d_model": 512, "warmup_steps": 4000, "scale": 1.0}, 32, 128,
                   rule="sqrt").config
    assert (c["d_model"], c["warmup_steps"], c["scale"]) == (512, 1000, 2.0)


def test_one_cycle_multistep_and_exponential():
    oc = scale_spec({"type": "one_cycle", "max_lr": 0.01, "total_steps": 1000}, 1, 2, rule="linear").config
    assert (oc["max_lr"], oc["total_steps"], oc["div_factor"], oc["pct_start"]) == (0.02, 500, 25.0, 0.3)
    ms = scale_spec({"type": "multistep", "base_lr": 0.1, "milestones": [30, 61, 90], "gamma": 0.1}, 1, 2,
                    rule="linear")
    assert ms.config["milestones"] == [15, 31, 45] and ms.config["gamma"] == 0.1
    assert any("milestones[1]" in w for w in ms.warnings)
    ex = scale_spec({"type": "exponential", "base_lr": 0.1, "decay_rate": 0.5, "decay_steps": 100}, 1, 4,
                    rule="linear").config
    assert (ex["base_lr"], ex["decay_rate"], ex["decay_steps"]) == (0.4, 0.5, 25)


# -- units, compat, run configs ----------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["samples", "tokens"])
def test_a_data_unit_keeps_its_durations_and_scales_only_the_rates(unit):
    spec = {**WC, "unit": unit}
    s = scale_spec(spec, 256, 1024, rule="linear")
    assert s.unit == unit and s.config["unit"] == unit
    assert (s.config["total_steps"], s.config["warmup_steps"], s.config["peak_lr"]) == (300, 30, 0.012)
    assert s.warnings == ()
    assert any(f"unit: {unit}" in line and "kept" in line for line in s.notes())


def test_a_bad_unit_is_one_problem():
    with pytest.raises(ConfigError, match=r"unit: must be steps, samples or tokens \(got 'epochs'\)"):
        scale_spec({**WC, "unit": "epochs"}, 1, 2, rule="linear")


def test_compat_is_refused_at_the_top_and_nested(capsys):
    with pytest.raises(ConfigError, match=r"^a compat schedule .*\(lrtempo convert CONFIG"):
        scale_spec(yaml.safe_load((EXAMPLES / "compat_torch_sequential.yaml").read_text()), 1, 2, rule="linear")
    nested = {"type": "scale", "factor": 1.0, "schedule": {"type": "compat", "library": "torch", "name": "StepLR",
                                                           "base_lr": 0.1, "kwargs": {"step_size": 10}}}
    with pytest.raises(ConfigError, match=r"^schedule: a compat schedule"):
        scale_spec(nested, 1, 2, rule="linear")
    code, out, err = run(capsys, "scale", EXAMPLES / "compat_torch_sequential.yaml", "--batch-size", 1,
                         "--to-batch-size", 2, "--rule", "linear")
    assert code == 2 and out == "" and err.count("\n") == 1 and "lrtempo convert" in err


def test_a_run_config_comes_back_whole():
    data = read_config_file(EXAMPLES / "run_config.yaml")
    s = scale_spec(data, 32, 128, rule="sqrt")
    c = s.config
    assert {k: v for k, v in c.items() if k not in ("schedule", "steps")} == \
        {k: v for k, v in data.items() if k not in ("schedule", "steps")}
    assert c["steps"] == 75 and c["schedule"]["total_steps"] == 75
    assert c["schedule"]["peak_lr"] == 3e-3 * 2.0 and c["schedule"]["warmup_steps"] == 8  # 30 / 4 = 7.5
    assert "steps: 300 -> 75" in [str(ch) for ch in s.changes]
    assert "schedule.peak_lr: 0.003 -> 0.006" in [str(ch) for ch in s.changes]
    assert not any("usual" in line for line in s.notes())  # adamw with sqrt: the usual rule
    assert any("adamw, for which the sqrt rule" in line for line in scale_spec(data, 32, 64, rule="linear").notes())


def test_a_run_configs_momentum_schedule_keeps_its_values_and_moves_its_durations():
    data = {"task": "charlm", "schedule": WC, "momentum": {"type": "cosine", "peak_lr": 0.95, "min_lr": 0.85,
                                                           "decay_steps": 300}}
    c = scale_spec(data, 1, 4, rule="linear").config
    assert (c["momentum"]["peak_lr"], c["momentum"]["min_lr"], c["momentum"]["decay_steps"]) == (0.95, 0.85, 75)


def test_bad_arguments_are_one_problem_each():
    with pytest.raises(ConfigError) as exc:
        scale_spec(WC, 0, True, rule="cubic", warmup="none")
    text = exc.value.one_line()
    for part in ("batch_size: must be a whole number >= 1", "to_batch_size: must be", "rule: must be one of "
                 "linear, sqrt (got 'cubic')", "warmup: must be one of keep-samples, keep-steps"):
        assert part in text
    with pytest.raises(ConfigError, match="not a schedule spec"):
        scale_spec({"lr": 1.0}, 1, 2, rule="linear")


@given(d=st.integers(1, 10**6), b=st.integers(1, 4096), b2=st.integers(1, 4096),
       peak=st.floats(1e-8, 10.0, allow_nan=False))
@example(d=30, b=256, b2=1024, peak=0.003)
@example(d=1, b=1, b2=2, peak=1.0)  # 1 step stays 1 (at least 1), yet covers twice the samples: a warning
def test_every_duration_and_rate_follows_the_stated_rules(d, b, b2, peak):
    spec = {"type": "cosine", "peak_lr": peak, "min_lr": peak / 10, "decay_steps": d}
    s = scale_spec(spec, b, b2, rule="linear")
    assert s.config["decay_steps"] == _half_up(d, b, b2)
    assert abs(s.config["decay_steps"] * b2 - d * b) <= max(b2 / 2, b2 - d * b)  # half a step, or the 1-step floor
    assert s.config["peak_lr"] == float(Fraction(peak) * Fraction(b2, b))
    assert bool(s.warnings) == (s.config["decay_steps"] * b2 != d * b)


# -- the command --------------------------------------------------------------------------------------

def test_cli_stdout_is_the_spec_and_stderr_the_notes(capsys, tmp_path):
    cfg = tmp_path / "wc.yaml"
    cfg.write_text(yaml.safe_dump(WC))
    code, out, err = run(capsys, "scale", cfg, "--batch-size", 256, "--to-batch-size", 1024, "--rule", "linear")
    assert code == 0
    assert yaml.safe_load(out) == scale_spec(WC, 256, 1024, rule="linear").config
    assert "k = 4; linear rule: every rate x 4" in err and "peak_lr: 0.003 -> 0.012" in err
    assert "warning: warmup_steps" in err and "Goyal et al. 2017" in err and "Malladi et al. 2022" in err


def test_cli_output_file_and_the_input_is_never_replaced(capsys, tmp_path):
    cfg = tmp_path / "wc.yaml"
    cfg.write_text(yaml.safe_dump(WC))
    before = cfg.read_text()
    args = ("--batch-size", 2, "--to-batch-size", 1, "--rule", "sqrt")
    out_file = tmp_path / "big.json"
    code, out, err = run(capsys, "scale", cfg, *args, "-o", out_file)
    assert code == 0 and out == "" and f"wrote {out_file}" in err
    assert build_schedule(yaml.safe_load(out_file.read_text())).end_step == 600
    for same in (cfg, tmp_path / "." / "wc.yaml"):
        code, out, err = run(capsys, "scale", cfg, *args, "-o", same)
        assert code == 2 and err.count("\n") == 1 and "is the input" in err
    assert cfg.read_text() == before
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"task": "charlm", "schedule": WC}))
    code, _, err = run(capsys, "scale", run_dir, *args, "-o", run_dir / "config.yaml")
    assert code == 2 and "is the input" in err
    code, _, err = run(capsys, "scale", cfg, *args, "-o", tmp_path / "x.txt")
    assert code == 2 and err.count("\n") == 1 and ".yaml, .yml, .json or .toml" in err


@pytest.mark.parametrize("argv", [
    ("--batch-size", 0, "--to-batch-size", 2, "--rule", "linear"),
    ("--batch-size", 1, "--to-batch-size", 2),
    ("--batch-size", 1, "--to-batch-size", 2, "--rule", "cubic"),
    ("--batch-size", 1, "--to-batch-size", 2, "--rule", "linear", "--warmup", "keep"),
])
def test_cli_bad_arguments_exit_2_on_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["scale", str(EXAMPLES / "warmup_cosine.yaml"), *map(str, argv)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scale", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for part in ("--batch-size B", "--to-batch-size B2", "--rule {linear,sqrt}", "--warmup {keep-samples,keep-steps}",
                 "Goyal et al. 2017", "Malladi et al. 2022", "unit: samples or tokens", "rounded half up"):
        assert part in text


# -- auto: a field that takes the run's budget stays auto ------------------------------------------------------

AUTO_WSD = {"type": "wsd", "peak_lr": 0.003, "min_lr": 0.0003, "total_steps": "auto", "warmup": 0.05, "decay": 0.2}


def _epochs_run(batch_size: int) -> dict:
    """1000 examples of a task of the run's own, at ``batch_size`` x 2 samples an update, for 2 epochs."""
    return {"task": "own", "total": {"epochs": 2}, "accumulation_steps": 2,
            "data": {"examples": 1000, "batch_size": batch_size}, "schedule": AUTO_WSD}


def test_auto_under_a_data_budget_stays_auto_and_the_budget_follows_the_new_batch():
    """2 x ceil(1000 / 32) = 64 updates at 32 samples; at 128: 2 x ceil(1000 / 128) = 16 = 64 / 4, so the kept
    auto fills exactly the rescaled total, and the config, once its batch is set to 128, trains the rescaled
    schedule."""
    s = scale_spec(_epochs_run(16), 32, 128, rule="sqrt")
    c = s.config
    assert c["total"] == {"epochs": 2} and c["schedule"]["total_steps"] == "auto"
    # 0.05 x 64 = 3.2 and 0.2 x 64 = 12.8 resolve to 3 and 13 at the old batch, then 3 / 4 and 13 / 4, half up
    assert (c["schedule"]["warmup_steps"], c["schedule"]["decay_steps"]) == (1, 3)
    assert c["schedule"]["peak_lr"] == 0.006 and not any("total_steps" in w for w in s.warnings)
    assert ("schedule.total_steps: auto kept: the budget total {epochs: 2} fills it with 16 at batch 128 (64 at 32)"
            in s.notes())
    filled = scale_spec({**AUTO_WSD, "total_steps": 64}, 32, 128, rule="sqrt").config
    at_new_batch = build_schedule(c["schedule"] | {"total_steps": 16})
    assert at_new_batch == build_schedule(filled)
    from lrtempo.config._horizon import run_budget

    horizon, spec = run_budget({**c, "data": {"examples": 1000, "batch_size": 64}}, c["schedule"], "schedule", [])
    assert horizon.steps == 16 and build_schedule(spec) == at_new_batch


def test_auto_that_the_new_batch_fills_with_another_count_is_a_warning():
    """1000 examples at 10 an update: 100 updates; at 30: ceil(1000 / 30) = 34, but 100 / 3 rounds to 33."""
    run = {"task": "own", "total": {"epochs": 1}, "data": {"examples": 1000, "batch_size": 10},
           "schedule": {"type": "cosine", "peak_lr": 0.1, "decay_steps": "auto"}}
    s = scale_spec(run, 10, 30, rule="linear")
    assert s.config["schedule"]["decay_steps"] == "auto"
    assert s.warnings == ("schedule.decay_steps: auto takes 34 at batch 30, where the rescaled schedule has 33, the "
                          "length its other rescaled durations were made for; give 33 instead of auto to keep them in "
                          "step, or check the data section for the new batch",)


def test_a_steps_budget_counts_updates_so_it_is_divided_and_auto_stays():
    run = {"task": "own", "total": {"steps": 1000}, "steps": 500,
           "schedule": {"type": "warmup", "warmup_steps": 100, "schedule": {"type": "cosine", "peak_lr": 0.01,
                                                                            "decay_steps": "auto"}}}
    s = scale_spec(run, 64, 256, rule="linear")
    c = s.config
    assert c["total"] == {"steps": 250} and c["steps"] == 125
    assert c["schedule"]["warmup_steps"] == 25 and c["schedule"]["schedule"]["decay_steps"] == "auto"
    assert "total.steps: 1000 -> 250" in [str(ch) for ch in s.changes] and not s.warnings
    assert any(line.startswith("schedule.schedule.decay_steps: auto kept") and "225 at batch 256 (900 at 64)" in line
               for line in s.notes())
    assert scale_spec({"task": "own", "total": {"steps": 1000}, "schedule": WC}, 64, 256,
                      rule="linear").config["total"] == {"steps": 250}  # with no auto in the spec too


def test_auto_in_a_samples_schedule_stays_auto_and_its_durations_are_kept():
    run = {"task": "own", "total": {"samples": 6400}, "data": {"batch_size": 64},
           "schedule": {"type": "warmup_cosine", "unit": "samples", "peak_lr": 0.01, "total_steps": "auto",
                        "warmup_steps": 640}}
    s = scale_spec(run, 64, 256, rule="linear")
    assert s.config["schedule"] == {**run["schedule"], "peak_lr": 0.04, "min_lr": 0.0, "warmup_start_lr": 0.0}
    assert s.config["total"] == {"samples": 6400} and not s.warnings


def test_cli_scales_a_run_config_with_auto_and_refuses_auto_without_a_budget(capsys, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(_epochs_run(16)))
    code, out, err = run(capsys, "scale", cfg, "--batch-size", 32, "--to-batch-size", 128, "--rule", "sqrt")
    assert code == 0 and yaml.safe_load(out)["schedule"]["total_steps"] == "auto" and "auto kept" in err
    for data in ({**AUTO_WSD}, {"task": "own", "schedule": AUTO_WSD}):
        cfg.write_text(yaml.safe_dump(data))
        out_file = tmp_path / "out.yaml"
        code, out, err = run(capsys, "scale", cfg, "--batch-size", 32, "--to-batch-size", 128, "--rule", "sqrt",
                             "-o", out_file)
        assert code == 2 and err.count("\n") == 1 and "total_steps: auto takes the run's budget" in err, err
        assert not out_file.exists()
