"""Each lint rule: a config that triggers it and one that does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lrtempo.analysis import exit_status, lint_mapping
from lrtempo.analysis._lint import RULES, SEVERITY_ORDER
from lrtempo.cli import main


def rules(data, **kw):
    return {f.rule for f in lint_mapping(data, **kw)}


WC = {"type": "warmup_cosine", "peak_lr": 3e-4, "min_lr": 3e-5, "total_steps": 20_000, "warmup_steps": 400}

CASES = [
    ("LR001", {**WC, "min_lr": 0.0}, WC),
    ("LR002", {**WC, "warmup_steps": 20}, WC),
    ("LR003", {**WC, "warmup_steps": 4000}, WC),
    ("LR004", {"task": "charlm", "steps": 300, "schedule": {**WC, "warmup_steps": 400}},
     {"task": "charlm", "steps": 20_000, "schedule": WC}),
    ("LR005", WC, {**WC, "warmup_start_lr": 1e-6}),
    ("LR006", {"type": "join", "pieces": [
        {"schedule": {"type": "linear", "start_lr": 1e-6, "end_lr": 3e-4, "steps": 400}, "steps": 400},
        {"schedule": {"type": "constant", "lr": 3e-4}, "steps": 19_300},
        {"schedule": {"type": "cosine", "peak_lr": 3e-4, "min_lr": 3e-5, "decay_steps": 300}}]}, WC),
    ("LR007", {"type": "wsd", "peak_lr": 3e-4, "min_lr": 3e-6, "total_steps": 20_000, "warmup": 0.02,
               "decay": 0.02},
     {"type": "wsd", "peak_lr": 3e-4, "min_lr": 3e-6, "total_steps": 20_000, "warmup": 0.02, "decay": 0.2}),
    ("LR008", {"task": "linear", "optimizer": {"name": "sgd"}, "data": {"steps_per_epoch": [390, 391]},
               "schedule": {"type": "multistep", "base_lr": 0.1, "milestones": [11_700, 23_400]}, "steps": 30_000},
     {"task": "linear", "optimizer": {"name": "sgd"}, "data": {"steps_per_epoch": 390},
      "schedule": {"type": "multistep", "base_lr": 0.1, "milestones": [11_700, 23_400]}, "steps": 30_000}),
    ("LR009", {**WC, "total_steps": 200_000, "warmup_steps": 2000},
     {"type": "warmup_plateau_cosine", "peak_lr": 3e-4, "min_lr": 3e-5, "total_steps": 200_000,
      "warmup_steps": 2000, "plateau_steps": 1000}),
    ("LR010", {"type": "compat", "library": "torch", "name": "CosineAnnealingLR", "base_lr": 0.1,
               "kwargs": {"T_max": 100, "eta_min": 0.2}},
     {"type": "compat", "library": "torch", "name": "CosineAnnealingLR", "base_lr": 0.1,
      "kwargs": {"T_max": 100, "eta_min": 0.001}}),
    ("LR011", {"task": "charlm", "data": {"examples": 50_000, "batch_size": 128, "epochs": 10},
               "schedule": {**WC, "total_steps": 5000, "warmup_steps": 200}},
     {"task": "charlm", "data": {"examples": 50_000, "batch_size": 128, "epochs": 10},
      "schedule": {**WC, "total_steps": 3910, "warmup_steps": 200}}),
    ("LR012", {**WC, "peak_lr": 1.0, "min_lr": 0.1}, WC),
    ("LR013", {"task": "charlm", "schedule": WC, "batch_ramp": {"start_batch_size": 8, "increment": 8,
                                                                "ramp_samples": 100_000}},
     {"task": "charlm", "steps": 20_000, "batch_ramp": {"start_batch_size": 8, "increment": 8, "ramp_samples": 100_000},
      "schedule": {**WC, "unit": "samples", "total_steps": 20_000 * 32, "warmup_steps": 400 * 32}}),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_triggers_and_stays_quiet(rule):
    """Every rule of the table (a new one without a case fails here) fires on its case and not on the other."""
    cases = {c[0]: c[1:] for c in CASES}
    assert rule.id in cases, f"no triggering and non-triggering config for {rule.id} in CASES"
    bad, good = cases[rule.id]
    assert rule.id in rules(bad)
    assert rule.id not in rules(good)


def test_every_rule_is_tested():
    assert sorted(r.id for r in RULES) == sorted(c[0] for c in CASES)
    assert len({r.id for r in RULES}) == len(RULES)
    assert all(r.severity in SEVERITY_ORDER and r.summary and r.check.__doc__ for r in RULES)


def test_docs_table_lists_the_rules():
    """docs/tools.md's table of rules has exactly the table's ids and severities."""
    text = (Path(__file__).parents[1] / "docs" / "tools.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (LR\d{3}) \| (\w+) \|", text, flags=re.MULTILINE)
    assert rows == sorted((r.id, r.severity) for r in RULES)


def test_severities_and_fields():
    findings = {f.rule: f for f in lint_mapping({**WC, "min_lr": 0.0, "warmup_steps": 20})}
    assert findings["LR005"].severity == "info" and findings["LR001"].severity == "warning"
    assert findings["LR002"].field == "warmup_steps" and findings["LR001"].field == "min_lr"
    assert all(f.fix for f in findings.values())
    err = lint_mapping(CASES[9][1])
    assert [f.severity for f in err if f.rule == "LR010"] == ["error"]
    assert err[0].field.endswith("kwargs.eta_min")
    assert exit_status(err) == 2 and exit_status(lint_mapping(WC)) == 0
    assert "LR012" not in rules({"type": "constant", "lr": 0.1}, optimizer="sgd")


def test_lint_command_exit_codes(tmp_path, capsys):
    import json

    clean, warn, bad = tmp_path / "clean.json", tmp_path / "warn.json", tmp_path / "bad.json"
    clean.write_text(json.dumps(WC))
    warn.write_text(json.dumps({**WC, "warmup_steps": 20}))
    bad.write_text(json.dumps(CASES[9][1]))
    assert main(["lint", str(clean)]) == 0
    assert "info LR005" in capsys.readouterr().out
    assert main(["lint", str(warn)]) == 1
    assert "warning LR002 warmup_steps:" in capsys.readouterr().out
    assert main(["lint", str(bad), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)[0]["rule"] == "LR010"
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**WC, "warmup_steps": 30_000}))
    assert main(["lint", str(invalid)]) == 2


@pytest.mark.parametrize("name, warmup", [("compat_optax_warmup_cosine.yaml", 100), ("compat_timm_cosine.yaml", 50),
                                          ("compat_torch_sequential.yaml", 5),
                                          ("compat_transformers_cosine.json", 100)])
def test_lint_sees_a_compat_schedules_warmup(name, warmup):
    """A compat spec's warmup (timm's warmup_t, ...) is a warmup to the rules: LR002 does not call it missing."""
    from lrtempo.analysis._lint import _read_run
    from lrtempo.config import read_config_file

    path = Path(__file__).parents[1] / "examples" / name
    assert _read_run(read_config_file(path), str(path), None).warmup == warmup
    assert not any("no warmup" in f.message for f in lint_mapping(read_config_file(path)))


@pytest.mark.parametrize("spec, field, fix", [
    ({**WC}, "warmup_start_lr", "set warmup_start_lr above 0"),
    ({"type": "compat", "library": "optax", "name": "warmup_cosine_decay_schedule",
      "kwargs": {"init_value": 0.0, "peak_value": 1e-3, "warmup_steps": 100, "decay_steps": 1000}},
     "kwargs.init_value", "set init_value above 0"),
    ({"type": "compat", "library": "transformers", "name": "get_cosine_schedule_with_warmup", "base_lr": 5e-5,
      "kwargs": {"num_warmup_steps": 100, "num_training_steps": 1000}}, "schedule", "lrtempo convert"),
])
def test_first_rate_zero_names_the_argument_of_the_specs_own_kind(spec, field, fix):
    """LR005's fix names what sets the first rate in that spec: a compat spec's own library argument."""
    (finding,) = [f for f in lint_mapping(spec) if f.rule == "LR005"]
    assert finding.field == field and fix in finding.fix
    assert "warmup_start_lr (or start_lr)" not in finding.fix


# -- the optimizer: every one a run config may name, read as training reads it --------------------------------------

SHORT_WARMUP = {**WC, "warmup_steps": 20}


@pytest.mark.parametrize("name, adam", [("adamw", True), ("schedulefree", True), ("sgd", False)])
def test_every_trainable_optimizer_is_linted_as_its_family(tmp_path, capsys, name, adam):
    """Schedule-free AdamW divides by Adam's second moment as AdamW does: LR002 holds its warmup to the same
    need, from the same betas, and LR012 to the same usual peak; --optimizer takes every name training does."""
    run = {"task": "linear", "steps": 20_000, "optimizer": {"name": name, "betas": [0.9, 0.95]}}
    assert ("LR002" in rules({**run, "schedule": {**WC, "warmup_steps": 3}})) == adam
    assert "LR002" not in rules({**run, "schedule": {**WC, "warmup_steps": 5}})  # 0.2 / (1 - 0.95) = 4 updates
    assert ("LR012" in rules({**run, "schedule": {**WC, "peak_lr": 0.5, "min_lr": 0.05}})) == adam
    assert ("LR002" in rules(SHORT_WARMUP, optimizer=name)) == adam
    spec = tmp_path / "spec.json"
    spec.write_text(__import__("json").dumps(SHORT_WARMUP))
    assert main(["lint", str(spec), "--optimizer", name]) == (1 if adam else 0)
    assert ("LR002" in capsys.readouterr().out) == adam


@pytest.mark.parametrize("optimizer, message", [
    ({"name": "adam"}, "optimizer.name: must be 'adamw', 'sgd' or 'schedulefree' (got 'adam')"),
    ({"name": "schedulefree", "betas": [0.9, 1.0]}, "optimizer.betas[1]: must be < 1 (got 1.0)"),
    ({"name": "sgd", "nesterov": True}, "optimizer.nesterov: unknown key in the optimizer settings"),
])
def test_an_optimizer_training_refuses_is_refused_by_lint_in_one_line(tmp_path, capsys, optimizer, message):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(__import__("json").dumps({"task": "linear", "steps": 100, "optimizer": optimizer,
                                             "schedule": WC}))
    for command in (["lint", str(cfg)], ["train", str(cfg), "--out", str(tmp_path / "runs"), "--quiet"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (command, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_a_tokens_schedule_is_linted_by_update_where_the_run_gives_its_batch():
    """8,192 tokens of warmup at 32 samples x 64 tokens an update are 4 updates (LR002 counts updates), and the run
    is 20,000 updates, not 40,960,000 steps; without a run config the warmup is in tokens: no count of updates."""
    spec = {**WC, "unit": "tokens", "total_steps": 40_960_000, "warmup_steps": 8192}
    run = {"task": "charlm", "data": {"batch_size": 32, "tokens_per_sample": 64}, "schedule": spec}
    (short,) = [f for f in lint_mapping(run) if f.rule == "LR002"]
    assert "a warmup of 4 updates" in short.message
    assert rules(run) & {"LR009", "LR003"} == set()
    bare = lint_mapping(spec)
    assert {f.rule for f in bare} & {"LR002", "LR009"} == set()  # 8,192 tokens is no number of updates
    assert not any("step" in f.message for f in bare if f.rule != "LR005")
