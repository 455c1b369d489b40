"""The four hand-designed rounds as values of the search space's type."""

from .rounds import ROUNDS, Baseline, get

__all__ = ["ROUNDS", "Baseline", "get"]
