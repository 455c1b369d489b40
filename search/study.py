"""Studies: create or resume them, enqueue baselines, and run the workers that fill them.

Two kinds of study live in a storage:

- "baselines" (default name): `reproduce` records a hand-designed round trained with its
  own recipe (all 60,000 training images; objective 0 is final-epoch test accuracy).
- a search ("search" by default): `run_search` starts worker processes that run
  `Objective` trials until the study holds the requested number of finished trials.
  Objective 0 there is final-epoch validation accuracy; test accuracy is only recorded.

Both kinds record the protocol in the study's user attributes and refuse to mix in runs
made under another protocol.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

import spaces
from baselines import ROUNDS, Baseline

from . import __version__, record
from .config import Recipe, SearchConfig
from .data import Mnist, load_mnist, split_validation
from .model import build_model, count_params
from .objective import SCORE_EPOCHS, Objective, SearchData, TrialError, worker_id
from .prune import make_pruner
from .storage import artifact_store, is_sqlite, open_storage
from .train import EpochResult, TrainResult, train

BASELINE_STUDY = "baselines"
SCHEMA = 2  # bump when the meaning of stored attributes changes (2: objective 0 is the last-3 mean)
MAX_RETRY = 2  # a trial that failed (worker died, interrupted, error) runs again at most this often
MAX_ERRORS_IN_A_ROW = MAX_RETRY + 2  # a worker whose trials keep raising stops the search
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SAMPLERS = ("tpe", "random", "nsga2")


class StudyError(Exception):
    """A study cannot be used as asked; the message is one sentence for the user."""


class SearchFailed(StudyError):
    """The search stopped because training kept failing; finished trials are kept."""


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    directions: list[str],
    metric_names: list[str],
    attrs: dict,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study, or load it and check it was made under the same protocol.

    `attrs` are the study's identity (kind, schema, protocol, space fingerprint, ...); a
    study of that name made with other directions or other attrs is refused, not mixed.
    """
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names)
        for key, value in {"schema": SCHEMA, "drill_search_version": __version__, **attrs}.items():
            study.set_user_attr(key, value)
        return study
    check_study(study, directions, attrs)
    return study


def check_study(study: optuna.Study, directions: list[str], attrs: dict) -> None:
    name, have = study.study_name, study.user_attrs
    if have.get("schema") != SCHEMA:
        made = have.get("drill_search_version", "something other than drill-search")
        raise StudyError(
            f"the study {name!r} was written by {made} with storage schema {have.get('schema')}; "
            f"drill-search {__version__} reads schema {SCHEMA}: open it with that version or "
            "choose another --study-name."
        )
    want = [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for d in directions]
    if study.directions != want:
        raise StudyError(
            f"the study {name!r} already exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {directions}: choose another --study-name."
        )
    for key, value in attrs.items():
        if have.get(key) != value:
            raise StudyError(
                f"the study {name!r} was made with {key} = {have.get(key)!r}, not {value!r}: "
                "resume it with the options it was made with, or choose another --study-name."
            )


# --- baselines --------------------------------------------------------------------------

BASELINE_ATTRS = {
    "kind": "baselines",
    "protocol": "train on all 60,000 training images; objective 0 is final-epoch test accuracy",
}


def open_baselines(storage: optuna.storages.BaseStorage, name: str = BASELINE_STUDY) -> optuna.Study:
    return open_study(storage, name, ["maximize", "minimize"], ["test_acc", "params"], BASELINE_ATTRS)


def reproduce(
    baseline: Baseline,
    recipe: Recipe,
    data: Mnist,
    device: torch.device,
    study: optuna.Study,
    on_epoch: Callable[[EpochResult], None] | None = None,
    progress: bool = False,
    artifacts=None,
) -> TrainResult:
    """Train a hand-designed round with its own recipe as a trial of `study` (see
    `open_baselines`)."""
    return record_run(study, baseline.candidate, recipe, data, device, {"baseline": baseline.name},
                      on_epoch=on_epoch, progress=progress, artifacts=artifacts)


