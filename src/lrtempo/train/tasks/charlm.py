"""``charlm``: a small GPT-style character (byte) language model on the Python stdlib's source.

The text is the running interpreter's own standard-library ``.py`` files,
sorted by path and concatenated up to ``max_bytes``, so every machine has it
and nothing is downloaded. Bytes are the vocabulary (256 symbols). The last
``val_fraction`` of the text is the validation set; validation loss is the mean
over ``val_batches`` fixed, evenly spaced windows.
"""

from __future__ import annotations

import functools
import math
import sysconfig
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ._base import DataFacts, Task, check_options

DEFAULTS = {
    "d_model": 96,
    "n_layer": 3,
    "n_head": 4,
    "context": 64,
    "batch_size": 32,
    "max_bytes": 2_000_000,
    "val_fraction": 0.1,
    "val_batches": 8,
}


@functools.lru_cache(maxsize=4)
def stdlib_text(max_bytes: int) -> bytes:
    """The stdlib's ``.py`` sources, sorted by relative path, joined, cut at ``max_bytes``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if "site-packages" not in p.parts and "dist-packages" not in p.parts)
    chunks, size = [], 0
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        chunks.append(data)
        size += len(data) + 1
        if size >= max_bytes:
            break
    text = b"\n".join(chunks)[:max_bytes]
    if len(text) < 10_000:
        raise RuntimeError(f"found only {len(text)} bytes of Python source under {root}; charlm needs the stdlib")
    return text


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    """Token and position embeddings, ``n_layer`` pre-norm transformer blocks, a tied output head."""

    def __init__(self, d_model: int, n_layer: int, n_head: int, context: int, vocab: int = 256):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"task_options.d_model ({d_model}) must be a multiple of n_head ({n_head})")
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln = nn.LayerNorm(d_model)
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T


class CharLMTask(Task):
    """Next-byte prediction with cross-entropy; batches are random windows of the training text."""

    name = "charlm"

    def __init__(self, options: dict, seed: int, rank: int = 0, world_size: int = 1):
        self.opts = o = _options(options)
        data = torch.frombuffer(bytearray(stdlib_text(o["max_bytes"])), dtype=torch.uint8).long()
        cut = _train_bytes(len(data), o["val_fraction"])
        self.train, self.val = data[:cut], data[cut:]
        ctx = o["context"]
        if len(self.val) < ctx + 2:
            raise ValueError("task_options: the validation split is shorter than one context window")
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + rank)
        self.tokens_per_micro_batch = o["batch_size"] * ctx
        self.samples_per_micro_batch = o["batch_size"]
        torch.manual_seed(seed)
        super().__init__(CharGPT(o["d_model"], o["n_layer"], o["n_head"], ctx))
        starts = torch.linspace(0, len(self.val) - ctx - 2, o["val_batches"] * o["batch_size"]).long()
        self._val_starts = starts.view(o["val_batches"], o["batch_size"])

    @classmethod
    def data_facts(cls, options: dict) -> DataFacts:
        """An example is a window of ``context`` next-byte predictions: the training text holds
        ``(train_bytes - 1) // context`` disjoint ones (an epoch; windows are drawn at random, so a
        nominal one); a micro-batch takes ``batch_size`` of them."""
        o = _options(options)
        train = _train_bytes(len(stdlib_text(o["max_bytes"])), o["val_fraction"])
        return DataFacts(examples=(train - 1) // o["context"], batch_size=o["batch_size"],
                         tokens_per_sample=o["context"],
                         source={"examples": f"task charlm: ({train:,} training bytes - 1) // context",
                                 "batch_size": "task_options.batch_size", "tokens_per_sample": "task_options.context"})

    def _windows(self, source: torch.Tensor, starts: torch.Tensor):
        ctx = self.opts["context"]
        offsets = starts[:, None] + torch.arange(ctx + 1)
        chunk = source[offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def micro_batches(self, n: int):
        ctx, b = self.opts["context"], self.opts["batch_size"]
        out = []
        for _ in range(n):
            starts = torch.randint(0, len(self.train) - ctx - 1, (b,), generator=self.generator)
            out.append(self._windows(self.train, starts))
        return out

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model):
        was_training = model.training
        model.eval()
        total = 0.0
        for starts in self._val_starts:
            total += float(self.loss(model, self._windows(self.val, starts)))
        model.train(was_training)
        return total / len(self._val_starts)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


def _options(options: dict) -> dict:
    """The task's options over its defaults, checked (ValueError naming the option)."""
    o = check_options("charlm", options, DEFAULTS)
    if not 0 < o["val_fraction"] < 1:
        raise ValueError(f"task_options.val_fraction: must be in (0, 1) (got {o['val_fraction']!r})")
    return o


def _train_bytes(text_bytes: int, val_fraction: float) -> int:
    """The bytes of the training split: the text before its last ``val_fraction``."""
    return int(text_bytes * (1 - val_fraction))


def uniform_loss() -> float:
    """The loss of a model that knows nothing: ln(256)."""
    return math.log(256)
