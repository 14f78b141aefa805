"""Schedule races: the seed tables, and a run-config race over seeds in parallel processes."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402


def test_quadratic_preset_reproduces_seed_001(capsys, tmp_path):
    assert main(["race", "quadratic", "--png", str(tmp_path / "q.png")]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:5]}
    assert rows["constant"][1] == "0.151" and rows["cosine"][1] == "0.133" and rows["warmup+cosine"][1] == "0.130"
    assert rows["constant"][-1] == "0.118" and rows["cosine"][-1] == "0.004" and rows["warmup+cosine"][-1] == "0.005"
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_flipnet_preset_reproduces_seed_001(capsys, tmp_path):
    assert main(["race", "flipnet", "--json", "--png", str(tmp_path / "f.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    finals = {name: round(s["final"]["mean"], 4) for name, s in out["schedules"].items()}
    assert finals == {"constant": 0.1516, "step (halve every 10 epochs)": 0.1269, "cosine to 0.001": 0.1252}


def test_run_config_race_over_seeds_in_parallel(capsys, tmp_path):
    cfg = tmp_path / "base.yaml"
    cfg.write_text("task: flipnet\nseed: 3\nsteps: 200\noptimizer: {name: sgd, momentum: 0.9}\n"
                   "schedule: {type: constant, lr: 0.05}\n")
    other = tmp_path / "cosine.yaml"
    other.write_text("type: cosine\npeak_lr: 0.05\nmin_lr: 0.0005\ndecay_steps: 200\n")
    code = main(["race", str(cfg), "--schedule", str(other), "--seeds", "2", "--jobs", "2", "--json",
                 "--png", str(tmp_path / "r.png")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [3, 4] and set(out["schedules"]) == {"base", "cosine"}
    for summary in out["schedules"].values():
        assert len(summary["final"]["values"]) == 2 and summary["final"]["std"] >= 0
    # same seed, same initial weights and data: running again gives the same numbers
    assert main(["race", str(cfg), "--schedule", str(other), "--seeds", "2", "--jobs", "1", "--json",
                 "--png", str(tmp_path / "r2.png")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["schedules"]["cosine"]["final"]["values"] == out["schedules"]["cosine"]["final"]["values"]


def test_race_rejects_an_unknown_target(capsys):
    assert main(["race", "nope"]) == 2
    assert "neither a preset" in capsys.readouterr().err
