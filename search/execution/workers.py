"""Worker processes, and how many of them the machine serves well.

A search worker (`search_worker`, in its own process; `run_worker` does its work) asks
Optuna for trials and runs `Objective` on them until the study holds the requested number
of finished trials; `search.study.run_search` starts and replaces them. A trial that
fails (its worker died, it was interrupted, training raised) is re-queued at most
MAX_RETRY times and never counts as finished.

A confirmation worker (`confirm_worker`) trains the runs it is handed
(`search.execution.runs.train`); `search.confirm` plans them and starts the workers.
How many workers, on which device, with how many threads: `hardware`.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

import spaces

from .. import optuna_private
from ..config import EXIT_INTERRUPTED, MAX_RETRY, Recipe, SearchConfig
from ..engine.data import load_mnist, split_validation
from ..strategy.promote import Promotion
from ..strategy.prune import make_pruner
from ..strategy.sampler import ForwardingSampler, make_sampler
from .hardware import use_cores
from .counts import StopAtTotal, counted, todo
from .identity import resume_search
from .liveness import requeue, worker_id
from .objective import Objective, SearchData, TrialError
from .runs import TEST, Check, Run, train as train_runs
from .storage import artifact_store, open_storage
from .supervisor import interrupt_once

MAX_ERRORS_IN_A_ROW = MAX_RETRY + 2  # a worker whose trials keep raising stops the search


def load_search_data(cfg: SearchConfig, device: torch.device) -> SearchData:
    mnist = load_mnist(cfg.data.root, download=cfg.data.download)
    train_split, val = split_validation(mnist.train, cfg.data.val_size, cfg.data.val_seed)
    if cfg.data.train_size is not None:
        train_split = train_split.take(slice(0, cfg.data.train_size))
    return SearchData(train_split.to(device), val.to(device), mnist.test.to(device))


def sampler_seed(seed: int | None, index: int, trials: list[FrozenTrial]) -> int | None:
    """The sampler seed of worker `index` starting on a study that holds `trials`.

    A fresh seeded study is reproducible (same seed, same start), while a resumed study or
    a respawned worker starts where the study has grown, so it draws new candidates
    instead of replaying the stream that produced the trials already stored. The trials
    running then count too: a second command joining a running search (README: the same
    command on another core or machine) has worker index 0 like the first, and would
    otherwise draw the very candidates the first is drawing.
    """
    if seed is None:
        return None
    running = [t.number + 1 for t in trials if t.state == TrialState.RUNNING]  # + 1: a trailing 0 adds no entropy
    return int(np.random.SeedSequence([seed, index, len(trials), *running]).generate_state(1)[0])


def run_worker(
    cfg: SearchConfig,
    index: int = 0,
    data: SearchData | None = None,
    callbacks: list | None = None,
    progress: bool = False,
) -> None:
    """Run trials in this process until the study holds `cfg.trials` finished or running
    trials (failed ones do not count), the timeout passes, or training keeps failing."""
    device = torch.device(cfg.device)
    use_cores(device, cfg.workers)
    study, cfg = resume_search(cfg, on_stale=requeue)
    if todo(study, cfg.trials) == 0:
        return
    space = spaces.by_name(cfg.space)
    sampler = make_sampler(cfg.sampler, sampler_seed(cfg.seed, index, study.get_trials(deepcopy=False)),
                           cfg.workers, cfg.goal, space=space, max_params=cfg.max_params)
    study.sampler = WithinTotal(sampler, cfg.trials)
    data = data or load_search_data(cfg, device)
    pruner = make_pruner(cfg.pruner, cfg.prune_warmup, cfg.recipe.epochs, cfg.data.val_size)
    promotion = Promotion(cfg.eta, val_size=cfg.data.val_size) if cfg.promotes else None
    objective = Objective(data, cfg.recipe, cfg.max_params, pruner, device, progress=progress,
                          artifacts=artifact_store(cfg.storage), promotion=promotion,
                          rung_epochs=cfg.rung_epochs, goal=cfg.goal, space=space)
    stop = StopAtTotal(cfg.trials)
    errors = ErrorCallback()
    # Failed trials are reported by the supervisor, with their reasons; Optuna would print
    # a traceback for each.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        _optimize(study, objective, cfg, [stop, errors, *(callbacks or [])])
    except KeyboardInterrupt:
        me = worker_id()
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.user_attrs.get("worker") == me and t.user_attrs.get("state_reason") == "interrupted":
                if not any(o.user_attrs.get("retry_of") == t.number for o in study.get_trials(deepcopy=False)):
                    requeue(study, t)
        raise
    if errors.gave_up:
        raise TrialError(errors.gave_up)


def _optimize(study: optuna.Study, objective: Objective, cfg: SearchConfig, callbacks: list) -> None:
    """`study.optimize` until the stop rule, the deadline or the error callback ends it,
    going on past a trial that another process ended under this worker (`fail-stale
    --older-than` on another machine, an RDB heartbeat that judged it silent): Optuna
    cannot close such a trial (its `tell` raises ValueError), so optimize starts again."""
    watched = _EndedElsewhere(objective)
    while todo(study, cfg.trials) > 0:
        now = time.time()
        if cfg.past_deadline(now):
            return
        left = None if cfg.deadline is None else cfg.deadline - now
        try:
            study.optimize(watched, n_trials=None, timeout=left, callbacks=callbacks, catch=(TrialError,),
                           gc_after_trial=False)
            return
        except TotalReached:
            return
        except ValueError:
            if watched.ended is None:
                raise
            watched.ended = None  # its FAIL and its reason are the other process's, the retry queued by it


class TotalReached(Exception):
    """The trial just asked for is beyond the study's total; it went back to the queue."""


