"""A resumed study keeps every choice it recorded (its protocol, goal and sampler) unless a
flag changes it, and then the run says what changed; a run that trains nothing changes
nothing. Tried through the CLI, on copies of the shipped studies."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

import spaces
from baselines import ROUNDS
from search.cli import main

STUDIES = Path(__file__).parents[1] / "studies"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_training(monkeypatch):
    """MNIST is not read and no worker starts: a run that would train fails the test."""
    from search import study as use_case

    real = use_case.run_search

    def trains_nothing(cfg, **kw):
        assert use_case.todo(kw["study"], cfg.trials) == 0, "this run would train"
        return real(cfg, **kw)

    monkeypatch.setattr(use_case, "ensure_mnist", lambda root, download=True: root)
    monkeypatch.setattr(use_case, "run_search", trains_nothing)
    monkeypatch.setattr(use_case.document, "attach", lambda study, figs: False)  # the figures take a while


def _copy(name: str, tmp_path: Path) -> str:
    copy = tmp_path / f"{name}.journal"
    shutil.copyfile(STUDIES / f"{name}.journal", copy)
    return str(copy)


def _search(journal: str) -> optuna.Study:
    return optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(journal)))


def test_a_run_that_trains_nothing_leaves_v3s_goal_sampler_and_answer_as_they_were(capsys, tmp_path, no_training):
    journal = _copy("v3", tmp_path)
    before = {k: v for k, v in _search(journal).user_attrs.items() if k != "report_figures"}
    code, out, err = run(capsys, "run", "--trials", "60", "--storage", journal, "--workers", "1")
    assert code == 0, err
    assert "nothing to do" in out and "sampler tpe," in out
    assert "goal: the best network of at most 5,000 parameters" in out
    assert {k: v for k, v in _search(journal).user_attrs.items() if k != "report_figures"} == before
    code, out, err = run(capsys, "report", "--storage", journal, "--output", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "Network to use, at most 5,000 parameters: trial 50" in out


def test_a_run_that_trains_nothing_records_no_goal_it_was_given(capsys, tmp_path, no_training):
    journal = _copy("v3", tmp_path)
    code, out, err = run(capsys, "run", "--trials", "60", "--goal-params", "3000", "--storage", journal,
                         "--workers", "1")
    assert code == 0, err
    assert _search(journal).user_attrs["goal"] == {"max_params": 5000}
    assert "goal: the best network of at most 5,000 parameters" in out


def test_v2_resumes_with_the_plain_tpe_it_ran_with(capsys, tmp_path, no_training):
    # v2 was made before studies recorded their sampler, with Optuna's TPE on the stored
    # objectives (the goal's view came with v3, and the "strategy" record with it)
    journal = _copy("v2", tmp_path)
    code, out, err = run(capsys, "run", "--trials", "100", "--storage", journal, "--workers", "1")
    assert code == 0, err
    assert "sampler tpe-plain," in out and "every candidate the full protocol" in out
    assert "goal: the whole accuracy-vs-parameters front" in out


@pytest.mark.parametrize("name, sampler", [("reference", "tpe-plain"), ("v2", "tpe-plain"), ("v3", "tpe"),
                                           ("v4", "random")])
def test_each_shipped_study_names_the_sampler_it_ran_with(name, sampler):
    from search.execution.choices import study_sampler

    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(STUDIES / f"{name}.journal"))))
    assert study_sampler(study) == sampler


def _made_with(journal: str, tmp_path: Path, **kw) -> optuna.Study:
    """A search study made with `kw`, holding one complete trial."""
    from search.config import DataConfig, Recipe, SearchConfig
    from search.execution import identity

    cfg = SearchConfig(storage=journal, recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path), **kw)
    study = identity.open_search(cfg)
    params = spaces.encode(ROUNDS["round3"].candidate)
    study.add_trial(optuna.trial.create_trial(params=params, distributions={k: spaces.SPACE[k] for k in params},
                                              values=[99.0, 5760], user_attrs={"params": 5760}))
    return study


@pytest.fixture
def started(monkeypatch):
    """The search goes as far as starting workers; what it would start them with is kept."""
    from search import study as use_case

    seen = []

    def run_search(cfg, **kw):
        seen.append(cfg)
        return kw["study"]

    monkeypatch.setattr(use_case, "ensure_mnist", lambda root, download=True: root)
    monkeypatch.setattr(use_case, "run_search", run_search)
    monkeypatch.setattr(use_case.document, "attach", lambda study, figs: False)
    return seen


def test_a_resumed_study_keeps_its_recipe_strategy_and_budget_when_no_flag_is_given(capsys, tmp_path, started):
    from search.config import Goal

    journal = str(tmp_path / "s.journal")
    _made_with(journal, tmp_path, strategy="full", max_params=8000, goal=Goal(max_params=6000), sampler="tpe")
    code, out, err = run(capsys, "run", "--trials", "3", "--storage", journal, "--workers", "1")
    assert code == 0, err
    cfg = started[-1]
    assert (cfg.recipe.epochs, cfg.strategy, cfg.max_params, cfg.goal, cfg.sampler) == (2, "full", 8000,
                                                                                         Goal(max_params=6000), "tpe")
    assert "2 epochs at most, budget 8,000 parameters" in out and "this run changes" not in out


def test_a_flag_that_changes_the_goal_or_the_sampler_says_so_in_one_line(capsys, tmp_path, started):
    from search.config import Goal

    journal = str(tmp_path / "s.journal")
    _made_with(journal, tmp_path, goal=Goal(max_params=5000), sampler="tpe")
    code, out, err = run(capsys, "run", "--trials", "3", "--goal-params", "3000", "--sampler", "random",
                         "--storage", journal, "--workers", "1")
    assert code == 0, err
    changed = [line for line in out.splitlines() if line.startswith("this run changes")]
    assert changed == ["this run changes the study's goal to the best network of at most 3,000 parameters (it was "
                       "the best network of at most 5,000 parameters) and its sampler to random (it was tpe)"]
    assert _search(journal).user_attrs["goal"] == {"max_params": 3000}
    assert _search(journal).user_attrs["sampler"] == "random"
    # the same flags again change nothing, and no flag keeps what the last run recorded
    for flags in (["--goal-params", "3000", "--sampler", "random"], []):
        code, out, err = run(capsys, "run", "--trials", "3", *flags, "--storage", journal, "--workers", "1")
        assert code == 0 and "this run changes" not in out, out + err
        assert (started[-1].goal, started[-1].sampler) == (Goal(max_params=3000), "random")


def test_a_flag_that_changes_the_protocol_is_still_refused(capsys, tmp_path, started):
    journal = str(tmp_path / "s.journal")
    _made_with(journal, tmp_path)
    code, out, err = run(capsys, "run", "--trials", "3", "--epochs", "3", "--storage", journal, "--workers", "1")
    assert code == 2 and err.count("\n") == 1 and "was made with recipe" in err, out + err
    assert started == []
