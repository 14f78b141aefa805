"""Shared test helpers: high-precision references and ulp comparison."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

mp.mp.dps = 50

#: the engine's promise: within this many ulp of the true value, everywhere
MAX_ULPS = 4


def ulps_off(actual: float, expected) -> float:
    """Distance of ``actual`` from the exact ``expected`` (an mpf), in ulp of the expected value."""
    expected = mp.mpf(expected)
    if expected == 0:
        return 0.0 if actual == 0 else float("inf")
    spacing = np.spacing(abs(float(expected)))
    return float(abs(mp.mpf(actual) - expected) / mp.mpf(spacing))


def assert_close_ulps(actual: float, expected, *, max_ulps: float = MAX_ULPS, where: str = "") -> None:
    off = ulps_off(actual, expected)
    assert off <= max_ulps, f"{where}: {actual!r} is {off:.2f} ulp from {mp.nstr(mp.mpf(expected), 20)}"


@pytest.fixture
def check_schedule():
    """Compare a schedule with a reference function at the given steps, scalar and array paths."""

    def check(schedule, reference, steps, max_ulps=MAX_ULPS):
        steps = sorted(set(int(s) for s in steps if s >= 0))
        arr = schedule.at(np.asarray(steps))
        for k, from_array in zip(steps, arr.tolist()):
            value = schedule(k)
            assert value == from_array, f"step {k}: scalar {value!r} != array {from_array!r}"
            assert_close_ulps(value, reference(k), max_ulps=max_ulps, where=f"step {k}")

    return check


def around(*points: int) -> list[int]:
    """Each point and its neighbours (point - 1, point, point + 1)."""
    return [p + d for p in points for d in (-1, 0, 1) if p + d >= 0]


def torch_loop_rates(make_scheduler, n: int, base: float, optimizer: str = "SGD") -> np.ndarray:
    """The lr of updates 0..n-1 in torch's documented loop: optimizer.step(), then scheduler.step()."""
    import warnings

    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base, momentum=0.9) if optimizer == "SGD" else torch.optim.AdamW([param], lr=base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make_scheduler(opt)
        out = []
        for i in range(n):
            out.append(opt.param_groups[0]["lr"])
            if i < n - 1:
                opt.step()
                sched.step()
    return np.asarray(out, dtype=np.float64)
