"""Early-epoch pruning rules for multi-objective studies.

Optuna's pruners need `trial.report`, which multi-objective studies do not allow
(NotImplementedError in Optuna 5), so the rule lives here. A rule sees the running
trial's validation accuracy at one epoch and its peers' curves (read from storage by the
objective, so it works across workers and machines) and returns a reason to stop, or
None. Rules never see test accuracy.

    pareto   stop when enough networks with no more parameters were already more
             accurate at this epoch: a candidate dominated this early rarely reaches the
             accuracy-vs-parameters front. Default: it never prunes a small network for
             losing to a large one, which a median rule would.
    median   stop below the median of all peers at this epoch (Optuna's MedianPruner).
    none     train every candidate to the end.

Both rules wait `warmup` epochs (winners of this exercise can look weak after epoch 1:
published runs that end at 99.4% were at 94.0-98.6% after it) and need `min_peers`
curves at the epoch before they judge.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Protocol

PRUNERS = ("pareto", "median", "none")


@dataclass(frozen=True)
class Peer:
    """Another trial's curve: its parameter count and validation accuracy per epoch."""

    params: int
    val_acc: tuple[float, ...]


class Pruner(Protocol):
    def prune(self, epoch: int, val_acc: float, params: int, peers: list[Peer]) -> str | None:
        """A one-line reason to stop the trial after `epoch` (counted from 1), or None."""


@dataclass(frozen=True)
class NoPruner:
    def prune(self, epoch: int, val_acc: float, params: int, peers: list[Peer]) -> str | None:
        return None


@dataclass(frozen=True)
class MedianPruner:
    warmup: int = 3  # judge from this epoch on
    min_peers: int = 5  # curves that reached the epoch

    def prune(self, epoch: int, val_acc: float, params: int, peers: list[Peer]) -> str | None:
        if epoch < self.warmup:
            return None
        at = [p.val_acc[epoch - 1] for p in peers if len(p.val_acc) >= epoch]
        if len(at) < self.min_peers:
            return None
        median = statistics.median(at)
        if val_acc < median:
            return (
                f"validation accuracy {val_acc:.2f}% at epoch {epoch} is below the median "
                f"{median:.2f}% of {len(at)} trials there"
            )
        return None


@dataclass(frozen=True)
class ParetoPruner:
    warmup: int = 3  # judge from this epoch on
    min_peers: int = 5  # curves that reached the epoch
    dominators: int = 2  # smaller-or-equal networks that must be ahead
    margin: float = 0.05  # percentage points they must be ahead by (validation noise)

    def prune(self, epoch: int, val_acc: float, params: int, peers: list[Peer]) -> str | None:
        if epoch < self.warmup:
            return None
        at = [p for p in peers if len(p.val_acc) >= epoch]
        if len(at) < self.min_peers:
            return None
        ahead = [p for p in at if p.params <= params and p.val_acc[epoch - 1] >= val_acc + self.margin]
        if len(ahead) >= self.dominators:
            best = max(ahead, key=lambda p: p.val_acc[epoch - 1])
            return (
                f"validation accuracy {val_acc:.2f}% at epoch {epoch} is beaten by {len(ahead)} "
                f"trials with no more parameters (best {best.val_acc[epoch - 1]:.2f}% with "
                f"{best.params:,})"
            )
        return None


def make_pruner(name: str, warmup: int = 3) -> Pruner:
    if name == "pareto":
        return ParetoPruner(warmup=warmup)
    if name == "median":
        return MedianPruner(warmup=warmup)
    if name == "none":
        return NoPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")
