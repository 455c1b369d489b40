"""The shipped reference study opens with plain Optuna and holds what README says."""

from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from search.config import score
from search.execution import identity
from search.results import selection

ROOT = Path(__file__).resolve().parents[1]
JOURNAL = ROOT / "studies" / "reference.journal"


def load(name: str = "search", journal: Path = JOURNAL) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))


def test_the_reference_study_is_a_full_protocol_search():
    study = load()
    a = study.user_attrs
    assert a["kind"] == "search" and a["val_size"] == 5000 and a["train_size"] is None
    assert a["max_params"] == 10000
    assert a["recipe"]["epochs"] == 15 and a["recipe"]["batch_size"] == 64 and not a["recipe"]["bf16"]
    assert study.metric_names == ["val_acc_last3", "params"]


def test_its_trials_are_consistent_with_their_outcomes():
    study = load()
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert finished
    rounds = {t.user_attrs["baseline"] for t in finished if t.state == TrialState.COMPLETE and "baseline" in t.user_attrs}
    assert rounds == {"round1", "round2", "round3"}  # the rounds are in, complete
    for t in finished:
        a = t.user_attrs
        if t.state == TrialState.COMPLETE:
            assert len(a["val_acc"]) == len(a["test_acc"]) == 15
            assert t.values[0] == score(a["val_acc"]) and t.values[1] == a["params"] <= 10000
        elif a["state_reason"].startswith("rejected"):
            assert a["params"] > 10000 and "val_acc" not in a and t.constraints["params"] > 0
        else:
            assert a["state_reason"].startswith("pruned") and 3 <= a["pruned_at_epoch"] == len(a["val_acc"]) < 15


def test_the_search_finished_its_50_trials():
    study = load()
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))  # rejected ones are PRUNED
    assert len(finished) >= 50
    assert not study.get_trials(states=(TrialState.RUNNING,))  # stopped cleanly, nothing left open


@pytest.mark.parametrize("journal", ["reference.journal", "v2.journal"])
def test_the_confirm_study_holds_full_recipe_runs_of_searched_nets_and_rounds(journal):
    study, confirm = load(journal=JOURNAL.parent / journal), load("search-confirm", JOURNAL.parent / journal)
    assert confirm.user_attrs["kind"] == "confirm"
    runs = confirm.get_trials(states=(TrialState.COMPLETE,))
    searched = {t.number: t for t in study.get_trials(states=(TrialState.COMPLETE,))}
    labels = set()
    for t in runs:
        a = t.user_attrs
        assert a["run_protocol"]["train_size"] is None and a["run_protocol"]["epochs"] == 15  # all 60,000 images
        assert a["confirm_seed"] >= 1 and len(a["test_acc"]) == 15
        assert t.values == [a["test_acc"][-1], a["params"]]  # final epoch, never the best one
        if "source_trial" in a:  # the same network the search trained
            assert t.params == searched[a["source_trial"]].params
        labels.add(a["label"])
    assert {"round1", "round2", "round3"} <= labels
    assert any(label.startswith("trial ") for label in labels)


def confirmed_seeds(confirm: optuna.Study) -> dict[str, set[int]]:
    """label -> the seeds it has a complete confirm run of."""
    seeds: dict[str, set[int]] = {}
    for t in confirm.get_trials(states=(TrialState.COMPLETE,)):
        seeds.setdefault(t.user_attrs["label"], set()).add(t.user_attrs["confirm_seed"])
    return seeds


def test_every_front_net_and_round_is_confirmed_on_three_seeds():
    study = load()
    seeds = confirmed_seeds(load("search-confirm"))
    wanted = [f"trial {t.number}" for t in selection.front(study)] + ["round1", "round2", "round3"]
    assert {label: seeds.get(label, set()) & {1, 2, 3} for label in wanted} == {label: {1, 2, 3} for label in wanted}
    assert seeds["trial 13"] == seeds["round3"] == {1, 2, 3, 4, 5, 6}  # README's six-seed comparison


SAMPLE = ROOT / "studies" / "unpruned.journal"
SAMPLE_TRAINED = 33  # complete trials in the shipped sample (issue 15 asks for at least 30)


def test_the_unpruned_sample_is_random_full_length_and_under_the_search_protocol():
    import spaces
    from search.engine.model import count_params

    study = optuna.load_study(study_name="unpruned", storage=JournalStorage(JournalFileBackend(str(SAMPLE))))
    a = study.user_attrs
    assert a["kind"] == "search" and a["space"] == spaces.fingerprint()  # the current space
    assert a["val_size"] == 5000 and a["train_size"] is None and a["max_params"] == 10000
    assert a["recipe"]["epochs"] == 15 and a["recipe"]["batch_size"] is None and not a["recipe"]["bf16"]
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    trained = [t for t in finished if t.state == TrialState.COMPLETE]
    assert len(trained) >= SAMPLE_TRAINED
    assert not any("baseline" in t.user_attrs for t in study.trials)  # drawn at random, no rounds queued
    for t in finished:
        if t.state == TrialState.PRUNED:  # only the over-budget ones: pruning was off
            assert t.user_attrs["state_reason"].startswith("rejected") and not t.user_attrs.get("val_acc")
            assert count_params(spaces.decode(t.params).arch) > 10000
        else:
            assert len(t.user_attrs["val_acc"]) == len(t.user_attrs["val_loss"]) == 15
            assert t.values[0] == score(t.user_attrs["val_acc"])
    assert len({(t.params["batch_size"], t.params["rotation"]) for t in trained}) > 1  # the new knobs vary


