"""The command line: a thin shell that builds configuration values and reports results.

Bad input ends here as one sentence on stderr and exit code 2; nothing below the CLI
prints usage errors or reads argv or the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

# Only light modules here: `drill-search --help` must answer without importing torch,
# torchvision or optuna (each command imports what it needs).
from .config import (BASELINE_STUDY, DATA_ENV, DEFAULT_SAMPLER, EXIT_INTERRUPTED, MAX_EPOCHS, MNIST_TRAIN, PRUNERS,
                     SAMPLERS, SEARCH_STUDY, STRATEGIES, BaselineConfig, ConfigError, ConfirmConfig, DashboardConfig,
                     DataConfig, ExportConfig, Goal, Recipe, ReportConfig, SearchConfig, StaleConfig)

EXIT_FAILED = 1
EXIT_USAGE = 2

MAIN_EXAMPLES = """\
examples:
  drill-search run --trials 50                search: 50 finished trials, resumable
  drill-search run --baseline round3          reproduce a hand-designed round (15 epochs)
  drill-search run --baseline round1 --epochs 2 --device cpu
  drill-search baselines                      list the four rounds and their reported figures

data: MNIST is read from --data-dir, else $DRILL_SEARCH_DATA, else ./data, in
torchvision's layout (<dir>/MNIST/raw/); it is downloaded there when missing.
"""

RUN_EXAMPLES = """\
examples:
  drill-search run --trials 50
      search the space until the study holds 50 finished trials (complete, pruned or
      rejected over budget); the same command again resumes, and --trials 80 later adds 30
  drill-search run --trials 50 --no-baselines --pruner none --epochs 4
      leave out the hand-designed rounds (by default they are the first trials),
      train every candidate, 4 epochs each (a quick look, not the exercise's protocol)
  drill-search run --trials 200 --workers 4 --storage studies/search.journal
      four worker processes on this machine (SQLite refuses concurrent workers)
  drill-search run --trials 500 --workers 8 --storage postgresql://user:pw@host/db
      run the same command on several machines: they share the study
  drill-search run --baseline round3
      train round3 with its own recipe: all 60,000 training images, test every epoch,
      and compare with the original write-up's figures
  drill-search run --baseline round0 --epochs 3 --seed 1 --quiet
  DRILL_SEARCH_DATA=../shared/datasets drill-search run --baseline round2 --device cpu
"""


class UsageError(Exception):
    """Bad input; the message is one sentence for the user."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one sentence (UsageError) instead of a usage dump."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help).")


def _default(name: str, cls=SearchConfig):
    """A config field's default: the dataclasses are the one place defaults live."""
    return cls.__dataclass_fields__[name].default


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="drill-search",
        description="Automated drill-down for tiny MNIST CNNs: reproduce the hand-designed "
        "rounds, then let Optuna search the same space.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_run(sub)
    add_baselines(sub)
    add_report(sub)
    add_dashboard(sub)
    add_confirm(sub)
    add_reevaluate(sub)
    add_fail_stale(sub)
    add_export(sub)
    return parser


