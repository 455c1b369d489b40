"""The two spaces by name, and which one a candidate or a trial's parameters belong to.

"chain" (`spaces.space`) is the first: the notebooks' chain and its widths, the space of
every study made before the second existed (v1-v4). "stages" (`spaces.stages`) is the
second: three stages and the training levers; the default for a new study. A study
records its space's fingerprint, from which `by_fingerprint` names it; a trial's
parameters name theirs by their keys (the chain's start with c1, the stages' with n1),
so reading a stored trial needs no study.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from optuna.distributions import BaseDistribution

from . import SPACE_NAMES
from . import space as chain
from . import stages
from .arch import Arch, Candidate

SPACES: dict[str, ModuleType] = dict(zip(SPACE_NAMES, (chain, stages)))


def by_name(name: str) -> ModuleType:
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; choose one of: {', '.join(SPACES)}") from None


def by_fingerprint(fingerprint: str | None) -> ModuleType | None:
    """The space a study recorded (None: a fingerprint of no space this code declares)."""
    return next((m for m in SPACES.values() if m.fingerprint() == fingerprint), None)


def of_study(user_attrs: dict) -> ModuleType:
    """The space of a study, from its recorded fingerprint; the chain's for a study that
    recorded another (identity refuses such a study before anything trains)."""
    return by_fingerprint(user_attrs.get("space")) or chain


def name_of(module: ModuleType) -> str:
    return next(name for name, m in SPACES.items() if m is module)


def holds(space: ModuleType, candidate: Candidate) -> bool:
    """Whether `candidate` is a point of `space`."""
    try:
        return not space.outside(candidate)
    except ValueError:  # a network of the other kind (a Net in the chain's space)
        return False


def as_net(candidate: Candidate) -> Candidate:
    """The candidate with its network written as stages (the chain's `Arch.to_net`): one
    form for comparing networks across the two spaces."""
    return replace(candidate, arch=candidate.arch.to_net()) if isinstance(candidate.arch, Arch) else candidate


def of_params(params: dict[str, Any]) -> ModuleType:
    return chain if "c1" in params else stages


def encode(candidate: Candidate, *chain_args: Any) -> dict[str, Any]:
    """A candidate's parameters in the space its network is drawn from: the chain's for an
    `Arch` (`chain_args`: another declaration of it, as `spaces.space.encode` takes), the
    stages' for a `Net`."""
    if chain_args or isinstance(candidate.arch, Arch):
        return chain.encode(candidate, *chain_args)
    return stages.encode(candidate)


def decode(params: dict[str, Any], *chain_args: Any) -> Candidate:
    """The candidate a stored trial's parameters describe, in the space they are of."""
    if chain_args:
        return chain.decode(params, *chain_args)
    return of_params(params).decode(params)


def distributions(params: dict[str, Any]) -> dict[str, BaseDistribution]:
    """The declared distribution of each of these parameters."""
    declared = of_params(params).SPACE
    return {k: declared[k] for k in params}
