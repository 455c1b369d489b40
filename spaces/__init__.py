"""The architecture type and the search space that contains the four hand-designed rounds."""

from .arch import POOLS, SCHEDULES, Arch, Candidate
from .space import CONDITIONS, SPACE, contains, decode, encode, fingerprint, outside, sample

__all__ = [
    "POOLS",
    "SCHEDULES",
    "Arch",
    "Candidate",
    "CONDITIONS",
    "SPACE",
    "contains",
    "decode",
    "encode",
    "fingerprint",
    "outside",
    "sample",
]
