"""A study's identity: opening a study only under the protocol it was made with, and a
search resumed under the choices it recorded (`resume_search`, `kept`).

Every study drill-search writes records its protocol in its user attributes (kind,
schema, space fingerprint, the recipe's values, ...) and refuses runs made under another
one. The kinds: a search ("search" by default; objective 0 is the mean validation
accuracy of the last epochs, test accuracy only recorded), "baselines" (the rounds
reproduced with their own recipe) and a search's companion studies of runs
(`search.execution.runs`: `<search>-confirm`, `<search>-reeval`).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.study import StudyDirection

import spaces

from .. import __version__
from ..config import SCORE_EPOCHS, Goal, SearchConfig
from .choices import run_choices, study_sampler
from .storage import open_storage

SCHEMA = 2  # bump when the meaning of stored attributes changes (2: objective 0 is the last-3 mean)


# Keys older versions recorded in a protocol, with the value the code now implies: a
# stored protocol that has them with that value is the same protocol without them.
# learning rates scale linearly from batch 64; SGD's momentum moved from the recipe to the
# candidate (its default there, 0.9, is what every study made before trained with)
_IMPLIED = {"reference_batch": 64, "momentum": 0.9}


# Identity keys added after studies were shipped, with the only value older studies had.
_SINCE = {"objective": "val_acc_last3", "strategy": {"name": "full"}}


def same_protocol(stored, wanted) -> bool:
    """Whether a stored protocol (a dict of values) is `wanted`, by value."""
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return stored == wanted
    stored = {k: v for k, v in stored.items() if not (k in _IMPLIED and k not in wanted and v == _IMPLIED[k])}
    return stored == wanted


class StudyError(Exception):
    """A study cannot be used as asked; the message is one sentence for the user."""


class SearchFailed(StudyError):
    """The search stopped because training kept failing; finished trials are kept."""


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    directions: list[str],
    metric_names: list[str],
    attrs: dict,
    sampler: optuna.samplers.BaseSampler | None = None,
    described: str | None = None,
    choices: dict | None = None,
) -> optuna.Study:
    """Create the study, or load it and check it was made under the same protocol.

    `attrs` are the study's identity (kind, schema, space fingerprint, the recipe's
    values, ...); a study of that name made with other directions or other values is
    refused, not mixed. `described` is the protocol in words, stored as "protocol" for
    people and never compared; `choices` are recorded when the study is made, and never
    compared either (a search's goal and sampler, which a later run may change).

    Two commands may open a new study at once (README's advice for several machines):
    the one whose creation fails opens the other's, and a study read while its creator
    still writes its attributes is read again once they are all there.
    """
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        try:
            return _create(storage, name, directions, metric_names, attrs, sampler, described, choices)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    _check_directions(study, directions)  # fixed at creation: known at once
    _await_creation(study)
    _check_attrs(study, attrs)
    return study


def _create(storage, name: str, directions: list[str], metric_names: list[str], attrs: dict, sampler,
            described: str | None, choices: dict | None) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names)
    words = {} if described is None else {"protocol": described}
    # "schema" last: a study that has it has every attribute (see _await_creation).
    for key, value in {"drill_search_version": __version__, **attrs, **words, **(choices or {}), "schema": SCHEMA}.items():
        study.set_user_attr(key, value)
    return study


CREATION_SECONDS = 30.0  # how long another command may take to write a new study's attributes


def _await_creation(study: optuna.Study) -> None:
    """Wait until the study's creator has written all its attributes ("schema" is the
    last), at most CREATION_SECONDS; a study with trials but no schema was never
    drill-search's, so it is not waited for."""
    deadline = time.monotonic() + CREATION_SECONDS
    while "schema" not in study.user_attrs and not study.get_trials(deepcopy=False) and time.monotonic() < deadline:
        time.sleep(0.1)


def _check_directions(study: optuna.Study, directions: list[str]) -> None:
    want = [StudyDirection.MAXIMIZE if d == "maximize" else StudyDirection.MINIMIZE for d in directions]
    if study.directions != want:
        raise StudyError(
            f"the study {study.study_name!r} already exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {directions}: choose another --study-name."
        )


def _check_attrs(study: optuna.Study, attrs: dict) -> None:
    name, have = study.study_name, study.user_attrs
    if have.get("schema") != SCHEMA:
        made = have.get("drill_search_version", "something other than drill-search")
        raise StudyError(
            f"the study {name!r} was written by {made} with storage schema {have.get('schema')}; "
            f"drill-search {__version__} reads schema {SCHEMA}: open it with that version or "
            "choose another --study-name."
        )
    for key, value in attrs.items():
        stored = have.get(key, _SINCE.get(key))  # a key older studies lack: the value they had
        if not same_protocol(stored, value):
            how = ("the search space in the code has changed since: resume it with the drill-search "
                   "revision that made it (its trials record code_revision)") if key == "space" else \
                "resume it with the options it was made with"
            made, asked = spaces.by_fingerprint(stored), spaces.by_fingerprint(value)
            if key == "space" and made is not None and asked is not None:
                raise StudyError(f"the study {name!r} was made in the {spaces.name_of(made)} space, not "
                                 f"{spaces.name_of(asked)}: leave out --space (a study keeps its own), or choose "
                                 "another --study-name.")
            raise StudyError(
                f"the study {name!r} was made with {key} = {stored!r}, not {value!r}: {how}, "
                "or choose another --study-name."
            )


def load(storage: optuna.storages.BaseStorage, name: str, where: str) -> optuna.Study:
    """The existing study `name` (nothing is created); `where` names the storage in the
    sentence that says there is no such study."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
        raise StudyError(f"there is no study {name!r} in {where}; studies there: {', '.join(names) or 'none'}.") from None


# --- search -----------------------------------------------------------------------------


def search_identity(cfg: SearchConfig) -> dict:
    """What makes two runs comparable: a study refuses runs that differ in any of these
    values. The sentence for people (`describe_search`) is stored beside them and never
    compared, so rewording it refuses no study."""
    return {
        "kind": "search",
        "objective": f"val_acc_last{SCORE_EPOCHS}",
        "space": spaces.by_name(cfg.space).fingerprint(),
        "val_size": cfg.data.val_size,
        "val_seed": cfg.data.val_seed,
        "train_size": cfg.data.train_size,
        "max_params": cfg.max_params,
        "recipe": {k: v for k, v in cfg.recipe.protocol().items() if k != "seed"},
        "strategy": strategy_identity(cfg),
    }


def strategy_identity(cfg: SearchConfig) -> dict:
    """How candidates reach the full protocol; a promoted study keeps its rung and eta."""
    if not cfg.promotes:
        return {"name": "full"}
    return {"name": "promote", "rung_epochs": cfg.rung_epochs, "eta": cfg.eta}


def describe_search(cfg: SearchConfig) -> str:
    return (
        f"train on {'all' if cfg.data.train_size is None else cfg.data.train_size} of the "
        f"training images left after holding out {cfg.data.val_size:,} (seed "
        f"{cfg.data.val_seed}); objective 0 is the mean validation accuracy of the last "
        f"{SCORE_EPOCHS} epochs; test accuracy is recorded, never used to select or prune"
    )


def open_search(cfg: SearchConfig, sampler: optuna.samplers.BaseSampler | None = None,
                on_stale: Callable | None = None) -> optuna.Study:
    """The search study `cfg` names, made now or resumed (`resume_search`)."""
    return resume_search(cfg, sampler, on_stale)[0]


def resume_search(cfg: SearchConfig, sampler: optuna.samplers.BaseSampler | None = None,
                  on_stale: Callable | None = None) -> tuple[optuna.Study, SearchConfig]:
    """The search study `cfg` names, and `cfg` with the choices no flag made as the study
    recorded them (`kept`); a study made now records `cfg`'s. Refused (StudyError) when a
    flag asks for another protocol than the study's."""
    _check_fits(cfg, None if "space" in cfg.defaulted else cfg.space)  # before a storage file exists
    storage = open_storage(cfg.storage, on_stale=on_stale)
    try:
        found = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=sampler)
    except KeyError:
        found = None
    if found is not None:
        _await_creation(found)
        cfg = kept(cfg, found)
    cfg = dataclasses.replace(cfg, defaulted=frozenset())
    _check_fits(cfg, cfg.space)
    study = open_study(storage, cfg.study_name, ["maximize", "minimize"], [f"val_acc_last{SCORE_EPOCHS}", "params"],
                       search_identity(cfg), sampler=sampler, described=describe_search(cfg),
                       choices=run_choices(cfg))
    return study, cfg


