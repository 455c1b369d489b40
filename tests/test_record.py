"""What a trial records about the code that ran it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from search.execution import record


pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A committed copy of the repository's layout, with record.py read from its search/."""
    for path in ("search/execution/record.py", "spaces/arch.py", "baselines/rounds.py", "studies/s.journal", "tests/t.py",
                 "pyproject.toml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    monkeypatch.setattr(record, "__file__", str(tmp_path / "search" / "execution" / "record.py"))
    return tmp_path


def test_a_clean_checkout_is_its_commit(checkout):
    assert "+" not in record._git_revision() and record._git_revision() != "unknown"


@pytest.mark.parametrize("edited", ["search/execution/record.py", "spaces/arch.py", "baselines/rounds.py", "pyproject.toml"])
def test_an_edit_to_code_that_shapes_runs_is_dirty(checkout, edited):
    (checkout / edited).write_text("x = 2\n")
    assert record._git_revision().endswith("+dirty")


@pytest.mark.parametrize("edited", ["studies/s.journal", "tests/t.py"])
def test_results_and_tests_do_not_make_it_dirty(checkout, edited):
    # studies/ grows while a search runs; neither changes what a trial computes
    (checkout / edited).write_text("x = 2\n")
    assert not record._git_revision().endswith("+dirty")
