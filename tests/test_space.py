from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

import spaces
from baselines import ROUNDS
from search.engine.model import count_params
from spaces import Arch, Candidate


@pytest.mark.parametrize("name", list(ROUNDS))
def test_every_round_is_a_point_of_the_space(name):
    cand = ROUNDS[name].candidate
    assert spaces.outside(cand) == []
    assert spaces.decode(spaces.encode(cand)) == cand


@pytest.mark.parametrize("name", list(ROUNDS))
def test_every_round_round_trips_through_a_real_study(name):
    # Optuna raises for a categorical value outside its choices and keeps the params of an
    # enqueued trial; sampling must give the round back exactly.
    cand = ROUNDS[name].candidate
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(spaces.encode(cand))
    trial = study.ask()
    assert spaces.sample(trial) == cand
    assert count_params(spaces.sample(trial).arch) == ROUNDS[name].params


def test_a_point_outside_the_space_is_named():
    cand = Candidate(Arch(8, 16, 8, 12, None, 14, 40, 0.01), lr=0.1)
    assert spaces.outside(cand) == ["c7"]
    assert not spaces.contains(Candidate(Arch(8, 16, 8, 12, None, 14, 14, 0.013), lr=0.1))


def test_sampled_candidates_lie_in_the_space_and_c5_and_lr_step_are_conditional():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        cand = spaces.sample(trial)
        assert spaces.contains(cand) and spaces.decode(spaces.encode(cand)) == cand
        assert ("c5" in trial.params) == (cand.arch.c5 is not None)
        assert ("lr_step" in trial.params) == (cand.schedule == "step") == (cand.lr_step is not None)
        seen.add((cand.arch.c5 is None, cand.schedule))
        study.tell(trial, 0.0)
    assert len(seen) == 4  # with and without block 5, under both schedules


def test_candidate_rejects_a_step_on_onecycle_and_a_missing_step():
    with pytest.raises(ValueError):
        Candidate(Arch(8, 16, 8, 12, None, 14, 14, 0.01), lr=0.1, lr_step=8, schedule="onecycle")
    with pytest.raises(ValueError):
        Candidate(Arch(8, 16, 8, 12, None, 14, 14, 0.01), lr=0.1, lr_step=None)


def test_fingerprint_is_stable_and_changes_with_the_space(monkeypatch):
    fp = spaces.fingerprint()
    assert fp == spaces.fingerprint() and len(fp) == 12
    changed = dict(spaces.SPACE, lr=optuna.distributions.FloatDistribution(0.01, 0.5, log=True))
    monkeypatch.setattr(spaces.space, "SPACE", changed)
    assert spaces.fingerprint() != fp


def test_arch_rejects_nonsense():
    with pytest.raises(ValueError):
        Arch(0, 16, 8, 12, None, 14, 14, 0.01)
    with pytest.raises(ValueError):
        Arch(8, 16, 8, 12, None, 14, 14, 1.5)
    with pytest.raises(ValueError):
        Arch(8, 16, 8, 12, None, 14, 14, 0.0, pool="max")


def test_batch_size_and_rotation_are_candidate_knobs_with_the_notebooks_values_by_default():
    round3 = ROUNDS["round3"].candidate
    assert (round3.batch_size, round3.rotation) == (64, 7.0)
    assert spaces.encode(round3)["batch_size"] == 64 and spaces.encode(round3)["rotation"] == 7.0
    wide = Candidate(round3.arch, lr=0.1, batch_size=256, rotation=14.0)
    assert spaces.contains(wide) and spaces.decode(spaces.encode(wide)) == wide
    assert wide.lr_at(256) == pytest.approx(0.4) and "bs256 rot14" in wide.describe()
    assert spaces.outside(Candidate(round3.arch, lr=0.1, batch_size=100)) == ["batch_size"]
    with pytest.raises(ValueError):
        Candidate(round3.arch, lr=0.1, rotation=-1.0)


def test_trials_stored_before_batch_and_rotation_joined_decode_as_the_notebooks_recipe():
    old = {k: v for k, v in spaces.encode(ROUNDS["round2"].candidate).items() if k not in ("batch_size", "rotation")}
    assert spaces.decode(old) == ROUNDS["round2"].candidate


@dataclass(frozen=True)
class WithDecay(Candidate):
    """A candidate with one knob more, declared once: the field and its default."""

    weight_decay: float = 0.0


WITH_DECAY = {**spaces.SPACE, "weight_decay": FloatDistribution(0.0, 0.01, step=0.001)}  # ... and its range


def test_a_knob_declared_once_as_a_field_round_trips_through_the_derived_encoding():
    cand = WithDecay(ROUNDS["round3"].candidate.arch, lr=0.05, weight_decay=0.005)
    params = spaces.encode(cand, WITH_DECAY)
    assert params == {**spaces.encode(ROUNDS["round3"].candidate), "lr": 0.05, "weight_decay": 0.005}
    assert list(params)[-1] == "weight_decay"  # in the space's order
    assert spaces.decode(params, WithDecay) == cand
    # a trial stored before the knob joined the space trained with its default
    older = spaces.decode(spaces.encode(ROUNDS["round3"].candidate), WithDecay)
    assert older.weight_decay == 0.0 and older.arch == cand.arch
    # and through a real study: sampled, stored, read back
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        trial = study.ask()
        drawn = spaces.sample(trial, WithDecay, WITH_DECAY)
        assert trial.params["weight_decay"] == drawn.weight_decay and 0.0 <= drawn.weight_decay <= 0.01
        study.tell(trial, 0.0)
        assert spaces.decode(study.trials[-1].params, WithDecay) == drawn


def test_a_knob_without_a_range_in_the_space_is_refused_off_its_default_and_implied_at_it():
    with pytest.raises(ValueError, match="no range for weight_decay of WithDecay"):
        spaces.encode(WithDecay(ROUNDS["round3"].candidate.arch, lr=0.1, weight_decay=0.001))
    # at its default it is what the space implies: left out, and decoded back as the default
    at_default = WithDecay(ROUNDS["round3"].candidate.arch, lr=0.1)
    assert "weight_decay" not in spaces.encode(at_default)
    assert spaces.decode(spaces.encode(at_default), WithDecay) == at_default


STUDIES = Path(__file__).parents[1] / "studies"


@pytest.mark.parametrize("journal", ["reference", "unpruned", "v2", "fidelity", "v3"])
def test_every_shipped_trial_encodes_back_to_the_params_it_stored(journal):
    storage = JournalStorage(JournalFileBackend(str(STUDIES / f"{journal}.journal")))
    read = 0
    for summary in optuna.get_all_study_summaries(storage):
        for t in optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False):
            if not t.params:  # a trial that stopped before it drew its parameters
                continue
            again = spaces.encode(spaces.decode(t.params))
            if journal == "reference":  # v1, stored before batch and rotation joined the space
                assert again == {**t.params, "batch_size": 64, "rotation": 7.0}
            else:
                assert again == t.params
            read += 1
    assert read > 30


@pytest.mark.parametrize("missing", ["c1", "pool", "lr_step"])
def test_a_record_missing_a_network_field_or_a_field_its_condition_requires_is_not_guessed(missing):
    # a training knob an older trial lacks takes its default (it trained with it); a
    # missing network field, or a step schedule without its step, is a damaged record
    params = spaces.encode(ROUNDS["round1"].candidate)
    assert "lr_step" in params
    del params[missing]
    with pytest.raises(KeyError):
        spaces.decode(params)
