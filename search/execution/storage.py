"""Storage URLs -> Optuna storages.

Storage is a URL; `studies/` only holds the files. Forms accepted by `--storage`:

    sqlite:///studies/x.db         one process at a time
    postgresql://user:pw@host/db   many workers, many machines (heartbeats, retries)
    mysql+pymysql://...            likewise
    studies/x.journal              an Optuna journal file: many workers on one machine
                                   (the default: studies/drill-search.journal)
    redis://host:6379              an Optuna journal in Redis: many machines

A bare path ending in .db, .sqlite or .sqlite3 means SQLite; any other bare path means a
journal file (the form optuna-dashboard also accepts). A journal file cut in the middle of
its last line is mended before anything is written to it (`MendingLock`). A path that
starts like a URL (`postgresql:/host/db`, a slash short) is refused, not taken for a file name.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import FrozenTrial

from ..config import SEARCH_STUDY, study_flags

log = logging.getLogger(__name__)

# A journal file: several worker processes may write it at once (SQLite may not), and it
# needs no server.
DEFAULT_STORAGE = "studies/drill-search.journal"
# The default before it (one process at a time): a checkout that has only this file keeps
# using it, so an existing study is neither orphaned nor hidden behind the shipped one.
LEGACY_STORAGE = "sqlite:///studies/drill-search.db"
REFERENCE_STORAGE = "studies/reference.journal"  # the full search shipped with the repository
HEARTBEAT_SECONDS = 30  # RDB storages: a running trial proves it is alive this often
GRACE_SECONDS = 120  # ... and is failed and re-queued after this long without a beat

_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
# What follows "scheme://" in each backend's URL, for the sentence that refuses a wrong one.
_URL_TAILS = {"sqlite": "/FILE", "redis": "host:6379", **{s: "user:pw@host/db" for s in _RDB_SCHEMES[1:]}}
_LOOKS_LIKE_URL = re.compile(r"[A-Za-z][A-Za-z0-9.-]*(\+[A-Za-z0-9_.-]+)?:")  # scheme or scheme+driver, then ":"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")  # a bare path ending so is a SQLite file


class StorageError(Exception):
    """The storage cannot be used; the message is one sentence for the user."""


def storage_url(spec: str | None) -> str:
    """The canonical storage URL for what the user typed (None: the default file).

    An unknown scheme is refused here, before anything is opened or trained."""
    if not spec:
        return LEGACY_STORAGE if parse(LEGACY_STORAGE).file.exists() and not Path(DEFAULT_STORAGE).exists() else DEFAULT_STORAGE
    if "://" in spec:
        if parse(spec).scheme not in (*_RDB_SCHEMES, "redis"):
            raise _unknown_form(spec)
        return spec
    if _LOOKS_LIKE_URL.match(spec):
        prefix = spec.split(":", 1)[0]
        tail = _URL_TAILS.get(prefix.split("+", 1)[0].lower())
        forms = f"{prefix}://{tail}" if tail else "sqlite:///FILE, postgresql://..., mysql://... or redis://..."
        raise StorageError(f"the storage {spec!r} starts like a URL but is not one: write {forms} (a journal file "
                           f"whose name starts so: ./{spec}).")
    if Path(spec).suffix in SQLITE_SUFFIXES:
        return f"sqlite:///{spec}"
    return spec  # a journal file path


def reading_url(spec: str | None) -> str:
    """The storage a reading command (report, dashboard, export) opens: what the user
    named, or with no --storage on a checkout that has no study of its own, the
    reference study shipped in studies/ (so they work on a fresh clone, no training)."""
    url = storage_url(spec)
    if spec is None and not storage_file(url).exists() and Path(REFERENCE_STORAGE).exists():
        return REFERENCE_STORAGE
    return url


@dataclass(frozen=True)
class Parsed:
    """What a storage URL (or a path) names, read once for every function here."""

    scheme: str  # "sqlite", "postgresql", "redis", ... without the driver; "" for a journal file
    driver: str  # "pysqlite" in sqlite+pysqlite://, "psycopg2" in postgresql+psycopg2://; "" for the default
    file: Path | None  # the file a journal or SQLite database lives in; None for servers and memory


def parse(url: str) -> Parsed:
    """The one reading of a storage URL: SQLAlchemy's forms (scheme[+driver]://..., SQLite's
    file after the third slash, "?options" after it), Redis, or a path (a SQLite file
    when it ends in .db, .sqlite or .sqlite3, else a journal file)."""
    if "://" not in url:
        return Parsed("sqlite" if Path(url).suffix in SQLITE_SUFFIXES else "", "", Path(url))
    head, rest = url.split("://", 1)
    scheme, _, driver = head.partition("+")
    path = rest[1:].split("?", 1)[0] if scheme == "sqlite" and rest.startswith("/") else ""
    return Parsed(scheme, driver, Path(path) if path and path != ":memory:" else None)


def is_sqlite(url: str) -> bool:
    """A sqlite[+driver]:// URL or a bare SQLite file path; not a journal whose name starts "sqlite"."""
    return parse(url).scheme == "sqlite"