def _command(sub, name: str, handler, help: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples, handled by `handler`."""
    p = sub.add_parser(name, help=help, description=description,
                       epilog="examples:\n" + "".join(f"  {e}\n" for e in examples),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=handler)
    return p


def _add_storage(p: argparse.ArgumentParser, default_study: str | None = SEARCH_STUDY) -> None:
    store = p.add_argument_group("storage")
    store.add_argument("--storage", metavar="URL", default=None,
                       help="an Optuna storage URL or journal file (default studies/drill-search.journal)")
    store.add_argument("--study-name", default=default_study,
                       help="the study (default: search; baselines for --baseline)" if default_study is None
                       else f"the study (default {default_study})")


SEARCH_SEED = (f"training seed (default {_default('seed', Recipe)}, as in the notebooks); a search also seeds its "
               "sampler with it")
SEEDS_FROM = "the first of the seeds (default: the command's first, see --seeds)"


def _add_training(p: argparse.ArgumentParser, seed_help: str = SEARCH_SEED) -> None:
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=_default("epochs", Recipe),
                       help=f"epochs per run, 1..{MAX_EPOCHS} (default {_default('epochs', Recipe)})")
    train.add_argument("--seed", type=int, default=None, help=seed_help)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto: the GPU when there is one)")
    train.add_argument("--data-dir", type=Path, default=None, help=f"folder holding MNIST/raw/ (default ${DATA_ENV}, else ./data)")
    fast = p.add_argument_group("speed (see benchmarks/README.md for what each does to accuracy)")
    fast.add_argument("--batch-size", type=int, default=None,
                      help="training batch for every candidate (default: the candidate's own; 64 for the rounds, "
                      "as in the notebooks); learning rates scale linearly from 64")
    fast.add_argument("--bf16", action="store_true", help="bfloat16 autocast (pays off on CPUs with AVX512-BF16 and on GPUs)")
    fast.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA graphs on a GPU)")
    fast.add_argument("--deterministic", action="store_true",
                      help="CUDA: deterministic kernels, so the same seed gives the same numbers (slower; the CPU "
                      "is deterministic already)")
    fast.add_argument("--dense-dropout", action="store_true",
                      help="use nn.Dropout on the CPU too (default there: SparseDropout, same distribution, cheaper)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")


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

    _quiet_libraries()
    try:
        return args.handler(args)
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


def _quiet_libraries() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _version() -> str:
    from . import __version__

    return __version__


def data_root(args: argparse.Namespace) -> Path:
    return args.data_dir or Path(os.environ.get(DATA_ENV) or "data")


def device_from(args: argparse.Namespace):
    from .execution.hardware import resolve_device

    return resolve_device(args.device)


def recipe_from(args: argparse.Namespace) -> Recipe:
    return Recipe(
        epochs=args.epochs,
        seed=_default("seed", Recipe) if args.seed is None else args.seed,
        batch_size=args.batch_size,
        bf16=args.bf16,
        compile=args.compile,
        sparse_dropout=False if args.dense_dropout else None,
        deterministic=args.deterministic,
    )


def workers_from(args: argparse.Namespace, device, url: str) -> int:
    from .execution.hardware import default_workers

    return default_workers(device, url) if args.workers is None else args.workers


def search_config(args: argparse.Namespace, device, started: float | None = None) -> SearchConfig:
    """The search's configuration; --timeout counts from `started`, the command's start.
    A search flag not given takes the config's own default (`_given`)."""
    from .execution.storage import storage_url

    if args.timeout is not None and not args.timeout > 0:  # NaN too: no worker would start
        raise ConfigError("timeout", f"must be a positive number of seconds, got {args.timeout:g}.")
    started = time.time() if started is None else started
    recipe = recipe_from(args)
    # a rung as long as the run has nothing to promote from (the default past a short run: no rung)
    if (args.strategy or _default("strategy")) == "promote" and (args.rung_epochs or 0) >= recipe.epochs:
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
        deadline=None if args.timeout is None else started + args.timeout,
        device=str(device),
        **_given(max_params=args.max_params, pruner=args.pruner, prune_warmup=args.prune_warmup, sampler=args.sampler,
                 with_baselines=args.with_baselines, strategy=args.strategy, rung_epochs=args.rung_epochs,
                 eta=args.eta),
    )


def _given(**flags) -> dict:
    """The flags given: those left out (None) take the config's default."""
    return {name: value for name, value in flags.items() if value is not None}


def _search_flags(args: argparse.Namespace) -> list[str]:
    """The search's flags given (a --baseline run refuses them)."""
    flags = {"--max-params": args.max_params, "--pruner": args.pruner, "--prune-warmup": args.prune_warmup,
             "--sampler": args.sampler, "--no-baselines": args.with_baselines, "--workers": args.workers,
             "--timeout": args.timeout, "--val-size": args.val_size, "--train-size": args.train_size,
             "--strategy": args.strategy, "--rung-epochs": args.rung_epochs, "--eta": args.eta,
             "--goal-params": args.goal_params, "--goal-score": args.goal_score}
    return [flag for flag, value in flags.items() if value is not None]


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


