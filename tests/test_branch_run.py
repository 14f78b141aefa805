"""``lrtempo branch`` on real runs: for each kind, the branch's first rows are the parent's bytes, the rate at the
branch point is continuous or jumps as recorded, the tail follows the branch's spec exactly, the parent is never
changed, and SIGKILLs inside the branch followed by ``lrtempo train --resume`` give the uninterrupted branch's log.
Also the refusals (one line, exit 2, nothing written) and checkpoint retention (``keep_checkpoints``,
``checkpoint_at``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402
from lrtempo.config import ConfigError, build_schedule, read_config_file, spec_hash  # noqa: E402
from lrtempo.rundir import RunLock  # noqa: E402
from lrtempo.train import load_checkpoint, parse_run_config, read_log, save_checkpoint  # noqa: E402
from test_faults import _server, _snapshot  # noqa: E402

PARENT = """\
name: p
task: quadratic
seed: 4
schedule: {type: wsd, peak_lr: 0.2, min_lr: 0.002, total_steps: 80, warmup_steps: 6, decay_steps: 24}
optimizer: {name: sgd, momentum: 0.9}
checkpoint_every: 10
keep_checkpoints: 2
checkpoint_at: [25, 60]
eval_every: 0
"""
#: kind -> (the branch's arguments, its step, two kill points: before its first checkpoint and after one)
KINDS = {
    "cooldown": (["--cooldown", "10", "--shape", "1-sqrt"], 25, (27, 32)),
    "extend": (["--extend", "100"], 60, (62, 73)),
    "rewarm": (["--rewarm", "4", "--peak", "0.3"], 60, (62, 73)),
    "rewind": (["--rewind", "30"], 60, (62, 73)),
}
COMPARED = ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens", "skipped_updates", "phase", "trap_status",
            "effective_lr_median", "effective_lr_ratio", "update_ratio", "momentum_alignment")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The parent, then for each kind a branch trained straight through and one killed twice and resumed."""
    folder = tmp_path_factory.mktemp("branch")
    cfg = folder / "p.yaml"
    cfg.write_text(PARENT)
    assert main(["train", str(cfg), "--out", str(folder), "--quiet"]) == 0
    parent = folder / "p"
    before = _snapshot(parent)
    made = {}
    for kind, (args, at, _) in KINDS.items():
        for which in ("straight", "killed"):
            out = folder / f"{kind}-{which}"
            assert main(["branch", str(parent), "--at", str(at), "--out", str(out), *args]) == 0
            made[kind, which] = out
    fresh = {kind: (_lines(made[kind, "straight"] / "log.csv"),
                    json.loads((made[kind, "straight"] / "run.json").read_text()),
                    (made[kind, "straight"] / "checkpoints" / f"step-{at:08d}.pt").read_bytes())
             for kind, (_, at, _) in KINDS.items()}
    jobs = []
    for kind, (_, _, (first, second)) in KINDS.items():
        killed = made[kind, "killed"]
        jobs += [(("train", "--resume", killed), ("logged", first, "SIGKILL")),
                 (("train", "--resume", killed), ("logged", second, "SIGKILL")),
                 (("train", "--resume", killed), None),
                 (("train", "--resume", made[kind, "straight"]), None)]
    results = _server(jobs, folder)
    return {"parent": parent, "before": before, "made": made, "fresh": fresh, "results": results}


