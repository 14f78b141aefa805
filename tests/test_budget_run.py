"""The budget in a run: ``total:`` in a run config sets the run's length and the schedule's ``auto``; run.json
records the derivation; ``lrtempo budget`` prints it; LR011 compares the schedule with it; every bad input is
one line, exit 2, nothing written."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import pytest

from lrtempo.analysis import lint_mapping
from lrtempo.analysis._lint import RULES, _read_run
from lrtempo.cli import main
from lrtempo.config import ConfigError, format_config
from lrtempo.train import parse_run_config, train
from lrtempo.train._rundir import plan_new
from lrtempo.train.tasks import TASKS, task_data_facts
from lrtempo.train.tasks.charlm import stdlib_text

AUTO_WC = {"type": "warmup_cosine", "peak_lr": 0.1, "min_lr": 0.01, "total_steps": "auto", "warmup": 0.1}


def _run(**over):
    return {"task": "linear", "schedule": AUTO_WC, **over}


# -- run configs --------------------------------------------------------------------------------------------------

def test_charlm_epochs_by_hand():
    """charlm's defaults: 2,000,000 bytes, the last 10% for validation, so 1,800,000 training bytes and
    (1,800,000 - 1) // 64 = 28,124 windows of 64 predictions; 2 epochs at 32 x 2 a update = 2 x ceil(28,124 / 64)
    = 2 x 440 = 880 updates."""
    train_bytes = int(len(stdlib_text(2_000_000)) * 0.9)
    assert train_bytes == 1_800_000
    config = parse_run_config({"task": "charlm", "total": {"epochs": 2}, "accumulation_steps": 2,
                               "schedule": AUTO_WC})
    assert config.steps == 2 * math.ceil(28_124 / 64) == 880
    assert config.schedule.total_steps == 880 and config.schedule.warmup_steps == 88
    assert config.budget.tokens == 2 * 28_124 * 64 and config.budget.samples == 2 * 28_124


def test_tokens_budget_for_charlm_by_hand():
    """2e6 tokens at 32 windows x 64 tokens x 2 micro-batches = 4096 a update: ceil(488.28) = 489 updates."""
    config = parse_run_config({"task": "charlm", "total": {"tokens": 2.0e6}, "accumulation_steps": 2,
                               "schedule": AUTO_WC})
    assert config.steps == 489 and config.schedule.total_steps == 489
    assert config.to_mapping()["total"] == {"tokens": 2_000_000}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_says_what_a_budget_reads_of_its_data(task):
    """An epoch of linear or flipnet is one update (every update sees all of it); quadratic has no data set."""
    facts = task_data_facts(task, {})
    built = TASKS[task]({}, 0)
    assert facts.global_batch == built.tokens_per_micro_batch // facts.tokens_per_sample
    if task == "quadratic":
        assert facts.examples is None
    else:
        assert derive_epochs(task, 3) == (3 if task in ("linear", "flipnet") else 3 * math.ceil(
            facts.examples / facts.batch_size))


def derive_epochs(task: str, epochs: int) -> int:
    return parse_run_config({"task": task, "total": {"epochs": epochs}, "schedule": AUTO_WC}).steps


def test_explicit_steps_run_part_of_the_budget_and_the_schedule_keeps_it():
    config = parse_run_config(_run(total={"steps": 200}, steps=50))
    assert config.steps == 50 and config.schedule.total_steps == 200


def test_without_total_the_run_config_is_as_before():
    config = parse_run_config({"task": "linear", "schedule": {**AUTO_WC, "total_steps": 30}})
    assert config.budget is None and "total" not in config.to_mapping() and config.steps == 30


@pytest.mark.parametrize("over, problem", [
    ({}, "schedule.total_steps: auto takes the run's budget: give the run config total: {steps: N}"),
    ({"total": {"epochs": 3, "steps": 2}}, "total: must be a mapping with exactly one of steps, epochs, samples, "
                                           "tokens"),
    ({"total": {"epochs": 0}}, "total.epochs: must be a whole number >= 1 (got 0)"),
    ({"task": "quadratic", "total": {"epochs": 2}}, "total.epochs: needs the data's size: give data.examples"),
    ({"task": "charlm", "total": {"epochs": 1}, "data": {"batch_size": 64}},
     "data.batch_size: 64 differs from task charlm's 32 (task_options.batch_size), which training uses"),
    ({"task": "linear", "total": {"epochs": 1}, "data": {"batch_size": 8}},
     "data.batch_size: this task's every update sees its whole data (32 samples): give no batch_size"),
    ({"total": {"steps": 5}, "schedule": {"type": "warmup", "warmup_steps": 5, "schedule": {
        "type": "cosine", "peak_lr": 0.1, "decay_steps": "auto"}}},
     "schedule.schedule.decay_steps: auto: the budget leaves 0 steps for this schedule"),
])
def test_a_bad_budget_is_one_problem(over, problem):
    with pytest.raises(ConfigError) as info:
        parse_run_config(_run(**over))
    lines = [str(p) for p in info.value.problems]
    assert len(lines) == 1 and lines[0].startswith(problem), lines


def test_a_resumed_config_yaml_reads_back_to_the_same_run():
    config = parse_run_config(_run(total={"epochs": 4}, accumulation_steps=2))
    again = parse_run_config(config.to_mapping())
    assert again == config and again.budget.steps == config.budget.steps == 4
    assert again.to_mapping() == config.to_mapping()


# -- run.json and the world size --------------------------------------------------------------------------------

def test_run_json_records_the_budget_with_its_inputs_and_the_fields_auto_filled(tmp_path):
    config = parse_run_config({"task": "charlm", "total": {"samples": 100}, "accumulation_steps": 2,
                               "task_options": {"d_model": 16, "n_layer": 1, "n_head": 2, "context": 8,
                                                "batch_size": 4, "max_bytes": 20_000},
                               "schedule": {"type": "clamp", "min_lr": 0.0, "schedule": AUTO_WC},
                               "eval_every": 0, "monitor": False})
    summary = train(config, tmp_path, progress=False)
    meta = json.loads((summary.run_dir / "run.json").read_text())
    budget = meta["budget"]
    assert budget["given"] == {"samples": 100} and budget["steps"] == 13 == math.ceil(100 / 8)
    assert budget["samples"] == 13 * 8 and budget["tokens"] == 13 * 8 * 8 and budget["unit"] == "steps"
    assert budget["filled"] == {"schedule.schedule.total_steps": 13}
    assert budget["inputs"]["global_batch"] == 8 and budget["inputs"]["source"]["batch_size"] == \
        "task_options.batch_size"
    assert budget["derivation"].startswith("ceil(100 samples / 8 per update) = 13 updates")
    assert summary.steps == 13


def test_a_budget_counted_for_another_world_size_is_refused_before_anything_is_written(tmp_path):
    config = parse_run_config({"task": "charlm", "total": {"epochs": 1}, "schedule": AUTO_WC})
    with pytest.raises(ConfigError, match=r"total: the budget \{epochs: 1\} counts 1 process \(data.world_size\) "
                                          r"and this run has 2: set data.world_size: 2"):
        plan_new(config, tmp_path, None, 2)
    assert list(tmp_path.iterdir()) == []
    steps_only = parse_run_config({"task": "charlm", "total": {"steps": 10}, "schedule": AUTO_WC})
    plan, lock = plan_new(steps_only, tmp_path, None, 2)  # steps for a steps schedule: no world size in it
    lock.release()


# -- lrtempo budget, lint, train: the command line ----------------------------------------------------------------

def _write(tmp_path, data, name="run.yaml"):
    path = tmp_path / name
    path.write_text(format_config(data, "yaml"))
    return path


def test_budget_command_prints_the_derivation_then_the_phases(tmp_path, capsys):
    path = _write(tmp_path, {"task": "charlm", "total": {"epochs": 2}, "accumulation_steps": 2,
                             "schedule": AUTO_WC})
    assert main(["budget", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("budget: total {epochs: 2}\n  2 epochs x ceil(28124 / 64) = 2 x 440 = 880 updates\n"
                          "  global batch 64 = 32 x 2 x 1 (batch_size x accumulation_steps x world_size)\n"
                          "  = 880 updates, 56,248 samples, 3,599,872 tokens\n")
    assert "  schedule.total_steps: auto = 880\n" in out and "total 880 steps" in out and "by phase" in out
    assert main(["budget", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_steps"] == 880 and data["budget"]["steps"] == 880
    assert data["budget"]["inputs"]["examples"] == 28_124


def test_budget_command_of_a_bare_spec_has_no_budget(tmp_path, capsys):
    path = _write(tmp_path, {**AUTO_WC, "total_steps": 40}, "spec.yaml")
    assert main(["budget", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget"] is None


@pytest.mark.parametrize("data, message", [
    ({"task": "linear", "total": {"epochs": 1.5}, "schedule": AUTO_WC}, "total.epochs: must be a whole number"),
    ({"task": "linear", "schedule": AUTO_WC}, "schedule.total_steps: auto takes the run's budget"),
    ({"task": "quadratic", "total": {"tokens": 100, "steps": 3}, "schedule": AUTO_WC}, "total: must be a mapping"),
])
@pytest.mark.parametrize("command", [["budget"], ["lint"], ["show"], ["train", "--out", "OUT", "--quiet"]])
def test_bad_budgets_are_one_line_exit_2_and_nothing_is_written(tmp_path, capsys, data, message, command):
    path = _write(tmp_path, data)
    before = path.read_bytes()
    out_dir = tmp_path / "runs"
    argv = [str(out_dir) if a == "OUT" else a for a in command]
    assert main([argv[0], str(path), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert path.read_bytes() == before and not out_dir.exists()


# -- LR011 ----------------------------------------------------------------------------------------------------------

def _lr011(data, **kw):
    return [f for f in lint_mapping(data, **kw) if f.rule == "LR011"]


def test_lr011_compares_the_schedule_with_the_total():
    bad = _lr011(_run(total={"steps": 1000}, schedule={**AUTO_WC, "total_steps": 900}))
    assert len(bad) == 1 and bad[0].field == "total"
    assert bad[0].message == ("the run's budget is 1,000 steps (1000 updates as given), but the schedule ends at "
                              "900 steps.")
    assert "auto" in bad[0].fix and "1000" in bad[0].fix
    assert not _lr011(_run(total={"steps": 1000}, schedule=AUTO_WC))  # auto: agrees by construction
    assert not _lr011(_run(total={"steps": 1000}, schedule={**AUTO_WC, "total_steps": 995}))  # within 1%


def test_lr011_reads_a_tasks_data_through_task_facts():
    run = {"task": "charlm", "total": {"epochs": 1}, "schedule": {**AUTO_WC, "total_steps": 300}}
    with pytest.raises(ConfigError, match="total.epochs: needs the data's size"):
        lint_mapping(run)  # no task facts given: the data section must say
    (finding,) = _lr011(run, task_facts=task_data_facts)
    assert "879 steps (1 epochs x ceil(28124 / 32) = 1 x 879 = 879 updates" in finding.message


def test_lr011_without_total_uses_the_data_sections_epochs():
    data = {"examples": 50_000, "batch_size": 128, "epochs": 10, "drop_last": True}
    (finding,) = _lr011({"task": "charlm", "data": data, "schedule": {**AUTO_WC, "total_steps": 4500}})
    assert finding.field == "data" and "3,900 steps (10 epochs x floor(50000 / 128) = 10 x 390" in finding.message
    assert not _lr011({"task": "charlm", "data": data, "schedule": {**AUTO_WC, "total_steps": 3900}})


@pytest.mark.parametrize("unit, end, fires", [("samples", 1000 * 8, False), ("samples", 900 * 8, True),
                                              ("tokens", 1000 * 8 * 16, False), ("tokens", 1000 * 8, True)])
def test_lr011_compares_in_the_schedules_unit(unit, end, fires):
    """A samples or tokens schedule's end against the budget counted in samples or tokens."""
    run = _read_run({"task": "t", "total": {"steps": 1000}, "data": {"batch_size": 8, "tokens_per_sample": 16},
                     "schedule": {**AUTO_WC, "total_steps": 50}}, None, None)
    run = dataclasses.replace(run, schedule=SimpleNamespace(end_step=end, unit=unit))
    rule = next(r for r in RULES if r.id == "LR011")
    assert bool(rule.findings(run)) == fires


