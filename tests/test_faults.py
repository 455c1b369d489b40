"""Faults injected into real runs: interrupts, terminations, kills, bad candidates."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search import study as studies
from search.config import Recipe
from search.execution import counts, liveness, supervisor, workers
from search.execution import identity
from search.execution.storage import open_storage
from search.results import document
from tests.test_search import config, synthetic_data

ROOT = Path(__file__).resolve().parents[1]


def cli(args: list[str], data_root: Path) -> subprocess.Popen:
    env = {**os.environ, "DRILL_SEARCH_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "search", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group, like a terminal job


def wait_for_running_epoch(proc: subprocess.Popen, storage_path: Path, timeout: float = 120.0,
                           study_name: str = "search", curve: str = "val_acc") -> optuna.trial.FrozenTrial:
    """Block until some trial is running and has finished at least one epoch.

    Fails at once, with the command's output, if the command exits before that.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the command exited ({proc.returncode}) before a trial got through an "
                                 f"epoch:\n{proc.stdout.read()}")
        if storage_path.exists():
            try:
                study = optuna.load_study(study_name=study_name, storage=open_storage(str(storage_path)))
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if t.user_attrs.get(curve):
                        return t
            except KeyError:
                pass
        time.sleep(0.3)
    raise AssertionError("no trial got through an epoch in time")


