"""Early-epoch pruning rules for multi-objective studies, and their offline replay.

Optuna's pruners need `trial.report`, which multi-objective studies do not allow
(NotImplementedError in Optuna 5), so the rule lives here. A rule sees the running
trial's validation accuracy at one epoch, where that epoch lies in its learning-rate
schedule, and its peers' curves (read from storage by the objective, so it works across
workers and machines), and returns a reason to stop, or None. Rules never see test
accuracy.

Like with like: a peer counts at epoch e only when it was at the same point of its
learning-rate schedule there (`Candidate.phase`: the same number of StepLR drops so far;
for one-cycle runs, the same epoch). A candidate that drops its learning rate at epoch 10 is
never judged against one that dropped at epoch 4 while one of them has dropped and the
other not: the early dropper looks better for reasons unrelated to the final result.

    pareto   (default) stop a candidate that
             - is hopeless: its validation error at epoch e is more than `ratio` times the
               error of every leading trial there (complete trials whose final score is
               within `slack` points of the best). For this mission the front that
               matters lies near 99.4%, and a net that far behind every leader cannot
               reach it, whatever its size; or
             - is dominated: at least `dominators` networks with no more parameters were
               ahead of it at epoch e by `margin` points or more, so it is unlikely to
               reach the accuracy-vs-parameters front. A small network is never pruned
               for losing to a larger one on this count.
    median   stop below the median of the comparable peers at this epoch. This is not
             Optuna's MedianPruner (which compares against complete trials' best values).
    none     train every candidate to the end.

Every rule waits `warmup` epochs (winners of this exercise can look weak after epoch 1:
published runs that end at 99.4% were at 94.0-98.6% after it).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

PRUNERS = ("pareto", "median", "none")


@dataclass(frozen=True)
class Peer:
    """Another trial's curve: its size, validation accuracy and schedule phase per epoch,
    and its final score when it completed (None while running or after pruning)."""

    params: int
    val_acc: tuple[float, ...]
    phases: tuple = ()  # Candidate.phase(e) for e = 1, 2, ...; empty: comparable anywhere
    final: float | None = None

    def at(self, epoch: int, phase) -> float | None:
        """Its validation accuracy at `epoch` if it got there at the same phase, else None."""
        if len(self.val_acc) < epoch:
            return None
        if self.phases and len(self.phases) >= epoch and self.phases[epoch - 1] != phase:
            return None
        return self.val_acc[epoch - 1]


class Pruner(Protocol):
    def prune(self, epoch: int, val_acc: float, params: int, phase, peers: Sequence[Peer]) -> str | None:
        """A one-line reason to stop the trial after `epoch` (counted from 1), or None."""


@dataclass(frozen=True)
class NoPruner:
    def prune(self, epoch: int, val_acc: float, params: int, phase, peers: Sequence[Peer]) -> str | None:
        return None


@dataclass(frozen=True)
class MedianPruner:
    warmup: int = 3  # judge from this epoch on
    min_peers: int = 5  # comparable curves at the epoch

    def prune(self, epoch: int, val_acc: float, params: int, phase, peers: Sequence[Peer]) -> str | None:
        if epoch < self.warmup:
            return None
        at = [a for a in (p.at(epoch, phase) for p in peers) if a is not None]
        if len(at) < self.min_peers:
            return None
        median = statistics.median(at)
        if val_acc < median:
            return (
                f"validation accuracy {val_acc:.2f}% at epoch {epoch} is below the median "
                f"{median:.2f}% of {len(at)} trials at the same point of their schedule"
            )
        return None


@dataclass(frozen=True)
class ParetoPruner:
    warmup: int = 3  # judge from this epoch on
    # hopeless: far behind every leading trial
    ratio: float = 1.5  # validation error more than this many times every leader's
    slack: float = 0.3  # leaders: complete trials whose final score is within this of the best
    leaders: int = 2  # comparable leaders needed before judging
    # dominated: behind smaller networks
    min_peers: int = 3  # comparable curves needed before judging
    dominators: int = 2  # smaller-or-equal networks that must be ahead
    margin: float = 0.05  # percentage points they must be ahead by (validation noise)

    def prune(self, epoch: int, val_acc: float, params: int, phase, peers: Sequence[Peer]) -> str | None:
        if epoch < self.warmup:
            return None
        return self._hopeless(epoch, val_acc, phase, peers) or self._dominated(epoch, val_acc, params, phase, peers)

    def _hopeless(self, epoch: int, val_acc: float, phase, peers: Sequence[Peer]) -> str | None:
        finals = [p.final for p in peers if p.final is not None]
        if not finals:
            return None
        best = max(finals)
        lead = [a for p in peers if p.final is not None and p.final >= best - self.slack
                for a in [p.at(epoch, phase)] if a is not None]
        if len(lead) < self.leaders:
            return None
        worst = min(lead)
        if 100.0 - val_acc > self.ratio * (100.0 - worst):
            return (
                f"validation error {100 - val_acc:.2f}% at epoch {epoch} is over {self.ratio:g}x "
                f"that of all {len(lead)} leading trials at the same point of their schedule "
                f"(worst of them {100 - worst:.2f}%)"
            )
        return None

    def _dominated(self, epoch: int, val_acc: float, params: int, phase, peers: Sequence[Peer]) -> str | None:
        at = [(p, a) for p in peers for a in [p.at(epoch, phase)] if a is not None]
        if len(at) < self.min_peers:
            return None
        ahead = [(p, a) for p, a in at if p.params <= params and a >= val_acc + self.margin]
        if len(ahead) >= self.dominators:
            best, acc = max(ahead, key=lambda pa: pa[1])
            return (
                f"validation accuracy {val_acc:.2f}% at epoch {epoch} is beaten by {len(ahead)} "
                f"trials with no more parameters at the same point of their schedule (best "
                f"{acc:.2f}% with {best.params:,})"
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


# --- offline replay on recorded curves ---------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A finished trial as storage holds it: enough to replay a rule on it."""

    number: int
    params: int
    val_acc: tuple[float, ...]  # as far as it trained
    phases: tuple
    complete: bool  # trained to the last epoch
    started: float  # timestamps (seconds): who could have been its peer
    finished: float


