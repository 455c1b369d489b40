"""The hand-designed baselines as values of the search's types: the four rounds of the
drill-down (`rounds`) and a published design (`published`)."""

from .published import PUBLISHED
from .rounds import ROUNDS, Baseline

BASELINES: dict[str, Baseline] = {**ROUNDS, **PUBLISHED}


def get(name: str) -> Baseline:
    """The baseline called `name`; KeyError names the valid ones."""
    try:
        return BASELINES[name]
    except KeyError:
        raise KeyError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}") from None


__all__ = ["BASELINES", "PUBLISHED", "ROUNDS", "Baseline", "get"]
