"""Liveness: who runs a trial, whether that process is still alive, and what becomes of a
trial whose worker is gone (failed, and re-queued a bounded number of times).

A worker is named host:pid:start-time, so a pid reused after a restart does not make a
dead worker's trial look alive. Journal storages have no heartbeat, so this is how their
stale trials end: a search fails the trial of a worker that exited abnormally at once
(`fail_trial`), the supervisor calls `fail_dead_workers` before every run, when it stops
and at the end, and `drill-search fail-stale` calls it by hand. On RDB storages
Optuna's heartbeat calls `requeue` for trials whose worker stopped beating.

Not Optuna's RetryFailedTrialCallback: it is deprecated since Optuna 4.9, and it knows no
interruption by the user (which costs no retry here).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import optuna_private
from ..config import MAX_RETRY, StaleConfig
from .identity import load
from .storage import GRACE_SECONDS, open_existing


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown.

    With the pid it names one process: a pid reused after a restart has another start."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_id(pid: int | None = None) -> str:
    """host:pid:start of a process (this one by default); host:pid where /proc is missing."""
    pid = os.getpid() if pid is None else pid
    start = process_start(pid)
    return f"{socket.gethostname()}:{pid}" + (f":{start}" if start else "")


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Run a failed trial's parameters again (at most MAX_RETRY times per candidate for
    errors and dead workers; an interruption by the user is always re-queued).

    This is the heartbeat callback of RDB storages and what the supervisor calls for a
    worker that died or was interrupted mid-trial. The copy keeps the baseline name.
    """
    retries = trial.user_attrs.get("retries", 0)
    if trial.user_attrs.get("state_reason") != "interrupted":  # a stop by the user costs no retry
        retries += 1
    # A trial stopped before it sampled anything has no params yet; if it was enqueued,
    # Optuna keeps the parameters it was to run with as "fixed_params".
    params = trial.params or trial.system_attrs.get("fixed_params")
    if retries > MAX_RETRY or not params:
        return
    # The baseline name, and a promotion decided already with the rung it was decided on
    # (search.strategy.promote: a candidate is promoted once; its retry does not train the rung again).
    keep = {k: v for k, v in trial.user_attrs.items()
            if k in ("baseline", "promoted", "promotion") or (k.startswith("rung_") and "promoted" in trial.user_attrs)}
    if "promoted" in trial.user_attrs:
        keep["rung_inherited"] = True  # the copy does not train the rung: its cost is the original's
    study.enqueue_trial(params, user_attrs={**keep, "retry_of": trial.number, "retries": retries})


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str, retry: bool = True) -> bool:
    """Mark a RUNNING trial FAIL with `reason` and re-queue it (unless `retry` is False);
    False if it had finished.

    Not `study.tell(n, state=FAIL, skip_if_finished=True)`: it returns the finished trial
    whoever finished it, so two processes failing the same trial (a supervisor and
    `fail-stale`, or Optuna's heartbeat) would both re-queue it, and it raises when the
    trial finishes between its read and its write. The storage's own state change
    succeeds exactly once, which is what decides who re-queues.
    """
    failed = optuna_private.fail_once(study, trial, reason)
    if failed is None:
        return False
    if retry:
        requeue(study, failed)
    return True


def fail_dead_workers(study: optuna.Study, host: str | None = None, retry: bool = True) -> list[int]:
    """Fail and re-queue (unless `retry` is False) RUNNING trials whose worker process on
    this host is gone, and those no worker claimed (named) within GRACE_SECONDS.

    Journal storages have no heartbeat, so this is how their stale trials end: the
    supervisor calls it when a worker exits abnormally and before every run, and
    `drill-search fail-stale` calls it by hand. Returns the trial numbers it failed.
    """
    host = host or socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = gone(t, host)
        if reason is not None and fail_trial(study, t, reason, retry):
            failed.append(t.number)
    return failed


def gone(t: FrozenTrial, host: str | None = None) -> str | None:
    """Why no worker will ever finish the RUNNING trial `t` (its worker on `host`, this
    one by default, died; no worker claimed it within GRACE_SECONDS), or None: its worker
    lives, or runs on another machine, where only its silence can be judged."""
    worker = t.user_attrs.get("worker", "")
    if worker:
        return f"worker {worker} died" if is_dead(worker, host or socket.gethostname()) else None
    return f"no worker claimed it within {GRACE_SECONDS} s" if _unclaimed(t) else None