def _check_fits(cfg: SearchConfig, space: str | None) -> None:
    """Refuse a budget no network of `space` fits (None: of any space, when the study has
    not yet said which is its own), where the sampler draws only networks that fit: it
    would draw forever. (In the chain space such a search rejects every draw untrained, as
    it always did.)"""
    names = [n for n in ([space] if space is not None else spaces.SPACES)
             if spaces.by_name(n).DRAWS_WITHIN_BUDGET]
    if not names:
        return
    least, name = min((spaces.by_name(n).smallest(), n) for n in names)
    flag, budget = ("--goal-params", cfg.goal.max_params) if cfg.goal.max_params is not None else \
        ("--max-params", cfg.max_params)
    if budget < least:
        raise StudyError(f"{flag} {budget:,} is below the smallest network the {name} space holds "
                         f"({least:,} parameters): ask for at least {least:,}.")


def kept(cfg: SearchConfig, study: optuna.Study) -> SearchConfig:
    """`cfg` with each choice it left to its default (`cfg.defaulted`) as `study` recorded
    it: the protocol (its identity's values), the goal and the sampler. A choice the study
    did not record keeps `cfg`'s value (the identity check then says what differs)."""
    have, left = study.user_attrs, cfg.defaulted

    def stored(key: str):
        return have.get(key, _SINCE.get(key))

    recipe = {k: v for k, v in (stored("recipe") or {}).items() if f"recipe.{k}" in left}
    data = {k: have[k] for k in ("val_size", "val_seed", "train_size") if k in have and f"data.{k}" in left}
    top = {}
    if "max_params" in left and "max_params" in have:
        top["max_params"] = have["max_params"]
    strategy = stored("strategy")
    if "strategy" in left:
        top["strategy"] = strategy["name"]
    if strategy["name"] == "promote":
        top.update({k: strategy[k] for k in ("rung_epochs", "eta") if k in left})
    if "goal" in left and "goal" in have:
        top["goal"] = Goal(**have["goal"])
    if "sampler" in left:
        top["sampler"] = study_sampler(study)
    if "space" in left and (space := spaces.by_fingerprint(stored("space"))) is not None:
        top["space"] = spaces.name_of(space)
    return dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, **recipe),
                               data=dataclasses.replace(cfg.data, **data), **top)