class WithinTotal(ForwardingSampler):
    """`inner`, refusing a trial that would take the study past `total` finished or running
    trials: it goes back to the queue (WAITING) untouched and the worker stops.

    The stop rule (`StopAtTotal`) counts the study after a trial and the next `ask`
    creates one, so two workers that count before either asks both see room for one more.
    A new trial's number orders it after every trial created before it, so the one whose
    earlier trials already fill the total is the one too many. A sampler, because its
    `before_trial` is the only call of ours Optuna makes between creating a trial and the
    objective: a trial the objective ends must be told, and then counts.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler, total: int) -> None:
        super().__init__(inner)
        self.total = total

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if counted(study, running=True, below=trial.number) >= self.total:
            # RUNNING -> WAITING, marked so that counts do not show it as work left (a resume
            # takes it like any other).
            optuna_private.back_to_queue(study, trial, "beyond_total")
            raise TotalReached(f"trial {trial.number} is beyond the {self.total} trials asked for")
        super().before_trial(study, trial)


class _EndedElsewhere:
    """The objective, noting the trial (`ended`) that another process finished while it ran.

    Only Optuna's `tell`, after the objective, finishes this worker's trials; a trial
    finished before it was ended elsewhere, and every write to it since has raised."""

    def __init__(self, objective: Objective) -> None:
        self.objective, self.ended = objective, None

    def __call__(self, trial: optuna.Trial) -> tuple[float, int]:
        # Not on KeyboardInterrupt: a stop reads nothing more from the storage on its way out.
        try:
            values = self.objective(trial)
        except Exception:
            self._note(trial)
            raise
        self._note(trial)
        return values

    def _note(self, trial: optuna.Trial) -> None:
        # The storage's state, not the trial object's.
        if optuna_private.stored_state(trial).is_finished():
            self.ended = trial.number


class ErrorCallback:
    """After each trial: re-queue a trial that failed with an error (up to MAX_RETRY), and
    stop the worker when MAX_ERRORS_IN_A_ROW trials in a row failed with errors."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.gave_up: str | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reason = trial.user_attrs.get("state_reason", "")
        if trial.state != TrialState.FAIL or not reason.startswith("error"):
            self.in_a_row = 0
            return
        requeue(study, trial)
        self.in_a_row += 1
        if self.in_a_row >= MAX_ERRORS_IN_A_ROW:
            self.gave_up = f"{self.in_a_row} trials in a row failed with an error (the last, trial {trial.number}: {reason})"
            study.stop()


EXIT_GAVE_UP = 3  # a worker's trials kept failing with errors


def search_worker(cfg: SearchConfig, index: int) -> None:
    """Entry point of a search worker process: SIGINT/SIGTERM close the running trial once."""
    interrupt_once(signal.SIGINT, signal.SIGTERM)
    try:
        run_worker(cfg, index)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except TrialError:  # the supervisor says why, from the failed trials in storage
        raise SystemExit(EXIT_GAVE_UP) from None


# --- confirmation workers ---------------------------------------------------------------

EXIT_RUN_FAILED = 4  # a confirmation worker's run (or its setup) raised


@dataclasses.dataclass(frozen=True)
class ConfirmJob:
    """What every confirmation worker needs, as plain values (sent to spawned processes)."""

    recipe: Recipe
    data_root: str
    device: str
    storage: str  # an Optuna storage URL or journal path
    study_name: str  # the study of runs
    train_size: int | None
    workers: int  # how many share the cores
    check: Check = TEST


def confirm_worker(job: ConfirmJob, todo_runs: list[Run]) -> None:
    """Entry point of a confirmation worker: trains `todo_runs`, its part of the plan."""
    interrupt_once(signal.SIGINT, signal.SIGTERM)
    try:
        device = torch.device(job.device)
        use_cores(device, job.workers)
        train_runs(todo_runs, job.recipe, load_mnist(job.data_root).to(device), device, open_storage(job.storage),
                    job.study_name, job.check, artifacts=artifact_store(job.storage), train_size=job.train_size)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as e:  # noqa: BLE001 - a run that raised is stored FAIL with its reason
        print(f"drill-search confirm worker: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_RUN_FAILED) from None
