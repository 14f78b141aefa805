"""FSDP2 for ``lrtempo train`` (``distributed: fsdp`` under torchrun): sharding, full-parameter statistics,
sharded checkpoints.

**Sharding.** :func:`shard_model` gives every rank rank 0's initial weights (one broadcast per tensor, as
DDP does), then applies ``torch.distributed.fsdp.fully_shard`` to each element holding parameters of the
model's outermost ``ModuleList`` and ``Sequential`` containers (a transformer's blocks, not also the layers
inside a block), and to the root. Every parameter becomes a DTensor sharded on dim 0 (``Shard(0)``): rank
``r`` holds rows ``[r c, (r + 1) c)`` with ``c = ceil(rows / world)`` (``torch.chunk``'s split; the last
ranks may hold fewer rows, or none).

**Statistics over the full parameters.** :class:`ShardedStats` replaces the replicated path of
:class:`~lrtempo.train.TrainState` (where DDP has already averaged the gradients). Each rank computes on
its shards what adds up over shards, and one ``all_reduce(SUM)`` per update gives the totals:

* the loss (``sum / world``: the mean over ranks, as under DDP) and the gradient norm
  ``sqrt(sum_r sum_i |g_i^r|^2)``, which is the unsharded ``|g|`` (clipping multiplies each shard by the
  same ``min(1, clip / (|g| + 1e-6))``);
* per tensor ``|g_i|^2`` (``layer_grad_norm``), ``|u_i|^2`` and ``|p_i|^2`` of the Adam update and the
  parameter (``update_ratio = sqrt(sum |u|^2 / sum |p|^2)``, per layer ``|u_i| / |p_i|``), and
  ``|m|^2, |g|^2, |m + g|^2`` (``momentum_alignment``).

The effective-rate median, p90 and max are order statistics, which do not add up: each rank takes, of its
shard, exactly the elements the unsharded monitor samples (every ``k``-th element of the flattened tensor,
``k = ceil(numel / 65536)`` above 65,536 elements: rank ``r``, whose shard starts at flat offset ``o_r``,
takes its local elements ``(-o_r) mod k, + k, ...``), and one ``all_gather`` collects them in flat order:
the same elements as one process would select, so the same statistics. Cost: the sum vector (a few floats
per parameter tensor) every update; the gather (at most 65,536 floats per tensor) at the updates that
measure the effective rate (every ``monitor.effective_every``, 50 by default).

**Checkpoints.** :func:`save_sharded` writes ``checkpoints/step-NNNNNNNN.pt`` as a folder: the model and
optimizer state with ``torch.distributed.checkpoint`` (DCP: one file per rank and ``.metadata``) and rank 0's
``state.pt`` (the step, the scheduler, every rank's RNG and data position, the monitor: what a ``.pt``
checkpoint holds besides the weights). All of it goes to a hidden temp folder that is renamed into place
once complete, so a kill mid-save leaves no checkpoint that a resume would take (the temp folder is removed
on resume). :func:`load_sharded` reads it back into the sharded model and optimizer.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_replace, fsync_dir
from ..monitor._monitor import _SAMPLE, _adam_group_step, _median_p90
from ..rundir import checkpoint_name
from ._checkpoint import CHECKPOINT_FORMAT, STATE_FILE, prune_checkpoints, remove_checkpoint

__all__ = ["shard_model", "ShardedStats", "save_sharded", "load_sharded", "shard_rows", "sample_counts"]


def _is_dtensor(t: Any) -> bool:
    return hasattr(t, "to_local") and hasattr(t, "placements")


def _local(t: Any) -> Any:
    """A DTensor's shard on this rank (a view: writing it writes the DTensor), or ``t`` itself."""
    return t.to_local() if _is_dtensor(t) else t


