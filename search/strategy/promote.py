"""Promotion from the cheap rung to the full protocol, in the spirit of (asynchronous)
successive halving.

Under the `promote` strategy every candidate first trains a complete short schedule (the
rung: `rung_epochs` epochs with the whole learning-rate schedule compressed into them,
`Candidate.over`); `Promotion.decide` then says whether it goes on to the full protocol.
It does so at once, from the rung results stored so far, as ASHA does (Li et al. 2020):
no worker waits for a rung to fill, and nothing is ever promoted twice, because the
decision belongs to the trial that trained the rung (a retry of a trial that lost its
worker inherits its decision, see `search.execution.liveness.requeue`).

The rule: a candidate is promoted unless at least ceil(n / eta) of the n rung results
(its own included) are ahead of it by more than `z` standard errors of the difference,
one accuracy on `val_size` images having a standard error of sqrt(p(1 - p) / n_images)
(`search.strategy.stats`). So the best 1/eta move on, and a difference within noise of the
best is never what keeps a candidate back. Whom it is compared with depends on the goal
(`peers_for`): with a parameter goal, every rung result within it (the best under the
goal is wanted, whatever its size); otherwise only networks with no more parameters
(non-dominated sorting: a small network is never held back by larger ones, so the small
end of the front is always trained in full).

Why these rungs: `benchmarks/fidelity.py` measured, on the unpruned sample, how each cheap
fidelity ranks candidates against their full runs (the table is in studies/method.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import VAL_SIZE, Goal
from .stats import difference_se


@dataclass(frozen=True)
class RungResult:
    """A candidate's figure at the cheap rung: its final-epoch validation accuracy."""

    params: int
    score: float  # percent


@dataclass(frozen=True)
class Promotion:
    eta: int = 3  # the best 1/eta of a rung move on
    z: float = 1.0  # standard errors of the difference that count as "ahead"
    val_size: int = VAL_SIZE

    def ahead(self, peer: RungResult, me: RungResult) -> bool:
        return peer.score - me.score > self.z * difference_se(peer.score, me.score, self.val_size)

    def decide(self, me: RungResult, peers: Sequence[RungResult]) -> str | None:
        """None to promote `me`; otherwise why not, in words."""
        quota = math.ceil((len(peers) + 1) / self.eta)
        ahead = sum(self.ahead(p, me) for p in peers)
        if ahead < quota:
            return None
        return (f"rung score {me.score:.2f}%: {ahead} of {len(peers)} comparable rung results are ahead by more "
                f"than {self.z:g} SE (the best 1/{self.eta} move on: fewer than {quota} ahead)")

    def __repr__(self) -> str:
        return f"Promotion(eta={self.eta}, z={self.z:g}, val_size={self.val_size})"


def peers_for(me: RungResult, others: Sequence[RungResult], goal: Goal) -> list[RungResult]:
    """The rung results `me` is ranked among (see the module's docstring)."""
    if goal.max_params is not None:
        return [o for o in others if o.params <= goal.max_params]
    return [o for o in others if o.params <= me.params]
