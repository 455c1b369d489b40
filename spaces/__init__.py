"""The architecture type and the search space that contains the four hand-designed rounds."""

from .arch import POOLS, Arch, Candidate
from .space import CONDITIONS, SPACE, contains, decode, encode, fingerprint, outside, sample

__all__ = [
    "POOLS",
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
