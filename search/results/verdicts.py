"""The verdicts: what the stored runs of a confirmation or a re-evaluation say about each
choice, per seed. `TEST` judges on final-epoch test accuracy, with best-of-epochs figures
kept beside it (picking an epoch by test accuracy is selection on the test set);
`VALIDATION` on the search's own score over new seeds, test reported only. Reads the
storage, trains nothing."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ..config import PARAM_BUDGET, TARGET_ACC, Recipe
from ..execution.choices import study_budget
from ..execution.runs import TEST, Check, Choice, complete_runs, run_protocol, search_protocol
from .selection import choose, one_per_seed


@dataclass(frozen=True)
class Verdict:
    choice: Choice
    params: int
    final: tuple[float, ...]  # the check's score per seed: final-epoch test accuracy for TEST
    best: tuple[float, ...]  # best-of-epochs test accuracy per seed (selects on test)
    seconds: tuple[float, ...] = ()  # each run's time from start to end
    test: tuple[float, ...] = ()  # final-epoch test accuracy per seed (reported only)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.final)

    @property
    def std(self) -> float:
        return statistics.stdev(self.final) if len(self.final) > 1 else 0.0

    @property
    def reaches_target(self) -> bool:
        return min(self.final) >= TARGET_ACC


PROTOCOL_SEEDS = TEST.seeds  # what `confirm` runs by default, and what its verdicts compare


def verdicts(study: optuna.Study, choices: list[Choice], seeds: list[int] | None, key: dict,
             check: Check = TEST) -> list[Verdict]:
    """One verdict per choice with stored runs: those of `seeds`, or all stored ones (None).
    A re-evaluation's mean is over its own runs only: the search run is the draw the leaders
    were picked on, biased upward (the winner's curse), so it is shown, never averaged."""
    out = []
    for choice in choices:
        runs = [t for t in one_per_seed(complete_runs(study, choice.candidate, key))
                if seeds is None or t.user_attrs.get("confirm_seed") in seeds]
        if not runs:
            continue
        out.append(Verdict(
            choice=choice,
            params=int(runs[0].values[1]),
            final=tuple(t.values[0] for t in runs),
            best=tuple(max(t.user_attrs["test_acc"]) for t in runs),
            seconds=tuple((t.datetime_complete - t.datetime_start).total_seconds() for t in runs),
            test=tuple(t.user_attrs["test_acc"][-1] for t in runs),
        ))
    return out


def standard_error(v: Verdict) -> float:
    """Of the mean over seeds (seed-to-seed spread only: every run scores the same images)."""
    return v.std / math.sqrt(len(v.final)) if len(v.final) > 1 else float("nan")


def _with_stored(choices: list[Choice], runs: optuna.Study, search: optuna.Study) -> list[Choice]:
    """`choices`, plus the search's trials that `runs` holds runs of (confirmed or
    re-evaluated by number, off the front)."""
    have = {c.source_trial for c in choices}
    trials = {t.number: t for t in search.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    extra = sorted({t.user_attrs["source_trial"] for t in runs.get_trials(deepcopy=False)
                    if t.user_attrs.get("source_trial") in trials} - have)
    return choices + (choose(search, extra, PARAM_BUDGET, with_baselines=False) if extra else [])


def stored_verdicts(search: optuna.Study, storage, recipe: Recipe, check: Check = TEST
                    ) -> tuple[list[Verdict], list[Choice]]:
    """What `<search>-<check>` holds for the search's front, the rounds and any other trial
    of the search it has runs of, under `recipe` (for TEST on all 60,000 images; for
    VALIDATION under the search's own protocol) with the check's default seeds, trained by
    earlier commands (nothing is trained here), and the choices it was looked up for."""
    check = check.of(search)
    try:
        study = optuna.load_study(study_name=check.study_name(search.study_name), storage=storage)
    except KeyError:
        return [], []
    if check.is_test:
        choices = choose(search, None, study_budget(search))
        key = run_protocol(recipe, None)
    else:
        choices = []
        key = run_protocol(*search_protocol(search, recipe), check)
    choices = _with_stored(choices, study, search)
    # a confirmation is judged on its protocol's seeds; a re-evaluation on every seed it ran
    seeds = list(check.seeds) if check.is_test else None
    return verdicts(study, choices, seeds, key, check), choices
