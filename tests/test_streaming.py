"""Long schedules are evaluated in chunks (lint's phase counts come from the phase intervals, with no
step evaluated): the output does not depend on the chunk size. ``values -o`` writes atomically onto
regular files and new paths, through onto FIFOs, devices and open descriptors, and refuses
directories. (Memory is measured in benchmarks/bench_memory.py, not here.)"""

from __future__ import annotations

import errno
import functools
import os
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrtempo._chunks as chunks
import lrtempo.cli.values as values_cli
import lrtempo.plot._text as text_mod
from lrtempo._atomic import atomic_open
from lrtempo._chunks import Extremes, pairwise_sum, step_chunks
from lrtempo.analysis import compute_budget, lint_config
from lrtempo.cli import main
from lrtempo.cli.show import summary
from lrtempo.config import load_schedule
from lrtempo.monitor._phases import PHASES, PhaseMap
from lrtempo.plot import column_ranges, text_plot

EXAMPLES = Path(__file__).parent.parent / "examples"
DESIGN = EXAMPLES / "warmup_cosine.yaml"
#: chunk sizes that split the examples' ranges into many pieces, unevenly, and one that does not split them
CHUNK_SIZES = (7, 1000, 1 << 16)
SCHEDULES = ("warmup_cosine.yaml", "wsd.yaml", "restarts.yaml", "cyclic.yaml", "multistep.yaml",
             "warmup_plateau_restarts.toml")


@functools.cache
def design_schedule():
    return load_schedule(DESIGN)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def unchunked_csv(schedule, steps: np.ndarray) -> str:
    """The CSV as it was built before streaming: every row in one string."""
    rows = [f"{s},{v!r}" for s, v in zip(steps.tolist(), schedule.at(steps).tolist())]
    return "step,lr\n" + "\n".join(rows) + "\n"


# -- the chunked reductions are exact -------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40_000), block=st.integers(1, 5000), seed=st.integers(0, 2**32 - 1))
def test_pairwise_sum_equals_numpy_sum_bit_for_bit(n, block, seed):
    x = np.random.default_rng(seed).random(n) * 10.0 ** np.random.default_rng(seed + 1).integers(-8, 8, n)
    got = pairwise_sum(n, lambda lo, hi: float(np.sum(x[lo:hi])), block=block)
    assert got == float(np.sum(x))


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, float("nan")]), min_size=1, max_size=60),
       size=st.integers(1, 9))
def test_extremes_equal_numpy_min_max_and_first_step(data, size):
    values = np.asarray(data)
    steps = np.arange(100, 100 + values.size)
    e = Extremes()
    for part in step_chunks(range(values.size), size):
        e.add(steps[part], values[part])
    want = (values.min(), steps[values.argmin()], values.max(), steps[values.argmax()])
    got = (e.min, e.min_step, e.max, e.max_step)
    assert [repr(float(a)) for a in got[::2]] == [repr(float(a)) for a in want[::2]]  # NaN == NaN by repr
    assert got[1::2] == tuple(int(s) for s in want[1::2])


def test_step_chunks_of_a_range_longer_than_2_to_the_63():
    with pytest.raises(OverflowError):
        len(range(0, 2**65, 3))
    first = next(step_chunks(range(0, 2**65, 3), 4))
    assert first.tolist() == [0, 3, 6, 9]


def test_step_chunks_cover_a_strided_range_in_order_near_the_int64_end():
    top = 2**63 - 1
    r = range(top - 20, top + 1, 3)
    got = np.concatenate(list(step_chunks(r, 4)))
    assert got.dtype == np.int64 and got.tolist() == list(r)


# -- values: the same bytes, streamed ------------------------------------------------------------

@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_values_stream_is_byte_identical_to_the_whole_csv(capsys, monkeypatch, chunk):
    monkeypatch.setattr(chunks, "CHUNK", chunk)
    schedule = load_schedule(DESIGN)
    code, out, err = run(capsys, "values", DESIGN)
    assert code == 0 and err == ""
    assert out == unchunked_csv(schedule, np.arange(schedule.horizon + 1))
    spec = "0:3,5,10:20000:9,19990:20005"
    code, out, _ = run(capsys, "values", DESIGN, "--steps", spec)
    steps = np.concatenate([np.arange(0, 3), [5], np.arange(10, 20000, 9), np.arange(19990, 20005)])
    assert code == 0 and out == unchunked_csv(schedule, steps)


