"""Configuration values, built once at the CLI edge and passed down.

Nothing below the CLI reads argv or the environment: everything it needs arrives in one
of these frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spaces import DEFAULT_SPACE, SPACE_NAMES  # noqa: F401 - SPACE_NAMES: the flags' choices
from spaces.arch import SCHEDULE_EPOCHS, Candidate

if TYPE_CHECKING:
    from baselines import Baseline

MAX_EPOCHS = SCHEDULE_EPOCHS  # the exercise's limit
PARAM_BUDGET = 10_000  # "under 10,000 parameters"
TARGET_ACC = 99.4  # percent, on the MNIST test set
MNIST_TRAIN = 60_000  # images in MNIST's training set
VAL_SIZE = 5_000  # held out of the training images for search selection, by default
SAMPLERS = ("tpe", "tpe-plain", "random", "nsga2")  # see search.strategy.sampler.make_sampler
# A new study's sampler: no guided sampler beat random sampling on the strategy benchmark
# (studies/method.md, "Strategies compared on a surrogate").
DEFAULT_SAMPLER = "random"
# The sampler of a study made before studies recorded theirs, when it predates the goal's
# view of TPE (v1, v2: Optuna's TPE on the stored objectives). One made after it (v3) ran
# the goal-aimed "tpe"; it tells itself by its "strategy" record, which came with the view
# (search.execution.choices.study_sampler).
LEGACY_SAMPLER = "tpe-plain"
STRATEGIES = ("promote", "full")  # see SearchConfig.strategy
PRUNERS = ("pareto", "median", "none")  # see search.strategy.prune.make_pruner
DATA_ENV = "DRILL_SEARCH_DATA"  # environment variable naming the data root
MAX_RETRY = 2  # a failed trial (worker died, interrupted, error, out of memory) runs again at most this often
MAX_SEED = 2**64 - 1  # torch.manual_seed's largest
EXIT_INTERRUPTED = 130  # a command or worker stopped by SIGINT/SIGTERM (128 + SIGINT)
BASELINE_STUDY = "baselines"  # where `run --baseline` records the rounds' reproductions
SEARCH_STUDY = "search"  # the search a command reads or writes when given no --study-name


# The choices a search study records, and a resumed run keeps unless a flag changes them, by
# the SearchConfig field that holds them ("recipe.epochs": its recipe's epochs). A run may
# change the goal and the sampler (RUN_CHOICES); the rest is the study's identity, which
# refuses another value (search.execution.identity).
RUN_CHOICES = frozenset({"goal", "sampler"})
RECORDED = RUN_CHOICES | {"max_params", "strategy", "rung_epochs", "eta", "data.val_size", "data.val_seed",
                          "data.train_size", "recipe.epochs", "recipe.batch_size", "recipe.lr_gamma", "space", "recipe.augment", "recipe.bf16"}


def study_flags(storage: str | None, study_name: str) -> str:
    """The flags that name a study on a command line, for the commands a hint suggests:
    --storage unless it is None (the default storage), --study-name unless it is the
    default study."""
    flags = "" if storage is None else f" --storage {storage}"
    return flags if study_name == SEARCH_STUDY else f"{flags} --study-name {study_name}"


SCORE_EPOCHS = 3  # the search's objective averages validation accuracy over this many last epochs


def score(val_acc) -> float:
    """The search's objective 0: mean validation accuracy over the last SCORE_EPOCHS epochs
    (defined here, beside the other constants of the protocol, for every module that
    scores: the objective, the re-evaluation's runs, the study's identity)."""
    tail = list(val_acc)[-SCORE_EPOCHS:]
    return round(sum(tail) / len(tail), 4)


class ConfigError(ValueError):
    """A configuration value out of range; `field` names it (the CLI names the flag)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field, self.message = field, message


def _at_least(field: str, value, low) -> None:
    if value is not None and value < low:
        raise ConfigError(field, f"must be at least {low}, got {value:g}.")


