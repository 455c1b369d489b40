"""A run: one candidate trained once, with one seed, under a fixed protocol, stored as one
trial. The rounds' reproductions (`drill-search run --baseline`, study `baselines`:
`open_baselines`), the confirmations and the re-evaluations are runs; a search's trials
are not (the objective trains those).

A companion study (`<search>-confirm`, `<search>-reeval`) holds the runs of one `Check`:
each run records its seed (`confirm_seed`) and its protocol (`run_protocol`), so a run is
trained once and reused only under the same protocol. `train` trains the runs it is
handed, skipping those stored; what to train and how to judge it is `search.confirm`'s.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import TrialState

import spaces

from .. import optuna_private
from ..config import BASELINE_STUDY, MNIST_TRAIN, VAL_SIZE, Recipe, score as search_score
from ..engine.data import Mnist, Split, split_validation
from ..engine.model import count_params
from ..engine.train import EpochResult, TrainResult, train as train_candidate
from . import record
from .identity import open_study, same_protocol

BASELINE_ATTRS = {"kind": "baselines"}
BASELINE_PROTOCOL = f"train on all {MNIST_TRAIN:,} training images; objective 0 is final-epoch test accuracy"


def final_test_acc(history: list[EpochResult]) -> float:
    """A confirmation's score: the last epoch's test accuracy."""
    return history[-1].evals["test"].acc


@dataclass(frozen=True)
class Check:
    """What a companion study's runs train on and what scores them.

    `TEST`, the verdict: all 60,000 training images, final-epoch test accuracy.
    `VALIDATION`, the re-evaluation of a search's leaders under the search's own protocol
    (its training split, its score on its held-out images) with more seeds: near the top
    of a search the differences it ranks (about 0.1 points) are as large as the
    seed-to-seed spread, so the leader is picked on several seeds, on validation.
    """

    name: str  # its runs are stored in the study <search>-<name>
    metric: str  # objective 0 of that study
    seeds: tuple[int, ...]  # the seeds it runs by default
    words: str  # the protocol, for people
    val_size: int | None = None  # images held out of training and scored; None: none
    val_seed: int = 0

    @property
    def is_test(self) -> bool:
        """Whether this is the verdict on test (`TEST`), not a re-evaluation on held-out images."""
        return self.val_size is None

    def splits(self, data: Mnist, train_size: int | None) -> tuple[Split, dict[str, Split]]:
        """(what the runs train on, what they evaluate every epoch)."""
        train, evals = data.train, {}
        if not self.is_test:
            train, evals["val"] = split_validation(train, self.val_size, self.val_seed)
        if train_size is not None:
            train = train.take(slice(0, train_size))
        return train, {**evals, "test": data.test}

    def score(self, history: list[EpochResult]) -> float:
        if self.is_test:
            return final_test_acc(history)
        return search_score(e.evals["val"].acc for e in history)

    def protocol(self) -> dict:
        """What this check adds to a run's protocol key."""
        return {} if self.is_test else {"val_size": self.val_size, "val_seed": self.val_seed}

    def of(self, search: optuna.Study) -> Check:
        """This check for `search`: re-evaluation holds out what the search held out."""
        if self.is_test:
            return self
        a = search.user_attrs
        return dataclasses.replace(self, val_size=a.get("val_size", self.val_size), val_seed=a.get("val_seed", 0))

    def study_name(self, search_name: str) -> str:
        return f"{search_name}-{self.name}"


TEST = Check("confirm", "test_acc", (1, 2, 3), BASELINE_PROTOCOL)  # the rounds' reproductions' protocol
VALIDATION = Check("reeval", "val_acc_last3", (1, 2),
                   "train on the search's training split; objective 0 is the search's score, the mean "
                   "validation accuracy of the last 3 epochs on its held-out images; test accuracy is "
                   "recorded, never used to select", val_size=VAL_SIZE)
CHECKS = {c.name: c for c in (TEST, VALIDATION)}


@dataclass(frozen=True)
class Choice:
    label: str  # "trial 12" or a round's name
    candidate: spaces.Candidate
    source_trial: int | None = None
    baseline: str | None = None
    search_score: float | None = None  # the search run's own score (shown beside a re-evaluation, never averaged)


Run = tuple[Choice, int]  # a choice and a seed


def open_baselines(storage: optuna.storages.BaseStorage, name: str = BASELINE_STUDY) -> optuna.Study:
    """The study of the rounds reproduced with their own recipe (`drill-search run --baseline`)."""
    return open_study(storage, name, ["maximize", "minimize"], ["test_acc", "params"], BASELINE_ATTRS,
                      described=BASELINE_PROTOCOL)


def open_runs(storage, study_name: str, check: Check = TEST) -> optuna.Study:
    return open_study(storage, study_name, ["maximize", "minimize"], [check.metric, "params"],
                      {"kind": check.name}, described=check.words)


def run_protocol(recipe: Recipe, train_size: int | None, check: Check = TEST) -> dict:
    """Everything that changes what a run computes, but its seed: runs are reused and
    compared only under the same protocol."""
    return {**{k: v for k, v in recipe.protocol().items() if k != "seed"}, "train_size": train_size,
            **check.protocol()}