@pytest.mark.parametrize("chunk", (7, 1 << 16))
def test_values_to_a_file_is_byte_identical(capsys, monkeypatch, tmp_path, chunk):
    monkeypatch.setattr(chunks, "CHUNK", chunk)
    out_file = tmp_path / "lr.csv"
    code, out, err = run(capsys, "values", DESIGN, "--until", "3000", "-o", out_file)
    assert (code, out, err) == (0, "", "")
    assert out_file.read_text() == unchunked_csv(load_schedule(DESIGN), np.arange(3001))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.csv"]


def test_values_steps_past_int64_are_refused_on_one_line(capsys):
    code, out, err = run(capsys, "values", DESIGN, "--steps", str(2**63))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("lrtempo: error: --steps:") and "2**63 - 1" in err


# -- show, lint, budget, plots: the same numbers whatever the chunk ------------------------------

def reference_stats(schedule, last: int) -> list[str]:
    v = schedule.at(np.arange(last + 1))
    return [f"min       {float(v.min())!r} at step {int(v.argmin())}",
            f"max       {float(v.max())!r} at step {int(v.argmax())}",
            f"sum       {float(np.sum(v))!r} (the rate summed over steps 0..{last})"]


@pytest.mark.parametrize("name", SCHEDULES)
def test_show_summary_is_the_same_for_every_chunk_size(monkeypatch, name):
    schedule = load_schedule(EXAMPLES / name)
    last = schedule.horizon
    outputs = []
    for chunk in CHUNK_SIZES:
        monkeypatch.setattr(chunks, "CHUNK", chunk)
        outputs.append(summary(schedule, last))
    assert outputs[0] == outputs[1] == outputs[2]
    lines = outputs[0].splitlines()
    assert [line for line in lines if line.startswith(("min ", "max ", "sum "))] == reference_stats(schedule, last)


@pytest.mark.parametrize("name", SCHEDULES + ("run_config.yaml", "constant.yaml", "warmup_plateau_cosine.yaml"))
def test_phase_counts_from_the_intervals_equal_the_labels_counted_step_by_step(name):
    schedule = load_schedule(EXAMPLES / name)
    horizon = schedule.horizon
    pm = PhaseMap(schedule, horizon)
    ends = {0, 1, 2, pm.warmup_end - 1, pm.warmup_end, pm.warmup_end + 1, horizon - 1, horizon, horizon + 1,
            horizon + 2, 2 * horizon} | {x for a, b in pm.holds for x in (a, a + 1, b - 1, b, b + 1)}
    for stop in sorted(e for e in ends if e >= 0):
        n = np.bincount(pm.labels(np.arange(stop)), minlength=len(PHASES))
        want = {"warmup": n[0], "plateau": n[1], "decay": n[2] + n[3] + n[4], "past_end": n[5]}
        assert pm.coarse_counts(stop) == {k: int(v) for k, v in want.items()}, (name, stop)


@settings(max_examples=80, deadline=None)
@given(warmup_end=st.integers(0, 300), holds=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)),
                                                        max_size=3),
       end=st.one_of(st.none(), st.integers(0, 300)), stop=st.integers(0, 400))
def test_phase_counts_follow_the_labels_precedence_for_any_intervals(warmup_end, holds, end, stop):
    """Holds, warmup and the end overlapping in every order: past the end wins, then warmup, then a hold."""
    pm = PhaseMap(design_schedule(), 20_000)
    pm.warmup_end, pm.holds, pm.end = warmup_end, [(min(a, b), max(a, b)) for a, b in holds], end
    n = np.bincount(pm.labels(np.arange(stop)), minlength=len(PHASES))
    want = {"warmup": n[0], "plateau": n[1], "decay": n[2] + n[3] + n[4], "past_end": n[5]}
    assert pm.coarse_counts(stop) == {k: int(v) for k, v in want.items()}


def test_lint_of_a_quadrillion_step_run_evaluates_no_step_by_step_labels(monkeypatch, tmp_path):
    def no_labels(self, steps, rates=None):
        raise AssertionError(f"lint labelled {np.size(steps)} steps one by one")

    monkeypatch.setattr(PhaseMap, "labels", no_labels)
    config = tmp_path / "long.yaml"
    config.write_text("type: warmup_cosine\npeak_lr: 3e-4\nmin_lr: 3e-5\ntotal_steps: 1000000000000000\n"
                      "warmup: 0.02\n")
    rules = {f.rule: f for f in lint_config(config)}
    assert "a 1,000,000,000,000,000-step run" in rules["LR009"].message


