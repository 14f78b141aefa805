"""``lrtempo diff A B``: the first differing step, the largest differences, per phase; exit 0 / 1 / 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrtempo.cli import main
from lrtempo.cli.diff import Tally, compare, differences
from lrtempo.config import build_schedule, load_schedule

WARMUP_COSINE = "type: warmup_cosine\npeak_lr: 0.1\nmin_lr: 0.001\ntotal_steps: 500\nwarmup_steps: {w}\n"


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pair(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(WARMUP_COSINE.format(w=100))
    b.write_text(WARMUP_COSINE.format(w=101))
    return a, b


def expected(a_path, b_path, steps):
    """The comparison computed directly on whole arrays, independently of the command."""
    va, vb = load_schedule(str(a_path)).at(steps), load_schedule(str(b_path)).at(steps)
    differs = va.view(np.uint64) != vb.view(np.uint64)
    absolute = np.abs(va - vb)
    scale = np.maximum(np.abs(va), np.abs(vb))
    relative = np.divide(absolute, scale, out=np.zeros_like(absolute), where=scale > 0)
    return va, vb, differs, absolute, relative


def test_identical_schedules_exit_0(capsys, pair):
    a, _ = pair
    code, out, err = run(capsys, "diff", str(a), str(a))
    assert code == 0 and err == ""
    assert "identical every compared step gives the same float64 bits" in out
    assert "501 compared (0..500)" in out  # default: 0 to the later end, inclusive


def test_differing_schedules_report_first_step_and_largest_differences(capsys, pair):
    a, b = pair
    code, out, err = run(capsys, "diff", str(a), str(b), "--json")
    assert code == 1 and err == ""
    got = json.loads(out)
    steps = np.arange(501)
    va, vb, differs, absolute, relative = expected(a, b, steps)
    first = int(np.flatnonzero(differs)[0])
    assert got["identical"] is False and got["differing_steps"] == int(differs.sum())
    assert got["first_difference"] == {"step": first, "a": va[first], "b": vb[first]}
    assert got["max_abs_difference"]["value"] == absolute.max()
    assert got["max_abs_difference"]["step"] == int(np.argmax(absolute))
    assert got["max_rel_difference"]["value"] == relative.max()
    assert got["max_rel_difference"]["step"] == int(np.argmax(relative))
    # per phase of A: warmup [0, 100), decay [100, 500), then the held floor from 500 on
    by_label = {p["label"]: p for p in got["phases"]}
    assert [p["label"] for p in got["phases"]][-1] == "after A's phases"
    for p in got["phases"]:
        stop = p["stop"] if p["stop"] is not None else 501
        sel = slice(p["start"], stop)
        assert p["steps"] == stop - p["start"]
        assert p["differing_steps"] == int(differs[sel].sum())
        if p["differing_steps"]:
            assert p["max_abs_difference"]["value"] == absolute[sel].max()
            assert p["first_difference"]["step"] == p["start"] + int(np.flatnonzero(differs[sel])[0])
    assert by_label["warmup"]["first_difference"]["step"] == 1  # 0.1 * 1 / 100 vs 0.1 * 1 / 101


def test_the_text_report(capsys, pair):
    a, b = pair
    code, out, _ = run(capsys, "diff", str(a), str(b))
    assert code == 1
    lines = out.splitlines()
    assert lines[3].startswith("differ    at ") and lines[4].startswith("first     step 1: A ")
    assert "per phase of A:" in out and "warmup" in out and "decay" in out


def test_chunk_size_does_not_change_the_result(monkeypatch, pair):
    a, b = (load_schedule(str(p)) for p in pair)
    ranges = [range(0, 600), range(700, 2000, 3)]
    whole = compare(a, b, ranges)
    monkeypatch.setattr("lrtempo._chunks.CHUNK", 7)
    chunked = compare(a, b, ranges)
    assert whole.total.as_dict() == chunked.total.as_dict()
    assert [p.as_dict() for p in whole.phases] == [p.as_dict() for p in chunked.phases]


def test_a_run_directory_and_a_compat_spec_against_a_native_one(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: r\ntask: linear\nsteps: 40\n"
                                         "schedule: {type: step, base_lr: 0.1, step_size: 3, gamma: 0.5}\n")
    spec = tmp_path / "torch.yaml"
    spec.write_text("type: compat\nlibrary: torch\nname: StepLR\nbase_lr: 0.1\nkwargs: {step_size: 3, gamma: 0.5}\n")
    code, out, err = run(capsys, "diff", str(run_dir), str(spec), "--until", "40")
    a, b = build_schedule({"type": "step", "base_lr": 0.1, "step_size": 3, "gamma": 0.5}), load_schedule(str(spec))
    same = a.at(np.arange(41)).tolist() == b.at(np.arange(41)).tolist()
    assert code == (0 if same else 1), out
    assert f"A         {run_dir / 'config.yaml'}" in out


def test_a_huge_strided_range_streams(capsys, pair):
    a, b = pair
    code, out, _ = run(capsys, "diff", str(a), str(b), "--steps", "0:1000000000000:999983,5", "--json")
    got = json.loads(out)
    assert got["steps"] == len(range(0, 10**12, 999983)) + 1
    assert code == 1 and got["first_difference"]["step"] == 5


@pytest.mark.parametrize("argv, message", [
    (["--steps", "5:1"], "--steps: the range '5:1' is empty"),
    (["--steps", "0:10", "--until", "5"], "give --steps or --until, not both"),
])
def test_bad_input_is_one_line_exit_2(capsys, pair, argv, message):
    a, b = pair
    code, out, err = run(capsys, "diff", str(a), str(b), *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err


def test_bad_files_exit_2(capsys, tmp_path, pair):
    a, _ = pair
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "diff", str(a), str(tmp_path / "empty"))
    assert code == 2 and "not a run directory" in err and err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: cosine\npeak_lr: high\n")
    code, _, err = run(capsys, "diff", str(a), str(bad))
    assert code == 2 and "peak_lr" in err and err.count("\n") == 1


def test_a_schedule_that_raises_past_its_end_is_exit_2(capsys, tmp_path, pair):
    one_cycle = tmp_path / "oc.yaml"
    one_cycle.write_text("type: compat\nlibrary: torch\nname: OneCycleLR\nkwargs: {max_lr: 0.1, total_steps: 10}\n")
    code, out, err = run(capsys, "diff", str(one_cycle), str(one_cycle))
    assert code == 0  # the default range ends at its end
    code, out, err = run(capsys, "diff", str(one_cycle), str(one_cycle), "--until", "11")
    assert code == 2 and err.count("\n") == 1 and "A cannot be evaluated at steps 0..11" in err


def test_signed_zero_and_nan_count_as_differences():
    t = Tally("x")
    t.add(np.array([3, 4, 5]), np.array([0.0, 1.0, np.nan]), np.array([-0.0, 1.0, np.nan]))
    assert t.differing == 1 and t.first == (3, 0.0, -0.0) and t.max_abs[:2] == (0.0, 3)
    absolute, relative = differences(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    assert absolute.tolist() == [np.inf, 0.0] and relative.tolist() == [np.inf, 0.0]


def test_ties_keep_the_first_step_across_chunks(monkeypatch):
    a = build_schedule({"type": "constant", "lr": 0.1})
    b = build_schedule({"type": "constant", "lr": 0.2})
    monkeypatch.setattr("lrtempo._chunks.CHUNK", 7)
    c = compare(a, b, [range(3, 100)])
    assert c.total.max_abs[1] == 3 and c.total.max_rel[1] == 3 and c.total.first[0] == 3
    assert c.total.differing == 97


def test_far_steps_and_many_phases_stay_cheap(capsys, tmp_path):
    """A's phases are listed to its end (a few periods of an endless schedule), at most MAX_PHASES;
    a far step falls in the last row, and only phases the range reaches are rows."""
    from lrtempo.cli.diff import MAX_PHASES

    step = tmp_path / "step.yaml"
    step.write_text("type: step\nbase_lr: 0.1\nstep_size: 3\ngamma: 0.5\n")
    code, out, _ = run(capsys, "diff", str(step), str(step), "--steps", "0:4,9223372036854775806", "--json")
    got = json.loads(out)
    assert code == 0 and got["steps"] == 5
    assert [p["steps"] for p in got["phases"]] == [3, 1, 1]
    assert got["phases"][-1]["label"] == "after A's phases"
    many = tmp_path / "many.yaml"
    many.write_text("type: multistep\nbase_lr: 0.1\nmilestones: [" + ", ".join(str(5 * i) for i in range(1, 300))
                    + "]\ngamma: 0.99\n")
    c = compare(load_schedule(str(many)), load_schedule(str(many)), [range(2000)])
    assert len(c.phases) == MAX_PHASES + 1 and c.phases[-1].start == c.phases[-2].stop
    assert sum(p.steps for p in c.phases) == 2000


def test_more_steps_than_a_summary_evaluates_are_refused(capsys, tmp_path):
    long = tmp_path / "long.yaml"
    long.write_text("type: cosine\npeak_lr: 0.1\ndecay_steps: 100000000000\n")
    code, out, err = run(capsys, "diff", str(long), str(long))
    assert code == 2 and out == "" and "100,000,000,001 steps to compare: at most 10,000,000,000" in err
    code, _, _ = run(capsys, "diff", str(long), str(long), "--steps", "0:100000000001:100000")
    assert code == 0
