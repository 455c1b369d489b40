"""A command's lifetime: its workers do not outlive it, its --timeout counts from its own
start, and a command sharing a search ends when its own work is done (issue 29)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from search import cli
from search import study as studies
from search.execution import counts, identity, liveness, supervisor, workers
from search.execution.storage import open_storage
from search.results import document
from tests.test_faults import ROOT, SEARCH, cli as command, finished, run_cli, wait_for_running_epoch
from tests.test_search import config, synthetic_data


def wait_until_gone(ids: list[str], timeout: float = 120.0) -> list[str]:
    """Those of the processes `ids` (host:pid:start) still alive after `timeout` seconds, a
    safety net: it returns as soon as none is left."""
    end = time.time() + timeout
    while time.time() < end and any(liveness.lives_here(i) for i in ids):
        time.sleep(0.2)
    return [i for i in ids if liveness.lives_here(i)]


def kill_all(ids: list[str]) -> None:
    """SIGKILL the processes of `ids` that still live (what a failed test leaves behind)."""
    import os
    import signal

    for i in ids:
        if liveness.lives_here(i):
            os.kill(int(i.split(":")[1]), signal.SIGKILL)


# A supervisor with two workers that would sleep ten minutes, in a process of its own.
SUPERVISOR = """
import time, optuna
from search.execution import supervisor
sup = supervisor.Supervisor(optuna.create_study(), time.sleep, lambda trials: None, poll_seconds=0.1)
def start():
    for i in range(2):
        sup.start(i, 600)
    print(*(w.id for w in sup.workers), flush=True)
sup.run(lambda w, code: supervisor.GO_ON, start)
"""


def test_workers_end_when_their_command_is_killed():
    # kill -9, or the kernel's OOM killer, gives the command no chance to stop its workers:
    # they must notice on their own, not go on as children of init.
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    ids = proc.stdout.readline().split()
    try:
        assert len(ids) == 2 and all(liveness.lives_here(i) for i in ids), ids
        proc.kill()  # the command only, not its process group
        proc.wait()
        assert wait_until_gone(ids) == []
    finally:
        kill_all(ids)
        proc.stdout.close()


# Two workers that draw a progress bar, as training does (tqdm's lock, made with the first
# bar), say so, and sleep ten minutes; their command prints their ids first.
BARS = """
import optuna
from search.execution import supervisor
WORK = "from tqdm.auto import tqdm; tqdm(total=1, disable=True); print('bar', flush=True); import time; time.sleep(600)"
sup = supervisor.Supervisor(optuna.create_study(), exec, lambda trials: None, poll_seconds=0.1)
def start():
    for i in range(2):
        sup.start(i, WORK)
    print(*(w.id for w in sup.workers), flush=True)
