"""The supervisor: starts worker processes, polls the storage while they run, stops them
cleanly, and fails the trials of any that died. One supervisor serves the search and the
confirmation, with what they share: each worker on its own device (`start_on_its_device`)
and each finished trial reported once (`reporter`); what an exit means (replace the
worker, stop everything) is the caller's.

Workers are separate processes (real concurrency; no GIL), started with "spawn" so that
CUDA and threads start fresh in each; a worker ends when its command dies (`_worker_main`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from ..config import EXIT_INTERRUPTED
from .liveness import fail_dead_workers, worker_id

EXIT_ORPHANED = 137  # a worker whose command died (as if killed with it: 128 + SIGKILL)


def _ignore(signum, frame) -> None:
    """A handler that does nothing. Not SIG_IGN: a signal that arrived while another was
    being handled, but was not yet run (two signals at once: `timeout` or a scheduler
    sends SIGTERM to the job while the supervisor sends SIGINT), would then make Python
    print "OSError: Signal 15 ignored due to race condition" with a traceback."""


def interrupt_once(*signums: int) -> None:
    """The first of these signals raises KeyboardInterrupt, a clean stop (running trials
    close, the summary prints); later ones are ignored while it runs: `timeout` and
    schedulers signal the process and then its group, and a supervisor relays SIGINT to
    its workers. The stop stays bounded: workers that do not close within a minute are
    killed (`_stop`)."""

    def handler(signum, frame):
        for s in signums:
            signal.signal(s, _ignore)
        raise KeyboardInterrupt

    for s in signums:
        signal.signal(s, handler)


@dataclasses.dataclass
class Worker:
    index: int
    process: mp.process.BaseProcess
    id: str  # as the worker names itself in its trials: host:pid:start


@contextlib.contextmanager
def ignoring_interrupts():
    """Ignore SIGINT and SIGTERM inside the block (in the main thread; elsewhere Python
    delivers none).

    While the supervisor stops its workers, a second Ctrl-C, or the SIGTERM that `timeout`
    or a scheduler sends after it (the CLI makes SIGTERM an interrupt), would otherwise
    leave it summing up the study before the workers have closed their trials and before
    the trials of dead ones are failed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _ignore) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


STOP_SECONDS = 60.0  # how long stopped workers get to close their trials, all of them together


def _stop(processes: list) -> None:
    """Interrupt worker processes (each closes its running trial) and wait for them, at
    most STOP_SECONDS from the interrupt for all of them (not each: a minute apiece would
    keep a command with eight stuck workers eight minutes); those left are killed."""
    for p in processes:
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for p in processes:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _worker_main(call: bytes) -> None:
    """A worker process's entry point: `target(*args)` (pickled in `call`), ended at once
    if the command that started it dies.

    kill -9 or the kernel's OOM killer gives the command no chance to stop its workers;
    without this they went on training as children of init, finished the study minutes
    later, and a second command added its workers on top. A daemon thread waits on
    multiprocessing's own pipe from the parent (`parent_process().join()` returns when the
    pipe's far end closes, which only the parent's death does) and ends the process
    without a word: the trial stays RUNNING under a dead worker, which the next command
    fails and re-queues (`fail_dead_workers`), as for a worker the OOM killer took. Not a
    clean stop: the storage's lock may be the dead command's, and an orphan has no one to
    report to. Not prctl(PR_SET_PDEATHSIG): Linux only, and it fires when the *thread*
    that started the worker exits, which is not the command's death when a supervisor
    runs in a thread (benchmarks/stress.py). The pipe has no race either: once the parent
    is gone it reads as closed, however late this thread starts. The target and its
    arguments arrive pickled and are read once the watch runs: reading them imports torch,
    which can take ten seconds on a loaded machine, all of it orphaned.
    """
    threading.Thread(target=_end_with_parent, name="end-with-parent", daemon=True).start()
    bars_lock_in_this_process()
    target, args = pickle.loads(call)
    target(*args)


