"""The cooldown race (``lrtempo race cooldown``): one WSD stable run per seed serves every budget through
cooldown branches, raced against cosine per budget; here on a tiny character model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402
from lrtempo.config import build_schedule, read_config_file  # noqa: E402
from lrtempo.plot._race import race_page  # noqa: E402
from lrtempo.train import read_log  # noqa: E402
from lrtempo.train._race import CooldownRace, race_cooldown  # noqa: E402

TINY = {"d_model": 32, "n_layer": 1, "n_head": 2, "context": 32, "batch_size": 8, "max_bytes": 300000,
        "val_batches": 2}


def test_one_stable_run_serves_every_budget_and_cosine_runs_each(tmp_path):
    race = CooldownRace(budgets=(10, 20), warmup_steps=2, task_options=TINY)
    result = race_cooldown(race, seeds=1, folder=tmp_path / "runs")
    names = ["T=10: wsd, 1-sqrt cooldown", "T=10: warmup_cosine", "T=20: wsd, 1-sqrt cooldown",
             "T=20: warmup_cosine"]
    assert list(result.final) == names and result.seeds == [0]
    assert [len(result.curves[n][0]) for n in names] == [10, 10, 20, 20]
    assert all(np.isfinite(result.final[n][0]) for n in names)
    seed = tmp_path / "runs" / "seed-0"
    stable = read_log(seed / "stable" / "log.csv")
    assert len(stable) == 16  # up to the largest budget's branch point, 20 - 4
    for budget, at in ((10, 8), (20, 16)):
        rows = read_log(seed / f"cooldown-{budget}" / "log.csv")
        assert rows[:at] == stable[:at]  # the branch is the stable run up to its point, row for row
        schedule = build_schedule(read_config_file(seed / f"cooldown-{budget}" / "config.yaml")["schedule"])
        assert [float(r["lr"]) for r in rows] == schedule.at(np.arange(budget)).tolist()
        assert schedule.kind == "cooldown" and schedule.steps == budget // 5 and schedule.shape == "1-sqrt"
        assert result.curves[f"T={budget}: wsd, 1-sqrt cooldown"][0] == [float(r["loss"]) for r in rows]
    # the largest budget's cooldown is the stable WSD schedule's own decay
    wsd = build_schedule(race.stable_spec())
    top = read_log(seed / "cooldown-20" / "log.csv")
    assert [float(r["lr"]) for r in top] == pytest.approx(wsd.at(np.arange(20)).tolist(), rel=1e-15)
    cosine = read_log(seed / "cosine-20" / "log.csv")
    assert [float(r["lr"]) for r in cosine] == build_schedule(race.cosine_spec(20)).at(np.arange(20)).tolist()
    table = result.table()
    diff = result.final[names[2]][0] - result.final[names[3]][0]
    assert "T=20: " + f"{diff:+.4f}" in table and "paired by seed" in table
    page = race_page(result, tmp_path / "race.html", png=None, command="lrtempo race cooldown")
    text = page.read_text()
    assert "lrtempo race cooldown" in text and "T=10: warmup_cosine" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["race", "cooldown", "--schedule", "examples/cosine.yaml"], "takes no --schedule or --fit"),
    (["race", "quadratic", "--runs", "x"], "--runs goes with the cooldown race"),
])
def test_the_cooldown_race_refuses_what_it_does_not_take(argv, message, capsys):
    assert main([*argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_a_run_stopped_by_a_signal_stops_the_race(tmp_path):
    from lrtempo.train import RunSummary
    from lrtempo.train._race import _completed

    stopped = RunSummary(tmp_path / "stable", "interrupted", 83, 2.0, 2.0, None, 0, False, 1.0, 83, "SIGTERM")
    with pytest.raises(RuntimeError, match=r"stable: interrupted after 83 updates; the cooldown race stops"):
        _completed(stopped)
    assert _completed(stopped.__class__(**{**stopped.__dict__, "status": "completed"})).status == "completed"
