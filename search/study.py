"""The search use case.

`search(cfg, on_event)` is `drill-search run --trials N`: it checks what the run needs
before any worker starts, fills the study to `cfg.trials` finished trials with worker
processes (`run_search`: the restart and end-of-run policy), and attaches the report's
figures to the study for the dashboard. It reports what happens as events (`Started`,
`TrialFinished`, `Polled`, `Ended`); the CLI prints them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

import spaces
from baselines import BASELINES

from .config import RUN_CHOICES, SearchConfig
from .engine.data import ensure_mnist
from .execution.hardware import check_workers
from .execution.counts import counted, todo
from .execution.choices import changes, record_choices
from .execution.identity import SearchFailed, StudyError, kept, open_search, resume_search
from .execution.liveness import awaits_claim, fail_dead_workers, fail_trial, requeue
from .execution.supervisor import GO_ON, STOP, Polled, Supervisor, TrialFinished, Worker, reporter
from .execution.workers import EXIT_GAVE_UP, search_worker
from .results import document


@dataclass(frozen=True)
class Started:
    """The search is about to start workers: `done` trials finished before, `left` to
    start, under `cfg` (the choices no flag made are the study's own); `changed`: what
    the flags change of the study's goal and sampler, in words."""

    study: optuna.Study
    cfg: SearchConfig
    done: int
    left: int
    changed: list[str]


@dataclass(frozen=True)
class Ended:
    """The workers have stopped (all trials done, or a clean stop after Ctrl-C or
    SIGTERM); the report's figures are attached next."""

    study: optuna.Study
    interrupted: bool


SearchEvent = Started | TrialFinished | Polled | Ended


@dataclass(frozen=True)
class SearchOutcome:
    study: optuna.Study
    interrupted: bool  # Ctrl-C or SIGTERM stopped it cleanly; the same command resumes
    finished: int  # trials that count towards the total (`counts.counted`)
    stopped_short: bool  # its --timeout stopped it before the study held its total


def search(cfg: SearchConfig, on_event: Callable[[SearchEvent], None] = lambda e: None) -> SearchOutcome:
    """`drill-search run --trials N` (see the module): refuse what cannot run before any
    worker starts, fill the study, and attach the report's figures, interrupted or not."""
    check_workers(cfg.storage, cfg.workers)
    ensure_mnist(cfg.data.root, download=cfg.data.download)
    study, cfg = resume_search(cfg, on_stale=requeue)
    left, changed = todo(study, cfg.trials), changes(cfg, study)
    if left:
        record_choices(study, cfg)
    else:  # a run that trains nothing changes nothing: the study's own goal and sampler
        cfg, changed = kept(dataclasses.replace(cfg, defaulted=RUN_CHOICES), study), []
    on_event(Started(study, cfg, counted(study), left, changed))
    interrupted = False
    try:
        study = run_search(cfg, on_event=on_event, study=study)
    except KeyboardInterrupt:
        interrupted = True
    on_event(Ended(study, interrupted))
    document.attach(study, document.figures(study))  # the dashboard shows the report's figures too
    done = counted(study)
    return SearchOutcome(study, interrupted, done, not interrupted and cfg.past_deadline(time.time()) and done < cfg.trials)


def run_search(
    cfg: SearchConfig,
    on_event: Callable[[SearchEvent], None] = lambda e: None,
    poll_seconds: float = 1.0,
    max_deaths: int | None = None,
    study: optuna.Study | None = None,
) -> optuna.Study:
    """Fill the study to `cfg.trials` finished trials with `cfg.workers` processes: `study`,
    as `search` opened it once its checks passed, or opened here after the same checks
    when this is called alone (benchmarks, tests).

    Workers are separate processes (real concurrency; no GIL). The supervisor polls the
    storage and reports `TrialFinished` once for every trial that finishes, whoever ran it,
    and `Polled` with all the study's trials on every poll (live progress). A worker that
    dies has its running trial failed and re-queued at once, and is replaced while the
    study still needs trials. A worker whose trials keep failing with errors stops the
    whole search (SearchFailed). A search that ends short of its total says why.
    """
    if study is None:
        check_workers(cfg.storage, cfg.workers)
        study = open_search(cfg, on_stale=requeue)
    if cfg.with_baselines:
        enqueue_baselines(study, cfg.goal.max_params or cfg.max_params)
    fail_dead_workers(study)
    deaths, max_deaths = 0, max_deaths if max_deaths is not None else 3 * cfg.workers
    gave_up = False
    supervisor = Supervisor(study, search_worker, reporter(study, on_event), poll_seconds)

    def spawn(index: int) -> None:
        if cfg.past_deadline(time.time()):
            return  # start nothing
        supervisor.start_on_its_device(index, cfg, index)

    def on_exit(w: Worker, code: int) -> bool:
        nonlocal deaths, gave_up
        if code == 0:
            return GO_ON
        if code == EXIT_GAVE_UP:
            gave_up = True
            return STOP
        deaths += 1
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker") == w.id:
                fail_trial(study, t, f"worker {w.id} died (exit code {code})")
        if todo(study, cfg.trials) > 0 and deaths <= max_deaths:
            spawn(w.index)
        return GO_ON

    def start() -> None:
        for i in range(min(cfg.workers, todo(study, cfg.trials))):
            spawn(i)

    supervisor.run(on_exit, start)
    # Workers stop when the study holds enough finished or running trials, and a trial no
    # worker claimed (its process stopped between Optuna's ask and the objective's first
    # write) counts as running until a sweep fails and re-queues it: another round runs
    # what that left, rather than end short.
    while not gave_up and deaths <= max_deaths and not cfg.past_deadline(time.time()):
        await_claims(study, poll_seconds)
        before = counted(study)
        if todo(study, cfg.trials) == 0:
            break
        supervisor.run(on_exit, start)
        if counted(study) == before:
            break  # a round that finished nothing: the message below, not another round
    if gave_up:
        last = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                if t.user_attrs.get("state_reason", "").startswith("error")]
        raise SearchFailed(
            f"training kept failing with errors ({len(last)} failed trials, the last: "
            f"{last[-1].user_attrs['state_reason'] if last else 'unknown'}); finished trials are kept."
        )
    if deaths > max_deaths:
        raise StudyError(f"workers died {deaths} times; the study keeps every finished trial, but look at the logs above.")
    # Trials still RUNNING now are other commands' (this one's workers have stopped and the
    # trials of dead ones are failed): they are not this command's work left, and the
    # summary says where they run. Failing on them broke README's several machines
    # (`run ... && drill-search report`).
    if cfg.deadline is None and todo(study, cfg.trials) > 0:
        raise StudyError(f"the workers stopped with {counted(study)} of {cfg.trials} finished trials; run this "
                         "command again to go on, and look at the failed trials above.")
    return study


def await_claims(study: optuna.Study, poll_seconds: float) -> None:
    """Wait until every RUNNING trial names its worker or has had GRACE_SECONDS to, then
    fail and re-queue those nobody claimed and those whose worker died."""
    while any(awaits_claim(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))):
        time.sleep(poll_seconds)
    fail_dead_workers(study)


def enqueue_baselines(study: optuna.Study, max_params: int) -> list[str]:
    """Queue the baselines within `max_params` (the goal's parameters when there is one, so
    that a goal-aimed search spends no trial on a reference over it) that are points of
    the study's space (the rounds in either space, the published design in the stages'),
    once; returns the names queued now or before."""
    space, names = spaces.of_study(study.user_attrs), []
    for b in BASELINES.values():
        if b.candidate.arch.params <= max_params and spaces.holds(space, b.candidate):
            study.enqueue_trial(space.encode(b.candidate), user_attrs={"baseline": b.name}, skip_if_exists=True)
            names.append(b.name)
    return names