def _at_most(field: str, value, high) -> None:
    if value is not None and value > high:
        raise ConfigError(field, f"must be at most {high:,}, got {value:,}.")


def _between(field: str, value, low, high) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(field, f"must be between {low} and {high}, got {value:g}.")


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained; its learning rate and step come from the candidate.

    Defaults are the notebooks' recipe: StepLR gamma 0.01, 15 epochs, seed 99; the batch
    size, SGD's momentum and the augmentation are the candidate's (the rounds: 64, 0.9
    and 7 degrees).
    """

    epochs: int = MAX_EPOCHS
    batch_size: int | None = None  # None: the candidate's; a number overrides it (lr scaled)
    lr_gamma: float = 0.01  # StepLR factor at the candidate's lr_step
    seed: int = 99  # weights, dropout masks, batch order and rotation angles
    augment: bool = True  # random rotation of training images by the candidate's range
    bf16: bool = False  # bfloat16 autocast for forward/backward (fast on CPUs with AVX512-BF16)
    # Engine choices below change how fast, not what is computed (same distributions and
    # maths); studies do not compare them when deciding whether runs are comparable.
    # nn.Dropout's distribution from far fewer random numbers; None: the device decides
    # (`sparse_dropout_on`)
    sparse_dropout: bool | None = None
    compile: bool = False  # torch.compile the model; on CUDA with CUDA graphs
    deterministic: bool = False  # CUDA: deterministic kernels (same seed, same numbers), slower

    def __post_init__(self) -> None:
        _between("epochs", self.epochs, 1, MAX_EPOCHS)
        _between("batch_size", self.batch_size, 1, MNIST_TRAIN)
        _at_least("seed", self.seed, 0)  # NumPy's SeedSequence refuses a negative seed, in every worker
        _at_most("seed", self.seed, MAX_SEED)

    def batch_for(self, candidate: Candidate) -> int:
        return candidate.batch_size if self.batch_size is None else self.batch_size

    def lr_for(self, candidate: Candidate) -> float:
        """The candidate's learning rate at the batch it trains with (linear scaling)."""
        return candidate.lr_at(self.batch_for(candidate))

    def sparse_dropout_on(self, device_type: str) -> bool:
        """SparseDropout on the CPU, where nn.Dropout's Bernoulli draw costs more than the
        convolutions; nn.Dropout on GPUs, where it is one cheap kernel. The one place
        this is decided."""
        return device_type == "cpu" if self.sparse_dropout is None else self.sparse_dropout

    def to_dict(self) -> dict:
        return asdict(self)

    def protocol(self) -> dict:
        """The fields that change what a run computes. A run shorter than MAX_EPOCHS
        compresses StepLR's step into it (`Candidate.over`); studies made before that have
        no "steps_scaled" and are refused rather than mixed."""
        d = asdict(self)
        for engine_only in ("sparse_dropout", "compile", "deterministic"):
            d.pop(engine_only)
        if self.epochs < MAX_EPOCHS:
            d["steps_scaled"] = True
        return d


@dataclass(frozen=True)
class DataConfig:
    root: Path  # holds MNIST/raw/ in torchvision's layout
    download: bool = True  # try torchvision's download when files are missing
    val_size: int = VAL_SIZE  # held out of the training images for search selection
    val_seed: int = 0  # fixes which images are held out; the same for every trial
    train_size: int | None = None  # train on only this many of the rest (quick looks, tests)

    def __post_init__(self) -> None:
        _between("val_size", self.val_size, 1, 30_000)
        _between("train_size", self.train_size, 1, MNIST_TRAIN - self.val_size)


