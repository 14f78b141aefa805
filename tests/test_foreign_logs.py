"""``analyze`` and ``report`` on other trainers' records, each written in the test by the real library.

A tiny Hugging Face Trainer run (``logging_steps=1``, checkpoints, evaluation, ``report_to="tensorboard"``), a
tiny Lightning run (``CSVLogger``, ``TensorBoardLogger``, ``LearningRateMonitor``), and a hand-written loop
with ``torch.utils.tensorboard.SummaryWriter`` (resumed once). The rates read back are compared with what the
optimizer applied at each update (an optimizer step pre-hook notes ``param_groups[0]["lr"]``): bit for bit
where the record keeps float64, as float32 from TensorBoard.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lrtempo.analysis import analyze_log, read_metrics, report_data
from lrtempo.analysis._foreign import parse_mapping, read_any_log
from lrtempo.cli import main as cli_main
from lrtempo.config import ConfigError

STEPS = 6  # updates in each run


def _need(*names):
    for name in names:
        pytest.importorskip(name)
    import torch

    return torch


def _data(torch, n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, x.sum(1, keepdim=True) + 1.0


def _norm(torch, params) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


# -- the runs --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """A Trainer run: 6 updates, a log entry each, checkpoints at 3 and 6, evaluation every 2, TensorBoard."""
    torch = _need("torch", "transformers", "accelerate", "tensorboard")
    import transformers

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def forward(self, x, labels):
            return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}

    class Seen(transformers.TrainerCallback):
        def __init__(self):
            self.evals = {}

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.evals[state.global_step] = metrics["eval_loss"]

    out = tmp_path_factory.mktemp("hf") / "out"
    x, y = _data(torch)
    rows = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    torch.manual_seed(0)
    model, seen = Tiny(), Seen()
    applied, norms, losses = [], [], []
    model.register_forward_hook(lambda m, a, o: losses.append(float(o["loss"].detach())) if m.training else None)
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=STEPS, per_device_train_batch_size=4, learning_rate=0.1, warmup_steps=2,
        max_grad_norm=1e9, logging_steps=1, save_steps=3, eval_strategy="steps", eval_steps=2,
        report_to=["tensorboard"], use_cpu=True, disable_tqdm=True, seed=0, dataloader_num_workers=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows[:8],
                                   callbacks=[seen])
    trainer.create_optimizer_and_scheduler(num_training_steps=STEPS)

    def pre_hook(optimizer, *_):
        applied.append(optimizer.param_groups[0]["lr"])
        norms.append(_norm(torch, [p for g in optimizer.param_groups for p in g["params"]]))

    trainer.optimizer.register_step_pre_hook(pre_hook)
    trainer.train()
    return {"out": out, "applied": applied, "norms": norms, "losses": losses, "evals": seen.evals,
            "trainer": trainer}


def _lightning_fit(root: Path, steps: int, torch):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)
            self.applied, self.losses, self.vals = [], [], {}

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.losses.append(float(loss.detach()))
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.vals[self.trainer.global_step] = float(loss)
            self.log("val_loss", loss)

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=0.1)
            opt.register_step_pre_hook(lambda o, *_: self.applied.append(o.param_groups[0]["lr"]))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 7)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    x, y = _data(torch, 16)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    torch.manual_seed(0)
    module = Tiny()
    trainer = pl.Trainer(
        max_steps=steps, logger=[CSVLogger(str(root), name="csv"), TensorBoardLogger(str(root), name="tb")],
        callbacks=[LearningRateMonitor(logging_interval="step")], log_every_n_steps=1, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu", limit_val_batches=1,
        val_check_interval=2, check_val_every_n_epoch=None, num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)
    return module


@pytest.fixture(scope="module")
def lightning(tmp_path_factory):
    """A Lightning run of 6 updates (validation after every 2), then one of 4 in the same folders (version_1)."""
    torch = _need("torch", "lightning", "tensorboard")
    root = tmp_path_factory.mktemp("pl")
    first = _lightning_fit(root, STEPS, torch)
    second = _lightning_fit(root, 4, torch)
    return {"root": root, "first": first, "second": second}


@pytest.fixture(scope="module")
def summary_writer(tmp_path_factory):
    """A hand-written loop logging with SummaryWriter: lrtempo's tag names in ``own`` (stopped after update 4
    and resumed from a checkpoint at 3 by a second writer: two event files), other names in ``custom``."""
    torch = _need("torch", "tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("tb")
    x, y = _data(torch)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s) ** 0.5)
    rows, checkpoint = {}, None
    own, custom = SummaryWriter(str(root / "own")), SummaryWriter(str(root / "custom"))
    for step in [0, 1, 2, 3, 4, 3, 4, 5, 6, 7]:
        if step == 3 and checkpoint is None:
            checkpoint = (model.state_dict(), opt.state_dict(), sched.state_dict())
        elif step == 3:  # the resumed run: a new writer, a new event file, steps 3.. again
            own.close()
            for part, state in zip((model, opt, sched), checkpoint):
                part.load_state_dict(state)
            own = SummaryWriter(str(root / "own"))
        loss = torch.nn.functional.mse_loss(model(x[step * 4:step * 4 + 4]), y[step * 4:step * 4 + 4])
        opt.zero_grad()
        loss.backward()
        lr, norm = opt.param_groups[0]["lr"], _norm(torch, model.parameters())
        opt.step()
        sched.step()
        rows[step] = (lr, norm, float(loss))
        for name, value in zip(("lr", "grad_l2_norm", "loss"), rows[step]):
            own.add_scalar(name, value, step)
        for name, value in zip(("rate", "gnorm", "batch_loss"), rows[step]):
            custom.add_scalar(name, value, step)
    own.close()
    custom.close()
    return {"root": root, "rows": rows}


# -- Hugging Face ----------------------------------------------------------------------------------------------

def test_hf_trainer_state_steps_and_rates_are_the_updates_applied(hf):
    """An entry at global step s is update s - 1: its rate is the one the optimizer applied, bit for bit."""
    applied, log = hf["applied"], read_any_log(hf["out"] / "checkpoint-6")
    assert len(applied) == STEPS and len(set(applied)) > 3  # a rate that changes, so a shift cannot hide
    assert log.steps.dtype == np.int64 and log.steps.tolist() == list(range(STEPS))
    assert log.columns["lr"].tolist() == applied
    assert log.columns["loss"].tolist() == hf["losses"]  # one micro-batch an update: its loss, exactly
    np.testing.assert_allclose(log.columns["grad_l2_norm"], hf["norms"], rtol=1e-6)  # before clipping
    val = log.columns["val_loss"]
    assert sorted(hf["evals"]) == [2, 4, 6]
    assert np.flatnonzero(np.isfinite(val)).tolist() == [1, 3, 5]  # evaluated after updates 2, 4, 6 (from 1)
    assert [val[s - 1] for s in (2, 4, 6)] == [hf["evals"][s] for s in (2, 4, 6)]
    assert any("global step s" in n and "s - 1" in n for n in log.notes)


def test_hf_output_dir_reads_the_most_complete_record_and_says_which(hf, tmp_path):
    three = read_any_log(hf["out"] / "checkpoint-3")
    assert three.steps.tolist() == [0, 1, 2] and three.columns["lr"].tolist() == hf["applied"][:3]
    log = read_any_log(hf["out"])
    assert log.path == hf["out"] / "checkpoint-6" / "trainer_state.json"
    assert any("read checkpoint-6/trainer_state.json, the most complete of its 2 records" in n for n in log.notes)
    copy = tmp_path / "out"
    shutil.copytree(hf["out"], copy, ignore=shutil.ignore_patterns("*.safetensors", "*.pt", "*.pth", "runs"))
    hf["trainer"].state.save_to_json(str(copy / "trainer_state.json"))  # what trainer.save_state() writes
    final = read_any_log(copy)
    assert final.path == copy / "trainer_state.json"  # a tie: the output directory's own record
    assert final.columns["lr"].tolist() == hf["applied"]
    (copy / "trainer_state.json").unlink()
    shutil.rmtree(copy / "checkpoint-6")
    assert read_any_log(copy).path == copy / "checkpoint-3" / "trainer_state.json"


def test_hf_tensorboard_files_have_the_same_steps_as_float32(hf):
    runs = hf["out"] / "runs"
    log = read_any_log(runs)
    assert log.steps.tolist() == list(range(STEPS))
    assert log.columns["lr"].tolist() == [float(np.float32(a)) for a in hf["applied"]]
    assert log.columns["loss"].tolist() == [float(np.float32(v)) for v in hf["losses"]]
    np.testing.assert_allclose(log.columns["grad_l2_norm"], hf["norms"], rtol=1e-6)
    assert any("read the TensorBoard files in" in n for n in log.notes)
    assert any("train/learning_rate" in n and "s - 1" in n for n in log.notes)


def test_hf_analyze_and_report_commands(hf, tmp_path, capsys):
    copy = tmp_path / "out"
    shutil.copytree(hf["out"], copy, ignore=shutil.ignore_patterns("*.safetensors", "*.pt", "*.pth"))
    assert cli_main(["analyze", str(copy / "checkpoint-6"), "--json", "--png", str(tmp_path / "a.png")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == STEPS and any("lr <- learning_rate" in n for n in data["notes"])
    assert cli_main(["report", str(copy)]) == 0
    assert "3 charts (lr, grad_l2_norm, loss)" in capsys.readouterr().out
    page = (copy / "report.html").read_text()
    assert "val_loss" in page and "checkpoint-6/trainer_state.json" in page
    data = report_data(copy)
    assert data.run is None  # another trainer's folder has no lrtempo run files


# -- Lightning ---------------------------------------------------------------------------------------------

def test_lightning_csv_steps_rates_losses_and_validation(lightning):
    first = lightning["first"]
    log = read_any_log(lightning["root"] / "csv" / "version_0")
    assert log.path.name == "metrics.csv"
    assert log.steps.tolist() == list(range(STEPS))
    assert log.columns["lr"].tolist() == first.applied  # the rate of update k at step k, bit for bit
    assert log.columns["loss"].tolist() == first.losses  # train_loss on its own lines, joined by step
    assert np.isnan(log.columns["grad_l2_norm"]).all()  # Lightning logs no norm by default
    val = log.columns["val_loss"]
    assert np.flatnonzero(np.isfinite(val)).tolist() == [1, 3, 5]  # after updates 1, 3, 5 (from 0)
    assert [val[k] for k in (1, 3, 5)] == [first.vals[k + 1] for k in (1, 3, 5)]
    assert any("metrics.csv (Lightning CSVLogger): read lr <- lr-AdamW" in n for n in log.notes)


def test_lightning_logs_folder_reads_the_newest_version(lightning, capsys):
    log = read_any_log(lightning["root"] / "csv")
    assert log.steps.tolist() == [0, 1, 2, 3]  # version_1: the second run, of 4 updates
    assert log.columns["lr"].tolist() == lightning["second"].applied
    assert any("csv: read version_1, the newest of its 2 version folders" in n for n in log.notes)
    assert cli_main(["analyze", str(lightning["root"] / "csv" / "version_0" / "metrics.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == STEPS


def test_lightning_tensorboard_logger(lightning):
    log = read_any_log(lightning["root"] / "tb" / "version_0")
    first = lightning["first"]
    assert log.steps.tolist() == list(range(STEPS))
    assert log.columns["lr"].tolist() == [float(np.float32(a)) for a in first.applied]
    assert log.columns["loss"].tolist() == [float(np.float32(v)) for v in first.losses]
    assert np.flatnonzero(np.isfinite(log.columns["val_loss"])).tolist() == [1, 3, 5]


# -- SummaryWriter, --map ------------------------------------------------------------------------------------

def test_summary_writer_with_lrtempo_names_resumed_in_a_second_event_file(summary_writer):
    own = summary_writer["root"] / "own"
    assert len(list(own.glob("events.out.tfevents*"))) == 2
    log = read_any_log(own)
    rows = summary_writer["rows"]
    assert log.steps.tolist() == list(range(8))
    for k, column in enumerate(("lr", "grad_l2_norm", "loss")):
        assert log.columns[column].tolist() == [float(np.float32(rows[s][k])) for s in range(8)]
    assert any("steps go back to a step logged before" in n and "(lr)" in n for n in log.notes)
    assert any("2 event files" in n for n in log.notes)


def test_map_names_the_tags_and_an_unknown_one_lists_them(summary_writer, capsys):
    custom = summary_writer["root"] / "custom"
    with pytest.raises(ConfigError, match=r"no learning-rate tag .*its tags: .*batch_loss.*gnorm.*rate"):
        read_any_log(custom)
    log = read_any_log(custom, mapping={"lr": "rate", "grad_l2_norm": "gnorm", "loss": "batch_loss"})
    assert log.columns["lr"].tolist() == [float(np.float32(summary_writer["rows"][s][0])) for s in range(8)]
    assert cli_main(["analyze", str(custom), "--json", "--map", "lr=rate,grad_l2_norm=gnorm,loss=batch_loss"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 8
    assert cli_main(["analyze", str(custom), "--map", "lr=rate,loss=nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--map loss=nope: no tag 'nope'" in err and "gnorm" in err


@pytest.mark.parametrize("text, message", [
    ("lr", "'lr' is not COLUMN=TAG"), ("lr=", "is not COLUMN=TAG"), ("rate=x", "unknown column 'rate'"),
    ("lr=a,lr=b", "lr is named twice"), ("lr=a,,loss=b", "'' is not COLUMN=TAG")])
def test_bad_map_text_is_one_line_exit_2(text, message, tmp_path, capsys):
    with pytest.raises(ValueError, match=message):
        parse_mapping(text)
    for command in ("analyze", "report"):
        assert cli_main([command, str(tmp_path), "--map", text]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "--map" in err


def test_map_on_any_csv_including_its_step_column(lightning, tmp_path):
    text = (lightning["root"] / "csv" / "version_0" / "metrics.csv").read_text()
    path = tmp_path / "exported.csv"
    path.write_text(text.replace("step", "iteration", 1))
    with pytest.raises(ConfigError, match="missing column"):  # a CSV with no names read by default
        read_any_log(path)
    log = read_any_log(path, mapping={"step": "iteration", "lr": "lr-AdamW", "loss": "train_loss"})
    assert log.steps.tolist() == list(range(STEPS)) and log.columns["lr"].tolist() == lightning["first"].applied
    with pytest.raises(ConfigError, match="no 'step' column"):
        read_any_log(path, mapping={"lr": "lr-AdamW"})
    with pytest.raises(ConfigError, match="carries its own steps"):
        read_any_log(lightning["root"] / "tb" / "version_0", mapping={"step": "x"})
    with pytest.raises(ConfigError, match="mapping: unknown column 'rate'"):
        analyze_log(path, mapping={"rate": "x"})


def test_an_lrtempo_run_log_is_read_as_before(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,lr,grad_l2_norm,loss\n0,0.1,1.0,2.0\n1,0.2,1.0,1.5\n")
    assert read_metrics(path)["lr"].tolist() == [0.1, 0.2]
    log = read_any_log(path, mapping={"loss": "grad_l2_norm"})
    assert log.columns["loss"].tolist() == [1.0, 1.0]
    assert read_any_log(tmp_path).columns["loss"].tolist() == [2.0, 1.5]  # a folder with log.csv: lrtempo's


# -- refusals ----------------------------------------------------------------------------------------------

def _edited_state(hf, tmp_path, edit) -> Path:
    data = json.loads((hf["out"] / "checkpoint-6" / "trainer_state.json").read_text())
    edit(data["log_history"])
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(data))
    return path


def test_hf_refusals_name_the_file_and_the_entry(hf, tmp_path, capsys):
    path = _edited_state(hf, tmp_path, lambda h: h[3].update(learning_rate=-0.1))
    with pytest.raises(ConfigError, match=r"trainer_state.json: log_history entry 4: learning_rate \(read as lr\): "
                                          r"must be a finite number >= 0 \(got -0.1\)"):
        read_any_log(path)
    path = _edited_state(hf, tmp_path, lambda h: h[4].update(step=0.5))
    with pytest.raises(ConfigError, match=r"log_history entry 5: step must be a whole number"):
        read_any_log(path)
    path = _edited_state(hf, tmp_path, lambda h: h.append({"learning_rate": 0.1, "step": 0}))
    assert read_any_log(path).rows == STEPS  # global step 0: before any update
    path = _edited_state(hf, tmp_path, lambda h: h.append({"learning_rate": 0.1, "loss": 1.0, "step": 4}))
    log = read_any_log(path)  # a resumed run logs step 4 again: its value replaces the earlier ones from there
    assert log.steps.tolist() == [0, 1, 2, 3] and log.columns["lr"][-1] == 0.1
    assert any("steps go back to a step logged before at log_history entry" in n for n in log.notes)
    for big in ("1e400", "1" + "0" * 400, "1" + "0" * 400 + ".5", "true", '"0.1"'):
        path.write_text('{"log_history": [{"learning_rate": ' + big + ', "step": 1}]}')
        with pytest.raises(ConfigError, match=r"log_history entry 1: learning_rate: (not a number|beyond the float64)"):
            read_any_log(path)
    path.write_text('{"log_history": [{"learning_rate": 1e-3, "loss": 1e999, "step": 1}]}')
    with pytest.raises(ConfigError, match=r"log_history entry 1: loss: beyond the float64 range"):
        read_any_log(path)  # beyond float64, not infinite
    path.write_text('{"log_history": [{"learning_rate": 1e-3, "loss": NaN, "grad_norm": Infinity, "step": 1}, '
                    '{"learning_rate": 1e-3, "loss": 1e999, "step": 2}]}')
    with pytest.raises(ConfigError, match=r"log_history entry 2: loss: beyond the float64 range"):
        read_any_log(path)  # with Infinity in the file too
    path.write_text('{"log_history": [{"learning_rate": 1e-3, "loss": NaN, "grad_norm": Infinity, "step": 1}]}')
    log = read_any_log(path)
    assert log.columns["lr"].tolist() == [1e-3] and np.isnan(log.columns["loss"][0])
    assert log.columns["grad_l2_norm"].tolist() == [np.inf]  # a diverged update, as in a log CSV
    path.write_text("{")
    assert cli_main(["report", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err and not path.with_name("trainer_state.report.html").exists()


def test_lightning_csv_refusals_name_the_line(lightning, tmp_path):
    lines = (lightning["root"] / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    path = tmp_path / "metrics.csv"
    bad = lines[:]
    k = next(i for i, line in enumerate(bad) if line.startswith(",0.") and i > 2)
    bad[k] = bad[k].replace(",0.", ",-0.", 1)
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ConfigError, match=rf"line {k + 1}: lr-AdamW \(read as lr\): must be a finite number >= 0"):
        read_any_log(path)
    bad[k] = bad[k].replace(",-0.", ",x0.", 1)
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ConfigError, match=rf"line {k + 1}: lr-AdamW: not a number"):
        read_any_log(path)
    path.write_text("\n".join([lines[0], *lines[5:], *lines[1:3]]) + "\n")  # steps 0 after 5: out of order
    with pytest.raises(ConfigError, match=r"step: 0 after 5 goes back to a step no earlier row has"):
        read_any_log(path)


def test_tensorboard_refusals_and_the_missing_package(summary_writer, tmp_path, monkeypatch, capsys):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "neg"))
    writer.add_scalar("lr", 0.1, 0)
    writer.add_scalar("lr", -0.5, 1)
    writer.close()
    with pytest.raises(ConfigError, match=r"events\.out\.tfevents\S*, lr at step 1: lr: must be a finite number "
                                          r">= 0 \(got -0.5\)"):
        read_any_log(tmp_path / "neg")
    (tmp_path / "empty").mkdir()
    assert cli_main(["analyze", str(tmp_path / "empty")]) == 2
    assert "no log.csv (an lrtempo run), trainer_state.json" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for name in [m for m in sys.modules if m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert cli_main(["analyze", str(summary_writer["root"] / "own")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install tensorboard" in err