def add_baselines(sub) -> None:
    p = sub.add_parser("baselines", help="list the hand-designed rounds", description="List the four rounds.")
    p.set_defaults(handler=cmd_baselines)


def cmd_baselines(args: argparse.Namespace) -> int:
    from .printers import print_rounds

    print_rounds()
    return 0


def add_run(sub) -> None:
    run = sub.add_parser(
        "run",
        help="search the space, or reproduce a baseline round",
        description="Search the space with Optuna (--trials N), or reproduce a hand-designed "
        "round (--baseline NAME). Everything is recorded in the study storage.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = run.add_argument_group("what to run")
    what.add_argument("--trials", type=int, metavar="N",
                      help="search until the study holds N finished trials (a total, not N more; "
                      "rejected and pruned trials count, failed ones are retried)")
    what.add_argument("--baseline", metavar="NAME", help="a hand-designed round: round0, round1, round2 or round3")
    # Search-only options default to None here, so that --baseline can refuse them; the
    # real defaults come from SearchConfig / DataConfig in search_config().
    search = run.add_argument_group("search")
    search.add_argument("--max-params", type=int, default=None,
                        help=f"parameter budget; larger candidates are rejected untrained (default {_default('max_params'):,})")
    search.add_argument("--pruner", default=None, choices=PRUNERS,
                        help=f"the early-epoch rule, see search/strategy/prune.py (default {_default('pruner')})")
    search.add_argument("--prune-warmup", type=int, default=None,
                        help=f"epochs before pruning may stop a trial (default {_default('prune_warmup')})")
    search.add_argument("--sampler", default=None, choices=SAMPLERS,
                        help=f"Optuna sampler (default: the study's own; {DEFAULT_SAMPLER} for a new study, as no guided "
                        "sampler beat it on the strategy benchmark, studies/method.md; tpe: TPE aimed at the goal, as in v3; tpe-plain: Optuna's TPE "
                        "on the stored objectives, as in v1 and v2)")
    search.add_argument("--strategy", default=None, choices=STRATEGIES,
                        help=f"promote: a cheap complete schedule first, the full protocol only for the best "
                        f"1/--eta of it; full: every candidate trains the full protocol (default {_default('strategy')})")
    search.add_argument("--rung-epochs", type=int, default=None,
                        help=f"epochs of the cheap rung under --strategy promote (default {_default('rung_epochs')})")
    search.add_argument("--eta", type=int, default=None,
                        help=f"the best 1/ETA of the rung move on to the full protocol (default {_default('eta')})")
    goal = run.add_argument_group("goal (where the search spends its budget; the whole front stays in the study)")
    goal.add_argument("--goal-params", type=int, default=None, metavar="N",
                      help="the best network of at most N parameters (larger candidates are not trained, the "
                      "rounds excepted)")
    goal.add_argument("--goal-score", type=float, default=None, metavar="PERCENT",
                      help="the smallest network whose validation score reaches PERCENT")
    search.add_argument("--no-baselines", dest="with_baselines", action="store_const", const=False, default=None,
                        help="do not start with the hand-designed rounds (by default the rounds under the "
                        "budget are the first trials, trained under the search's protocol)")
    search.add_argument("--workers", type=int, default=None,
                        help="worker processes on this machine (default: one per CPU core, or one per GPU; one on SQLite)")
    search.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="start no new trial this many seconds after the command started (the study resumes "
                        "later)")
    search.add_argument("--val-size", type=int, default=None,
                        help=f"training images held out for validation (default {_default('val_size', DataConfig):,})")
    search.add_argument("--train-size", type=int, default=None,
                        help="train candidates on only this many images (quick looks; default all the rest)")
    _add_training(run)
    _add_storage(run, default_study=None)
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.baseline is None and args.trials is None:
        raise UsageError("say what to run: --trials N (a search) or --baseline NAME (round0..round3).")
    if args.baseline is not None and args.trials is not None:
        raise UsageError("--trials and --baseline are two different runs: give one of them.")
    if args.baseline is not None:
        if _search_flags(args):
            raise UsageError(f"{', '.join(_search_flags(args))} belong to a search: a --baseline run trains the round with its "
                             f"own recipe on all {MNIST_TRAIN:,} training images.")
        return run_baseline(args)
    return run_search(args)


