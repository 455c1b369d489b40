"""The statistics the rules share: how noisy one accuracy is, and how far apart two must be
to count as apart. One accuracy of p on n images has a standard error of
sqrt(p(1 - p) / n); two independent ones differ with the standard error of the
difference, the root of the sum of their squares. "Ahead by z standard errors" is
`a - b > z * difference_se(a, b, n)` in pruning, promotion and the choice of leaders."""

from __future__ import annotations

import math


def noise(acc: float, n: int) -> float:
    """Standard error, in points, of an accuracy of `acc` percent measured on `n` images."""
    p = min(max(acc / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(max(p * (1 - p), 1.0 / n) / n)  # never 0: one image either way


def difference_se(a: float, b: float, n: int) -> float:
    """Standard error, in points, of the difference of accuracies `a` and `b`, each measured
    on `n` images."""
    return math.hypot(noise(a, n), noise(b, n))