def where(worker: str) -> str:
    """host:pid of a worker named host:pid[:start] (the start time tells no one anything)."""
    return ":".join(worker.split(":")[:2])


def awaits_claim(t: FrozenTrial) -> bool:
    """A RUNNING trial that names no worker yet, within GRACE_SECONDS of its start: its
    worker may be between Optuna's `ask` and its first write, or gone."""
    # no start time: no grace ever ends for it, so nothing waits on it either
    return not t.user_attrs.get("worker") and t.datetime_start is not None and not _unclaimed(t)


def _unclaimed(t: FrozenTrial) -> bool:
    """A RUNNING trial that names no worker long after it started: its process stopped
    between Optuna's `ask` and the objective's first write (which names the worker at
    once), so nobody will ever finish it."""
    return t.datetime_start is not None and time.time() - t.datetime_start.timestamp() > GRACE_SECONDS


def is_dead(worker: str, host: str) -> bool:
    """True when `worker` (host:pid[:start]) ran on `host` and that process is gone: no
    such pid, a zombie, or a pid now held by a process that started at another time."""
    name, _, rest = worker.partition(":")
    pid, _, start = rest.partition(":")
    if name != host or not pid.isdigit():
        return False  # another machine's worker: only --older-than can judge it
    if not _alive(int(pid)):
        return True
    return bool(start) and process_start(int(pid)) not in (None, start)


def fail_silent(study: optuna.Study, older_than: float, host: str | None = None, retry: bool = True) -> list[int]:
    """Fail and re-queue RUNNING trials that recorded no progress for `older_than` seconds
    (their last epoch, else their start), wherever their worker ran, unless that worker is
    a live process on this host: there silence is a long epoch, and failing the trial
    would end it under a worker that goes on writing to it."""
    host = host or socket.gethostname()
    now = time.time()
    failed = []
    for t in silent(study, older_than):
        if lives_here(t.user_attrs.get("worker", ""), host):
            continue
        if fail_trial(study, t, f"no progress for {now - _last_progress(t, now):.0f} s", retry=retry):
            failed.append(t.number)
    return failed


def silent(study: optuna.Study, older_than: float) -> list[FrozenTrial]:
    """RUNNING trials that recorded no progress for `older_than` seconds."""
    now = time.time()
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if now - _last_progress(t, now) > older_than]


def _last_progress(t: FrozenTrial, now: float) -> float:
    """When the trial last wrote an epoch, else when it started."""
    return t.user_attrs.get("updated_at") or (t.datetime_start.timestamp() if t.datetime_start else now)


def lives_here(worker: str, host: str | None = None) -> bool:
    """True when `worker` (host:pid[:start]) names a process of `host` (this one by
    default) that is still running; another machine's worker is never known to live."""
    host = host or socket.gethostname()
    name, _, rest = worker.partition(":")
    return name == host and rest.partition(":")[0].isdigit() and not is_dead(worker, host)


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


@dataclasses.dataclass(frozen=True)
class Swept:
    """What `fail_stale` did: trials failed (re-queued when `retried`), trials it spared
    because their worker lives on this machine, and trials still running."""

    failed: list[int]
    spared: list[int]
    running: int
    retried: bool


def sweep(cfg: StaleConfig) -> Swept:
    """`drill-search fail-stale`: `fail_stale` on the stored study (Optuna's heartbeat
    re-queues through `requeue` as well)."""
    study = load(open_existing(cfg.storage, on_stale=requeue), cfg.study_name, cfg.storage)
    return fail_stale(study, cfg.older_than)


def fail_stale(study: optuna.Study, older_than: float | None = None) -> Swept:
    """`drill-search fail-stale`: fail the RUNNING trials of dead workers on this machine,
    and with `older_than` those silent that long elsewhere; re-queue them if the study is a
    search (a study of runs trains what is missing instead). RDB storages also get Optuna's
    heartbeat check."""
    retry = study.user_attrs.get("kind") == "search"
    failed = fail_dead_workers(study, retry=retry)
    spared = []
    if older_than is not None:
        failed += fail_silent(study, older_than, retry=retry)
        spared = [t.number for t in silent(study, older_than) if lives_here(t.user_attrs.get("worker", ""))]
    with warnings.catch_warnings():  # experimental in Optuna 5, warned of on every call
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # Optuna's heartbeat check: nothing where the storage has none
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    return Swept(failed, spared, running, retry)
