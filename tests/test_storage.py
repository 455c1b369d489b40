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
