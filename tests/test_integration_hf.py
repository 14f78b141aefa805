"""The Hugging Face Trainer callback: a real ``transformers.Trainer`` on CPU writes an lrtempo run record.

Gradient accumulation (2 micro-batches per update), clipping that bites, checkpoints, a run stopped between
two checkpoints and resumed in a fresh Trainer, compared with the same run uninterrupted.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from lrtempo import RunDir, build_schedule  # noqa: E402
from lrtempo.cli import main as cli_main  # noqa: E402
from lrtempo.integrations.hf import LOG_PREFIX, LRTempoCallback, LRTempoIntegrationWarning  # noqa: E402
from lrtempo.monitor import MonitorSettings  # noqa: E402
from lrtempo.rundir import MONITOR_COLUMNS, SCHEMA_COLUMNS  # noqa: E402
from lrtempo.torch import LRTempoScheduler, ScheduleChangedError, ScheduleOrderWarning  # noqa: E402

ROOT = Path(__file__).parent.parent
STEPS = 12  # 64 samples, 4 per micro-batch, 2 micro-batches per update: 8 updates an epoch, so two epochs
SPEC = {"type": "warmup_cosine", "peak_lr": 0.05, "min_lr": 0.001, "total_steps": STEPS, "warmup_steps": 3}
SETTINGS = MonitorSettings(effective_every=1, staleness_window=2, trap_window=4, spike_window=4)


class TinyRegressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.randn(4, 1, generator=g) + 3.0
    return [{"x": x[i], "y": y[i]} for i in range(64)]


class Reporter(transformers.TrainerCallback):
    """Keeps what ``on_log`` receives, as the ``report_to`` callbacks do (the Trainer places them first)."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            self.seen.append(dict(logs))


class StopAt(transformers.TrainerCallback):
    """Stop training after ``step`` updates (between two checkpoints)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _trainer(out: Path, run: Path, *, callbacks=(), before=(), schedule_spec=SPEC, max_steps=STEPS, monitor=SETTINGS,
             scheduler=None):
    torch.manual_seed(0)
    model = TinyRegressor()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    sched = scheduler(optimizer) if scheduler else LRTempoScheduler(optimizer, build_schedule(schedule_spec))
    args = transformers.TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=max_steps,
        max_grad_norm=0.5, save_strategy="steps", save_steps=3, logging_steps=1, report_to=[], use_cpu=True,
        seed=0, disable_tqdm=True, dataloader_num_workers=0)
    return transformers.Trainer(model=model, args=args, train_dataset=_data(), optimizers=(optimizer, sched),
                                callbacks=[*before, LRTempoCallback(run, monitor=monitor), *callbacks])


def _rows(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run uninterrupted (``whole``) and stopped at update 7, resumed from the checkpoint at 6."""
    base = tmp_path_factory.mktemp("hf")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)
        reporter = Reporter()
        whole = _trainer(base / "out-whole", base / "whole", before=[reporter])
        whole.train()
        _trainer(base / "out-cut", base / "cut", callbacks=[StopAt(7)]).train()
        stopped = _rows(base / "cut")
        resumed = _trainer(base / "out-cut", base / "cut")
        resumed.train(resume_from_checkpoint=str(base / "out-cut" / "checkpoint-6"))
    return {"whole": base / "whole", "cut": base / "cut", "stopped_rows": stopped,
            "history": whole.state.log_history,
            "reported": reporter.seen}


def test_every_update_once_with_the_schedules_rate_bit_for_bit(runs):
    schedule = build_schedule(SPEC)
    for name in ("whole", "cut"):
        rows = _rows(runs[name])
        assert [int(r["step"]) for r in rows] == list(range(STEPS)), name
        assert [float(r["lr"]) for r in rows] == [schedule(s) for s in range(STEPS)], name


def test_the_stopped_run_had_a_row_past_its_checkpoint_that_the_resume_replaced(runs):
    assert [int(r["step"]) for r in runs["stopped_rows"]] == list(range(7))
    assert json.loads((runs["cut"] / "summary.json").read_text())["status"] == "completed"
    assert [r["step"] for r in RunDir(runs["cut"]).read_meta()["resumes"]] == [6]


