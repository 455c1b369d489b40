"""What a search study aims at and runs with, as it recorded them: its parameter budget,
its goal and its sampler; and what a run may change of them. The goal and the sampler
are the run's to change (config.RUN_CHOICES: a run that trains records them); the budget
is part of the study's identity (`search.execution.identity`), which refuses another."""

from __future__ import annotations

import optuna

from ..config import DEFAULT_SAMPLER, LEGACY_SAMPLER, PARAM_BUDGET, Goal, SearchConfig


def study_budget(study: optuna.Study) -> int:
    """The parameter budget `study` was made under (PARAM_BUDGET when it recorded none)."""
    return study.user_attrs.get("max_params", PARAM_BUDGET)


def study_goal(study: optuna.Study) -> Goal:
    """The goal of the study's last run that trained (the whole front when it recorded none)."""
    return Goal(**study.user_attrs.get("goal", {}))


def run_choices(cfg: SearchConfig) -> dict:
    """The choices a run may change of the study it resumes (RUN_CHOICES), as recorded:
    not the study's identity, so not compared; `reevaluate` and the report read the goal."""
    return {"goal": cfg.goal.to_dict(), "sampler": cfg.sampler}


def changes(cfg: SearchConfig, study: optuna.Study) -> list[str]:
    """What `cfg` changes of the goal and sampler `study` recorded, in words ([] for none)."""
    out = []
    goal = study_goal(study)
    if cfg.goal != goal:
        out.append(f"goal to {cfg.goal.describe()} (it was {goal.describe()})")
    if cfg.sampler != study_sampler(study):
        out.append(f"sampler to {cfg.sampler} (it was {study_sampler(study)})")
    return out


def record_choices(study: optuna.Study, cfg: SearchConfig) -> None:
    """Record the goal and sampler of a run that trains (those the study has are kept)."""
    for key, value in run_choices(cfg).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)


def study_sampler(study: optuna.Study) -> str:
    """The sampler a search study ran with: the one it recorded last; for one made before
    studies recorded theirs, the goal-aimed TPE when it records a strategy (which came
    with the goal's view: v3), else Optuna's plain TPE (v1, v2; LEGACY_SAMPLER); the
    default for a study that holds nothing."""
    recorded = study.user_attrs.get("sampler")
    if recorded is not None:
        return recorded
    if not study.get_trials(deepcopy=False):
        return DEFAULT_SAMPLER
    return "tpe" if "strategy" in study.user_attrs else LEGACY_SAMPLER
