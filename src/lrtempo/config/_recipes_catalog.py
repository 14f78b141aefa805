"""Named, cited schedules as published runs used them: the catalogue behind ``lrtempo recipe``.

Each :class:`Recipe` is a native spec (plain data, built with
:func:`lrtempo.config.build_schedule`), a one-line source, the run length it
assumes and a note that shows how each figure was obtained (token counts
converted to steps with the paper's batch size) and what is uncertain. The
stated figures (``peak_lr``, ``warmup_steps``, ``final_lr``) are repeated as
fields so the tests can hold the spec to them: ``schedule(warmup_steps) ==
peak_lr`` and ``schedule(total_steps) == final_lr``.

>>> from lrtempo.config import build_schedule
>>> r = RECIPES["llama2-7b"]
>>> s = build_schedule(r.spec)
>>> s.end_step == r.total_steps, s(r.warmup_steps) == r.peak_lr
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Recipe", "RECIPES"]


@dataclass(frozen=True)
class Recipe:
    """One named schedule: its native ``spec``, where it comes from, and the figures it states."""

    name: str
    spec: dict[str, Any]
    source: str
    total_steps: int
    peak_lr: float
    warmup_steps: int
    final_lr: float
    note: str


def _warmup_cosine(peak: float, total: int, warmup: int, floor: float, **extra: Any) -> dict[str, Any]:
    return {"type": "warmup_cosine", "peak_lr": peak, "total_steps": total, "warmup_steps": warmup,
            "min_lr": floor, **extra}


def _linear_warmup_decay(peak: float, total: int, warmup: int, shape: str = "linear") -> dict[str, Any]:
    """Linear warmup to ``peak``, then straight down to 0 over the rest: a ``wsd`` with no stable phase."""
    return {"type": "wsd", "peak_lr": peak, "total_steps": total, "warmup_steps": warmup,
            "decay_steps": total - warmup, "min_lr": 0.0, "decay_shape": shape}


_IMAGENET_TRAIN = 1_281_167  # ImageNet-1k (ILSVRC-2012) training images

_CATALOG = (
    Recipe(
        "llama2-7b", _warmup_cosine(3e-4, 500_000, 2000, 3e-5),
        "Touvron et al. 2023, Llama 2 (arXiv:2307.09288), section 2.2", 500_000, 3e-4, 2000, 3e-5,
        "7B model (13B also used 3e-4; 34B and 70B used 1.5e-4). AdamW, 2000 warmup steps, cosine decay to 10% "
        "of the peak. The paper gives the run in tokens: 2.0T tokens at a 4M-token global batch, so "
        "2.0e12 / 4.0e6 = 500,000 steps. If '4M' means 1024 sequences x 4096 tokens = 4,194,304, the run is "
        "about 476,837 steps instead; the paper does not give the step count, so treat 500,000 as approximate."),
    Recipe(
        "llama3-405b", _warmup_cosine(8e-5, 1_200_000, 8000, 8e-7),
        "Llama Team 2024, The Llama 3 Herd of Models (arXiv:2407.21783), section 3.4.1", 1_200_000, 8e-5, 8000,
        8e-7,
        "405B model: peak 8e-5, linear warmup of 8,000 steps, cosine decay to 8e-7 over 1,200,000 steps (the "
        "paper states steps, so no token conversion; its batch grows from 4M to 8M to 16M tokens along the way). "
        "Not sure whether the 1,200,000 steps include the warmup: taken here as the whole run. The final "
        "annealing of the rate to 0 over the last 40M tokens, done with the long-context data, is not included."),
    Recipe(
        "gpt3-125m",
        {"type": "join", "pieces": [
            {"schedule": _warmup_cosine(6e-4, 520_000, 750, 6e-5), "steps": 520_000},
            # a flat ramp, not a constant: a constant ends at once, and the run goes on for 80,000 steps
            {"schedule": {"type": "linear", "start_lr": 6e-5, "end_lr": 6e-5, "steps": 80_000}, "steps": 80_000}]},
        "Brown et al. 2020, Language Models are Few-Shot Learners (arXiv:2005.14165), table 2.1 and appendix B",
        600_000, 6e-4, 750, 6e-5,
        "GPT-3 Small (125M): peak 6.0e-4, 0.5M-token batch. The paper states durations in tokens: linear warmup "
        "over 375M tokens = 375e6 / 0.5e6 = 750 steps; cosine down to 10% of the peak (6e-5) by 260B tokens = "
        "260e9 / 0.5e6 = 520,000 steps; then 10% of the peak until the end at 300B tokens = 300e9 / 0.5e6 = "
        "600,000 steps. Approximate in steps: the paper also ramps the batch size up over the first few "
        "billion tokens, so the real run took somewhat more, smaller steps early on."),
    Recipe(
        "chinchilla-70b", _warmup_cosine(1e-4, 700_000, 1500, 1e-5, warmup_start_lr=1e-7),
        "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556), table 4",
        700_000, 1e-4, 1500, 1e-5,
        "Chinchilla (70B, 1.4T tokens): peak 1e-4, cosine decay by 10x (to 1e-5) over the whole run. The batch "
        "is 1.5M tokens, doubled to 3M during training; when is not stated that we could find. "
        "Assuming the doubling half way in tokens: 0.7e12 / 1.5e6 + 0.7e12 / 3e6 = 466,667 + 233,333 = 700,000 "
        "steps (933,333 at 1.5M throughout, 466,667 at 3M throughout). The cosine here "
        "runs over steps; the paper's runs over tokens, which differs after the doubling. Warmup (1,500 steps "
        "from 1e-7) is Gopher's (Rae et al. 2021, arXiv:2112.11446), whose setup Chinchilla follows; the "
        "Chinchilla paper itself does not state it, so the warmup is uncertain."),
    Recipe(
        "bert-pretraining", _linear_warmup_decay(1e-4, 1_000_000, 10_000),
        "Devlin et al. 2018, BERT (arXiv:1810.04805), appendix A.2", 1_000_000, 1e-4, 10_000, 0.0,
        "Adam at 1e-4, linear warmup over the first 10,000 steps, linear decay to 0; 1,000,000 steps of 256 "
        "sequences (the paper states steps; 256 x 512 = 131,072 tokens per batch, about 40 epochs over 3.3B "
        "words; 90% of the steps use 128-token sequences). The original TensorFlow code decays from step 0 "
        "rather than from the end of warmup, so its rate after warmup is 1e-4 x (1 - k / 1,000,000): 1% of the "
        "peak (1e-6) lower at step 10,000, the gap closing linearly to 0 at the end. This recipe is the form "
        "most ports use (decay over the steps after warmup)."),
    Recipe(
        "roberta-finetune-rte", _linear_warmup_decay(2e-5, 2036, 122),
        "fairseq examples/roberta/README.glue.md (RTE), after Liu et al. 2019, RoBERTa (arXiv:1907.11692), "
        "GLUE fine-tuning table", 2036, 2e-5, 122, 0.0,
        "GLUE fine-tuning as RoBERTa describes it: linear warmup over 6% of the updates, then linear decay to 0 "
        "(fairseq's polynomial_decay). fairseq's RTE settings for RoBERTa-large: 10 epochs at batch 16 = 2,036 "
        "updates, warmup 0.06 x 2036 = 122.16 -> 122 updates, peak 2e-5 (the paper searches 1e-5, 2e-5, 3e-5). "
        "Other tasks differ only in length and peak (MNLI: 123,873 updates, warmup 7,432, 1e-5): use "
        "--total-steps to rescale. fairseq's warmup starts at peak / 122 on the first update rather than 0."),
    Recipe(
        "resnet50-imagenet", {"type": "multistep", "base_lr": 0.1, "milestones": [150_150, 300_300, 450_450],
                              "gamma": 0.1},
        "He et al. 2016, Deep Residual Learning (arXiv:1512.03385); torchvision references/classification/train.py "
        "defaults (--lr 0.1 --epochs 90 --lr-step-size 30 --lr-gamma 0.1)", 450_450, 0.1, 0, 0.1 * 0.1**3,
        "SGD at 0.1 (batch 256), divided by 10 at epochs 30, 60 and 90 of a 90-epoch run. Steps per epoch: "
        "1,281,167 ImageNet training images / 256 = 5004.56 -> 5,005 (the last batch is partial), so the drops "
        "are at 30 x 5005 = 150,150, 300,300 and 450,450 steps. The drop at epoch 90 coincides with the end: no "
        "update uses it (the last rate used is 1e-3). He et al. themselves divided by 10 'when the error "
        "plateaus' over 600,000 iterations; the fixed 30-epoch steps are the torchvision reference recipe."),
    Recipe(
        "vit-b16-imagenet", _warmup_cosine(3e-3, 93_835, 10_000, 0.0),
        "Dosovitskiy et al. 2020, An Image is Worth 16x16 Words (arXiv:2010.11929), table 3 and appendix B.1",
        93_835, 3e-3, 10_000, 0.0,
        "ViT-B/16 trained from scratch on ImageNet-1k: Adam, base rate 3e-3, batch 4096, 300 epochs, 10k warmup "
        "steps, cosine decay. Steps: 300 x 1,281,167 / 4096 = 93,835.47 -> 93,835. The decay is assumed to reach "
        "0 (no floor is stated that we could find)."),
    Recipe(
        "one-cycle", {"type": "one_cycle", "max_lr": 3.0, "total_steps": 10_000, "pct_start": 0.45,
                      "anneal": "linear", "div_factor": 30.0, "final_div_factor": 1000.0, "three_phase": True},
        "Smith & Topin 2017, Super-Convergence (arXiv:1708.07120)", 10_000, 3.0, 4500, 1e-4,
        "1cycle as in super-convergence (ResNet-56 on CIFAR-10, batch 512): linear from 0.1 up to 3.0, "
        "linear back down to 0.1, then a short final phase to a rate far below 0.1. Figures used: "
        "10,000 iterations (about 102 epochs of 50,000 images / 512), 45% up, 45% down (4,500 steps each), "
        "the last 10% down to 1e-4. The range 0.1-3 is the paper's; the batch 512, the 10,000 iterations, the "
        "45/45/10 split and the final 1e-4 are our reading and not sure (the paper says only that the last "
        "phase goes several orders of magnitude lower)."),
    Recipe(
        "wsd-1-sqrt", _linear_warmup_decay(1e-3, 50_000, 1000) | {"decay_steps": 10_000, "decay_shape": "1-sqrt"},
        "Hägele et al. 2024, Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations "
        "(arXiv:2405.18392)", 50_000, 1e-3, 1000, 0.0,
        "Warmup-stable-decay: constant rate after warmup, then a cooldown over the last 20% of the run with the "
        "(1-sqrt) shape, to 0, which the paper finds matches a cosine. The 20% cooldown and the 1-sqrt shape "
        "are the paper's; the peak 1e-3, the 1,000 warmup steps and the 50,000-step length are an illustrative "
        "small-model setting, not a run from the paper: rescale with --total-steps and set the peak for your "
        "model."),
)

#: every recipe by name, in catalogue order
RECIPES: dict[str, Recipe] = {r.name: r for r in _CATALOG}
