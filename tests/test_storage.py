"""Storage URLs: which forms mean SQLite, a journal file or a server."""

import optuna
import pytest

from search.execution.identity import StudyError
from search.execution.storage import is_sqlite, storage_url
from search.execution.hardware import check_workers


@pytest.mark.parametrize(
    "spec, sqlite",
    [
        ("sqlite:///studies/x.db", True),
        ("sqlite://", True),  # in memory
        ("studies/x.db", True),
        ("x.sqlite", True),
        ("x.sqlite3", True),
        ("sqlite-runs.journal", False),
        ("studies/sqlite-runs.journal", False),
        ("sqlite", False),
        ("postgresql://user@host/db", False),
        ("redis://host:6379", False),
    ],
)
def test_only_sqlite_urls_and_sqlite_files_are_sqlite(spec, sqlite):
    assert is_sqlite(spec) is sqlite
    assert is_sqlite(storage_url(spec)) is sqlite


def test_a_journal_whose_name_starts_with_sqlite_takes_several_workers():
    check_workers(storage_url("sqlite-runs.journal"), 2)
    with pytest.raises(StudyError, match="SQLite is not safe for 2 concurrent workers"):
        check_workers(storage_url("runs.db"), 2)


def test_a_write_after_a_journal_cut_mid_line_moves_the_cut_aside_and_keeps_the_file_readable(tmp_path, caplog):
    """A copy taken while the last record was written ends in the middle of a line; Optuna
    appends the next record after it, and the line after that makes the file unreadable."""
    from optuna.trial import create_trial

    from search.execution.storage import open_storage

    path = tmp_path / "s.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)))
    for value in (0.0, 1.0, 2.0):
        study.add_trial(create_trial(value=value))  # one line each
    whole = path.read_bytes()
    last = whole.rstrip(b"\n").rfind(b"\n") + 1  # where the third trial's line starts
    path.write_bytes(whole[:-20])  # that line cut short
    cut = whole[last:-20]
    study = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    study.set_user_attr("a", 1)  # would join the cut line
    study.set_user_attr("b", 2)  # would push it into the middle of the file
    again = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    assert [t.value for t in again.trials] == [0.0, 1.0] and again.user_attrs == {"a": 1, "b": 2}
    assert path.read_bytes().startswith(whole[:last]) and path.read_bytes().endswith(b"\n")
    (kept,) = tmp_path.glob("s.journal.cut-*")
    assert kept.read_bytes() == cut  # what was cut off is kept, byte for byte
    said = [r.getMessage() for r in caplog.records if "middle of a line" in r.getMessage()]
    assert len(said) == 1 and str(kept) in said[0] and "\n" not in said[0]


def test_a_journal_that_is_one_unfinished_line_is_refused_and_left_as_it_is(tmp_path):
    from search.execution.storage import StorageError, open_storage

    path = tmp_path / "notes.txt"
    path.write_bytes(b'{"op_code": 0, "worker_id": "a", "study_na')
    storage = open_storage(str(path))
    with pytest.raises(StorageError, match="holds only an unfinished line"):
        optuna.create_study(study_name="s", storage=storage)
    assert path.read_bytes() == b'{"op_code": 0, "worker_id": "a", "study_na'
    assert not list(tmp_path.glob("notes.txt.cut-*"))


@pytest.mark.parametrize("spec, form", [
    ("postgresql:/localhost/db", "postgresql://user:pw@host/db"),
    ("postgresql:localhost/db", "postgresql://user:pw@host/db"),
    ("mysql+pymysql:/host/db", "mysql+pymysql://user:pw@host/db"),
    ("sqlite:/studies/x.db", "sqlite:///FILE"),
    ("redis:/host:6379", "redis://host:6379"),
    ("rdis:/host:6379", "redis://"),  # no known backend: the forms there are
])
def test_a_url_short_of_its_slashes_is_refused_not_taken_for_a_journal_file(spec, form):
    from search.execution.storage import StorageError

    with pytest.raises(StorageError) as e:
        storage_url(spec)
    assert form in str(e.value) and f"./{spec}" in str(e.value)  # and how to name such a file
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec", ["studies/a:b.journal", "./postgresql:/localhost/db", "runs-2024.journal",
                                  "sqlite:///studies/x.db", "postgresql+psycopg://u@h/db"])
def test_paths_and_urls_are_still_read_as_before(spec):
    assert storage_url(spec) == spec