def test_show_past_the_evaluation_limit_says_what_it_did_not_compute(capsys, monkeypatch):
    import lrtempo.cli.show as show_cli

    monkeypatch.setattr(show_cli, "MAX_EVALUATED_STEPS", 20_001)  # the example has steps 0..20000
    code, out, _ = run(capsys, "show", DESIGN)
    assert code == 0 and reference_stats(load_schedule(DESIGN), 20_000)[0] in out
    monkeypatch.setattr(show_cli, "MAX_EVALUATED_STEPS", 20_000)
    code, out, _ = run(capsys, "show", DESIGN)
    assert code == 0 and "min       not computed: over 20,000 steps (give --until STEP)" in out
    assert "warmup  [0, 400)" in out and "20000: 3e-05" in out  # the rest of the summary is there


def test_budget_past_the_evaluation_limit_is_refused(monkeypatch):
    import lrtempo.analysis._budget as budget_mod

    monkeypatch.setattr(budget_mod, "MAX_EVALUATED_STEPS", 1000)
    schedule = load_schedule(DESIGN)
    assert compute_budget(schedule, 1000).total_steps == 1000
    with pytest.raises(ValueError, match="total_steps must be at most 1,000, .* \\(got 1,001\\)"):
        compute_budget(schedule, 1001)


def test_budget_is_the_same_for_every_chunk_size(monkeypatch):
    schedule = load_schedule(EXAMPLES / "wsd.yaml")
    budgets = []
    for chunk in CHUNK_SIZES:
        monkeypatch.setattr(chunks, "CHUNK", chunk)
        budgets.append(compute_budget(schedule, 25_000, step_seconds=0.2))
    assert budgets[0] == budgets[1] == budgets[2]
    rates = schedule.at(np.arange(25_000))
    assert budgets[0].peak_lr == float(rates.max())
    assert budgets[0].tail_steps == int(np.count_nonzero(rates <= 0.1 * rates.max()))


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("width", (8, 72, 4000))
def test_column_ranges_are_each_columns_exact_min_and_max(monkeypatch, name, width):
    schedule = load_schedule(EXAMPLES / name)
    last = schedule.horizon
    monkeypatch.setattr(chunks, "CHUNK", 7)
    first, lows, highs = column_ranges(schedule, last, width)
    values = schedule.at(np.arange(last + 1))
    ends = [*first[1:].tolist(), last + 1]
    assert first[0] == 0 and np.all(np.diff(first) > 0)
    assert lows.tolist() == [float(values[a:b].min()) for a, b in zip(first.tolist(), ends)]
    assert highs.tolist() == [float(values[a:b].max()) for a, b in zip(first.tolist(), ends)]


def test_text_plot_is_the_same_for_every_chunk_size(monkeypatch):
    schedule = load_schedule(EXAMPLES / "restarts.yaml")
    plots = []
    for chunk in CHUNK_SIZES:
        monkeypatch.setattr(chunks, "CHUNK", chunk)
        plots.append(text_plot(schedule, width=60, height=12))
    assert plots[0] == plots[1] == plots[2]


def test_sampled_columns_keep_the_extremes_at_phase_boundaries(monkeypatch):
    """Past the exact limit each column is sampled; the steps either side of a boundary are always in
    the sample, so a warmup's peak (reached at one step) is drawn at its true height."""
    schedule = load_schedule(DESIGN)  # peak 3e-4 at step 400 only
    monkeypatch.setattr(text_mod, "_EXACT_LIMIT", 1000)
    monkeypatch.setattr(text_mod, "_SAMPLES", 50)  # 5 samples per column: step 400 is not one of them
    monkeypatch.setattr(chunks, "CHUNK", 16)
    first, lows, highs = column_ranges(schedule, schedule.horizon, 10)
    assert float(highs.max()) == schedule(400) == 3e-4
    values = schedule.at(np.arange(schedule.horizon + 1))
    ends = [*first[1:].tolist(), schedule.horizon + 1]
    for a, b, lo, hi in zip(first.tolist(), ends, lows.tolist(), highs.tolist()):
        assert values[a:b].min() <= lo <= hi <= values[a:b].max()


# -- values -o: what each kind of destination gets -------------------------------------------------

