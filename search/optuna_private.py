"""The Optuna internals drill-search calls, one function per need, each with why the public
API does not do it. No other module reads a private name of Optuna's (tests/test_layout.py),
so a change of Optuna's internals breaks here, and in the tests that run these paths."""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState


def storage(study: optuna.Study) -> BaseStorage:
    # A Study has no public accessor for the storage it was opened on.
    return study._storage  # noqa: SLF001


def study_id(study: optuna.Study) -> int:
    # A Study has no public id; optuna-dashboard addresses a study's page by it.
    return study._study_id  # noqa: SLF001


def sampler_trials(study: optuna.Study, states: tuple[TrialState, ...] | None, use_cache: bool) -> list[FrozenTrial]:
    # Samplers read trials through the private `_get_trials` (`use_cache`); a view of the
    # study handed to them answers that call from the study's own.
    return study._get_trials(deepcopy=False, states=states, use_cache=use_cache)  # noqa: SLF001


def stored_state(trial: optuna.Trial) -> TrialState:
    # A Trial keeps its own copy; no public call re-reads one trial's state from the storage.
    return trial.study._storage.get_trial(trial._trial_id).state  # noqa: SLF001


def back_to_queue(study: optuna.Study, trial: FrozenTrial, mark: str) -> None:
    """The RUNNING trial WAITING again, untouched but for the user attribute `mark` (True)."""
    # No public call hands a running trial back to the queue.
    storage(study).set_trial_user_attr(trial._trial_id, mark, True)  # noqa: SLF001
    storage(study).set_trial_state_values(trial._trial_id, TrialState.WAITING)  # noqa: SLF001


def fail_once(study: optuna.Study, trial: FrozenTrial, reason: str) -> FrozenTrial | None:
    """Fail the RUNNING trial, its user attribute state_reason `reason`: the trial as stored
    then, or None if it had finished already."""
    # `study.tell(state=FAIL, skip_if_finished=True)` returns the finished trial whoever
    # finished it; the storage's own state change succeeds exactly once, so it says who did.
    try:
        storage(study).set_trial_user_attr(trial._trial_id, "state_reason", reason)  # noqa: SLF001
        if not storage(study).set_trial_state_values(trial._trial_id, TrialState.FAIL):  # noqa: SLF001
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    return storage(study).get_trial(trial._trial_id)  # noqa: SLF001


def running_trial(study: optuna.Study, template: FrozenTrial) -> optuna.Trial:
    """A new RUNNING trial of `study` made from `template` (its parameters and attributes)."""
    # No public call creates a running trial with given parameters: `add_trial` takes
    # finished ones only, and `ask` takes the oldest waiting trial, maybe another command's.
    # This is what `Study.add_trial` does, with a RUNNING template.
    return optuna.trial.Trial(study, storage(study).create_new_trial(study_id(study), template_trial=template))