def record_run(
    study: optuna.Study,
    candidate: spaces.Candidate,
    recipe: Recipe,
    data: Mnist,
    device: torch.device,
    attrs: dict,
    on_epoch: Callable[[EpochResult], None] | None = None,
    progress: bool = False,
    artifacts=None,
) -> TrainResult:
    """Train `candidate` on all training images, testing every epoch, as one trial.

    Curves are recorded every epoch, the trained weights go to `artifacts` (an Optuna
    artifact store), and the trial ends COMPLETE with (final-epoch test accuracy,
    parameters), or FAIL with its reason if training is interrupted or fails.
    """
    study.enqueue_trial(spaces.encode(candidate), user_attrs=attrs)
    trial = study.ask()
    spaces.sample(trial)  # records the candidate's parameters on the trial
    n_params = count_params(build_model(candidate.arch))
    info = {
        "arch": candidate.arch.describe(),
        "params": n_params,
        "seed": recipe.seed,
        "worker": worker_id(),
        **record.provenance(recipe.to_dict(), str(device)),
    }
    for key, value in info.items():
        trial.set_user_attr(key, value)
    history: list[EpochResult] = []

    def keep(e: EpochResult) -> None:
        history.append(e)
        for key, value in record.curves(history).items():
            trial.set_user_attr(key, value)
        if on_epoch is not None:
            on_epoch(e)

    start = time.time()
    try:
        result = train(candidate, recipe, data.train, {"test": data.test}, device, on_epoch=keep, progress=progress)
        if artifacts is not None:
            record.save_weights(trial, result.model, artifacts)
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
        trial.set_user_attr("state_reason", reason)
        trial.set_user_attr("seconds", round(time.time() - start, 3))
        study.tell(trial, state=TrialState.FAIL)
        raise
    trial.set_user_attr("state_reason", "complete")
    trial.set_user_attr("seconds", round(result.seconds, 3))
    study.tell(trial, [history[-1].evals["test"].acc, n_params])
    return result


# --- search -----------------------------------------------------------------------------


def search_identity(cfg: SearchConfig) -> dict:
    """What makes two runs comparable: a study refuses runs that differ in any of these."""
    return {
        "kind": "search",
        "protocol": (
            f"train on {'all' if cfg.data.train_size is None else cfg.data.train_size} of the "
            f"training images left after holding out {cfg.data.val_size:,} (seed "
            f"{cfg.data.val_seed}); objective 0 is the mean validation accuracy of the last "
            f"{SCORE_EPOCHS} epochs; test accuracy is recorded, never used to select or prune"
        ),
        "space": spaces.fingerprint(),
        "val_size": cfg.data.val_size,
        "val_seed": cfg.data.val_seed,
        "train_size": cfg.data.train_size,
        "max_params": cfg.max_params,
        "recipe": {k: v for k, v in cfg.recipe.protocol().items() if k != "seed"},
    }


def make_sampler(name: str, seed: int | None, workers: int = 1) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # group=True: c5 exists only with block5, and multivariate TPE needs groups
            # for such conditional spaces. constant_liar keeps parallel workers apart.
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=workers > 1, n_startup_trials=10
            )
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")


def open_search(cfg: SearchConfig, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    storage = open_storage(cfg.storage, on_stale=requeue)
    return open_study(storage, cfg.study_name, ["maximize", "minimize"], [f"val_acc_last{SCORE_EPOCHS}", "params"],
                      search_identity(cfg), sampler=sampler)


def enqueue_baselines(study: optuna.Study, max_params: int) -> list[str]:
    """Queue the rounds that fit the budget, once; returns the names queued now or before."""
    names = []
    for b in ROUNDS.values():
        if count_params(build_model(b.candidate.arch)) <= max_params:
            study.enqueue_trial(spaces.encode(b.candidate), user_attrs={"baseline": b.name}, skip_if_exists=True)
            names.append(b.name)
    return names


def counts(study: optuna.Study) -> dict[str, int]:
    c = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        c[t.state.name.lower()] += 1
    return c


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Run a failed trial's parameters again (at most MAX_RETRY times per candidate).

    This is the heartbeat callback of RDB storages and what the supervisor calls for a
    worker that died or was interrupted mid-trial. The copy keeps the baseline name.
    """
    retries = trial.user_attrs.get("retries", 0)
    if retries >= MAX_RETRY or not trial.params:
        return
    keep = {k: trial.user_attrs[k] for k in ("baseline",) if k in trial.user_attrs}
    study.enqueue_trial(trial.params, user_attrs={**keep, "retry_of": trial.number, "retries": retries + 1})


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `reason` and re-queue it; False if it had finished."""
    storage = study._storage  # noqa: SLF001 - Optuna exposes no public per-trial state setter
    try:
        storage.set_trial_user_attr(trial._trial_id, "state_reason", reason)  # noqa: SLF001
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):  # noqa: SLF001
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue(study, study._storage.get_trial(trial._trial_id))  # noqa: SLF001
    return True


