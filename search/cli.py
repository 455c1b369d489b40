"""The command line: parse the flags (search/flags.py), build a frozen config, call the
command's use case and print its events (search/printers.py).

Bad input ends here as one sentence on stderr and exit code 2; nothing below the CLI
prints usage errors or reads argv or the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

# Only light modules here: `drill-search --help` must answer without importing torch,
# torchvision or optuna (each command imports what it needs).
from .config import (BASELINE_STUDY, DATA_ENV, EXIT_INTERRUPTED, MNIST_TRAIN, RECORDED, SEARCH_STUDY, BaselineConfig, ConfigError,
                     ConfirmConfig, DashboardConfig, DataConfig, ExportConfig, Goal, Recipe, ReportConfig, SearchConfig,
                     StaleConfig)
from .flags import UsageError, build_parser, default

EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"drill-search: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .dashboard import DashboardError
    from .engine.data import DataError
    from .execution.identity import SearchFailed, StudyError
    from .execution.storage import StorageError
    from .reporting import ReportError
    from .results.export import ExportError

    _set_up_libraries()
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"drill-search: error: --{e.field.replace('_', '-')} {e.message}", file=sys.stderr)
        return EXIT_USAGE
    except SearchFailed as e:
        print(f"drill-search: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except (UsageError, DataError, StudyError, StorageError, ExportError, ReportError, DashboardError) as e:
        print(f"drill-search: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ndrill-search: interrupted; finished trials are kept in the storage.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (drill-search baselines | head)
        sys.stderr.close()
        return 0


# --- flags -> configuration values ------------------------------------------------------


def _set_up_libraries() -> None:
    import warnings

    import optuna

    from .execution.supervisor import bars_lock_in_this_process

    bars_lock_in_this_process()  # no "leaked semaphore" after a kill -9

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def data_root(args: argparse.Namespace) -> Path:
    return args.data_dir or Path(os.environ.get(DATA_ENV) or "data")


def device_from(args: argparse.Namespace):
    from .execution.hardware import resolve_device

    return resolve_device(args.device)


def recipe_from(args: argparse.Namespace) -> Recipe:
    return Recipe(
        **_given(epochs=args.epochs),
        seed=default("seed", Recipe) if args.seed is None else args.seed,
        batch_size=args.batch_size,
        bf16=args.bf16,
        compile=args.compile,
        sparse_dropout=False if args.dense_dropout else None,
        deterministic=args.deterministic,
    )


def workers_from(args: argparse.Namespace, device, url: str) -> int:
    from .execution.hardware import default_workers

    return default_workers(device, url) if args.workers is None else args.workers


def search_config(args: argparse.Namespace, device) -> SearchConfig:
    """The search's configuration; --timeout counts from the process's start. A search flag
    not given takes the config's own default (`_given`), or a resumed study's own
    (`defaulted`)."""
    from .execution.storage import storage_url

    if args.timeout is not None and not args.timeout > 0:  # NaN too: no worker would start
        raise ConfigError("timeout", f"must be a positive number of seconds, got {args.timeout:g}.")
    recipe = recipe_from(args)
    # a rung as long as the run has nothing to promote from (the default past a short run: no rung)
    if (args.strategy or default("strategy")) == "promote" and (args.rung_epochs or 0) >= recipe.epochs:
        raise UsageError(f"--rung-epochs must be fewer than --epochs ({recipe.epochs}): the rung is the cheap first "
                         f"look, got {args.rung_epochs}.")
    url = storage_url(args.storage)
    return SearchConfig(
        storage=url,
        recipe=recipe,
        workers=workers_from(args, device, url),
        data=DataConfig(root=data_root(args), **_given(val_size=args.val_size), train_size=args.train_size),
        study_name=args.study_name or SEARCH_STUDY,
        trials=args.trials,
        seed=args.seed,
        goal=Goal(max_params=args.goal_params, min_score=args.goal_score),
        deadline=None if args.timeout is None else process_start() + args.timeout,
        device=str(device),
        defaulted=RECORDED - _choices_given(args),
        **_given(max_params=args.max_params, pruner=args.pruner, prune_warmup=args.prune_warmup, sampler=args.sampler,
                 space=args.space,
                 with_baselines=args.with_baselines, strategy=args.strategy, rung_epochs=args.rung_epochs,
                 eta=args.eta),
    )


def _choices_given(args: argparse.Namespace) -> set[str]:
    """The choices a study records (config.RECORDED) that the flags make, by name: a flag
    makes the choice it is named after (--max-params: max_params), its recipe's or data's
    (--epochs: recipe.epochs, --val-size: data.val_size), or the goal (--goal-params,
    --goal-score). A resumed study keeps its own for the others."""
    given = {"goal" if dest.startswith("goal_") else dest for dest, value in vars(args).items()
             if value is not None and value is not False}
    return {choice for choice in RECORDED if choice.split(".")[-1] in given}


def _given(**flags) -> dict:
    """The flags given: those left out (None) take the config's default."""
    return {name: value for name, value in flags.items() if value is not None}