def wait_until_closed(storage_path: Path, number: int, timeout: float = 120.0) -> None:
    """Block until trial `number` is no longer RUNNING."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        study = optuna.load_study(study_name="search", storage=open_storage(str(storage_path)))
        if study.trials[number].state != TrialState.RUNNING:
            return
        time.sleep(0.1)
    raise AssertionError(f"trial {number} was still RUNNING after {timeout:g} s")


def finished(study) -> int:
    return counts.counted(study)


# One worker: with one per core (the default) the other worker may finish its trial before
# the signal, and the resume then reaches --trials 2 with a re-queued copy still waiting,
# which is right for the tool but not the single interrupted trial this test follows.
# seeded: an unseeded sampler's first candidate is sometimes over budget (rejected before
# training); seed 1's is 3,224 params and completes
SEARCH = ["run", "--trials", "2", "--epochs", "3", "--train-size", "2000", "--val-size", "500",
          "--device", "cpu", "--pruner", "none", "--no-baselines", "--workers", "1", "--seed", "1"]


@pytest.mark.mnist
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigterm twice"])
def test_interrupt_closes_the_trial_and_the_same_command_resumes(tmp_path, data_root, how):
    store = tmp_path / "s.journal"
    proc = cli([*SEARCH, "--storage", str(store)], data_root)
    victim = wait_for_running_epoch(proc, store)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # a terminal sends SIGINT to the whole job
    else:
        proc.send_signal(signal.SIGTERM)  # a scheduler signals the main process only
    if how == "sigterm twice":  # `timeout` signals the process, then its group: the stop goes on
        wait_until_closed(store, victim.number)  # the stop is under way (not a delay that is "long enough")
        with contextlib.suppress(ProcessLookupError):  # the whole job may be gone already: nothing to stop
            os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted, will resume" in out and "Traceback" not in out
    study = optuna.load_study(study_name="search", storage=open_storage(str(store)))
    t = study.trials[victim.number]
    assert t.state == TrialState.FAIL and t.user_attrs["state_reason"] == "interrupted"
    assert counts.counts(study)["running"] == 0
    # the summary printed on the way out is the study as the stopped workers left it
    assert f"trials: {document.counts_line(study)}" in out, out
    retry = [o for o in study.trials if o.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING

    proc = cli([*SEARCH, "--storage", str(store)], data_root)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name="search", storage=open_storage(str(store)))
    assert finished(study) == 2 and counts.counts(study)["waiting"] == 0
    assert study.trials[retry[0].number].state == TrialState.COMPLETE  # the interrupted candidate ran


@pytest.mark.mnist
def test_an_interrupted_confirm_with_two_workers_stores_its_runs_failed_and_resumes(tmp_path, data_root):
    store = str(tmp_path / "s.journal")
    first = cli([*SEARCH[:2], "1", *SEARCH[3:], "--storage", store], data_root)  # trial 0 completes
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    confirm = ["confirm", "--trials", "0", "--seeds", "2", "--epochs", "3", "--train-size", "3000",
               "--no-baselines", "--device", "cpu", "--workers", "2", "--storage", store]
    proc = cli(confirm, data_root)
    wait_for_running_epoch(proc, Path(store), study_name="search-confirm", curve="test_acc")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the supervisor and both workers get it
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out, out
    runs = optuna.load_study(study_name="search-confirm", storage=open_storage(store)).trials
    assert not [t for t in runs if t.state == TrialState.RUNNING]
    assert any(t.state == TrialState.FAIL for t in runs)
    assert all(t.user_attrs["state_reason"] == "interrupted" for t in runs if t.state == TrialState.FAIL)

    proc = cli(confirm, data_root)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    runs = optuna.load_study(study_name="search-confirm", storage=open_storage(store)).trials
    assert sorted(t.user_attrs["confirm_seed"] for t in runs if t.state == TrialState.COMPLETE) == [1, 2]


def test_a_diverging_candidate_ends_with_its_reason_and_the_study_goes_on(tmp_path):
    cfg = config(tmp_path, trials=2, recipe=Recipe(epochs=2, batch_size=64))
    study = identity.open_search(cfg)
    import spaces
    from baselines import ROUNDS

    wild = spaces.encode(ROUNDS["round3"].candidate) | {"lr": 1e9}  # outside the space: Optuna only warns
    study.enqueue_trial(wild)
    study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workers.run_worker(cfg, data=synthetic_data())
    a, b = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage).trials
    assert a.state == TrialState.PRUNED and a.user_attrs["state_reason"].startswith("diverged")
    assert b.state == TrialState.COMPLETE


def flaky_train(monkeypatch, fails: int, error=RuntimeError("boom")):
    """Make the first `fails` training runs raise `error`."""
    import search.execution.objective as objective

    real_train = objective.train
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] <= fails:
            raise error
        return real_train(*args, **kw)

    monkeypatch.setattr(objective, "train", flaky)


def test_an_error_raised_while_an_interrupt_unwinds_is_the_interrupt(tmp_path, monkeypatch):
    # A signal landing inside a journal write can make the lock's cleanup raise
    # FileNotFoundError over the KeyboardInterrupt: that trial was interrupted, not broken.
    def interrupted_in_a_lock(*args, **kw):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise FileNotFoundError("s.journal.lock.rename")  # noqa: B904 - as the lock's cleanup does

    import search.execution.objective as objective

    monkeypatch.setattr(objective, "train", interrupted_in_a_lock)
    cfg = config(tmp_path, trials=1, recipe=Recipe(epochs=1, batch_size=64), max_params=10**6)
    with pytest.raises(KeyboardInterrupt):
        workers.run_worker(cfg, data=synthetic_data())
    first = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage).trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs["state_reason"] == "interrupted"


def test_out_of_memory_is_retried_and_then_a_named_outcome_and_the_study_goes_on(tmp_path, monkeypatch):
    import torch

    # torch.cuda.OutOfMemoryError is what CUDA raises (torch.OutOfMemoryError since 2.5)
    flaky_train(monkeypatch, 1 + workers.MAX_RETRY, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    cfg = config(tmp_path, trials=2, recipe=Recipe(epochs=1, batch_size=64), max_params=10**6)
    workers.run_worker(cfg, data=synthetic_data())
    *retried, oom, other = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage).trials
    assert len(retried) == workers.MAX_RETRY  # another worker's peak may have caused it: retried
    assert all(t.state == TrialState.FAIL and "out of memory" in t.user_attrs["state_reason"] for t in retried)
    assert oom.params == retried[0].params and oom.user_attrs["retry_of"] == retried[-1].number
    assert oom.state == TrialState.PRUNED and oom.user_attrs["state_reason"] == "out of memory"
    assert other.state == TrialState.COMPLETE


def test_out_of_memory_once_is_retried_and_the_retry_completes(tmp_path, monkeypatch):
    import torch

    flaky_train(monkeypatch, 1, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    cfg = config(tmp_path, trials=1, recipe=Recipe(epochs=1, batch_size=64), max_params=10**6)
    workers.run_worker(cfg, data=synthetic_data())
    a, b = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage).trials
    assert a.state == TrialState.FAIL and b.state == TrialState.COMPLETE and b.user_attrs["retry_of"] == 0


def test_out_of_memory_at_the_rung_is_handled_as_on_the_full_run(tmp_path, monkeypatch):
    # Under the default strategy the rung trains first: its out-of-memory error must free
    # the memory and be retried, then named, like the full run's, not be a generic error
    # (dropped after two retries, four in a row stopping the search).
    import torch

    import search.execution.objective as objective

    freed = []
    real_free = objective.free_memory
    monkeypatch.setattr(objective, "free_memory", lambda device: freed.append(device) or real_free(device))
    flaky_train(monkeypatch, 1 + workers.MAX_RETRY, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    cfg = config(tmp_path, trials=2, recipe=Recipe(epochs=2, batch_size=64), max_params=10**6, rung_epochs=1)
    assert cfg.promotes
    workers.run_worker(cfg, data=synthetic_data())
    *retried, oom, other = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage).trials
    assert len(retried) == workers.MAX_RETRY and len(freed) == 1 + workers.MAX_RETRY
    assert all(t.state == TrialState.FAIL and "out of memory" in t.user_attrs["state_reason"]
               and "OutOfMemoryError" not in t.user_attrs["state_reason"] for t in retried)
    assert oom.params == retried[0].params and oom.user_attrs["retry_of"] == retried[-1].number
    assert oom.state == TrialState.PRUNED and oom.user_attrs["state_reason"] == "out of memory"
    assert other.state.is_finished() and other.user_attrs["rung_val_acc"]


def test_an_error_in_training_fails_the_trial_which_is_retried_and_never_counted(tmp_path, monkeypatch):
    flaky_train(monkeypatch, 1)
    cfg = config(tmp_path, trials=2, recipe=Recipe(epochs=1, batch_size=64), max_params=10**6)
    workers.run_worker(cfg, data=synthetic_data())
    study = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage)
    a, b, c = study.trials
    assert a.state == TrialState.FAIL and a.user_attrs["state_reason"] == "error: RuntimeError: boom"
    assert b.user_attrs["retry_of"] == 0 and b.params == a.params and b.state == TrialState.COMPLETE
    assert c.state == TrialState.COMPLETE  # the failure did not use up one of the 2 trials
    assert "failed: error: RuntimeError: boom" in __import__("search.results.document").results.document.trial_line(a)


def test_a_search_whose_training_always_raises_stops_with_one_sentence(tmp_path, monkeypatch, capsys):
    # every optimizer step raises: no trial may count as finished, and the run must stop
    import torch

    def broken(self, *a, **k):
        raise RuntimeError("step exploded")

    monkeypatch.setattr(torch.optim.SGD, "step", broken)
    cfg = config(tmp_path, trials=2, recipe=Recipe(epochs=1, batch_size=64), max_params=10**6)
    with pytest.raises(workers.TrialError, match="in a row failed with an error"):
        workers.run_worker(cfg, data=synthetic_data())
    study = optuna.load_study(study_name=cfg.study_name, storage=cfg.storage)
    assert finished(study) == 0
    assert all(t.state in (TrialState.FAIL, TrialState.WAITING) for t in study.trials)
    assert counts.counts(study)["fail"] == workers.MAX_ERRORS_IN_A_ROW


def test_a_resumed_seeded_search_draws_new_candidates(tmp_path):
    # a fresh seeded study is reproducible; resuming it must not replay the same stream
    def run(name: str, totals: list[int]) -> list[dict]:
        cfg = config(tmp_path, study_name=name, sampler="random", seed=3, recipe=Recipe(epochs=1, batch_size=64),
                     max_params=10)  # everything is rejected untrained: fast
        for total in totals:
            workers.run_worker(dataclasses.replace(cfg, trials=total), data=synthetic_data())
        return [t.params for t in optuna.load_study(study_name=name, storage=cfg.storage).trials]

    once = run("a", [2])
    assert run("b", [2]) == once  # reproducible from a fresh start
    resumed = run("c", [2, 4])
    assert resumed[:2] == once and len(resumed) == 4
    assert len({tuple(sorted(p.items())) for p in resumed}) == 4  # four distinct candidates


# --- bad input: one sentence, exit 2, nothing written -------------------------------------

from search.cli import main  # noqa: E402


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.mnist  # the run checks the data before it creates the study
def test_study_made_with_other_directions_is_refused(capsys, tmp_path, data_root):
    db = tmp_path / "s.db"
    optuna.create_study(study_name="search", storage=f"sqlite:///{db}", direction="minimize")
    before = db.read_bytes()
    code, _, err = run_cli(capsys, "run", "--trials", "2", "--storage", str(db), "--data-dir", str(data_root))
    assert code == 2 and "search" in err and err.count("\n") == 1
    assert db.read_bytes() == before


@pytest.mark.mnist  # the run checks the data before it creates the study
def test_study_made_for_another_search_space_is_refused(capsys, tmp_path, data_root):
    cfg = config(tmp_path)
    study = identity.open_search(cfg)
    study.set_user_attr("space", "0123456789ab")
    code, _, err = run_cli(capsys, "run", "--trials", "2", "--storage", cfg.storage, "--data-dir", str(data_root),
                           "--epochs", "2", "--val-size", "500", "--batch-size", "64")
    assert code == 2 and "space" in err and "another --study-name" in err


@pytest.mark.mnist  # the run checks the data before it creates the study
def test_study_from_another_drill_search_version_is_refused_with_the_version(capsys, tmp_path, data_root):
    cfg = config(tmp_path)
    study = identity.open_search(cfg)
    study.set_user_attr("schema", 0)
    study.set_user_attr("drill_search_version", "0.0.1")
    code, _, err = run_cli(capsys, "run", "--trials", "2", "--storage", cfg.storage, "--data-dir", str(data_root))
    assert code == 2 and "0.0.1" in err and "schema 0" in err and f"reads schema {identity.SCHEMA}" in err


@pytest.mark.mnist  # the run checks the data before it creates the study
def test_unreachable_and_malformed_storage_urls(capsys, tmp_path, data_root):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for url, words in [
        (f"sqlite:///{blocker}/x.db", "cannot open the storage"),
        ("postgresql://nobody:pw@127.0.0.1:1/nothing", "storage"),
        ("ftp://example/x", "cannot read the storage"),
    ]:
        code, _, err = run_cli(capsys, "run", "--trials", "2", "--storage", url, "--data-dir", str(data_root))
        assert code == 2 and words in err and err.count("\n") == 1, (url, err)


@pytest.mark.mnist  # the run checks the data before it creates the study
def test_corrupt_data_folder_is_refused_before_anything_is_written(capsys, tmp_path, data_root):
    raw = tmp_path / "d" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).symlink_to((data_root / "MNIST" / "raw" / name).resolve())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 10008)
    db = tmp_path / "s.db"
    code, _, err = run_cli(capsys, "run", "--trials", "2", "--storage", str(db), "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "MD5" in err and not db.exists()


def test_fail_stale_on_a_confirmation_fails_without_queueing(capsys, tmp_path):
    # a confirm study has no queue: a later confirm trains what is missing, so a re-queued
    # copy would wait there forever
    import socket

    import spaces
    from baselines import ROUNDS
    from search.execution.runs import open_runs

    store = tmp_path / "s.journal"
    runs = open_runs(open_storage(str(store)), "search-confirm")
    trial = runs.ask({k: spaces.SPACE[k] for k in spaces.encode(ROUNDS["round3"].candidate)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    code, out, err = run_cli(capsys, "fail-stale", "--storage", str(store), "--study-name", "search-confirm")
    assert code == 0, err
    assert "failed 1 trial(s): 0; 0 still running" in out
    trials = optuna.load_study(study_name="search-confirm", storage=open_storage(str(store))).trials
    assert [t.state for t in trials] == [TrialState.FAIL]


def test_fail_stale_ends_trials_of_dead_workers_on_a_journal(capsys, tmp_path):
    import spaces
    from baselines import ROUNDS

    store = tmp_path / "s.journal"
    cfg = config(tmp_path, storage=str(store))
    study = identity.open_search(cfg)
    study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    trial = study.ask()
    spaces.sample(trial)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    trial.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    alive = study.ask()
    spaces.sample(alive)
    alive.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    code, out, err = run_cli(capsys, "fail-stale", "--storage", str(store))
    assert code == 0, err
    assert "failed and re-queued 1 trial(s): 0; 1 still running" in out
    trials = optuna.load_study(study_name="search", storage=open_storage(str(store))).trials
    assert trials[0].state == TrialState.FAIL and trials[1].state == TrialState.RUNNING
    assert trials[2].state == TrialState.WAITING and trials[2].user_attrs["retry_of"] == 0
    code, out, _ = run_cli(capsys, "fail-stale", "--storage", str(store), "--older-than", "0.001")
    assert "failed and re-queued 0 trial(s); 1 still running" in out  # silent, but its process lives here


def test_a_reused_pid_does_not_hide_a_dead_worker(capsys, tmp_path):
    # After a restart, a RUNNING trial's pid may belong to an unrelated live process (here:
    # this test's own pid, with another start time). It must be failed, not counted alive.
    import socket

    import spaces
    from baselines import ROUNDS
    from search.execution.liveness import worker_id

    store = tmp_path / "s.journal"
    study = identity.open_search(config(tmp_path, storage=str(store)))
    for _ in range(2):
        study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    stale, live = study.ask(), study.ask()
    me = worker_id()
    assert me.count(":") == 2  # host:pid:start on Linux
    stale.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}:1")  # same pid, other start
    live.set_user_attr("worker", me)
    assert liveness.fail_dead_workers(study) == [stale.number]
    states = {t.number: t.state for t in study.trials}
    assert states[stale.number] == TrialState.FAIL and states[live.number] == TrialState.RUNNING
    assert counts.todo(study, 2) == 1  # the dead trial no longer holds a place


def test_a_running_trial_that_names_no_worker_is_failed_after_the_grace(tmp_path, monkeypatch):
    # Interrupted between Optuna's ask() and the objective's first write: no worker name.
    import spaces
    from baselines import ROUNDS

    study = identity.open_search(config(tmp_path, storage=str(tmp_path / "s.journal")))
    study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    orphan = study.ask()
    assert liveness.fail_dead_workers(study) == []  # just asked: its worker may be naming itself now
    later = time.time() + liveness.GRACE_SECONDS + 1
    monkeypatch.setattr(liveness.time, "time", lambda: later)
    assert liveness.fail_dead_workers(study) == [orphan.number]
    assert study.trials[orphan.number].state == TrialState.FAIL
    again = study.trials[-1]
    assert again.state == TrialState.WAITING and again.user_attrs["retry_of"] == orphan.number
    assert again.system_attrs["fixed_params"] == spaces.encode(ROUNDS["round3"].candidate)  # nothing lost


@pytest.mark.mnist  # worker processes load the data
def test_a_resumed_search_runs_what_an_unclaimed_trial_held_and_reaches_its_total(tmp_path, data_root, monkeypatch):
    # A trial left RUNNING with no worker name (the last run stopped between Optuna's ask and
    # the objective's first write) counts as running, so the workers stop one short, until
    # GRACE_SECONDS after its start the sweep fails and re-queues it. The search must then
    # run it, not end one short with it waiting, exit 0 and not a word.
    import types

    import spaces
    from baselines import ROUNDS
    from tests.test_search import load, real_config

    cfg = real_config(tmp_path, data_root, trials=2, max_params=10, sampler="random")  # all rejected untrained
    study = identity.open_search(cfg)
    study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    orphan = study.ask()
    # The grace passes once a trial has finished: a clock for liveness alone, not a sleep.
    offset = {"s": 0.0}
    monkeypatch.setattr(liveness, "time", types.SimpleNamespace(time=lambda: time.time() + offset["s"]))

    def grace_passes(event) -> None:
        if isinstance(event, studies.TrialFinished):
            offset["s"] = liveness.GRACE_SECONDS + 1

    studies.run_search(cfg, on_event=grace_passes, poll_seconds=0.2)
    trials = load(cfg).trials
    c = counts.counts(load(cfg))
    assert c["complete"] + c["pruned"] == 2 and c["waiting"] == c["running"] == 0, c
    assert trials[orphan.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert retry.state.is_finished() and retry.params == spaces.encode(ROUNDS["round3"].candidate)


def test_two_workers_that_finish_together_do_not_overshoot_the_total(tmp_path):
    # The stop rule counts the study after a trial, and the next ask creates one: two
    # workers that both count before either asks both see room for one more. A barrier
    # after each worker's first count forces that interleaving (threads: same code path).
    import threading

    cfg = config(tmp_path, trials=3, workers=2, storage=str(tmp_path / "s.journal"), sampler="random",
                 recipe=Recipe(epochs=1, batch_size=64), max_params=10)  # all rejected untrained: fast
    identity.open_search(cfg)  # made before: two commands creating it at once is another test's
    counted = threading.Barrier(2, timeout=120)
    errors = []

    def after_first_count(study, trial) -> None:
        if trial.number < 2:  # each worker's first trial: 0 and 1
            counted.wait()

    def worker(index: int) -> None:
        try:
            workers.run_worker(cfg, index, data=synthetic_data(), callbacks=[after_first_count])
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            errors.append(e)
            counted.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert finished(optuna.load_study(study_name=cfg.study_name, storage=open_storage(cfg.storage))) == 3


def test_the_supervisor_ignores_a_second_interrupt_while_it_stops_its_workers():
    # Whether a second Ctrl-C lands while the workers close their trials depends on timing,
    # so the guard itself is what is tested here. raise_signal runs the handler before it
    # returns: no wait for the signal to arrive. Python's own handler first: a process
    # started in the background by a shell without job control inherits SIGINT ignored.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            with supervisor.ignoring_interrupts():
                signal.raise_signal(signal.SIGINT)  # would raise KeyboardInterrupt here without the guard
        except KeyboardInterrupt:
            pytest.fail("a SIGINT inside ignoring_interrupts() interrupted the block")
        with pytest.raises(KeyboardInterrupt):  # the usual handler is back afterwards
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, inherited)


def _broken(*args) -> None:
    raise RuntimeError("a callback that breaks")


@pytest.mark.parametrize("breaks", ["on_poll", "on_exit"])
def test_the_supervisor_stops_its_workers_whatever_ends_it(breaks):
    # Before, only Ctrl-C stopped them: any other error left the workers running and the
    # CLI hanging on them after the traceback. time.sleep is a worker that costs nothing.
    study = optuna.create_study()
    sup = supervisor.Supervisor(study, time.sleep, _broken if breaks == "on_poll" else lambda trials: None,
                                poll_seconds=0.01)

    processes = []

    def start() -> None:
        sup.start(0, 0)  # exits at once: on_exit is called for it
        sup.start(1, 600)
        processes.extend(w.process for w in sup.workers)

    on_exit = _broken if breaks == "on_exit" else lambda w, code: supervisor.GO_ON
    try:
        with pytest.raises(RuntimeError, match="a callback that breaks"):
            sup.run(on_exit, start)
        assert len(processes) == 2
        for p in processes:
            p.join(timeout=60)  # generous: a stopped worker is joined already, a running one never ends
            assert not p.is_alive()
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()


# --- fail-stale --older-than and live workers (issue 23, defect 8) -------------------------


def test_fail_stale_older_than_spares_a_silent_trial_whose_worker_is_alive_here(capsys, tmp_path):
    # A long epoch is silence, not death: on this host the process says which it is.
    import socket

    import spaces
    from baselines import ROUNDS

    store = tmp_path / "s.journal"
    study = identity.open_search(config(tmp_path, storage=str(store)))
    for _ in range(2):
        study.enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    live, elsewhere = study.ask(), study.ask()
    live.set_user_attr("worker", liveness.worker_id())  # this test's process: alive
    elsewhere.set_user_attr("worker", f"not-{socket.gethostname()}:1234:5678")  # only its silence is known
    for t in (live, elsewhere):
        t.set_user_attr("updated_at", time.time() - 3600)
    code, out, err = run_cli(capsys, "fail-stale", "--storage", str(store), "--older-than", "60")
    assert code == 0, err
    assert f"failed and re-queued 1 trial(s): {elsewhere.number}; 1 still running" in out
    assert "alive" in out  # the user learns why the silent live one was spared
    states = {t.number: t.state for t in optuna.load_study(study_name="search", storage=open_storage(str(store))).trials}
    assert states[live.number] == TrialState.RUNNING and states[elsewhere.number] == TrialState.FAIL


def test_a_worker_whose_trial_another_process_ended_goes_on_with_the_next(tmp_path, monkeypatch):
    # fail-stale --older-than on another machine (or an RDB heartbeat) may end a trial whose
    # worker is alive: its next write finds the trial finished. The worker must drop that
    # trial and go on, not die with a traceback.
    import search.execution.objective as objective

    cfg = config(tmp_path, trials=1, storage=str(tmp_path / "s.journal"), recipe=Recipe(epochs=1, batch_size=64),
                 max_params=10**6)
    real_train = objective.train
    ended = []

    def ended_elsewhere(*args, **kw):
        if not ended:  # as `fail-stale --older-than` elsewhere does, while this trial trains
            other = optuna.load_study(study_name=cfg.study_name, storage=open_storage(cfg.storage))
            (t,) = other.get_trials(states=(TrialState.RUNNING,))
            assert liveness.fail_trial(other, t, "no progress for 3600 s")
            ended.append(t.number)
        return real_train(*args, **kw)

    monkeypatch.setattr(objective, "train", ended_elsewhere)
    workers.run_worker(cfg, data=synthetic_data())
    first, retry = optuna.load_study(study_name=cfg.study_name, storage=open_storage(cfg.storage)).trials
    assert first.state == TrialState.FAIL and first.user_attrs["state_reason"] == "no progress for 3600 s"
    assert retry.user_attrs["retry_of"] == first.number and retry.state == TrialState.COMPLETE


def _stops_late_and_signals_its_parent(ready: str) -> None:
    """A worker that, told to stop, has its parent sent SIGTERM (as `timeout` or a scheduler
    does after Ctrl-C) before it exits, so the SIGTERM lands while the parent stops it."""
    parent = os.getppid()

    def stop(signum, frame):
        os.kill(parent, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGINT, stop)
    Path(ready).touch()
    while True:
        signal.pause()


def test_a_sigterm_during_the_stop_after_ctrl_c_does_not_cut_it_short(tmp_path):
    # The CLI arms SIGTERM as an interrupt; the stop masked only SIGINT, so a SIGTERM then
    # aborted it before the last poll (the summary's study) and, landing later, before the
    # dead workers' trials were failed.
    ready = tmp_path / "ready"
    study = optuna.create_study()
    polls = []
    interrupted = []

    def on_poll(trials) -> None:
        polls.append([t.state for t in trials])
        if ready.exists() and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # Ctrl-C, once the worker can take the stop

    sup = supervisor.Supervisor(study, _stops_late_and_signals_its_parent, on_poll, poll_seconds=0.01)

    def start() -> None:
        sup.start(0, str(ready))
        study.ask().set_user_attr("worker", sup.workers[0].id)  # the worker's running trial

    previous = signal.getsignal(signal.SIGTERM)
    supervisor.interrupt_once(signal.SIGTERM)  # as the CLI arms it
    try:
        with pytest.raises(KeyboardInterrupt):
            sup.run(lambda w, code: supervisor.GO_ON, start)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not sup.workers and not sup.exited[0][0].process.is_alive()
    assert polls[-1] == [TrialState.FAIL], polls[-3:]  # the stop ran to its last poll


# --- two machines running the same command at once (issue 23, defect 6) --------------------


def _open_at_once(cfg, second=None) -> list:
    """open_search(cfg) in two threads (as two machines would), the second once `second`
    is set; what each returned or raised."""
    import threading

    out: list = [None, None]

    def run(i: int, wait) -> None:
        try:
            if wait is not None:
                assert wait.wait(60), "the first never got there"
            out[i] = identity.open_search(cfg)
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            out[i] = e

    threads = [threading.Thread(target=run, args=(0, None)), threading.Thread(target=run, args=(1, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def test_two_commands_that_both_find_no_study_both_open_the_one_created(tmp_path, monkeypatch):
    import threading

    cfg = config(tmp_path, storage=str(tmp_path / "s.journal"))
    both_looked = threading.Barrier(2, timeout=60)
    real_load = identity.optuna.load_study

    def load_after_both_looked(*args, **kw):
        try:
            return real_load(*args, **kw)
        except KeyError:
            both_looked.wait()  # neither has created it yet: both will try
            raise

    monkeypatch.setattr(identity.optuna, "load_study", load_after_both_looked)
    out = _open_at_once(cfg)
    assert all(isinstance(o, optuna.Study) for o in out), out
    assert out[0].user_attrs["schema"] == identity.SCHEMA


def test_a_command_that_reads_the_study_while_another_creates_it_waits_for_its_attributes(tmp_path, monkeypatch):
    import threading

    cfg = config(tmp_path, storage=str(tmp_path / "s.journal"))
    created, read = threading.Event(), threading.Event()
    real_create, real_load = identity.optuna.create_study, identity.optuna.load_study

    def create_then_pause(*args, **kw):
        study = real_create(*args, **kw)
        created.set()
        assert read.wait(60), "the second command never read the study"
        return study  # now its attributes are written

    def load_then_say_so(*args, **kw):
        study = real_load(*args, **kw)
        read.set()
        return study

    monkeypatch.setattr(identity.optuna, "create_study", create_then_pause)
    monkeypatch.setattr(identity.optuna, "load_study", load_then_say_so)
    out = _open_at_once(cfg, second=created)
    assert all(isinstance(o, optuna.Study) for o in out), out


def _cut_records(path: Path) -> list:
    """Files beside a journal holding what was cut off its end."""
    return sorted(path.parent.glob(path.name + ".cut-*"))


def test_a_search_on_a_journal_cut_mid_line_moves_the_cut_aside_and_keeps_every_trial(
        tmp_path, data_root, caplog, monkeypatch):
    # A copy taken while a search wrote: the last record is half there. `study.search`
    # writes (the report's figures) even with nothing to train.
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: root)  # no data needed
    store = tmp_path / "s.journal"
    cfg = config(tmp_path, root=data_root, storage=str(store), trials=1, workers=1)
    workers.run_worker(cfg, data=synthetic_data())
    done = [(t.number, t.state, t.values) for t in identity.open_search(cfg).trials]
    whole = store.read_bytes()
    half = whole[whole.rstrip(b"\n").rfind(b"\n") + 1:][:60]  # the start of a record, as a copy would catch it
    store.write_bytes(whole + half)
    studies.search(cfg)
    again = optuna.load_study(study_name="search", storage=open_storage(str(store)))  # readable
    assert [(t.number, t.state, t.values) for t in again.trials] == done
    assert "report_figures" in again.user_attrs  # what the search wrote after the cut is there
    (kept,) = _cut_records(store)
    assert kept.read_bytes() == half and store.read_bytes().startswith(whole)
    assert len([r for r in caplog.records if "middle of a line" in r.getMessage()]) == 1


# A worker whose write fails half-way (a full disk; here a file-size limit, with SIGXFSZ
# ignored so that the write raises instead of killing the process).
DISK_FULL = """
import errno, os, resource, signal, sys
import optuna
from search.execution.liveness import worker_id
from search.execution.storage import open_storage

