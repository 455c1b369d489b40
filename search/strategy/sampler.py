"""Samplers, and the view of the study that makes TPE aim at the user's goal.

Why a view: v2's TPE spent nearly all of its budget under 3,000 parameters. In a
two-objective study Optuna's TPE (5.x, `samplers/_tpe/sampler.py`) takes as its "good"
set the first ceil(0.1 n) trials by non-dominated sorting, and when the first front
holds more than that it picks them by hypervolume subset selection with the reference
point at 1.1x the front's worst values (`_get_reference_point`). Accuracy is maximised,
so that point sits about 10 points below a front whose accuracies span about 3: every
point's box is about as tall as any other's, and its width (the parameters it saves)
decides. The small end wins. TPE has no option for the reference point or for the
values it ranks, so `GoalSampler` hands it the same trials with other values
(`study_view`):

- no goal: both objectives rescaled to [0, 1] over the complete trials and minimised
  (error = best score - score), so the reference point sits 10% past the worst of each
  and neither axis rules the choice;
- `Goal(max_params=P)`: one objective, the score, maximised; a trial over P parameters
  is infeasible for TPE (a constraint), so its good set is the best networks under P;
- `Goal(min_score=S)`: one objective, the parameters, minimised; a trial whose score is
  below S, or that never reached the full protocol, is infeasible.

Trials that stopped at the cheap rung (`search.strategy.promote`) carry their rung score as an
intermediate value in the view, which single-objective TPE ranks among pruned trials.
The stored study is never changed: the dashboard and the report read the real values.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .. import optuna_private
from ..config import SAMPLERS, Goal

RUNG_SCORE = "rung_val_acc"  # user attribute: the rung's validation accuracy per epoch


class _StudyView:
    """The study as TPE should see it: the same trials with the goal's values.

    TPE reads a study through `directions`, `_is_multi_objective()` and `_get_trials()`
    (private, but the only way it reads trials; a test runs TPE through this view, so a
    change in Optuna shows up there); everything else is the real study's.
    """

    def __init__(self, study: optuna.Study, goal: Goal) -> None:
        self._study, self._goal = study, goal
        single = goal.max_params is not None or goal.min_score is not None
        if goal.max_params is not None:
            self.directions = [StudyDirection.MAXIMIZE]
        elif goal.min_score is not None:
            self.directions = [StudyDirection.MINIMIZE]
        else:
            self.directions = [StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]
        self._single = single

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @property
    def direction(self) -> StudyDirection:
        return self.directions[0]

    def _is_multi_objective(self) -> bool:
        return not self._single

    def _get_trials(self, deepcopy: bool = False, states=None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = optuna_private.sampler_trials(self._study, states, use_cache)
        complete = [t for t in optuna_private.sampler_trials(self._study, (TrialState.COMPLETE,), use_cache) if t.values]
        return [view_trial(t, self._goal, complete) for t in trials]

    def get_trials(self, deepcopy: bool = False, states=None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)


def view_trial(t: FrozenTrial, goal: Goal, complete: list[FrozenTrial]) -> FrozenTrial:
    """`t` with the values, constraint and intermediate value of the goal's view."""
    v = copy.copy(t)
    v.system_attrs = dict(t.system_attrs)
    v.intermediate_values = dict(t.intermediate_values)
    rung = t.user_attrs.get(RUNG_SCORE)
    params = t.user_attrs.get("params")
    if t.state == TrialState.PRUNED and rung and "val_acc" not in t.user_attrs:
        v.intermediate_values = {1: rung[-1]}  # the rung's figure, ranked among pruned trials
    if goal.max_params is not None:
        if t.values is not None:
            v.values = [t.values[0]]
        if params is not None and params > goal.max_params:
            v.set_constraint("goal", float(params - goal.max_params))
    elif goal.min_score is not None:
        if t.values is not None:
            v.values = [t.values[1]]
        if t.state != TrialState.RUNNING:
            # feasible (<= 0) only when the full protocol reached the score
            v.set_constraint("goal", 1.0 if t.values is None else goal.min_score - t.values[0])
    elif t.values is not None:
        v.values = _rescaled(t.values, complete)
    return v


