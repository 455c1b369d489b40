"""Confirmation: does a winner reach 99.4% on the test set on every seed, not one lucky run?
And re-evaluation: which of the search's leaders is best on more seeds, judged on
validation, before anything is confirmed on test.

`run(cfg, on_event)` is both commands (`drill-search confirm`, `drill-search
reevaluate`): it chooses what to train (`choose`, `leaders`), plans the runs once
(`make_plan`: the choices x the seeds, under one protocol), hands each worker its part of
the missing runs (`search.execution.workers.confirm_worker`), and judges what is stored
(`verdicts`). Each run is a trial of a companion study (`search.execution.runs`), so results
survive interruption and a second command only trains what is missing.

`TEST` retrains the chosen architectures (by default the search's Pareto front under the
budget, plus the hand-designed rounds under it) on all 60,000 training images, 15 epochs,
several seeds; the verdict uses final-epoch test accuracy, and best-of-epochs figures are
shown beside it, labelled, since picking an epoch by test accuracy is selection on the
test set. `VALIDATION` trains the leaders under the search's own protocol; the mean
over the new seeds ranks them, and the test set still only reports.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

import spaces

from .config import MNIST_TRAIN, PARAM_BUDGET, TARGET_ACC, ConfirmConfig, Goal, Recipe
from .engine.data import ensure_mnist
from .execution.hardware import check_workers, gpus, worker_device
from .execution.identity import SearchFailed, StudyError, budget, load
from .execution.liveness import fail_dead_workers
from .execution.runs import CHECKS, TEST, VALIDATION, Check, Choice, Run, complete_runs, is_run, open_runs, run_protocol, stored
from .execution.storage import open_existing
from .execution.supervisor import GO_ON, Supervisor, TrialFinished, Worker
from .execution.workers import ConfirmJob, confirm_worker
from .results.selection import choose, leaders, one_per_seed


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


@dataclass(frozen=True)
class Polled:
    """Every poll: the plan's runs in the study, and the ids of this command's workers."""

    runs: list[FrozenTrial]
    ids: set[str]


Event = Planned | TrialFinished | Polled  # TrialFinished: a run of the plan


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    verdicts: list[Verdict]


def run(cfg: ConfirmConfig, on_event: Callable[[Event], None] = lambda e: None,
        poll_seconds: float = 1.0) -> Outcome:
    """`drill-search confirm` or `reevaluate` (see the module): plan, train what is
    missing with up to `cfg.workers` processes, judge what is stored."""
    check_workers(cfg.storage, cfg.workers)
    storage = open_existing(cfg.storage)
    the_plan = make_plan(cfg, load(storage, cfg.study_name, cfg.storage))
    root = ensure_mnist(cfg.data.root, download=cfg.data.download)  # once, before any worker starts
    runs_study = open_runs(storage, the_plan.study_name, the_plan.check)
    fail_dead_workers(runs_study, retry=False)  # runs left RUNNING by a command that was killed
    plan_now = dataclasses.replace(the_plan, missing=missing(runs_study, the_plan.choices, the_plan.seeds,
                                                             the_plan.key))
    n = min(cfg.workers, len(plan_now.missing))
    on_event(Planned(plan_now, n))
    if n:
        job = ConfirmJob(plan_now.recipe, str(root), cfg.device, cfg.storage, plan_now.study_name,
                         plan_now.train_size, n, plan_now.check)
        supervise(runs_study, plan_now, job, on_event, poll_seconds)
    return Outcome(plan_now, verdicts(runs_study, plan_now.choices, plan_now.seeds, plan_now.key, plan_now.check))


def make_plan(cfg: ConfirmConfig, search: optuna.Study) -> Plan:
    """What `cfg` asks of `search`: the choices, the seeds, the protocol. Bad requests
    (trials that are not complete, nothing to check, a re-evaluation seed the search
    trained with) are one sentence (StudyError)."""
    refuse_unless_search(search)
    check = (VALIDATION if cfg.reevaluate else TEST).of(search)
    first = check.seeds[0] if cfg.first_seed is None else cfg.first_seed
    seeds = list(range(first, first + (cfg.seeds or len(check.seeds))))
    max_params = budget(search)
    numbers = list(cfg.trials) if cfg.trials else None
    if cfg.reevaluate and numbers is None:
        goal = Goal(max_params=cfg.goal_params if cfg.goal_params is not None
                    else search.user_attrs.get("goal", {}).get("max_params"))
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
                plan(choices, seeds))


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


def supervise(runs_study: optuna.Study, the_plan: Plan, job: ConfirmJob, on_event: Callable[[Event], None],
              poll_seconds: float = 1.0) -> None:
    """Train the plan's missing runs with `job.workers` processes, worker i of n taking
    missing runs i, i + n, ... A run that is interrupted, fails or loses its worker is
    stored FAIL with the reason, and no worker is replaced: a later command trains what is
    missing (studies of runs have no queue, so nothing is re-queued)."""
    n = job.workers
    seen = {t.number for t in runs_study.get_trials(deepcopy=False) if t.state.is_finished()}

    def tell(trials: list[FrozenTrial]) -> None:
        ours = the_plan.runs_of(trials)
        for t in ours:
            if t.state.is_finished() and t.number not in seen:
                seen.add(t.number)
                on_event(TrialFinished(t))
        on_event(Polled(ours, supervisor.ids))

    supervisor = Supervisor(runs_study, confirm_worker, tell, poll_seconds, retry=False)
    failed = []

    def on_exit(w: Worker, code: int) -> bool:
        if code != 0:
            failed.append(w)
        return GO_ON

    def start() -> None:
        for i in range(n):
            supervisor.start(i, dataclasses.replace(job, device=worker_device(job.device, i, gpus(job.device))),
                             the_plan.missing[i::n])

    supervisor.run(on_exit, start)
    if failed:
        mine = [t for t in runs_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                if t.user_attrs.get("worker") in supervisor.ids]
        reason = mine[-1].user_attrs.get("state_reason", "unknown") if mine else "see the worker's line above"
        raise SearchFailed(f"a confirmation run failed ({reason}); the finished runs are stored, and the "
                           "same command trains the missing ones.")


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


def plan(choices: list[Choice], seeds: list[int]) -> list[tuple[Choice, int]]:
    """Every run a confirmation asks for, in the order they are trained."""
    return [(choice, seed) for choice in choices for seed in seeds]


def missing(study: optuna.Study, choices: list[Choice], seeds: list[int], key: dict) -> list[tuple[Choice, int]]:
    """The runs of the plan that `study` holds no complete run of under protocol `key`."""
    return [(choice, seed) for choice, seed in plan(choices, seeds)
            if stored(study, choice.candidate, seed, key) is None]


def planned_runs(trials, choices: list[Choice], seeds: list[int], key: dict) -> list:
    """The trials among `trials` that are runs of the plan under protocol `key`."""
    wanted = {(choice.candidate, seed) for choice, seed in plan(choices, seeds)}
    out = []
    for t in trials:
        if not t.params:  # waiting with nothing asked yet (a confirm trial re-queued by fail-stale)
            continue
        cand = spaces.decode(t.params)
        if (cand, t.user_attrs.get("confirm_seed")) in wanted and is_run(t, cand, key):
            out.append(t)
    return out


def search_protocol(search: optuna.Study, engine: Recipe) -> tuple[Recipe, int | None]:
    """The recipe and training-set size a search trained with (its seed aside), on
    `engine`'s engine settings: what a re-evaluation must train with to compare with it."""
    fields = {f.name for f in dataclasses.fields(Recipe)}  # not "steps_scaled", nor keys of older versions
    stored = {k: v for k, v in search.user_attrs.get("recipe", {}).items() if k in fields}
    return Recipe(**{**engine.to_dict(), **stored}), search.user_attrs.get("train_size")


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