def _search_flags(args: argparse.Namespace) -> list[str]:
    """The search's flags given, as flags.py declares them (a --baseline run refuses them)."""
    return [flag for flag, dest in args.search_flags if getattr(args, dest) is not None]


def confirm_config(args: argparse.Namespace, reevaluate: bool) -> ConfirmConfig:
    from .execution.storage import storage_url

    device = device_from(args)
    url = storage_url(args.storage)
    common = dict(storage=url, recipe=recipe_from(args), data=DataConfig(root=data_root(args)),
                  study_name=args.study_name, trials=_trial_numbers(args.trials), seeds=args.seeds,
                  first_seed=args.seed, workers=workers_from(args, device, url), device=str(device))
    if reevaluate:
        return ConfirmConfig(**common, reevaluate=True, leaders=args.leaders, goal_params=args.goal_params)
    return ConfirmConfig(**common, with_baselines=not args.no_baselines, train_size=args.train_size)


def _trial_numbers(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise UsageError(f"--trials takes trial numbers separated by commas, got {text!r}.") from None


def _protocol_flags(recipe: Recipe) -> list[str]:
    """The training flags given that change what a run computes: the fields of
    `Recipe.protocol` that differ from the default recipe's, the seed aside."""
    ours, default = recipe.protocol(), dataclasses.replace(Recipe(), seed=recipe.seed).protocol()
    return [f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(Recipe)
            if f.name in default and ours[f.name] != default[f.name]]


# --- commands ---------------------------------------------------------------------------


def cmd_baselines(args: argparse.Namespace) -> int:
    from .printers import print_rounds

    print_rounds()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.baseline is None and args.trials is None:
        raise UsageError("say what to run: --trials N (a search) or --baseline NAME (round0..round3, design3762).")
    if args.baseline is not None and args.trials is not None:
        raise UsageError("--trials and --baseline are two different runs: give one of them.")
    if args.baseline is not None:
        if _search_flags(args):
            raise UsageError(f"{', '.join(_search_flags(args))} belong to a search: a --baseline run trains the round with its "
                             f"own recipe on all {MNIST_TRAIN:,} training images.")
        return run_baseline(args)
    return run_search(args)


@functools.cache  # one instant, read once
def process_start() -> float:
    """When this process started, on time.time()'s clock: --timeout counts from here, the
    interpreter's start and every import included. Linux says it in /proc (clock ticks
    since boot); elsewhere, the instant the package was first imported (`search.IMPORTED`)."""
    from . import IMPORTED

    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(") ", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc, or no CLOCK_BOOTTIME
        return IMPORTED
    return min(time.time() - age, IMPORTED)


def run_search(args: argparse.Namespace) -> int:
    from . import study as studies
    from .printers import SearchPrinter

    cfg = search_config(args, device_from(args))
    printer = SearchPrinter(cfg, args.quiet)
    _sigterm_as_interrupt()
    try:
        outcome = studies.search(cfg, printer)
    finally:
        printer.close()
    printer.finish(outcome)
    return EXIT_INTERRUPTED if outcome.interrupted else 0


def _sigterm_as_interrupt() -> None:
    """SIGTERM stops like Ctrl-C (`supervisor.interrupt_once`)."""
    import signal

    from .execution.supervisor import interrupt_once

    interrupt_once(signal.SIGTERM)


def run_baseline(args: argparse.Namespace) -> int:
    from . import baseline
    from .printers import BaselinePrinter

    cfg = baseline_config(args)
    _sigterm_as_interrupt()
    baseline.reproduce(cfg, BaselinePrinter(cfg, args.quiet), progress=not args.quiet)
    return 0


def baseline_config(args: argparse.Namespace) -> BaselineConfig:
    import baselines

    from .execution.storage import storage_url

    try:
        chosen = baselines.get(args.baseline)
    except KeyError as e:
        raise UsageError(e.args[0] + ".") from None
    device = device_from(args)
    return BaselineConfig(baseline=chosen, recipe=recipe_from(args), data=DataConfig(root=data_root(args)),
                          storage=storage_url(args.storage), study_name=args.study_name or BASELINE_STUDY,
                          device=str(device))


def _reading_url(args: argparse.Namespace, shipped: bool) -> str:
    """The storage a command opens, with what the user should know of it. With `shipped`, a
    reading command given no --storage on a checkout with no study of its own opens the
    reference study shipped in studies/ (so report, dashboard and export work on a fresh
    clone, with no training)."""
    from .execution.storage import reading_url, storage_url

    url = reading_url(args.storage) if shipped else storage_url(args.storage)
    if url != storage_url(args.storage):
        print(f"no study of your own yet: reading the shipped reference study {url} (--storage picks another)",
              file=sys.stderr)
    _warn_if_cut(url)
    return url


def _warn_if_cut(url: str) -> None:
    from .execution.storage import cut_short

    if cut_short(url):
        print(f"warning: {url} ends in the middle of a line (a copy taken while it was written, or a write cut "
              "short); its last record is not read, and a command that writes to it moves that line aside first.",
              file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from . import reporting
    from .printers import print_report

    cfg = ReportConfig(storage=_reading_url(args, shipped=True), study_name=args.study_name, output=args.output,
                       attach=args.attach, storage_given=args.storage)
    print_report(reporting.write(cfg))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from . import dashboard
    from .printers import print_serving

    dashboard.serve(DashboardConfig(storage=_reading_url(args, shipped=True), study_name=args.study_name,
                                    host=args.host, port=args.port), print_serving)
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    return _check(confirm_config(args, reevaluate=False), args.quiet)


def cmd_reevaluate(args: argparse.Namespace) -> int:
    if _protocol_flags(recipe_from(args)):
        raise UsageError("a re-evaluation trains with the search's own recipe; leave out "
                         f"{', '.join(_protocol_flags(recipe_from(args)))}.")
    return _check(confirm_config(args, reevaluate=True), args.quiet)


def _check(cfg: ConfirmConfig, quiet: bool) -> int:
    """Train the missing runs of a confirmation or re-evaluation, then print its table."""
    from . import confirm
    from .printers import ConfirmPrinter

    _warn_if_cut(cfg.storage)
    printer = ConfirmPrinter(cfg, quiet)
    _sigterm_as_interrupt()
    try:
        outcome = confirm.retrain(cfg, printer)
    finally:
        printer.close()
    printer.finish(outcome)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .printers import print_export
    from .results import export

    cfg = ExportConfig(storage=_reading_url(args, shipped=True), trial=args.trial, study_name=args.study_name,
                       output=args.output)
    print_export(cfg, export.write(cfg))
    return 0


def cmd_fail_stale(args: argparse.Namespace) -> int:
    from .execution import liveness
    from .execution.storage import storage_url
    from .printers import print_swept

    cfg = StaleConfig(storage=storage_url(args.storage), study_name=args.study_name, older_than=args.older_than)
    _warn_if_cut(cfg.storage)
    print_swept(liveness.sweep(cfg), cfg.older_than)
    return 0


COMMANDS = {"run": cmd_run, "baselines": cmd_baselines, "report": cmd_report, "dashboard": cmd_dashboard,
            "confirm": cmd_confirm, "reevaluate": cmd_reevaluate, "fail-stale": cmd_fail_stale, "export": cmd_export}
