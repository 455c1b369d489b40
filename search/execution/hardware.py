"""The hardware policy: which device, how many worker processes, with how many threads
each, spread over which GPUs; and the storages that take only one writer."""

from __future__ import annotations

import os

import torch

from ..config import ConfigError
from .identity import StudyError
from .storage import is_sqlite


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(device: torch.device, storage: str | None = None) -> int:
    """Worker processes when --workers is not given: one on SQLite (`storage`), which takes
    one writer; else one per usable core on the CPU (two single-threaded workers get about
    1.3x more out of 2 cores than one with two threads, benchmarks/README.md), one per
    visible GPU on CUDA (a GPU with room for more is not measured: give --workers; with a
    named GPU, --device cuda:1, they all share it), one elsewhere."""
    if storage is not None and is_sqlite(storage):
        return 1
    if device.type == "cpu":
        return usable_cores()
    if device.type == "cuda":
        return max(1, torch.cuda.device_count())
    return 1


def resolve_device(name: str) -> torch.device:
    """The device `name` asks for ("auto": the GPU when there is one), refused with one
    sentence (ConfigError) when this machine does not have it."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("device", f"{name!r} is an unknown device; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device", f"{name} was asked for, but this PyTorch sees no CUDA GPU; use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError("device", f"{name}: there is no such GPU, this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s).")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError("device", f"{name} was asked for, but MPS is not available here; use --device cpu.")
    elif device.type != "cpu":
        raise ConfigError("device", f"{name!r} is an unsupported device; use auto, cpu, cuda, cuda:N or mps.")
    return device


def worker_device(device: str, index: int, gpus: int) -> str:
    """The device of worker `index`: plain "cuda" spreads workers round-robin over the
    `gpus` visible GPUs; a named device ("cuda:1", "cpu") is every worker's."""
    if device == "cuda" and gpus > 1:
        return f"cuda:{index % gpus}"
    return device


def gpus(device: str) -> int:
    """GPUs a worker on `device` may be spread over (none off CUDA)."""
    return torch.cuda.device_count() if device.startswith("cuda") else 0


def use_cores(device: torch.device, workers: int) -> None:
    """Share the cores this process may use among `workers` processes training on the
    CPU, unless OMP_NUM_THREADS says how many threads to use."""
    if device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, usable_cores() // workers))


def check_workers(storage: str, workers: int) -> None:
    """Refuse several writers on SQLite ("database is locked", no row locks)."""
    if workers > 1 and is_sqlite(storage):
        raise StudyError(
            f"SQLite is not safe for {workers} concurrent workers (\"database is locked\", no row "
            "locks): use a journal file (--storage studies/search.journal) on one machine, a postgresql:// "
            "URL, or --workers 1."
        )
