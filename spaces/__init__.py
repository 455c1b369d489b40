"""The architecture type and the search space that contains the four hand-designed rounds.

The space's names load on first use (PEP 562): `spaces.space` imports optuna, and the
CLI's parser, which needs only `spaces.arch`, must answer `--help` without it.
"""

from .arch import POOLS, SCHEDULES, Arch, Candidate
from .net import Net, Stage

_FROM_SPACE = ("CONDITIONS", "SPACE", "contains", "decode", "encode", "fingerprint", "outside", "sample")

__all__ = ["POOLS", "SCHEDULES", "Arch", "Candidate", "Net", "Stage", *_FROM_SPACE]


def __getattr__(name: str):
    if name in _FROM_SPACE:
        from . import space

        return getattr(space, name)
    raise AttributeError(f"module 'spaces' has no attribute {name!r}")