def test_the_resumed_record_equals_the_uninterrupted_one(runs):
    whole, cut = _rows(runs["whole"]), _rows(runs["cut"])
    for column in ("lr", "grad_l2_norm", "loss", "trap_status", "effective_lr_median", "momentum_alignment"):
        assert [r[column] for r in cut] == [r[column] for r in whole], column
    assert (runs["cut"] / "layers.csv").read_text() == (runs["whole"] / "layers.csv").read_text()
    cut_events, whole_events = (RunDir(runs[k]).events for k in ("cut", "whole"))
    assert cut_events.exists() == whole_events.exists()
    if whole_events.exists():
        assert cut_events.read_text() == whole_events.read_text()
    assert len({r["trap_status"] for r in whole}) > 1  # the detector's window fills: its state crosses the resume


def test_loss_and_norm_are_the_trainers_before_clipping_bit_for_bit(runs):
    """With ``logging_steps=1`` the Trainer logs each update's loss and its gradient norm before clipping: the
    record holds the same numbers (the callback reads them from the Trainer rather than computing its own)."""
    logged = [h for h in runs["history"] if "loss" in h and "grad_norm" in h]
    rows = _rows(runs["whole"])
    assert len(logged) == STEPS
    norms = [float(r["grad_l2_norm"]) for r in rows]
    assert max(norms) > 0.5  # the clipping at 0.5 bites, so a norm after clipping could not match
    assert norms == [h["grad_norm"] for h in logged]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in logged]


def test_the_log_columns_and_the_signals_in_the_trainers_logs(runs):
    with open(runs["whole"] / "log.csv") as fh:
        assert fh.readline().strip().split(",") == [*SCHEMA_COLUMNS, *MONITOR_COLUMNS]
    rows = _rows(runs["whole"])
    assert all(r["effective_lr_median"] and r["phase"] for r in rows)
    assert any(r["momentum_alignment"] for r in rows)
    seen = runs["reported"]  # what a callback placed as report_to's are (before the user's) was given
    assert len(seen) == STEPS and all(LOG_PREFIX + "effective_lr_median" in logs for logs in seen)
    for logs, row in zip(seen, rows):
        assert logs[LOG_PREFIX + "effective_lr_median"] == float(row["effective_lr_median"])
        assert (LOG_PREFIX + "effective_lr_ratio" in logs) == bool(row["effective_lr_ratio"])  # none at lr 0
    meta = RunDir(runs["whole"]).read_meta()
    assert meta["spec_hash"] and meta["log_columns"] == [*SCHEMA_COLUMNS, *MONITOR_COLUMNS]
    assert (runs["whole"] / "layers.csv").exists()
    assert "\nname: whole\n" in "\n" + (runs["whole"] / "config.yaml").read_text()  # the run's, not out-whole


