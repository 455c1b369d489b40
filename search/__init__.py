"""drill-search: automated drill-down for tiny MNIST CNNs with Optuna.

Which folder to open for what (imports run down this list, never up; tests/test_layout.py):

    cli.py                the commands: parse flags, build a frozen config, call a use case
    flags.py              the commands' flags, help texts and examples (the parser)
    printers.py           what a command prints of its use case's events (progress.py: the live lines)
    study.py, confirm.py  the use cases, one a command over a frozen config: run a search; confirm or
    baseline.py             re-evaluate its winners; reproduce a hand-designed round; write a study's
    reporting.py            report; serve it in optuna-dashboard (export: results/export.py; fail-stale:
    dashboard.py            execution/liveness.py)
    results/              what a person reads: selection rules, the report document, confirmation tables, export
    execution/            trials run and recorded, worker processes, hardware, storage and study identity
    strategy/             which candidates run and how far: samplers, pruning, promotion, shared statistics
    optuna_private.py     the Optuna internals called, one function each with why the public API does not do it
    engine/               MNIST, the network, the training loop (no Optuna)
    config.py             the frozen configurations and the protocol's constants, shared by all
"""

import time

# The first instant drill-search's code ran (time.time()), before torch or optuna is
# imported: --timeout counts from the process's start, or from here where the system does
# not say when that was (search.cli.process_start).
IMPORTED = time.time()

__version__ = "0.1.0"
