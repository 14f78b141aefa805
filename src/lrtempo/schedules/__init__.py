"""Pure schedule values: families, combinators and recipes.

Every schedule is a frozen dataclass and a pure function of the optimizer-step
counter: ``schedule(step) -> float`` and ``schedule.at(steps) -> ndarray``,
identical bit for bit. See ``docs/contract.md`` and ``docs/schedules.md``.
"""

from ._base import MAX_STEPS, ParameterError, Phase, Schedule, as_steps
from ._combinators import MAX_CYCLES, Clamp, Join, Piece, Restarts, Scale, Warmup
from ._families import (
    Constant,
    CosineDecay,
    Cyclic,
    ExponentialDecay,
    InverseSqrt,
    Linear,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    Ramp,
    StepDecay,
    TanhDecay,
    steps_from_fraction,
)
from ._recipes import WSD, Noam, WarmupCosine, WarmupPlateauCosine

#: every native schedule class, by its config ``type`` name
NATIVE_TYPES: dict[str, type[Schedule]] = {
    cls.type_name: cls
    for cls in (
        Constant, Linear, Ramp, StepDecay, MultiStepDecay, ExponentialDecay, PolynomialDecay,
        CosineDecay, InverseSqrt, TanhDecay, Cyclic, OneCycle,
        Join, Warmup, Restarts, Clamp, Scale,
        WarmupCosine, WSD, WarmupPlateauCosine, Noam,
    )
}

__all__ = [
    "Schedule", "Phase", "ParameterError", "as_steps", "steps_from_fraction", "NATIVE_TYPES", "MAX_STEPS",
    "MAX_CYCLES",
    "Constant", "Linear", "Ramp", "StepDecay", "MultiStepDecay", "ExponentialDecay",
    "PolynomialDecay", "CosineDecay", "InverseSqrt", "TanhDecay", "Cyclic", "OneCycle",
    "Join", "Piece", "Warmup", "Restarts", "Clamp", "Scale",
    "WarmupCosine", "WSD", "WarmupPlateauCosine", "Noam",
]
