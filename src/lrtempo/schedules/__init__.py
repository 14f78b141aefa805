"""Pure schedule values: families, combinators and recipes.

Every schedule is a frozen dataclass and a pure function of the optimizer-step
counter: ``schedule(step) -> float`` and ``schedule.at(steps) -> ndarray``,
identical bit for bit. See ``docs/contract.md`` and ``docs/schedules.md``.
"""

# the order the families register in is the order config lists them: families first
# isort: off
from ._base import (MAX_STEPS, NATIVE_TYPES, Checks, ParameterError, Phase, Schedule, as_steps, families,
                    has_finite_end, param_kind)
from ._families import (Constant, CosineDecay, Cyclic, ExponentialDecay, InverseSqrt, Linear, MultiStepDecay,
                        OneCycle, PolynomialDecay, Ramp, StepDecay, TanhDecay, steps_from_fraction)
from ._combinators import MAX_CYCLES, Clamp, Join, Piece, Restarts, Scale, Warmup
from ._recipes import WSD, Noam, WarmupCosine, WarmupPlateauCosine
from ._branch import Branch
from ._plateau import Plateau, PlateauDecider, Reduction, find_plateau
from ._units import POSITION_COLUMNS, UNITS, ByUpdate, InUnit, position_name
# isort: on

__all__ = [
    "Schedule", "Phase", "ParameterError", "as_steps", "steps_from_fraction", "NATIVE_TYPES", "MAX_STEPS",
    "MAX_CYCLES", "families", "param_kind", "Checks", "has_finite_end",
    "Constant", "Linear", "Ramp", "StepDecay", "MultiStepDecay", "ExponentialDecay",
    "PolynomialDecay", "CosineDecay", "InverseSqrt", "TanhDecay", "Cyclic", "OneCycle",
    "Join", "Piece", "Warmup", "Restarts", "Clamp", "Scale",
    "WarmupCosine", "WSD", "WarmupPlateauCosine", "Noam", "Branch",
    "Plateau", "PlateauDecider", "Reduction", "find_plateau",
    "InUnit", "ByUpdate", "UNITS", "POSITION_COLUMNS", "position_name",
]