def table(verdicts_: list[Verdict], epochs: int, check: Check = TEST) -> str:
    if not check.is_test:
        return reeval_table(verdicts_, check)
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


def table_rows(verdicts_: list[Verdict], check: Check = TEST) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a check's verdicts, for the HTML report."""
    if not check.is_test:
        header = ["network", "params", "search run (selected on)", "score per new seed", "mean", "SE",
                  "test mean (reported)"]
        return header, [[v.choice.label, f"{v.params:,}", _search_run(v), " / ".join(f"{x:.2f}" for x in v.final),
                         f"{v.mean:.2f}", f"{standard_error(v):.2f}",
                         f"{statistics.fmean(v.test):.2f}" if v.test else "-"]
                        for v in sorted(verdicts_, key=lambda v: -v.mean)]
    header = ["network", "params", "final test per seed", "mean", "std", "min", f">= {TARGET_ACC:g} on every seed"]
    return header, [[v.choice.label, f"{v.params:,}", " / ".join(f"{x:.2f}" for x in v.final), f"{v.mean:.2f}",
                     f"{v.std:.2f}", f"{min(v.final):.2f}", "yes" if v.reaches_target else "no"]
                    for v in sorted(verdicts_, key=lambda v: v.params)]


def standard_error(v: Verdict) -> float:
    """Of the mean over seeds (seed-to-seed spread only: every run scores the same images)."""
    return v.std / math.sqrt(len(v.final)) if len(v.final) > 1 else float("nan")