def run_search(args: argparse.Namespace) -> int:
    started = time.time()  # --timeout counts from here, before torch is imported
    from . import study as studies
    from .printers import SearchPrinter

    cfg = search_config(args, device_from(args), started)
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


def add_report(sub) -> None:
    rep = _command(
        sub, "report", cmd_report, help="write an HTML report of a study",
        description="Write one self-contained HTML file (plotly) with the Pareto front, the "
        "validation curves, parameter importances and a table of the front; with --attach, also store the "
        "figures in the study so optuna-dashboard shows them too.",
        examples=["drill-search report", "drill-search report --study-name big --storage studies/big.journal"])
    _add_storage(rep)
    rep.add_argument("--output", type=Path, default=None, help="the HTML file (default: beside the study file)")
    rep.add_argument("--attach", action="store_true",
                     help="also store the figures in the study, for optuna-dashboard (a search stores them when "
                     "it ends; without this flag report only reads the study)")


def cmd_report(args: argparse.Namespace) -> int:
    from . import reporting
    from .printers import print_report

    cfg = ReportConfig(storage=_reading_url(args, shipped=True), study_name=args.study_name, output=args.output,
                       attach=args.attach, storage_given=args.storage)
    print_report(reporting.write(cfg))
    return 0


def add_dashboard(sub) -> None:
    dash = _command(
        sub, "dashboard", cmd_dashboard, help="open the study in optuna-dashboard",
        description="Serve optuna-dashboard on the study's storage (with its artifacts) until Ctrl-C.",
        examples=["drill-search dashboard",
                  "drill-search dashboard --port 8081",
                  "drill-search dashboard --storage studies/search.journal --host 0.0.0.0   (other machines may connect)"])
    _add_storage(dash)
    dash.add_argument("--host", default=_default("host", DashboardConfig),
                      help=f"address to listen on (default {_default('host', DashboardConfig)}: this machine only)")
    dash.add_argument("--port", type=int, default=_default("port", DashboardConfig),
                      help=f"port (default {_default('port', DashboardConfig)})")


def cmd_dashboard(args: argparse.Namespace) -> int:
    from . import dashboard
    from .printers import print_serving

    dashboard.serve(DashboardConfig(storage=_reading_url(args, shipped=True), study_name=args.study_name,
                                    host=args.host, port=args.port), print_serving)
    return 0


def add_confirm(sub) -> None:
    conf = _command(
        sub, "confirm", cmd_confirm, help="retrain winners with several seeds on all training images",
        description="Retrain chosen trials (default: the Pareto front under the budget, plus the "
        f"rounds under it) on all {MNIST_TRAIN:,} training images with several seeds, and report "
        "final-epoch test accuracy: mean, standard deviation, minimum, and whether 99.4% is "
        "reached on every seed. Results are stored in the study <name>-confirm.",
        examples=["drill-search confirm",
                  "drill-search confirm --trials 12,31 --seeds 5",
                  "drill-search confirm --workers 2 --storage studies/search.journal"])
    _add_runs(conf, "confirm (default: the Pareto front)", 3, "seeds per architecture (default 3: seeds 1, 2, 3")
    conf.add_argument("--no-baselines", action="store_true", help="leave the hand-designed rounds out")
    conf.add_argument("--train-size", type=int, default=None, help="train on only this many images (quick looks)")


