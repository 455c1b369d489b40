"""The selection rules: which trials of a search are worth showing, confirming or training
again. The front and the leaders select on validation only; test never chooses here."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

import spaces
from baselines import BASELINES

from ..config import Goal
from ..execution.runs import VALIDATION, Choice
from ..strategy.stats import difference_se


def front(study: optuna.Study) -> list[FrozenTrial]:
    """Complete, within-budget trials that no other such trial beats on both objectives
    (validation accuracy, parameters), fewest parameters first."""
    return sorted(study.best_trials, key=lambda t: (t.values[1], -t.values[0]))


def choose(study: optuna.Study, trial_numbers: list[int] | None, max_params: int,
           with_baselines: bool = True) -> list[Choice]:
    """The trials asked for (default: the Pareto front), plus the baselines under the budget
    that are points of the study's space (the rounds; in the stages space the published
    design too). A network is chosen once, whichever form it is written in."""
    if trial_numbers:
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        missing = [n for n in trial_numbers if n not in trials or trials[n].state != TrialState.COMPLETE]
        if missing:
            raise ValueError(f"trial(s) {', '.join(map(str, missing))} of study {study.study_name!r} "
                             "are not complete trials")
        picked = [trials[n] for n in trial_numbers]
    else:
        picked = front(study)
    choices, seen = [], set()
    for t in picked:
        cand = spaces.decode(t.params)
        if spaces.as_net(cand) not in seen:
            seen.add(spaces.as_net(cand))
            name = t.user_attrs.get("baseline")
            choices.append(Choice(name or f"trial {t.number}", cand, source_trial=t.number, baseline=name,
                                  search_score=t.values[0]))
    if with_baselines:
        space = spaces.of_study(study.user_attrs)
        for b in BASELINES.values():
            if (spaces.as_net(b.candidate) not in seen and b.candidate.arch.params <= max_params
                    and spaces.holds(space, b.candidate)):
                seen.add(spaces.as_net(b.candidate))
                choices.append(Choice(b.name, b.candidate, baseline=b.name))
    return choices


def leaders(study: optuna.Study, goal: Goal, most: int = 4, z: float = 2.0) -> list[optuna.trial.FrozenTrial]:
    """The trials worth more seeds: complete ones within the goal's parameters (without a
    parameter goal, the front), best score first, that one run cannot tell from the best
    (within `z` standard errors of the difference on the held-out images), at most `most`."""
    val_size = study.user_attrs.get("val_size", VALIDATION.val_size)
    if goal.max_params is None:
        pool = front(study)
    else:
        pool = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values[1] <= goal.max_params]
    pool = sorted(pool, key=lambda t: -t.values[0])
    if not pool:
        return []
    best = pool[0].values[0]
    close = [t for t in pool
             if best - t.values[0] <= z * difference_se(best, t.values[0], val_size)]
    return close[:most]


def one_per_seed(runs: list) -> list:
    """The first complete run of each seed, in seed order (tables list the seeds in that
    order): two `confirm` commands on one storage may both train a missing run, and a seed
    must count once in a mean."""
    first: dict = {}
    for t in sorted(runs, key=lambda t: t.number):
        first.setdefault(t.user_attrs.get("confirm_seed"), t)
    return [first[seed] for seed in sorted(first, key=lambda s: (s is None, s or 0))]
