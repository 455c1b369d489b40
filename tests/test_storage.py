"""Storage URLs: which forms mean SQLite, a journal file or a server."""

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


@pytest.mark.parametrize("spec, form", [
    ("postgresql:/localhost/db", "postgresql://user:pw@host/db"),
    ("postgresql:localhost/db", "postgresql://user:pw@host/db"),
    ("mysql+pymysql:/host/db", "mysql+pymysql://user:pw@host/db"),
    ("sqlite:/studies/x.db", "sqlite:///FILE"),
    ("redis:/host:6379", "redis://host:6379"),
    ("rdis:/host:6379", "redis://"),  # no known backend: the forms there are
])
def test_a_url_short_of_its_slashes_is_refused_not_taken_for_a_journal_file(spec, form):
    from search.storage import StorageError

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