sup.run(lambda w, code: supervisor.GO_ON, start)
"""


def test_a_killed_command_leaves_no_leaked_semaphore_warning():
    # multiprocessing's resource tracker outlives a SIGKILLed command and reported the
    # semaphore of tqdm's lock, which the workers (spawned: their start method is spawn)
    # made as a named one, as "leaked"
    proc = subprocess.Popen([sys.executable, "-c", BARS], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    ids = proc.stdout.readline().split()
    try:
        assert [proc.stdout.readline() for _ in ids] == ["bar\n", "bar\n"], ids
        proc.kill()
        proc.wait()
        assert wait_until_gone(ids) == []
        _, err = proc.communicate(timeout=120)  # to the end: the tracker holds the pipe until it exits
    finally:
        kill_all(ids)
    assert "leaked semaphore" not in err and "resource_tracker" not in err, err


@pytest.mark.mnist
def test_a_killed_command_leaves_no_worker_and_the_next_one_runs_its_trial_again(tmp_path, data_root):
    store = tmp_path / "s.journal"
    proc = command([*SEARCH, "--storage", str(store)], data_root)
    victim = wait_for_running_epoch(proc, store)
    worker = victim.user_attrs["worker"]
    try:
        proc.kill()  # SIGKILL, the command only: its worker gets no signal
        proc.wait()
        assert wait_until_gone([worker]) == []
    finally:
        kill_all([worker])
        proc.stdout.close()
    study = optuna.load_study(study_name="search", storage=open_storage(str(store)))
    assert study.trials[victim.number].state == TrialState.RUNNING  # no orphan went on to finish it

    proc = command([*SEARCH, "--storage", str(store)], data_root)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name="search", storage=open_storage(str(store)))
    dead = study.trials[victim.number]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["state_reason"]
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.params == victim.params and retry.state.is_finished()
    c = counts.counts(study)
    assert finished(study) == 2 and c["running"] == c["waiting"] == 0, c


# --- the deadline -----------------------------------------------------------------------


def test_a_worker_that_starts_after_the_commands_deadline_starts_no_trial(tmp_path, monkeypatch):
    # --timeout counts from the command's start: a worker whose start (imports, loading the
    # data) outlasts it must not begin a trial, however late it came.
    args = cli.build_parser().parse_args(["run", "--trials", "2", "--timeout", "1", "--storage",
                                          str(tmp_path / "s.journal"), "--pruner", "none", "--no-baselines",
                                          "--epochs", "1", "--batch-size", "64", "--val-size", "500"])
    # the deadline a second from now (the command's own counts from the process's start, this test's)
    cfg = dataclasses.replace(cli.search_config(args, torch.device("cpu")), deadline=time.time() + 1)
    offset = {"s": 0.0}
    monkeypatch.setattr(workers, "time", types.SimpleNamespace(time=lambda: time.time() + offset["s"]))

    def slow_start(cfg, device):
        offset["s"] += 2.0  # the worker's start took two seconds
        return synthetic_data()

    monkeypatch.setattr(workers, "load_search_data", slow_start)
    workers.run_worker(cfg)
    assert identity.open_search(cfg).trials == []


def test_the_deadline_is_the_processs_start_plus_the_timeout(tmp_path):
    import search

    args = cli.build_parser().parse_args(["run", "--trials", "2", "--timeout", "5"])
    assert cli.search_config(args, torch.device("cpu")).deadline == cli.process_start() + 5
    assert cli.process_start() <= search.IMPORTED  # before any of drill-search's code ran
    args = cli.build_parser().parse_args(["run", "--trials", "2"])
    assert cli.search_config(args, torch.device("cpu")).deadline is None


# Holds up the start of the process it runs in (not of its workers: the variable is gone
# before they start), as a loaded machine's interpreter start and imports do.
SLOW_START = """
import os, time
seconds = os.environ.pop("SLOW_START_SECONDS", None)
if seconds:
    time.sleep(float(seconds))