def add_reevaluate(sub) -> None:
    ree = _command(
        sub, "reevaluate", cmd_reevaluate, help="train the search's leaders again with more seeds, judged on validation",
        description="Retrain the search's leaders (default: the best complete trials within the goal "
        "that one run cannot tell apart, at most --leaders) under the search's own protocol with more "
        "seeds, and rank them by their mean score over the new seeds on the held-out validation images (the "
        "search's own run picked them, so it is shown, not averaged). Test accuracy is recorded and never used to choose. "
        "Results are stored in the study <name>-reeval; then confirm the leader on test.",
        examples=["drill-search reevaluate --storage studies/v3.journal",
                  "drill-search reevaluate --trials 12,31 --seeds 4",
                  "drill-search confirm --trials 12 --no-baselines   # the leader, on test"])
    _add_runs(ree, "re-evaluate (default: the leaders)", 2, "more seeds per leader (default 2: seeds 1, 2")
    ree.add_argument("--leaders", type=int, default=4, help="at most this many leaders (default 4)")
    ree.add_argument("--goal-params", type=int, default=None, metavar="N",
                     help="leaders of at most N parameters (default: the search's own goal; without one, the front)")


def _add_runs(p: argparse.ArgumentParser, trials: str, seeds: int, seeds_help: str) -> None:
    """The flags of a command that trains runs (confirm, reevaluate): which trials, how
    many seeds, the workers, the engine and the storage."""
    p.add_argument("--trials", default=None, metavar="N,N,...", help=f"trial numbers to {trials}")
    p.add_argument("--seeds", type=int, default=seeds, help=f"{seeds_help}; --seed S starts them at S)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes on this machine, each training every n-th missing run (default: one "
                   "per CPU core, or one per GPU; one on SQLite)")
    _add_training(p, SEEDS_FROM)
    _add_storage(p)


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
        outcome = confirm.run(cfg, printer)
    finally:
        printer.close()
    printer.finish(outcome)
    return 0


def add_export(sub) -> None:
    exp = _command(
        sub, "export", cmd_export, help="write a trial's trained model to files plain PyTorch can load",
        description="Write the trial's weights, architecture (JSON), layer table and a torch.export "
        "program that loads with plain PyTorch: torch.export.load(path).module().",
        examples=["drill-search export 12", "drill-search export 3 --study-name baselines --output my-model"])
    exp.add_argument("trial", type=int, help="the trial number")
    _add_storage(exp)
    exp.add_argument("--output", type=Path, default=None, help="folder to write (default exports/<study>-trial-<N>)")


def cmd_export(args: argparse.Namespace) -> int:
    from .printers import print_export
    from .results import export

    cfg = ExportConfig(storage=_reading_url(args, shipped=True), trial=args.trial, study_name=args.study_name,
                       output=args.output)
    print_export(cfg, export.write(cfg))
    return 0


def add_fail_stale(sub) -> None:
    stale = _command(
        sub, "fail-stale", cmd_fail_stale, help="end trials left RUNNING by workers that died",
        description="Mark RUNNING trials whose worker is gone as failed and re-queue their parameters. "
        "On this machine a dead worker is recognised by its process id and start time; --older-than also ends "
        "trials that recorded no epoch for that long, on any machine but this one, where a live worker process "
        "is only slow. RDB storages (SQLite, "
        "PostgreSQL) also use Optuna's heartbeat, checked whenever a trial starts.",
        examples=["drill-search fail-stale --storage studies/search.journal",
                  "drill-search fail-stale --storage redis://host:6379 --older-than 1800"])
    _add_storage(stale)
    stale.add_argument("--older-than", type=float, default=None, metavar="SECONDS",
                       help="also end trials with no recorded progress for this long")


def cmd_fail_stale(args: argparse.Namespace) -> int:
    from .execution import liveness
    from .execution.storage import storage_url
    from .printers import print_swept

    cfg = StaleConfig(storage=storage_url(args.storage), study_name=args.study_name, older_than=args.older_than)
    _warn_if_cut(cfg.storage)
    print_swept(liveness.sweep(cfg), cfg.older_than)
    return 0