def fail_dead_workers(study: optuna.Study, host: str | None = None) -> list[int]:
    """Fail and re-queue RUNNING trials whose worker process on this host is gone.

    Journal storages have no heartbeat, so this is how their stale trials end: the
    supervisor calls it when a worker exits abnormally and before every run, and
    `drill-search fail-stale` calls it by hand. Returns the trial numbers it failed.
    """
    host = host or socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        name, _, pid = worker.rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            if fail_trial(study, t, f"worker {worker} died"):
                failed.append(t.number)
    return failed


def fail_silent(study: optuna.Study, older_than: float) -> list[int]:
    """Fail and re-queue RUNNING trials that recorded no progress for `older_than` seconds
    (their last epoch, else their start), wherever their worker ran."""
    now = time.time()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.user_attrs.get("updated_at") or (t.datetime_start.timestamp() if t.datetime_start else now)
        if now - last > older_than and fail_trial(study, t, f"no progress for {now - last:.0f} s"):
            failed.append(t.number)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def todo(study: optuna.Study, total: int) -> int:
    """Trials still to start: the total minus those finished or running now."""
    c = counts(study)
    return max(0, total - c["complete"] - c["pruned"] - c["running"])


def load_search_data(cfg: SearchConfig, device: torch.device) -> SearchData:
    mnist = load_mnist(cfg.data.root, download=cfg.data.download)
    train_split, val = split_validation(mnist.train, cfg.data.val_size, cfg.data.val_seed)
    if cfg.data.train_size is not None:
        train_split = train_split.take(slice(0, cfg.data.train_size))
    return SearchData(train_split.to(device), val.to(device), mnist.test.to(device))


def sampler_seed(seed: int | None, index: int, n_trials: int) -> int | None:
    """The sampler seed of worker `index` starting on a study that holds `n_trials` trials.

    A fresh seeded study is reproducible (same seed, same start), while a resumed study or
    a respawned worker starts where the study has grown, so it draws new candidates
    instead of replaying the stream that produced the trials already stored.
    """
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, index, n_trials]).generate_state(1)[0])


def run_worker(
    cfg: SearchConfig,
    quota: int,
    index: int = 0,
    data: SearchData | None = None,
    callbacks: list | None = None,
    progress: bool = False,
) -> None:
    """Run up to `quota` trials in this process, stopping early once the study is full."""
    device = torch.device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.workers))
    study = open_search(cfg)
    study.sampler = make_sampler(cfg.sampler, sampler_seed(cfg.seed, index, len(study.get_trials(deepcopy=False))),
                                 cfg.workers)
    data = data or load_search_data(cfg, device)
    objective = Objective(data, cfg.recipe, cfg.max_params, make_pruner(cfg.pruner, cfg.prune_warmup),
                          device, progress=progress, artifacts=artifact_store(cfg.storage))
    stop = optuna.study.MaxTrialsCallback(cfg.trials, states=(*FINISHED, TrialState.RUNNING))
    errors = ErrorCallback()
    # Failed trials are reported by the supervisor, with their reasons; Optuna would print
    # a traceback for each.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        # quota + retries: failed trials do not count toward the total, so they do not
        # use up the worker's share either (MaxTrialsCallback and `errors` stop it).
        study.optimize(objective, n_trials=quota + MAX_ERRORS_IN_A_ROW * (quota + 1), timeout=cfg.timeout,
                       callbacks=[stop, errors, *(callbacks or [])], catch=(TrialError,),
                       gc_after_trial=False)
    except KeyboardInterrupt:
        me = worker_id()
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.user_attrs.get("worker") == me and t.user_attrs.get("state_reason") == "interrupted":
                if not any(o.user_attrs.get("retry_of") == t.number for o in study.get_trials(deepcopy=False)):
                    requeue(study, t)
        raise
    if errors.gave_up:
        raise TrialError(errors.gave_up)


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


