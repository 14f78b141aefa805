"""Schedule races: results that follow from each preset's setup, and a run-config race over seeds in parallel."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrtempo.cli import main  # noqa: E402
from lrtempo.train._race import PRESETS  # noqa: E402


def _race_json(capsys, *argv):
    assert main([str(a) for a in argv] + ["--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def _quadratic_rates() -> dict[str, np.ndarray]:
    return {c.name: c.schedule.at(np.arange(50)) for c in PRESETS["quadratic"].contenders()}


def _w_final(rates: np.ndarray, seed: int) -> float:
    """The last iterate of ``w -= r_t (2 w + xi_t)`` from 5, in closed form:
    ``w_T = 5 prod(1 - 2 r) - sum_t r_t xi_t prod_{s > t} (1 - 2 r_s)``."""
    np.random.seed(seed)
    xi = np.random.normal(0, 2.0, size=rates.size)
    factors = 1 - 2 * rates
    after = np.append(np.cumprod(factors[::-1])[::-1][1:], 1.0)  # prod over s > t
    return float(5.0 * np.prod(factors) - np.sum(rates * xi * after))


def _expected_final_loss(rates: np.ndarray) -> float:
    """E[w_T ** 2] by the second-moment recursion m' = (1 - 2 r) ** 2 m + r ** 2 sigma ** 2, m_0 = 25."""
    m = 25.0
    for r in rates:
        m = (1 - 2 * r) ** 2 * m + r ** 2 * 4.0
    return m


def test_quadratic_preset_is_the_noisy_quadratic_exactly(capsys, tmp_path):
    out = _race_json(capsys, "race", "quadratic", "--seeds", "3", "--png", tmp_path / "q.png")
    assert out["seeds"] == [42, 43, 44]
    for name, rates in _quadratic_rates().items():
        finals = out["schedules"][name]["final"]["values"]
        for seed, final in zip(out["seeds"], finals):
            assert final == pytest.approx(_w_final(rates, seed) ** 2, rel=1e-9, abs=1e-15), (name, seed)
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_quadratic_preset_decay_beats_constant_as_the_second_moment_predicts(capsys, tmp_path):
    n = 200
    out = _race_json(capsys, "race", "quadratic", "--seeds", str(n), "--png", tmp_path / "q.png")
    s = out["schedules"]
    expected = {name: _expected_final_loss(rates) for name, rates in _quadratic_rates().items()}
    for name, summary in s.items():
        final = summary["final"]
        assert all(math.isfinite(v) and v >= 0 for v in final["values"])
        # the sample mean over n seeds lies within 4 standard errors of E[w_T ** 2]
        assert abs(final["mean"] - expected[name]) < 4 * final["std"] / math.sqrt(n), (name, final["mean"])
    const = s["constant"]
    for decayed in ("cosine", "warmup+cosine"):
        # the rate decays to 0.001: the noise floor of w ** 2 falls well below the constant rate's
        assert s[decayed]["final"]["mean"] < 0.5 * const["final"]["mean"]
        # over the last 10 steps the decayed rates are <= 0.009, a tenth of 0.08: w nearly stops moving
        key = "std of w, last 10 steps"
        assert s[decayed][key]["mean"] < 0.2 * const[key]["mean"]


def test_quadratic_table_labels_and_digits(capsys, tmp_path):
    assert main(["race", "quadratic", "--quiet", "--png", str(tmp_path / "q.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "noisy quadratic, 50 steps (seed 42)"
    assert lines[1].split() == ["schedule", "final", "loss", "best", "loss", "std", "of", "w,", "last", "10", "steps"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    for name, rates in _quadratic_rates().items():
        assert rows[name][0] == f"{_w_final(rates, 42) ** 2:.3f}"


def test_flipnet_preset_decayed_rates_end_below_the_constant_rate(capsys, tmp_path):
    out = _race_json(capsys, "race", "flipnet", "--seeds", "3", "--png", tmp_path / "f.png")
    s = out["schedules"]
    assert set(s) == {"constant", "step (halve every 10 epochs)", "cosine to 0.001"}
    const = s["constant"]["final"]["values"]
    for name in ("step (halve every 10 epochs)", "cosine to 0.001"):
        values = s[name]["final"]["values"]
        assert all(math.isfinite(v) and v > 0 for v in values)
        # one update per image: the gradient noise scales with the rate, so every seed ends lower decayed
        assert all(v < c for v, c in zip(values, const)), (name, values, const)
        assert all(b <= f for b, f in zip(s[name]["best"]["values"], values))


def test_run_config_race_over_seeds_in_parallel(capsys, tmp_path):
    cfg = tmp_path / "base.yaml"
    cfg.write_text("task: flipnet\nseed: 3\nsteps: 200\noptimizer: {name: sgd, momentum: 0.9}\n"
                   "schedule: {type: constant, lr: 0.05}\n")
    other = tmp_path / "cosine.yaml"
    other.write_text("type: cosine\npeak_lr: 0.05\nmin_lr: 0.0005\ndecay_steps: 200\n")
    same = tmp_path / "same.yaml"
    same.write_text("type: constant\nlr: 0.05\n")
    argv = ["race", cfg, "--schedule", other, "--schedule", same, "--seeds", "2", "--png", tmp_path / "r.png"]
    out = _race_json(capsys, *argv, "--jobs", "2")
    assert out["seeds"] == [3, 4] and set(out["schedules"]) == {"base", "cosine", "same"}
    for summary in out["schedules"].values():
        values = summary["final"]["values"]
        assert len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values)
        # two seeds, two initial weights: the spread is the sample std of two different numbers
        assert summary["final"]["std"] == statistics.stdev(values) > 0
    # every schedule starts from the same weights and data per seed: the same schedule, the same numbers
    assert out["schedules"]["same"] == out["schedules"]["base"]
    # and running again, in one process, gives the same numbers
    again = _race_json(capsys, *argv, "--jobs", "1")
    assert again["schedules"] == out["schedules"]


def test_race_rejects_an_unknown_target(capsys):
    assert main(["race", "nope"]) == 2
    assert "neither a preset" in capsys.readouterr().err


def test_parallel_races_never_fork_a_threaded_process():
    # a fork of a process whose threads hold locks (torch's pool, JAX's) can deadlock the worker
    from lrtempo.train._race import _worker_context

    assert _worker_context().get_start_method() in ("forkserver", "spawn")


def test_the_race_png_is_drawn_from_plain_curves(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from lrtempo.plot import _race, race_png

    drawn = {}
    real = _race.png_figure

    def spy(path, **kw):
        cm = real(path, **kw)

        class Wrap:
            def __enter__(self):
                fig, ax = cm.__enter__()
                drawn["ax"] = ax
                return fig, ax

            def __exit__(self, *exc):
                ax = drawn["ax"]
                drawn.update(lines={ln.get_label(): ln.get_ydata().tolist() for ln in ax.get_lines()},
                             x_label=ax.get_xlabel(), title=ax.get_title(), shaded=len(ax.collections))
                return cm.__exit__(*exc)
        return Wrap()

    monkeypatch.setattr(_race, "png_figure", spy)
    out = race_png({"a": [[4.0, 2.0, 1.0], [2.0, 2.0, 3.0]], "b": [[1.0, 0.5, 0.25]]}, tmp_path / "r.png",
                   title="quadratic", x_label="epoch")
    assert out == tmp_path / "r.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["lines"] == {"a": [3.0, 2.0, 2.0], "b": [1.0, 0.5, 0.25]}  # the mean over seeds
    assert (drawn["x_label"], drawn["title"], drawn["shaded"]) == ("epoch", "quadratic", 1)  # one std band: a's
