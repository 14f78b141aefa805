"""``distributed: fsdp``: two processes under torchrun (gloo) against one process on the same global batch, an
exact resume after a kill in the middle of a checkpoint write, the monitor's statistics over the full
parameters, and the config's refusals."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402
from lrtempo.train import load_checkpoint, read_log  # noqa: E402
from lrtempo.train._fsdp import _units, sample_counts, shard_rows  # noqa: E402

# this interpreter's torchrun (another on PATH may belong to another Python)
TORCHRUN = str(Path(sys.executable).with_name("torchrun")) if Path(sys.executable).with_name("torchrun").exists() \
    else shutil.which("torchrun") or "torchrun"
needs_torchrun = pytest.mark.skipif(shutil.which(TORCHRUN) is None or not torch.distributed.is_available(),
                                    reason="torchrun not found")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "LRTEMPO_BACKEND": "gloo"}

RUN = """\
name: f
task: flipnet
seed: 3
distributed: fsdp
schedule: {type: warmup_cosine, peak_lr: 0.05, total_steps: 8, warmup_steps: 2}
grad_clip: 0.3
accumulation_steps: 2
checkpoint_every: 3
keep_checkpoints: 2
monitor: {every_signal: true, per_layer: true}
"""

# runs `lrtempo ARGV...` under torchrun; rank 0 kills itself (SIGKILL) when the checkpoint folder named by
# KILL_AT is complete in its temp folder and about to be renamed into place
KILLER = """\
import os, signal, sys
from lrtempo.train import _fsdp
publish = _fsdp._publish
def killing(temp, final):
    if int(os.environ["RANK"]) == 0 and final.name == os.environ.get("KILL_AT"):
        os.kill(os.getpid(), signal.SIGKILL)
    return publish(temp, final)
_fsdp._publish = killing
from lrtempo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(script: Path, *args: object, **env: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (a free port of its own: no clash with other runs) of two processes."""
    return subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", str(script), *map(str, args)],
                          capture_output=True, text=True, env={**ENV, **env}, timeout=300)


def _close(a: str, b: str, rel: float) -> bool:
    if a == "" or b == "":
        return a == b
    return float(a) == pytest.approx(float(b), rel=rel, abs=1e-12)


MEASURED = ("grad_l2_norm", "loss", "effective_lr_median", "effective_lr_p90", "effective_lr_max",
            "update_ratio", "momentum_alignment")


@needs_torchrun
def test_two_processes_match_one_and_a_kill_mid_checkpoint_resumes_exactly(tmp_path):
    cfg = tmp_path / "f.yaml"
    cfg.write_text(RUN)
    script = tmp_path / "run.py"
    script.write_text(KILLER)
    whole = _torchrun(script, "train", cfg, "--out", tmp_path / "two", "--quiet")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _torchrun(script, "train", cfg, "--out", tmp_path / "killed", "--quiet",
                       KILL_AT="step-00000006.pt")
    assert killed.returncode != 0
    run = tmp_path / "killed" / "f"
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left[0].startswith(".step-00000006.pt.") and left[1:] == ["step-00000003.pt"], left
    resumed = _torchrun(script, "train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert code_and_one_process(cfg, tmp_path) == 0

    two, one = tmp_path / "two" / "f", tmp_path / "one" / "f"
    # the kill's temp folder is gone; retention removed folders as it removes files
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000006.pt", "step-00000008.pt"]
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step-00000006.pt", "step-00000008.pt"]
    assert {".metadata", "state.pt", "__0_0.distcp", "__1_0.distcp"} <= \
        {p.name for p in (two / "checkpoints" / "step-00000008.pt").iterdir()}

    def rows(d):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(d / "log.csv")]

    assert rows(run) == rows(two), "the resumed run's rows are the uninterrupted run's"
    assert (run / "layers.csv").read_text() == (two / "layers.csv").read_text()
    sharded, single = rows(two), rows(one)
    assert [r["step"] for r in sharded] == [str(k) for k in range(8)]
    for a, b in zip(sharded, single):
        assert a["lr"] == b["lr"], "every rank applies the rate one process applies, bit for bit"
        for key in MEASURED:
            assert _close(a[key], b[key], 1e-5), (a["step"], key, a[key], b[key])
    layers_two = [line.split(",") for line in (two / "layers.csv").read_text().splitlines()]
    layers_one = [line.split(",") for line in (one / "layers.csv").read_text().splitlines()]
    assert layers_two[0] == layers_one[0] and len(layers_two) == len(layers_one) == 1 + 8 * 4
    for a, b in zip(layers_two[1:], layers_one[1:]):
        assert a[:2] == b[:2] and all(_close(x, y, 1e-5) for x, y in zip(a[2:], b[2:])), (a, b)
    meta = json.loads((two / "run.json").read_text())
    assert meta["environment"]["strategy"] == "fsdp" and meta["environment"]["world_size"] == 2
    # a branch copies the checkpoint folder whole (a resume under torchrun continues it as any resume)
    assert main(["branch", str(two), "--at", "6", "--cooldown", "2", "--out", str(tmp_path / "branch")]) == 0
    copied = tmp_path / "branch" / "checkpoints" / "step-00000006.pt"
    source = two / "checkpoints" / "step-00000006.pt"
    assert {p.name: p.read_bytes() for p in copied.iterdir()} == {p.name: p.read_bytes() for p in source.iterdir()}
    assert load_checkpoint(copied)["step"] == 6
    assert json.loads((one / "run.json").read_text())["environment"]["strategy"] == "single"


def code_and_one_process(cfg: Path, tmp_path: Path) -> int:
    """The same config in this one process (unsharded, with the note saying so)."""
    return main(["train", str(cfg), "--out", str(tmp_path / "one"), "--quiet"])


# the monitor's statistics of one update: a model sharded over two ranks against the same model whole, on the
# same data on every rank (so the averaged gradient is bit for bit the whole model's): a 301 x 301 weight is
# sampled with stride 2 and rank 1's shard starts at an odd flat offset; a 1 x 301 weight and its bias leave
# rank 1 an empty shard; the nested Sequential is one FSDP unit (its Linear is not another)
STATS = """\
import json, sys, torch, torch.distributed as dist
from lrtempo import WarmupCosine
from lrtempo.monitor import Monitor, MonitorSettings
from lrtempo.train import build_optimizer
from lrtempo.train._fsdp import ShardedStats, shard_model
dist.init_process_group("gloo")
def model():
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Linear(301, 301), torch.nn.Tanh())
    return torch.nn.Sequential(inner, torch.nn.Linear(301, 1))
