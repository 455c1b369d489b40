"""The candidate types and the two search spaces (the chain's, which holds the four
hand-designed rounds, and the stages', which also holds the published design).

`encode` and `decode` read a candidate or a trial's parameters in the space they belong
to (`spaces.registry`); the names from `spaces.space` are the first space's.

The space's names load on first use (PEP 562): `spaces.space` imports optuna, and the
CLI's parser, which needs only `spaces.arch`, must answer `--help` without it.
"""

from .arch import POOLS, SCHEDULES, Arch, Candidate
from .net import Net, Stage

SPACE_NAMES = ("chain", "stages")  # the first space (spaces.space) and the second (spaces.stages)
DEFAULT_SPACE = "stages"  # a new study's

_FROM_SPACE = ("CONDITIONS", "SPACE", "contains", "fingerprint", "outside", "sample")
_FROM_REGISTRY = ("SPACES", "as_net", "by_fingerprint", "by_name", "decode", "distributions", "encode", "holds", "name_of",
                  "of_study")

__all__ = ["DEFAULT_SPACE", "POOLS", "SCHEDULES", "SPACE_NAMES", "Arch", "Candidate", "Net", "Stage", *_FROM_SPACE, *_FROM_REGISTRY]


def __getattr__(name: str):
    if name in _FROM_SPACE:
        from . import space

        return getattr(space, name)
    if name in _FROM_REGISTRY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'spaces' has no attribute {name!r}")