@dataclass
class Replay:
    stopped_at: dict[int, int | None] = field(default_factory=dict)  # trial -> epoch the rule stops it
    epochs_recorded: int = 0  # candidate-epochs the recorded trials trained
    epochs_replayed: int = 0  # ... had the rule run (unknown tails count as recorded)
    unknown: list[int] = field(default_factory=list)  # pruned when recorded, kept by the rule

    def cut(self, numbers) -> list[int]:
        return [n for n in numbers if self.stopped_at.get(n) is not None]


def replay(trials: Sequence[Recorded], pruner: Pruner, epochs: int,
           score: Callable[[Sequence[float]], float]) -> Replay:
    """Run `pruner` again on recorded curves, in the order the trials started.

    A trial's peers are the trials recorded as finished before it started, with the curves
    the replayed rule would have left them (cut where it stops them, no final score then).
    A trial that was pruned when recorded and that the rule would keep has an unknown
    tail: it counts with the epochs it trained, listed in `unknown`.
    """
    out = Replay()
    replayed: dict[int, Peer] = {}
    for t in sorted(trials, key=lambda t: t.started):
        peers = [replayed[o.number] for o in trials if o.finished <= t.started and o.number in replayed]
        stop = None
        for e in range(1, min(len(t.val_acc), epochs - 1) + 1):
            if pruner.prune(e, t.val_acc[e - 1], t.params, t.phases[e - 1], peers) is not None:
                stop = e
                break
        out.stopped_at[t.number] = stop
        out.epochs_recorded += len(t.val_acc)
        out.epochs_replayed += stop if stop is not None else len(t.val_acc)
        if stop is None and not t.complete:
            out.unknown.append(t.number)
        curve = t.val_acc[:stop] if stop is not None else t.val_acc
        final = score(curve) if stop is None and t.complete else None
        replayed[t.number] = Peer(t.params, tuple(curve), tuple(t.phases), final)
    return out