"""


@pytest.mark.mnist  # the run checks the data; with the deadline counted late, its worker trains on it
def test_the_timeout_counts_from_the_processs_first_instant(tmp_path, data_root):
    # --timeout 20 on a command whose start took 21 s before any of its code ran: the
    # deadline has passed before the search opens, so no trial may start (with the deadline
    # counted from after the imports, a worker trained for 20 s).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_START)
    store = tmp_path / "s.journal"
    env = {**os.environ, "DRILL_SEARCH_DATA": str(data_root), "PYTHONPATH": str(site), "SLOW_START_SECONDS": "21"}
    began = time.time()
    done = subprocess.run([str(Path(sys.executable).with_name("drill-search")), *SEARCH,
                           "--timeout", "20", "--storage", str(store)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = optuna.load_study(study_name="search", storage=open_storage(str(store))).trials
    assert [t.number for t in trials if t.datetime_start.timestamp() > began + 20] == []
    assert trials == []
    assert ("the --timeout stopped the search at 0 of 2 finished trials, short of its total; the same command "
            "goes on from there.") in done.stdout, done.stdout


def test_a_search_past_its_deadline_starts_no_worker_and_no_trial(tmp_path):
    cfg = config(tmp_path, storage=str(tmp_path / "s.journal"), deadline=time.time() - 1)
    study = studies.run_search(cfg, poll_seconds=0.01)
    assert study.trials == []


# --- commands sharing a search ----------------------------------------------------------


@pytest.mark.mnist  # the run checks the data, and its worker loads it
def test_a_command_whose_own_work_is_done_exits_0_and_says_what_other_commands_still_run(capsys, tmp_path,
                                                                                          data_root):
    # README's several machines: the command that finishes first must not fail (`run ... &&
    # drill-search report`) because another command's trials are still under way.
    store = tmp_path / "s.journal"
    run = ["run", "--storage", str(store), "--data-dir", str(data_root), "--space", "chain", "--max-params", "10",
           "--sampler", "random", "--no-baselines", "--workers", "1", "--device", "cpu", "--epochs", "1", "--val-size", "500",
           "--train-size", "500", "--seed", "1", "--quiet"]  # every candidate rejected untrained: fast
    code, out, err = run_cli(capsys, *run, "--trials", "1")
    assert code == 0, err
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # another command's worker
    try:
        study = optuna.load_study(study_name="search", storage=open_storage(str(store)))
        here, away = study.ask(), study.ask()
        here.set_user_attr("worker", liveness.worker_id(other.pid))
        away.set_user_attr("worker", "another-machine:4242:99")
        code, out, err = run_cli(capsys, *run, "--trials", "4")
    finally:
        other.kill()
        other.wait()
    assert code == 0, err
    assert "trials: 2 rejected, 2 running" in out  # the summary
    assert f"trial {here.number} on {socket.gethostname()}:{other.pid}" in out
    assert f"trial {away.number} on another-machine:4242" in out
    assert "fail-stale" not in out + err  # nothing is wrong with them
    assert "Traceback" not in err


def test_a_running_trial_whose_worker_is_gone_is_named_with_the_command_that_requeues_it(tmp_path):
    study = identity.open_search(config(tmp_path, storage=str(tmp_path / "s.journal")))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone, away = study.ask(), study.ask()
    gone.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    away.set_user_attr("worker", "another-machine:4242:99")
    text = document.running_text(study.get_trials(deepcopy=False), str(tmp_path / "s.journal"), "search")
    lines = text.splitlines()
    assert len(lines) == 2, text
    assert f"trial {away.number} on another-machine:4242" in lines[0]
    assert f"trial {gone.number}" in lines[1] and f"{socket.gethostname()}:{dead.pid}" in lines[1]
    assert f"drill-search fail-stale --storage {tmp_path / 's.journal'}" in lines[1]
    assert document.running_text([], "s.journal", "search") == ""


def test_stopping_workers_waits_one_minute_for_all_of_them_not_a_minute_each(monkeypatch):
    # Workers that do not close their trials: the stop's bound counts from the interrupt.
    clock = {"now": 0.0}
    monkeypatch.setattr(supervisor.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(supervisor.os, "kill", lambda pid, signum: None)

    class Stuck:
        pid, alive = 0, True

        def is_alive(self) -> bool:
            return self.alive

        def join(self, timeout=None) -> None:
            if timeout is not None:
                clock["now"] += timeout  # it never closes: the whole wait passes

        def kill(self) -> None:
            self.alive = False

    stuck = [Stuck() for _ in range(3)]
    supervisor._stop(stuck)
    assert clock["now"] <= 60.0 and not any(p.alive for p in stuck)  # a minute in all, as interrupt_once says


def test_a_use_case_hears_once_of_each_trial_that_finishes_while_it_runs():
    # the search and the confirmation watch their workers through one reporter
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)  # finished before the command: not reported
    running, other = study.ask(), study.ask()
    events = []
    tell = supervisor.reporter(study, events.append, ours=lambda trials: [t for t in trials if t.number != other.number],
                               workers=lambda: {"here:1:1"})
    tell(study.get_trials(deepcopy=False))
    study.tell(running, 2.0)
    study.tell(other, 3.0)  # not the use case's: neither reported nor polled
    tell(study.get_trials(deepcopy=False))
    tell(study.get_trials(deepcopy=False))
    assert [e.trial.number for e in events if isinstance(e, supervisor.TrialFinished)] == [running.number]
    polled = [e for e in events if not isinstance(e, supervisor.TrialFinished)]
    assert [([t.number for t in e.trials], e.workers) for e in polled] == [([0, 1], {"here:1:1"})] * 3
    assert all(isinstance(e, supervisor.Polled) for e in polled)  # one event, for the search and the confirmation


def test_a_worker_can_watch_its_command_before_torch_is_imported():
    # Under spawn a worker imports the supervisor to find its entry point, then starts the
    # watch on its command, then imports torch (seconds on a loaded machine): a supervisor
    # that imported torch itself would leave a worker orphaned that long.
    code = "import sys, search.execution.supervisor; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
