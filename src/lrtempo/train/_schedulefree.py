"""Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled") as ``optimizer.name: schedulefree``.

The optimizer is the ``schedulefree`` package's ``AdamWScheduleFree`` (an optional extra:
``pip install 'lrtempo[schedulefree]'``). It keeps two sequences: ``z`` (the plain AdamW-like steps) and
``x`` (their running average, the weights to evaluate); the model's parameters hold the point between them
where gradients are taken, ``y = (1 - beta1) z + beta1 x``. So:

* training needs the optimizer in train mode (:func:`build_schedulefree` returns it so);
* validation and the weights one would deploy are the average ``x``: :func:`evaluation_weights` puts them
  in the model for the time of a ``with`` block and then puts the training weights back bit for bit, so
  evaluating never changes the run (a run validated every 10 updates trains exactly as one never validated).

The rate: lrtempo's schedule sets ``group["lr"]`` before every update, warmup included; the package's own
``warmup_steps`` is always 0, so there is one warmup, the schedule's, and ``lrtempo values`` shows it. The
package weights its average by the largest rate so far squared, which is how its paper handles a warmup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from .._util import MissingDependency

__all__ = ["INSTALL_HINT", "require_package", "build_schedulefree", "is_schedulefree", "evaluation_weights",
           "eval_state_dict"]

#: the one line a missing package gives
INSTALL_HINT = ("optimizer.name: schedulefree needs the schedulefree package, which is not installed: "
                "pip install 'lrtempo[schedulefree]'")


def _package() -> Any:
    try:
        import schedulefree
    except ImportError:
        raise MissingDependency(INSTALL_HINT) from None
    return schedulefree


def require_package(optimizer_name: str) -> None:
    """Raise :class:`MissingDependency` (one line with the install command) if ``optimizer_name`` needs it."""
    if optimizer_name == "schedulefree":
        _package()


def build_schedulefree(groups: list[dict], *, lr: float, betas: tuple[float, float], eps: float,
                       weight_decay: float) -> torch.optim.Optimizer:
    """``AdamWScheduleFree`` over ``groups`` with no warmup of its own (the schedule has it), in train mode."""
    optimizer = _package().AdamWScheduleFree(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                             warmup_steps=0)
    optimizer.train()  # it starts in eval mode; no state yet, so this only sets the mode
    return optimizer


def is_schedulefree(optimizer: Any) -> bool:
    """Whether ``optimizer`` is one of the ``schedulefree`` package's (they have ``train()`` and ``eval()``)."""
    return type(optimizer).__module__.split(".")[0] == "schedulefree"


@contextlib.contextmanager
def evaluation_weights(optimizer: Any) -> Iterator[None]:
    """Within the block the model holds the evaluation weights (schedule-free: the average ``x``).

    On leaving, the training weights are copied back exactly (not recomputed from ``x``, which would round),
    and the optimizer is in train mode again. Any other optimizer: nothing happens.
    """
    if not is_schedulefree(optimizer):
        yield
        return
    params = [p for g in optimizer.param_groups for p in g["params"]]
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
    optimizer.eval()
    try:
        yield
    finally:
        optimizer.train()
        with torch.no_grad():
            torch._foreach_copy_(params, saved)


def eval_state_dict(model: torch.nn.Module, optimizer: Any) -> dict[str, torch.Tensor] | None:
    """The model's state dict with the evaluation weights (schedule-free only; None for other optimizers)."""
    if not is_schedulefree(optimizer):
        return None
    with evaluation_weights(optimizer):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
