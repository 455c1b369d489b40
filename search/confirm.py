"""Confirmation: does a winner reach 99.4% on the test set on every seed, not one lucky run?
And re-evaluation: which of the search's leaders is best on more seeds, judged on
validation, before anything is confirmed on test.

`retrain(cfg, on_event)` is both commands (`drill-search confirm`, `drill-search
reevaluate`): it chooses what to train (`results.selection`: `choose`, `leaders`), plans
the runs once (`make_plan`: the runs `asked`, the choices x the seeds, under one
protocol; those `missing` from the study of runs), hands each
worker its part of the missing runs (`search.execution.workers.confirm_worker`), and
judges what is stored (`results.verdicts`; in words: `results.confirmation`). Each run is
a trial of a companion study (`search.execution.runs`), so results survive interruption
and a second command only trains what is missing.

`TEST` retrains the chosen architectures (by default the search's Pareto front under the
budget, plus the hand-designed rounds under it) on all 60,000 training images, 15 epochs,
several seeds; the verdict uses final-epoch test accuracy, and best-of-epochs figures are
shown beside it, labelled, since picking an epoch by test accuracy is selection on the
test set. `VALIDATION` trains the leaders under the search's own protocol; the mean
over the new seeds ranks them, and the test set still only reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

import spaces

from .config import ConfirmConfig, Goal, Recipe
from .engine.data import ensure_mnist
from .execution.hardware import check_workers
from .execution.choices import study_budget, study_goal
from .execution.identity import SearchFailed, StudyError, load
from .execution.liveness import fail_dead_workers
from .execution.runs import (CHECKS, TEST, VALIDATION, Check, Choice, Run, is_run, open_runs, run_protocol,
                             search_protocol, stored)
from .execution.storage import open_existing
from .execution.supervisor import GO_ON, Polled, Supervisor, TrialFinished, Worker, reporter
from .execution.workers import ConfirmJob, confirm_worker
from .results.selection import choose, leaders
from .results.verdicts import Verdict, verdicts


@dataclass(frozen=True)
class Plan:
    """Every run one command asks for (the choices x the seeds), under one protocol."""

    check: Check
    choices: list[Choice]
    seeds: list[int]
    recipe: Recipe
    train_size: int | None
    study_name: str  # the study of runs, <search>-<check>
    missing: list[Run]  # the runs not stored yet, in the order they are trained

    @property
    def key(self) -> dict:
        return run_protocol(self.recipe, self.train_size, self.check)

    @property
    def total(self) -> int:
        return len(self.choices) * len(self.seeds)

    def runs_of(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """The trials among `trials` that are runs of this plan."""
        return planned_runs(trials, self.choices, self.seeds, self.key)


@dataclass(frozen=True)
class Planned:
    """The plan is made; `workers` processes are about to train its missing runs."""

    plan: Plan
    workers: int


ConfirmEvent = Planned | TrialFinished | Polled  # TrialFinished: a run of the plan; Polled: the plan's runs


@dataclass(frozen=True)
class ConfirmOutcome:
    plan: Plan
    verdicts: list[Verdict]


def retrain(cfg: ConfirmConfig, on_event: Callable[[ConfirmEvent], None] = lambda e: None,
        poll_seconds: float = 1.0) -> ConfirmOutcome:
    """`drill-search confirm` or `reevaluate` (see the module): plan, train what is
    missing with up to `cfg.workers` processes, judge what is stored."""
    check_workers(cfg.storage, cfg.workers)
    storage = open_existing(cfg.storage)
    plan = make_plan(cfg, load(storage, cfg.study_name, cfg.storage))
    root = ensure_mnist(cfg.data.root, download=cfg.data.download)  # once, before any worker starts
    runs_study = open_runs(storage, plan.study_name, plan.check)
    fail_dead_workers(runs_study, retry=False)  # runs left RUNNING by a command that was killed
    plan = dataclasses.replace(plan, missing=missing(runs_study, plan.choices, plan.seeds, plan.key))  # what is stored now
    n = min(cfg.workers, len(plan.missing))
    on_event(Planned(plan, n))
    if n:
        job = ConfirmJob(plan.recipe, str(root), cfg.device, cfg.storage, plan.study_name,
                         plan.train_size, n, plan.check)
        supervise(runs_study, plan, job, on_event, poll_seconds)
    return ConfirmOutcome(plan, verdicts(runs_study, plan.choices, plan.seeds, plan.key, plan.check))


def make_plan(cfg: ConfirmConfig, search: optuna.Study) -> Plan:
    """What `cfg` asks of `search`: the choices, the seeds, the protocol. Bad requests
    (trials that are not complete, nothing to check, a re-evaluation seed the search
    trained with) are one sentence (StudyError)."""
    refuse_unless_search(search)
    check = (VALIDATION if cfg.reevaluate else TEST).of(search)
    first = check.seeds[0] if cfg.first_seed is None else cfg.first_seed
    seeds = list(range(first, first + (cfg.seeds or len(check.seeds))))
    max_params = study_budget(search)
    numbers = list(cfg.trials) if cfg.trials else None
    if cfg.reevaluate and numbers is None:
        goal = Goal(max_params=cfg.goal_params if cfg.goal_params is not None else study_goal(search).max_params)
        numbers = [t.number for t in leaders(search, goal, cfg.leaders)]
        if not numbers:
            within = "" if goal.max_params is None else f" within the goal of {goal.max_params:,} parameters"
            raise StudyError(f"study {search.study_name!r} has no complete trial{within} yet.")
    try:
        choices = choose(search, numbers, max_params, with_baselines=cfg.with_baselines and not cfg.reevaluate)
    except ValueError as e:
        raise StudyError(str(e) + ".") from None
    if not choices:
        raise StudyError(f"study {search.study_name!r} has no complete trial under the budget to confirm yet.")
    recipe, train_size = cfg.recipe, cfg.train_size
    if cfg.reevaluate:
        recipe, train_size = search_protocol(search, cfg.recipe)
        reused = sorted({c.source_trial for c in choices if search.trials[c.source_trial].user_attrs.get("seed") in seeds})
        if reused:
            raise StudyError(f"trial(s) {', '.join(map(str, reused))} trained with one of these seeds in the search; "
                             "start the seeds elsewhere with --seed.")
    return Plan(check, choices, seeds, recipe, train_size, check.study_name(search.study_name),
                asked(choices, seeds))


KINDS = {"confirm": "a confirmation study", "reeval": "a re-evaluation study",
         "baselines": "the rounds' reproductions (run --baseline)"}  # by the "kind" each study records


def refuse_unless_search(study: optuna.Study) -> None:
    """One sentence (StudyError) unless `study` is a search: confirming a study of runs
    would train its runs again into a study <name>-confirm-confirm. Told by the kind the
    study recorded when it was made (`identity`), not by its name."""
    kind = study.user_attrs.get("kind")
    if kind == "search":
        return
    name = study.study_name
    what = KINDS.get(kind, "not a search made by drill-search run")
    suffix = f"-{kind}"
    hint = (f"pass the search's name: --study-name {name.removesuffix(suffix)}" if kind in CHECKS and name.endswith(suffix)
            else "pass a search's --study-name")
    raise StudyError(f"the study {name!r} is {what}; {hint}.")


def supervise(runs_study: optuna.Study, plan: Plan, job: ConfirmJob, on_event: Callable[[ConfirmEvent], None],
              poll_seconds: float = 1.0) -> None:
    """Train the plan's missing runs with `job.workers` processes, worker i of n taking
    missing runs i, i + n, ... A run that is interrupted, fails or loses its worker is
    stored FAIL with the reason, and no worker is replaced: a later command trains what is
    missing (studies of runs have no queue, so nothing is re-queued)."""
    n = job.workers
    tell = reporter(runs_study, on_event, plan.runs_of, lambda: supervisor.ids)
    supervisor = Supervisor(runs_study, confirm_worker, tell, poll_seconds, retry=False)
    failed = []

    def on_exit(w: Worker, code: int) -> bool:
        if code != 0:
            failed.append(w)
        return GO_ON

    def start() -> None:
        for i in range(n):
            supervisor.start_on_its_device(i, job, plan.missing[i::n])

    supervisor.run(on_exit, start)
    if failed:
        mine = [t for t in runs_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                if t.user_attrs.get("worker") in supervisor.ids]
        reason = mine[-1].user_attrs.get("state_reason", "unknown") if mine else "see the worker's line above"
        raise SearchFailed(f"a confirmation run failed ({reason}); the finished runs are stored, and the "
                           "same command trains the missing ones.")


def asked(choices: list[Choice], seeds: list[int]) -> list[tuple[Choice, int]]:
    """Every run a confirmation asks for, in the order they are trained."""
    return [(choice, seed) for choice in choices for seed in seeds]


def missing(study: optuna.Study, choices: list[Choice], seeds: list[int], key: dict) -> list[tuple[Choice, int]]:
    """The runs of the plan that `study` holds no complete run of under protocol `key`."""
    return [(choice, seed) for choice, seed in asked(choices, seeds)
            if stored(study, choice.candidate, seed, key) is None]


def planned_runs(trials, choices: list[Choice], seeds: list[int], key: dict) -> list:
    """The trials among `trials` that are runs of the plan under protocol `key`."""
    wanted = {(choice.candidate, seed) for choice, seed in asked(choices, seeds)}
    out = []
    for t in trials:
        if not t.params:  # waiting with nothing asked yet (a confirm trial re-queued by fail-stale)
            continue
        cand = spaces.decode(t.params)
        if (cand, t.user_attrs.get("confirm_seed")) in wanted and is_run(t, cand, key):
            out.append(t)
    return out


