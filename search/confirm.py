"""Confirmation: does a winner reach 99.4% on the test set on every seed, not one lucky run?

Chosen architectures (by default the search's Pareto front under the budget, plus the
hand-designed rounds under it) are retrained with the full recipe: all 60,000 training
images, 15 epochs, several seeds. Each run is a trial of the companion study
`<search>-confirm`, so results survive interruption and a second `confirm` only runs
what is missing. The verdict uses final-epoch test accuracy; best-of-epochs figures are
shown beside it, labelled, since picking an epoch by test accuracy is selection on the
test set.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

import spaces
from baselines import ROUNDS

from . import report
from .config import PARAM_BUDGET, TARGET_ACC, Recipe
from .data import Mnist, load_mnist
from .model import count_params
from .record import record_run
from .study import open_study, same_protocol
from .train import EpochResult


@dataclass(frozen=True)
class Choice:
    label: str  # "trial 12" or a round's name
    candidate: spaces.Candidate
    source_trial: int | None = None
    baseline: str | None = None


@dataclass(frozen=True)
class Verdict:
    choice: Choice
    params: int
    final: tuple[float, ...]  # final-epoch test accuracy per seed
    best: tuple[float, ...]  # best-of-epochs test accuracy per seed (selects on test)
    seconds: tuple[float, ...] = ()  # each run's time from start to end

    @property
    def mean(self) -> float:
        return statistics.fmean(self.final)

    @property
    def std(self) -> float:
        return statistics.stdev(self.final) if len(self.final) > 1 else 0.0

    @property
    def reaches_target(self) -> bool:
        return min(self.final) >= TARGET_ACC


PROTOCOL_SEEDS = (1, 2, 3)  # what `confirm` runs by default, and what its verdicts compare


def confirm_study_name(search_name: str) -> str:
    return f"{search_name}-confirm"


def choose(study: optuna.Study, trial_numbers: list[int] | None, max_params: int,
           with_baselines: bool = True) -> list[Choice]:
    """The trials asked for (default: the Pareto front), plus the rounds under the budget."""
    if trial_numbers:
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        missing = [n for n in trial_numbers if n not in trials or trials[n].state != TrialState.COMPLETE]
        if missing:
            raise ValueError(f"trial(s) {', '.join(map(str, missing))} of study {study.study_name!r} "
                             "are not complete trials")
        picked = [trials[n] for n in trial_numbers]
    else:
        picked = report.front(study)
    choices, seen = [], set()
    for t in picked:
        cand = spaces.decode(t.params)
        if cand not in seen:
            seen.add(cand)
            name = t.user_attrs.get("baseline")
            choices.append(Choice(name or f"trial {t.number}", cand, source_trial=t.number, baseline=name))
    if with_baselines:
        for b in ROUNDS.values():
            if b.candidate not in seen and count_params(b.candidate.arch) <= max_params:
                seen.add(b.candidate)
                choices.append(Choice(b.name, b.candidate, baseline=b.name))
    return choices


CONFIRM_ATTRS = {"kind": "confirm"}
CONFIRM_PROTOCOL = "train on all 60,000 training images; objective 0 is final-epoch test accuracy"


def run(
    choices: list[Choice],
    seeds: list[int],
    recipe: Recipe,
    data: Mnist,
    device: torch.device,
    storage,
    study_name: str,
    on_run: Callable[[Choice, int, list[EpochResult] | None], None] | None = None,
    artifacts=None,
    train_size: int | None = None,
    on_epoch: Callable[[Choice, int, EpochResult], None] | None = None,
    runs: list[tuple[Choice, int]] | None = None,
) -> list[Verdict]:
    """Train every choice with every seed (skipping runs already stored) and judge them.

    `runs`: train only these (choice, seed) pairs of `plan(choices, seeds)`, a worker's
    part (`workers.run_confirm`); the verdicts still cover every stored run of the plan.
    """
    study = open_confirm(storage, study_name)
    key = run_protocol(recipe, train_size)
    for choice, seed in plan(choices, seeds) if runs is None else runs:
        if _stored(study, choice.candidate, seed, key) is not None:
            if on_run is not None:
                on_run(choice, seed, None)
            continue
        attrs = {"label": choice.label, "confirm_seed": seed, "run_protocol": run_key(key, choice.candidate)}
        if choice.source_trial is not None:
            attrs["source_trial"] = choice.source_trial
        if choice.baseline:
            attrs["baseline"] = choice.baseline
        each = None if on_epoch is None else (lambda e, c=choice, s=seed: on_epoch(c, s, e))
        result = record_run(study, choice.candidate, Recipe(**{**recipe.to_dict(), "seed": seed}),
                            data, device, attrs, artifacts=artifacts, on_epoch=each)
        if on_run is not None:
            on_run(choice, seed, result.history)
    return verdicts(study, choices, seeds, key)


def open_confirm(storage, study_name: str) -> optuna.Study:
    return open_study(storage, study_name, ["maximize", "minimize"], ["test_acc", "params"], CONFIRM_ATTRS,
                      described=CONFIRM_PROTOCOL)


def plan(choices: list[Choice], seeds: list[int]) -> list[tuple[Choice, int]]:
    """Every run a confirmation asks for, in the order they are trained."""
    return [(choice, seed) for choice in choices for seed in seeds]


def missing(study: optuna.Study, choices: list[Choice], seeds: list[int], key: dict) -> list[tuple[Choice, int]]:
    """The runs of the plan that `study` holds no complete run of under protocol `key`."""
    return [(choice, seed) for choice, seed in plan(choices, seeds)
            if _stored(study, choice.candidate, seed, key) is None]


def planned_runs(trials, choices: list[Choice], seeds: list[int], key: dict) -> list:
    """The trials among `trials` that are runs of the plan under protocol `key`."""
    wanted = {(choice.candidate, seed) for choice, seed in plan(choices, seeds)}
    out = []
    for t in trials:
        cand = spaces.decode(t.params)
        if (cand, t.user_attrs.get("confirm_seed")) in wanted and is_run(t, cand, key):
            out.append(t)
    return out


def load_data(root: str | Path, device: torch.device | str, train_size: int | None = None) -> Mnist:
    """MNIST on `device`, the training set cut to its first `train_size` images if given."""
    data = load_mnist(root).to(device)
    if train_size is not None:
        data = dataclasses.replace(data, train=data.train.take(slice(0, train_size)))
    return data


def run_protocol(recipe: Recipe, train_size: int | None) -> dict:
    """Everything that changes what a confirmation run computes, but its seed: runs are
    reused and compared only under the same protocol."""
    return {**{k: v for k, v in recipe.protocol().items() if k != "seed"}, "train_size": train_size}


def run_key(key: dict, candidate: spaces.Candidate) -> dict:
    """The protocol a run of `candidate` is stored under: `key` with the batch it trains
    with written out (a recipe's batch None means the candidate's own)."""
    return {**key, "batch_size": key.get("batch_size") or candidate.batch_size}


def is_run(t: optuna.trial.FrozenTrial, candidate: spaces.Candidate, key: dict) -> bool:
    """Whether stored trial `t` is a run of `candidate` under protocol `key`."""
    return (spaces.decode(t.params) == candidate
            and same_protocol(t.user_attrs.get("run_protocol"), run_key(key, candidate)))


def _runs(study: optuna.Study, candidate: spaces.Candidate, key: dict) -> list:
    """The complete runs of `candidate` under protocol `key`, every seed."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_run(t, candidate, key)]