def test_analyze_and_report_read_the_record(runs, tmp_path, capsys):
    assert cli_main(["analyze", str(runs["cut"]), "--json", "--png", str(tmp_path / "a.png")]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["rows"], found["phase_source"], found["notes"]) == (STEPS, "the run's schedule", [])
    out = tmp_path / "report.html"
    assert cli_main(["report", str(runs["cut"]), "-o", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_a_schedule_total_unlike_max_steps_warns_once_naming_the_fix(tmp_path):
    trainer = _trainer(tmp_path / "out", tmp_path / "run", max_steps=2, monitor=False,
                       schedule_spec={**SPEC, "total_steps": 20})
    with pytest.warns(LRTempoIntegrationWarning, match="total_steps=2") as caught:
        trainer.train()
    (w,) = [w for w in caught if "max_steps" in str(w.message)]
    assert w.filename == __file__  # at the user's trainer.train() line, not inside transformers
    with open(tmp_path / "run" / "log.csv") as fh:
        assert fh.readline().strip().split(",") == list(SCHEMA_COLUMNS)


ENDLESS = {"type": "warmup", "warmup_steps": 3, "schedule": {"type": "constant", "lr": 0.01}}  # holds its value


def test_a_schedule_without_an_end_warns_of_no_total_and_is_never_past_it(tmp_path):
    trainer = _trainer(tmp_path / "out", tmp_path / "run", max_steps=6, monitor=False, schedule_spec=ENDLESS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)  # its end_step (3) is no total to miss
        trainer.train()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["past_schedule_end"] is False


def test_resuming_a_finished_run_warns_that_the_trainer_runs_one_more_update(runs, tmp_path):
    shutil.copytree(runs["whole"], tmp_path / "run")
    checkpoint = f"checkpoint-{STEPS}"
    shutil.copytree(runs["whole"].parent / "out-whole" / checkpoint, tmp_path / "out" / checkpoint)
    trainer = _trainer(tmp_path / "out", tmp_path / "run")
    with pytest.warns(LRTempoIntegrationWarning, match=f"resuming a finished run: the checkpoint is at step {STEPS}"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "out" / checkpoint))
    assert trainer.state.global_step == STEPS + 1  # the update the message tells of
    assert [int(r["step"]) for r in _rows(tmp_path / "run")] == list(range(STEPS + 1))


def test_a_schedule_total_unlike_the_epochs_warns_with_what_the_trainer_computed(tmp_path):
    trainer = _trainer(tmp_path / "out", tmp_path / "run", max_steps=-1, monitor=False, callbacks=[StopAt(1)])
    trainer.args.num_train_epochs = 2  # 8 updates an epoch
    with pytest.warns(LRTempoIntegrationWarning, match="ends at step 12") as caught:
        trainer.train()
    message = str(caught[0].message)
    assert "will run 16 updates (num_train_epochs=2 x" in message and message.endswith("total_steps=16")
    assert "max_steps" not in message

def test_another_scheduler_warns_and_records_nothing(tmp_path):
    trainer = _trainer(tmp_path / "out", tmp_path / "run", max_steps=2,
                       scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0))
    with pytest.warns(LRTempoIntegrationWarning, match="LRTempoScheduler"):
        trainer.train()
    assert not (tmp_path / "run").exists()


def _files(run: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir() if p.is_file()}


def test_starting_over_a_recorded_run_is_refused_and_changes_nothing(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["whole"], run)
    (run / ".lock").write_text("4242\n")  # the pid of the process that wrote the run, another one's
    for p in run.iterdir():
        os.utime(p, ns=(10**18, 10**18))
    before = _files(run)
    with pytest.raises(FileExistsError, match="already holds a run"):
        _trainer(tmp_path / "out", run, max_steps=STEPS).train()
    assert _files(run) == before  # .lock too: its pid and its time


def test_a_resume_under_another_schedule_is_refused_or_recorded(tmp_path):
    out, run = tmp_path / "out", tmp_path / "run"
    _trainer(out, run, callbacks=[StopAt(4)], monitor=False).train()
    before = (run / "log.csv").read_text()
    other = {**SPEC, "peak_lr": 0.02}
    with pytest.raises(ScheduleChangedError):
        _trainer(out, run, schedule_spec=other, monitor=False).train(resume_from_checkpoint=str(out / "checkpoint-3"))
    assert (run / "log.csv").read_text() == before
    allowed = lambda opt: LRTempoScheduler(opt, build_schedule(other), allow_schedule_change=True)  # noqa: E731
    _trainer(out, run, scheduler=allowed, monitor=False).train(resume_from_checkpoint=str(out / "checkpoint-3"))
    rows, new, old = _rows(run), build_schedule(other), build_schedule(SPEC)
    assert [float(r["lr"]) for r in rows] == [old(s) for s in range(3)] + [new(s) for s in range(3, STEPS)]
    meta = RunDir(run).read_meta()
    changes = meta["schedule_changes"]
    assert [c["step"] for c in changes] == [3] and meta["spec_hash"] == changes[0]["to"] != changes[0]["from"]
    assert "peak_lr: 0.05" in RunDir(run).config_before(3).read_text()