def test_the_unpruned_sample_resumes_under_the_current_code(tmp_path):
    # Made with an earlier commit: its stored identity must still match what the command
    # that made it asks for now, or the resume would be refused. On a copy: open_study
    # creates a study it does not find, and the shipped file must never be written.
    import shutil

    from search.config import DataConfig, Recipe, SearchConfig

    copy = tmp_path / SAMPLE.name
    shutil.copyfile(SAMPLE, copy)
    storage = JournalStorage(JournalFileBackend(str(copy)))
    cfg = SearchConfig(storage=str(SAMPLE), recipe=Recipe(), data=DataConfig(root=Path("data")),
                       study_name="unpruned", trials=36, pruner="none", sampler="random", seed=15,
                       strategy="full", space="chain")  # the command's resume keeps the study's space (kept)
    identity.open_study(storage, "unpruned", ["maximize", "minimize"], ["val_acc_last3", "params"],
                        identity.search_identity(cfg))  # an existing study: loaded and checked, never written
    assert copy.read_bytes() == SAMPLE.read_bytes()


V2 = ROOT / "studies" / "v2.journal"
V2_FINISHED = 100  # issue 15 asks for at least 100 finished trials


def test_reference_study_v2_is_a_full_protocol_search_of_the_current_space_with_the_rounds_in():
    import spaces

    study = optuna.load_study(study_name="search", storage=JournalStorage(JournalFileBackend(str(V2))))
    a = study.user_attrs
    assert a["kind"] == "search" and a["space"] == spaces.fingerprint() and a["objective"] == "val_acc_last3"
    assert a["val_size"] == 5000 and a["train_size"] is None and a["max_params"] == 10000
    assert a["recipe"]["epochs"] == 15 and a["recipe"]["batch_size"] is None and not a["recipe"]["bf16"]
    assert study.metric_names == ["val_acc_last3", "params"]
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) >= V2_FINISHED
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))  # stopped cleanly
    rounds = {t.user_attrs["baseline"] for t in finished if t.state == TrialState.COMPLETE and "baseline" in t.user_attrs}
    assert rounds == {"round1", "round2", "round3"}
    for t in finished:
        u = t.user_attrs
        if t.state == TrialState.COMPLETE:
            assert len(u["val_acc"]) == len(u["test_acc"]) == 15 and t.values[0] == score(u["val_acc"])
        elif u["state_reason"].startswith("rejected"):
            assert u["params"] > 10000 and "val_acc" not in u
        elif u["state_reason"].startswith(("diverged", "out of memory")):  # named outcomes of the candidate
            assert len(u.get("val_acc", [])) < 15
        else:  # pruned by the rule recorded with it, never before epoch 3 nor in a one-cycle warm-up
            assert u["state_reason"].startswith("pruned") and u["pruner"].startswith("Gate(rule=AnyOf(rules=(Outpaced(")
            assert 3 <= u["pruned_at_epoch"] == len(u["val_acc"]) < 15
            if t.params["schedule"] == "onecycle":
                assert u["pruned_at_epoch"] >= 6


def test_v2s_front_from_2000_params_and_the_rounds_are_confirmed_on_three_seeds():
    study, confirm = load(journal=V2), load("search-confirm", V2)
    seeds = confirmed_seeds(confirm)
    # README's table: front points from 2,000 params (the 9 below, search test 96.8-98.9, are left out), the rounds
    wanted = {t.user_attrs.get("baseline", f"trial {t.number}") for t in selection.front(study) if t.values[1] >= 2000}
    wanted |= {"round1", "round2", "round3"}
    assert len(wanted) == 12
    assert {label: seeds.get(label, set()) & {1, 2, 3} for label in wanted} == {label: {1, 2, 3} for label in wanted}
    assert not confirm.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))  # stopped cleanly


def test_the_rounds_confirm_to_the_same_figures_in_v1_and_v2():
    def rounds(journal: Path) -> dict[tuple[str, int], list[float]]:
        runs = load("search-confirm", journal).get_trials(states=(TrialState.COMPLETE,))
        return {(t.user_attrs["baseline"], t.user_attrs["confirm_seed"]): t.user_attrs["test_acc"]
                for t in runs if t.user_attrs.get("baseline") and t.user_attrs["confirm_seed"] in (1, 2, 3)}

    v1, v2 = rounds(JOURNAL), rounds(V2)
    assert set(v1) == set(v2) == {(r, seed) for r in ("round1", "round2", "round3") for seed in (1, 2, 3)}
    assert v1 == v2  # README: every epoch's test accuracy is equal; a confirmation run is reproducible


def test_readmes_picture_shows_both_fronts_and_every_network_confirmed_on_three_seeds():
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_fronts", ROOT / "benchmarks" / "compare_fronts.py")
    compare_fronts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_fronts)
    storages = {name: JournalStorage(JournalFileBackend(str(path))) for name, path in (("v1", JOURNAL), ("v2", V2))}
    studies = {k: optuna.load_study(study_name="search", storage=s) for k, s in storages.items()}
    fronts = {k: [tuple(t.values) for t in selection.front(s)] for k, s in studies.items()}
    fig = compare_fronts.figure(studies, storages, fronts)
    points = {tr.name: len(tr.x) for tr in fig.data}
    assert points == {"v1": 9, "v2": 19, "v1 confirmed": 9, "v2 confirmed": 9, "rounds confirmed": 3}
