"""The four hand-designed rounds of the S5 drill-down, as points of the search space.

Architectures and recipes were read from the four notebooks (Final_S5_Round_0..3); the
logs are the per-epoch figures of the original write-up, epoch 1 first. Test accuracy
there was measured on the 10,000 MNIST test images after every epoch, training on all
60,000 training images.
"""

from __future__ import annotations

from dataclasses import dataclass

from spaces import Arch, Candidate


@dataclass(frozen=True)
class Baseline:
    name: str
    candidate: Candidate
    params: int  # parameter count the source reports (torchsummary's count)
    reported_test_acc: tuple[float | None, ...]  # percent, per epoch, epoch 1 first; None: not reported
    source: str = "the original write-up (seed-S5-drill-down.md), one run each"

    @property
    def reported_final(self) -> float:
        return self.reported_test_acc[-1]

    @property
    def reported_best(self) -> tuple[float, int]:
        """Best reported test accuracy over the epochs and its epoch (this selects on the test set)."""
        best = max(a for a in self.reported_test_acc if a is not None)
        return best, self.reported_test_acc.index(best) + 1


ROUNDS: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline(
            name="round0",
            candidate=Candidate(Arch(16, 32, 10, 16, 16, 16, 16, dropout=0.10), lr=0.05),
            params=13_808,
            reported_test_acc=(97.99, 99.10, 99.14, 99.07, 99.16, 98.96, 99.23, 99.23,
                               99.36, 99.37, 99.36, 99.36, 99.39, 99.39, 99.41),
        ),
        Baseline(
            name="round1",
            candidate=Candidate(Arch(12, 18, 8, 12, 12, 14, 14, dropout=0.05), lr=0.08),
            params=7_936,
            reported_test_acc=(98.09, 98.86, 98.75, 99.02, 99.08, 98.97, 99.28, 99.07,
                               99.31, 99.38, 99.39, 99.42, 99.44, 99.46, 99.45),
        ),
        Baseline(
            name="round2",
            candidate=Candidate(Arch(12, 18, 8, 12, None, 14, 14, dropout=0.05), lr=0.08),
            params=6_616,
            reported_test_acc=(98.20, 98.82, 98.68, 98.89, 98.99, 99.01, 99.17, 99.03,
                               99.11, 99.23, 99.28, 99.30, 99.29, 99.34, 99.34),
        ),
        Baseline(
            name="round3",
            candidate=Candidate(Arch(8, 16, 8, 12, None, 14, 14, dropout=0.01), lr=0.10),
            params=5_760,
            reported_test_acc=(98.59, 98.85, 98.83, 99.14, 99.09, 99.06, 99.09, 99.21,
                               99.36, 99.40, 99.38, 99.39, 99.38, 99.44, 99.41),
        ),
    )
}