gen = torch.Generator().manual_seed(1)
x, y = torch.randn(8, 301, generator=gen), torch.randn(8, 1, generator=gen)
models = [model(), shard_model(model(), torch.device("cpu"), dist.get_world_size())]
opts = [build_optimizer(m, lr=1e-3, weight_decay=0.1) for m in models]
settings = MonitorSettings(every_signal=True, per_layer=True)
mons = [Monitor(WarmupCosine(peak_lr=1e-3, total_steps=10), settings, collect_layers=True) for _ in models]
for m, mon in zip(models, mons):
    mon.name_parameters(m)
for step in range(3):
    losses = []
    for m, o in zip(models, opts):
        o.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), y)
        loss.backward()
        losses.append(loss.detach())
        if step < 2:
            o.step()
names, extra = mons[0].device_stats(2, opts[0])
norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad for p in models[0].parameters()])))
whole = {"loss": losses[0].item(), "norm": norm.item(), **dict(zip(names, extra.tolist()))}
_, _, names, stats = ShardedStats(mons[1], dist.get_world_size()).reduce(2, opts[1], losses[1])
values = stats.tolist()
sharded = {"loss": values[0], "norm": values[1], **dict(zip(names, values[2:]))}
layers = [[mon._names[id(p)] for p in mon._layer_params] for mon in mons]
if dist.get_rank() == 0:
    json.dump({"whole": whole, "sharded": sharded, "layers": layers}, open(sys.argv[1], "w"))
