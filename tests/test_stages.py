"""The second space (spaces.stages) and the sampler that draws only networks within the budget."""

from dataclasses import replace

import optuna
import pytest

from baselines import ROUNDS
from baselines.published import DESIGN_3762
from search.strategy.sampler import FittingSampler, draw_fitting
from spaces import stages

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(ROUNDS))
def test_each_round_is_a_point_of_the_stages_space(name):
    c = ROUNDS[name].candidate
    assert stages.outside(c) == []
    assert stages.decode(stages.encode(c)) == replace(c, arch=c.arch.to_net())
    assert stages.decode(stages.encode(c)).arch.params == ROUNDS[name].params


def test_the_published_design_is_a_point_of_the_stages_space():
    assert stages.outside(DESIGN_3762) == []
    assert stages.decode(stages.encode(DESIGN_3762)) == DESIGN_3762


def test_a_candidate_the_spaces_shape_cannot_hold_is_refused_in_words():
    four = replace(DESIGN_3762.arch, stages=DESIGN_3762.arch.stages + (DESIGN_3762.arch.stages[-1],))
    with pytest.raises(ValueError, match="4 stages, not 3"):
        stages.encode(replace(DESIGN_3762, arch=four))
    assert stages.outside(replace(DESIGN_3762, shift=0.05)) == ["shape"]  # shift and scale differ
    assert stages.outside(replace(DESIGN_3762, batch_size=48)) == ["batch_size"]


def test_every_drawn_point_round_trips_through_a_real_study():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    built = 0
    for _ in range(80):
        trial = study.ask()
        try:
            drawn = stages.sample(trial)
        except ValueError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        built += 1
        assert stages.encode(drawn) == trial.params  # the conditions leave out what does not exist
        study.tell(trial, 0.0)
        assert stages.decode(study.trials[-1].params) == drawn
    assert built > 40


def test_the_fitting_sampler_draws_what_rejection_of_random_draws_gives():
    budget = 4_000
    fitting = optuna.create_study(sampler=FittingSampler(stages, budget, seed=7))
    got = []
    for _ in range(25):
        trial = fitting.ask()
        got.append(stages.sample(trial))
        fitting.tell(trial, 0.0)
    # the reference: Optuna's RandomSampler on the same seed, every draw over the budget thrown away
    plain, want = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7)), []
    while len(want) < 25:
        trial = plain.ask()
        try:
            c = stages.sample(trial)
        except ValueError:
            c = None
        plain.tell(trial, state=optuna.trial.TrialState.FAIL)
        if c is not None and c.arch.params <= budget:
            want.append(c)
    assert got == want
    assert all(c.arch.params <= budget for c in got)


def test_an_enqueued_point_over_the_budget_is_still_what_the_trial_gets():
    study = optuna.create_study(sampler=FittingSampler(stages, 3_000, seed=1))
    study.enqueue_trial(stages.encode(ROUNDS["round1"].candidate))
    trial = study.ask()
    assert stages.sample(trial).arch.params == 7_936  # the objective refuses it in one sentence


def test_a_budget_no_network_fits_is_said_not_looped_on():
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(RuntimeError, match="no network of at most 10 parameters in 50 draws"):
        draw_fitting(draws, stages, 10, most=50)
