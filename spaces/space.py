"""The search space, declared once as data, and the only code that calls `trial.suggest_*`.

`SPACE` maps each Optuna parameter name to its distribution, in the order they are
sampled. Two parameters are conditional (define-by-run, as Optuna intends): `c5` exists
only when `block5` is True, and `lr_step` only for the `step` schedule. The four
hand-designed rounds are points of this space (tests prove it): step schedule, lr_step 8,
batch 64, rotation 7 degrees.

Trials stored before `batch_size` and `rotation` joined the space have neither parameter;
`decode` reads them as `Candidate`'s defaults, the notebooks' values (64, 7), which is what
they trained with.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import typing
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from .arch import POOLS, SCHEDULES, Arch, Candidate

_NARROW = IntDistribution(4, 16, step=2)  # first block and the transition
_WIDE = IntDistribution(8, 32, step=2)  # second block: the widest layer of every round
_MID = IntDistribution(4, 20, step=2)  # blocks after the max-pool

SPACE: dict[str, BaseDistribution] = {
    "c1": _NARROW,
    "c2": _WIDE,
    "t": _NARROW,
    "c4": _MID,
    "block5": CategoricalDistribution((False, True)),
    "c5": _MID,  # only when block5
    "c6": _MID,
    "c7": _MID,
    "dropout": FloatDistribution(0.0, 0.15, step=0.01),
    "pool": CategoricalDistribution(POOLS),
    "lr": FloatDistribution(0.01, 0.3, log=True),
    "schedule": CategoricalDistribution(SCHEDULES[:2]),  # step, onecycle
    "lr_step": IntDistribution(4, 12),  # only for schedule "step"
    # The drill-down's other levers. Batch: the lr scales linearly from 64, and a larger
    # batch is the CPU's main speed lever. Rotation: the rounds use +-7 degrees; public
    # designs under 10k parameters use 5 to 35.
    "batch_size": CategoricalDistribution((64, 128, 256)),
    "rotation": FloatDistribution(0.0, 20.0, step=1.0),
}
# parameter -> (the parameter it depends on, the value that makes it exist)
CONDITIONS = {"c5": ("block5", True), "lr_step": ("schedule", "step")}
# Whether a random search draws only networks within its budget (search.strategy.sampler.
# FittingSampler): not here, so that the studies of this space (v1-v4) resume drawing as they did.
DRAWS_WITHIN_BUDGET = False


def smallest() -> int:
    """The fewest parameters a network of this space has: every width at its least, no block 5."""
    least = {name: SPACE[name].low for name in ("c1", "c2", "t", "c4", "c6", "c7")}
    return Arch(**least, c5=None, dropout=0.0).params


def sample(trial: Any, kind: type = Candidate, space: dict[str, BaseDistribution] = SPACE,
           conditions: dict[str, tuple[str, Any]] = CONDITIONS) -> Any:
    """Ask an Optuna trial for every parameter of the space, in declaration order."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if name in conditions:
            parent, value = conditions[name]
            if params[parent] != value:
                continue
        params[name] = _suggest(trial, name, dist)
    return decode(params, kind, conditions)


def _suggest(trial: Any, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


# A knob is a field of the candidate (of its Arch, for the network's) and the space's
# parameter of the same name: encode and decode read the candidate's fields, so a knob is
# declared once, as a field with a default, and its range once, in SPACE. A parameter that
# is no field is a switch: whether the field it gates is set (block5: c5 is not None).


def encode(candidate: Any, space: dict[str, BaseDistribution] = SPACE,
           conditions: dict[str, tuple[str, Any]] = CONDITIONS) -> dict[str, Any]:
    """The Optuna parameters of a candidate (what `enqueue_trial` takes), in the space's
    order; a field that is None (its condition does not hold) is left out."""
    # a knob this space does not search must hold its default: the value the space implies
    defaults = {name: default for name, _, default in _knobs(type(candidate))}
    values = {name: v for name, v in _values(candidate).items() if name in space or v != defaults.get(name)}
    if unranged := [name for name in values if name not in space]:
        raise ValueError(f"the space has no range for {', '.join(unranged)} of {type(candidate).__name__}")
    params: dict[str, Any] = {}
    for name in space:
        if name not in values:
            gated, wanted = _gated(name, values, conditions)
            params[name] = (values[gated] is not None) == wanted
        elif values[name] is not None:
            params[name] = values[name]
    return params


def decode(params: dict[str, Any], kind: type = Candidate,
           conditions: dict[str, tuple[str, Any]] = CONDITIONS) -> Any:
    """The candidate a trial's parameters describe (inverse of `encode`).

    A field whose condition does not hold is None; one whose condition holds must be
    stored. A training knob (a field of `kind` itself) the trial lacks takes the field's
    default: the trial was stored before that knob joined the space and trained with the
    default (the notebooks' schedule, batch and rotation). The network's fields (a nested
    dataclass) are never guessed: a trial without one is a damaged record, not a network."""
    knobs = {name: (type_, default) for name, type_, default in _knobs(kind)}
    training = {f for f, t, _ in _fields(kind) if not dataclasses.is_dataclass(t)}

    def value(name: str) -> Any:
        type_, default = knobs[name]
        if name in conditions:
            parent, wanted = conditions[name]
            if (value(parent) if parent in knobs else params[parent]) != wanted:
                return None
            return type_(params[name])  # its condition holds: it was stored
        if name in params:
            return type_(params[name])
        if default is dataclasses.MISSING or name not in training:
            raise KeyError(name)
        return default

    def build(cls: type) -> Any:
        return cls(**{f: build(t) if dataclasses.is_dataclass(t) else value(f) for f, t, _ in _fields(cls)})

    return build(kind)


def _values(candidate: Any) -> dict[str, Any]:
    """Knob -> value of a candidate, its nested dataclass (the Arch) flattened."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(candidate):
        v = getattr(candidate, f.name)
        out.update(_values(v) if dataclasses.is_dataclass(v) else {f.name: v})
    return out


def _gated(switch: str, values: dict[str, Any], conditions: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
    """The field a switch gates, and the switch's value that makes it exist."""
    for name, (parent, wanted) in conditions.items():
        if parent == switch and name in values:
            return name, wanted
    raise ValueError(f"the space's parameter {switch} is neither a knob of the candidate nor a switch of one")


def _knobs(kind: type) -> list[tuple[str, type, Any]]:
    """(name, value type, default) of each knob of a candidate type, nested dataclasses flattened."""
    return [knob for f, t, default in _fields(kind)
            for knob in (_knobs(t) if dataclasses.is_dataclass(t) else [(f, t, default)])]


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, type, Any], ...]:
    """(name, type, default) of each field of a dataclass; the type is a nested dataclass or
    the knob's value type (`int | None`: int), which decode converts the stored value to."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)),
                  f.default) for f in dataclasses.fields(cls))


def outside(candidate: Candidate) -> list[str]:
    """Names of the parameters whose values the space does not contain (empty: inside)."""
    return [name for name, value in encode(candidate).items() if not _contains(SPACE[name], value)]


def contains(candidate: Candidate) -> bool:
    return not outside(candidate)


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(dist, (IntDistribution, FloatDistribution)):
        if not dist.low <= value <= dist.high:
            return False
        if dist.step is None:
            return True
        k = (value - dist.low) / dist.step
        return math.isclose(k, round(k), abs_tol=1e-8)
    return False


def fingerprint() -> str:
    """A short hash of the space declaration; a study records it to refuse a changed space."""
    declared = {name: distribution_to_json(d) for name, d in SPACE.items()}
    blob = json.dumps({"space": declared, "conditions": CONDITIONS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