dist.destroy_process_group()
"""


@needs_torchrun
def test_the_monitors_statistics_are_those_of_the_full_parameters(tmp_path):
    script = tmp_path / "stats.py"
    script.write_text(STATS)
    out = tmp_path / "stats.json"
    done = _torchrun(script, out)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())
    whole, sharded = found["whole"], found["sharded"]
    assert found["layers"][0] == found["layers"][1] == ["0.0.weight", "1.weight", "0.0.bias", "1.bias"]
    assert sorted(whole) == sorted(sharded) and len(whole) == 2 + 4 + 4 * 4 + 1 + 4
    for key, value in whole.items():
        if "median" in key or "p90" in key or "max" in key:  # order statistics of the very same elements
            assert sharded[key] == value, key
        else:  # sums over the shards, in another order
            assert sharded[key] == pytest.approx(value, rel=1e-5), key


# -- the pure parts: the units, which rows a rank holds, which elements it samples --------------------------------

def test_the_units_are_the_outermost_containers_elements():
    from lrtempo.train.tasks import CharLMTask

    model = CharLMTask({"max_bytes": 20_000}, seed=0).model
    assert _units(model) == list(model.blocks)  # each block, not also the Sequential inside it
    flat = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert _units(flat) == [flat[0], flat[2]]


@given(rows=st.integers(0, 400), world=st.integers(1, 9))
def test_shards_cover_the_rows_in_order(rows, world):
    shards = shard_rows(rows, world)
    assert len(shards) == world
    assert [first for first, _ in shards] == [min(r * shards[0][1], rows) for r in range(world)]
    assert sum(n for _, n in shards) == rows
    expected = [len(c) for c in torch.arange(rows).chunk(world)] if rows else []
    assert [n for _, n in shards if n] == expected


@settings(max_examples=200)
@given(rows=st.integers(1, 3000), row=st.integers(1, 200), world=st.integers(1, 8))
def test_the_shards_samples_are_the_whole_tensors(rows, row, world):
    shards = shard_rows(rows, world)
    starts, counts = [f * row for f, _ in shards], [n * row for _, n in shards]
    k, picks = sample_counts(rows * row, starts, counts)
    assert k == (math.ceil(rows * row / 65_536) if rows * row > 65_536 else 1)
    taken = [start + first + j * k for start, (first, n) in zip(starts, picks) for j in range(n)]
    assert taken == list(range(0, rows * row, k))
    assert all(first + (n - 1) * k < count for (first, n), count in zip(picks, counts) if n)


# -- the config ----------------------------------------------------------------------------------------------------

QUAD = """\
name: q
task: quadratic
seed: 1
schedule: {type: warmup_cosine, peak_lr: 0.1, total_steps: 6, warmup_steps: 1}
checkpoint_every: 3
eval_every: 0
"""


def _main(capsys, *args):
    capsys.readouterr()
    code = main([*map(str, args), "--quiet"])
    return (code, *capsys.readouterr())


def test_an_unknown_strategy_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "q.yaml"
    cfg.write_text(QUAD + "distributed: zero3\n")
    code, out, err = _main(capsys, "train", cfg, "--out", tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1
    assert "distributed: must be 'ddp' or 'fsdp' (got 'zero3')" in err
    assert not (tmp_path / "runs").exists()


def test_fsdp_refuses_schedulefree(tmp_path, capsys):
    cfg = tmp_path / "q.yaml"
    cfg.write_text(QUAD + "distributed: fsdp\noptimizer: {name: schedulefree}\n")
    code, out, err = _main(capsys, "train", cfg, "--out", tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1 and "distributed: fsdp does not take optimizer.name schedulefree" in err


def test_one_process_trains_whole_with_a_note_and_the_strategy_stays_out_of_the_hash(tmp_path, capsys):
    for name, extra in (("ddp", ""), ("fsdp", "distributed: fsdp\n")):
        (tmp_path / f"{name}.yaml").write_text(QUAD + extra)
        code, out, err = _main(capsys, "train", tmp_path / f"{name}.yaml", "--out", tmp_path / name)
        assert code == 0, err
        noted = "distributed: fsdp shards the model only under torchrun; this one process trains it whole" in err
        assert noted == (name == "fsdp")
    ddp, fsdp = (json.loads((tmp_path / n / "q" / "run.json").read_text()) for n in ("ddp", "fsdp"))
    assert ddp["environment"]["strategy"] == fsdp["environment"]["strategy"] == "single"
    assert ddp["config_hash"] == fsdp["config_hash"]
    assert "distributed" not in (tmp_path / "ddp" / "q" / "config.yaml").read_text()
    assert "distributed: fsdp" in (tmp_path / "fsdp" / "q" / "config.yaml").read_text()

    def rows(name):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(tmp_path / name / "q" / "log.csv")]

    assert rows("ddp") == rows("fsdp")


def test_a_resume_keeps_the_strategy(tmp_path, capsys):
    cfg = tmp_path / "q.yaml"
    cfg.write_text(QUAD)
    assert _main(capsys, "train", cfg, "--out", tmp_path, "--steps", "3")[0] == 0
    before = (tmp_path / "q" / "log.csv").read_bytes()
    cfg.write_text(QUAD + "distributed: fsdp\n")
    code, out, err = _main(capsys, "train", cfg, "--resume", tmp_path / "q")
    assert code == 2 and err.count("\n") == 1
    assert "distributed: CONFIG has 'fsdp' but the run was trained with 'ddp'" in err
    assert (tmp_path / "q" / "log.csv").read_bytes() == before