def _worker_main(cfg: SearchConfig, quota: int, index: int) -> None:
    """Entry point of a worker process: SIGINT/SIGTERM close the running trial once."""

    def interrupt_once(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt_once)
    signal.signal(signal.SIGTERM, interrupt_once)
    try:
        run_worker(cfg, quota, index)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except TrialError as e:
        print(f"drill-search worker {index}: {e}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_GAVE_UP) from None


def check_workers(cfg: SearchConfig) -> None:
    if cfg.workers > 1 and is_sqlite(cfg.storage):
        raise StudyError(
            f"SQLite is not safe for {cfg.workers} concurrent workers (\"database is locked\", no row "
            "locks): use --storage studies/search.journal on one machine, or a postgresql:// URL."
        )


@dataclasses.dataclass
class _Worker:
    index: int
    quota: int
    process: mp.process.BaseProcess

    @property
    def id(self) -> str:
        return f"{socket.gethostname()}:{self.process.pid}"


def run_search(
    cfg: SearchConfig,
    on_trial: Callable[[FrozenTrial], None] | None = None,
    poll_seconds: float = 1.0,
    max_deaths: int | None = None,
    on_poll: Callable[[list[FrozenTrial]], None] | None = None,
) -> optuna.Study:
    """Fill the study to `cfg.trials` finished trials with `cfg.workers` processes.

    Workers are separate processes (real concurrency; no GIL). The supervisor polls the
    storage and calls `on_trial` once for every trial that finishes, whoever ran it, and
    `on_poll` with all the study's trials on every poll (live progress). A
    worker that dies has its running trial failed and re-queued at once, and is replaced
    with one that runs the rest of its share.
    """
    check_workers(cfg)
    study = open_search(cfg)
    if cfg.with_baselines:
        enqueue_baselines(study, cfg.max_params)
    fail_dead_workers(study)
    seen = {t.number for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL))}
    left = todo(study, cfg.trials)
    shares = [left // cfg.workers + (1 if i < left % cfg.workers else 0) for i in range(cfg.workers)]
    ctx = mp.get_context("spawn")
    workers: list[_Worker] = []
    deaths, max_deaths = 0, max_deaths if max_deaths is not None else 3 * cfg.workers
    gave_up = 0

    def spawn(index: int, quota: int) -> None:
        p = ctx.Process(target=_worker_main, args=(cfg, quota, index), daemon=False)
        p.start()
        workers.append(_Worker(index, quota, p))

    def report() -> None:
        trials = study.get_trials(deepcopy=False)
        for t in trials:
            if t.state in (*FINISHED, TrialState.FAIL) and t.number not in seen:
                seen.add(t.number)
                if on_trial is not None:
                    on_trial(t)
        if on_poll is not None:
            on_poll(trials)

    def share_done(w: _Worker) -> int:
        return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if t.user_attrs.get("worker") == w.id)

    for i, quota in enumerate(shares):
        if quota:
            spawn(i, quota)
    try:
        while workers:
            time.sleep(poll_seconds)
            report()
            for w in list(workers):
                if w.process.is_alive():
                    continue
                w.process.join()
                workers.remove(w)
                if w.process.exitcode == 0:
                    continue
                if w.process.exitcode == 130:  # interrupted
                    raise KeyboardInterrupt
                if w.process.exitcode == EXIT_GAVE_UP:
                    gave_up += 1
                    continue
                deaths += 1
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if t.user_attrs.get("worker") == w.id:
                        fail_trial(study, t, f"worker {w.id} died (exit code {w.process.exitcode})")
                rest = w.quota - share_done(w)
                if rest > 0 and deaths <= max_deaths:
                    spawn(w.index, rest)
        report()
    except KeyboardInterrupt:
        for w in workers:
            if w.process.is_alive():
                os.kill(w.process.pid, signal.SIGINT)
        for w in workers:
            w.process.join(timeout=60)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
        fail_dead_workers(study)
        report()
        raise
    if gave_up:
        last = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                if t.user_attrs.get("state_reason", "").startswith("error")]
        raise SearchFailed(
            f"training kept failing with errors ({len(last)} failed trials, the last: "
            f"{last[-1].user_attrs['state_reason'] if last else 'unknown'}); finished trials are kept."
        )
    if deaths > max_deaths:
        raise StudyError(f"workers died {deaths} times; the study keeps every finished trial, but look at the logs above.")
    return study