path = sys.argv[1]
study = optuna.load_study(study_name="search", storage=open_storage(path))
trial = study.ask()
trial.set_user_attr("worker", worker_id())
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    trial.set_user_attr("val_acc", [99.0] * 500)
except OSError as e:
    print("write cut short:", errno.errorcode[e.errno])
"""


def test_a_write_cut_short_by_a_full_disk_loses_no_finished_trial_and_the_next_command_mends_it(
        tmp_path, capsys, caplog):
    import spaces
    from baselines import ROUNDS
    from search.execution.storage import cut_short

    store = tmp_path / "s.journal"
    study = identity.open_search(config(tmp_path, storage=str(store)))
    params = spaces.encode(ROUNDS["round3"].candidate)
    for score in (98.5, 99.1):
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: spaces.SPACE[k] for k in params}, values=[score, 5760],
            user_attrs={"params": 5760}))
    study.enqueue_trial(params)  # what the worker below runs
    child = subprocess.run([sys.executable, "-c", DISK_FULL, str(store)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert "write cut short: EFBIG" in child.stdout, child.stdout + child.stderr
    assert cut_short(str(store))  # the journal now ends half-way through a record
    # a reading command reads what is complete
    read = optuna.load_study(study_name="search", storage=open_storage(str(store)))
    assert [t.state for t in read.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    # the next command that writes ends the dead worker's trial, after moving the cut aside
    code, out, err = run_cli(capsys, "fail-stale", "--storage", str(store))
    assert code == 0, err
    assert "failed and re-queued 1 trial(s): 2" in out
    said = [r.getMessage() for r in caplog.records if "middle of a line" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0]
    assert not cut_short(str(store)) and len(_cut_records(store)) == 1
    trials = optuna.load_study(study_name="search", storage=open_storage(str(store))).trials
    assert [(t.state, t.values) for t in trials[:2]] == [(TrialState.COMPLETE, [98.5, 5760]),
                                                         (TrialState.COMPLETE, [99.1, 5760])]
    assert trials[2].state == TrialState.FAIL and trials[3].user_attrs["retry_of"] == 2


def test_two_commands_that_enqueue_the_rounds_at_once_train_each_round_once(tmp_path, monkeypatch):
    """Optuna's `enqueue_trial(skip_if_exists=True)` reads, then writes: two commands that
    both read before either writes queue a round twice (Optuna's docs say so). The copy
    must not cost a run."""
    import threading

    cfg = config(tmp_path, storage=str(tmp_path / "s.journal"), max_params=5760, trials=2, with_baselines=True)
    identity.open_search(cfg)
    both_looked = threading.Barrier(2, timeout=60)
    real_add = optuna.Study.add_trial

    def add_when_both_looked(self, trial):
        both_looked.wait()  # each has looked for the round and found none
        return real_add(self, trial)

    monkeypatch.setattr(optuna.Study, "add_trial", add_when_both_looked)
    commands = [threading.Thread(target=studies.enqueue_baselines, args=(identity.open_search(cfg), cfg.max_params))
                for _ in range(2)]
    for c in commands:
        c.start()
    for c in commands:
        c.join(timeout=120)
    monkeypatch.setattr(optuna.Study, "add_trial", real_add)
    study = optuna.load_study(study_name="search", storage=open_storage(cfg.storage))
    assert [t.user_attrs.get("baseline") for t in study.trials] == ["round3", "round3"]  # the race happened
    workers.run_worker(cfg, data=synthetic_data())
    trials = optuna.load_study(study_name="search", storage=open_storage(cfg.storage)).trials
    first, copy = trials[:2]
    assert first.state == TrialState.COMPLETE and first.user_attrs["val_acc"]
    assert copy.state == TrialState.FAIL and "val_acc" not in copy.user_attrs  # never trained, nor counted
    assert copy.user_attrs["state_reason"].startswith("withdrawn: a duplicate of trial 0 (round3 queued twice")
    assert not any("retry_of" in t.user_attrs for t in trials)  # nor retried
