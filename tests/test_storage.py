"""Storage URLs: which forms mean SQLite, a journal file or a server."""

import optuna
import pytest

from search.storage import is_sqlite, storage_url
from search.identity import StudyError
from search.workers import check_workers


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

    from search.storage import open_storage

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
    from search.storage import StorageError, open_storage

    path = tmp_path / "notes.txt"
    path.write_bytes(b'{"op_code": 0, "worker_id": "a", "study_na')
    storage = open_storage(str(path))
    with pytest.raises(StorageError, match="holds only an unfinished line"):
        optuna.create_study(study_name="s", storage=storage)
    assert path.read_bytes() == b'{"op_code": 0, "worker_id": "a", "study_na'
    assert not list(tmp_path.glob("notes.txt.cut-*"))