def _rescaled(values, complete: list[FrozenTrial]) -> list[float]:
    """(score, params) as two minimised values in [0, 1] over the complete trials."""
    scores = [t.values[0] for t in complete] or [values[0]]
    sizes = [t.values[1] for t in complete] or [values[1]]

    def unit(x: float, lo: float, hi: float) -> float:
        return (x - lo) / (hi - lo) if hi > lo else 0.0

    return [unit(max(scores) - values[0], 0.0, max(scores) - min(scores)), unit(values[1], min(sizes), max(sizes))]


class ForwardingSampler(optuna.samplers.BaseSampler):
    """`inner`, every call handed on; the sampling calls see the study through `_view`
    (the study itself here). Subclasses change the view or one call."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner

    def _view(self, study: optuna.Study) -> Any:
        return study

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(self._view(study), trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return self.inner.sample_relative(self._view(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self.inner.sample_independent(self._view(study), trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


class GoalSampler(ForwardingSampler):
    """A sampler (TPE) that sees the study through the goal's view (see the module)."""

    def __init__(self, inner: optuna.samplers.BaseSampler, goal: Goal) -> None:
        super().__init__(inner)
        self.goal = goal

    def _view(self, study: optuna.Study) -> Any:
        return _StudyView(study, self.goal)


class FittingSampler(optuna.samplers.BaseSampler):
    """Random sampling of a space, conditioned on the network fitting a parameter budget.

    Optuna's samplers take constraints as soft (a candidate over the budget is drawn,
    then rejected: a trial spent), so this one draws whole points itself: from Optuna's
    own RandomSampler, in a private in-memory study, again and again until a point
    builds and fits (its closed-form count, `Net.params`), and hands that point to the
    trial as its relative sample. What it draws is exactly what rejection sampling of
    the random distribution gives (tested: the same points as a plain rejection loop on
    the same seed), without a trial per rejected draw. `space` is a space module
    (`spaces.stages`): its SPACE and its sample(trial). A trial enqueued whole gets its
    own point, whatever its size (the objective refuses one over the budget in a
    sentence); one enqueued in part takes the rest from the fitting draw, so it may not fit.
    """

    def __init__(self, space: Any, budget: int, seed: int | None = None) -> None:
        self.space, self.budget = space, budget
        self._random = optuna.samplers.RandomSampler(seed=seed)  # its stream runs on across draws

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return dict(self.space.SPACE)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        if not search_space:
            return {}
        # a new private study per trial: the draws it threw away are not kept
        return draw_fitting(optuna.create_study(sampler=self._random), self.space, self.budget)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        # only for a parameter the drawn point lacks: one a partly enqueued trial's fixed
        # values make exist (its own draw has the switch off)
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()


def draw_fitting(draws: optuna.Study, space: Any, budget: int, most: int = 100_000) -> dict[str, Any]:
    """The parameters of the first point `draws`' sampler draws that builds and fits `budget`."""
    for _ in range(most):
        trial = draws.ask()
        try:
            fits = space.sample(trial).arch.params <= budget
        except ValueError:  # no network: the map shrinks to nothing
            fits = False
        draws.tell(trial, state=TrialState.FAIL)  # the private study keeps no values
        if fits:
            return dict(trial.params)
    raise RuntimeError(f"no network of at most {budget:,} parameters in {most:,} draws of the space")


def make_sampler(name: str, seed: int | None, workers: int = 1, goal: Goal = Goal(), space: Any = None,
                 max_params: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler called `name`. Random sampling of a space that draws within its budget
    (`space.DRAWS_WITHIN_BUDGET`) draws only networks within the goal's parameters, and
    always within `max_params`; the other samplers draw anywhere and the objective rejects
    what is over (Optuna's constraints are soft)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name in ("tpe", "tpe-plain"):
            # group=True: c5 exists only with block5, and multivariate TPE needs groups
            # for such conditional spaces. constant_liar keeps parallel workers apart,
            # including those of other commands on the same storage (it changes nothing
            # while no other trial runs).
            tpe = optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10
            )
            return tpe if name == "tpe-plain" else GoalSampler(tpe, goal)
        if name == "random" and getattr(space, "DRAWS_WITHIN_BUDGET", False) and max_params is not None:
            return FittingSampler(space, min(goal.max_params or max_params, max_params), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