def bars_lock_in_this_process() -> None:
    """Give tqdm's progress bars a lock of this process's own, before the first bar makes
    theirs: a multiprocessing lock, which where the start method is spawn (every worker;
    the default on Python 3.14 too) is a named semaphore that multiprocessing's resource
    tracker records. A process ended by its command's death (`_end_with_parent`) or by
    SIGKILL never releases it, and the tracker, which outlives them all, printed
    "There appear to be 2 leaked semaphore objects" on the command's terminal. A process's
    bars are drawn by that process only: a thread lock serves them."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def _end_with_parent() -> None:
    mp.parent_process().join()
    os._exit(EXIT_ORPHANED)


@dataclasses.dataclass(frozen=True)
class TrialFinished:
    """An event of a use case (search.study, search.confirm): a trial or run finished
    (complete, pruned, rejected or failed) during this command, whichever worker ran it."""

    trial: FrozenTrial


@dataclasses.dataclass(frozen=True)
class Polled:
    """An event of a use case, every poll: the trials it watches (a search: all the study's;
    a confirmation: its plan's runs) and the ids of the workers this command started."""

    trials: list[FrozenTrial]
    workers: frozenset[str]


def reporter(study: optuna.Study, on_event: Callable,
             ours: Callable[[list[FrozenTrial]], list[FrozenTrial]] = lambda trials: trials,
             workers: Callable[[], set[str]] = set) -> Callable[[list[FrozenTrial]], None]:
    """A use case's `on_poll`: `TrialFinished` once for each of `ours(trials)` that
    finishes (complete, pruned, rejected or failed) from now on, then `Polled` with them and
    the command's `workers()`. What `study` holds finished already is not reported."""
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def tell(trials: list[FrozenTrial]) -> None:
        mine = ours(trials)
        for t in mine:
            if t.state.is_finished() and t.number not in seen:
                seen.add(t.number)
                on_event(TrialFinished(t))
        on_event(Polled(mine, frozenset(workers())))

    return tell


# What the caller says when a worker exits: go on polling, or stop every worker.
GO_ON, STOP = True, False


class Supervisor:
    """Start `target(*args)` processes and watch them until none is left.

    Every `poll_seconds` it calls `on_poll` with all the study's trials. When a worker
    exits, `on_exit(worker, exitcode)` decides: GO_ON (possibly after `start`ing a
    replacement) or STOP. A worker that was interrupted, or Ctrl-C here, stops them all:
    each worker closes its running trial, trials left RUNNING by a dead worker are
    failed (and re-queued when `retry`), and KeyboardInterrupt reaches the caller. Any
    other error stops them the same way before it reaches the caller.
    """

    def __init__(self, study: optuna.Study, target: Callable, on_poll: Callable[[list[FrozenTrial]], None],
                 poll_seconds: float = 1.0, retry: bool = True) -> None:
        self.study, self.target, self.on_poll = study, target, on_poll
        self.poll_seconds, self.retry = poll_seconds, retry
        self.workers: list[Worker] = []
        self.exited: list[tuple[Worker, int]] = []
        self._ctx = mp.get_context("spawn")

    @property
    def ids(self) -> set[str]:
        """Every worker started so far, as it names itself in its trials."""
        return {w.id for w in self.workers} | {w.id for w, _ in self.exited}

    def start(self, index: int, *args) -> None:
        p = self._ctx.Process(target=_worker_main, args=(pickle.dumps((self.target, args)),), daemon=False)
        p.start()
        self.workers.append(Worker(index, p, worker_id(p.pid)))

    def start_on_its_device(self, index: int, config, *args) -> None:
        """`start` worker `index` with `config` (a frozen config with a `device`) moved to
        the worker's own device: the index-th GPU in turn when the device names none."""
        from .hardware import gpus, worker_device  # here: it imports torch, which a worker must not load before its watch starts

        self.start(index, dataclasses.replace(config, device=worker_device(config.device, index, gpus(config.device))),
                   *args)

    def poll(self) -> None:
        self.on_poll(self.study.get_trials(deepcopy=False))

    def run(self, on_exit: Callable[[Worker, int], bool], start: Callable[[], None] = lambda: None) -> None:
        """`start()` the first workers, then poll until none is left (see the class)."""
        try:
            start()  # inside: a Ctrl-C or SIGTERM while workers start stops those started
            while self.workers:
                time.sleep(self.poll_seconds)
                self.poll()
                for w in [w for w in self.workers if not w.process.is_alive()]:
                    w.process.join()
                    self.workers.remove(w)
                    self.exited.append((w, w.process.exitcode))
                    if w.process.exitcode == EXIT_INTERRUPTED:
                        raise KeyboardInterrupt
                    if on_exit(w, w.process.exitcode) is STOP:
                        self.stop()
                        return
            fail_dead_workers(self.study, retry=self.retry)
            self.poll()
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            # An error in a poll or a callback must not leave the workers running (the
            # caller would hang on them after the traceback). No poll: it may be what raised.
            if self.workers:
                with ignoring_interrupts():
                    self._halt()

    def stop(self) -> None:
        """Interrupt every worker, wait for it, fail what a dead one left RUNNING, poll once."""
        with ignoring_interrupts():  # a second Ctrl-C must not cut the clean stop short
            self._halt()
            self.poll()

    def _halt(self) -> None:
        """Interrupt every worker, wait for it, and fail what a dead one left RUNNING."""
        _stop([w.process for w in self.workers])
        for w in self.workers:
            self.exited.append((w, w.process.exitcode))
        self.workers = []
        fail_dead_workers(self.study, retry=self.retry)