def test_the_parent_keeps_its_newest_checkpoints_and_those_of_checkpoint_at(runs):
    kept = sorted(p.name for p in (runs["parent"] / "checkpoints").iterdir())
    assert kept == ["step-00000025.pt", "step-00000060.pt", "step-00000070.pt", "step-00000080.pt"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_branch_starts_as_the_parent_was_and_follows_its_new_spec(runs, kind):
    _, at, _ = KINDS[kind]
    parent, branch = runs["parent"], runs["made"][kind, "straight"]
    parent_log = _lines(parent / "log.csv")
    fresh_log, meta, checkpoint = runs["fresh"][kind]
    assert fresh_log == parent_log[: at + 1]  # the header and the rows of steps 0..at-1, the same bytes
    assert checkpoint == (parent / "checkpoints" / f"step-{at:08d}.pt").read_bytes()
    schedule = build_schedule(read_config_file(branch / "config.yaml")["schedule"])
    parent_schedule = build_schedule(read_config_file(parent / "config.yaml")["schedule"])
    record = meta["branch"]
    assert record["at_step"] == at and record["kind"] == kind and Path(record["parent"]) == parent.resolve()
    assert record["parent_hash"] == spec_hash(parent_schedule) == schedule.parent_hash
    assert record["jump"] == schedule(at) - parent_schedule(at)
    if kind == "rewind":
        assert record["jump"] == parent_schedule(30) - parent_schedule(at) != 0.0
    else:
        assert record["jump"] == 0.0
    rows = read_log(branch / "log.csv")
    end = schedule.end_step
    assert [int(r["step"]) for r in rows] == list(range(end))
    assert _lines(branch / "log.csv")[: at + 1] == parent_log[: at + 1]  # still, after training the branch
    lrs = np.array([float(r["lr"]) for r in rows])
    assert lrs.tolist() == schedule.at(np.arange(end)).tolist()  # the whole curve is the branch's spec, exactly
    assert lrs[at] == parent_schedule(at) + record["jump"]
    assert lrs[:at].tolist() == parent_schedule.at(np.arange(at)).tolist()
    if kind == "cooldown":
        assert lrs[at + 10 - 1] > 0.002 == schedule(at + 10) and lrs[at] == 0.2
        assert lrs[at + 4] == pytest.approx(0.002 + (0.2 - 0.002) * (1 - np.sqrt(4 / 10)), rel=1e-14)
    summary = json.loads((branch / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == end


@pytest.mark.parametrize("kind", KINDS)
def test_sigkills_inside_a_branch_then_resume_give_the_uninterrupted_branch(runs, kind):
    index = list(KINDS).index(kind) * 4
    first, second, resumed, straight = runs["results"][index: index + 4]
    assert first[0] == second[0] == -9, (first[1], second[1])
    assert resumed[0] == 0 and straight[0] == 0, (resumed[1], straight[1])
    killed, ref = runs["made"][kind, "killed"], runs["made"][kind, "straight"]
    ours, theirs = read_log(killed / "log.csv"), read_log(ref / "log.csv")
    assert [r["step"] for r in ours] == [r["step"] for r in theirs]
    assert [{c: r[c] for c in COMPARED} for r in ours] == [{c: r[c] for c in COMPARED} for r in theirs]


def test_the_parent_is_never_changed(runs):
    assert _snapshot(runs["parent"]) == runs["before"]


def test_show_and_values_on_a_branch_give_the_whole_curve(runs, capsys):
    branch = runs["made"]["rewind", "straight"]
    capsys.readouterr()
    assert main(["values", str(branch), "--steps", "0:110"]) == 0
    out = capsys.readouterr().out.split()
    lrs = [float(line.split(",")[1]) for line in out[1:]]
    assert lrs == [float(r["lr"]) for r in read_log(branch / "log.csv")]


# -- refusals: one line, exit 2, nothing written --------------------------------------------------------------------


def _refused(capsys, runs, tmp_path, *args) -> str:
    parent = runs["parent"]
    before = _snapshot(parent)
    listing = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    code = main(["branch", *map(str, args)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lrtempo: error: "), err
    assert _snapshot(parent) == before and sorted(p.name for p in tmp_path.iterdir()) == listing
    return err


def test_refusals_name_the_problem_and_write_nothing(runs, tmp_path, capsys):
    parent = runs["parent"]
    new = tmp_path / "nested" / "b"
    err = _refused(capsys, runs, tmp_path, parent, "--at", 30, "--out", new, "--cooldown", 5)
    assert "has no checkpoint of step 30; the steps that have one: 25, 60, 70, 80" in err
    assert not (tmp_path / "nested").exists()
    (tmp_path / "taken").mkdir()
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", tmp_path / "taken", "--cooldown", 5)
    assert "taken exists: a branch goes into a new folder" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", new, "--cooldown", 5, "--to", 0.5)
    assert "--to: must be <= the rate at step 25, 0.2, for a cooldown (got 0.5)" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", new, "--extend", 25)
    assert "--extend: must be >= 26 (got 25)" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", new, "--rewind", 25)
    assert "--rewind: must be < at_step (25)" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", new, "--rewarm", 5)
    assert "--rewarm needs --peak LR" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", new, "--extend", 90, "--shape", "cosine")
    assert "--shape goes with --cooldown" in err
    err = _refused(capsys, runs, tmp_path, tmp_path, "--at", 25, "--out", new, "--extend", 90)
    assert "holds no lrtempo run" in err
    err = _refused(capsys, runs, tmp_path, parent, "--at", 25, "--out", parent / "inside", "--extend", 90)
    assert "is inside the parent run" in err


def _copy_parent(runs, tmp_path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(runs["parent"], copy)
    return copy


def test_a_branch_point_past_the_log_or_a_log_off_the_schedule_is_refused(runs, tmp_path, capsys):
    copy = _copy_parent(runs, tmp_path)
    lines = _lines(copy / "log.csv")
    (copy / "log.csv").write_text("\n".join(lines[:21]) + "\n")  # rows of steps 0..19 only
    err = _refused(capsys, runs, tmp_path, copy, "--at", 25, "--out", tmp_path / "b", "--cooldown", 5)
    assert "does not hold the rows of steps 0..24 (it has 20 before step 25)" in err
    cells = lines[4].split(",")
    cells[1] = repr(float(cells[1]) * 2)
    (copy / "log.csv").write_text("\n".join([*lines[:4], ",".join(cells), *lines[5:]]) + "\n")
    err = _refused(capsys, runs, tmp_path, copy, "--at", 25, "--out", tmp_path / "b", "--cooldown", 5)
    assert "at step 3 but the schedule of the checkpoint of step 25 gives" in err and "np.float64" not in err


def test_a_branch_can_be_made_while_the_parent_run_holds_its_lock(runs, tmp_path, capsys):
    with RunLock(runs["parent"]):
        assert main(["branch", str(runs["parent"]), "--at", "60", "--out", str(tmp_path / "b"), "--extend",
                     "120"]) == 0
    assert "lrtempo train --resume" in capsys.readouterr().out
    assert (tmp_path / "b" / "checkpoints" / "step-00000060.pt").exists()


# -- retention ------------------------------------------------------------------------------------------------------


def test_retention_keeps_the_newest_n_or_all_and_every_protected_step(tmp_path):
    for step in range(1, 9):
        save_checkpoint(tmp_path / "a", step, {}, keep=2, protect=(3, 5))
        save_checkpoint(tmp_path / "b", step, {}, keep=None)
    assert [p.name[5:13] for p in sorted((tmp_path / "a").iterdir())] == ["00000003", "00000005", "00000007",
                                                                            "00000008"]
    assert len(list((tmp_path / "b").iterdir())) == 8
    assert load_checkpoint(tmp_path / "a" / "step-00000003.pt")["step"] == 3


BASE = {"task": "quadratic", "schedule": {"type": "constant", "lr": 0.1}, "steps": 100}


@pytest.mark.parametrize(("over", "message"), [
    ({"keep_checkpoints": "al"}, "keep_checkpoints: must be a number or 'all' (got 'al'); did you mean 'all'?"),
    ({"keep_checkpoints": 0}, "keep_checkpoints: must be >= 1 (got 0)"),
    ({"keep_checkpoints": 2.5}, "keep_checkpoints: must be a whole number (got 2.5)"),
    ({"checkpoint_at": 5}, "checkpoint_at: must be a list (got 5"),
    ({"checkpoint_at": [5, 0]}, "checkpoint_at[1]: must be >= 1 (got 0)"),
    ({"checkpoint_at": [5, 101]}, "checkpoint_at[1]: must be <= steps, the run's 100 updates (got 101)"),
])
def test_bad_retention_settings_are_refused_with_their_field(over, message):
    with pytest.raises(ConfigError) as info:
        parse_run_config({**BASE, **over})
    assert message in str(info.value)


def test_retention_settings_read_back_and_defaults_are_not_written():
    config = parse_run_config({**BASE, "keep_checkpoints": "all", "checkpoint_at": [10, 20.0]})
    assert config.checkpoints_kept is None and config.checkpoint_at == (10, 20)
    mapping = config.to_mapping()
    assert mapping["keep_checkpoints"] == "all" and mapping["checkpoint_at"] == [10, 20]
    assert parse_run_config(mapping) == config
    plain = parse_run_config(BASE).to_mapping()
    assert "keep_checkpoints" not in plain and "checkpoint_at" not in plain
    assert parse_run_config(BASE).checkpoints_kept == 3


def test_the_schema_takes_what_the_retention_settings_take():
    from test_runconfig import _conforms, _schema

    schema = _schema()
    good = parse_run_config({**BASE, "keep_checkpoints": "all", "checkpoint_at": [10, 20]}).to_mapping()
    assert _conforms(json.loads(json.dumps(good)), schema, schema["$defs"]) == []
    for bad in ({"keep_checkpoints": "some"}, {"keep_checkpoints": 0}, {"checkpoint_at": [0]},
                {"checkpoint_at": 5}):
        assert _conforms({**good, **bad}, schema, schema["$defs"]) != [], bad


def test_a_parent_that_reduces_on_plateau_is_refused(tmp_path, capsys):
    """Its rate depends on the reductions recorded in its run, which a branch spec would not carry."""
    cfg = tmp_path / "pl.yaml"
    cfg.write_text("name: pl\ntask: quadratic\nseed: 1\nsteps: 20\ncheckpoint_every: 10\neval_every: 5\n"
                   "schedule: {type: plateau, monitor: loss, patience: 0,\n"
                   "           base: {type: constant, lr: 0.1}}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path), "--quiet"]) == 0
    parent = tmp_path / "pl"
    before = _snapshot(parent)
    capsys.readouterr()
    code = main(["branch", str(parent), "--at", "10", "--out", str(tmp_path / "b"), "--cooldown", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "reduces on plateau" in err and err.count("\n") == 1, err
    assert _snapshot(parent) == before and not (tmp_path / "b").exists()


def test_a_branch_config_has_no_parent_budget_and_lints_clean_of_it(tmp_path, capsys):
    """The parent's total (and data.epochs) counted the parent's run: the branch's config leaves them out, its
    length is its steps, run.json records no budget, and LR011 has no budget to hold the branch against."""
    from lrtempo.analysis import lint_config

    cfg = tmp_path / "t.yaml"
    cfg.write_text("name: t\ntask: linear\ntotal: {steps: 20}\ndata: {epochs: 20}\neval_every: 0\nmonitor: false\n"
                   "checkpoint_every: 4\ncheckpoint_at: [8]\n"
                   "schedule: {type: wsd, peak_lr: 0.01, min_lr: 0.001, total_steps: auto, warmup_steps: 2,\n"
                   "           decay_steps: 4}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path), "--quiet"]) == 0
    for args, steps in ((["--cooldown", "4"], 12), (["--extend", "30"], 30)):
        out = tmp_path / f"b{steps}"
        assert main(["branch", str(tmp_path / "t"), "--at", "8", "--out", str(out), *args]) == 0
        config = read_config_file(out / "config.yaml")
        assert "total" not in config and config.get("data", {}) == {} and config["steps"] == steps
        assert "budget" not in json.loads((out / "run.json").read_text())
        assert not [f for f in lint_config(out / "config.yaml") if f.rule == "LR011"]
        assert main(["train", "--resume", str(out), "--quiet"]) == 0
        assert len(read_log(out / "log.csv")) == steps
    capsys.readouterr()


def test_the_branch_keeps_its_starting_checkpoint_until_it_has_written_a_newer_one(tmp_path, monkeypatch):
    """keep_checkpoints: 1, the tightest retention: a branch that fails before its first checkpoint, or while
    writing it, still holds the checkpoint it starts from (so it resumes, exactly); the first newer checkpoint,
    once written, is what replaces it."""
    import torch as real_torch

    from lrtempo.train import TrainState, train

    cfg = tmp_path / "k.yaml"
    cfg.write_text("name: k\ntask: quadratic\nseed: 2\nsteps: 20\ncheckpoint_every: 6\nkeep_checkpoints: 1\n"
                   "checkpoint_at: [8]\neval_every: 0\nmonitor: false\n"
                   "schedule: {type: wsd, peak_lr: 0.1, min_lr: 0.001, total_steps: 20, warmup_steps: 2,\n"
                   "           decay_steps: 4}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path), "--quiet"]) == 0
    for name in ("in-update", "in-write", "straight"):
        assert main(["branch", str(tmp_path / "k"), "--at", "8", "--out", str(tmp_path / name), "--cooldown",
                     "10"]) == 0
    kept = lambda run: sorted(p.name for p in (tmp_path / run / "checkpoints").iterdir())  # noqa: E731
    real_update, real_save = TrainState.update, real_torch.save

    def crash_at_the_third_update(self, *args, **kwargs):
        if self.step == 10:
            raise RuntimeError("a crash before the branch's first checkpoint")
        return real_update(self, *args, **kwargs)

    def crash_in_the_first_write(*args, **kwargs):
        raise RuntimeError("a crash while the branch's first checkpoint is written")

    for name, target, name_of, crash in (("in-update", TrainState, "update", crash_at_the_third_update),
                                         ("in-write", real_torch, "save", crash_in_the_first_write)):
        monkeypatch.setattr(target, name_of, crash)
        with pytest.raises(RuntimeError, match="a crash"):
            train(None, tmp_path, resume=tmp_path / name, progress=False)
        monkeypatch.undo()
        assert kept(name) == ["step-00000008.pt"], name
        train(None, tmp_path, resume=tmp_path / name, progress=False)
    assert real_torch.save is real_save
    train(None, tmp_path, resume=tmp_path / "straight", progress=False)
    same = ("step", "lr", "grad_l2_norm", "loss", "skipped_updates")
    for name in ("in-update", "in-write", "straight"):
        assert kept(name) == ["step-00000018.pt"]  # 12 replaced 8, then 18 replaced 12
        assert [{c: r[c] for c in same} for r in read_log(tmp_path / name / "log.csv")] == \
            [{c: r[c] for c in same} for r in read_log(tmp_path / "straight" / "log.csv")]
