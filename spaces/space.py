"""The search space, declared once as data, and the only code that calls `trial.suggest_*`.

`SPACE` maps each Optuna parameter name to its distribution, in the order they are
sampled. Two parameters are conditional (define-by-run, as Optuna intends): `c5` exists
only when `block5` is True, and `lr_step` only for the `step` schedule. The four
hand-designed rounds are points of this space (tests prove it): step schedule, lr_step 8,
batch 64, rotation 7 degrees.

Trials stored before `batch_size` and `rotation` joined the space have neither parameter;
`decode` reads them as the notebooks' values (64, 7), which is what they trained with.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from .arch import NOTEBOOK_BATCH, NOTEBOOK_ROTATION, POOLS, SCHEDULES, Arch, Candidate

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
    "schedule": CategoricalDistribution(SCHEDULES),
    "lr_step": IntDistribution(4, 12),  # only for schedule "step"
    # The drill-down's other levers. Batch: the lr scales linearly from 64, and a larger
    # batch is the CPU's main speed lever. Rotation: the rounds use +-7 degrees; public
    # designs under 10k parameters use 5 to 35.
    "batch_size": CategoricalDistribution((64, 128, 256)),
    "rotation": FloatDistribution(0.0, 20.0, step=1.0),
}
# parameter -> (the parameter it depends on, the value that makes it exist)
CONDITIONS = {"c5": ("block5", True), "lr_step": ("schedule", "step")}


def sample(trial: Any) -> Candidate:
    """Ask an Optuna trial for every parameter of the space, in declaration order."""
    params: dict[str, Any] = {}
    for name, dist in SPACE.items():
        if name in CONDITIONS:
            parent, value = CONDITIONS[name]
            if params[parent] != value:
                continue
        params[name] = _suggest(trial, name, dist)
    return decode(params)


def _suggest(trial: Any, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


def encode(candidate: Candidate) -> dict[str, Any]:
    """The Optuna parameters of a candidate (what `enqueue_trial` takes)."""
    a = candidate.arch
    params: dict[str, Any] = {
        "c1": a.c1,
        "c2": a.c2,
        "t": a.t,
        "c4": a.c4,
        "block5": a.c5 is not None,
    }
    if a.c5 is not None:
        params["c5"] = a.c5
    params.update(c6=a.c6, c7=a.c7, dropout=a.dropout, pool=a.pool, lr=candidate.lr,
                  schedule=candidate.schedule)
    if candidate.lr_step is not None:
        params["lr_step"] = candidate.lr_step
    params.update(batch_size=candidate.batch_size, rotation=candidate.rotation)
    return params


def decode(params: dict[str, Any]) -> Candidate:
    """The candidate a trial's parameters describe (inverse of `encode`)."""
    arch = Arch(
        c1=int(params["c1"]),
        c2=int(params["c2"]),
        t=int(params["t"]),
        c4=int(params["c4"]),
        c5=int(params["c5"]) if params["block5"] else None,
        c6=int(params["c6"]),
        c7=int(params["c7"]),
        dropout=float(params["dropout"]),
        pool=params["pool"],
    )
    schedule = params.get("schedule", "step")
    lr_step = int(params["lr_step"]) if schedule == "step" else None
    return Candidate(arch=arch, lr=float(params["lr"]), lr_step=lr_step, schedule=schedule,
                     batch_size=int(params.get("batch_size", NOTEBOOK_BATCH)),
                     rotation=float(params.get("rotation", NOTEBOOK_ROTATION)))


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
