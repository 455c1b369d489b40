"""The second search space: networks as three stages, and the training levers the pilot measured.

Declared as data, as the first space (`spaces.space`) is: `SPACE` maps each Optuna
parameter to its distribution in sampling order, `CONDITIONS` names the parameters that
exist only for some values of another (a stage's third width only when it has three
convolutions). A point is three stages of one to three 3x3 convolutions, each stage
padded or not, a 1x1 transition after the first stage or none, a max-pool after the
first stage always and after the second or not, then the head; and its recipe.

The four rounds (`Arch.to_net`) and the published 3,762-parameter design are points of
it (tests). The pilot's table (studies/levers.md) says which levers are dimensions here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from .arch import Candidate
from .net import DROPS, HEADS, INITS, ORDERS, Net, Stage
from .space import _contains, _suggest

NAME = "stages"
STAGES = 3
CONVS = 3  # at most, per stage
_WIDTH = IntDistribution(4, 32, step=2)
_BOOL = CategoricalDistribution((False, True))


def _stage(s: int) -> dict[str, BaseDistribution]:
    dims = {f"n{s}": IntDistribution(1, CONVS), **{f"w{s}_{j}": _WIDTH for j in range(1, CONVS + 1)}, f"pad{s}": _BOOL}
    if s == 1:
        dims |= {"trans1": _BOOL, "t1": _WIDTH}  # the notebooks' 1x1 transition before the first pool
    if s == 2:
        dims["pool2"] = _BOOL  # the first stage always ends in a max-pool, the last never does
    return dims


SPACE: dict[str, BaseDistribution] = {
    **_stage(1), **_stage(2), **_stage(3),
    "order": CategoricalDistribution(ORDERS),
    "head": CategoricalDistribution(HEADS),
    "drop": CategoricalDistribution(DROPS),
    "dropout": FloatDistribution(0.0, 0.15, step=0.01),
    "bias": _BOOL,
    "init": CategoricalDistribution(INITS),
    # The recipe. SGD's learning rate at batch 64 (scaled linearly with the batch) has a
    # range per momentum: plain SGD takes steps as large as momentum 0.9 at ten times the
    # rate (the step size is lr / (1 - momentum)), so each range spans step sizes 0.05-4.0
    # (the rounds: 0.5-1.0 at momentum 0.9; the design: 0.2 without).
    "momentum": CategoricalDistribution((0.0, 0.9)),
    "lr": FloatDistribution(0.005, 0.4, log=True),  # with momentum 0.9
    "lr_plain": FloatDistribution(0.05, 4.0, log=True),  # without momentum
    "schedule": CategoricalDistribution(("step", "onecycle", "warmlinear")),
    "lr_step": IntDistribution(4, 12),
    "batch_size": CategoricalDistribution((32, 64, 128, 256)),
    "rotation": FloatDistribution(0.0, 20.0, step=1.0),
    "shift_scale": CategoricalDistribution((0.0, 0.09)),  # both the shift and the scale limit
    "affine_p": CategoricalDistribution((0.5, 1.0)),
    "jitter": CategoricalDistribution((0.0, 0.2)),
    "smoothing": CategoricalDistribution((0.0, 0.1)),
    "ema": CategoricalDistribution((0.0, 1.0)),
}
# A random search draws only networks within its budget (search.strategy.sampler.FittingSampler).
DRAWS_WITHIN_BUDGET = True
# parameter -> (the parameter it depends on, the values that make it exist)
CONDITIONS: dict[str, tuple[str, tuple]] = {
    **{f"w{s}_{j}": (f"n{s}", tuple(range(j, CONVS + 1))) for s in range(1, STAGES + 1) for j in (2, 3)},
    "t1": ("trans1", (True,)),
    "lr": ("momentum", (0.9,)),
    "lr_plain": ("momentum", (0.0,)),
    "lr_step": ("schedule", ("step",)),
}


def smallest() -> int:
    """The fewest parameters a network of this space has: one convolution of the least
    width per stage, unpadded (which keeps the map, 28 -> 26 -> 13 -> 11 -> 9), no
    transition, no bias."""
    least = SPACE["w1_1"].low
    return Net(tuple(Stage((least,), pool=s == 0) for s in range(STAGES))).params


def sample(trial: Any) -> Candidate:
    """Ask an Optuna trial for every parameter that exists, in declaration order."""
    params: dict[str, Any] = {}
    for name, dist in SPACE.items():
        if name in CONDITIONS and params[CONDITIONS[name][0]] not in CONDITIONS[name][1]:
            continue
        params[name] = _suggest(trial, name, dist)
    return decode(params)


def decode(params: dict[str, Any]) -> Candidate:
    """The candidate a trial's parameters describe; ValueError when they describe no
    network (a map that shrinks to nothing, avg6 on a map under 6x6)."""
    stages = tuple(
        Stage(tuple(int(params[f"w{s}_{j}"]) for j in range(1, int(params[f"n{s}"]) + 1)), pad=bool(params[f"pad{s}"]),
              transition=int(params["t1"]) if s == 1 and params["trans1"] else None,
              pool=s == 1 or (s == 2 and bool(params["pool2"])))
        for s in range(1, STAGES + 1))
    net = Net(stages, dropout=float(params["dropout"]), order=params["order"], head=params["head"],
              drop=params["drop"], bias=bool(params["bias"]), init=params["init"])
    step = params["schedule"] == "step"
    lr = float(params["lr"] if "lr" in params else params["lr_plain"])
    return Candidate(net, lr=lr, lr_step=int(params["lr_step"]) if step else None,
                     schedule=params["schedule"], batch_size=int(params["batch_size"]),
                     momentum=float(params["momentum"]), rotation=float(params["rotation"]),
                     shift=float(params["shift_scale"]), scale=float(params["shift_scale"]),
                     affine_p=float(params["affine_p"]), jitter=float(params["jitter"]),
                     smoothing=float(params["smoothing"]), ema=float(params["ema"]))


def encode(candidate: Candidate) -> dict[str, Any]:
    """The Optuna parameters of a candidate (what `enqueue_trial` takes), in the space's
    order; ValueError for a candidate this space's shape cannot hold."""
    net = candidate.arch
    if not isinstance(net, Net):
        net = net.to_net()  # the notebooks' chain is three stages too
    if unheld := _unheld(net, candidate):
        raise ValueError(f"the {NAME} space cannot hold {candidate.describe()}: {unheld}")
    values: dict[str, Any] = {"trans1": net.stages[0].transition is not None, "t1": net.stages[0].transition,
                              "pool2": net.stages[1].pool, "order": net.order, "head": net.head, "drop": net.drop,
                              "dropout": net.dropout, "bias": net.bias, "init": net.init, "shift_scale": candidate.shift,
                              "lr": candidate.lr, "lr_plain": candidate.lr}  # the condition keeps one
    for s, stage in enumerate(net.stages, 1):
        values |= {f"n{s}": len(stage.widths), f"pad{s}": stage.pad}
        values |= {f"w{s}_{j}": w for j, w in enumerate(stage.widths, 1)}
    for knob in ("momentum", "schedule", "lr_step", "batch_size", "rotation", "affine_p", "jitter",
                 "smoothing", "ema"):
        values[knob] = getattr(candidate, knob)
    return {name: values[name] for name in SPACE
            if name in values and values[name] is not None
            and (name not in CONDITIONS or values[CONDITIONS[name][0]] in CONDITIONS[name][1])}


def _unheld(net: Net, candidate: Candidate) -> str:
    """Why this space's shape cannot hold the candidate ('' when it can)."""
    if len(net.stages) != STAGES:
        return f"it has {len(net.stages)} stages, not {STAGES}"
    if any(len(s.widths) > CONVS for s in net.stages):
        return f"a stage has more than {CONVS} convolutions"
    if not net.stages[0].pool or net.stages[2].pool:
        return "its pools are not after the first stage, and maybe the second"
    if net.stages[1].transition or net.stages[2].transition:
        return "a transition in the second or third stage"
    if candidate.shift != candidate.scale:
        return "a shift limit other than its scale limit"
    return ""


def outside(candidate: Candidate) -> list[str]:
    """Names of the parameters whose values the space does not contain (empty: inside)."""
    try:
        params = encode(candidate)
    except ValueError:
        return ["shape"]
    return [name for name, value in params.items() if not _contains(SPACE[name], value)]


def fingerprint() -> str:
    """A short hash of the declaration; a study records it to refuse a changed space."""
    declared = {name: distribution_to_json(d) for name, d in SPACE.items()}
    blob = json.dumps({"space": declared, "conditions": {k: [p, list(v)] for k, (p, v) in CONDITIONS.items()}},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
