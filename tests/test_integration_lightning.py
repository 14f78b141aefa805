"""The Lightning callback: a real ``lightning.pytorch.Trainer`` on CPU writes an lrtempo run record.

Gradient accumulation (2 micro-batches per update), clipping that bites, Lightning's checkpoints, a run
stopped between two checkpoints and resumed with ``ckpt_path`` in a fresh Trainer, a run that crashes and is
resumed, compared with the same run uninterrupted; the setups the callback refuses; ``pytorch_lightning``.
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
pl = pytest.importorskip("lightning.pytorch")

from lrtempo import RunDir, build_schedule  # noqa: E402
from lrtempo.cli import main as cli_main  # noqa: E402
from lrtempo.integrations.lightning import (  # noqa: E402
    LOG_PREFIX,
    LRTempoCallback,
    LRTempoIntegrationError,
    LRTempoIntegrationWarning,
)
from lrtempo.monitor import MonitorSettings  # noqa: E402
from lrtempo.rundir import MONITOR_COLUMNS, SCHEMA_COLUMNS  # noqa: E402
from lrtempo.torch import LRTempoScheduler, ScheduleChangedError, ScheduleOrderWarning  # noqa: E402

ROOT = Path(__file__).parent.parent
STEPS = 12  # 32 samples, 4 per micro-batch, 2 micro-batches per update: 4 updates an epoch, three epochs
ACCUMULATE = 2
SPEC = {"type": "warmup_cosine", "peak_lr": 0.05, "min_lr": 0.001, "total_steps": STEPS, "warmup_steps": 3}
SETTINGS = MonitorSettings(effective_every=1, staleness_window=2, trap_window=4, spike_window=4)


def _step_config(optimizer, spec):
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, build_schedule(spec)), "interval": "step"}}


def _module(lib, *, spec=SPEC, configure=_step_config, stop_at=None, fail_at=None, manual=False, samples=32,
            step_scheduler=True):
    """A tiny regressor as a LightningModule of ``lib``; it notes what each optimizer step applied."""

    class Tiny(lib.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
            self.automatic_optimization = not manual
            self.losses, self.applied, self.norms = [], [], []

        def training_step(self, batch, batch_idx):
            if fail_at is not None and self.trainer.global_step == fail_at:
                raise RuntimeError("the run crashes here")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.losses.append(loss.detach())
            return loss

        def on_before_optimizer_step(self, optimizer):  # after the callbacks' hook, before clipping
            grads = [p.grad for p in self.parameters()]
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

        def on_train_batch_end(self, outputs, batch, batch_idx):  # after the callbacks' hook
            if stop_at is not None and self.trainer.global_step == stop_at:
                self.trainer.should_stop = True

        if not step_scheduler:  # a module whose own hook leaves the scheduler where it is
            def lr_scheduler_step(self, scheduler, metric):
                pass

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=0.0)
            optimizer.register_step_post_hook(lambda opt, *_: self.applied.append(opt.param_groups[0]["lr"]))
            return configure(optimizer, spec)

        def train_dataloader(self):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(samples, 4, generator=g)
            y = x @ torch.randn(4, 1, generator=g) + 3.0
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=False)

    lib.seed_everything(0, verbose=False)
    return Tiny()


def _fit(out: Path, run: Path, *, lib=pl, ckpt=None, max_steps=STEPS, max_epochs=None, monitor=SETTINGS,
         **module_options):
    """Fit a fresh module and Trainer; checkpoints every 4 updates (each epoch's end) into ``out/ckpt``."""
    model = _module(lib, **module_options)
    manual = module_options.get("manual", False)  # Lightning accumulates and clips under automatic optimization
    trainer = lib.Trainer(
        max_steps=max_steps, max_epochs=max_epochs, accumulate_grad_batches=1 if manual else ACCUMULATE,
        gradient_clip_val=None if manual else 0.5, accelerator="cpu",
        devices=1, log_every_n_steps=1, logger=lib.loggers.CSVLogger(out, name="csv"), enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=out,
        callbacks=[LRTempoCallback(run, monitor=monitor),
                   lib.callbacks.ModelCheckpoint(dirpath=out / "ckpt", filename="{step}", every_n_train_steps=4,
                                                 save_top_k=-1)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", module="pytorch_lightning")
        trainer.fit(model, ckpt_path=ckpt)
    return trainer, model


def _rows(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Uninterrupted (``whole``); stopped at 10 and resumed from the checkpoint at 8 (``cut``); crashed in
    update 6 and resumed from the checkpoint at 4 (``crash``)."""
    base = tmp_path_factory.mktemp("lightning")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)
        warnings.simplefilter("error", ScheduleOrderWarning)
        whole, whole_model = _fit(base / "out-whole", base / "whole")
        _, stopped_model = _fit(base / "out-cut", base / "cut", stop_at=10)
        stopped = _rows(base / "cut")
        stopped_summary = RunDir(base / "cut").read_summary()
        _, resumed_model = _fit(base / "out-cut", base / "cut", ckpt=base / "out-cut" / "ckpt" / "step=8.ckpt")
        with pytest.raises(RuntimeError, match="crashes here"):
            _fit(base / "out-crash", base / "crash", fail_at=6)
        crashed = _rows(base / "crash")
        crashed_summary = RunDir(base / "crash").read_summary()
        _fit(base / "out-crash", base / "crash", ckpt=base / "out-crash" / "ckpt" / "step=4.ckpt")
    return {"whole": base / "whole", "cut": base / "cut", "crash": base / "crash", "base": base,
            "trainer": whole, "model": whole_model, "stopped_rows": stopped, "stopped_summary": stopped_summary,
            "stopped_applied": stopped_model.applied, "resumed_applied": resumed_model.applied,
            "crashed_rows": crashed, "crashed_summary": crashed_summary}


def test_every_update_once_at_the_rate_the_optimizer_applied_bit_for_bit(runs):
    schedule = build_schedule(SPEC)
    expected = [schedule(s) for s in range(STEPS)]
    assert runs["model"].applied == expected  # what optimizer.step() ran with, update by update
    for name in ("whole", "cut", "crash"):
        rows = _rows(runs[name])
        assert [int(r["step"]) for r in rows] == list(range(STEPS)), name
        assert [float(r["lr"]) for r in rows] == expected, name


def test_accumulation_advances_the_schedule_once_per_update(runs):
    model, trainer = runs["model"], runs["trainer"]
    assert len(model.losses) == ACCUMULATE * STEPS and len(model.applied) == STEPS
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == trainer.global_step == STEPS


def test_an_epochs_last_partial_accumulation_is_one_update(tmp_path):
    """5 micro-batches an epoch under accumulate_grad_batches=2: Lightning steps after 2, 4 and the 5th alone."""
    spec = {**SPEC, "total_steps": 6}
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)  # 6 updates: the schedule's total
        _, model = _fit(tmp_path / "out", tmp_path / "run", max_steps=-1, max_epochs=2, spec=spec, samples=20,
                        monitor=False)
    schedule, rows = build_schedule(spec), _rows(tmp_path / "run")
    assert [int(r["step"]) for r in rows] == list(range(6))
    assert [float(r["lr"]) for r in rows] == model.applied == [schedule(s) for s in range(6)]
    losses = [x.item() for x in model.losses]
    per_update = [(losses[0] + losses[1]) / 2, (losses[2] + losses[3]) / 2, losses[4]]
    per_update += [(losses[5] + losses[6]) / 2, (losses[7] + losses[8]) / 2, losses[9]]
    assert [float(r["loss"]) for r in rows] == pytest.approx(per_update, rel=1e-6)


def test_loss_and_norm_are_the_updates_before_clipping(runs):
    rows, model = _rows(runs["whole"]), runs["model"]
    norms = [float(r["grad_l2_norm"]) for r in rows]
    assert max(norms) > 0.5  # the clipping at 0.5 bites, so a norm after clipping could not match
    assert norms == pytest.approx(model.norms, rel=1e-6)
    pairs = [(model.losses[2 * i] + model.losses[2 * i + 1]).item() / 2 for i in range(STEPS)]
    assert [float(r["loss"]) for r in rows] == pytest.approx(pairs, rel=1e-6)


def test_the_stopped_run_had_rows_past_its_checkpoint_that_the_resume_replaced(runs):
    assert [int(r["step"]) for r in runs["stopped_rows"]] == list(range(10))
    assert runs["stopped_summary"]["status"] == "stopped"
    schedule = build_schedule(SPEC)
    assert runs["stopped_applied"] == [schedule(s) for s in range(10)]
    assert runs["resumed_applied"] == [schedule(s) for s in range(8, STEPS)]  # the schedule goes on at 8
    assert json.loads((runs["cut"] / "summary.json").read_text())["status"] == "completed"
    assert [r["step"] for r in RunDir(runs["cut"]).read_meta()["resumes"]] == [8]


def test_a_crash_closes_the_record_and_a_resume_continues_it(runs):
    assert [int(r["step"]) for r in runs["crashed_rows"]] == list(range(6))
    assert runs["crashed_summary"]["status"] == "failed"  # and the lock was released: the resume ran
    assert [r["step"] for r in RunDir(runs["crash"]).read_meta()["resumes"]] == [4]


@pytest.mark.parametrize("name", ["cut", "crash"])
def test_the_resumed_record_equals_the_uninterrupted_one(runs, name):
    whole, other = _rows(runs["whole"]), _rows(runs[name])
    assert [list(r) for r in other] == [list(r) for r in whole]
    for column in ("lr", "grad_l2_norm", "loss", "trap_status", "effective_lr_median", "momentum_alignment"):
        assert [r[column] for r in other] == [r[column] for r in whole], column
    assert (runs[name] / "layers.csv").read_text() == (runs["whole"] / "layers.csv").read_text()
    events = [RunDir(runs[k]).events for k in (name, "whole")]
    assert events[0].exists() == events[1].exists()
    if events[1].exists():
        assert events[0].read_text() == events[1].read_text()
    assert len({r["trap_status"] for r in whole}) > 1  # the detector's window fills: its state crosses the resume


def test_the_log_columns_and_the_signals_in_the_modules_logger(runs):
    with open(runs["whole"] / "log.csv") as fh:
        assert fh.readline().strip().split(",") == [*SCHEMA_COLUMNS, *MONITOR_COLUMNS]
    rows = _rows(runs["whole"])
    assert all(r["effective_lr_median"] and r["phase"] for r in rows)
    assert any(r["momentum_alignment"] for r in rows)
    logged = list(csv.DictReader(open(runs["base"] / "out-whole" / "csv" / "version_0" / "metrics.csv")))
    key = LOG_PREFIX + "effective_lr_median"
    by_step = {int(m["step"]): float(m[key]) for m in logged if m.get(key)}
    assert sorted(by_step) == list(range(STEPS))  # log_every_n_steps=1: every update
    assert [by_step[s] for s in range(STEPS)] == pytest.approx([float(r[key[len(LOG_PREFIX):]]) for r in rows],
                                                               rel=1e-6)  # Lightning logs in float32
    meta = RunDir(runs["whole"]).read_meta()
    assert meta["spec_hash"] and meta["trainer"] == "lightning" and meta["lightning"]
    config = RunDir(runs["whole"]).config.read_text()
    assert "accumulate_grad_batches: 2" in config and "gradient_clip_val: 0.5" in config


def test_analyze_and_report_read_the_record(runs, tmp_path, capsys):
    assert cli_main(["analyze", str(runs["cut"]), "--json", "--png", str(tmp_path / "a.png")]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["rows"], found["phase_source"], found["notes"]) == (STEPS, "the run's schedule", [])
    out = tmp_path / "report.html"
    assert cli_main(["report", str(runs["cut"]), "-o", str(out)]) == 0
    assert out.stat().st_size > 1000


def _bare(optimizer, spec):  # Lightning's default interval is "epoch"
    return {"optimizer": optimizer, "lr_scheduler": LRTempoScheduler(optimizer, build_schedule(spec))}


def _every_second(optimizer, spec):
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, build_schedule(spec)),
                                                     "interval": "step", "frequency": 2}}


def _foreign(optimizer, spec):
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
                             "interval": "step"}}


@pytest.mark.parametrize("options, match", [
    ({"configure": _foreign}, "configure_optimizers returns LambdaLR"),
    ({"configure": lambda optimizer, spec: optimizer}, "returns no lr_scheduler"),
    ({"configure": _bare}, "'interval': 'epoch'"),
    ({"configure": _every_second}, "'frequency': 2"),
    ({"manual": True}, "automatic optimization only"),
], ids=["foreign", "none", "per-epoch", "frequency", "manual"])
def test_a_setup_that_would_not_apply_the_schedule_per_update_is_refused_writing_nothing(tmp_path, options, match):
    with pytest.raises(LRTempoIntegrationError, match=match) as caught:
        _fit(tmp_path / "out", tmp_path / "run", max_steps=2, **options)
    message = str(caught.value)
    assert "\n" not in message and ("interval" in message or "manual" in message)
    assert not (tmp_path / "run").exists()


def _per_group(optimizer, spec):
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    schedules = [build_schedule(spec), build_schedule({**spec, "peak_lr": 0.01})]
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LRTempoScheduler(optimizer, schedules),
                                                     "interval": "step"}}


def test_a_schedule_per_param_group_is_refused_in_one_line_writing_nothing(tmp_path):
    with pytest.raises(LRTempoIntegrationError, match=r"a schedule per param group \(2 schedules\)") as caught:
        _fit(tmp_path / "out", tmp_path / "run", max_steps=2, configure=_per_group)
    assert "\n" not in str(caught.value) and not (tmp_path / "run").exists()


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
        _fit(tmp_path / "out", run)  # refused before the first update
    assert _files(run) == before  # .lock too: its pid and its time


def test_a_resume_under_another_schedule_is_refused_and_changes_nothing(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["cut"], run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    with pytest.raises(ScheduleChangedError):
        _fit(tmp_path / "out", run, spec={**SPEC, "peak_lr": 0.02},
             ckpt=runs["base"] / "out-cut" / "ckpt" / "step=8.ckpt")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before


def test_a_schedule_total_unlike_the_trainers_warns_once_naming_the_fix(tmp_path):
    with pytest.warns(LRTempoIntegrationWarning, match="total_steps=2") as caught:
        _fit(tmp_path / "out", tmp_path / "run", max_steps=2, monitor=False, spec={**SPEC, "total_steps": 20})
    (w,) = [w for w in caught if "estimated_stepping_batches" in str(w.message)]
    # at the user's line that called fit: Lightning's format then shows the category, as it does for any file
    # without "lightning" in its path (this test file's has it)
    assert w.filename == __file__
    with open(tmp_path / "run" / "log.csv") as fh:
        assert fh.readline().strip().split(",") == list(SCHEMA_COLUMNS)
    assert len(_rows(tmp_path / "run")) == 2


def test_a_schedule_without_an_end_warns_of_no_total_and_is_never_past_it(tmp_path):
    endless = {"type": "warmup", "warmup_steps": 3, "schedule": {"type": "constant", "lr": 0.01}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)  # its end_step (3) is no total to miss
        _fit(tmp_path / "out", tmp_path / "run", max_steps=6, monitor=False, spec=endless)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["past_schedule_end"] is False


def test_a_scheduler_the_trainer_does_not_step_warns_once_and_the_record_has_the_rate_applied(tmp_path):
    with pytest.warns(LRTempoIntegrationWarning, match="scheduler is at step 0 but the Trainer at global step 1") \
            as caught:
        _, model = _fit(tmp_path / "out", tmp_path / "run", max_steps=3, monitor=False, step_scheduler=False,
                        spec={**SPEC, "total_steps": 3, "warmup_steps": 0})
    assert sum("the scheduler is at step" in str(w.message) for w in caught) == 1
    rate = build_schedule({**SPEC, "total_steps": 3, "warmup_steps": 0})(0)
    assert [float(r["lr"]) for r in _rows(tmp_path / "run")] == model.applied == [rate] * 3


def test_the_same_callback_records_a_pytorch_lightning_trainer(tmp_path):
    lib = pytest.importorskip("pytorch_lightning")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LRTempoIntegrationWarning)
        _, model = _fit(tmp_path / "out", tmp_path / "run", lib=lib, max_steps=4, spec={**SPEC, "total_steps": 4})
    schedule = build_schedule({**SPEC, "total_steps": 4})
    rows = _rows(tmp_path / "run")
    assert [float(r["lr"]) for r in rows] == model.applied == [schedule(s) for s in range(4)]
    assert RunDir(tmp_path / "run").read_meta()["trainer"] == "pytorch-lightning"


def test_the_example_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("lightning_example",
                                                  ROOT / "examples/integrations/lightning_module.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main([str(tmp_path / "run"), "--steps", "8"]) == 0
    assert [int(r["step"]) for r in _rows(tmp_path / "run")] == list(range(8))


def test_the_package_imports_without_lightning():
    code = ("import sys; sys.modules['lightning'] = None; sys.modules['pytorch_lightning'] = None\n"
            "import lrtempo.integrations\n"
            "try:\n    import lrtempo.integrations.lightning\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingDependency") and "pip install 'lrtempo[lightning]'" in out
    assert out.count("\n") == 1


def _counted(optimizer, spec):
    return {"optimizer": optimizer, "lr_scheduler": {
        "scheduler": LRTempoScheduler(optimizer, build_schedule({**spec, "unit": "samples"})), "interval": "step"}}


def _plateau(optimizer, spec):
    return {"optimizer": optimizer, "lr_scheduler": {
        "scheduler": LRTempoScheduler(optimizer, build_schedule({"type": "plateau", "base": spec})),
        "interval": "step"}}


@pytest.mark.parametrize("configure, match", [
    (_counted, "the schedule counts samples"), (_plateau, "type: plateau schedule needs its evaluations reported"),
], ids=["samples", "plateau"])
def test_a_schedule_the_trainer_cannot_apply_exactly_is_refused_writing_nothing(tmp_path, configure, match):
    with pytest.raises(LRTempoIntegrationError, match=match):
        _fit(tmp_path / "out", tmp_path / "run", max_steps=2, configure=configure)
    assert not (tmp_path / "run").exists()