def _search_run(v: Verdict) -> str:
    return "-" if v.choice.search_score is None else f"{v.choice.search_score:.2f}"


def reeval_table(verdicts_: list[Verdict], check: Check) -> str:
    """The leaders by their mean score over seeds, the leader named, and who it cannot
    be told from (within one standard error of the difference of the means)."""
    ranked = sorted(verdicts_, key=lambda v: -v.mean)
    header, rows = table_rows(ranked, check)  # the report's rows, in columns
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    lines = [f"Re-evaluation on validation ({check.metric} on the search's {check.val_size:,} held-out images):"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    if ranked:
        top = ranked[0]
        ties = [v.choice.label for v in ranked[1:]
                if top.mean - v.mean <= math.hypot(standard_error(top), standard_error(v))]
        lines.append(f"leader: {top.choice.label} ({top.mean:.2f}%)"
                     + (f"; within one standard error of it: {', '.join(ties)}" if ties else ""))
    return "\n".join(lines)


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
        choices = choose(search, None, budget(search))
        key = run_protocol(recipe, None)
    else:
        choices = []
        key = run_protocol(*search_protocol(search, recipe), check)
    choices = _with_stored(choices, study, search)
    # a confirmation is judged on its protocol's seeds; a re-evaluation on every seed it ran
    seeds = list(check.seeds) if check.is_test else None
    return verdicts(study, choices, seeds, key, check), choices


def stored_table(search: optuna.Study, storage, recipe: Recipe, check: Check = TEST) -> str | None:
    """The table of `stored_verdicts`; None when there is no such run."""
    found, choices = stored_verdicts(search, storage, recipe, check)
    if not found:
        return None
    unconfirmed = [c.label for c in choices if c.label not in {v.choice.label for v in found}]
    note = f"\nnot confirmed yet: {', '.join(unconfirmed)}" if unconfirmed else ""
    seconds = [s for v in found for s in v.seconds]
    low, high = round(min(seconds) / 60), round(max(seconds) / 60)
    cost = (f"\n{len(seconds)} runs took {sum(seconds) / 3600:.1f} process-hours, "
            + (f"about {low} min each" if low == high else f"{low} to {high} min each"))
    return table(found, recipe.epochs, check) + cost + note


def answer(confirmed: list[Verdict], reevaluated: list[Verdict], max_params: int, storage_flag: str = "") -> list[str]:
    """The report's first lines: the network to use within `max_params` (the leader of the
    re-evaluation on validation, a searched trial or a round, when it is confirmed, else the
    best searched network confirmed by test mean, which says so), the smallest that holds
    the target on every seed, and round3 and round1 under the same protocol."""
    full = [v for v in confirmed if len(v.final) >= len(PROTOCOL_SEEDS)]
    searched = [v for v in full if v.choice.baseline is None and v.params <= max_params]
    rounds = {v.choice.baseline: v for v in full if v.choice.baseline}
    seeds = ", ".join(map(str, PROTOCOL_SEEDS))
    within = sorted((v for v in reevaluated if v.params <= max_params), key=lambda v: -v.mean)
    leader = within[0] if within else None
    held = None if leader is None else next((v for v in full if _same(v.choice, leader.choice)), None)
    lines = []
    if leader is not None and held is None:
        lines.append(
            f"Leader of the re-evaluation on validation, at most {max_params:,} parameters: {leader.choice.label}, "
            f"{leader.params:,} parameters ({leader.mean:.2f}% over {len(leader.final)} new seeds); not confirmed on "
            f"test yet: drill-search confirm --trials {leader.choice.source_trial} --no-baselines{storage_flag}")
    elif leader is not None or searched:
        if leader is not None:
            best, chosen = held, leader.choice
            how = f"the leader of the re-evaluation on validation ({leader.mean:.2f}% over {len(leader.final)} new seeds)"
        else:
            best = max(searched, key=lambda v: v.mean)
            chosen = best.choice
            how = f"the best test mean of the {len(searched)} confirmed (a choice made on test)"
        lines.append(
            f"Network to use, at most {max_params:,} parameters: {chosen.label}, {best.params:,} parameters "
            f"({chosen.candidate.describe()}), {how}: {best.mean:.2f}% mean final-epoch test accuracy over "
            f"seeds {seeds} (min {min(best.final):.2f}), retrained on all {MNIST_TRAIN:,} training images. Its search run's "
            f"weights: drill-search export {chosen.source_trial}{storage_flag}")
    else:
        lines.append(f"No searched network of at most {max_params:,} parameters is confirmed on seeds {seeds} yet "
                     "(drill-search confirm).")
    holding = [v for v in full if v.reaches_target]
    if holding:
        small = min(holding, key=lambda v: v.params)
        lines.append(f"Smallest confirmed network at {TARGET_ACC:g}% or more on every seed: {small.choice.label}, "
                     f"{small.params:,} parameters (min {min(small.final):.2f}).")
    else:
        lines.append(f"No confirmed network holds {TARGET_ACC:g}% on every seed.")
    named = [f"{n} ({rounds[n].params:,} parameters) {rounds[n].mean:.2f}%" for n in ("round3", "round1") if n in rounds]
    if named:
        lines.append("The hand-designed rounds, same protocol: " + "; ".join(named) + ".")
    return lines


def _same(confirmed: Choice, leader: Choice) -> bool:
    """Whether a confirmation is of the re-evaluation's leader: the same trial, or for a
    round the same round (`confirm` confirms the rounds by default, by name, with no trial
    of the search when the round is off the front)."""
    return (confirmed.source_trial is not None and confirmed.source_trial == leader.source_trial) or \
        (leader.baseline is not None and confirmed.baseline == leader.baseline)


@dataclass(frozen=True)
class Summary:
    """What a search's companion studies add to its report (nothing is trained)."""

    answer: list[str]  # the sentences the report opens with
    tables: list[tuple[str, str, list[str], list[list[str]]]]  # (title, words, header, rows)
    spread: dict[int, tuple[float, float, int]]  # trial -> (mean, SE, runs) of its re-evaluated score
    text: str  # the same tables for the terminal


def summary(search: optuna.Study, storage, recipe: Recipe, storage_flag: str = "") -> Summary:
    confirmed, _ = stored_verdicts(search, storage, recipe)
    reevaluated, _ = stored_verdicts(search, storage, recipe, VALIDATION)
    goal = search.user_attrs.get("goal", {}).get("max_params")
    within = goal or budget(search)
    tables, text = [], []
    if reevaluated:
        check = VALIDATION.of(search)
        tables.append(("Re-evaluation on validation",
                       "The leaders trained again under the search's own protocol with more seeds "
                       "(drill-search reevaluate); the mean over the new seeds selects (the search run is shown, not averaged); "
                       "test is recorded, never used to choose.", *table_rows(reevaluated, check)))
        text.append(table(reevaluated, recipe.epochs, check))
    if confirmed:
        tables.append(("Confirmation on test",
                       f"Retrained on all {MNIST_TRAIN:,} training images, seeds "
                       f"{', '.join(map(str, PROTOCOL_SEEDS))} (drill-search confirm); "
                       "final-epoch test accuracy.", *table_rows(confirmed)))
        text.append(stored_table(search, storage, recipe) or "")
    spread = {v.choice.source_trial: (v.mean, standard_error(v), len(v.final))
              for v in reevaluated if v.choice.source_trial is not None and len(v.final) > 1}
    lines = answer(confirmed, reevaluated, within, storage_flag) if confirmed or reevaluated else []
    return Summary(lines, tables, spread, "\n\n".join(text))
