"""``lrtempo recipe``: every recipe builds, states its figures truly, rescales exactly and round-trips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lrtempo.cli import main
from lrtempo.config import build_schedule, load_schedule
from lrtempo.config._recipes_catalog import RECIPES

NAMES = list(RECIPES)
DOCS = Path(__file__).parent.parent / "docs" / "tools.md"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_catalogue_has_every_recipe_the_issue_names():
    assert len(NAMES) == 10 and len(set(NAMES)) == 10
    for part in ("llama2", "llama3", "gpt3", "chinchilla", "bert-pretraining", "roberta", "resnet50", "vit",
                 "one-cycle", "wsd"):
        assert any(part in n for n in NAMES), part


@pytest.mark.parametrize("name", NAMES)
def test_each_recipe_builds_and_its_figures_are_the_schedule_s(name):
    r = RECIPES[name]
    s = build_schedule(r.spec)
    assert s.end_step == r.total_steps
    assert s(r.warmup_steps) == r.peak_lr
    assert float(s.at(range(r.total_steps + 1)).max()) == r.peak_lr  # nothing above the stated peak
    assert s(r.total_steps) == r.final_lr
    if r.warmup_steps:
        assert s(r.warmup_steps - 1) < r.peak_lr  # the warmup really lasts warmup_steps
    # the note and source state what the spec does: the source has a paper id or a config file
    assert re.search(r"arXiv:\d{4}\.\d{4,5}|\.md|references/", r.source), r.source
    assert f"{r.total_steps:,}" in r.note or f"{r.total_steps}" in r.note, (name, "total not in the note")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1000, 3 * 10**6])
def test_total_steps_rescales_durations_and_keeps_the_rates(capsys, tmp_path, name, steps):
    r = RECIPES[name]
    out = tmp_path / "r.yaml"
    code, _, err = _run(capsys, "recipe", "show", name, "-o", out, "--total-steps", steps)
    assert code == 0, err
    s = load_schedule(out)
    assert s.end_step == steps
    w = max(1, round(r.warmup_steps * steps / r.total_steps)) if r.warmup_steps else 0
    assert s(w) == r.peak_lr, (w, s(w))
    assert float(s.at(range(0, steps + 1, max(1, steps // 10**5))).max()) <= r.peak_lr  # sampled: nothing above
    assert s(steps) == r.final_lr


def test_show_prints_yaml_led_by_its_source_and_it_builds(capsys, tmp_path):
    for name in NAMES:
        code, out, err = _run(capsys, "recipe", "show", name)
        assert code == 0, err
        first = out.splitlines()[0]
        assert first == f"# {name}: {RECIPES[name].source}"
        path = tmp_path / f"{name}.yaml"
        path.write_text(out)
        code, shown, err = _run(capsys, "show", path)
        assert code == 0, err
        assert f"end step  {RECIPES[name].total_steps}" in shown


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_show_o_round_trips_the_spec(capsys, tmp_path, suffix):
    for name in NAMES:
        out = tmp_path / f"{name}{suffix}"
        code, _, err = _run(capsys, "recipe", "show", name, "-o", out)
        assert code == 0, err
        assert load_schedule(out) == build_schedule(RECIPES[name].spec)
    if suffix == ".json":
        json.loads(out.read_text())  # no comment line in JSON


def test_unknown_name_one_line_did_you_mean_exit_2(capsys):
    code, out, err = _run(capsys, "recipe", "show", "llama2")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "'llama2'" in err and "did you mean 'llama2-7b'" in err


def test_bad_output_suffix_is_refused_and_leaves_the_file(capsys, tmp_path):
    out = tmp_path / "spec.txt"
    out.write_text("kept")
    code, _, err = _run(capsys, "recipe", "show", "one-cycle", "-o", out)
    assert code == 2 and "-o" in err
    assert out.read_text() == "kept"


def test_list_names_every_recipe_with_its_total_and_source(capsys):
    code, out, _ = _run(capsys, "recipe", "list")
    assert code == 0
    rows = out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == NAMES
    for row, r in zip(rows, RECIPES.values()):
        assert row.split()[1] == str(r.total_steps) and row.endswith(r.source)


def test_the_docs_table_lists_exactly_the_catalogue():
    text = DOCS.read_text()
    section = text[text.index("## `lrtempo recipe"):]
    names = re.findall(r"^\| `([\w-]+)` \|", section, flags=re.M)
    assert names == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_length_too_short_to_rescale_to_is_one_line_exit_2(capsys, tmp_path, name):
    out = tmp_path / "r.yaml"
    out.write_text("kept")
    code, stdout, err = _run(capsys, "recipe", "show", name, "--total-steps", 2, "-o", out)
    if code == 0:  # some recipes do fit in 2 steps: then the file is that schedule, ending at 2
        assert load_schedule(out).end_step == 2
        return
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert "--total-steps 2" in err and repr(name) in err
    assert out.read_text() == "kept"


def test_budget_rescales_to_the_updates_of_a_run_config_s_total(capsys, tmp_path):
    """--budget takes the run's length from its total: here 3 epochs of 1000 examples at 32 x 2: 3 x 16 updates."""
    run = tmp_path / "run.yaml"
    run.write_text("schedule: {type: constant, lr: 0.1}\naccumulation_steps: 2\ntotal: {epochs: 3}\n"
                   "data: {examples: 1000, batch_size: 32}\n")
    code, out, err = _run(capsys, "recipe", "show", "llama2-7b", "--budget", run)
    assert code == 0, err
    spec = tmp_path / "r.yaml"
    spec.write_text(out)
    assert load_schedule(spec).end_step == 48 and "3 epochs x ceil(1000 / 64) = 3 x 16 = 48 updates" in out
    with pytest.raises(SystemExit) as refused:
        _run(capsys, "recipe", "show", "llama2-7b", "--budget", run, "--total-steps", 10)
    assert refused.value.code == 2 and "not allowed with argument --budget" in capsys.readouterr().err
    run.write_text("task: linear\nschedule: {type: constant, lr: 0.1}\n")
    code, out, err = _run(capsys, "recipe", "show", "llama2-7b", "--budget", run)
    assert code == 2 and out == "" and "it has no total" in err and err.count("\n") == 1