@dataclass(frozen=True)
class Goal:
    """What the user wants from a search; the sampler and the promotion rule aim there.

    max_params: the best network of at most this many parameters (the study's budget
    still decides what is feasible: larger candidates up to it may be trained as
    references, the rounds among them). min_score: the smallest network whose validation
    score reaches this. Neither: the whole accuracy-vs-parameters front.
    """

    max_params: int | None = None
    min_score: float | None = None

    def __post_init__(self) -> None:
        if self.max_params is not None and self.min_score is not None:
            raise ConfigError("goal_params", "and --goal-score are two different goals: give one of them.")
        _at_least("goal_params", self.max_params, 1)
        _between("goal_score", self.min_score, 0.0, 100.0)

    def describe(self) -> str:
        if self.max_params is not None:
            return f"the best network of at most {self.max_params:,} parameters"
        if self.min_score is not None:
            return f"the smallest network scoring at least {self.min_score:g}% on validation"
        return "the whole accuracy-vs-parameters front"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class SearchConfig:
    """One search: where it is stored, how many trials, and how candidates are judged."""

    storage: str  # an Optuna storage URL or a journal file path
    recipe: Recipe
    data: DataConfig
    study_name: str = SEARCH_STUDY
    trials: int = 50  # total finished trials wanted in the study (complete + pruned)
    max_params: int = PARAM_BUDGET  # larger candidates are rejected before training
    pruner: str = "pareto"  # see search.strategy.prune
    prune_warmup: int = 3  # epochs before the pruner may judge
    sampler: str = DEFAULT_SAMPLER  # one of SAMPLERS
    space: str = DEFAULT_SPACE  # one of SPACE_NAMES: what candidates are drawn from (spaces.registry)
    # promote: every candidate first trains a cheap complete schedule of `rung_epochs`
    # epochs; only those its rung ranks in the best 1/eta (search.strategy.promote) go on to the
    # full protocol. full: every candidate trains the full protocol (v1, v2).
    strategy: str = "promote"
    rung_epochs: int = 3
    eta: int = 3
    goal: Goal = Goal()
    seed: int | None = None  # sampler seed (training uses recipe.seed)
    with_baselines: bool = True  # the baselines within the goal (or the budget) that the space holds come first
    workers: int = 1  # worker processes on this machine
    # time.time() after which no worker starts a trial: the command's start + --timeout,
    # one instant for every worker, however late it starts (a replacement included)
    deadline: float | None = None
    device: str = "cpu"  # resolved torch device string
    # The RECORDED choices no flag made: a resumed study keeps its own there, however the
    # defaults move (`search.execution.identity.kept`), a new one takes the values above.
    defaulted: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("trials", "max_params", "workers", "prune_warmup", "rung_epochs"):
            _at_least(name, getattr(self, name), 1)
        _at_least("eta", self.eta, 2)
        _at_least("seed", self.seed, 0)  # NumPy's SeedSequence refuses a negative seed, in every worker
        # Checked here, in the parent: a worker would refuse them only after the study exists.
        _between("rung_epochs", self.rung_epochs, 1, MAX_EPOCHS)  # the rung is a Recipe of its own
        for name, known in (("strategy", STRATEGIES), ("sampler", SAMPLERS), ("pruner", PRUNERS),
                            ("space", SPACE_NAMES)):
            if getattr(self, name) not in known:
                raise ConfigError(name, f"must be one of {', '.join(known)}, got {getattr(self, name)!r}.")
        if self.goal.max_params is not None and self.goal.max_params > self.max_params:
            raise ConfigError("goal_params", f"must be at most --max-params ({self.max_params:,}): larger candidates "
                              f"are never trained; got {self.goal.max_params:,}.")
        if not self.defaulted <= RECORDED:
            raise ValueError(f"not choices a study records: {sorted(self.defaulted - RECORDED)}")

    def past_deadline(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    @property
    def promotes(self) -> bool:
        """Whether candidates climb from the rung: a run no longer than the rung has none."""
        return self.strategy == "promote" and self.rung_epochs < self.recipe.epochs


@dataclass(frozen=True)
class ConfirmConfig:
    """One `confirm` (the verdict on test) or `reevaluate` (the search's leaders on more
    seeds, on validation) of a search's trials; see search.confirm."""

    storage: str  # the search's storage: an Optuna storage URL or a journal file path
    recipe: Recipe  # its seed is the first seed; a re-evaluation keeps only its engine settings
    data: DataConfig  # the root; the check decides the splits
    study_name: str = SEARCH_STUDY  # the search whose trials are checked
    reevaluate: bool = False  # False: confirm on test; True: re-evaluate on validation
    trials: tuple[int, ...] | None = None  # None: the front (confirm) or the leaders (reevaluate)
    seeds: int | None = None  # how many; None: the check's own (3 for confirm, 2 for reevaluate)
    first_seed: int | None = None  # None: the check's own first seed (1)
    with_baselines: bool = True  # confirm: the rounds under the budget too
    train_size: int | None = None  # confirm: train on only this many images (quick looks)
    leaders: int = 4  # reevaluate: at most this many leaders
    goal_params: int | None = None  # reevaluate: leaders of at most this many parameters (None: the search's goal)
    workers: int = 1  # worker processes on this machine
    device: str = "cpu"  # resolved torch device string

    def __post_init__(self) -> None:
        for name in ("seeds", "leaders", "workers", "goal_params"):
            _at_least(name, getattr(self, name), 1)
        _at_least("seed", self.first_seed, 0)
        _between("train_size", self.train_size, 1, MNIST_TRAIN)
        if self.first_seed is not None and self.first_seed + (self.seeds or 1) - 1 > MAX_SEED:  # S, S + 1, ...
            raise ConfigError("seed", f"{self.first_seed:,} and --seeds {self.seeds} reach a seed past {MAX_SEED:,}, "
                              "torch's largest.")


@dataclass(frozen=True)
class BaselineConfig:
    """One `run --baseline`: a hand-designed round trained with its own recipe on all the
    training images, recorded as a run of a study of the rounds; see search.baseline."""

    baseline: Baseline
    storage: str  # an Optuna storage URL or a journal file path
    recipe: Recipe
    data: DataConfig  # the root; the round trains on every training image, tested on the test set
    study_name: str = BASELINE_STUDY
    device: str = "cpu"  # resolved torch device string


@dataclass(frozen=True)
class ReportConfig:
    """One `report`: the HTML file of a study, and its figures stored in it with `attach`;
    see search.reporting."""

    storage: str  # the storage URL read
    study_name: str = SEARCH_STUDY
    output: Path | None = None  # the HTML file; None: beside the study file
    attach: bool = False  # also store the figures in the study (report otherwise only reads)
    storage_given: str | None = None  # the --storage typed, if any: the commands the answer suggests repeat it

    @property
    def command_flags(self) -> str:
        """The flags that name this study on a command line, as the commands the
        report's answer suggests need them ("" for the default study in the default storage)."""
        return study_flags(self.storage_given, self.study_name)


@dataclass(frozen=True)
class ExportConfig:
    """One `export`: a complete trial's trained model written to a folder; see
    search.results.export."""

    storage: str  # the storage URL read
    trial: int  # the trial's number in the study
    study_name: str = SEARCH_STUDY
    output: Path | None = None  # the folder; None: exports/<study>-trial-<N>

    @property
    def folder(self) -> Path:
        return self.output or Path("exports") / f"{self.study_name}-trial-{self.trial}"


@dataclass(frozen=True)
class StaleConfig:
    """One `fail-stale`: end a study's trials left RUNNING by workers that died; see
    search.execution.liveness.sweep."""

    storage: str  # the storage URL
    study_name: str = SEARCH_STUDY
    older_than: float | None = None  # seconds: also end trials that recorded nothing for this long

    def __post_init__(self) -> None:
        if self.older_than is not None and not self.older_than > 0:  # NaN too: it compares false with every age
            raise ConfigError("older_than", f"must be a positive number of seconds, got {self.older_than:g}.")


@dataclass(frozen=True)
class DashboardConfig:
    """One `dashboard`: optuna-dashboard served on a study's storage; see search.dashboard."""

    storage: str  # the storage URL read
    study_name: str = SEARCH_STUDY
    host: str = "127.0.0.1"  # this machine only
    port: int = 8080
