"""The trainer callbacks under mixed precision, on CPU: Lightning ``bf16-mixed`` and ``16-mixed``, the Hugging
Face Trainer's ``bf16=True`` and ``fp16=True``, and each with a real ``torch.amp.GradScaler`` (which neither
trainer makes on CPU by itself, so the tests give it one): the record's rates stay ``schedule(step)`` bit for
bit, its gradient norm is of the unscaled gradients, and an update the scaler skips (inf gradients) is
handled as ``lrtempo train`` handles one: no row, a ``SKIPPED_UPDATE`` event, ``skipped_updates`` counted.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrtempo import RunDir, build_schedule  # noqa: E402
from lrtempo.monitor import MonitorSettings  # noqa: E402

STEPS = 6
SPEC = {"type": "warmup_cosine", "peak_lr": 0.05, "min_lr": 0.001, "total_steps": STEPS, "warmup_steps": 2}
SETTINGS = MonitorSettings(effective_every=1, staleness_window=2, trap_window=4, spike_window=4)
SKIP = 2  # the update whose first micro-batch's loss is made inf
SCALE = 2.0**10  # the scaler's loss scale: small enough that float16 gradients of these losses do not overflow


def _rows(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _events(run: Path) -> list[dict]:
    path = RunDir(run).events
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    return x, x @ torch.randn(4, 1, generator=g) + 3.0


# -- Lightning -----------------------------------------------------------------------------------------------------

def _fit(tmp_path: Path, precision: str, *, scaler=None, inf_at=None):
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.plugins.precision import MixedPrecision

    from lrtempo.integrations.lightning import LRTempoCallback
    from lrtempo.torch import LRTempoScheduler

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
            self.applied, self.norms, self.made_inf = [], [], False

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            if self.trainer.global_step == inf_at and not self.made_inf:
                self.made_inf = True
                return loss * float("inf")
            return loss

        def on_before_optimizer_step(self, optimizer):  # after the callback's hook: the same gradients
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.parameters()]))))

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=0.0)
            optimizer.register_step_post_hook(lambda opt, *_: self.applied.append(opt.param_groups[0]["lr"]))
            scheduler = LRTempoScheduler(optimizer, build_schedule(SPEC))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    pl.seed_everything(0, verbose=False)
    model = Tiny()
    options = {"plugins": [MixedPrecision(precision, "cpu", scaler=scaler)]} if scaler else {"precision": precision}
    trainer = pl.Trainer(max_steps=STEPS, accumulate_grad_batches=2, gradient_clip_val=0.5, accelerator="cpu",
                         devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path / "out",
                         callbacks=[LRTempoCallback(tmp_path / "run", monitor=SETTINGS)], **options)
    x, y = _data()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", message=".*AMP with fp16 is not supported on CPU")
        trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4))
    return model, _rows(tmp_path / "run")


# on CPU Lightning runs precision="16-mixed" as "bf16-mixed" (it warns so); the record says what ran
@pytest.mark.filterwarnings("ignore:.*AMP with fp16 is not supported on CPU")
@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", "bfloat16"), ("16-mixed", "bfloat16")])
def test_lightning_mixed_precision_keeps_the_rates_exact_and_the_norm_of_the_gradients(tmp_path, precision, dtype):
    model, rows = _fit(tmp_path, precision)
    schedule = build_schedule(SPEC)
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    assert [float(r["lr"]) for r in rows] == model.applied == [schedule(s) for s in range(STEPS)]
    assert [float(r["grad_l2_norm"]) for r in rows] == pytest.approx(model.norms, rel=1e-6)
    assert all(r["effective_lr_median"] for r in rows)
    assert RunDir(tmp_path / "run").read_meta()["environment"]["dtype"] == dtype


def test_lightning_under_a_grad_scaler_records_the_unscaled_norm(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    model, rows = _fit(tmp_path, "16-mixed", scaler=scaler)
    norms = [float(r["grad_l2_norm"]) for r in rows]
    assert scaler.get_scale() == SCALE  # every backward pass ran on losses scaled by this much, and none overflowed
    assert norms == pytest.approx(model.norms, rel=1e-6) and max(norms) < 50  # the scaled ones are 1,024x
    assert [float(r["lr"]) for r in rows] == model.applied == [build_schedule(SPEC)(s) for s in range(STEPS)]
    assert RunDir(tmp_path / "run").read_meta()["environment"]["dtype"] == "float16"


def test_lightning_an_update_the_scaler_skips_has_no_row_and_an_event(tmp_path):
    from lrtempo.integrations.lightning import LRTempoIntegrationWarning

    with pytest.warns(LRTempoIntegrationWarning, match="Lightning stepped the scheduler anyway"):
        model, rows = _fit(tmp_path, "16-mixed", scaler=torch.amp.GradScaler("cpu", init_scale=SCALE),
                          inf_at=SKIP)
    schedule = build_schedule(SPEC)
    steps = [s for s in range(STEPS) if s != SKIP]  # Lightning moves its step (and the scheduler) on regardless
    assert [int(r["step"]) for r in rows] == steps
    assert [float(r["lr"]) for r in rows] == model.applied == [schedule(s) for s in steps]
    assert all(float(r["loss"]) < 1e3 for r in rows)
    skipped = [e for e in _events(tmp_path / "run") if e["kind"] == "SKIPPED_UPDATE"]
    assert [e["step"] for e in skipped] == [SKIP]
    assert RunDir(tmp_path / "run").read_summary()["skipped_updates"] == 1


# -- Hugging Face Trainer ------------------------------------------------------------------------------------------

def _train(tmp_path: Path, flag: str, *, scaler=None, inf_at_call=None):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrtempo.integrations.hf import LRTempoCallback
    from lrtempo.torch import LRTempoScheduler

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
            self.calls = 0

        def forward(self, x, y):
            self.calls += 1
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            return {"loss": loss * float("inf") if self.calls == inf_at_call else loss}

    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    applied: list[float] = []
    optimizer.register_step_post_hook(lambda opt, *_: applied.append(opt.param_groups[0]["lr"]))
    x, y = _data()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_steps=STEPS, max_grad_norm=0.5, save_strategy="no", logging_steps=1, report_to=[], use_cpu=True,
        seed=0, disable_tqdm=True, logging_nan_inf_filter=False, **{flag: True})
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=[{"x": x[i], "y": y[i]} for i in range(len(x))],
        optimizers=(optimizer, LRTempoScheduler(optimizer, build_schedule(SPEC))),
        callbacks=[LRTempoCallback(tmp_path / "run", monitor=SETTINGS)])
    if scaler is not None:  # accelerate makes a scaler only on GPUs; its fp16 code path is the same with one
        trainer.accelerator.scaler, trainer.accelerator.native_amp = scaler, True
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h and "grad_norm" in h]
    return applied, logged, _rows(tmp_path / "run")


@pytest.mark.parametrize("flag, dtype", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_hf_mixed_precision_keeps_the_rates_exact_and_the_trainers_norm_and_loss(tmp_path, flag, dtype):
    applied, logged, rows = _train(tmp_path, flag)
    schedule = build_schedule(SPEC)
    assert [float(r["lr"]) for r in rows] == applied == [schedule(s) for s in range(STEPS)]
    assert [float(r["grad_l2_norm"]) for r in rows] == [h["grad_norm"] for h in logged]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in logged]
    assert RunDir(tmp_path / "run").read_meta()["environment"]["dtype"] == dtype


def test_hf_under_a_grad_scaler_the_norm_is_unscaled_and_a_skipped_update_has_no_row(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE)
    applied, logged, rows = _train(tmp_path, "fp16", scaler=scaler, inf_at_call=2 * SKIP + 1)
    schedule = build_schedule(SPEC)
    assert scaler.get_scale() == SCALE / 2  # halved once, by the skipped update
    # the Trainer does not step the scheduler over a skipped update: the record's steps stay the updates applied
    assert [int(r["step"]) for r in rows] == list(range(STEPS - 1))
    assert [float(r["lr"]) for r in rows] == applied == [schedule(s) for s in range(STEPS - 1)]
    kept = [h for i, h in enumerate(logged) if i != SKIP]
    norms = [float(r["grad_l2_norm"]) for r in rows]
    assert norms == [h["grad_norm"] for h in kept] and max(norms) < 50  # unscaled (the scaled are 512x)
    skipped = [e for e in _events(tmp_path / "run") if e["kind"] == "SKIPPED_UPDATE"]
    assert [e["step"] for e in skipped] == [SKIP]
    summary = RunDir(tmp_path / "run").read_summary()
    assert (summary["skipped_updates"], summary["steps"]) == (1, STEPS - 1)