def one_per_seed(runs: list) -> list:
    """The first complete run of each seed: two `confirm` commands on one storage may both
    train a missing run, and a seed must count once in a mean."""
    first: dict = {}
    for t in sorted(runs, key=lambda t: t.number):
        first.setdefault(t.user_attrs.get("confirm_seed"), t)
    return list(first.values())


def _stored(study: optuna.Study, candidate: spaces.Candidate, seed: int, key: dict):
    return next((t for t in _runs(study, candidate, key) if t.user_attrs.get("confirm_seed") == seed), None)


def verdicts(study: optuna.Study, choices: list[Choice], seeds: list[int] | None, key: dict) -> list[Verdict]:
    """One verdict per choice with stored runs: those of `seeds`, or all stored ones (None)."""
    out = []
    for choice in choices:
        runs = [t for t in one_per_seed(_runs(study, choice.candidate, key))
                if seeds is None or t.user_attrs.get("confirm_seed") in seeds]
        if not runs:
            continue
        out.append(Verdict(
            choice=choice,
            params=int(runs[0].values[1]),
            final=tuple(t.values[0] for t in runs),
            best=tuple(max(t.user_attrs["test_acc"]) for t in runs),
            seconds=tuple((t.datetime_complete - t.datetime_start).total_seconds() for t in runs),
        ))
    return out


def table(verdicts_: list[Verdict], epochs: int) -> str:
    lines = [
        f"Final-epoch test accuracy (epoch {epochs}, MNIST test set) over seeds:",
        f"{'candidate':<12} {'params':>6}  {'seeds':>5}  {'mean':>6}  {'std':>5}  {'min':>6}  "
        f"{'>= 99.4 on every seed':<21}  best-of-epochs mean (selects on test)",
    ]
    for v in sorted(verdicts_, key=lambda v: v.params):
        lines.append(
            f"{v.choice.label:<12} {v.params:>6,}  {len(v.final):>5}  {v.mean:>6.2f}  {v.std:>5.2f}  "
            f"{min(v.final):>6.2f}  {'yes' if v.reaches_target else 'no':<21}  {statistics.fmean(v.best):.2f}"
        )
    winners = [v.choice.label for v in verdicts_ if v.reaches_target]
    lines.append(
        "reach 99.4% on every seed: " + (", ".join(winners) if winners else "none")
    )
    return "\n".join(lines)


def stored_verdicts(search: optuna.Study, storage, recipe: Recipe) -> tuple[list[Verdict], list[Choice]]:
    """What `<search>-confirm` holds for the search's front and the rounds under `recipe`
    on all 60,000 images with the default seeds (PROTOCOL_SEEDS), trained by earlier
    `confirm` commands (nothing is trained here), and the choices it was looked up for."""
    try:
        study = optuna.load_study(study_name=confirm_study_name(search.study_name), storage=storage)
    except KeyError:
        return [], []
    choices = choose(search, None, search.user_attrs.get("max_params", PARAM_BUDGET))
    return verdicts(study, choices, list(PROTOCOL_SEEDS), run_protocol(recipe, None)), choices


def stored_table(search: optuna.Study, storage, recipe: Recipe) -> str | None:
    """The confirmation table of `stored_verdicts`; None when there is no such run."""
    found, choices = stored_verdicts(search, storage, recipe)
    if not found:
        return None
    unconfirmed = [c.label for c in choices if c.label not in {v.choice.label for v in found}]
    note = f"\nnot confirmed yet: {', '.join(unconfirmed)}" if unconfirmed else ""
    seconds = [s for v in found for s in v.seconds]
    cost = (f"\n{len(seconds)} runs took {sum(seconds) / 3600:.1f} process-hours, "
            f"{min(seconds) / 60:.0f} to {max(seconds) / 60:.0f} min each")
    return table(found, recipe.epochs) + cost + note