def is_journal_file(url: str) -> bool:
    return parse(url).scheme == ""


StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


def open_existing(url: str, on_stale: StaleCallback | None = None) -> BaseStorage:
    """`open_storage` for a command that reads or adds to studies already there: a storage
    file that does not exist is refused (opening it would create an empty one)."""
    path = storage_file(url)
    if path is not None and not path.exists():
        raise StorageError(f"there is no storage at {path}; run a search first, or pass --storage.")
    return open_storage(url, on_stale=on_stale)


def open_storage(url: str, on_stale: StaleCallback | None = None) -> BaseStorage:
    """An Optuna storage for `url`.

    RDB storages (SQLite, PostgreSQL, MySQL) get Optuna's heartbeat: a trial whose worker
    stops beating for GRACE_SECONDS is failed when the next trial starts, and `on_stale`
    is called with it (drill-search re-queues its parameters there). Journal storages have
    no heartbeat; see `search.execution.liveness.fail_dead_workers`.
    """
    url = storage_url(url)  # a bare SQLite file path as its URL
    scheme = parse(url).scheme
    try:
        if not scheme:
            path = Path(url)
            if path.is_dir():
                raise StorageError(f"the journal storage {url!r} is a folder; name a file, e.g. {url.rstrip('/')}/search.journal.")
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path), lock_obj=MendingLock(path)))
        if scheme == "redis":
            from optuna.storages.journal import JournalRedisBackend

            return JournalStorage(JournalRedisBackend(url))
        if scheme in _RDB_SCHEMES:
            if parse(url).file is not None:
                parse(url).file.parent.mkdir(parents=True, exist_ok=True)
            beat = {}
            if on_stale is not None:
                beat = dict(heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                            heartbeat_stale_trial_callback=on_stale)
            return _rdb(url, beat)
    except StorageError:
        raise
    except ImportError as e:
        raise StorageError(f"the storage {url!r} needs {_install_hint(_missing_module(e))}.") from None
    except Exception as e:  # noqa: BLE001 - every database driver raises its own kind
        if not scheme and isinstance(e, ValueError):  # json's decode error: a damaged journal
            raise StorageError(f"cannot read the journal {url!r}: {_bad_line(Path(url))}") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open the storage {url!r}: {first}") from None
    raise _unknown_form(url)


# The module a storage imports -> the package that provides it, and the extra of
# pyproject.toml that installs it (None: no extra; pip install the package).
DRIVERS = {"psycopg": ("psycopg[binary]", "postgres"), "psycopg2": ("psycopg2-binary", "postgres"),
           "redis": ("redis", "redis"), "pymysql": ("PyMySQL", "mysql"), "MySQLdb": ("mysqlclient", None)}


def _missing_module(e: ImportError) -> str | None:
    """The module whose import failed: Optuna and SQLAlchemy raise their own ImportError
    (its name None) from the one Python raised."""
    while e is not None and getattr(e, "name", None) is None:
        e = e.__cause__ or e.__context__
    return None if e is None else e.name


def _install_hint(module: str | None) -> str:
    if module is None:
        return "a database driver that is not installed (see the URL's driver in SQLAlchemy's or Optuna's documentation)"
    package, extra = DRIVERS.get(module, (module, None))
    how = f'pip install -e ".[{extra}]"' if extra else f"pip install {package}"
    return f"the package {package}, which is not installed: {how}"


def _unknown_form(spec: str) -> StorageError:
    return StorageError(f"cannot read the storage {spec!r}: use sqlite:///FILE, postgresql://..., "
                        "mysql://..., redis://..., or a path to a journal file.")


def _bad_line(path: Path) -> str:
    """Which line of a journal file is not a record, in words."""
    import json

    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # a last line still being written is not read as a record
            try:
                json.loads(line)
            except ValueError:
                return (f"line {number} is not a journal record (the file is damaged, or is not an Optuna "
                        "journal).")
    return "it is not an Optuna journal."


