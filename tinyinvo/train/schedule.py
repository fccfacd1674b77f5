"""The learning-rate schedule: a linear warm-up, then a cosine decay, one value per optimizer step.

With base rate lr0, final rate lr_min, W warm-up steps and T steps in total, step s (0, 1, ..., T-1)
uses

    lr(s) = lr0 * (s + 1) / W                                          for s < W
    lr(s) = lr_min + (lr0 - lr_min) * (1 + cos(pi * (s - W) / (T - W))) / 2    for s >= W

so the warm-up climbs from lr0 / W to lr0 at its last step, the cosine starts at lr0 and would
reach lr_min at s = T (the last step used, T - 1, is just above it). Warm-up matters with a large
lr0 and BatchNorm: the first steps from a random start are the least stable.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    """lr(step) as above. Call it: ``schedule = WarmupCosine(0.1, total_steps=1000, warmup_steps=50)``,
    ``schedule(0) == 0.002``, ``schedule(49) == 0.1``, ``schedule(1000) == 0.0``."""

    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    min_lr: float = 0.0

    def __post_init__(self):
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"need 0 <= warmup_steps <= total_steps, got warmup_steps="
                             f"{self.warmup_steps}, total_steps={self.total_steps}")

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        progress = min(progress, 1.0)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