def test_a_resume_keeps_the_budget_in_run_json_and_the_schedules_horizon(tmp_path):
    config = parse_run_config(_run(total={"steps": 6}, steps=3, monitor=False, eval_every=0))
    first = train(config, tmp_path, progress=False)
    before = json.loads((first.run_dir / "run.json").read_text())["budget"]
    assert before["steps"] == 6 and first.steps == 3
    again = train(None, tmp_path, resume=first.run_dir, steps=6, progress=False)
    meta = json.loads((again.run_dir / "run.json").read_text())
    assert meta["budget"] == before and again.steps == 6
    assert parse_run_config(json.loads(json.dumps(config.to_mapping()))).schedule.total_steps == 6


def test_lrtempo_train_runs_a_budgeted_config_and_lints_it_first(tmp_path, capsys):
    path = _write(tmp_path, {"task": "charlm", "total": {"tokens": 1000}, "eval_every": 0, "monitor": False,
                             "task_options": {"d_model": 16, "n_layer": 1, "n_head": 2, "context": 8,
                                              "batch_size": 4, "max_bytes": 20_000},
                             "schedule": {**AUTO_WC, "warmup": 0.0}})
    assert main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    meta = json.loads((tmp_path / "runs" / "run" / "run.json").read_text())
    assert meta["budget"]["steps"] == math.ceil(1000 / 32) == 32
    assert (tmp_path / "runs" / "run" / "log.csv").read_text().count("\n") == 1 + 32