def test_the_example_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("hf_trainer_example", ROOT / "examples/integrations/hf_trainer.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main([str(tmp_path / "run"), "--steps", "8"]) == 0
    assert [int(r["step"]) for r in _rows(tmp_path / "run")] == list(range(8))


def test_the_package_imports_without_transformers():
    code = ("import sys; sys.modules['transformers'] = None; import lrtempo.integrations\n"
            "try:\n    import lrtempo.integrations.hf\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingDependency") and "pip install transformers" in out


@pytest.mark.parametrize("spec, match", [
    ({**SPEC, "unit": "tokens"}, "the schedule counts tokens"),
    ({"type": "plateau", "base": SPEC}, "type: plateau schedule needs its evaluations reported"),
], ids=["tokens", "plateau"])
def test_a_schedule_the_trainer_cannot_apply_exactly_is_refused_writing_nothing(tmp_path, spec, match):
    from lrtempo.integrations.hf import LRTempoIntegrationError

    with pytest.raises(LRTempoIntegrationError, match=match):
        _trainer(tmp_path / "out", tmp_path / "run", schedule_spec=spec, max_steps=2).train()
    assert not (tmp_path / "run").exists()


def _per_group(optimizer):
    """A second param group, and a schedule of its own."""
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    return LRTempoScheduler(optimizer, [build_schedule(SPEC), build_schedule({**SPEC, "peak_lr": 0.01})])


def test_a_schedule_per_param_group_is_refused_in_one_line_writing_nothing(tmp_path):
    from lrtempo.integrations.hf import LRTempoIntegrationError

    with pytest.raises(LRTempoIntegrationError, match=r"a schedule per param group \(2 schedules\)") as caught:
        _trainer(tmp_path / "out", tmp_path / "run", scheduler=_per_group, max_steps=2).train()
    assert "\n" not in str(caught.value) and not (tmp_path / "run").exists()


class LossOutside(torch.nn.Module):
    """A model whose forward returns only its prediction: the loss is the Trainer's ``compute_loss``."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, x, y):
        return self.net(x)


class OwnLossTrainer(transformers.Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        prediction = model(**inputs)
        loss = torch.nn.functional.l1_loss(prediction, inputs["y"])  # unlike anything the model's output holds
        return (loss, prediction) if return_outputs else loss


def test_a_custom_compute_loss_is_the_records_loss(tmp_path):
    """The record's loss is the one the Trainer reports (its training_step's), whatever computes it; under
    accumulation 3 the micro-batches' shares add up to the update's mean loss."""
    torch.manual_seed(0)
    model = LossOutside()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=3, max_steps=5,
        max_grad_norm=0.5, save_strategy="no", logging_steps=1, report_to=[], use_cpu=True, seed=0,
        disable_tqdm=True)
    spec = {**SPEC, "total_steps": 5}
    trainer = OwnLossTrainer(model=model, args=args, train_dataset=_data(),
                             optimizers=(optimizer, LRTempoScheduler(optimizer, build_schedule(spec))),
                             callbacks=[LRTempoCallback(tmp_path / "run", monitor=SETTINGS)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)
        trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h and "grad_norm" in h]
    rows = _rows(tmp_path / "run")
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in logged]
    assert [float(r["grad_l2_norm"]) for r in rows] == [h["grad_norm"] for h in logged]
    assert all(0 < float(r["loss"]) < 10 for r in rows) and len(rows) == 5


def _torchrun():
    found = shutil.which("torchrun")
    beside = Path(sys.executable).with_name("torchrun")
    return found or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(_torchrun() is None, reason="torchrun not found")
def test_two_processes_record_the_global_norm_before_clipping_and_the_mean_loss(tmp_path):
    """Under torchrun (2 CPU processes, gloo) the main process's record holds, update by update, the Trainer's
    own ``grad_norm`` (of the gradients averaged across the processes, before clipping) and its logged loss
    (the processes' mean), bit for bit, and no warning."""
    out, run = tmp_path / "out", tmp_path / "run"
    out.mkdir()
    done = subprocess.run([_torchrun(), "--nproc_per_node", "2", "--master_port", "29573",
                           str(ROOT / "tests/data/hf_two_process.py"), str(out), str(run)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    logged = [h for h in result["history"] if "loss" in h and "grad_norm" in h]
    rows = _rows(run)
    schedule = build_schedule({"type": "warmup_cosine", "peak_lr": 0.05, "min_lr": 0.001, "total_steps": 6,
                               "warmup_steps": 2})
    assert result["world_size"] == 2 and result["warnings"] == []
    assert [int(r["step"]) for r in rows] == list(range(6)) and len(logged) == 6
    assert [float(r["lr"]) for r in rows] == [schedule(s) for s in range(6)]
    norms = [float(r["grad_l2_norm"]) for r in rows]
    assert max(norms) > 0.5 and norms == [h["grad_norm"] for h in logged]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in logged]
    assert RunDir(run).read_meta()["world_size"] == 2


# -- accelerate in a loop of one's own ------------------------------------------------------------------------------
def _accelerate_loop(sync_only: bool) -> tuple[list[float], list[str]]:
    """docs/integrations.md's second accelerate option: ``step_scheduler_with_optimizer=False``, the scheduler
    prepared, 2 micro-batches per update; the rate of each update and the order warnings."""
    from accelerate import Accelerator

    accelerator = Accelerator(gradient_accumulation_steps=2, cpu=True, step_scheduler_with_optimizer=False)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    scheduler = LRTempoScheduler(optimizer, build_schedule(SPEC))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4 * STEPS, 4),
                                                                      torch.randn(4 * STEPS, 1)), batch_size=2)
    model, optimizer, data, scheduler = accelerator.prepare(model, optimizer, data, scheduler)
    rates = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x, y in data:
            with accelerator.accumulate(model):
                accelerator.backward(torch.nn.functional.mse_loss(model(x), y))
                if accelerator.sync_gradients:
                    rates.append(optimizer.param_groups[0]["lr"])
                optimizer.step()
                if accelerator.sync_gradients or not sync_only:
                    scheduler.step()
                optimizer.zero_grad()
    return rates, [str(w.message) for w in caught if issubclass(w.category, ScheduleOrderWarning)]


