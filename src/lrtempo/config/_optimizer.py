"""The optimizer section of a run config: which optimizer and its settings (the single place of their defaults).

It lives in ``config/`` rather than beside the training loop so that the
linter, which reads a run config without torch, takes the same defaults as
training does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._typed import check_settings, setting

__all__ = ["ADAM_FAMILY", "OPTIMIZERS", "OptimizerConfig"]

#: the optimizers a run config may name (``optimizer.name``)
OPTIMIZERS = ("adamw", "sgd", "schedulefree")
#: those that normalise by Adam's second moment (``betas``): schedule-free AdamW is AdamW's update, averaged
ADAM_FAMILY = ("adamw", "schedulefree")


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """The ``optimizer`` section of a run config.

    >>> OptimizerConfig(betas=(0.9, 1.0))
    Traceback (most recent call last):
    ...
    lrtempo.config._errors.ConfigError: optimizer.betas[1]: must be < 1 (got 1.0)
    """

    config_title: ClassVar[str] = "the optimizer settings"
    config_path: ClassVar[str] = "optimizer"

    name: str = setting("adamw", doc="the optimizer: adamw (AdamW), sgd (SGD) or schedulefree (schedule-free "
                                     "AdamW; pip install 'lrtempo[schedulefree]')",
                        choices=OPTIMIZERS)
    betas: tuple[float, float] = setting((0.9, 0.999), doc="AdamW's (and schedule-free's) beta1 and beta2, each "
                                                           "in [0, 1)",
                                         minimum=0, exclusive_maximum=1)
    eps: float = setting(1e-8, doc="AdamW's epsilon, added to the denominator", exclusive_minimum=0)
    weight_decay: float = setting(0.0, doc="weight decay of the weight matrices (biases and norm weights get none)",
                                  minimum=0)
    momentum: float = setting(0.0, doc="SGD's momentum, in [0, 1]", minimum=0, maximum=1)

    def __post_init__(self) -> None:
        check_settings(self)