@pytest.mark.parametrize("command", ["budget", "train", "lint"])
def test_a_data_budget_with_a_batch_ramp_is_refused_by_every_command(tmp_path, capsys, command):
    """The budget counts updates at a constant batch; a ramp changes that count, so no command derives it."""
    cfg = tmp_path / "rb.yaml"
    cfg.write_text("task: charlm\ntask_options: {batch_size: 2}\naccumulation_steps: 4\ntotal: {samples: 120}\n"
                   "batch_ramp: {start_batch_size: 2, increment: 2, ramp_samples: 40}\n"
                   "schedule: {type: constant, lr: 0.001}\n")
    capsys.readouterr()
    argv = [command, str(cfg)] + (["--out", str(tmp_path / "runs"), "--quiet"] if command == "train" else [])
    assert main(argv) == 2
    assert "total: a budget in epochs, samples or tokens is counted at a constant batch" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rb.yaml"]


# -- lrtempo budget of a schedule counted in samples or tokens: the table is per update ----------------------------

#: a run config on no built-in task: its data section gives the batch (8 x 2 = 16 samples, 16 x 4 = 64 tokens)
_DATA_RUN = {"task": "own", "accumulation_steps": 2, "data": {"batch_size": 8, "tokens_per_sample": 4}}
_WSD = {"type": "wsd", "peak_lr": 0.01, "min_lr": 0.001, "total_steps": 300, "warmup_steps": 30,
        "decay_steps": 60}


