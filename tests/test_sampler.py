"""The goal's view of a study (search.strategy.sampler) and TPE run through it, on a toy space."""

from __future__ import annotations

import statistics

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.config import Goal
from search.strategy.sampler import RUNG_SCORE, GoalSampler, _StudyView, make_sampler

X = {"x": FloatDistribution(0.0, 1.0)}


def toy(x: float) -> tuple[float, int]:
    """(score, params): larger networks score higher, as on MNIST."""
    return 90.0 + 9.0 * x, int(1_000 + 9_000 * x)


def toy_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def add(study: optuna.Study, x: float, state=TrialState.COMPLETE, rung=None) -> None:
    score, params = toy(x)
    attrs = {"params": params} | ({RUNG_SCORE: [rung]} if rung is not None else {})
    study.add_trial(create_trial(params={"x": x}, distributions=X, state=state, user_attrs=attrs,
                                 values=[score, params] if state == TrialState.COMPLETE else None))


def test_a_parameter_goal_is_one_maximised_score_with_the_goal_as_a_constraint():
    study = toy_study()
    for x in (0.1, 0.5, 0.9):
        add(study, x)
    view = _StudyView(study, Goal(max_params=5_000))
    assert not view._is_multi_objective() and view.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = view._get_trials(states=(TrialState.COMPLETE,))
    assert [t.values for t in trials] == [[toy(x)[0]] for x in (0.1, 0.5, 0.9)]
    assert [t.constraints.get("goal", 0.0) <= 0 for t in trials] == [True, False, False]
    assert study.trials[2].values == [toy(0.9)[0], toy(0.9)[1]]  # the stored study is untouched


def test_a_score_goal_makes_the_parameters_the_objective_and_unfinished_runs_infeasible():
    study = toy_study()
    add(study, 0.2)  # 91.8
    add(study, 0.8)  # 97.2
    add(study, 0.3, state=TrialState.PRUNED, rung=95.0)  # stopped at the rung
    trials = _StudyView(study, Goal(min_score=97.0))._get_trials()
    assert [t.values for t in trials[:2]] == [[toy(0.2)[1]], [toy(0.8)[1]]]
    assert [t.constraints["goal"] <= 0 for t in trials] == [False, True, False]
    assert trials[2].intermediate_values == {1: 95.0}  # ranked by its rung among pruned trials


def test_without_a_goal_both_objectives_are_minimised_on_the_same_unit_scale():
    study = toy_study()
    for x in (0.0, 0.25, 1.0):
        add(study, x)
    values = [t.values for t in _StudyView(study, Goal())._get_trials()]
    assert values[0] == [1.0, 0.0] and values[2] == [0.0, 1.0]
    assert values[1] == pytest.approx([0.75, 0.25])


def test_tpe_through_the_view_spends_its_budget_at_the_parameter_goal():
    study = toy_study()
    study.sampler = make_sampler("tpe", seed=0, goal=Goal(max_params=5_000))
    assert isinstance(study.sampler, GoalSampler)
    for _ in range(40):
        trial = study.ask(X)
        score, params = toy(trial.params["x"])
        trial.set_user_attr("params", params)
        study.tell(trial, [score, params])
    late = [t.params["x"] for t in study.trials[20:]]
    # the goal's best is x = 4/9 (5,000 params); random sampling would put half above 0.5
    assert 0.3 < statistics.median(late) <= 4 / 9 + 0.02


def test_a_resumed_study_keeps_its_sampler_however_the_default_moves(tmp_path):
    # v1-v3 were TPE studies made before studies recorded their sampler; resuming one
    # without --sampler must not switch it to the new default.
    from search.config import DEFAULT_SAMPLER, LEGACY_SAMPLER, DataConfig, Recipe, SearchConfig
    from search.execution import choices, identity

    def opened(storage, sampler=None) -> str:
        cfg = SearchConfig(storage=str(storage), recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path),
                           **({"defaulted": frozenset({"sampler"})} if sampler is None else {"sampler": sampler}))
        study, cfg = identity.resume_search(cfg)
        choices.record_choices(study, cfg)  # as a run that trains does
        return cfg.sampler

    new = tmp_path / "new.journal"
    assert opened(new) == DEFAULT_SAMPLER == "random"
    assert opened(new, "tpe") == "tpe" and opened(new) == "tpe"  # asked for once, kept on resume
    old = tmp_path / "old.journal"
    study = identity.open_search(SearchConfig(storage=str(old), recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path)))
    study.add_trial(create_trial(params={"x": 0.5}, distributions=X, values=[95.0, 5500]))
    study.set_user_attr("sampler", None)  # as a study written before the record existed
    # ... after the goal's view came in with the "strategy" record, as v3; before it (v1,
    # v2: no "strategy" record), Optuna's plain TPE (tests/test_resume.py, on the shipped studies)
    assert "strategy" in study.user_attrs and opened(old) == "tpe" != LEGACY_SAMPLER == "tpe-plain"
