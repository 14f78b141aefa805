"""Momentum and weight-decay schedules in `lrtempo train` and `lrtempo values`: the run config keys, the log's
columns, an exact resume, a changed schedule refused on resume with nothing written, and the CLI's curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lrtempo.cli import main
from lrtempo.config import ConfigError, build_schedule, spec_hash
from lrtempo.schedules.compat import momentum_curve

torch = pytest.importorskip("torch")

from lrtempo.rundir import LOG_COLUMNS  # noqa: E402
from lrtempo.train import read_log  # noqa: E402
from lrtempo.train._runconfig import parse_run_config  # noqa: E402

MOMENTUM = {"type": "join", "pieces": [{"schedule": {"type": "linear", "start_lr": 0.95, "end_lr": 0.85,
                                                     "steps": 6}, "steps": 6},
                                       {"schedule": {"type": "linear", "start_lr": 0.85, "end_lr": 0.95,
                                                     "steps": 8}}]}
DECAY = {"type": "linear", "start_lr": 0.05, "end_lr": 0.005, "steps": 10}
CONFIG = f"""\
name: hyper
task: linear
seed: 4
steps: 20
schedule: {{type: warmup_cosine, peak_lr: 0.05, min_lr: 0.001, total_steps: 20, warmup_steps: 3}}
momentum: {json.dumps(MOMENTUM)}
weight_decay: {json.dumps(DECAY)}
optimizer: {{name: sgd, momentum: 0.9, weight_decay: 0.05}}
checkpoint_every: 5
monitor: false
"""
BASE = {"task": "linear", "schedule": {"type": "constant", "lr": 0.1}, "steps": 10}


def _write(tmp_path: Path, text: str = CONFIG, name: str = "hyper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _train(*argv) -> int:
    return main(["train", *map(str, argv), "--quiet"])


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# -- the run config ----------------------------------------------------------------------------------------------

def test_the_specs_are_built_recorded_after_the_schedule_and_absent_when_not_given():
    config = parse_run_config({**BASE, "momentum": MOMENTUM, "weight_decay": DECAY})
    assert config.momentum == build_schedule(MOMENTUM) and config.weight_decay == build_schedule(DECAY)
    mapping = config.to_mapping()
    assert list(mapping)[-3:] == ["schedule", "momentum", "weight_decay"]
    assert spec_hash(mapping["momentum"]) == spec_hash(MOMENTUM)
    plain = parse_run_config(BASE).to_mapping()
    assert "momentum" not in plain and "weight_decay" not in plain  # an older run's config.yaml and hash hold
    assert parse_run_config(mapping) == config


@pytest.mark.parametrize("over, message", [
    ({"momentum": 0.9}, "momentum: must be a schedule spec"),
    ({"momentum": {"type": "linear", "start_lr": 0.9, "end_lr": 1.0, "steps": 5}},
     "momentum: the momentum schedule gives 1.0 at step 5, but Adam's beta1 (betas[0]) must be in [0, 1)"),
    ({"momentum": {"type": "linear", "start_lr": 0.9, "end_lr": 1.2, "steps": 3}, "optimizer": {"name": "sgd"}},
     "momentum: the momentum schedule gives 1.1 at step 2, but SGD's momentum must be in [0, 1]"),
    ({"momentum": {"type": "linear", "start_lr": 0.9, "end_lr": 0.0, "steps": 4},
      "optimizer": {"name": "sgd"}}, None),  # to 0 and staying there: torch's SGD simply stops using momentum
    ({"momentum": {"type": "join", "pieces": [{"schedule": {"type": "constant", "lr": 0.9}, "steps": 3},
                                              {"schedule": {"type": "constant", "lr": 0.0}, "steps": 2},
                                              {"schedule": {"type": "constant", "lr": 0.9}}]},
      "optimizer": {"name": "sgd"}}, "momentum: the momentum schedule comes back to 0 at step 3 and rises again at "
                                     "step 5"),
    ({"weight_decay": {"type": "constant", "lr": -0.1}}, "weight_decay.lr: must be >= 0"),
])
def test_a_schedule_the_optimizer_cannot_take_during_the_run_is_a_config_error(over, message):
    if message is None:
        parse_run_config({**BASE, **over})
        return
    with pytest.raises(ConfigError) as info:
        parse_run_config({**BASE, **over})
    assert any(str(p).startswith(message) for p in info.value.problems), info.value.problems
    # past the run's end the value is never applied: the same spec is fine for a run that stops before it
    if "at step 5" in message and "gives" in message:
        parse_run_config({**BASE, **over, "steps": 5})


# -- lrtempo train -----------------------------------------------------------------------------------------------

def test_the_log_has_the_values_each_update_used_and_the_optimizer_held_them(tmp_path):
    assert _train(_write(tmp_path), "--out", tmp_path) == 0
    run = tmp_path / "hyper"
    rows = read_log(run / "log.csv")
    assert list(rows[0]) == [*LOG_COLUMNS, "momentum", "weight_decay"]
    steps = np.arange(20)
    assert [float(r["momentum"]) for r in rows] == build_schedule(MOMENTUM).at(steps).tolist()
    assert [float(r["weight_decay"]) for r in rows] == build_schedule(DECAY).at(steps).tolist()
    assert (rows[0]["momentum"], rows[6]["momentum"], rows[14]["momentum"], rows[19]["momentum"]) == \
        ("0.95", "0.85", "0.95", "0.95")
    meta = json.loads((run / "run.json").read_text())
    assert meta["log_columns"][-2:] == ["momentum", "weight_decay"]
    ckpt = torch.load(run / "checkpoints" / "step-00000020.pt", weights_only=False)
    groups = ckpt["train_state"]["optimizer"]["param_groups"]
    # the state after update 19 holds the values set for update 20 (the next): past the ends, the floors
    assert [g["momentum"] for g in groups] == [0.95, 0.95] and [g["weight_decay"] for g in groups] == [0.005, 0.0]


def test_a_run_without_them_has_no_such_columns(tmp_path):
    text = "\n".join(line for line in CONFIG.splitlines() if not line.startswith(("momentum", "weight_decay")))
    assert _train(_write(tmp_path, text + "\n"), "--out", tmp_path) == 0
    assert list(read_log(tmp_path / "hyper" / "log.csv")[0]) == list(LOG_COLUMNS)


def test_resume_is_exact(tmp_path):
    cfg = _write(tmp_path)
    assert _train(cfg, "--out", tmp_path / "a") == 0
    assert _train(cfg, "--out", tmp_path / "b", "--steps", "8") == 0
    assert _train("--resume", tmp_path / "b" / "hyper", "--steps", "20") == 0
    whole, resumed = (read_log(tmp_path / d / "hyper" / "log.csv") for d in ("a", "b"))
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in drop} for r in whole]


@pytest.mark.parametrize("edit", [
    lambda text: text.replace('"end_lr": 0.005', '"end_lr": 0.001'),  # another weight-decay spec
    lambda text: text.replace('"start_lr": 0.95', '"start_lr": 0.9'),  # another momentum spec
    lambda text: "\n".join(x for x in text.splitlines() if not x.startswith("momentum")) + "\n",  # dropped
])
def test_a_changed_schedule_on_resume_is_refused_with_nothing_written(tmp_path, edit, capsys):
    cfg = _write(tmp_path)
    assert _train(cfg, "--out", tmp_path, "--steps", "10") == 0
    run = tmp_path / "hyper"
    before = _snapshot(run)
    changed = _write(tmp_path, edit(CONFIG), "changed.yaml")
    capsys.readouterr()
    assert _train(changed, "--resume", run, "--steps", "20") == 2
    err = capsys.readouterr().err
    assert "--allow-schedule-change" in err and err.count("\n") == 1
    assert _snapshot(run) == before


def test_a_run_killed_before_its_first_checkpoint_refuses_a_changed_momentum_too(tmp_path, capsys):
    cfg = _write(tmp_path)
    assert _train(cfg, "--out", tmp_path, "--steps", "3") == 0
    run = tmp_path / "hyper"
    for ckpt in (run / "checkpoints").iterdir():  # as if killed before the first checkpoint: restarts from 0
        ckpt.unlink()
    before = _snapshot(run)
    changed = _write(tmp_path, CONFIG.replace('"start_lr": 0.95', '"start_lr": 0.9'), "changed.yaml")
    capsys.readouterr()
    assert _train(changed, "--resume", run) == 2
    assert "differs from the momentum schedule the run was trained with up to step 0" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_a_changed_weight_decay_schedule_is_taken_with_the_flag_and_recorded(tmp_path):
    cfg = _write(tmp_path)
    assert _train(cfg, "--out", tmp_path, "--steps", "10") == 0
    run = tmp_path / "hyper"
    new_decay = {**DECAY, "end_lr": 0.001}
    changed = _write(tmp_path, CONFIG.replace(json.dumps(DECAY), json.dumps(new_decay)), "changed.yaml")
    assert _train(changed, "--resume", run, "--steps", "20", "--allow-schedule-change") == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["weight_decay_changes"] == [{"step": 10, "from": spec_hash(DECAY), "to": spec_hash(new_decay)}]
    assert meta["schedule_changes"] == [] and "momentum_changes" not in meta
    assert (run / "config.before-step-10.yaml").exists()
    rows = read_log(run / "log.csv")
    assert [float(r["weight_decay"]) for r in rows[10:]] == build_schedule(new_decay).at(np.arange(10, 20)).tolist()
    assert [float(r["weight_decay"]) for r in rows[:10]] == build_schedule(DECAY).at(np.arange(10)).tolist()
    # the run's config.yaml now holds the new spec; the next resume needs no flag
    assert _train("--resume", run, "--steps", "22") == 0


# -- lrtempo values ----------------------------------------------------------------------------------------------

def _values(capsys, *argv):
    code = main(["values", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_values_prints_a_run_configs_momentum_and_weight_decay(tmp_path, capsys):
    cfg = _write(tmp_path)
    code, out, err = _values(capsys, cfg, "--momentum", "--until", "20")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "step,momentum"
    assert [float(line.split(",")[1]) for line in lines[1:]] == build_schedule(MOMENTUM).at(np.arange(21)).tolist()
    code, out, _ = _values(capsys, cfg, "--weight-decay", "--steps", "0,10,11")
    assert out == f"step,weight_decay\n0,0.05\n10,0.005\n11,{build_schedule(DECAY)(11)!r}\n"


def test_values_momentum_of_a_run_directory_reproduces_its_log(tmp_path, capsys):
    assert _train(_write(tmp_path), "--out", tmp_path) == 0
    run = tmp_path / "hyper"
    capsys.readouterr()
    code, out, _ = _values(capsys, run, "--momentum", "--steps", "0:20")
    assert code == 0
    logged = [r["momentum"] for r in read_log(run / "log.csv")]
    assert [line.split(",")[1] for line in out.splitlines()[1:]] == logged


def test_values_momentum_of_torchs_onecycle_spec_is_torchs_momentum(tmp_path, capsys):
    kwargs = {"max_lr": 0.1, "total_steps": 12}
    spec = _write(tmp_path, json.dumps({"type": "compat", "library": "torch", "name": "OneCycleLR",
                                        "kwargs": kwargs}), "onecycle.json")
    code, out, err = _values(capsys, spec, "--momentum")
    assert code == 0 and err == ""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kwargs)
    expected = []
    for k in range(13):
        expected.append(f"{k},{opt.param_groups[0]['momentum']!r}")
        if k < 12:
            opt.step()
            sched.step()
    assert out.splitlines() == ["step,momentum", *expected]


@pytest.mark.parametrize("text, flag, message", [
    ('{"type": "compat", "library": "torch", "name": "StepLR", "base_lr": 0.1, "kwargs": {"step_size": 2}}',
     "--momentum", "a schedule spec sets no momentum: --momentum prints a run config's `momentum:` schedule"),
    ('{"type": "constant", "lr": 0.1}', "--weight-decay", "a schedule spec sets no weight_decay"),
    ('{"task": "linear", "schedule": {"type": "compat", "library": "torch", "name": "OneCycleLR", '
     '"kwargs": {"max_lr": 0.1, "total_steps": 10}}}', "--momentum",
     "momentum: not given: this run config schedules no momentum (the optimizer keeps its own); its schedule "
     "(torch's OneCycleLR) would set one"),
    ('{"task": "linear", "schedule": {"type": "constant", "lr": 0.1}}', "--weight-decay",
     "weight_decay: not given: this run config schedules no weight_decay"),
    ('{"task": "linear", "schedule": {"type": "constant", "lr": 0.1}, "momentum": {"type": "constant"}}',
     "--momentum", "momentum.lr: missing"),
])
def test_values_without_such_a_schedule_is_one_line_exit_2(tmp_path, capsys, text, flag, message):
    path = _write(tmp_path, text, "c.json")
    code, out, err = _values(capsys, path, flag)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_values_takes_one_of_the_curves(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["values", str(_write(tmp_path)), "--momentum", "--weight-decay"])
    assert info.value.code == 2 and "not allowed with argument --momentum" in capsys.readouterr().err


def test_the_lifecycle_pages_examples_are_run_configs_that_say_what_the_page_says():
    import re

    import yaml

    text = (Path(__file__).parent.parent / "docs" / "lifecycle.md").read_text()
    section = text.split("## Momentum and weight decay schedules", 1)[1].split("\n## ", 1)[0]
    configs = [parse_run_config({"task": "linear", **yaml.safe_load(block)})
               for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    assert len(configs) == 2
    join, onecycle = (c.momentum for c in configs)
    assert (join(0), join(1500), join(5000)) == (0.95, 0.85, 0.95)  # "0.95 -> 0.85 over the warmup, back to 0.95"
    assert configs[0].weight_decay(0) == 0.05 and configs[0].weight_decay(5000) == 0.005
    assert onecycle == momentum_curve(configs[1].schedule)
