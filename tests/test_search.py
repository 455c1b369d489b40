"""The search: budget, pruning, baselines, resume, workers, faults, and the test set."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import spaces
from spaces import space as chain
from spaces import stages
from baselines import PUBLISHED, ROUNDS
from search import study as studies
from search.config import DataConfig, Goal, Recipe, SearchConfig
from search.engine.data import Split
from search.execution import counts, hardware, identity, liveness, record, workers
from search.execution.objective import SearchData
from search.results import document
from tests.conftest import synthetic_split


def synthetic_data() -> SearchData:
    return SearchData(train=synthetic_split(512, 1), val=synthetic_split(128, 3), test=synthetic_split(128, 4))


def config(tmp_path: Path, root: Path = Path("unused"), **kw) -> SearchConfig:
    base = dict(
        storage=f"sqlite:///{tmp_path}/s.db",
        recipe=Recipe(epochs=2, batch_size=64),
        data=DataConfig(root=root, download=False, val_size=500),
        trials=3,
        pruner="none",
        seed=0,
        device="cpu",
        with_baselines=False,
        space="chain",  # the mechanisms below are shown on the rounds as the chain's points
    )
    base.update(kw)
    return SearchConfig(**base)


def load(cfg: SearchConfig) -> optuna.Study:
    return optuna.load_study(study_name=cfg.study_name, storage=identity.open_storage(cfg.storage))


@pytest.fixture
def count_steps(monkeypatch):
    steps = {"n": 0}
    original = torch.optim.SGD.step

    def step(self, *a, **k):
        steps["n"] += 1
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    return steps


def test_over_budget_candidate_is_infeasible_and_never_trained(tmp_path, count_steps):
    cfg = config(tmp_path, max_params=7000, trials=1)
    study = identity.open_search(cfg)
    study.enqueue_trial(spaces.encode(ROUNDS["round1"].candidate))  # 7,936 parameters
    workers.run_worker(cfg, data=synthetic_data())
    (t,) = load(cfg).trials
    assert count_steps["n"] == 0
    assert t.state == TrialState.PRUNED and t.user_attrs["state_reason"].startswith("rejected")
    assert t.constraints == {"params": 936.0} and t.constraints["params"] > 0
    assert load(cfg).best_trials == []
    assert document.outcome(t) == "rejected"


def test_a_trial_records_curves_provenance_and_two_objectives(tmp_path, count_steps):
    cfg = config(tmp_path, trials=1)
    identity.open_search(cfg).enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    workers.run_worker(cfg, data=synthetic_data())
    study = load(cfg)
    (t,) = study.trials
    a = t.user_attrs
    assert t.state == TrialState.COMPLETE and count_steps["n"] == 2 * 8
    assert study.metric_names == ["val_acc_last3", "params"]
    assert t.values == [pytest.approx(sum(a["val_acc"]) / 2, abs=1e-4), 5760]  # 2 epochs: their mean
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "train_loss", "lr", "epoch_seconds"):
        assert len(a[key]) == 2, key
    assert a["params"] == 5760 and a["arch"] == "8-16-t8-12-14-14 d0.01"
    assert a["seed"] == 99 and a["device"] == "cpu" and a["state_reason"] == "complete"
    assert a["cpu"] == record.cpu_model() != ""  # the machine its timings belong to
    assert set(a["versions"]) >= {"torch", "optuna", "drill_search", "code_revision"}
    assert t.constraints == {"params": 5760.0 - 10000.0}
    assert study.user_attrs["kind"] == "search" and study.user_attrs["space"] == spaces.fingerprint()


def test_pruning_stops_a_trial_and_keeps_its_curve(tmp_path, monkeypatch):
    class PruneAtTwo:
        def prune(self, epoch, me, peers):
            return "test rule" if epoch == 2 else None

    monkeypatch.setattr(workers, "make_pruner", lambda *args: PruneAtTwo())
    cfg = config(tmp_path, recipe=Recipe(epochs=4, batch_size=64), trials=1)
    identity.open_search(cfg).enqueue_trial(spaces.encode(ROUNDS["round3"].candidate))
    workers.run_worker(cfg, data=synthetic_data())
    (t,) = load(cfg).trials
    assert t.state == TrialState.PRUNED, t.user_attrs["state_reason"]
    assert t.user_attrs["pruned_at_epoch"] == 2 and len(t.user_attrs["val_acc"]) == 2
    assert t.user_attrs["state_reason"] == "pruned: test rule"
    assert "PruneAtTwo" in t.user_attrs["pruner"]  # the rule that judged it is on record
    assert "pruned at epoch 2: test rule" in document.trial_line(t)


@pytest.mark.parametrize("state, words", [
    (TrialState.COMPLETE, "below the final score of 5 finished trials"),  # complete: outpaced
    (TrialState.PRUNED, "beaten by 5 trials with no more parameters"),  # no leaders: dominated
])
def test_pruner_reads_peers_from_storage_and_prunes_a_weak_curve(tmp_path, state, words):
    # Five finished peers, all smaller and far better at every epoch: the rule must stop
    # the running trial at its first judged epoch, reading them from the storage.
    cfg = config(tmp_path, recipe=Recipe(epochs=4, batch_size=64), pruner="pareto", prune_warmup=2, trials=6)
    study = identity.open_search(cfg)
    params = spaces.encode(ROUNDS["round3"].candidate)
    dists = {k: spaces.SPACE[k] for k in params}
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(
            state=state, values=[100.0, 1000] if state == TrialState.COMPLETE else None, params=params,
            distributions=dists, user_attrs={"params": 1000, "val_acc": [100.0] * 4}))
    study.enqueue_trial(params)
    workers.run_worker(cfg, data=synthetic_data())
    t = load(cfg).trials[-1]
    assert t.state == TrialState.PRUNED and t.user_attrs["pruned_at_epoch"] == 2
    assert words in t.user_attrs["state_reason"]


def test_with_baselines_enqueues_the_rounds_under_budget_by_name(tmp_path):
    cfg = config(tmp_path, with_baselines=True, trials=3, recipe=Recipe(epochs=1, batch_size=64))
    study = identity.open_search(cfg)
    assert studies.enqueue_baselines(study, cfg.max_params) == ["round1", "round2", "round3"]
    assert studies.enqueue_baselines(study, cfg.max_params) == ["round1", "round2", "round3"]  # once only
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 3
    workers.run_worker(cfg, data=synthetic_data())
    trials = load(cfg).trials
    assert sorted(t.user_attrs["baseline"] for t in trials) == ["round1", "round2", "round3"]
    for t in trials:
        assert spaces.decode(t.params) == ROUNDS[t.user_attrs["baseline"]].candidate


def test_the_test_set_never_steers_selection_or_pruning(tmp_path):
    # Same search twice, the second with a scrambled test set: every sampled candidate,
    # pruning decision, validation curve and objective value must be identical.
    def run(name: str, data: SearchData):
        cfg = config(tmp_path, study_name=name, trials=14, pruner="median", prune_warmup=1,
                     recipe=Recipe(epochs=2, batch_size=64))
        workers.run_worker(cfg, data=data)
        return [(t.params, t.state, t.user_attrs.get("val_acc"), t.values, t.user_attrs.get("state_reason"))
                for t in load(cfg).trials]

    data = synthetic_data()
    g = torch.Generator().manual_seed(9)
    scrambled = Split(torch.randint(0, 256, data.test.images.shape, generator=g, dtype=torch.uint8),
                      data.test.labels[torch.randperm(len(data.test), generator=g)])
    a = run("clean", data)
    b = run("scrambled", dataclasses.replace(data, test=scrambled))
    assert a == b
    assert any(state == TrialState.PRUNED for _, state, *_ in a)  # the rule did act


def test_resume_with_another_protocol_is_refused(tmp_path):
    cfg = config(tmp_path)
    identity.open_search(cfg)
    with pytest.raises(identity.StudyError, match="max_params"):
        identity.open_search(dataclasses.replace(cfg, max_params=5000))
    with pytest.raises(identity.StudyError, match="recipe"):
        identity.open_search(dataclasses.replace(cfg, recipe=Recipe(epochs=3)))


def test_rewording_the_protocol_sentence_refuses_no_study(tmp_path, monkeypatch):
    cfg = config(tmp_path)
    study = identity.open_search(cfg)
    assert study.user_attrs["protocol"] == identity.describe_search(cfg)  # kept for people
    monkeypatch.setattr(identity, "describe_search", lambda cfg: "the same protocol in other words")
    identity.open_search(cfg)  # no StudyError: values are compared, not words


def test_a_study_stored_before_an_identity_key_existed_opens_with_the_value_it_had(tmp_path):
    cfg = config(tmp_path)
    want = identity.search_identity(cfg)
    # as a study stored before these keys changed: no "objective" key, "reference_batch" in its recipe
    v1 = {k: v for k, v in want.items() if k != "objective"}
    v1 = {**v1, "recipe": {**want["recipe"], "reference_batch": 64, "momentum": 0.9}}  # momentum: now the candidate's
    storage, directions, metrics = optuna.storages.InMemoryStorage(), ["maximize", "minimize"], ["score", "params"]
    identity.open_study(storage, "search", directions, metrics, v1)  # stored then
    identity.open_study(storage, "search", directions, metrics, want)  # opened now
    with pytest.raises(identity.StudyError, match="objective"):
        identity.open_study(storage, "search", directions, metrics, {**want, "objective": "val_loss_last3"})
    with pytest.raises(identity.StudyError, match="recipe"):
        identity.open_study(storage, "search", directions, metrics,
                            {**want, "recipe": {**want["recipe"], "reference_batch": 32}})
    with pytest.raises(identity.StudyError, match="recipe"):  # a study that trained without momentum is another
        identity.open_study(storage, "search", directions, metrics,
                            {**want, "recipe": {**want["recipe"], "momentum": 0.0}})


def test_sqlite_refuses_concurrent_workers(tmp_path):
    with pytest.raises(identity.StudyError, match="journal"):
        studies.run_search(config(tmp_path, workers=2))


def test_a_search_checks_its_workers_and_opens_its_study_once(tmp_path, monkeypatch):
    cfg = config(tmp_path, storage=str(tmp_path / "s.journal"), trials=1)
    params = spaces.encode(ROUNDS["round3"].candidate)
    identity.open_search(cfg).add_trial(optuna.trial.create_trial(
        params=params, distributions={k: spaces.SPACE[k] for k in params}, values=[99.0, 5760]))  # nothing to train
    calls = []
    opened = studies.resume_search
    monkeypatch.setattr(studies, "ensure_mnist", lambda root, download=True: root)
    monkeypatch.setattr(studies, "check_workers", lambda storage, workers: calls.append("check"))
    monkeypatch.setattr(studies, "resume_search", lambda *a, **kw: calls.append("open") or opened(*a, **kw))
    monkeypatch.setattr(studies, "open_search", lambda *a, **kw: calls.append("open again"))
    monkeypatch.setattr(studies.document, "attach", lambda study, figs: False)
    studies.search(cfg)
    assert calls == ["check", "open"]


# --- worker processes on real MNIST (tiny subsets) ----------------------------------------


def real_config(tmp_path, data_root, **kw) -> SearchConfig:
    base = dict(
        storage=str(tmp_path / "s.journal"),
        data=DataConfig(root=data_root, download=False, val_size=500, train_size=256),
        recipe=Recipe(epochs=1, batch_size=64),
    )
    return config(tmp_path, **{**base, **kw})


@pytest.mark.mnist
def test_resume_reaches_the_requested_total(tmp_path, data_root):
    cfg = real_config(tmp_path, data_root, trials=2)
    studies.run_search(cfg, poll_seconds=0.2)
    assert counts.counts(load(cfg))["complete"] + counts.counts(load(cfg))["pruned"] == 2
    studies.run_search(dataclasses.replace(cfg, trials=4), poll_seconds=0.2)
    studies.run_search(dataclasses.replace(cfg, trials=4), poll_seconds=0.2)  # nothing left to do
    c = counts.counts(load(cfg))
    assert c["complete"] + c["pruned"] == 4 and c["running"] == c["waiting"] == 0


@pytest.mark.mnist
def test_two_workers_on_a_journal_share_the_study_without_duplicates(tmp_path, data_root):
    cfg = real_config(tmp_path, data_root, trials=7, workers=2, with_baselines=True)
    seen = []
    studies.run_search(cfg, on_event=lambda e: isinstance(e, studies.TrialFinished) and seen.append(e.trial),
                       poll_seconds=0.2)
    trials = load(cfg).trials
    done = [t for t in trials if t.state.is_finished()]
    assert len(done) == 7 and all(t.state != TrialState.FAIL for t in done)
    # a trial asked for while the other worker filled the total goes back to the queue untouched
    assert all(t.state == TrialState.WAITING and not t.params for t in trials if not t.state.is_finished())
    assert sorted(t.number for t in seen) == [t.number for t in done]  # each reported once
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers ran trials
    names = [t.user_attrs["baseline"] for t in trials if "baseline" in t.user_attrs]
    assert sorted(names) == ["round1", "round2", "round3"]  # each queued round ran exactly once


@pytest.mark.mnist
def test_a_killed_worker_trial_ends_failed_and_runs_again(tmp_path, data_root):
    cfg = real_config(tmp_path, data_root, trials=2,
                      recipe=Recipe(epochs=6, batch_size=64),
                      data=DataConfig(root=data_root, download=False, val_size=500, train_size=3000))
    killed = {}

    def killer():
        # Mid-trial (one epoch done), the worker is frozen before its trial is looked at
        # again, so it cannot finish the trial between that look and the kill, however
        # loaded the machine is; a trial that finished first is let go and the next awaited.
        storage = identity.open_storage(cfg.storage)
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            try:
                study = optuna.load_study(study_name=cfg.study_name, storage=storage)
            except KeyError:
                time.sleep(0.2)
                continue
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.user_attrs.get("val_acc"):
                    pid = int(t.user_attrs["worker"].split(":")[1])  # host:pid:start
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except ProcessLookupError:
                        continue  # it finished and exited meanwhile
                    if study.trials[t.number].state == TrialState.RUNNING:
                        os.kill(pid, signal.SIGKILL)
                        killed.update(number=t.number, params=t.params)
                        return
                    os.kill(pid, signal.SIGCONT)
            time.sleep(0.2)

    thread = threading.Thread(target=killer)
    thread.start()
    studies.run_search(cfg, poll_seconds=0.2)
    thread.join()
    assert killed, "no running trial was seen to kill"
    trials = load(cfg).trials
    dead = trials[killed["number"]]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["state_reason"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].params == killed["params"] and retry[0].state.is_finished()
    c = counts.counts(load(cfg))
    assert c["complete"] + c["pruned"] == 2 and c["running"] == 0


def test_rdb_heartbeat_fails_and_requeues_a_silent_trial(tmp_path, monkeypatch):
    # A trial whose worker stopped beating (killed on another machine, say) is failed by
    # Optuna's heartbeat check and re-queued by drill-search's callback.
    monkeypatch.setattr("search.execution.storage.HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr("search.execution.storage.GRACE_SECONDS", 1)
    cfg = config(tmp_path)
    study = identity.open_search(cfg, on_stale=liveness.requeue)
    study.enqueue_trial(spaces.encode(ROUNDS["round2"].candidate), user_attrs={"baseline": "round2"})
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna prefers optimize(); ask() is fine here
        trial = study.ask()
    spaces.sample(trial)
    study._storage.record_heartbeat(trial._trial_id)  # then the worker goes silent
    # The check fails it once the grace has passed by the database's clock (whole seconds
    # in SQLite): look until it has, however long a loaded machine takes.
    deadline = time.time() + 120
    while load(cfg).trials[0].state == TrialState.RUNNING:
        assert time.time() < deadline, "the heartbeat check never failed the silent trial"
        optuna.storages.fail_stale_trials(study)
        time.sleep(0.1)
    trials = load(cfg).trials
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING
    assert trials[1].system_attrs["fixed_params"] == trials[0].params
    assert trials[1].user_attrs == {"baseline": "round2", "retry_of": 0, "retries": 1}


@pytest.mark.mnist
def test_a_trial_trained_beside_another_worker_equals_the_candidate_trained_alone(tmp_path, data_root):
    # Worker processes share nothing but the storage: a candidate's curve must not depend
    # on what the other worker trains at the same time.
    from search.engine.train import train

    cfg = real_config(tmp_path, data_root, trials=3, workers=2, with_baselines=True,
                      recipe=Recipe(epochs=2, batch_size=64))
    studies.run_search(cfg, poll_seconds=0.2)
    searched = {t.user_attrs["baseline"]: t.user_attrs["val_acc"] for t in load(cfg).trials}
    threads = torch.get_num_threads()
    hardware.use_cores(torch.device("cpu"), cfg.workers)  # the threads each worker used
    try:
        data = workers.load_search_data(cfg, torch.device("cpu"))
        for name in ("round2", "round3"):
            alone = train(ROUNDS[name].candidate, cfg.recipe, data.train, {"val": data.val}, torch.device("cpu"))
            curve = [e.evals["val"].acc for e in alone.history]
            assert curve == searched[name], name  # same seed, same threads: the same numbers
    finally:
        torch.set_num_threads(threads)


def test_by_default_a_search_uses_every_core_on_a_journal_and_one_worker_on_sqlite(monkeypatch, tmp_path):
    from search import cli

    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)  # a 2-core machine
    args = cli.build_parser().parse_args(["run", "--trials", "2", "--device", "cpu"])
    cfg = cli.search_config(args, torch.device("cpu"))
    assert cfg.workers == 2 and cfg.storage == "studies/drill-search.journal"
    args = cli.build_parser().parse_args(["run", "--trials", "2", "--storage", str(tmp_path / "s.db")])
    assert cli.search_config(args, torch.device("cpu")).workers == 1  # SQLite takes one writer
    args = cli.build_parser().parse_args(["run", "--trials", "2", "--workers", "3"])
    assert cli.search_config(args, torch.device("cpu")).workers == 3


def test_cuda_workers_spread_over_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [hardware.worker_device("cuda", i, hardware.gpus("cuda")) for i in range(4)] == \
        ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert hardware.worker_device("cuda:1", 0, 2) == "cuda:1"  # a named GPU is every worker's
    assert hardware.worker_device("cpu", 3, 0) == "cpu" and hardware.worker_device("cuda", 1, 1) == "cuda"
    assert hardware.default_workers(torch.device("cuda")) == 2


def test_a_command_joining_a_running_search_draws_its_own_candidates(tmp_path):
    # Two commands with the same --seed, each with one worker (index 0): the second starts
    # while the first's trial runs, on the same number of trials, and must not replay the
    # first's sampler stream (v3's trials 3 and 4 were the same candidate).
    from optuna.trial import create_trial

    def trials(*states):
        out = [create_trial(state=state) for state in states]
        for number, t in enumerate(out):
            t.number = number
        return out

    first = trials(TrialState.WAITING, TrialState.WAITING, TrialState.WAITING)  # the rounds, queued
    joined = trials(TrialState.RUNNING, TrialState.WAITING, TrialState.WAITING)  # round1 under way
    assert workers.sampler_seed(17, 0, first) == workers.sampler_seed(17, 0, list(first))  # reproducible
    assert workers.sampler_seed(17, 0, joined) != workers.sampler_seed(17, 0, first)
    assert workers.sampler_seed(None, 0, joined) is None


def test_the_search_ends_its_story_before_the_figures_are_attached(tmp_path, monkeypatch):
    # the summary prints on Ended; attaching the figures takes a while and may be cut short
    from search import study as use_case

    cfg = config(tmp_path)
    said = []
    monkeypatch.setattr(use_case, "ensure_mnist", lambda root, download=True: root)
    monkeypatch.setattr(use_case, "run_search", lambda cfg, on_event, study: study)
    monkeypatch.setattr(use_case.document, "attach", lambda study, figs: said.append("attached"))
    outcome = use_case.search(cfg, lambda e: said.append(type(e).__name__))
    assert said == ["Started", "Ended", "attached"] and not outcome.interrupted


def test_one_count_of_a_studys_trials_towards_its_total():
    # what a search finished, what is left to start, when a worker stops, and whether a
    # new trial is one too many all read counts.counted
    import types

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[99.0, 1000]))
    for state in (TrialState.PRUNED, TrialState.FAIL):
        study.add_trial(optuna.trial.create_trial(state=state))
    study.ask()  # trial 3, running
    study.enqueue_trial({})  # trial 4, waiting
    assert (counts.counted(study), counts.counted(study, running=True)) == (2, 3)
    assert counts.counted(study, running=True, below=3) == 2  # not trial 2 (failed), nor 3 itself
    assert (counts.todo(study, 5), counts.todo(study, 3), counts.todo(study, 2)) == (2, 0, 0)
    stopped = []
    watched = types.SimpleNamespace(get_trials=study.get_trials, stop=lambda: stopped.append(True))
    counts.StopAtTotal(4)(watched, study.trials[0])
    assert stopped == []  # one left to start
    counts.StopAtTotal(3)(watched, study.trials[0])
    assert stopped == [True]


# --- the stages space ---------------------------------------------------------------------


def test_a_random_search_in_the_stages_space_trains_every_trial_it_draws_within_the_goal(tmp_path, count_steps):
    cfg = config(tmp_path, space="stages", sampler="random", strategy="full", trials=3, goal=Goal(max_params=3_000),
                 recipe=Recipe(epochs=1, batch_size=128))
    workers.run_worker(cfg, data=synthetic_data())
    study = load(cfg)
    assert study.user_attrs["space"] == stages.fingerprint()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3  # none rejected: all three trained
    assert all(t.user_attrs["params"] <= 3_000 and "n1" in t.params for t in study.trials)
    assert count_steps["n"] == 3 * 4


def test_an_enqueued_point_over_the_goal_in_the_stages_space_is_refused_in_one_sentence(tmp_path, count_steps):
    cfg = config(tmp_path, space="stages", sampler="random", trials=1, goal=Goal(max_params=3_000))
    identity.open_search(cfg).enqueue_trial(stages.encode(PUBLISHED["design3762"].candidate))
    workers.run_worker(cfg, data=synthetic_data())
    (t,) = load(cfg).trials
    assert count_steps["n"] == 0 and t.state == TrialState.PRUNED
    assert t.user_attrs["state_reason"] == "rejected: 3,762 parameters > goal 3,000"


def test_parameters_that_make_no_network_are_rejected_untrained(tmp_path, count_steps):
    cfg = config(tmp_path, space="stages", sampler="tpe-plain", trials=1)
    params = stages.encode(PUBLISHED["design3762"].candidate)
    params |= {f"pad{s}": False for s in (1, 2, 3)} | {"n3": 3, "w3_2": 8, "w3_3": 8}  # 28 -> 22 -> 11 -> 5 -> 2 -> -4
    identity.open_search(cfg).enqueue_trial(params)
    workers.run_worker(cfg, data=synthetic_data())
    (t,) = load(cfg).trials
    assert count_steps["n"] == 0 and t.state == TrialState.PRUNED
    assert t.user_attrs["state_reason"].startswith("rejected: the map shrinks to nothing in stage 3")


def test_a_resumed_study_keeps_its_space_and_refuses_another_in_words(tmp_path):
    made = config(tmp_path, space="chain")
    identity.open_search(made)
    kept, cfg = identity.resume_search(config(tmp_path, space="stages", defaulted=frozenset({"space"})))
    assert cfg.space == "chain" and kept.user_attrs["space"] == chain.fingerprint()
    with pytest.raises(identity.StudyError, match="made in the chain space, not stages: leave out --space"):
        identity.open_search(config(tmp_path, space="stages"))


def test_a_goal_no_network_of_the_space_fits_is_one_sentence_and_writes_nothing(tmp_path):
    cfg = config(tmp_path, space="stages", goal=Goal(max_params=300))
    with pytest.raises(identity.StudyError, match=r"--goal-params 300 is below the smallest network the stages "
                                                   r"space holds \(388 parameters\): ask for at least 388"):
        studies.run_search(cfg)
    assert not (tmp_path / "s.db").exists()
