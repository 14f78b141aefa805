"""A corpus of hostile config files, one per class of input that once escaped: each is read exactly
or refused with one line on stderr and exit status 2, within seconds, through the real CLI
(``python -m lrtempo show FILE``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: each case must finish well within this (a FIFO would block forever, /dev/zero grow forever)
TIMEOUT_S = 20


def show(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrtempo", "show", str(path)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=path.parent)


def nested_json(levels: int) -> str:
    spec: dict = {"type": "constant", "lr": 1.0}
    for _ in range(levels):
        spec = {"type": "scale", "factor": 1.0, "schedule": spec}
    return json.dumps(spec)


CONSTANT = "type: constant\nlr: {}\n"

#: (name, file name, content, a substring of the one-line error)
REFUSED = [
    # YAML 1.2 core schema: 1:40 is a string, not sexagesimal 100
    ("sexagesimal", "s.yaml", CONSTANT.format("1:40"), "lr: must be a number (got '1:40', a string)"),
    ("yaml 1.1 boolean", "s.yaml", "type: cyclic\nbase_lr: 0.1\nmax_lr: 1.0\nstep_size_up: yes\n",
     "step_size_up: must be a number (got 'yes', a string)"),
    # duplicate keys, every format
    ("duplicate json", "s.json", '{"type": "constant", "lr": 1, "lr": 2}', "invalid JSON: duplicate key 'lr'"),
    ("duplicate yaml", "s.yaml", "type: constant\nlr: 1\nlr: 2\n", "line 3, column 1: duplicate key 'lr'"),
    ("duplicate toml", "s.toml", "type = 'constant'\nlr = 1\nlr = 2\n", "invalid TOML: Cannot overwrite a value"),
    # numbers that do not fit
    ("400 digits", "s.yaml", CONSTANT.format("9" * 400), "(400 digits) is out of range"),
    ("400-digit float", "s.json", '{"type": "constant", "lr": 1%s.5}' % ("0" * 399), "is out of range"),
    ("5000 digits", "s.json", '{"type": "constant", "lr": %s}' % ("7" * 5000), "(5000 digits) is out of range"),
    ("5000 digits toml", "s.toml", "type = 'constant'\nlr = %s\n" % ("7" * 5000), "Exceeds the limit (4300 digits)"),
    ("underflow", "s.yaml", CONSTANT.format("1e-400"), "too small to tell from 0"),
    # shapes that crashed the reader
    ("deep json", "s.json", nested_json(300), "nested deeper than 100 levels"),
    ("deep yaml", "s.yaml", "type: constant\nlr: " + "[" * 400 + "]" * 400 + "\n", "nested deeper than 100 levels"),
    ("list key", "s.yaml", "type: constant\n[1, 2]: 3\n", "a mapping key must be a scalar (got a list)"),
    ("alias bomb", "s.yaml", "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10) if i else '1, 2'}]\n"
                                     for i in range(8)), "more than 1000000 values"),
    ("restarts past the end", "s.yaml",
     "type: restarts\npeak_lr: 1.0\nperiod: 10\nperiod_mult: 1.1\nmax_cycles: 500\n",
     "max_cycles: 500 cycles of period 10 growing by 1.1 end after step 2**53"),
    # values that left the finite range
    ("exp ramp from 1e-320", "s.yaml", "type: ramp\nstart_lr: 1e-320\nend_lr: 1e-3\nsteps: 10\nshape: exponential\n",
     "start_lr: must be >= 2.2250738585072014e-308"),
    ("exp warmup from 1e-320", "s.yaml",
     "type: warmup\nwarmup_steps: 10\nshape: exponential\nstart_lr: 1e-320\nschedule: {type: constant, lr: 1e-3}\n",
     "start_lr: must be >= 2.2250738585072014e-308"),
    ("scale overflow", "s.yaml", "type: scale\nfactor: 1e300\nschedule: {type: constant, lr: 1e300}\n",
     "factor: 1e+300 times the schedule's largest value 1e+300 overflows"),
    ("2**63 steps", "s.yaml", f"type: cosine\npeak_lr: 1.0\ndecay_steps: {2**63}\n",
     "decay_steps: must be <= 2**53 = 9007199254740992, the longest schedule"),
    ("joined past 2**53", "s.yaml",
     f"type: join\npieces:\n  - {{schedule: {{type: constant, lr: 1.0}}, steps: {2**52}}}\n"
     f"  - {{schedule: {{type: linear, start_lr: 1.0, end_lr: 0.0, steps: {2**52 + 1}}}}}\n",
     "pieces: the pieces' total number of steps must be <= 2**53"),
    # bounded work
    ("restarts near 1", "s.yaml",
     "type: restarts\npeak_lr: 1.0\nperiod: 1\nperiod_mult: 1.0000000001\nmax_cycles: 1000000000000\n",
     "max_cycles: must be <= 100000 when period_mult is not 1"),
    ("restarts near 1, endless", "s.yaml", "type: restarts\npeak_lr: 1.0\nperiod: 1\nperiod_mult: 1.0000000001\n",
     "period_mult: 1.0000000001 with period 1 makes more than 100000 cycles"),
    # size
    ("over 1 MiB", "s.yaml", CONSTANT.format("0.1") + "#" * (1 << 20) + "\n", "a config file may hold at most"),
]


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrtempo: error: "), result.stderr[:500]
    assert message in lines[0] and "internal error" not in lines[0], lines[0][:500]
    assert result.stdout == ""


@pytest.mark.parametrize("name, filename, content, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_hostile_config_is_refused_in_one_line(tmp_path, name, filename, content, message):
    path = tmp_path / filename
    path.write_text(content)
    before = path.read_bytes()
    assert_refused(show(path), message)
    assert path.read_bytes() == before  # a refusal changes nothing


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # no writer ever comes: opening it for reading in blocking mode would hang
    assert_refused(show(fifo), "is a FIFO (named pipe), not a regular file")


def test_symlink_to_dev_zero_is_refused_at_once(tmp_path):
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")  # reading it would grow until memory runs out
    assert_refused(show(link), "is a character device, not a regular file")


def test_error_list_is_bounded(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(CONSTANT.format("0.1") + "".join(f"k{i}: 1\n" for i in range(60_000)))
    result = show(path)
    assert_refused(result, "k0: unknown key for type 'constant'")
    assert result.stderr.rstrip().endswith("; ... and 59980 more problems") and len(result.stderr) < 3000


#: (name, file name, content, a line show must print): read exactly
READ = [
    ("0144 is decimal", "s.yaml", CONSTANT.format("0144"), "end step  0, then holds 144.0"),
    ("0o14 is octal", "s.yaml", CONSTANT.format("0o14"), "end step  0, then holds 12.0"),
    ("0x1F is hex", "s.yaml", CONSTANT.format("0x1F"), "end step  0, then holds 31.0"),
    ("1e3 is a float", "s.yaml", "type: cosine\npeak_lr: 1.0\ndecay_steps: 1e3\n", "end step  1000, then holds 0.0"),
    ("the seed-9 exponential", "s.yaml",
     "type: exponential\nbase_lr: 1.0\ndecay_rate: 0.9999999999999999\ndecay_steps: 23\nend_lr: 0.0\n",
     "range     steps 0..10000000"),
    ("many milestones", "s.json", json.dumps({"type": "multistep", "base_lr": 1.0, "gamma": 0.5,
                                              "milestones": list(range(5, 500_001, 5))}),
     "end step  500000, then holds 0.0"),
    ("restarts with a float multiplier", "s.yaml",
     "type: restarts\npeak_lr: 1.0\nperiod: 10\nperiod_mult: 1.5\nmax_cycles: 4\nshape: linear\n",
     "end step  82, then holds 0.0"),
]


@pytest.mark.parametrize("name, filename, content, line", READ, ids=[c[0] for c in READ])
def test_hostile_but_valid_config_is_read_exactly(tmp_path, name, filename, content, line):
    path = tmp_path / filename
    path.write_text(content)
    result = show(path)
    assert result.returncode == 0, result.stderr
    assert line in result.stdout.splitlines() or any(out.startswith(line) for out in result.stdout.splitlines())
