"""Replay pruning rules offline on recorded curves: what a rule would have saved and cut.

A rule is judged on curves nobody cut: on an unpruned sample (every candidate trained to
the end) the replay knows what each stopped candidate would have become, so "front
trials cut" can fail. On a pruned study the tails of pruned trials are unknown; they
count with the epochs they trained and are listed in `Replay.unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

import spaces

from .prune import Peer, Pruner


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
    unknown: list[int] = field(default_factory=list)  # pruned when recorded, kept by the rule
    trained: dict[int, tuple[int, int]] = field(default_factory=dict)  # trial -> (recorded, replayed) epochs

    def cut(self, numbers) -> list[int]:
        return [n for n in numbers if self.stopped_at.get(n) is not None]

    def saved_among(self, numbers) -> float:
        """The share of candidate-epochs saved on these trials only (peers left out)."""
        rec = sum(self.trained[n][0] for n in numbers)
        return 1 - sum(self.trained[n][1] for n in numbers) / rec if rec else 0.0

    @property
    def epochs_recorded(self) -> int:
        """Candidate-epochs the recorded trials trained."""
        return sum(rec for rec, _ in self.trained.values())

    @property
    def epochs_replayed(self) -> int:
        """Candidate-epochs they would have trained under the rule (unknown tails count as recorded)."""
        return sum(rep for _, rep in self.trained.values())

    @property
    def saved(self) -> float:
        return self.saved_among(self.trained)


def recorded(study: optuna.Study) -> list[Recorded]:
    """The study's trained trials (rejected ones never trained and are left out)."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        curve = t.user_attrs.get("val_acc")
        if not curve or t.datetime_start is None or t.datetime_complete is None:
            continue
        cand = spaces.decode(t.params)
        out.append(Recorded(
            number=t.number, params=t.user_attrs["params"], val_acc=tuple(curve),
            phases=tuple(cand.phase(e) for e in range(1, len(curve) + 1)),
            complete=t.state == TrialState.COMPLETE,
            started=t.datetime_start.timestamp(), finished=t.datetime_complete.timestamp(),
        ))
    return out


def front(points: dict[int, tuple[float, int]]) -> set[int]:
    """The numbers whose (score, params) no other point beats on both (maximize, minimize)."""
    return {n for n, (s, p) in points.items()
            if not any(s2 >= s and p2 <= p and (s2 > s or p2 < p) for s2, p2 in points.values())}


def replay(trials: Sequence[Recorded], pruner: Pruner, epochs: int,
           score: Callable[[Sequence[float]], float], order: Sequence[int] | None = None,
           origin: Mapping[int, int] | None = None) -> Replay:
    """Run `pruner` again on recorded curves.

    By default in the order the trials started, a trial's peers being the trials recorded
    as finished before it started. With `order` (trial numbers), as a sequential search in
    that order: each trial's peers are the ones before it. Peers carry the curves the
    replayed rule left them (cut where it stops them, no final score then).

    `origin` maps copies to the trial they copy (a search resampled with replacement):
    a trial never sees a copy of itself (its own future would leak in), and each other
    original counts once among its peers (two copies of one net are not two dominators).
    """
    out = Replay()
    replayed: dict[int, Peer] = {}
    by_number = {t.number: t for t in trials}
    sequence = [by_number[n] for n in order] if order is not None else sorted(trials, key=lambda t: t.started)
    for i, t in enumerate(sequence):
        if order is not None:
            before = [o.number for o in sequence[:i]]
        else:
            before = [o.number for o in trials if o.finished <= t.started and o.number in replayed]
        if origin is not None:
            firsts: dict[int, int] = {}
            for n in before:
                if origin[n] != origin[t.number]:
                    firsts.setdefault(origin[n], n)
            before = list(firsts.values())
        peers = [replayed[n] for n in before]
        stop = None
        for e in range(1, min(len(t.val_acc), epochs - 1) + 1):
            me = Peer(t.params, tuple(t.val_acc[:e]), tuple(t.phases))
            if pruner.prune(e, me, peers) is not None:
                stop = e
                break
        out.stopped_at[t.number] = stop
        out.trained[t.number] = (len(t.val_acc), stop if stop is not None else len(t.val_acc))
        if stop is None and not t.complete:
            out.unknown.append(t.number)
        curve = t.val_acc[:stop] if stop is not None else t.val_acc
        final = score(curve) if stop is None and t.complete else None
        replayed[t.number] = Peer(t.params, tuple(curve), tuple(t.phases), final)
    return out
