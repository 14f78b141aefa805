"""The monitor: training-health signals computed on the device, read once per update.

Everything that needs tensors is computed *before* ``optimizer.step()`` from
the state the optimizer is about to use: for Adam, ``v_t = beta2 v + (1 -
beta2) g**2`` and ``m_t = beta1 m + (1 - beta1) g`` with bias correction at
``t = steps + 1``, so

* the effective rate of each element is ``lr / (sqrt(v_t / (1 - beta2**t)) + eps)``,
* the update is ``lr * m_hat / (sqrt(v_hat) + eps)`` (+ ``lr * weight_decay * p``),
* the momentum/gradient alignment is ``cos(m_{t-1}, g_t)``.

They are batched (``torch._foreach_*``) into one tensor that is read together
with the loss and the gradient norm: one host read per update. The rest
(phase, trap, spikes, restarts, staleness) is host logic in
:mod:`lrtempo.monitor._detectors`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config._typed import check_settings, setting
from ..rundir import MONITOR_COLUMNS, RunDir, append_event, append_layer_rows
from ..schedules import Schedule
from ._detectors import Event, RestartTracker, SpikeDetector, StalenessTracker, TrapDetector
from ._phases import PHASES, PhaseMap, restart_points

__all__ = ["Monitor", "MonitorSettings", "MONITOR_COLUMNS"]


_SAMPLE = 65_536  # at most this many elements of one tensor enter its statistics (a fixed stride)


_LAYER_STATS = ("median", "p90", "max", "update_ratio")  # per-layer values read from the device, in order


def _sampled(tensor: Any) -> Any:
    """The tensor flattened, then every k-th element so that at most ``_SAMPLE`` remain (a fixed stride)."""
    flat = tensor.reshape(-1)
    if flat.numel() > _SAMPLE:
        flat = flat[:: math.ceil(flat.numel() / _SAMPLE)]
    return flat


def _adam_group_step(optimizer: Any, group: dict, ps: list[Any]) -> tuple[list[Any], Any, Any]:
    """Per-element effective rates, update norms and parameter norms of one Adam group, batched.

    With ``t = steps + 1``: ``v_t = beta2 v + (1 - beta2) g**2``, ``m_t = beta1 m + (1 - beta1) g``,
    ``denom = sqrt(v_t / (1 - beta2**t)) + eps``; the effective rate is ``lr / denom`` and the update
    ``lr * m_t / (1 - beta1**t) / denom`` (+ ``lr * weight_decay * p``).
    """
    import torch

    gs = [p.grad.detach().float() for p in ps]
    states = [optimizer.state.get(p, {}) for p in ps]
    beta1, beta2 = group["betas"]
    t = float(states[0]["step"]) + 1 if "step" in states[0] else 1.0
    if "exp_avg_sq" in states[0]:
        v = torch._foreach_mul([st["exp_avg_sq"].float() for st in states], beta2)
        m = torch._foreach_mul([st["exp_avg"].float() for st in states], beta1)
    else:
        v = [torch.zeros_like(g) for g in gs]
        m = [torch.zeros_like(g) for g in gs]
    torch._foreach_addcmul_(v, gs, gs, value=1 - beta2)
    torch._foreach_add_(m, gs, alpha=1 - beta1)
    torch._foreach_div_(v, 1 - beta2**t)
    torch._foreach_sqrt_(v)
    torch._foreach_add_(v, group["eps"])          # v is now the denominator
    torch._foreach_reciprocal_(v)
    eff = torch._foreach_mul(v, group["lr"])       # lr / denom, per element
    torch._foreach_mul_(m, v)
    torch._foreach_mul_(m, group["lr"] / (1 - beta1**t))  # the Adam step
    if group.get("weight_decay", 0.0):
        torch._foreach_add_(m, [p.detach().float() for p in ps], alpha=group["lr"] * group["weight_decay"])
    u_norms = torch.stack(torch._foreach_norm(m)).float()
    p_norms = torch.stack(torch._foreach_norm([p.detach().float() for p in ps])).float()
    return eff, u_norms, p_norms


def _median_p90(flat: Any) -> tuple[Any, Any]:
    """The lower median and the nearest-rank 90th percentile (selections, not a sort).

    >>> import torch
    >>> [float(v) for v in _median_p90(torch.arange(1.0, 11.0))]
    [5.0, 9.0]
    """
    n = flat.numel()
    return flat.kthvalue((n + 1) // 2).values, flat.kthvalue(max(1, math.ceil(0.9 * n))).values


@dataclass(frozen=True, kw_only=True)
class MonitorSettings:
    """How often and how much the monitor measures, and its detectors' windows and thresholds.

    The ``monitor`` section of a run config holds any of these keys; each
    default is written here and nowhere else.

    >>> MonitorSettings(trap_window=1)
    Traceback (most recent call last):
    ...
    lrtempo.config._errors.ConfigError: monitor.trap_window: must be >= 2 (got 1)
    """

    config_title: ClassVar[str] = "the monitor settings"
    config_path: ClassVar[str] = "monitor"

    effective_every: int = setting(50, doc="updates between measurements of the effective Adam rate", minimum=1)
    per_layer: bool = setting(False, doc="write per-layer statistics to layers.csv")
    every_signal: bool = setting(False, doc="measure every signal at every update")
    trap_window: int = setting(200, doc="updates in the asymptotic-trap detector's window", minimum=2)
    trap_threshold: float = setting(
        1e-4, doc="loss improvement per update below which a low-rate run with falling gradients is trapped",
        exclusive_minimum=0.0)
    spike_window: int = setting(100, doc="updates in the gradient-norm and loss spike detector's window", minimum=1)
    spike_factor: float = setting(5.0, doc="a gradient norm this many times the window's median is a spike",
                                  exclusive_minimum=0.0)
    staleness_window: int = setting(
        100, doc="updates after warmup over which the momentum/gradient alignment is averaged", minimum=1)
    staleness_threshold: float = setting(
        0.5, doc="mean momentum/gradient cosine after warmup below which momentum is stale", exclusive_minimum=0.0)
    restart_window: int = setting(
        20, doc="updates before each warm restart whose mean loss is compared with the previous restart's",
        minimum=1)

    #: every setting's name, in order
    KEYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        check_settings(self)

    def to_mapping(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}


MonitorSettings.KEYS = tuple(f.name for f in fields(MonitorSettings))


class Monitor:
    """Training-health signals for one run; see the module docstring.

    In a plain torch loop call :meth:`observe` after ``loss.backward()`` and
    before ``optimizer.step()``; :class:`~lrtempo.train.TrainState` does this
    itself when given ``monitor=``.

    Events are appended to ``events_path`` and per-layer rows to ``layers_path`` (at
    :meth:`flush_layers`); ``run_dir`` (a :class:`~lrtempo.rundir.RunDir` or its path) gives both its own
    ``events.jsonl`` and ``layers.csv``. With neither, the events are only kept in :attr:`events`.
    """

    def __init__(self, schedule: Schedule, settings: MonitorSettings | None = None, *,
                 total_steps: int | None = None, run_dir: RunDir | str | Path | None = None,
                 events_path: str | Path | None = None, layers_path: str | Path | None = None,
                 console: Callable[[str], None] | None = None, collect_layers: bool | None = None):
        self.schedule = schedule
        self.settings = s = settings or MonitorSettings()
        self.total_steps = total_steps
        horizon = max(total_steps or 0, schedule.horizon)
        self._phase_map = PhaseMap(schedule, horizon)
        self.peak_lr = self._phase_map.peak
        phases = schedule.phases(horizon)
        warmup_end = next((p.stop for p in phases if p.kind == "warmup" and p.stop), None)
        restarts = restart_points(phases)
        self.trap = TrapDetector(s.trap_window, s.trap_threshold)
        self.spikes = SpikeDetector(s.spike_window, s.spike_factor)
        self.restarts = RestartTracker(restarts, s.restart_window)
        self.staleness = StalenessTracker(warmup_end, s.staleness_window, s.staleness_threshold)
        self.events: list[Event] = []
        run = None if run_dir is None else run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.events_path = Path(events_path) if events_path else run.events if run else None
        self.layers_path = Path(layers_path) if layers_path else run.layers if run else None
        # what is measured must not depend on the rank (DDP averages one vector of the same length on every
        # rank): per-layer rows are collected when asked, whether or not this rank writes them
        self.collect_layers = (self.layers_path is not None) if collect_layers is None else collect_layers
        self.console = console
        self._phase_block: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.int8))
        self._names: dict[int, str] = {}
        self._layer_rows: list[str] = []

    columns = MONITOR_COLUMNS

    # -- what to measure at a step --------------------------------------------------
    def _effective_due(self, step: int) -> bool:
        return self.settings.every_signal or step % self.settings.effective_every == 0

    def _alignment_due(self, step: int) -> bool:
        return self.settings.every_signal or self.staleness.wants(step)

    def phase(self, step: int) -> str:
        start, block = self._phase_block
        if not start <= step < start + block.size:
            start = step
            block = self._phase_map.labels(np.arange(step, step + 4096, dtype=np.int64))
            self._phase_block = (start, block)
        return PHASES[int(block[step - start])]

    def name_parameters(self, model: Any) -> None:
        """Remember parameter names (for per-layer rows); ``TrainState`` calls this."""
        module = model.module if hasattr(model, "module") else model
        self._names = {id(p): n for n, p in module.named_parameters()}

    # -- device side -----------------------------------------------------------------
    def device_stats(self, step: int, optimizer: Any) -> tuple[list[str], Any]:
        """Scalar tensors to read with the loss (names, 1-d tensor), computed before ``optimizer.step()``."""
        import torch

        names: list[str] = []
        parts: list[Any] = []
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if not grads:
            return names, None
        # schedule-free AdamW has betas but keeps no first moment: the effective Adam rate is not its to measure
        adam = "betas" in optimizer.param_groups[0] and type(optimizer).__module__.split(".")[0] != "schedulefree"
        if self._effective_due(step) and adam:
            self._effective_stats(optimizer, names, parts)
        if self._alignment_due(step):
            self._alignment_stats(optimizer, params, grads, "exp_avg" if adam else "momentum_buffer", names, parts)
        if self.settings.per_layer:
            parts.append(torch.stack(torch._foreach_norm([g.float() for g in grads])))
            names += [f"layer_grad_norm:{i}" for i in range(len(grads))]
            self._layer_params = params
        if not parts:
            return names, None
        return names, torch.cat([p.reshape(-1).float() for p in parts])

    def _effective_stats(self, optimizer: Any, names: list[str], parts: list[Any]) -> None:
        """Append the effective-rate median, p90, max and the update ratio (and per-layer rows when wanted).

        The update ratio is ``sqrt(sum |update|^2 / sum |param|^2)`` over every tensor with a gradient.
        """
        import torch

        layers_wanted = self.settings.per_layer or self.collect_layers
        eff_all, upd_sq, par_sq, layer_stats, layer_params = [], [], [], [], []
        for group in optimizer.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            eff, u_norms, p_norms = _adam_group_step(optimizer, group, ps)
            upd_sq.append(u_norms.pow(2).sum())
            par_sq.append(p_norms.pow(2).sum())
            group_stats = []
            for e in eff:
                flat = _sampled(e)
                eff_all.append(flat)
                if layers_wanted:
                    med, p90 = _median_p90(flat)
                    group_stats.append(torch.stack([med, p90, flat.max()]))
            if layers_wanted:
                ratios = u_norms / p_norms.clamp_min(1e-30)
                layer_stats += [torch.cat([ls, r.reshape(1)]) for ls, r in zip(group_stats, ratios)]
                layer_params += ps
        if layers_wanted:
            self._layer_params = layer_params
        every = torch.cat(eff_all)
        med, p90 = _median_p90(every)
        ratio = (torch.stack(upd_sq).sum() / torch.stack(par_sq).sum().clamp_min(1e-30)).sqrt()
        parts.append(torch.stack([med, p90, every.max(), ratio]))
        names += ["effective_lr_median", "effective_lr_p90", "effective_lr_max", "update_ratio"]
        if layers_wanted:
            parts.append(torch.stack(layer_stats).reshape(-1))
            names += [f"layer:{i}:{k}" for i in range(len(layer_stats)) for k in _LAYER_STATS]

    @staticmethod
    def _alignment_stats(optimizer: Any, params: list[Any], grads: list[Any], key: str,
                         names: list[str], parts: list[Any]) -> None:
        """Append ``cos(m, g)`` over all tensors when every one has its momentum buffer ``key``.

        ``m . g = (|m + g|^2 - |m|^2 - |g|^2) / 2``: three batched norms instead of a kernel per tensor.
        """
        import torch

        moms = [optimizer.state.get(p, {}).get(key) for p in params]
        if not all(m is not None for m in moms):
            return

        def total_sq(ts):
            return torch.stack(torch._foreach_norm(ts)).float().pow(2).sum()

        m2, g2 = total_sq(moms), total_sq(grads)
        dot = (total_sq(torch._foreach_add(moms, grads)) - m2 - g2) / 2
        parts.append((dot / (m2 * g2).sqrt().clamp_min(1e-30)).clamp(-1.0, 1.0).reshape(1))
        names.append("momentum_alignment")

    # -- host side ----------------------------------------------------------------
    def record(self, step: int, lr: float, loss: float, grad_l2_norm: float,
               values: dict[str, float] | None = None) -> dict[str, Any]:
        """Feed one applied update to the detectors; returns the monitor's log columns for it."""
        values = values or {}
        end = self.schedule.end_step
        remaining = None
        if self.total_steps is not None:
            remaining = max(0, self.total_steps - step - 1)
        elif end is not None:
            remaining = max(0, end - step)
        new: list[Event] = []
        trap_event = self.trap.update(step, lr, loss, grad_l2_norm, self.peak_lr, remaining)
        if trap_event:
            new.append(trap_event)
        new += self.spikes.update(step, loss, grad_l2_norm)
        restart = self.restarts.update(step, loss)
        if restart:
            new.append(restart)
        stale = self.staleness.update(step, values.get("momentum_alignment"))
        if stale:
            new.append(stale)
        for event in new:
            self._emit(event)
        if any(k.startswith("layer") for k in values):
            self._layer_rows += self._layer_lines(step, lr, values)
        eff = values.get("effective_lr_median")
        return {
            "phase": self.phase(step),
            "trap_status": self.trap.status,
            "effective_lr_median": eff,
            "effective_lr_p90": values.get("effective_lr_p90"),
            "effective_lr_max": values.get("effective_lr_max"),
            "effective_lr_ratio": (eff / lr) if eff is not None and lr > 0 else None,
            "update_ratio": values.get("update_ratio"),
            "momentum_alignment": values.get("momentum_alignment"),
        }

    def observe(self, step: int, loss: Any, model: Any, optimizer: Any) -> dict[str, Any]:
        """For a plain torch loop: call after ``backward()``, before ``optimizer.step()``."""
        import torch

        if not self._names:
            self.name_parameters(model)
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float()) if grads \
            else torch.zeros(())
        names, extra = self.device_stats(step, optimizer)
        head = torch.stack([torch.as_tensor(loss).detach().float().reshape(()), norm.float()])
        flat = torch.cat([head, extra]) if extra is not None else head
        values = flat.tolist()  # the one host read
        lr = optimizer.param_groups[0]["lr"]
        out = self.record(step, lr, values[0], values[1], dict(zip(names, values[2:])))
        out.update(loss=values[0], grad_l2_norm=values[1], lr=lr)
        return out

    def skipped(self, step: int, loss: float, grad_l2_norm: float) -> None:
        self._emit(Event(step, "SKIPPED_UPDATE", f"update at step {step} skipped: non-finite loss or gradient",
                         {"loss": loss if math.isfinite(loss) else str(loss),
                          "grad_l2_norm": grad_l2_norm if math.isfinite(grad_l2_norm) else str(grad_l2_norm)}))

    # -- output -----------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self.events.append(event)
        if self.events_path is not None:
            append_event(self.events_path, event.to_json())
        if self.console is not None:
            self.console(f"[{event.kind}] step {event.step}: {event.message}")

    def _layer_lines(self, step: int, lr: float, values: dict[str, float]) -> list[str]:
        lines = []
        for i, p in enumerate(getattr(self, "_layer_params", [])):
            name = self._names.get(id(p), f"param{i}")
            cells = [values.get(f"layer:{i}:{k}") for k in _LAYER_STATS]
            cells.append(values.get(f"layer_grad_norm:{i}"))
            median = cells[0]
            cells.insert(3, median / lr if median is not None and lr > 0 else None)
            lines.append(",".join([str(step), name, *("" if c is None else repr(c) for c in cells)]))
        return lines

    def flush_layers(self) -> None:
        """Append the collected per-layer rows to ``layers.csv`` (called at checkpoints)."""
        if self.layers_path is None or not self._layer_rows:
            return
        append_layer_rows(self.layers_path, self._layer_rows)
        self._layer_rows = []

    def state_dict(self) -> dict[str, Any]:
        return {"trap": self.trap.state_dict(), "spikes": self.spikes.state_dict(),
                "restarts": self.restarts.state_dict(), "staleness": self.staleness.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trap.load_state_dict(state["trap"])
        self.spikes.load_state_dict(state["spikes"])
        self.restarts.load_state_dict(state["restarts"])
        self.staleness.load_state_dict(state["staleness"])
