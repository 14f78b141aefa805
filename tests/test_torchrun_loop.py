"""``examples/loops/torchrun_loop.py``: a hand-written loop under ``torchrun`` (two processes, gloo) writes the run
record of one run with the public ``RunDir``, ``Monitor`` and ``LRTempoScheduler``; ``lrtempo analyze`` and
``lrtempo values`` read it, every rate is the schedule's bit for bit, and it is the record of one process on the
same global batches."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrtempo import RunDir, build_schedule  # noqa: E402
from lrtempo.cli import main  # noqa: E402
from lrtempo.config import read_config_file  # noqa: E402
from lrtempo.train import read_log  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "loops" / "torchrun_loop.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
STEPS = 60


def _run(*argv: str) -> None:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The loop's record under torchrun with two processes, and with one process (no torchrun)."""
    folder = tmp_path_factory.mktemp("loops")
    two, one = RunDir(folder / "two"), RunDir(folder / "one")
    _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT), str(two.path),
         "--steps", str(STEPS))
    _run(str(SCRIPT), str(one.path), "--steps", str(STEPS))
    return two, one


def test_rank_0_writes_the_record_of_a_two_process_run(runs):
    two, _ = runs
    names = {p.name for p in two.path.iterdir()}
    assert {".lock", "config.yaml", "run.json", "log.csv", "layers.csv", "summary.json"} <= names
    assert names <= {".lock", "config.yaml", "run.json", "log.csv", "layers.csv", "summary.json", "events.jsonl"}
    meta = two.read_meta()
    assert meta["world_size"] == 2 and meta["environment"]["world_size"] == 2
    assert meta["environment"]["strategy"] == "ddp"
    assert two.log.read_text().splitlines()[0] == ",".join(meta["log_columns"])
    summary = two.read_summary()
    assert summary["status"] == "completed" and summary["steps"] == STEPS and summary["world_size"] == 2


def test_analyze_and_values_read_it_and_every_rate_is_the_schedules_bit_for_bit(runs, capsys):
    two, _ = runs
    schedule = build_schedule(read_config_file(two.config)["schedule"])
    rows = read_log(two.log)
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    assert [float(r["lr"]) for r in rows] == [schedule(k) for k in range(STEPS)]  # repr cells: the same bits

    assert main(["analyze", str(two.path), "--json", "--png", str(two.path / "a.png")]) == 0
    analysis = json.loads(capsys.readouterr().out)
    assert analysis["rows"] == STEPS and analysis["phase_source"] == "the run's schedule"
    phases = analysis["phases"]
    assert [p["phase"] for p in phases] == ["warmup", "early_decay", "mid_decay", "late_decay"]
    assert phases[0]["first_step"] == 0 and phases[-1]["last_step"] == STEPS - 1
    for p, q in zip(phases, phases[1:]):
        assert q["first_step"] == p["last_step"] + 1
    for p in phases:
        rates = [schedule(k) for k in range(p["first_step"], p["last_step"] + 1)]
        assert (p["lr_min"], p["lr_max"], p["updates"]) == (min(rates), max(rates), len(rates))

    assert main(["values", str(two.path)]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["step"], r["lr"]) for r in listed] == [(r["step"], r["lr"]) for r in rows]  # the log's cells


def test_two_processes_write_the_record_of_one_on_the_same_global_batches(runs):
    two, one = runs
    a, b = read_log(two.log), read_log(one.log)
    assert len(a) == len(b) == STEPS
    for x, y in zip(a, b):
        assert x["lr"] == y["lr"]
        assert float(x["loss"]) == pytest.approx(float(y["loss"]), rel=1e-5)  # the mean over the processes
        assert float(x["grad_l2_norm"]) == pytest.approx(float(y["grad_l2_norm"]), rel=1e-5)  # the global norm
    effective = [(float(x["effective_lr_median"]), float(y["effective_lr_median"])) for x, y in zip(a, b)
                 if x["effective_lr_median"]]
    assert effective and all(u == pytest.approx(v, rel=1e-4) for u, v in effective)