def _budget_json(tmp_path, capsys, data):
    path = _write(tmp_path, data)
    assert main(["budget", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("unit, per_update", [("samples", 16), ("tokens", 64)])
def test_a_unit_schedules_table_counts_updates_and_the_units_they_consume(tmp_path, capsys, unit, per_update):
    """The same curve on a finer clock: durations x the units of an update give, update by update, the steps
    schedule's phases; each row's units are its updates x what an update consumes."""
    by_steps = _budget_json(tmp_path, capsys, {**_DATA_RUN, "steps": 320, "schedule": _WSD})
    scaled = {**_WSD, "unit": unit, **{k: _WSD[k] * per_update for k in ("total_steps", "warmup_steps",
                                                                         "decay_steps")}}
    by_unit = _budget_json(tmp_path, capsys, {**_DATA_RUN, "steps": 320, "schedule": scaled})
    assert by_unit["unit"] == unit and by_unit["total_steps"] == 320 and by_unit[f"total_{unit}"] == 320 * per_update
    assert by_unit["peak_lr"] == by_steps["peak_lr"] == 0.01
    assert by_unit["rows"]["warmup"]["steps"] == 30 and by_unit["rows"]["past_end"]["steps"] == 19
    for name, row in by_steps["rows"].items():
        assert by_unit["rows"][name]["steps"] == row["steps"], name
        assert by_unit["rows"][name][unit] == row["steps"] * per_update, name
    path = _write(tmp_path, {**_DATA_RUN, "steps": 320, "schedule": scaled})
    assert main(["budget", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"total 320 steps ({320 * per_update:,} {unit}), peak lr 0.01, warmup 9.38% of the "
                          f"{unit} (9.38% of the steps)\n")
    (warmup,) = [line.split() for line in out.splitlines() if line.startswith("  warmup ")]
    assert warmup == ["warmup", "30", "9.4%", f"{30 * per_update:,}", "9.4%"]


def test_under_a_batch_ramp_the_table_follows_the_ramps_updates(tmp_path, capsys):
    """The documented ramp: 32 samples an update up to 20,000 samples, so a warmup of 12,800 samples is 400
    updates, 14.9% of the 2,678 updates but 5% of the samples."""
    from lrtempo.config import BatchRamp

    ramp = BatchRamp(start_batch_size=32, increment=32, ramp_samples=60000, batch_size=128)
    data = {"task": "own", "data": {"batch_size": 8}, "accumulation_steps": 16, "steps": 2678,
            "batch_ramp": {"start_batch_size": 32, "increment": 32, "ramp_samples": 60000},
            "schedule": {"type": "warmup_cosine", "unit": "samples", "peak_lr": 3e-3, "min_lr": 3e-4,
                         "total_steps": 256000, "warmup_steps": 12800}}
    b = _budget_json(tmp_path, capsys, data)
    assert b["rows"]["warmup"]["steps"] == ramp.updates_for(12800) == 400
    warmup = b["rows"]["warmup"]
    assert warmup["samples"] == 12800 and warmup["samples_share"] == 12800 / b["total_samples"]
    assert b["total_samples"] == ramp.samples_before(2678) and b["peak_lr"] == 3e-3
    assert sum(r["samples"] for n, r in b["rows"].items() if n in
               ("warmup", "plateau", "early_decay", "mid_decay", "late_decay", "past_end")) == b["total_samples"]


@pytest.mark.parametrize("data, message", [
    ({**_WSD, "unit": "tokens"}, "unit: tokens: the schedule counts tokens, so the table per update needs the "
                                 "run's batch, which a schedule spec does not give"),
    ({"task": "own", "steps": 10, "schedule": {**_WSD, "unit": "samples"}},
     "data.batch_size: missing: the schedule counts samples, so the table per update needs the samples of an update"),
    ({"task": "own", "steps": 10, "data": {"batch_size": 4}, "schedule": {**_WSD, "unit": "tokens"}},
     "data.tokens_per_sample: missing: the schedule counts tokens"),
    ({"task": "linear", "steps": 10, "batch_ramp": {"start_batch_size": 2, "increment": 2, "ramp_samples": 40},
      "schedule": {**_WSD, "unit": "samples"}}, "batch_ramp: task 'linear' trains on one fixed batch"),
])
def test_a_unit_schedules_budget_without_the_batch_is_one_line_exit_2(tmp_path, capsys, data, message):
    path = _write(tmp_path, data)
    assert main(["budget", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]