def cut_short(url: str) -> bool:
    """Whether a journal file ends in the middle of a line: a copy taken while it was
    written, or a write cut short. Optuna ignores such a last line without a word, and
    the next record it appends would join it (see `MendingLock`)."""
    path = storage_file(url) if is_journal_file(url) else None
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"


class MendingLock(JournalFileSymlinkLock):
    """Optuna's lock of a journal file (the same lock file, so plain Optuna processes
    still exclude us), which mends a last line cut short once it is held.

    Optuna appends a record after whatever the file ends with. After a last line cut in
    the middle (a copy taken while a search wrote, a disk that filled mid-write) the
    record joins it: the damage moves into the middle of the file, and every later read
    fails. Optuna takes this lock for every append and for nothing else, so every write
    of every command passes here first; and while it is held no other process can be
    half-way through a record, so a last line without its newline is a cut, not a write
    in progress.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = Path(path)

    def acquire(self) -> bool:
        super().acquire()
        try:
            mend(self.path)
        except BaseException:
            self.release()
            raise
        return True


def mend(path: Path) -> Path | None:
    """Cut a journal file that ends in the middle of a line back to its last complete
    line, keeping the bytes cut off in <file>.cut-<time> beside it, and say so in one
    line; returns that file, or None when the file ends with a complete line.

    Only what no reader ever read goes: Optuna reads complete lines only. Call it with
    the journal's lock held (`MendingLock`), else the last line may be another process's
    record being written."""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return None
        keep = _end_of_last_line(f, size)
        if keep == 0:
            raise StorageError(f"{path} holds only an unfinished line, no journal record: delete it if it is a "
                               "journal, or pass another --storage.")
        f.seek(keep)
        cut = f.read()
        kept = _keep_aside(path, cut)
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    log.warning(f"warning: {path} ended in the middle of a line (a copy taken while it was written, or a write cut "
                f"short): its unfinished last line ({len(cut):,} bytes, no readable record) was moved to {kept} "
                "before writing.")
    return kept


def _end_of_last_line(f, size: int, chunk: int = 1 << 16) -> int:
    """The offset just past the last newline of the open file `f` (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        f.seek(start)
        at = f.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _keep_aside(path: Path, cut: bytes) -> Path:
    """Write `cut` to a new file <path>.cut-<time>[-N]; one sentence (StorageError) when it
    cannot be written (a full disk), before anything is cut."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        kept = path.with_name(f"{path.name}.cut-{stamp}" + (f"-{n}" if n else ""))
        try:
            with kept.open("xb") as f:
                f.write(cut)
                f.flush()
                os.fsync(f.fileno())
            return kept
        except FileExistsError:
            continue
        except OSError as e:
            kept.unlink(missing_ok=True)
            raise StorageError(f"{path} ends in the middle of a line, and its unfinished line could not be kept "
                               f"aside in {kept} ({e.strerror or e}); nothing was written: free some space and run "
                               "the command again.") from None
    raise AssertionError("unreachable")


def _rdb(url: str, beat: dict) -> RDBStorage:
    # Two processes that open a new database at once can both try to create its tables;
    # the loser sees "already exists" and succeeds on a second look.
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, **beat)
        except Exception as e:  # noqa: BLE001 - sqlalchemy's error classes vary by driver
            if "already exists" not in str(e) or attempt == 2:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal storage lives in (None for servers and memory)."""
    return parse(url).file


def artifact_dir(url: str) -> Path:
    """Where trained weights are kept: beside a study file, else studies/artifacts."""
    path = storage_file(url)
    if path is None:
        return Path("studies") / "artifacts"
    return path.with_name(path.stem + "-artifacts")


def report_path(url: str, study_name: str) -> Path:
    """Beside the study file: <file stem>-<study>-report.html (studies/ for servers)."""
    path = storage_file(url)
    if path is None:
        return Path("studies") / f"{study_name}-report.html"
    return path.with_name(f"{path.stem}-{study_name}-report.html")


def artifact_store(url: str, create: bool = True) -> FileSystemArtifactStore:
    """The store of the trained weights (`artifact_dir`); its folder is made for a command
    that writes (`create`), never for one that only reads (export: a refused export
    leaves nothing behind)."""
    path = artifact_dir(url)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


def dashboard_command(url: str, study_name: str = SEARCH_STUDY) -> str:
    """The command that opens this storage in optuna-dashboard, as README gives it."""
    return f"drill-search dashboard{study_flags(url, study_name)}"