def run_key(key: dict, candidate: spaces.Candidate) -> dict:
    """The protocol a run of `candidate` is stored under: `key` with the batch it trains
    with written out (a recipe's batch None means the candidate's own)."""
    return {**key, "batch_size": key.get("batch_size") or candidate.batch_size}


def is_run(t: optuna.trial.FrozenTrial, candidate: spaces.Candidate, key: dict) -> bool:
    """Whether stored trial `t` is a run of `candidate` under protocol `key`."""
    return (spaces.decode(t.params) == candidate
            and same_protocol(t.user_attrs.get("run_protocol"), run_key(key, candidate)))


def complete_runs(study: optuna.Study, candidate: spaces.Candidate, key: dict) -> list:
    """The complete runs of `candidate` under protocol `key`, every seed."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_run(t, candidate, key)]


def stored(study: optuna.Study, candidate: spaces.Candidate, seed: int, key: dict):
    """The first complete run of `candidate` with `seed` under `key`, or None."""
    return next((t for t in complete_runs(study, candidate, key) if t.user_attrs.get("confirm_seed") == seed), None)


def train(
    runs: list[Run],
    recipe: Recipe,
    data: Mnist,
    device: torch.device,
    storage,
    study_name: str,
    check: Check = TEST,
    artifacts=None,
    train_size: int | None = None,
    on_run: Callable[[Choice, int, list[EpochResult] | None], None] | None = None,
    on_epoch: Callable[[Choice, int, EpochResult], None] | None = None,
) -> None:
    """Train `runs` in this process as trials of the study `study_name`, skipping those
    stored; `on_run` hears each (with None for one already stored)."""
    study = open_runs(storage, study_name, check)
    key = run_protocol(recipe, train_size, check)
    train_split, evals = check.splits(data, train_size)
    for choice, seed in runs:
        if stored(study, choice.candidate, seed, key) is not None:
            if on_run is not None:
                on_run(choice, seed, None)
            continue
        attrs = {"label": choice.label, "confirm_seed": seed, "run_protocol": run_key(key, choice.candidate)}
        if choice.source_trial is not None:
            attrs["source_trial"] = choice.source_trial
        if choice.baseline:
            attrs["baseline"] = choice.baseline
        each = None if on_epoch is None else (lambda e, c=choice, s=seed: on_epoch(c, s, e))
        result = record_run(study, choice.candidate, dataclasses.replace(recipe, seed=seed), train_split, evals,
                            device, attrs, artifacts=artifacts, on_epoch=each, score=check.score)
        if on_run is not None:
            on_run(choice, seed, result.history)


def new_trial(study: optuna.Study, candidate: spaces.Candidate, attrs: dict) -> optuna.Trial:
    """A RUNNING trial of `study` holding exactly `candidate`'s parameters.

    Not enqueue + ask: `ask` takes the oldest waiting trial, which may be another
    command's (two `run --baseline` or `confirm` at once, or a leftover re-queue).
    """
    params = spaces.encode(candidate)
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING, params=params,
        distributions=spaces.distributions(params), user_attrs=attrs)
    return optuna_private.running_trial(study, template)


def record_run(
    study: optuna.Study,
    candidate: spaces.Candidate,
    recipe: Recipe,
    train_split: Split,
    evals: dict[str, Split],
    device: torch.device,
    attrs: dict,
    on_epoch: Callable[[EpochResult], None] | None = None,
    progress: bool = False,
    artifacts=None,
    score: Callable[[list[EpochResult]], float] = final_test_acc,
) -> TrainResult:
    """Train `candidate` on `train_split`, evaluating `evals` every epoch, as one new trial.

    Curves are recorded every epoch, the trained weights go to `artifacts` (an Optuna
    artifact store), and the trial ends COMPLETE with (`score` of the curves, parameters),
    or FAIL with its reason if training is interrupted or fails.
    """
    trial = new_trial(study, candidate, attrs)
    n_params = count_params(candidate.arch)
    record.start(trial, candidate, n_params, recipe, str(device))
    history: list[EpochResult] = []

    def keep(e: EpochResult) -> None:
        history.append(e)
        record.epoch(trial, history)
        if on_epoch is not None:
            on_epoch(e)

    started = time.time()
    try:
        result = train_candidate(candidate, recipe, train_split, evals, device, on_epoch=keep, progress=progress,
                                 on_step=record.StepRecorder(trial, "run", recipe.batch_for(candidate)))
        if artifacts is not None:
            record.save_weights(trial, result.model, artifacts)
    except BaseException as e:
        record.finish(trial, "interrupted" if isinstance(e, KeyboardInterrupt) else f"error: {type(e).__name__}: {e}",
                      started)
        study.tell(trial, state=TrialState.FAIL)
        raise
    record.finish(trial, "complete", started)
    study.tell(trial, [score(history), n_params])
    return result


def search_protocol(search: optuna.Study, engine: Recipe) -> tuple[Recipe, int | None]:
    """The recipe and training-set size a search trained with (its seed aside), on
    `engine`'s engine settings: what a re-evaluation must train with to compare with it."""
    fields = {f.name for f in dataclasses.fields(Recipe)}  # not "steps_scaled", nor keys of older versions
    stored = {k: v for k, v in search.user_attrs.get("recipe", {}).items() if k in fields}
    return Recipe(**{**engine.to_dict(), **stored}), search.user_attrs.get("train_size")