def shard_model(model: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    """``model`` on ``device`` with rank 0's weights, sharded over ``world`` ranks with FSDP2 (in place)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if device.type == "cuda":
        torch.cuda.set_device(device)
    model = model.to(device)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            torch.distributed.broadcast(tensor, src=0)
    mesh = init_device_mesh(device.type, (world,))
    for unit in _units(model):
        fully_shard(unit, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _units(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The FSDP units below the root: the elements holding parameters of each ``ModuleList`` or ``Sequential``
    that is not inside another unit (a transformer's blocks, not also the layers within a block)."""
    units: list[torch.nn.Module] = []
    taken: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, (torch.nn.ModuleList, torch.nn.Sequential)):
            continue
        if any(name == t or name.startswith(t + ".") for t in taken):
            continue
        for child_name, child in module.named_children():
            if any(True for _ in child.parameters()):
                units.append(child)
                taken.append(f"{name}.{child_name}" if name else child_name)
    return units


def shard_rows(rows: int, world: int) -> list[tuple[int, int]]:
    """``(first row, rows)`` of each rank's shard of a dim of ``rows`` (``torch.chunk``'s split, as FSDP2's).

    >>> shard_rows(3, 2), shard_rows(1, 2), shard_rows(5, 4)
    ([(0, 2), (2, 1)], [(0, 1), (1, 0)], [(0, 2), (2, 2), (4, 1), (5, 0)])
    """
    size = -(-rows // world) if rows else 0
    out = []
    for r in range(world):
        first = min(r * size, rows)
        out.append((first, min(size, rows - first)))
    return out


def sample_counts(numel: int, starts: list[int], counts: list[int]) -> tuple[int, list[tuple[int, int]]]:
    """The unsharded monitor's stride ``k`` over a tensor of ``numel`` elements, and for each shard (flat
    ``starts``, ``counts``) its first sampled local index and how many it samples: the shards' samples, in
    rank order, are the tensor's ``flat[::k]``.

    >>> sample_counts(10, [0, 6], [6, 4])
    (1, [(0, 6), (0, 4)])
    >>> sample_counts(200_000, [0, 100_000], [100_000, 100_000])
    (4, [(0, 25000), (0, 25000)])
    >>> sample_counts(131_074, [0, 65_538], [65_538, 65_536])
    (3, [(0, 21846), (0, 21846)])
    """
    k = math.ceil(numel / _SAMPLE) if numel > _SAMPLE else 1
    out = []
    for start, count in zip(starts, counts):
        first = (-start) % k
        out.append((first, max(0, -(-(count - first) // k))))
    return k, out


class _LocalView:
    """An optimizer seen through this rank's shards: its groups (only the parameters with a gradient) and
    state, every DTensor replaced by its local tensor, each local parameter carrying its local gradient."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.param_groups: list[dict] = []
        self.state: dict[Any, dict] = {}
        self.params: list[Any] = []  # the original parameters, in the same order
        for group in optimizer.param_groups:
            local = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                shard = _local(p)
                t = shard.view_as(shard)  # an alias of the shard (no grad mode: not a DTensor op per call)
                t.grad = _local(p.grad)
                self.state[t] = {k: _local(v) for k, v in optimizer.state.get(p, {}).items()}
                local.append(t)
                self.params.append(p)
            self.param_groups.append({**group, "params": local})

    @property
    def grads(self) -> list[Any]:
        return [t.grad for g in self.param_groups for t in g["params"]]


def _sq(tensors: list[Any]) -> Any:
    """``sum_i |t_i|^2`` over this rank's tensors (a 0-d float tensor; 0 for none)."""
    if not tensors:
        return torch.zeros(())
    return torch.stack(torch._foreach_norm([t.float() for t in tensors])).pow(2).sum()


class ShardedStats:
    """The loss, the global gradient norm and the monitor's statistics of an FSDP2 update (module docstring).

    :meth:`reduce` is called where the replicated path reduces: after the backward passes, with this update's
    rate set, before ``optimizer.step()``.
    """

    def __init__(self, monitor: Any, world: int) -> None:
        self.monitor, self.world = monitor, world

    @torch.no_grad()
    def reduce(self, step: int, optimizer: torch.optim.Optimizer, loss_sum: Any) -> tuple[list, Any, list, Any]:
        """``(local gradients, global norm, names, stats)``: ``stats`` is ``[loss, norm, *values of names]``."""
        view = _LocalView(optimizer)
        grads = view.grads
        device = loss_sum.device
        parts = [loss_sum.float().reshape(1), _sq(grads).to(device).reshape(1)]
        mon, n = self.monitor, len(grads)
        effective = alignment = per_layer = False
        samples: list[Any] = []
        if mon is not None and grads:
            # as Monitor.device_stats decides (schedule-free, which keeps no first moment, is refused with fsdp)
            adam = "betas" in optimizer.param_groups[0]
            if adam and mon._effective_due(step):
                effective = True
                u_sq, p_sq, samples = self._effective_parts(view)
                parts += [u_sq.to(device), p_sq.to(device)]
            if mon._alignment_due(step):
                key = "exp_avg" if adam else "momentum_buffer"
                moms = [view.state[t].get(key) for g in view.param_groups for t in g["params"]]
                if all(m is not None for m in moms):
                    alignment = True
                    both = torch._foreach_add([m.float() for m in moms], [g.float() for g in grads])
                    parts.append(torch.stack([_sq(moms), _sq(grads), _sq(both)]).to(device))
            if mon.settings.per_layer:
                per_layer = True
                parts.append(torch.stack(torch._foreach_norm([g.float() for g in grads])).pow(2).to(device))
        total = torch.cat(parts)
        torch.distributed.all_reduce(total)
        norm = total[1].sqrt()
        names: list[str] = []
        values = [total[0] / self.world, norm.reshape(())]
        at = 2
        if effective:
            u_sq, p_sq = total[at:at + n], total[at + n:at + 2 * n]
            at += 2 * n
            self._effective_values(u_sq, p_sq, self._gather(samples, view, device), names, values)
            mon._layer_params = view.params
        if alignment:
            m2, g2, both2 = total[at:at + 3]
            at += 3
            dot = (both2 - m2 - g2) / 2
            values.append((dot / (m2 * g2).sqrt().clamp_min(1e-30)).clamp(-1.0, 1.0))
            names.append("momentum_alignment")
        if per_layer:
            values += list(total[at:at + n].sqrt().unbind())
            names += [f"layer_grad_norm:{i}" for i in range(n)]
            mon._layer_params = view.params
        return grads, norm, names, torch.stack([v.reshape(()).float() for v in values])

    def _effective_parts(self, view: _LocalView) -> tuple[Any, Any, list[Any]]:
        """This rank's ``|u_i|^2``, ``|p_i|^2`` and its share of each tensor's sampled effective rates."""
        u_sq, p_sq, samples = [], [], []
        for group, p_group in zip(view.param_groups, self._groups_of(view)):
            if not group["params"]:
                continue
            eff, u_norms, p_norms = _adam_group_step(view, group, group["params"])
            u_sq.append(u_norms.pow(2))
            p_sq.append(p_norms.pow(2))
            for e, p in zip(eff, p_group):
                first, count = self._my_sample(p)
                samples.append(e.reshape(-1)[first::self._stride(p)][:count])
        return torch.cat(u_sq), torch.cat(p_sq), samples

    @staticmethod
    def _groups_of(view: _LocalView) -> list[list[Any]]:
        out, i = [], 0
        for group in view.param_groups:
            out.append(view.params[i:i + len(group["params"])])
            i += len(group["params"])
        return out

    def _layout(self, p: Any) -> tuple[int, list[tuple[int, int]]]:
        """The stride and each rank's ``(first, count)`` of the samples of parameter ``p``."""
        shape = tuple(p.shape)
        row = math.prod(shape[1:]) if len(shape) > 1 else 1
        rows = shard_rows(shape[0] if shape else 1, self.world)
        return sample_counts(math.prod(shape), [f * row for f, _ in rows], [c * row for _, c in rows])

    def _stride(self, p: Any) -> int:
        return self._layout(p)[0]

    def _my_sample(self, p: Any) -> tuple[int, int]:
        local = _local(p)
        rank = torch.distributed.get_rank()
        rows = shard_rows(p.shape[0] if p.ndim else 1, self.world)[rank][1]
        if _is_dtensor(p) and tuple(local.shape[:1]) != (rows,) and p.ndim:
            raise RuntimeError(f"FSDP2 sharded a parameter of shape {tuple(p.shape)} into {tuple(local.shape)} on "
                               f"rank {rank}, not torch.chunk's {rows} rows: lrtempo cannot sample it as one process")
        return self._layout(p)[1][rank]

    def _gather(self, samples: list[Any], view: _LocalView, device: torch.device) -> list[Any]:
        """Every tensor's samples from every rank, in flat order (one all_gather, padded to the longest)."""
        layouts = [self._layout(p)[1] for p in view.params]
        lengths = [sum(lay[r][1] for lay in layouts) for r in range(self.world)]
        longest = max(lengths)
        mine = torch.cat([s.float() for s in samples]).to(device)
        padded = torch.zeros(longest, device=device)
        padded[:mine.numel()] = mine
        out = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(out, padded)
        per_rank = [list(out[r][:lengths[r]].split([lay[r][1] for lay in layouts])) for r in range(self.world)]
        return [torch.cat([per_rank[r][i] for r in range(self.world)]) for i in range(len(layouts))]

    def _effective_values(self, u_sq: Any, p_sq: Any, full: list[Any], names: list[str], values: list) -> None:
        """The effective-rate statistics and update ratios, as ``Monitor._effective_stats`` orders them."""
        every = torch.cat(full)
        med, p90 = _median_p90(every)
        values += [med, p90, every.max(), (u_sq.sum() / p_sq.sum().clamp_min(1e-30)).sqrt()]
        names += ["effective_lr_median", "effective_lr_p90", "effective_lr_max", "update_ratio"]
        ratios = u_sq.sqrt() / p_sq.sqrt().clamp_min(1e-30)
        for i, (flat, ratio) in enumerate(zip(full, ratios)):
            med, p90 = _median_p90(flat)
            values += [med, p90, flat.max(), ratio]
            names += [f"layer:{i}:{k}" for k in ("median", "p90", "max", "update_ratio")]


# -- checkpoints -------------------------------------------------------------------------------------------------

def _publish(temp: Path, final: Path) -> None:
    """Rename the complete folder ``temp`` to ``final`` (an older checkpoint of that step goes)."""
    fsync_dir(temp)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        os.replace(final, old)
    os.replace(temp, final)
    fsync_dir(final.parent)
    if old is not None:
        remove_checkpoint(old)


def save_sharded(folder: str | Path, step: int, payload: dict[str, Any] | None, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, dist: Any, *, keep: int | None,
                 protect: Collection[int] = ()) -> Path:
    """Every rank: write the checkpoint folder of ``step`` (rank 0 gives ``payload``), then apply retention.

    RuntimeError on every rank when any part failed; the temp folder is removed and earlier checkpoints stand.
    """
    from torch.distributed import checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    folder = Path(folder)
    final = folder / checkpoint_name(step)
    temp = None
    if dist.main:
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{final.name}.{secrets.token_hex(4)}.tmp"
        temp.mkdir()
    temp = Path(dist.broadcast(str(temp)))
    error = None
    try:
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=temp)
    except BaseException as exc:  # DCP raises its CheckpointException (not an Exception) on every rank
        if isinstance(exc, KeyboardInterrupt):
            raise
        error = f"{type(exc).__name__}: {exc}"
    if dist.main:
        try:
            if error is None:
                with atomic_replace(temp / STATE_FILE, binary=True) as fh:
                    torch.save({"format": CHECKPOINT_FORMAT, "step": step, **payload}, fh)
                _publish(temp, final)
                prune_checkpoints(folder, keep, protect)
        except (OSError, RuntimeError) as exc:
            error = str(exc)
        if error is not None:
            shutil.rmtree(temp, ignore_errors=True)
    error = dist.broadcast(error)
    if error is not None:
        raise RuntimeError(error)
    return final


def load_sharded(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every rank: load a checkpoint folder's model and optimizer state into the sharded model and optimizer."""
    from torch.distributed import checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)  # the optimizer's state made (a step at lr 0)
    state = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=Path(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
