"""Shared fixtures: real MNIST (from $DRILL_SEARCH_DATA, else ./data) and synthetic digits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from search.config import DATA_ENV
from search.engine.data import Mnist, Split, load_mnist


@pytest.fixture(scope="session")
def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or "data")


@pytest.fixture(scope="session")
def mnist(data_root) -> Mnist:
    """The real MNIST. Missing data is an error here, not a skip: these checks must run."""
    return load_mnist(data_root, download=True)


def synthetic_split(n: int, seed: int = 0) -> Split:
    """Learnable fake digits: class k lights a bar at row 2 + 2k, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
    for k in range(10):
        rows = labels == k
        images[rows, 2 + 2 * k : 4 + 2 * k, 4:24] = 255
    return Split(images, labels)


@pytest.fixture
def synthetic() -> Mnist:
    return Mnist(train=synthetic_split(512, seed=1), test=synthetic_split(256, seed=2))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """A test that reads real MNIST carries the `mnist` marker, so `-m "not mnist"` runs
    everything else on a machine without the data."""
    for item in items:
        if "mnist" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mnist)