def test_the_documented_accelerate_loop_keeps_the_rates_exact_and_per_micro_batch_stepping_is_named():
    schedule = build_schedule(SPEC)
    rates, warned = _accelerate_loop(sync_only=True)
    assert rates == [schedule(s) for s in range(STEPS)] and warned == []
    rates, warned = _accelerate_loop(sync_only=False)  # the schedule runs twice too fast
    assert rates[1] == schedule(3)
    assert len(warned) == 2 and "once per micro-batch" in warned[1] and "sync_gradients" in warned[1]


class NaNAtTheEnd(TinyRegressor):
    """A NaN loss on the last micro-batch: the run's final loss is NaN."""

    def __init__(self, calls: int):
        super().__init__()
        self.calls, self.nan_at = 0, calls

    def forward(self, x, y):
        self.calls += 1
        loss = super().forward(x, y)["loss"]
        return {"loss": loss * float("nan") if self.calls == self.nan_at else loss}


def test_a_nan_loss_is_null_in_strict_json_and_the_saved_state_keeps_it(tmp_path):
    from lrtempo.integrations._record import STATE_FILE, read_state

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    torch.manual_seed(0)
    model = NaNAtTheEnd(2 * STEPS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_steps=STEPS, max_grad_norm=0.5, save_strategy="steps", save_steps=STEPS, logging_steps=1, report_to=[],
        use_cpu=True, seed=0, disable_tqdm=True, logging_nan_inf_filter=False)
    transformers.Trainer(model=model, args=args, train_dataset=_data(),
                         optimizers=(optimizer, LRTempoScheduler(optimizer, build_schedule(SPEC))),
                         callbacks=[LRTempoCallback(tmp_path / "run", monitor=SETTINGS)]).train()
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text(), parse_constant=refuse)
    assert summary["final_loss"] is None and summary["best_loss"] is not None
    json.loads((run / "run.json").read_text(), parse_constant=refuse)
    for line in (run / "events.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    checkpoint = tmp_path / "out" / f"checkpoint-{STEPS}"
    json.loads((checkpoint / STATE_FILE).read_text(), parse_constant=refuse)
    state = read_state(checkpoint)  # a resume sees the NaN it saved, not a null
    assert state["final_loss"] != state["final_loss"] and state["monitor"]["trap"]["loss"][-1] != \
        state["monitor"]["trap"]["loss"][-1]
