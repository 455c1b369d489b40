"""A study's trials counted: per state, and towards a search's total.

`--trials N` is a total of finished trials (complete and pruned, the rejected among them).
One count, `counted`, serves every rule that reads it: what a search has finished, what is
left to start (`todo`: running trials are a worker's share already taken), when a worker
stops (`StopAtTotal`), and whether a trial just created is one too many
(`search.execution.workers.WithinTotal`: those numbered below it).
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # a trial rejected over budget is pruned


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state, by lower-case state name."""
    c = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        c[t.state.name.lower()] += 1
    return c


def counted(study: optuna.Study, running: bool = False, below: int | None = None) -> int:
    """Trials that count towards a search's total: the finished ones, and with `running`
    those running now; with `below`, only those numbered below it."""
    states = (*FINISHED, TrialState.RUNNING) if running else FINISHED
    return sum(below is None or t.number < below for t in study.get_trials(deepcopy=False, states=states))


def todo(study: optuna.Study, total: int) -> int:
    """Trials still to start: the total minus those finished or running now."""
    return max(0, total - counted(study, running=True))


class StopAtTotal:
    """After each trial, stop the worker once nothing is left to start (Optuna's
    MaxTrialsCallback, with this module's count)."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if todo(study, self.total) == 0:
            study.stop()
