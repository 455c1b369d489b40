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
