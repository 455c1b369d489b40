"""Early-epoch pruning rules for multi-objective studies: one rule per class, joined by `AnyOf`.

Optuna's pruners need `trial.report`, which multi-objective studies do not allow
(NotImplementedError in Optuna 5), so the rules live here. A rule sees the running
trial's curve so far (`Peer`: size, validation accuracy per epoch, schedule phases) and
its peers' curves (read from storage by the objective, so it works across workers and
machines), and returns a reason to stop, or None. Rules never see test accuracy.

Like with like: a peer counts at epoch e only when it was at the same point of its
learning-rate schedule there (`Candidate.phase`: the same number of StepLR drops so far;
for one-cycle runs, the same epoch). "Ahead" means by `z` standard errors of the
difference (`search.strategy.stats`), not by a fixed hair. A curve averaged over the last
`window` epochs keeps the standard error of one epoch: the same images are scored every
epoch, so averaging removes the epoch-to-epoch wobble but not the luck of the validation
draw.

The rules:

    Hopeless   validation error more than `ratio` times the error of every leading
               trial (complete, final score within `slack` of the best) at the same point
               of the schedule: far behind everything that matters, whatever its size.
    Dominated  at least `dominators` networks with no more parameters were ahead of it at
               that point by `z` standard errors (plus `margin` points). A small network
               is never pruned for losing to larger ones.
    Outpaced   even the largest gain from this point to the end that a finished trial at
               the same point of its schedule made would leave it `z` standard errors
               below the final score of `dominators` finished networks with no more
               parameters. Final scores compare across schedules, so a StepLR candidate
               can lose to a one-cycle one, which `Dominated` never judges; taking the
               largest gain of all matching curves keeps the bound optimistic.
    Median     below the median of the comparable peers (not Optuna's MedianPruner,
               which compares against complete trials' best values).
    NoPruner   trains every candidate to the end.
    AnyOf      stops when any of its rules does (the first reason is given).
    Gate       holds a rule's judgement until epoch `warmup`, and for one-cycle runs
               until their learning rate has passed its peak.

`make_pruner` builds the named rules of the CLI; `benchmarks/prune_replay.py` measures
them on the unpruned sample (`search/strategy/replay.py`); why the rules are what they
are: studies/method.md, Pruning.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from spaces.arch import ONECYCLE_WARMUP

from ..config import MAX_EPOCHS, PRUNERS, VAL_SIZE
from .stats import difference_se



@dataclass(frozen=True)
class Peer:
    """A trial's curve: its size, validation accuracy and schedule phase per epoch, and its
    final score when it completed (None while running or after pruning)."""

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

    def phase(self, epoch: int):
        return self.phases[epoch - 1] if len(self.phases) >= epoch else None

    def smoothed(self, epoch: int, phases: Sequence, window: int) -> float | None:
        """Mean accuracy over epochs epoch-window+1 .. epoch, if it was at `phases` (the
        judged trial's phases at those epochs) at each of them; else None."""
        span = range(max(1, epoch - window + 1), epoch + 1)
        values = [self.at(e, phases[e - 1] if len(phases) >= e else None) for e in span]
        return None if any(v is None for v in values) else sum(values) / len(values)


class Pruner(Protocol):
    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        """A one-line reason to stop the trial whose curve is `me` after `epoch` (from 1), or None."""


@dataclass(frozen=True)
class NoPruner:
    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        return None


@dataclass(frozen=True)
class Median:
    min_peers: int = 5  # comparable curves at the epoch

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        at = [a for a in (p.at(epoch, me.phase(epoch)) for p in peers) if a is not None]
        if len(at) < self.min_peers:
            return None
        median, acc = statistics.median(at), me.val_acc[epoch - 1]
        if acc < median:
            return (f"validation accuracy {acc:.2f}% at epoch {epoch} is below the median "
                    f"{median:.2f}% of {len(at)} trials at the same point of their schedule")
        return None


@dataclass(frozen=True)
class Hopeless:
    ratio: float = 1.5  # validation error more than this many times every leader's
    slack: float = 0.3  # leaders: complete trials whose final score is within this of the best
    leaders: int = 2  # comparable leaders needed before judging

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        finals = [p.final for p in peers if p.final is not None]
        if not finals:
            return None
        best = max(finals)
        lead = [a for p in peers if p.final is not None and p.final >= best - self.slack
                for a in [p.at(epoch, me.phase(epoch))] if a is not None]
        if len(lead) < self.leaders:
            return None
        worst, acc = min(lead), me.val_acc[epoch - 1]
        if 100.0 - acc > self.ratio * (100.0 - worst):
            return (f"validation error {100 - acc:.2f}% at epoch {epoch} is over {self.ratio:g}x "
                    f"that of all {len(lead)} leading trials at the same point of their schedule "
                    f"(worst of them {100 - worst:.2f}%)")
        return None


@dataclass(frozen=True)
class Dominated:
    z: float = 2.0  # standard errors of the difference a smaller peer must be ahead by
    margin: float = 0.0  # plus this many points
    n_val: int = VAL_SIZE  # validation images behind each figure (sets the standard error)
    window: int = 1  # compare means over this many epochs (same phases throughout)
    dominators: int = 2  # smaller-or-equal networks that must be ahead
    min_peers: int = 3  # comparable curves needed before judging

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        mine = me.smoothed(epoch, me.phases, self.window)
        if mine is None:
            return None
        at = [(p, a) for p in peers for a in [p.smoothed(epoch, me.phases, self.window)] if a is not None]
        if len(at) < self.min_peers:
            return None
        ahead = [(p, a) for p, a in at if p.params <= me.params and a >= mine + self.needed(mine, a)]
        if len(ahead) < self.dominators:
            return None
        best, acc = max(ahead, key=lambda pa: pa[1])
        span = min(self.window, epoch)
        over = f" over the last {span} epochs" if span > 1 else ""
        return (f"validation accuracy {mine:.2f}%{over} at epoch {epoch} is beaten by {len(ahead)} trials "
                f"with no more parameters at the same point of their schedule by more than "
                f"{self.z:g} standard errors (best {acc:.2f}% with {best.params:,})")

    def needed(self, mine: float, theirs: float) -> float:
        """How far ahead a peer must be, in points."""
        return self.margin + self.z * difference_se(mine, theirs, self.n_val)


@dataclass(frozen=True)
class Outpaced:
    z: float = 2.0  # standard errors of the difference the finished peers must stay ahead by
    n_val: int = VAL_SIZE
    window: int = 2  # its figure now: the mean over this many epochs
    dominators: int = 2  # finished networks with no more parameters that must stay ahead
    min_curves: int = 3  # finished curves at the same point of the schedule to learn the gain from

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        mine = me.smoothed(epoch, me.phases, self.window)
        if mine is None:
            return None
        gains = [p.final - a for p in peers if p.final is not None
                 for a in [p.smoothed(epoch, me.phases, self.window)] if a is not None]
        if len(gains) < self.min_curves:
            return None
        gain = max(0.0, max(gains))  # curves that all fell from here: still hope for no loss
        hope = mine + gain
        ahead = [p for p in peers if p.final is not None and p.params <= me.params
                 and p.final >= hope + self.z * difference_se(hope, p.final, self.n_val)]
        if len(ahead) < self.dominators:
            return None
        best = max(ahead, key=lambda p: p.final)
        return (f"validation accuracy {mine:.2f}% at epoch {epoch} plus the largest gain to the end of "
                f"{len(gains)} finished trials at the same point of their schedule (+{max(gains):.2f}) stays "
                f"{self.z:g} standard errors below the final score of {len(ahead)} finished trials with no more "
                f"parameters (best {best.final:.2f}% with {best.params:,})")


@dataclass(frozen=True)
class AnyOf:
    rules: tuple

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        return next((r for r in (rule.prune(epoch, me, peers) for rule in self.rules) if r is not None), None)


@dataclass(frozen=True)
class Gate:
    rule: Pruner
    warmup: int = 3  # judge from this epoch on
    epochs: int = MAX_EPOCHS  # the run's length: where a one-cycle run's peak lies
    after_peak: bool = True  # one-cycle runs are judged only once their lr has peaked

    def prune(self, epoch: int, me: Peer, peers: Sequence[Peer]) -> str | None:
        if epoch < self.first_epoch(me):
            return None
        return self.rule.prune(epoch, me, peers)

    def first_epoch(self, me: Peer) -> int:
        phase = me.phase(1)
        if self.after_peak and phase is not None and phase[0] == "onecycle":
            return max(self.warmup, math.ceil(ONECYCLE_WARMUP * self.epochs) + 1)
        return self.warmup


def pareto(warmup: int = 3, epochs: int = MAX_EPOCHS, n_val: int = VAL_SIZE, after_peak: bool = True) -> Pruner:
    """The default rule: outpaced by one finished smaller net at 2 standard errors, or
    dominated by two smaller nets at 1 standard error on 3-epoch means, gated by the
    schedule (how it was chosen: studies/method.md, Pruning)."""
    return Gate(AnyOf((Outpaced(z=2.0, n_val=n_val, window=1, dominators=1),
                       Dominated(z=1.0, n_val=n_val, window=3))), warmup, epochs, after_peak)


def make_pruner(name: str, warmup: int = 3, epochs: int = MAX_EPOCHS, n_val: int = VAL_SIZE) -> Pruner:
    if name == "pareto":
        return pareto(warmup, epochs, n_val)
    if name == "median":
        return Gate(Median(), warmup, epochs)
    if name == "none":
        return NoPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")
