"""The command line's grammar: the commands, their flags, help texts and worked examples
(`drill-search <command> --help`). A bad flag is one sentence (`UsageError`); what the
flags mean, and what each command does, is cli.py's."""

from __future__ import annotations

import argparse
from pathlib import Path

# Only the config here: `drill-search --help` must answer without importing torch,
# torchvision or optuna.
from .config import (DATA_ENV, DEFAULT_SAMPLER, MAX_EPOCHS, MNIST_TRAIN, PRUNERS, SAMPLERS, SEARCH_STUDY, SPACE_NAMES,
                     STRATEGIES, DashboardConfig, DataConfig, Recipe, SearchConfig)


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


def default(name: str, cls=SearchConfig):
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


def _command(sub, name: str, help: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples."""
    p = sub.add_parser(name, help=help, description=description,
                       epilog="examples:\n" + "".join(f"  {e}\n" for e in examples),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return p


def _add_storage(p: argparse.ArgumentParser, default_study: str | None = SEARCH_STUDY) -> None:
    store = p.add_argument_group("storage")
    store.add_argument("--storage", metavar="URL", default=None,
                       help="an Optuna storage URL or journal file (default studies/drill-search.journal)")
    store.add_argument("--study-name", default=default_study,
                       help="the study (default: search; baselines for --baseline)" if default_study is None
                       else f"the study (default {default_study})")


SEARCH_SEED = (f"training seed (default {default('seed', Recipe)}, as in the notebooks); a search also seeds its "
               "sampler with it")
SEEDS_FROM = "the first of the seeds (default: the command's first, see --seeds)"


def _add_training(p: argparse.ArgumentParser, seed_help: str = SEARCH_SEED) -> None:
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=None,  # None: a resumed search keeps its own
                       help=f"epochs per run, 1..{MAX_EPOCHS} (default {default('epochs', Recipe)}; a resumed search: "
                       "its own)")
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


def _version() -> str:
    from . import __version__

    return __version__


def add_baselines(sub) -> None:
    sub.add_parser("baselines", help="list the hand-designed rounds", description="List the four rounds.")


def add_run(sub) -> None:
    """`run`: a search's flags (kept in `search_flags`: (flag, dest) each, so that the CLI
    knows them without a list of its own), a round's, the training's and the storage."""
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
    what.add_argument("--baseline", metavar="NAME", help="a hand-designed round (round0, round1, round2, round3) or "
                      "the published design (design3762); `drill-search baselines` lists them")
    # Search-only options default to None here, so that --baseline can refuse them; the
    # real defaults come from SearchConfig / DataConfig in search_config(). Each is
    # declared once, through `searching`, which keeps it in `search_flags`.
    declared = []

    def searching(group, *names, **kwargs) -> None:
        declared.append(group.add_argument(*names, **kwargs))

    search = run.add_argument_group("search")
    searching(search, "--max-params", type=int, default=None,
              help=f"parameter budget; larger candidates are rejected untrained (default {default('max_params'):,})")
    searching(search, "--pruner", default=None, choices=PRUNERS,
              help=f"the early-epoch rule, see search/strategy/prune.py (default {default('pruner')})")
    searching(search, "--prune-warmup", type=int, default=None,
              help=f"epochs before pruning may stop a trial (default {default('prune_warmup')})")
    searching(search, "--sampler", default=None, choices=SAMPLERS,
              help=f"Optuna sampler (default: the study's own; {DEFAULT_SAMPLER} for a new study, as no guided "
              "sampler beat it on the strategy benchmark, studies/method.md; tpe: TPE aimed at the goal, as in v3; tpe-plain: Optuna's TPE "
              "on the stored objectives, as in v1 and v2)")
    searching(search, "--space", default=None, choices=SPACE_NAMES,
              help=f"what candidates are drawn from (default: the study's own; {default('space')} for a new "
              "study): stages, three stages of 3x3 convolutions and the training levers the pilot "
              "measured; chain, the notebooks' chain and its widths, the space of v1-v4")
    searching(search, "--strategy", default=None, choices=STRATEGIES,
              help=f"promote: a cheap complete schedule first, the full protocol only for the best "
              f"1/--eta of it; full: every candidate trains the full protocol (default {default('strategy')})")
    searching(search, "--rung-epochs", type=int, default=None,
              help=f"epochs of the cheap rung under --strategy promote (default {default('rung_epochs')})")
    searching(search, "--eta", type=int, default=None,
              help=f"the best 1/ETA of the rung move on to the full protocol (default {default('eta')})")
    goal = run.add_argument_group("goal (where the search spends its budget; the whole front stays in the study)")
    searching(goal, "--goal-params", type=int, default=None, metavar="N",
              help="the best network of at most N parameters (larger candidates are not trained, the "
              "rounds excepted)")
    searching(goal, "--goal-score", type=float, default=None, metavar="PERCENT",
              help="the smallest network whose validation score reaches PERCENT")
    searching(search, "--no-baselines", dest="with_baselines", action="store_const", const=False, default=None,
              help="do not start with the baselines (by default the rounds, and in the stages space the published "
              "design, within the goal's parameters or the budget are the first trials, trained under the "
              "search's protocol)")
    searching(search, "--workers", type=int, default=None,
              help="worker processes on this machine (default: one per CPU core, or one per GPU; one on SQLite)")
    searching(search, "--timeout", type=float, default=None, metavar="SECONDS",
              help="start no new trial this many seconds after the command started (counted from the "
              "process's start, its imports included; the study resumes later)")
    searching(search, "--val-size", type=int, default=None,
              help=f"training images held out for validation (default {default('val_size', DataConfig):,})")
    searching(search, "--train-size", type=int, default=None,
              help="train candidates on only this many images (quick looks; default all the rest)")
    _add_training(run)
    _add_storage(run, default_study=None)
    run.set_defaults(search_flags=tuple((action.option_strings[0], action.dest) for action in declared))


def add_report(sub) -> None:
    rep = _command(
        sub, "report", help="write an HTML report of a study",
        description="Write one self-contained HTML file (plotly) with the Pareto front, the "
        "validation curves, parameter importances and a table of the front; with --attach, also store the "
        "figures in the study so optuna-dashboard shows them too.",
        examples=["drill-search report", "drill-search report --study-name big --storage studies/big.journal"])
    _add_storage(rep)
    rep.add_argument("--output", type=Path, default=None, help="the HTML file (default: beside the study file)")
    rep.add_argument("--attach", action="store_true",
                     help="also store the figures in the study, for optuna-dashboard (a search stores them when "
                     "it ends; without this flag report only reads the study)")


def add_dashboard(sub) -> None:
    dash = _command(
        sub, "dashboard", help="open the study in optuna-dashboard",
        description="Serve optuna-dashboard on the study's storage (with its artifacts) until Ctrl-C.",
        examples=["drill-search dashboard",
                  "drill-search dashboard --port 8081",
                  "drill-search dashboard --storage studies/search.journal --host 0.0.0.0   (other machines may connect)"])
    _add_storage(dash)
    dash.add_argument("--host", default=default("host", DashboardConfig),
                      help=f"address to listen on (default {default('host', DashboardConfig)}: this machine only)")
    dash.add_argument("--port", type=int, default=default("port", DashboardConfig),
                      help=f"port (default {default('port', DashboardConfig)})")


def add_confirm(sub) -> None:
    conf = _command(
        sub, "confirm", help="retrain winners with several seeds on all training images",
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
        sub, "reevaluate", help="train the search's leaders again with more seeds, judged on validation",
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


def add_export(sub) -> None:
    exp = _command(
        sub, "export", help="write a trial's trained model to files plain PyTorch can load",
        description="Write the trial's weights, architecture (JSON), layer table and a torch.export "
        "program that loads with plain PyTorch: torch.export.load(path).module().",
        examples=["drill-search export 12", "drill-search export 3 --study-name baselines --output my-model"])
    exp.add_argument("trial", type=int, help="the trial number")
    _add_storage(exp)
    exp.add_argument("--output", type=Path, default=None, help="folder to write (default exports/<study>-trial-<N>)")


def add_fail_stale(sub) -> None:
    stale = _command(
        sub, "fail-stale", help="end trials left RUNNING by workers that died",
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
