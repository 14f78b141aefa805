"""First contact: what a new user meets in the first minutes, each closed as a class.

Every help renders; a missing torch is one line with the install command; ``--debug`` goes anywhere; a run
directory is accepted wherever a config is read; every number argument is bounded; races say what their
columns are and warn about (or fit) a schedule of the wrong length; long commands show progress; find-lr
--write changes one number; the README's commands work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import lrtempo.cli as cli
from lrtempo.cli import build_parser, main, subcommand_parsers
from lrtempo.cli._common import config_path
from lrtempo.config import ConfigError, build_schedule, load_schedule, parse_config_text

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
HUGE = "9223372036854775808"  # 2**63: one past int64


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _exit(capsys, *argv):
    """A command line argparse refuses: (exit status, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code, capsys.readouterr().err


# -- 1. every help renders ---------------------------------------------------------------------

def test_every_help_renders(capsys):
    parser = build_parser()
    names = sorted(subcommand_parsers(parser))
    assert {"train", "demo", "show", "values", "plot", "lint", "find-lr", "race", "budget", "analyze", "report",
            "schema"} <= set(names)
    for argv in [["--help"], *([n, "--help"] for n in names)]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        out, err = capsys.readouterr()
        assert info.value.code == 0 and err == "", (argv, err)
        prog = " ".join(["lrtempo", *argv[:-1]])
        assert out.startswith(f"usage: {prog}") and "--debug" in out, argv
    assert "90/50/10% of peak" in build_parser().format_help()


def test_bare_lrtempo_prints_the_help_on_stderr_and_exits_2(capsys):
    code, out, err = _run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: lrtempo") and "COMMAND" in err and "budget" in err


def test_a_percent_in_any_help_text_cannot_break_help(capsys, monkeypatch):
    """The class: help strings are escaped where they are registered, whatever a module writes."""
    def register(sub):
        p = sub.add_parser("pct", help="the top 10% of steps, %o and 5%s", description="100% exact")
        p.add_argument("--share", type=float, default=0.5, help="share in % (default %(default)s)")
        p.set_defaults(func=lambda args: 0)

    monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, types.SimpleNamespace(register=register)))
    top = build_parser().format_help()
    assert "the top 10% of steps, %o and 5%s" in top
    sub = subcommand_parsers(build_parser())["pct"].format_help()
    assert "share in % (default 0.5)" in sub  # %(default)s still expands


# -- 2. without torch: one line with the install command, exit 2 -------------------------------

_NO_TORCH = textwrap.dedent("""
    import contextlib, io, json, sys

    BLOCKED = sys.argv[2].split(",")

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    from lrtempo.cli import main

    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        results.append([argv, code, err.getvalue()])
    print(json.dumps(results))
""")


def test_without_torch_every_torch_command_says_how_to_install_it(tmp_path):
    run_cfg = tmp_path / "run.yaml"
    run_cfg.write_text("task: linear\nsteps: 5\nschedule: {type: constant, lr: 0.1}\n")
    needs = [["train", "--out", str(tmp_path / "runs"), "--steps", "3"], ["train", str(run_cfg), "--out",
             str(tmp_path / "runs")], ["demo"], ["find-lr", "--png", str(tmp_path / "f.png")],
             ["find-lr", str(run_cfg), "--png", str(tmp_path / "f.png")], ["race", "flipnet", "--png",
             str(tmp_path / "r.png")], ["race", "charlm", "--png", str(tmp_path / "r.png")],
             ["race", str(run_cfg), "--png", str(tmp_path / "r.png")],
             ["race", "quadratic", "--png", str(tmp_path / "q.png")],
             ["race", "cooldown", "--png", str(tmp_path / "c.png")],
             ["branch", str(tmp_path), "--at", "5", "--out", str(tmp_path / "b"), "--cooldown", "2"]]
    log = tmp_path / "log.csv"
    log.write_text("step,lr,grad_l2_norm,loss\n" + "".join(f"{k},{0.1 / (k + 1)},{1 + 1 / (k + 1)},{2 - k / 100}\n"
                                                           for k in range(60)))
    free = [["analyze", str(log), "--png", str(tmp_path / "a.png")],
            ["report", str(log), "-o", str(tmp_path / "r.html")],
            ["show", str(EXAMPLES / "cosine.yaml")], ["values", str(EXAMPLES / "cosine.yaml"), "--steps", "0:3"],
            ["plot", str(EXAMPLES / "cosine.yaml")], ["budget", str(EXAMPLES / "cosine.yaml")], ["schema"],
            ["lint", str(EXAMPLES / "cosine.yaml")],
            ["diff", str(EXAMPLES / "cosine.yaml"), str(EXAMPLES / "cosine.yaml")],
            ["convert", str(EXAMPLES / "compat_transformers_cosine.json")], ["recipe", "list"],
            ["recipe", "show", "llama2-7b", "--total-steps", "1000"]]
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, json.dumps(needs + free), "torch"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for argv, code, err in results[:len(needs)]:
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "needs PyTorch" in err and "pip install" in err, (argv, err)
    for argv, code, err in results[len(needs):]:
        assert code in (0, 1) and "PyTorch" not in err, (argv, err)
    assert not (tmp_path / "runs").exists()  # nothing written by a refused train


