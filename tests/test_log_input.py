"""Foreign logs through the real commands: each class of hostile CSV is read exactly or refused in one line.

Every case runs ``python -m lrtempo analyze FILE`` and ``python -m lrtempo report FILE`` in a subprocess, as
a user would, since both read logs through one reader (``lrtempo.analysis._logfile``). A refusal is exit 2
with one line on stderr naming the line, the column and the cell, and writes nothing; what the reader
handles itself (a resumed run's repeated steps, a torn last line, bad event lines) it says in one note.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.analysis import read_log_file
from lrtempo.config import ConfigError

HEADER = "step,lr,grad_l2_norm,loss"
COMMANDS = ("analyze", "report")


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrtempo", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"})


def _rows(n: int = 10, start: int = 0, lr: float = 0.1) -> list[str]:
    return [f"{k},{lr!r},{1.0 + k / 100!r},{3.0 - k / 100!r}" for k in range(start, start + n)]


def _log(tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _refused(command: str, path: Path, message: str) -> None:
    """Exit 2, exactly one line on stderr holding ``message``, nothing on stdout, no report written."""
    folder = path if path.is_dir() else path.parent
    before = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    result = _cli(command, str(path))
    err = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(err) == 1 and err[0].startswith("lrtempo: error: "), result.stderr
    assert message in err[0], err[0]
    assert result.stdout == ""
    if folder.is_dir():
        assert sorted(p.name for p in folder.iterdir()) == before


def _analysis(path: Path) -> dict:
    result = _cli("analyze", str(path), "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


def _report(path: Path) -> tuple[dict, str]:
    """The data block of the page ``report`` writes beside a CSV (or into a run directory), and stdout."""
    result = _cli("report", str(path))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    page = (path / "report.html" if path.is_dir() else path.with_name(path.stem + ".report.html")).read_text()
    block = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    return json.loads(block), result.stdout


def _series(data: dict, name: str) -> list:
    return next(s for c in data["charts"] for s in c["series"] if s["name"] == name and not s["dashed"])["y"]


# --- the step column --------------------------------------------------------------------------------------------

STEP_CELLS = ["nan", "", "1e30", "1.5", "-1", "9223372036854775808", "inf", "1_0", "٣", "x"]


@pytest.mark.parametrize(("command", "cell"), [*(("analyze", c) for c in STEP_CELLS),
                                               *(("report", c) for c in ("nan", "", "1e30", "1.5"))])
def test_a_step_that_is_not_a_whole_number_in_range_is_refused_with_its_line(tmp_path, command, cell):
    lines = _rows(6)
    lines[3] = f"{cell},0.1,1.0,2.0"
    _refused(command, _log(tmp_path, lines), f"line 5: step: must be a whole number from 0 to 2**63 - 1 "
                                             f"(got {cell!r})")


def test_steps_are_read_exactly_in_any_whole_decimal_form(tmp_path):
    big = 2**53 + 1  # not a float64: a step read through a float would come back as 2**53
    lines = [f"{s},0.1,1.0,2.0" for s in ("0", "1.0", "2e0", "+3", "0004", f"{big}", f"{2**63 - 1}")]
    path = _log(tmp_path, lines)
    phases = _analysis(path)["phases"]
    assert phases[0]["first_step"] == 0 and phases[-1]["last_step"] == 2**63 - 1
    data, _ = _report(path)
    assert data["steps"] == [0, 1, 2, 3, 4, big, 2**63 - 1]


def test_a_step_near_2_to_the_63_in_a_run_directory_is_past_the_schedules_end(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("schedule: {type: warmup_cosine, peak_lr: 0.001, total_steps: 100, "
                                     "warmup_steps: 10}\n")
    _log(run, ["0,0.0,1.0,2.0", f"{2**63 - 1},0.0,1.0,2.0"])
    phases = _analysis(run)["phases"]
    assert [(p["phase"], p["first_step"]) for p in phases] == [("warmup", 0), ("past_end", 2**63 - 1)]


def test_a_runs_bad_detector_settings_are_refused_by_field(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("schedule: {type: constant, lr: 0.1}\n"
                                     "monitor: {trap_window: 1, spike_factor: .nan, restart_window: '5'}\n")
    _log(run, _rows())
    for command in COMMANDS:
        _refused(command, run, "config.yaml: monitor.trap_window: must be a whole number >= 2 (got 1); "
                 "monitor.restart_window: must be a whole number >= 1 (got '5'); monitor.spike_factor: must be a "
                 "finite number > 0.0 (got nan)")


# --- the header and the shape of rows ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_a_duplicated_column_is_refused_naming_it(tmp_path, command):
    path = _log(tmp_path, [r + ",9.0" for r in _rows()], header=HEADER + ",loss")
    _refused(command, path, "header: column 'loss' appears twice (columns 4 and 5)")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_row_of_the_wrong_width_is_refused(tmp_path, command):
    lines = _rows()
    lines[2] += ",7"
    _refused(command, _log(tmp_path, lines), "line 4: 5 cells, but the header has 4 columns")


def test_a_torn_last_line_is_left_out_and_said(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("\n".join([HEADER, *_rows(10)]) + "\n10,0.1", encoding="utf-8")  # a writer killed mid-row
    out = _analysis(path)
    assert out["rows"] == 10 and out["phases"][-1]["last_step"] == 9
    assert out["notes"] == ["log.csv: its last line (12) has no line break and 2 of 4 cells (a write cut short): "
                            "left out"]


def test_a_bom_an_index_column_a_text_column_and_empty_rows_are_read(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("\ufeff,step,lr,grad_l2_norm,loss,note\n" + "".join(
        f"{k},{r},ok\n" for k, r in enumerate(_rows(10))) + "\n,,,,,\n\n", encoding="utf-8")
    out = _analysis(path)
    assert out["rows"] == 10 and out["notes"] == []
    assert _series(_report(path)[0], "loss") == [3.0 - k / 100 for k in range(10)]


# --- the order of steps -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_a_step_going_back_to_a_step_never_logged_is_refused(tmp_path, command):
    lines = [f"{s},0.1,1.0,2.0" for s in (0, 10, 20, 15, 30)]
    _refused(command, _log(tmp_path, lines), "line 5: step: 15 after 20 goes back to a step no earlier row has")


def test_a_resumed_run_keeps_the_later_rows_from_the_step_it_went_back_to(tmp_path):
    # steps 0..100 (lr 0.1), then a restart from a checkpoint at 80 logs 80..200 (lr 0.2), then a repeat of 200
    lines = _rows(101, 0, 0.1) + _rows(121, 80, 0.2) + ["200,0.3,1.0,2.0"]
    path = _log(tmp_path, lines)
    out = _analysis(path)
    assert out["rows"] == 201
    assert out["notes"] == ["log.csv: steps go back to a step logged before at lines 103 and 224 (a resumed run?): "
                            "from there the later rows replace the earlier ones (22 earlier rows left out)"]
    data, stdout = _report(path)
    assert data["steps"] == list(range(201))
    lr = _series(data, "lr")
    assert lr[:80] == [0.1] * 80 and lr[80:200] == [0.2] * 120 and lr[200] == 0.3
    assert "note: log.csv: steps go back to a step logged before at lines 103 and 224" in stdout


# --- values -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("column", "cell", "message"), [
    ("lr", "-0.001", "lr: must be a finite number >= 0 on every row (got '-0.001')"),
    ("lr", "nan", "lr: must be a finite number >= 0 on every row (got 'nan')"),
    ("lr", "", "lr: must be a finite number >= 0 on every row (got '')"),
    ("grad_l2_norm", "-1", "grad_l2_norm: a norm is >= 0 (got '-1')"),
    ("loss", "1e400", "loss: '1e400' is beyond the float64 range"),
    ("loss", "0x10", "loss: not a number (got '0x10')"),
])
def test_a_bad_value_in_a_schema_column_is_refused_with_its_line(tmp_path, command, column, cell, message):
    lines = _rows(8)
    cells = lines[5].split(",")
    cells[HEADER.split(",").index(column)] = cell
    lines[5] = ",".join(cells)
    _refused(command, _log(tmp_path, lines), f"line 7: {message}")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_non_number_in_a_drawn_optional_column_is_refused(tmp_path, command):
    lines = [r + ("," if k != 4 else ",n/a") for k, r in enumerate(_rows())]
    _refused(command, _log(tmp_path, lines, header=HEADER + ",val_loss"), "line 6: val_loss: not a number")


def test_all_nan_loss_and_norm_are_said_not_crashed_on(tmp_path):
    path = _log(tmp_path, [f"{k},0.1,nan," for k in range(30)])
    out = _analysis(path)
    assert out["notes"] == ["no finite values in column grad_l2_norm: the detectors that need it found nothing",
                            "no finite values in column loss: the detectors that need it found nothing"]
    assert out["events"] == [] and out["phases"][0]["loss_change"] is None  # --json is strict: NaN is null
    data, stdout = _report(path)
    assert [c["id"] for c in data["charts"]] == ["lr"]
    assert "note: no finite values in column loss" in stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_a_field_over_the_csv_limit_is_refused_in_one_line(tmp_path, command):
    lines = _rows()
    lines[6] = lines[6] + "1" * 140_000
    _refused(command, _log(tmp_path, lines), "line 8: a cell longer than 131,072 characters")


# --- the file itself --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_not_utf8_is_refused_with_its_line(tmp_path, command):
    path = tmp_path / "log.csv"
    path.write_bytes(("\n".join([HEADER, *_rows(3)]) + "\n").encode() + b"3,0.1,1.0,\xff\n")
    _refused(command, path, "line 5: not UTF-8 text")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_is_refused_at_once(tmp_path, command):
    fifo = tmp_path / "log.csv"
    os.mkfifo(fifo)  # nothing ever writes to it: reading it would block forever
    result = _cli(command, str(fifo), timeout=20)
    assert result.returncode == 2 and "not a regular file" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_side_files_that_are_fifos_are_left_out_or_refused_at_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _log(run, _rows(10))
    for name in ("summary.json", "run.json", "layers.csv", "events.jsonl"):
        os.mkfifo(run / name)
    data, stdout = _report(run)
    for name in ("summary.json", "run.json", "layers.csv", "events.jsonl"):
        assert f"{name} is not a regular file" in stdout, name
    assert data["steps"] == list(range(10))
    os.mkfifo(run / "config.yaml")  # the run's schedule: without it the phases would be wrong, so refused
    for command in COMMANDS:
        result = _cli(command, str(run), timeout=20)
        assert result.returncode == 2 and result.stderr.strip().endswith(
            "config.yaml: not a regular file (the run's schedule is read from a file on disk)"), result.stderr


# --- events.jsonl -----------------------------------------------------------------------------------------------

def test_event_lines_that_are_not_events_are_left_out_with_their_line_numbers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _log(run, _rows(20))
    good = {"step": 3, "kind": "CUSTOM", "values": {}, "message": "kept"}
    (run / "events.jsonl").write_text("\n".join([
        json.dumps(good), "not json", "[1, 2]", json.dumps({"step": -1, "kind": "X"}),
        '{"step": 4, "kind": "X", "kind": "Y"}', json.dumps({"step": 5, "kind": "NO_MESSAGE"}),
        json.dumps({"step": 6, "kind": "TORN"})[:12]]), encoding="utf-8")  # no final line break: torn
    out = _analysis(run)
    assert [(e["step"], e["kind"], e["message"]) for e in out["events"]] == [(3, "CUSTOM", "kept"),
                                                                              (5, "NO_MESSAGE", "")]
    assert out["notes"] == ["events.jsonl: 5 lines that are not events left out (line 2: not JSON: Expecting "
                            "value: line 1 column 1 (char 0); also lines 3, 4, 5 and 1 more)"]
    data, _ = _report(run)
    assert [e["kind"] for e in data["events"]] == ["CUSTOM", "NO_MESSAGE"]


# --- invariants, in-process ------------------------------------------------------------------------------------

_segments = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 30)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(_segments, st.lists(st.floats(allow_nan=False, allow_infinity=True), min_size=1, max_size=8))
def test_a_log_of_resumed_segments_reads_as_the_rows_in_effect(tmp_path_factory, segments, losses):
    """Segments ``(start, length)``: each a run (re)started at ``start``. Model: a dict of step -> row where a
    segment first deletes every step >= its start. A segment starting at a step the log lacks is refused."""
    rows, model, refused = [], {}, None
    for n, (start, length) in enumerate(segments):
        if model and start <= max(model) and start not in model and refused is None:
            refused = len(rows) + 2  # the line of the segment's first row
        model = {k: v for k, v in model.items() if k < start}
        for k in range(start, start + length):
            loss = losses[(k + n) % len(losses)]
            rows.append(f"{k},{n / 10!r},1.0,{loss!r}")
            model[k] = (n / 10, loss)
    path = _log(tmp_path_factory.mktemp("seg"), rows)
    if refused is not None:
        with pytest.raises(ConfigError, match=f"line {refused}: step: "):
            read_log_file(path)
        return
    log = read_log_file(path)
    assert log.steps.tolist() == sorted(model)
    assert list(zip(log.columns["lr"].tolist(), log.columns["loss"].tolist())) == [model[k] for k in sorted(model)]
    assert (len(log.notes) == 1) == (len(rows) != len(model))  # said exactly when rows were replaced


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, allow_infinity=False), st.floats()), min_size=1, max_size=20))
def test_numbers_round_trip_bit_exactly(tmp_path_factory, values):
    rows = [f"{k},{lr!r},{abs(g)!r},{g!r}" for k, (lr, g) in enumerate(values)]
    log = read_log_file(_log(tmp_path_factory.mktemp("num"), rows))
    for column, expected in (("lr", [lr for lr, _ in values]), ("loss", [g for _, g in values])):
        got = log.columns[column].tolist()
        assert [x.hex() for x in got] == [x.hex() for x in expected]


# --- the columnar reader reads what the exact reader reads, and refuses what it refuses --------------------------

_CELLS = ["0", "1", "7", "12", "-1", "+3", "1.0", "2e0", "0.1", "-2.5e-3", "", " ", "nan", "NaN", "inf", "-inf",
          "Infinity", "1e400", "-1e400", "1_0", "0x10", "abc", "9223372036854775807", "9223372036854775808"]


def _outcome(read, path: Path):
    try:
        log = read(path)
    except ConfigError as exc:
        return ("refused", str(exc))
    return ("read", log.steps.tolist(), {k: v.view(np.int64).tolist() if v.dtype == np.float64 else v.tolist()
                                          for k, v in log.columns.items()}, log.notes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(_CELLS), st.sampled_from(_CELLS),
                          st.sampled_from(_CELLS), st.sampled_from(_CELLS)), min_size=1, max_size=12),
       st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", ",extra", ","]), st.booleans(),
       st.sampled_from(["", "x", "5,0.1"]), st.sampled_from([1 << 22, 1, 40]))
def test_the_columnar_reader_agrees_with_the_exact_reader(tmp_path_factory, rows, eol, extra_header, step_cells,
                                                          tail, chunk):
    """Random plain logs (the columnar reader's ground) with hostile cells, restarts, CRLF, a text or unnamed
    column and a torn tail, read in one chunk or many: the same rows bit for bit and the same notes, or the same
    refusal, word for word."""
    from unittest import mock

    from lrtempo.analysis import _columns
    from lrtempo.analysis._logfile import _read_log_file

    header = HEADER + extra_header.replace(",", ",val" if extra_header == ",extra" else ",")
    lines = []
    for step, a, b, c, d in rows:
        first = a if step_cells and step % 5 == 0 else str(step)
        cells = [first, b if step % 3 else "0.1", c if step % 2 else "1.0", d]
        if extra_header:
            cells.append("text" if extra_header == ",extra" and step == 11 else b)
        lines.append(",".join(cells))
    path = tmp_path_factory.mktemp("cols") / "log.csv"
    path.write_bytes((eol.join([header, *lines]) + eol + tail).encode())
    with mock.patch.object(_columns, "CHUNK", chunk):
        assert _outcome(read_log_file, path) == _outcome(_read_log_file, path)
        drawn_only = _outcome(lambda p: read_log_file(p, columns=()), path)  # what analyze reads: same refusals
        assert drawn_only == _outcome(lambda p: _read_log_file(p, ()), path)
        assert drawn_only[0] == _outcome(read_log_file, path)[0] and "val" not in (drawn_only[2:3] or [{}])[0]


@pytest.mark.parametrize("column", range(6))
@pytest.mark.parametrize("cell", _CELLS)
def test_one_hostile_cell_in_a_plain_log_is_judged_as_the_exact_reader_judges_it(tmp_path, cell, column):
    """A plain log (dense columns, or with blank cells), read in one chunk or several, with one cell replaced by
    each hostile cell, so the columnar reader gets as far as that cell: the same rows bit for bit, or the same
    refusal, word for word."""
    from unittest import mock

    from lrtempo.analysis import _columns
    from lrtempo.analysis._logfile import _read_log_file

    for blanks in (False, True):
        lines = [[str(k), "0.1", f"{1 + k / 7!r}", f"{3 - k / 9!r}", "" if blanks and k % 3 else "0.5",
                  "" if blanks and k % 2 else f"{k / 3!r}"] for k in range(12)]
        lines[7][column] = cell
        path = _log(tmp_path, [",".join(cells) for cells in lines], header=HEADER + ",val_loss,extra")
        for chunk in (1 << 22, 64):
            with mock.patch.object(_columns, "CHUNK", chunk):
                assert _outcome(read_log_file, path) == _outcome(_read_log_file, path)
                assert _outcome(lambda p: read_log_file(p, ()), path) == _outcome(lambda p: _read_log_file(p, ()),
                                                                                  path)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["0.1", "2.5e-3", "1", "nan", "-inf", "inf", "1e-320"]),
                          st.integers(0, 3), st.integers(1, 18)), min_size=1, max_size=60),
       st.sampled_from([1, 16, 100, 1 << 22]))
def test_the_columnar_reader_reads_blank_and_written_cells_in_any_chunking(tmp_path_factory, cells, chunk):
    """The columnar reader itself (no fallback): columns dense in some chunks and blank in others, lines of
    every length (so the guessed size is outgrown), each value bit for bit what the exact reader reads."""
    from unittest import mock

    from lrtempo.analysis import _columns
    from lrtempo.analysis._logfile import _read_log_file

    lines = []
    for k, (value, blanks, digits) in enumerate(cells):
        sparse = [value if (k + j) % (blanks + 1) == 0 else "" for j in range(3)]
        lines.append(f"{k:0{digits}d},0.1,{value.lstrip('-')},{value},{','.join(sparse)},t{'x' * digits}")
    path = _log(tmp_path_factory.mktemp("blank"), lines, header=HEADER + ",val_loss,a,effective_lr_max,phase")
    with mock.patch.object(_columns, "CHUNK", chunk):
        got = _columns.read_columns(path)
    assert got is not None
    exact = _read_log_file(path)
    assert got[0].tolist() == exact.steps.tolist() == list(range(len(cells)))
    assert set(got[1]) == set(exact.columns) - {"step"} == {"lr", "grad_l2_norm", "loss", "val_loss", "a",
                                                             "effective_lr_max"}
    for name, values in got[1].items():
        assert values.view(np.int64).tolist() == exact.columns[name].view(np.int64).tolist(), name


def test_the_columnar_reader_outgrows_its_guess_of_the_rows(tmp_path):
    """The columns' size is guessed from the first chunk's lines: a long first line, then short ones, outgrows
    the guess (the columns grow in place), and every row is still read, in order."""
    from unittest import mock

    from lrtempo.analysis import _columns

    lines = [f"0,0.1,1.0,2.0,{'x' * 500}", *(f"{k},0.1,{k!r}.5,2.0,t" for k in range(1, 3000))]
    path = _log(tmp_path, lines, header=HEADER + ",note")
    with mock.patch.object(_columns, "CHUNK", 700):
        steps, columns, _ = _columns.read_columns(path)
    assert steps.tolist() == list(range(3000))
    assert columns["grad_l2_norm"].tolist() == [1.0, *(k + 0.5 for k in range(1, 3000))]
    grow = _columns._Growing({"a": np.dtype(np.int64)}, 1)
    for lo, hi in ((0, 3), (3, 4), (4, 20)):
        grow.append({"a": np.arange(lo, hi)})
    assert grow.finish()["a"].tolist() == list(range(20))


def test_a_plain_log_is_read_columnar(tmp_path):
    """The fast reader takes the common case itself: blanks, CRLF, infinities, a resumed run, a torn tail."""
    from lrtempo.analysis._columns import read_columns

    lines = [f"{k},0.1,{'inf' if k == 3 else '1.5'},{'' if k % 4 else '2.0'},ok" for k in [*range(10), *range(5, 12)]]
    path = tmp_path / "log.csv"
    path.write_bytes(("\r\n".join([HEADER + ",phase", *lines]) + "\r\n12,0.1").encode())
    steps, columns, notes = read_columns(path)
    assert steps.tolist() == [*range(10), *range(5, 12)] and set(columns) == {"lr", "grad_l2_norm", "loss"}
    assert notes == ["log.csv: its last line (19) has no line break and 2 of 5 cells (a write cut short): left out"]
    log = read_log_file(path)
    assert log.steps.tolist() == list(range(12)) and math.isinf(log.columns["grad_l2_norm"][3])
    assert np.isnan(log.columns["loss"][1]) and log.columns["loss"][4] == 2.0
    big = _log(tmp_path, [f"{2**53 + 1},0.1,1.0,2.0"], name="big.csv")
    assert read_columns(big)[0].tolist() == [2**53 + 1]