def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(capsys, tmp_path):
    target = tmp_path / "data" / "lr.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, _, err = run(capsys, "values", DESIGN, "--steps", "0:5", "-o", link)
    assert (code, err) == (0, "")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == unchunked_csv(load_schedule(DESIGN), np.arange(5))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replacement keeps the file's permissions
    assert sorted(p.name for p in target.parent.iterdir()) == ["lr.csv"]


def test_output_through_a_dangling_symlink_creates_its_target(capsys, tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "new.csv")
    code, _, err = run(capsys, "values", DESIGN, "--steps", "7", "-o", link)
    assert (code, err) == (0, "")
    assert link.is_symlink() and (tmp_path / "new.csv").read_text().startswith("step,lr\n7,")


def test_output_to_a_fifo_is_written_through(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(chunks, "CHUNK", 100)  # many writes through the pipe
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, err = run(capsys, "values", DESIGN, "--until", "2500", "-o", fifo)
    reader.join(timeout=30)
    assert (code, err) == (0, "")
    assert received == [unchunked_csv(load_schedule(DESIGN), np.arange(2501)).encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not replaced by a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_output_to_dev_null_leaves_the_device(capsys):
    code, out, err = run(capsys, "values", DESIGN, "--until", "100", "-o", "/dev/null")
    assert (code, out, err) == (0, "", "")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("name", ("/dev/stdout", "/dev/fd/1"))
def test_output_to_an_open_descriptor_writes_where_the_shell_is(tmp_path, name):
    """``-o /dev/stdout`` onto a redirected file adds the CSV after what was written there, like ``>``."""
    log = tmp_path / "log.txt"
    script = f"echo before; {shlex.quote(sys.executable)} -m lrtempo values {shlex.quote(str(DESIGN))} " \
             f"--steps 0:4 -o {name}; echo after"
    with open(log, "w") as fh:
        done = subprocess.run(["sh", "-c", script], stdout=fh, stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert log.read_text() == "before\n" + unchunked_csv(design_schedule(), np.arange(4)) + "after\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_output_to_a_full_device_fails_on_one_line_and_leaves_the_device(capsys):
    code, out, err = run(capsys, "values", DESIGN, "--until", "100", "-o", "/dev/full")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err == f"lrtempo: error: -o /dev/full: {os.strerror(errno.ENOSPC)}\n"
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.parametrize("via_link", (False, True))
def test_output_to_a_directory_is_refused_with_exit_2(capsys, tmp_path, via_link):
    folder = tmp_path / "out"
    folder.mkdir()
    dest = folder
    if via_link:
        dest = tmp_path / "link"
        dest.symlink_to(folder)
    code, out, err = run(capsys, "values", DESIGN, "-o", dest)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"lrtempo: error: -o {dest}: is a directory")
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out"] + (["link"] if via_link else []))


def test_output_into_a_missing_folder_is_refused_with_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "values", DESIGN, "-o", tmp_path / "nowhere" / "lr.csv")
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()))
def test_a_failing_write_leaves_the_old_file_and_no_temp_file(capsys, monkeypatch, tmp_path, failure):
    out_file = tmp_path / "lr.csv"
    out_file.write_text("the old table\n")
    monkeypatch.setattr(chunks, "CHUNK", 100)
    real_rows, calls = values_cli.csv_rows, []

    def failing_rows(steps, values):
        calls.append(len(steps))
        if len(calls) == 3:  # two chunks already written to the temp file
            raise failure
        return real_rows(steps, values)

    monkeypatch.setattr(values_cli, "csv_rows", failing_rows)
    code, out, err = run(capsys, "values", DESIGN, "-o", out_file)
    assert len(calls) == 3
    assert code == (1 if isinstance(failure, OSError) else 130) and out == "" and err.count("\n") == 1
    assert out_file.read_text() == "the old table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.csv"]


def test_atomic_open_shows_readers_the_old_file_until_the_end(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    with atomic_open(path) as fh:
        fh.write("new\n")
        fh.flush()
        assert path.read_text() == "old\n"
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_budget_past_the_evaluation_limit_is_bad_input_on_one_line(capsys, tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text("type: cosine\npeak_lr: 0.1\ndecay_steps: 100000000000000\n")
    for extra in ([], ["--steps", "10000000001"]):
        code, out, err = run(capsys, "budget", spec, *extra)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert "at most 10,000,000,000 steps" in err