def test_without_matplotlib_a_png_is_one_line_with_the_install_command_exit_2(tmp_path):
    argvs = [["plot", str(EXAMPLES / "cosine.yaml"), "--png", str(tmp_path / "p.png")],
             ["plot", str(EXAMPLES / "cosine.yaml")]]
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, json.dumps(argvs), "matplotlib"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (_, png_code, png_err), (_, text_code, text_err) = json.loads(proc.stdout)
    assert png_code == 2 and png_err.count("\n") == 1 and "pip install 'lrtempo[plot]'" in png_err
    assert text_code == 0 and text_err == "" and not (tmp_path / "p.png").exists()


# -- 3. --debug before or after the subcommand -------------------------------------------------

def test_debug_is_accepted_after_the_subcommand_too(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: cosine\npeak_lr: -1\n")
    for argv in (["--debug", "show", str(bad)], ["show", str(bad), "--debug"], ["show", "--debug", str(bad)]):
        with pytest.raises(ConfigError):  # the exception itself, for its traceback
            main(argv)
    for name, sub in subcommand_parsers(build_parser()).items():
        debug = [a for a in sub._actions if "--debug" in a.option_strings]
        # SUPPRESS: a subcommand's default does not undo a --debug given before it
        assert len(debug) == 1 and debug[0].default is argparse.SUPPRESS, name
    assert build_parser().parse_args(["schema"]).debug is False
    assert main(["show", str(bad)]) == 2


# -- 4. a run directory wherever a config is read ----------------------------------------------

def _config_actions():
    """Every argument of every subcommand that names a config file to read."""
    for name, sub in subcommand_parsers(build_parser()).items():
        for action in sub._actions:
            if action.metavar in ("CONFIG", "PRESET|CONFIG") or action.dest in ("schedule", "write"):
                yield name, action


def test_every_config_argument_goes_through_one_resolver():
    found = {(name, a.dest) for name, a in _config_actions()}
    assert {("show", "config"), ("values", "config"), ("plot", "config"), ("lint", "config"),
            ("budget", "config"), ("find-lr", "config"), ("race", "schedule"), ("train", "config")} <= found
    for name, action in _config_actions():
        if (name, action.dest) in (("race", "target"), ("find-lr", "write")):
            continue  # race target: a preset name too; --write: a file to edit
        assert action.type is config_path, (name, action.dest)


@pytest.mark.parametrize("command", ["show", "values", "plot", "lint", "budget"])
def test_a_run_directory_reads_its_config_yaml(capsys, tmp_path, command):
    run_dir = tmp_path / "my-run"
    run_dir.mkdir()
    shutil.copy(EXAMPLES / "run_config.yaml", run_dir / "config.yaml")
    code_dir, out_dir, err_dir = _run(capsys, command, run_dir)
    code_file, out_file, _ = _run(capsys, command, run_dir / "config.yaml")
    assert code_dir == code_file and code_dir in (0, 1) and err_dir == ""
    assert out_dir == out_file and out_dir


@pytest.mark.parametrize("command", ["show", "values", "plot", "lint", "budget"])
def test_a_directory_without_config_yaml_is_one_line_exit_2(capsys, tmp_path, command):
    code, err = _exit(capsys, command, tmp_path)
    assert code == 2 and err.count("\n") == 1 and "without config.yaml" in err and str(tmp_path) in err


def test_race_takes_a_run_directory_as_another_schedule(capsys, tmp_path):
    pytest.importorskip("torch")
    run_dir = tmp_path / "fifty"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("type: cosine\npeak_lr: 0.08\nmin_lr: 0.001\ndecay_steps: 50\n")
    code, out, _ = _run(capsys, "race", "quadratic", "--schedule", run_dir, "--json", "--quiet", "--png",
                        tmp_path / "q.png")
    assert code == 0
    schedules = json.loads(out)["schedules"]
    # the same schedule as the preset's own cosine: the same numbers
    assert schedules["fifty"]["final"]["values"] == schedules["cosine"]["final"]["values"]


# -- 5. every number argument is bounded -------------------------------------------------------

def _typed_options():
    for name, sub in subcommand_parsers(build_parser()).items():
        for action in sub._actions:
            if action.option_strings and action.type is not None and action.type is not config_path:
                yield name, action


def test_every_number_argument_has_bounds():
    typed = list(_typed_options())
    assert len(typed) >= 15
    for name, action in typed:
        low, high = action.type.bounds  # a bounded parser, never a bare int or float
        assert high <= 2**63 - 1 or high == float("inf"), (name, action.option_strings)


def test_every_number_option_refuses_what_is_out_of_range_in_one_line(capsys):
    checked = 0
    for name, action in _typed_options():
        flag = action.option_strings[-1]
        whole = isinstance(action.type.bounds[0], int)
        for bad in ((HUGE, "-" + HUGE, "1.5", "1" * 5000) if whole else ("1e999", "nan", "inf", "-1", "x")):
            code, err = _exit(capsys, name, flag, bad)
            assert code == 2 and err.count("\n") == 1, (name, flag, bad, err)
            assert f"argument {flag}: must be" in err, err
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("spec", [HUGE, f"0:{HUGE}", f"5:10:{HUGE}", "1" * 5000])
def test_values_steps_beyond_int64_are_one_line_exit_2(capsys, spec):
    code, out, err = _run(capsys, "values", EXAMPLES / "cosine.yaml", "--steps", spec)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--steps" in err


def test_long_step_lists_are_ranges_never_arrays():
    # values streams its rows, so a list of any length is parsed into ranges that cost nothing
    from lrtempo.cli._common import step_ranges

    top = 2**63 - 1
    assert step_ranges(f"0:{top},5000000:10000001") == [range(0, top), range(5000000, 10000001)]
    assert len(step_ranges("0:100000000000")[0]) == 10**11


def test_the_largest_int64_steps_are_still_accepted_exactly(capsys):
    top = 2**63 - 1
    code, out, _ = _run(capsys, "values", EXAMPLES / "cosine.yaml", "--steps", f"{top - 2}:{top},{top}")
    assert code == 0 and out.splitlines()[1:] == [f"{k},1e-05" for k in (top - 2, top - 1, top)]
    code, out, _ = _run(capsys, "values", EXAMPLES / "cosine.yaml", "--steps", f"0:{top}:{10**18}")
    assert code == 0 and [int(line.split(",")[0]) for line in out.splitlines()[1:]] == list(range(0, top, 10**18))


# -- 6. races: honest labels, a warning for a schedule of the wrong length, --fit ---------------

def _cosine_file(path: Path, steps: int) -> Path:
    path.write_text(f"type: cosine\npeak_lr: 0.08\nmin_lr: 0.001\ndecay_steps: {steps}\n")
    return path


def test_a_schedule_of_another_length_is_raced_with_a_warning(capsys, tmp_path):
    pytest.importorskip("torch")
    long = _cosine_file(tmp_path / "long.yaml", 20000)
    code, out, err = _run(capsys, "race", "quadratic", "--schedule", long, "--quiet", "--png", tmp_path / "q.png")
    assert code == 0 and "long" in out
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "'long'" in warnings[0] and "20000" in warnings[0] and " 50 " in warnings[0]
    assert "--fit" in warnings[0]


def test_fit_stretches_the_schedule_to_the_race_exactly(capsys, tmp_path):
    pytest.importorskip("torch")
    long = _cosine_file(tmp_path / "long.yaml", 20000)
    fifty = _cosine_file(tmp_path / "fifty.yaml", 50)
    code, out, err = _run(capsys, "race", "quadratic", "--schedule", long, "--schedule", fifty, "--fit", "--json",
                          "--quiet", "--png", tmp_path / "q.png")
    assert code == 0 and "warning" not in err
    schedules = json.loads(out)["schedules"]
    assert schedules["long"] == schedules["fifty"] == schedules["cosine"]


def test_fit_refuses_a_schedule_it_cannot_stretch_exactly(capsys, tmp_path):
    pytest.importorskip("torch")
    restarts = tmp_path / "restarts.yaml"  # 4 cycles of 1, 2, 4, 8 periods: 50 is not a multiple of 15
    restarts.write_text("type: restarts\npeak_lr: 0.08\nperiod: 1000\nperiod_mult: 2\nmax_cycles: 4\n")
    compat = EXAMPLES / "compat_transformers_cosine.json"
    code, out, err = _run(capsys, "race", "quadratic", "--schedule", restarts, "--fit", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and "15000" in err and "50" in err
    assert load_schedule(compat).end_step is None  # compat: endless there, raced as it is


def test_a_training_race_labels_its_columns_with_what_they_are(capsys, tmp_path):
    pytest.importorskip("torch")
    cfg = tmp_path / "base.yaml"
    cfg.write_text("task: linear\nseed: 1\nsteps: 12\nschedule: {type: constant, lr: 0.05}\n")
    code, out, err = _run(capsys, "race", cfg, "--jobs", "1", "--quiet", "--png", tmp_path / "r.png")
    assert code == 0
    header = out.splitlines()[1]
    assert "best train loss (10-update mean)" in header and "final train loss (last-10 mean)" in header
    assert "val_loss" not in out
    code, out, _ = _run(capsys, "race", cfg, "--jobs", "1", "--quiet", "--json", "--png", tmp_path / "r.png")
    data = json.loads(out)
    assert data["best_label"] == "best train loss (10-update mean)"
    # a run directory races as its config.yaml, under the directory's name
    run_dir = tmp_path / "my-run"
    run_dir.mkdir()
    shutil.copy(cfg, run_dir / "config.yaml")
    code, out, _ = _run(capsys, "race", run_dir, "--jobs", "1", "--quiet", "--json", "--png", tmp_path / "r.png")
    assert code == 0 and json.loads(out)["schedules"]["my-run"] == data["schedules"]["base"]


# -- 7. progress on stderr for find-lr and race ------------------------------------------------

def test_race_and_find_lr_show_progress_unless_quiet(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import lrtempo._progress as progress

    monkeypatch.setattr(progress, "DEFAULT_INTERVAL", 0.0)  # a line at every update (stderr is no terminal)
    code, _, err = _run(capsys, "race", "quadratic", "--png", tmp_path / "q.png")
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith("race: 0/3 (0%)") and lines[-1].startswith("race: 3/3 (100%) in ")
    assert any(line.startswith("race: 2/3 (66%)") and "ETA" in line for line in lines)
    code, _, err = _run(capsys, "race", "quadratic", "--quiet", "--png", tmp_path / "q.png")
    assert code == 0 and err == ""
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: linear\nseed: 1\nsteps: 100\nschedule: {type: constant, lr: 0.1}\n")
    code, _, err = _run(capsys, "find-lr", cfg, "--updates", "30", "--png", tmp_path / "f.png")
    assert code == 0 and "find-lr: 10/30 (33%)" in err and "ETA" in err
    code, _, err = _run(capsys, "find-lr", cfg, "--updates", "30", "--quiet", "--png", tmp_path / "f.png")
    assert code == 0 and err == ""


# -- 8. find-lr --write changes one number -----------------------------------------------------

YAML_RUN = """\
# tuned by hand: keep this comment
task: linear   # the tiny task
seed: 1
steps: 100
schedule:
  type: warmup_cosine
  peak_lr: 5e-1      # the number to change
  min_lr: 1e-4
  total_steps: 1000
  warmup_steps: 50
grad_clip: 0.5e-0     # equal to peak_lr, must stay
"""

JSON_SPEC = '{\n  "task": "linear", "grad_clip": 0.5,\n  "schedule": {"type": "warmup_cosine", "min_lr": 1e-4,\n' \
            '    "peak_lr": 0.5, "total_steps": 1000, "warmup_steps": 50},\n  "task_options": {}\n}\n'

TOML_RUN = """\
# a TOML run config
task = "linear"
steps = 100
grad_clip = 0.5

[schedule]
type = "warmup_cosine"   # peak_lr = 0.5 in a comment
min_lr = 1e-4
peak_lr = 0.5
total_steps = 1_000
warmup_steps = 50
"""

TOML_INLINE = 'task = "linear"\ngrad_clip = 0.5\nschedule = { type = "cosine", peak_lr = 0.5, decay_steps = 10 }\n'


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize("name, text, changed", [
    ("run.yaml", YAML_RUN, ("  peak_lr: 5e-1      # the number to change",
                            "  peak_lr: 0.0123      # the number to change")),
    ("run.json", JSON_SPEC, ('"peak_lr": 0.5,', '"peak_lr": 0.0123,')),
    ("run.toml", TOML_RUN, ("\npeak_lr = 0.5", "\npeak_lr = 0.0123")),
    ("inline.toml", TOML_INLINE, ("peak_lr = 0.5,", "peak_lr = 0.0123,")),
    ("crlf.yaml", YAML_RUN.replace("\n", "\r\n"), ("  peak_lr: 5e-1      # the number to change",
                                                    "  peak_lr: 0.0123      # the number to change")),
])
def test_write_peak_changes_only_that_number(tmp_path, name, text, changed):
    from lrtempo.cli.find_lr import write_peak

    path = _write(tmp_path, name, text)
    written = write_peak(str(path), 0.012345)
    assert written.endswith(f"= 0.0123 in {path}")
    after = path.read_bytes().decode()
    old, new = changed
    assert after == text.replace(old, new, 1) and text.count(old) == 1
    assert load_schedule(path).peak_lr == 0.0123


def test_write_peak_refuses_what_it_cannot_change_alone_and_leaves_the_file(tmp_path):
    from lrtempo.cli.find_lr import write_peak

    anchored = _write(tmp_path, "anchor.yaml", "task: linear\nschedule:\n  type: warmup_cosine\n"
                                               "  peak_lr: &p 0.5\n  total_steps: 100\ngrad_clip: *p\n")
    no_peak = _write(tmp_path, "nopeak.yaml", "type: linear\nstart_lr: 0.1\nend_lr: 0.0\nsteps: 10\n")
    for path, message in ((anchored, "cannot be set to 0.0123 in place"), (no_peak, "no peak field")):
        before = path.read_bytes()
        with pytest.raises(ConfigError, match=message):
            write_peak(str(path), 0.0123)
        assert path.read_bytes() == before
        assert not list(tmp_path.glob(".*.tmp"))


def test_replace_number_writes_floats_every_reader_takes_for_floats():
    from lrtempo.cli._edit import replace_number

    for fmt, text in (("yaml", "peak_lr: 0.5\n"), ("json", '{"peak_lr": 0.5}'), ("toml", "peak_lr = 0.5\n")):
        for value in (1e-05, 3e-07, 0.001, 2.5e-12, 1.0):
            edited = replace_number(text, fmt, parse_config_text(text, fmt), lambda d: d, "peak_lr", value, "f",
                                    "peak_lr")
            parsed = parse_config_text(edited, fmt)["peak_lr"]
            assert type(parsed) is float and parsed == value, (fmt, value, edited)


def test_find_lr_write_refuses_a_bad_target_before_the_sweep(capsys, tmp_path, monkeypatch):
    import lrtempo.cli.find_lr as find_lr

    monkeypatch.setattr(find_lr, "_sweep", lambda config, args: pytest.fail("swept before refusing"))
    no_peak = _write(tmp_path, "nopeak.yaml", "type: linear\nstart_lr: 0.1\nend_lr: 0.0\nsteps: 10\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("type: constant\nlr: 0.1\n")
    for target, message in ((no_peak, "no peak field"), (run_dir, "is a directory")):
        code, out, err = _run(capsys, "find-lr", "--write", target)
        assert code == 2 and err.count("\n") == 1 and message in err


def test_find_lr_command_keeps_the_comments_of_the_config_it_writes(capsys, tmp_path):
    pytest.importorskip("torch")
    path = _write(tmp_path, "run.yaml", YAML_RUN)
    code, out, _ = _run(capsys, "find-lr", path, "--updates", "60", "--end-lr", "10", "--write", path, "--json",
                        "--quiet", "--png", tmp_path / "f.png")
    assert code == 0
    value = json.loads(out)["valley"]
    after = path.read_text()
    expected = YAML_RUN.replace("peak_lr: 5e-1      #", f"peak_lr: {float(f'{value:.3g}')!r}      #")
    assert after == expected


# -- stretch: exact, at the level of the spec ------------------------------------------------------

def test_stretch_scales_every_duration_and_keeps_every_rate():
    from lrtempo.train._race import stretch

    s = build_schedule({"type": "warmup_cosine", "peak_lr": 3e-4, "min_lr": 3e-5, "total_steps": 20000,
                        "warmup_steps": 400})
    assert stretch(s, 300) == build_schedule({"type": "warmup_cosine", "peak_lr": 3e-4, "min_lr": 3e-5,
                                              "total_steps": 300, "warmup_steps": 6})
    assert stretch(s, 20000) is s
    # each duration rounds half up: 440 * 300 / 20000 = 6.6 -> 7, 430 -> 6.45 -> 6
    for warmup, expected in ((440, 7), (430, 6), (410, 6), (10, 1)):
        spec = {"type": "warmup_cosine", "peak_lr": 1.0, "total_steps": 20000, "warmup_steps": warmup}
        assert stretch(build_schedule(spec), 300).warmup_steps == expected, warmup
    constant = build_schedule({"type": "constant", "lr": 0.1})
    assert stretch(constant, 300) is constant
    for example in sorted(EXAMPLES.glob("*.*")):  # the configs (examples/loops/ holds scripts)
        sched = load_schedule(example)
        if sched.end_step in (None, 0):
            continue
        for target in (50, 300, 1000, 3 * sched.end_step):
            try:
                fitted = stretch(sched, target)
            except ValueError as exc:
                assert "by hand" in str(exc), example
                continue
            assert fitted.end_step == target, (example.name, target)
            assert fitted(0) == sched(0) and fitted(target) == sched(sched.end_step), example.name


def test_stretch_keeps_the_pieces_of_a_join_summing_to_the_target():
    from lrtempo.train._race import stretch

    s = load_schedule(EXAMPLES / "join.yaml")  # pieces of 500, 4500 and the rest of 10000
    for target in (20, 99, 301, 1234):
        fitted = stretch(s, target)
        assert fitted.end_step == target
        steps = [p.steps for p in fitted.pieces if p.steps is not None]
        assert all(n >= 1 for n in steps)


def test_argparse_errors_are_one_line(capsys):
    code, err = _exit(capsys, "show")
    assert code == 2 and err.count("\n") == 1 and "CONFIG" in err and "--help" in err
    assert isinstance(build_parser(), argparse.ArgumentParser)


# -- 10. the README's commands work on a fresh clone ---------------------------------------------

README = ROOT / "README.md"
RUN = "runs/tiny"

#: one concrete command line per row of the README's command table (its first cell, verbatim), in an order
#: where each finds what an earlier one wrote; True where the command needs torch
TABLE = {
    "lrtempo train [CONFIG] [--out DIR] [--steps N] [--resume RUN_DIR]":
        (True, [["train", "tiny.yaml", "--out", "runs", "--steps", "30", "--quiet"],
                ["train", "--resume", RUN, "--steps", "40", "--quiet"]]),
    "lrtempo branch RUN_DIR --at STEP --out NEW_DIR --cooldown N [--shape 1-sqrt] [--to MIN_LR]":
        (True, [["branch", RUN, "--at", "30", "--out", "runs/tiny-cool", "--cooldown", "10", "--shape", "1-sqrt"]]),
    "lrtempo demo": (True, [["demo"]]),
    "lrtempo lint CONFIG [--json]": (False, [["lint", "examples/warmup_cosine.yaml", "--json"],
                                          ["lint", "examples/run_config.yaml"]]),
    "lrtempo find-lr [CONFIG] [--write SCHEDULE_CONFIG]":
        (True, [["find-lr", "tiny.yaml", "--updates", "40", "--end-lr", "10", "--write", "schedule.yaml",
                 "--png", "range.png", "--quiet"]]),
    "lrtempo race PRESET|CONFIG [--schedule FILE ...] [--seeds N] [--fit] [--optimizer schedulefree]":
        (True, [["race", "quadratic", "--schedule", "examples/cosine.yaml", "--seeds", "2", "--fit", "--png",
                 "race.png", "--quiet"]]),
    "lrtempo analyze RUN_DIR|LOG.csv [--json] [--png FILE]":
        (True, [["analyze", RUN, "--json"], ["analyze", f"{RUN}/log.csv", "--png", "analysis.png"]]),
    "lrtempo report RUN_DIR|LOG.csv [-o FILE]": (True, [["report", RUN, "-o", "report.html"]]),
    "lrtempo budget CONFIG [--step-time 200ms] [--gpus N] [--gpu-hour-cost X]":
        (False, [["budget", "examples/warmup_cosine.yaml", "--step-time", "200ms", "--gpus", "8",
                  "--gpu-hour-cost", "2.5"]]),
    "lrtempo show CONFIG": (False, [["show", "examples/warmup_cosine.yaml"], ["show", "examples/run_config.yaml"]]),
    "lrtempo values CONFIG [--steps 0:100,1000] [-o FILE]":
        (False, [["values", "examples/warmup_cosine.yaml", "--steps", "0:100,1000", "-o", "values.csv"]]),
    "lrtempo diff A B [--steps 0:100,1000] [--json]":
        (False, [["diff", "examples/compat_torch_sequential.yaml", "examples/compat_torch_sequential.yaml",
                  "--steps", "0:100,1000", "--json"]]),
    "lrtempo convert CONFIG [-o FILE]":
        (False, [["convert", "examples/compat_torch_sequential.yaml", "-o", "native.yaml"]]),
    "lrtempo scale CONFIG --batch-size B --to-batch-size B2 --rule linear|sqrt":
        (False, [["scale", "examples/warmup_cosine.yaml", "--batch-size", "256", "--to-batch-size", "1024", "--rule",
                  "sqrt", "-o", "scaled.yaml"]]),
    "lrtempo recipe list|show NAME [-o FILE] [--total-steps N | --budget RUN_CONFIG]":
        (False, [["recipe", "list"], ["recipe", "show", "llama2-7b", "-o", "llama2.yaml", "--total-steps", "1000"]]),
    "lrtempo plot CONFIG [--png FILE] [--width W] [--height H] [--log-y]":
        (False, [["plot", "examples/warmup_cosine.yaml", "--png", "plot.png", "--width", "60", "--height", "12",
                  "--log-y"]]),
    "lrtempo schema": (False, [["schema"]]),
}


def _readme_table() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Command line"):]
    section = section[:section.index("\n## ", 1)]
    return [line.split("`")[1].replace("\\|", "|") for line in section.splitlines() if line.startswith("| `lrtempo")]


def test_the_explicit_command_list_mirrors_the_readme_table():
    assert _readme_table() == list(TABLE)
    parsers = subcommand_parsers(build_parser())
    for row, (_, argvs) in TABLE.items():
        name = row.split()[1]
        nested = [parsers[name], *subcommand_parsers(parsers[name]).values()]  # recipe list|show: their own flags
        options = {s for p in nested for a in p._actions for s in a.option_strings}
        for token in row.replace("[", " ").replace("]", " ").split():
            if token.startswith("-"):
                assert token in options, (row, token)  # every flag the README shows exists
        assert all(argv[0] == name for argv in argvs)


def test_every_file_the_readme_names_exists():
    import re

    names = set(re.findall(r"(?<![\w/.])((?:examples|docs|benchmarks|tests|src)/[\w./-]+\.\w+)", README.read_text()))
    assert "examples/run_config.yaml" in names and "docs/contract.md" in names
    for name in names:
        assert (ROOT / name).is_file(), name
    # and every config a shell example passes is a shipped file (no `lrtempo train run.yaml` for a file not there)
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if re.search(r"\blrtempo\b", line)]
    assert len(commands) >= 5
    for line in commands:
        for token in line.split("#")[0].split():
            if token.endswith((".yaml", ".yml", ".json", ".toml")):
                assert (ROOT / token).is_file(), line


def test_every_command_of_the_readme_table_works_on_a_fresh_clone(capsys, tmp_path, monkeypatch):
    has_torch = True
    try:
        import torch  # noqa: F401
    except ImportError:
        has_torch = False
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    shutil.copy(EXAMPLES / "warmup_cosine.yaml", tmp_path / "schedule.yaml")
    (tmp_path / "tiny.yaml").write_text("name: tiny\ntask: linear\nseed: 0\nsteps: 30\ncheckpoint_every: 10\n"
                                        "schedule: {type: warmup_cosine, peak_lr: 0.05, total_steps: 40, "
                                        "warmup_steps: 4, min_lr: 0.001}\n")
    monkeypatch.chdir(tmp_path)
    ran = 0
    for needs_torch, argvs in TABLE.values():
        if needs_torch and not has_torch:
            continue
        for argv in argvs:
            code, out, err = _run(capsys, *argv)
            ok = (0, 1) if argv[0] == "lint" else (0,)  # lint: 1 means warnings were found
            assert code in ok, (argv, code, err)
            assert "error" not in err, (argv, err)
            ran += 1
    assert ran == sum(len(argvs) for needs, argvs in TABLE.values() if has_torch or not needs)
    if has_torch:
        assert json.loads((tmp_path / RUN / "summary.json").read_text())["steps"] == 40
        assert (tmp_path / "schedule.yaml").read_text() != (EXAMPLES / "warmup_cosine.yaml").read_text()
        assert (tmp_path / "report.html").is_file() and (tmp_path / "race.png").is_file()
    assert (tmp_path / "values.csv").read_text().startswith("step,lr\n0,0.0\n")


# -- 9. user-facing text stands on its own -------------------------------------------------------

def test_no_user_facing_text_cites_documents_users_do_not_have(capsys):
    import re

    internal = re.compile(r"DESIGN(\.md| ?§)|\bseed[ -]00\d|\.\./shared")
    files = [README, *(ROOT / "docs").glob("*.md"), *(p for p in EXAMPLES.rglob("*") if p.is_file()),
             *(ROOT / "src").rglob("*.py"),
             *(ROOT / "src").rglob("*.js"), *(ROOT / "src").rglob("*.css")]
    assert len(files) > 60
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not internal.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
    texts = [build_parser().format_help(), *(p.format_help() for p in subcommand_parsers(build_parser()).values())]
    assert not any(internal.search(text) for text in texts)


# -- --json output is strict JSON --------------------------------------------------------------


def _strict(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_analyze_json_writes_null_for_a_number_that_is_not_finite(capsys, tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("step,lr,grad_l2_norm,loss\n" + "".join(f"{k},0.01,1.0,nan\n" for k in range(30)))
    code, out, _ = _run(capsys, "analyze", log, "--json")
    assert code == 0
    phases = _strict(out)["phases"]
    assert phases and all(p["loss_change"] is None for p in phases)