def test_a_search_on_a_storage_url_one_slash_short_is_one_sentence_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from search.cli import main

    def started(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr("search.study.run_search", started)
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: root)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--trials", "2", "--storage", "postgresql:/localhost/db"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "postgresql://user:pw@host/db" in err, err
    assert list(tmp_path.iterdir()) == []


# --- one reading of a storage URL --------------------------------------------------------


@pytest.mark.parametrize("url, file", [
    ("sqlite:///studies/x.db", "studies/x.db"),
    ("sqlite+pysqlite:///studies/x.db", "studies/x.db"),
    ("sqlite+pysqlite:////abs/x.db", "/abs/x.db"),
    ("sqlite:///x.db?timeout=20", "x.db"),
    ("sqlite://", None),  # in memory
    ("sqlite:///:memory:", None),
    ("sqlite+pysqlite:///:memory:", None),
    ("studies/x.journal", "studies/x.journal"),
    ("postgresql+psycopg2://u@h/db", None),
    ("redis://host:6379", None),
])
def test_every_form_of_a_storage_url_names_its_file_one_way(url, file):
    from pathlib import Path

    from search.execution.storage import storage_file

    assert storage_file(url) == (None if file is None else Path(file))
    assert is_sqlite(url) is url.startswith("sqlite")


def test_weights_and_reports_of_a_sqlite_url_with_a_driver_go_beside_the_database():
    from pathlib import Path

    from search.execution.storage import artifact_dir, report_path

    for url in ("sqlite:///runs/x.db", "sqlite+pysqlite:///runs/x.db"):
        assert artifact_dir(url) == Path("runs/x-artifacts")
        assert report_path(url, "search") == Path("runs/x-search-report.html")


@pytest.mark.parametrize("command", [["report"], ["fail-stale"], ["export", "0"], ["dashboard"], ["confirm"],
                                     ["reevaluate"]])
@pytest.mark.parametrize("url", ["sqlite:///none.db", "sqlite+pysqlite:///none.db"])
def test_a_reading_command_on_a_database_that_is_not_there_leaves_no_empty_one(tmp_path, monkeypatch, capsys,
                                                                                 command, url):
    from search.cli import main

    monkeypatch.chdir(tmp_path)
    code = main([*command, "--storage", url])
    err = capsys.readouterr().err
    assert code == 2 and err == "drill-search: error: there is no storage at none.db; run a search first, or pass " \
                                "--storage.\n", err
    assert list(tmp_path.iterdir()) == []


def test_a_report_of_a_sqlite_url_with_a_driver_is_written_beside_the_database(tmp_path, monkeypatch, capsys):
    from search.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    optuna.create_study(study_name="search", storage="sqlite+pysqlite:///runs/x.db",
                        directions=["maximize", "minimize"])
    code = main(["report", "--storage", "sqlite+pysqlite:///runs/x.db"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "runs" / "x-search-report.html").exists() and not (tmp_path / "studies").exists()



# --- a driver that is not installed -------------------------------------------------------

DRIVERS = {"psycopg", "psycopg2", "redis", "pymysql", "MySQLdb"}  # the modules SQLAlchemy and Optuna import


@pytest.mark.parametrize("url, package, extra", [
    ("postgresql://u@127.0.0.1:1/db", "psycopg", 'pip install -e ".[postgres]"'),  # SQLAlchemy's default driver
    ("postgresql+psycopg2://u@127.0.0.1:1/db", "psycopg2-binary", 'pip install -e ".[postgres]"'),
    ("postgresql+psycopg://u@127.0.0.1:1/db", "psycopg[binary]", 'pip install -e ".[postgres]"'),
    ("redis://127.0.0.1:1", "redis", 'pip install -e ".[redis]"'),
    ("mysql+pymysql://u@127.0.0.1:1/db", "PyMySQL", 'pip install -e ".[mysql]"'),
])
@pytest.mark.parametrize("command", [["fail-stale"], ["run", "--trials", "2", "--workers", "1"]])
def test_a_missing_database_driver_names_the_package_and_how_to_install_it(tmp_path, monkeypatch, capsys, url,
                                                                           package, extra, command):
    import builtins

    from search.cli import main

    real = builtins.__import__

    def without_drivers(name, globals=None, locals=None, fromlist=(), level=0):  # as where none is installed
        if level == 0 and name.split(".")[0] in DRIVERS:
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}", name=name.split(".")[0])
        return real(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", without_drivers)
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: root)
    monkeypatch.chdir(tmp_path)
    code = main([*command, "--storage", url])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "(None)" not in err, err
    assert f"needs the package {package}" in err and f"which is not installed: {extra}" in err, err
