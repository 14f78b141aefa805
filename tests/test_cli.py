"""The command line: show, values, plot, schema, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrtempo.cli import main
from lrtempo.config import load_schedule

EXAMPLES = Path(__file__).parent.parent / "examples"
DESIGN = EXAMPLES / "warmup_cosine.yaml"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_values_exact_at_every_boundary_of_the_schedule_of_record(capsys):
    code, out, err = run(capsys, "values", DESIGN)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "step,lr"
    rows = dict((int(a), float(b)) for a, b in (line.split(",") for line in lines[1:]))
    s = load_schedule(DESIGN)
    assert len(rows) == s.total_steps + 1 == 20001
    w, t = s.warmup_steps, s.total_steps
    assert (rows[0], rows[w], rows[t]) == (0.0, 3e-4, 3e-5)
    for k in (1, w - 1, w + 1, t - 1):
        assert rows[k] == s(k)
    # repr round-trips the exact bits
    assert np.array_equal(np.asarray([rows[k] for k in range(t + 1)]), s.at(np.arange(t + 1)))


def test_values_steps_spec_and_output_file(capsys, tmp_path):
    out_file = tmp_path / "lr.csv"
    code, out, _ = run(capsys, "values", DESIGN, "--steps", "0:3,400,19999:20002", "-o", out_file)
    assert code == 0 and out == ""
    lines = out_file.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "400", "19999", "20000", "20001"]


@pytest.mark.parametrize("spec, message", [
    ("5:2", "is empty"), ("a", "is not an integer"), ("1,,2", "empty item"), ("-1", "steps must be >= 0"),
    ("1:2:3:4", "too many ':'"), ("0:10:0", "stride must be >= 1"),
])
def test_values_bad_steps(capsys, spec, message):
    code, out, err = run(capsys, "values", DESIGN, "--steps", spec)
    assert code == 2 and out == ""
    assert err.startswith("lrtempo: error: --steps") and message in err and err.count("\n") == 1


def test_show(capsys):
    code, out, _ = run(capsys, "show", DESIGN)
    assert code == 0
    assert "warmup_cosine" in out and "hash" in out and "phases" in out
    assert "warmup  [0, 400)" in out and "decay   [400, 20000)" in out
    assert "400: 0.0003" in out and "20000: 3e-05" in out
    s = load_schedule(DESIGN)
    total = float(np.sum(s.at(np.arange(20001))))
    assert f"sum       {total!r}" in out


def test_plot_text_and_png(capsys, tmp_path):
    png = tmp_path / "s.png"
    code, out, _ = run(capsys, "plot", DESIGN, "--png", png, "--width", "50", "--height", "10")
    assert code == 0 and png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_rows = [line for line in out.splitlines() if "|" in line]
    assert len(plot_rows) == 10 and all(len(r.split("|", 1)[1]) == 50 for r in plot_rows)
    assert "step" in out and "^ phase boundary" in out


def test_plot_log_y_and_until(capsys):
    code, out, _ = run(capsys, "plot", EXAMPLES / "step.yaml", "--log-y", "--until", "20000")
    assert code == 0 and "log scale" in out and "20000" in out


def test_schema_is_json(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert "warmup_cosine" in schema["$defs"] and "compat" in schema["$defs"]


@pytest.mark.parametrize("text, message", [
    ("type: cosin\npeak_lr: 1\ndecay_steps: 5\n", "did you mean 'cosine'"),
    ("type: cosine\npeak_lr: 3e-4\ndecay_steps: 2.5\n", "decay_steps: must be a whole number of steps (got 2.5)"),
    ("", "the file is empty"),
    ("type: [\n", "invalid YAML"),
    ("- 1\n", "must be a mapping"),
])
@pytest.mark.parametrize("command", ["show", "values", "plot"])
def test_bad_config_is_one_line_exit_2(capsys, tmp_path, command, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run(capsys, command, path)
    assert code == 2 and out == ""
    assert err.startswith("lrtempo: error: ") and message in err and err.count("\n") == 1


def test_missing_file_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "show", tmp_path / "none.yaml")
    assert code == 2 and "no such file" in err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["plot", str(DESIGN), "--width", "zero"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2


def test_runtime_failure_exit_1(capsys):
    # OneCycleLR raises past total_steps, as torch does: a failure while running
    code, _, err = run(capsys, "values", EXAMPLES / "compat_torch_sequential.yaml", "--steps", "0:3")
    assert code == 0
    spec = EXAMPLES.parent / "tests" / "data" / "onecycle.yaml"
    code, _, err = run(capsys, "values", spec, "--steps", "0:200")
    assert code == 1 and "past total_steps=100" in err and err.count("\n") == 1


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "lrtempo", "values", str(DESIGN), "--steps", "400"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "step,lr\n400,0.0003\n"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.*")), ids=lambda p: p.name)
def test_every_example_loads_and_shows(capsys, path):
    code, out, err = run(capsys, "show", path)
    assert code == 0, err


def test_examples_cover_every_type():
    from lrtempo.config import read_config_file
    from lrtempo.schedules import NATIVE_TYPES

    seen = set()

    def walk(node):
        if isinstance(node, dict):
            if "type" in node:
                seen.add(node["type"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in EXAMPLES.glob("*.*"):
        walk(read_config_file(path))
    assert set(NATIVE_TYPES) | {"compat"} <= seen


def _bad_inputs():
    from test_config import BAD

    return BAD


@pytest.mark.parametrize("text, message", _bad_inputs())
def test_every_bad_config_input_exits_2_with_one_line(capsys, tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run(capsys, "values", path)
    assert code == 2 and out == ""
    assert err.startswith("lrtempo: error: ") and message in err and err.count("\n") == 1
