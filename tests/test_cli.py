"""The CLI, called in-process as a user would call it."""

from pathlib import Path

import optuna
import pytest

import spaces
from baselines import ROUNDS
from search.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "--baseline", "round9"], "round0, round1, round2, round3"),
        (["run", "--baseline", "round3", "--epochs", "0"], "--epochs must be between 1 and 15"),
        (["run", "--baseline", "round3", "--epochs", "16"], "--epochs must be between 1 and 15"),
        (["run", "--baseline", "round3", "--device", "tpu"], "unknown device"),
        (["run", "--baseline", "round3", "--device", "cuda:99"], "cuda"),
        (["run"], "say what to run"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(capsys, tmp_path, argv, words):
    db = tmp_path / "s.db"
    code, out, err = run(capsys, *argv, "--storage", str(db))
    assert code == 2
    assert words in err and err.startswith("drill-search: error: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not db.exists()  # nothing written to storage


def test_missing_data_exits_2_with_the_folder_and_files(capsys, tmp_path):
    db = tmp_path / "s.db"
    code, _, err = run(capsys, "run", "--baseline", "round3", "--data-dir", str(tmp_path / "none"),
                       "--storage", str(db), "--epochs", "1")
    assert code == 2
    assert "MNIST/raw" in err and "train-images-idx3-ubyte" in err and "DRILL_SEARCH_DATA" in err
    assert not db.exists()


def test_help_shows_worked_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--help"])
    assert e.value.code == 0
    assert "drill-search run --baseline round3" in capsys.readouterr().out


def test_baselines_lists_the_rounds(capsys):
    code, out, _ = run(capsys, "baselines")
    assert code == 0
    for b in ROUNDS.values():
        assert b.name in out and f"{b.params:,}" in out


@pytest.mark.mnist
def test_the_published_design_reproduces_with_its_own_recipe_and_is_stored_in_the_stages_space(
        capsys, tmp_path, data_root):
    from baselines import PUBLISHED
    from spaces import stages

    db = tmp_path / "s.db"
    code, out, err = run(capsys, "run", "--baseline", "design3762", "--epochs", "1", "--storage", str(db),
                         "--data-dir", str(data_root), "--device", "cpu")
    assert code == 0, err
    assert "3,762 parameters" in out and "stage3.block3.conv (Conv2d)" in out
    assert "this run vs adilsammar/woolly-of-cv" in out and "vs 96.48 reported at epoch 1" in out
    (trial,) = optuna.load_study(study_name="baselines", storage=f"sqlite:///{db}").trials
    assert trial.params == stages.encode(PUBLISHED["design3762"].candidate)
    assert trial.user_attrs["recipe"]["batch_size"] == 32 and trial.user_attrs["test_acc"][0] > 90.0


@pytest.mark.mnist
def test_run_baseline_on_real_mnist_is_recorded_for_plain_optuna(capsys, tmp_path, data_root):
    db = tmp_path / "s.db"
    code, out, err = run(capsys, "run", "--baseline", "round3", "--epochs", "1", "--storage", str(db),
                         "--data-dir", str(data_root), "--device", "cpu")
    assert code == 0, err
    assert "5,760 parameters" in out and "this run vs the original write-up" in out
    assert "block1.conv (Conv2d)" in out  # the layer table
    study = optuna.load_study(study_name="baselines", storage=f"sqlite:///{db}")
    assert study.metric_names == ["test_acc", "params"]
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.params == spaces.encode(ROUNDS["round3"].candidate)
    a = trial.user_attrs
    assert a["baseline"] == "round3" and a["params"] == 5760 and a["seed"] == 99
    assert len(a["test_acc"]) == 1 and trial.values == [a["test_acc"][0], 5760]
    assert a["test_acc"][0] > 97.0
    assert a["device"] == "cpu" and "torch" in a["versions"] and a["recipe"]["batch_size"] == 64


@pytest.mark.mnist
def test_five_trials_within_a_goal_of_3000_train_five_candidates_in_the_stages_space(capsys, tmp_path, data_root):
    store = str(tmp_path / "s.journal")
    code, out, err = run(capsys, "run", "--trials", "5", "--goal-params", "3000", "--epochs", "1", "--train-size",
                         "300", "--val-size", "500", "--strategy", "full", "--no-baselines", "--device", "cpu",
                         "--workers", "1", "--storage", store, "--data-dir", str(data_root))
    assert code == 0, err
    trials = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(store))).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5  # none rejected
    assert all(t.user_attrs["params"] <= 3_000 and "n1" in t.params for t in trials)


@pytest.mark.mnist
def test_search_report_export_from_the_cli(capsys, tmp_path, data_root):
    store = str(tmp_path / "s.journal")
    common = ["--storage", store, "--data-dir", str(data_root)]
    code, out, err = run(capsys, "run", "--trials", "3", "--epochs", "1", "--train-size", "300",
                         "--val-size", "500", "--device", "cpu", *common)
    assert code == 0, err
    assert "[round1]" in out and "Pareto front" in out and f"drill-search dashboard --storage {store}" in out
    code, out, _ = run(capsys, "run", "--trials", "3", "--epochs", "1", "--train-size", "300",
                       "--val-size", "500", "--device", "cpu", *common)
    assert code == 0 and "3 of 3 trials finished; nothing to do" in out  # a total, not 3 more
    code, out, err = run(capsys, "report", "--storage", store, "--output", str(tmp_path / "r.html"))
    assert code == 0, err
    assert (tmp_path / "r.html").exists()
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(store)))
    best = study.best_trials[0].number
    code, out, err = run(capsys, "export", str(best), "--storage", store, "--output", str(tmp_path / "e"))
    assert code == 0, err
    assert (tmp_path / "e" / "model.pt2").exists()
    confirm = ["confirm", "--trials", str(best), "--seeds", "2", "--epochs", "1", "--train-size", "300",
               "--no-baselines", "--device", "cpu", "--workers", "2", *common]
    code, out, err = run(capsys, *confirm)
    assert code == 0, err
    assert " seed 1: final test " in out and " seed 2: final test " in out  # each run as it finishes
    assert "2/2 runs finished" in out and "Final-epoch test accuracy" in out
    runs = optuna.load_study(study_name="search-confirm", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(store))).trials
    assert sorted(t.user_attrs["confirm_seed"] for t in runs) == [1, 2]  # each run once
    assert len({t.user_attrs["worker"] for t in runs}) == 2  # one per worker process
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in runs)
    code, out, err = run(capsys, *confirm)
    assert code == 0 and "2 of the 2 runs are already stored" in out and "Final-epoch test accuracy" in out
    one_more_seed = ["confirm", "--trials", str(best), "--seeds", "3", "--epochs", "1", "--train-size", "300",
                     "--no-baselines", "--device", "cpu", *common]  # default: one worker
    code, out, err = run(capsys, *one_more_seed)
    assert code == 0, err
    assert "2 of the 3 runs are already stored; training the rest" in out and "3/3 runs finished" in out
    assert " seed 3: final test " in out and " seed 1: final test " not in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "--trials", "0"], "--trials must be at least 1"),
        (["run", "--trials", "5", "--max-params", "0"], "--max-params must be at least 1"),
        (["run", "--trials", "5", "--epochs", "20"], "--epochs must be between 1 and 15, got 20."),
        (["run", "--trials", "5", "--val-size", "0"], "--val-size must be between 1 and 30000"),
        (["run", "--trials", "5", "--timeout", "-1"], "--timeout must be a positive number of seconds"),
        (["run", "--baseline", "round3", "--batch-size", "0"], "--batch-size must be between 1 and 60000"),
        (["run", "--trials", "5", "--pruner", "hyperband"], "invalid choice: 'hyperband'"),
        (["run", "--trials", "5", "--sampler", "cma"], "invalid choice: 'cma'"),
        (["run", "--trials", "x"], "invalid int value"),
        (["run", "--baseline", "round3", "--train-size", "100", "--workers", "2"],
         "--workers, --train-size belong to a search"),
        (["run", "--baseline", "round1", "--no-baselines"], "--no-baselines belong to a search"),  # the flag typed
        (["confirm", "--train-size", "0"], "--train-size must be between 1 and 60000"),
        (["confirm", "--workers", "0"], "--workers must be at least 1"),
        (["run", "--trials", "5", "--workers", "2"], "SQLite is not safe for 2 concurrent workers"),
        (["run", "--trials", "5", "--baseline", "round1"], "give one of them"),
        (["report", "--study-name", "nope"], "there is no storage at"),
        (["export", "3"], "there is no storage at"),
        (["run", "--trials", "5", "--storage", "mongodb://x"], "cannot read the storage"),
    ],
)
def test_bad_search_input_is_one_sentence_and_exit_2(capsys, tmp_path, data_root, argv, words):
    if "--storage" not in argv:
        argv = [*argv, "--storage", str(tmp_path / "s.db")]
    code, out, err = run(capsys, *argv, *(["--data-dir", str(data_root)] if argv[0] == "run" else []))
    assert code == 2, out + err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    if argv[0] != "run":
        assert not (tmp_path / "s.db").exists()  # reading commands create no storage


@pytest.mark.mnist  # the data is read before the study
def test_a_study_of_an_older_space_refuses_to_resume_and_names_the_code_that_made_it(capsys, tmp_path, data_root):
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "studies" / "reference.journal"  # v1: before batch and rotation
    journal = tmp_path / "reference.journal"
    shutil.copy(shipped, journal)
    code, out, err = run(capsys, "run", "--trials", "50", "--seed", "99", "--storage", str(journal),
                         "--data-dir", str(data_root))
    assert code == 2 and "was made with space = " in err and "code_revision" in err and err.count("\n") == 1
    assert journal.read_bytes() == shipped.read_bytes()  # nothing written


def test_missing_study_in_an_existing_storage_is_named(capsys, tmp_path):
    db = tmp_path / "s.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    code, _, err = run(capsys, "report", "--storage", str(db), "--study-name", "nope")
    assert code == 2 and "there is no study 'nope'" in err and "studies there: other" in err


def test_reading_commands_open_the_shipped_study_when_there_is_none_of_your_own(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    shipped = optuna.create_study(study_name="search", directions=["maximize", "minimize"],
                                  storage=optuna.storages.JournalStorage(
                                      optuna.storages.journal.JournalFileBackend("studies/reference.journal")))
    shipped.set_user_attr("max_params", 10000)
    code, out, err = run(capsys, "report", "--output", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "shipped reference study studies/reference.journal" in err and (tmp_path / "r.html").exists()
    assert not (tmp_path / "studies" / "drill-search.journal").exists()
    # a search of your own takes over as soon as it exists
    optuna.create_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend("studies/drill-search.journal")))
    code, out, err = run(capsys, "report", "--output", str(tmp_path / "r2.html"))
    assert code == 0, err
    assert "shipped" not in err


def test_a_search_that_keeps_failing_is_one_sentence_and_exit_1(capsys, tmp_path, monkeypatch):
    from search.execution.identity import SearchFailed

    def failing(cfg, **kw):
        raise SearchFailed("training kept failing with errors (4 failed trials, the last: error: RuntimeError: x); "
                           "finished trials are kept.")

    monkeypatch.setattr("search.study.run_search", failing)
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: None)
    code, out, err = run(capsys, "run", "--trials", "2", "--storage", str(tmp_path / "s.db"))
    assert code == 1 and err.count("\n") == 1 and "kept failing" in err and "Traceback" not in err


def test_failed_trials_and_their_reasons_are_in_the_report(capsys, tmp_path):
    db = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="search", storage=db, directions=["maximize", "minimize"])
    t = study.ask()
    t.set_user_attr("state_reason", "error: RuntimeError: boom")
    study.tell(t, state=optuna.trial.TrialState.FAIL)
    code, out, err = run(capsys, "report", "--storage", db, "--output", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "trial 0 failed: error: RuntimeError: boom" in out
    assert "Failed trials" in (tmp_path / "r.html").read_text() and "RuntimeError: boom" in (tmp_path / "r.html").read_text()


def test_the_dependency_floors_are_versions_the_tests_ran_on():
    # A floor below what was tested promises what nobody checked: torch 2.2 admitted code
    # that named torch.OutOfMemoryError (from 2.5 on) in an except clause.
    import re
    from importlib.metadata import version
    from pathlib import Path

    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    floors = dict(re.findall(r'"(torch|torchvision)>=([\d.]+)', text))
    assert floors == {"torch": "2.14", "torchvision": "0.29"}  # what .ci/run installs from this machine's disk
    for name, floor in floors.items():
        have = tuple(int(x) for x in re.findall(r"\d+", version(name))[:2])
        assert have >= tuple(int(x) for x in floor.split(".")), name


def test_a_checkout_with_only_the_old_default_sqlite_file_keeps_using_it(tmp_path, monkeypatch):
    from search.execution.storage import DEFAULT_STORAGE, LEGACY_STORAGE, reading_url, storage_url

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    assert storage_url(None) == DEFAULT_STORAGE  # nothing yet: the journal file
    optuna.create_study(study_name="search", storage=LEGACY_STORAGE)
    assert storage_url(None) == LEGACY_STORAGE and reading_url(None) == LEGACY_STORAGE  # not orphaned
    (tmp_path / DEFAULT_STORAGE).write_text("")
    assert storage_url(None) == DEFAULT_STORAGE  # once the journal exists, it is the default


@pytest.mark.parametrize("command", [["run", "--trials", "2"], ["run", "--baseline", "round3"]])
def test_a_negative_seed_is_one_sentence_and_exit_2_before_any_worker_starts(capsys, tmp_path, monkeypatch, command):
    # NumPy's SeedSequence refuses it inside every worker, which were respawned until the
    # death limit: it must be refused at the edge.
    _no_workers(monkeypatch)
    store = tmp_path / "s.journal"
    code, out, err = run(capsys, *command, "--seed", "-1", "--storage", str(store))
    assert code == 2, out + err
    assert err == "drill-search: error: --seed must be at least 0, got -1.\n"
    assert not store.exists()


def test_every_command_that_trains_refuses_a_negative_seed():
    # confirm and reevaluate build their recipe through Recipe too
    from search.config import ConfigError, DataConfig, Recipe, SearchConfig

    with pytest.raises(ConfigError, match="seed must be at least 0, got -1."):
        Recipe(seed=-1)
    with pytest.raises(ConfigError, match="seed must be at least 0, got -1."):
        SearchConfig(storage="s.journal", recipe=Recipe(), data=DataConfig(root="data"), seed=-1)


def test_the_parser_loads_without_torch_torchvision_or_optuna():
    # `drill-search --help` answers fast because the CLI module imports none of them
    # (benchmarks/startup.py measures the time).
    import subprocess
    import sys

    code = "import sys, search.cli; print(sorted(m for m in ('torch', 'torchvision', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_confirm_help_speaks_of_its_own_seeds_and_prints_percent_once(capsys):
    from search import cli

    with pytest.raises(SystemExit):
        cli.main(["confirm", "--help"])
    out = capsys.readouterr().out
    assert "99.4%%" not in out and "99.4%" in out and "sampler" not in out


def test_a_journal_cut_mid_line_warns_and_a_damaged_one_is_one_sentence(tmp_path, capsys):

    shipped = Path(__file__).parents[1] / "studies" / "v2.journal"
    text = shipped.read_bytes()
    cut = tmp_path / "cut.journal"
    cut.write_bytes(text[:20_000])
    code, out, err = run(capsys, "report", "--storage", str(cut), "--output", str(tmp_path / "r.html"))
    assert code == 0 and "ends in the middle of a line" in err
    # the commands that write to it say so too, before anything else
    for command in ("confirm", "reevaluate"):
        code, out, err = run(capsys, command, "--storage", str(cut), "--trials", "99999")
        assert code == 2 and err.startswith("warning: ") and "ends in the middle of a line" in err, (command, err)
    # none of them wrote (a write would first move the cut line aside)
    assert cut.read_bytes() == text[:20_000] and not list(tmp_path.glob("cut.journal.cut-*"))
    bad = tmp_path / "bad.journal"
    lines = text.split(b"\n")[:20]
    bad.write_bytes(b"\n".join([*lines[:3], b"{not json", *lines[3:]]) + b"\n")  # line 4 is damaged
    code, out, err = run(capsys, "report", "--storage", str(bad), "--output", str(tmp_path / "b.html"))
    assert code == 2 and err.count("\n") == 1 and "line 4 is not a journal record" in err


def test_reevaluate_refuses_a_recipe_of_its_own_and_the_search_runs_seed(capsys, tmp_path):
    from search.config import DataConfig, Recipe, SearchConfig
    from search.execution import identity

    cfg = SearchConfig(storage=str(tmp_path / "s.journal"), recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path))
    study = identity.open_search(cfg)
    params = spaces.encode(ROUNDS["round3"].candidate)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: spaces.SPACE[k] for k in params}, values=[99.0, 5760],
        user_attrs={"seed": 1, "params": 5760}))
    base = ["reevaluate", "--trials", "0", "--storage", str(tmp_path / "s.journal")]
    code, _, err = run(capsys, *base, "--epochs", "3")
    assert code == 2 and "leave out --epochs" in err
    code, _, err = run(capsys, *base)  # seeds 1, 2; the search trained trial 0 with seed 1
    assert code == 2 and "trial(s) 0 trained with one of these seeds" in err and err.count("\n") == 1


@pytest.mark.parametrize("command, given, words", [
    ("confirm", "search-confirm", "the study 'search-confirm' is a confirmation study"),
    ("confirm", "search-reeval", "'search-reeval' is a re-evaluation study"),
    ("reevaluate", "search-reeval", "'search-reeval' is a re-evaluation study"),
    ("reevaluate", "search-confirm", "'search-confirm' is a confirmation study"),
    ("confirm", "baselines", "'baselines' is the rounds' reproductions"),
])
def test_confirm_and_reevaluate_refuse_a_study_of_runs_as_the_search_and_write_nothing(
        capsys, tmp_path, command, given, words):
    from search.config import DataConfig, Recipe, SearchConfig
    from search.execution import identity, runs
    from search.execution.storage import open_storage

    store = tmp_path / "s.journal"
    search = identity.open_search(SearchConfig(storage=str(store), recipe=Recipe(epochs=2),
                                               data=DataConfig(root=tmp_path)))
    params = spaces.encode(ROUNDS["round3"].candidate)
    dist = {k: spaces.SPACE[k] for k in params}
    search.add_trial(optuna.trial.create_trial(params=params, distributions=dist, values=[99.0, 5760],
                                               user_attrs={"seed": 0, "params": 5760}))
    for check in runs.CHECKS.values():  # each holds a complete run of that trial, as after a real command
        study = runs.open_runs(open_storage(str(store)), check.study_name("search"), check)
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=dist, values=[99.1, 5760],
            user_attrs={"label": "trial 0", "confirm_seed": 1, "source_trial": 0, "test_acc": [99.1],
                        "run_protocol": runs.run_key(runs.run_protocol(Recipe(), None, check), ROUNDS["round3"].candidate)}))
    runs.open_baselines(open_storage(str(store))).add_trial(optuna.trial.create_trial(
        params=params, distributions=dist, values=[99.2, 5760], user_attrs={"baseline": "round3", "test_acc": [99.2]}))
    before = store.read_bytes()
    code, out, err = run(capsys, command, "--study-name", given, "--storage", str(store), "--seed", "5",
                         "--data-dir", str(tmp_path / "no-data"))
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert ("pass the search's name: --study-name search" if given != "baselines" else "pass a search's") in err
    assert store.read_bytes() == before  # nothing written, no study of runs of runs created


def _no_workers(monkeypatch):
    """Fail the test if a command gets as far as starting workers or reading MNIST."""
    def started(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr("search.study.run_search", started)
    monkeypatch.setattr("search.confirm.supervise", started)
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: root)
    monkeypatch.setattr("search.confirm.ensure_mnist", lambda root, download=True: root)


@pytest.mark.parametrize("flags, sentence", [
    # the rung is a run of its own: a Recipe, which refused 16 epochs in every worker
    (["--rung-epochs", "16"], "--rung-epochs must be fewer than --epochs (15): the rung is the cheap first look, "
     "got 16."),
    (["--rung-epochs", "16", "--strategy", "full"], "--rung-epochs must be between 1 and 15, got 16."),
    (["--rung-epochs", "3", "--epochs", "0"], "--epochs must be between 1 and 15, got 0."),  # the epochs first
    (["--rung-epochs", "4", "--epochs", "4"],
     "--rung-epochs must be fewer than --epochs (4): the rung is the cheap first look, got 4."),
    # torch.manual_seed refused it in every trial
    (["--seed", str(2**64)], f"--seed must be at most {2**64 - 1:,}, got {2**64:,}."),
    # nothing started, and the search ended as if done
    (["--timeout", "nan"], "--timeout must be a positive number of seconds, got nan."),
    (["--goal-params", "20000", "--max-params", "5000"],
     "--goal-params must be at most --max-params (5,000): larger candidates are never trained; got 20,000."),
])
def test_a_search_flag_the_workers_would_refuse_is_one_sentence_before_anything_is_written(
        capsys, tmp_path, monkeypatch, flags, sentence):
    _no_workers(monkeypatch)
    store = tmp_path / "s.journal"
    code, out, err = run(capsys, "run", "--trials", "2", *flags, "--storage", str(store))
    assert (code, err) == (2, f"drill-search: error: {sentence}\n"), out + err
    assert not store.exists() and not (tmp_path / "s-artifacts").exists()


def test_a_rung_given_for_a_full_search_or_left_at_its_default_is_not_refused(capsys, tmp_path, monkeypatch):
    # --epochs 2 leaves the default 3-epoch rung longer than the run: no rung, as before
    from search.cli import build_parser, search_config

    for flags in (["--epochs", "2"], ["--strategy", "full", "--rung-epochs", "15"]):
        args = build_parser().parse_args(["run", "--trials", "2", "--workers", "1", *flags])
        cfg = search_config(args, "cpu")
        assert not cfg.promotes


def test_a_seed_beyond_torchs_is_refused_by_every_command_that_trains(capsys, tmp_path, monkeypatch):
    from search.config import ConfigError, ConfirmConfig, DataConfig, Recipe, SearchConfig
    from search.execution import identity

    _no_workers(monkeypatch)
    journal = tmp_path / "s.journal"
    code, out, err = run(capsys, "run", "--baseline", "round3", "--seed", str(2**64), "--storage", str(journal))
    assert (code, err) == (2, f"drill-search: error: --seed must be at most {2**64 - 1:,}, got {2**64:,}.\n")
    assert not journal.exists()
    cfg = SearchConfig(storage=str(journal), recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path))
    study = identity.open_search(cfg)
    params = spaces.encode(ROUNDS["round3"].candidate)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: spaces.SPACE[k] for k in params}, values=[99.0, 5760],
        user_attrs={"seed": 1, "params": 5760}))
    # seeds S, S + 1, S + 2: the last is past torch's largest
    code, out, err = run(capsys, "confirm", "--seed", str(2**64 - 2), "--storage", str(journal))
    assert code == 2 and err.count("\n") == 1 and f"--seed {2**64 - 2:,} and --seeds 3 reach a seed past " in err, err
    names = [s.study_name for s in optuna.get_all_study_summaries(
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal))))]
    assert names == ["search"]
    with pytest.raises(ConfigError):
        ConfirmConfig(storage="s.journal", recipe=Recipe(), data=DataConfig(root="data"), first_seed=2**64 - 1,
                      seeds=2)


@pytest.mark.parametrize("field, value", [("sampler", "tpe2"), ("pruner", "mean"), ("rung_epochs", 16)])
def test_the_search_config_refuses_at_construction_what_a_worker_would_refuse(field, value):
    # one home for the rule: the frozen config, built in the parent before anything is written
    from search.config import ConfigError, DataConfig, Recipe, SearchConfig

    with pytest.raises(ConfigError) as e:
        SearchConfig(storage="s.journal", recipe=Recipe(), data=DataConfig(root="data"), **{field: value})
    assert e.value.field == field


def _a_study(tmp_path) -> str:
    journal = str(tmp_path / "s.journal")
    optuna.create_study(study_name="search", directions=["maximize", "minimize"],
                        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal)))
    return journal


@pytest.fixture
def no_serving(monkeypatch):
    """The dashboard must refuse before it serves: serving fails the test (and never blocks it)."""
    import optuna_dashboard

    def serve(*args, **kwargs):
        raise AssertionError("the dashboard started serving")

    monkeypatch.setattr(optuna_dashboard, "run_server", serve)


def test_a_dashboard_on_a_port_in_use_is_one_sentence_and_serves_nothing(tmp_path, capsys, no_serving):
    import socket

    journal = _a_study(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "dashboard", "--storage", journal, "--port", str(port))
    assert (code, out) == (2, ""), err
    assert err == (f"drill-search: error: port {port} on 127.0.0.1 is in use by another program: pick another "
                   "with --port.\n")


@pytest.mark.parametrize("flags, words", [
    (["--port", "70000"], "--port must be between 1 and 65535, got 70000."),
    (["--port", "0"], "--port must be between 1 and 65535, got 0."),
    (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' is not a name or address this machine knows."),
    (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1:8080: Cannot assign requested address."),  # not ours
])
def test_a_dashboard_address_it_cannot_listen_on_is_one_sentence(tmp_path, capsys, no_serving, flags, words):
    code, out, err = run(capsys, "dashboard", "--storage", _a_study(tmp_path), *flags)
    assert (code, out, err) == (2, "", f"drill-search: error: {words}\n")


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_a_report_output_it_cannot_write_is_one_sentence(tmp_path, capsys, where):
    journal = _a_study(tmp_path)
    (tmp_path / "a-file").write_text("")
    output = tmp_path if where == "folder" else tmp_path / "a-file" / "r.html"
    code, out, err = run(capsys, "report", "--storage", journal, "--output", str(output))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, out + err
    if where == "folder":
        assert err == (f"drill-search: error: --output {output} is a folder: name the HTML file, e.g. "
                       f"{output}/report.html.\n")
    else:
        assert err.startswith(f"drill-search: error: cannot write the report to {output}: ")


def test_reevaluate_with_no_leader_says_so_in_words_that_read_right(capsys, tmp_path):
    from search.config import DataConfig, Recipe, SearchConfig
    from search.execution import identity

    journal = str(tmp_path / "s.journal")
    study = identity.open_search(SearchConfig(storage=journal, recipe=Recipe(epochs=2), data=DataConfig(root=tmp_path)))
    code, _, err = run(capsys, "reevaluate", "--storage", journal)
    assert (code, err) == (2, "drill-search: error: study 'search' has no complete trial yet.\n")
    params = spaces.encode(ROUNDS["round3"].candidate)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: spaces.SPACE[k] for k in params}, values=[99.0, 5760]))
    code, _, err = run(capsys, "reevaluate", "--storage", journal, "--goal-params", "3000")
    assert (code, err) == (2, "drill-search: error: study 'search' has no complete trial within the goal of 3,000 "
                              "parameters yet.\n")


@pytest.mark.parametrize("value", ["0", "nan"])
def test_fail_stale_refuses_an_age_that_is_not_a_positive_number(capsys, tmp_path, value):
    # NaN compares false with every age: it ended nothing and said so as if all were well
    journal = _a_study(tmp_path)
    code, out, err = run(capsys, "fail-stale", "--storage", journal, "--older-than", value)
    assert (code, out) == (2, "") and err == (f"drill-search: error: --older-than must be a positive number of "
                                              f"seconds, got {float(value):g}.\n")


def test_the_commands_a_report_suggests_name_its_study_as_the_user_did():
    from search.config import ReportConfig

    assert ReportConfig(storage="studies/drill-search.journal").command_flags == ""  # the defaults: nothing to repeat
    assert ReportConfig(storage="/abs/v3.journal", storage_given="v3.journal").command_flags == " --storage v3.journal"
    assert (ReportConfig(storage="/abs/v3.journal", study_name="big", storage_given="v3.journal").command_flags
            == " --storage v3.journal --study-name big")
    assert ReportConfig(storage="x.journal", study_name="big").command_flags == " --study-name big"


@pytest.mark.parametrize("argv, words", [
    (["export", "99"], "study 'search' has no trial 99 (it has 1)."),
    (["export", "0", "--output", "existing.txt"], "the output existing.txt is a file: name a folder"),
    (["export", "0"], "trial 0 kept no weights in the artifact store"),
])
def test_a_refused_export_leaves_no_folder_behind(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    journal = _a_study(tmp_path)
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(journal)))
    params = spaces.encode(ROUNDS["round3"].candidate)
    study.add_trial(optuna.trial.create_trial(params=params, distributions={k: spaces.SPACE[k] for k in params},
                                              values=[99.0, 5760]))
    (tmp_path / "existing.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, *argv, "--storage", journal)
    assert code == 2 and err.count("\n") == 1 and words in err, out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no s-artifacts/, no exports/
    assert (tmp_path / "existing.txt").read_text() == "mine"


def test_a_search_that_finished_nothing_prints_no_bare_trials_line(capsys, tmp_path, monkeypatch):
    # --timeout counts from this process's start, long past: the search starts no worker
    monkeypatch.setattr("search.study.ensure_mnist", lambda root, download=True: root)
    code, out, err = run(capsys, "run", "--trials", "2", "--timeout", "0.001", "--workers", "1", "--no-baselines",
                         "--storage", str(tmp_path / "s.journal"))
    assert code == 0, err
    assert "trials: none" in out.splitlines() and not [line for line in out.splitlines() if line.strip() == "trials:"]
    assert "the --timeout stopped the search at 0 of 2 finished trials" in out


def test_every_hint_names_the_study_one_way():
    # the dashboard's, fail-stale's and the report's commands: one builder (config.study_flags)
    from optuna.trial import TrialState, create_trial

    from search.config import ReportConfig, study_flags
    from search.execution.storage import dashboard_command
    from search.results import document

    import socket

    lost = create_trial(state=TrialState.RUNNING, user_attrs={"worker": f"{socket.gethostname()}:4194303:1"})
    lost.number = 7  # its worker, a pid past Linux's largest on this machine, is gone
    for name in ("search", "big"):
        flags = study_flags("v3.journal", name)
        assert dashboard_command("v3.journal", name) == f"drill-search dashboard{flags}"
        assert ReportConfig(storage="/abs/v3.journal", study_name=name, storage_given="v3.journal").command_flags == flags
        assert f"drill-search fail-stale{flags} re-queues them" in document.running_text([lost], "v3.journal", name)
    assert study_flags(None, "search") == "" and study_flags("v3.journal", "big") == " --storage v3.journal --study-name big"


@pytest.mark.parametrize("flags, choices", [
    (["--max-params", "5000"], {"max_params"}), (["--goal-score", "99"], {"goal"}), (["--goal-params", "9"], {"goal"}),
    (["--epochs", "3"], {"recipe.epochs"}), (["--val-size", "100"], {"data.val_size"}), (["--bf16"], {"recipe.bf16"}),
    (["--rung-epochs", "2", "--eta", "4"], {"rung_epochs", "eta"}), (["--pruner", "none", "--seed", "3"], set()),
])
def test_the_choices_a_flag_makes_follow_from_its_name(flags, choices):
    # one declaration per flag (flags.py): the CLI keeps no list of them
    from search.cli import _choices_given, _search_flags
    from search.flags import build_parser

    args = build_parser().parse_args(["run", "--trials", "2", *flags])
    assert _choices_given(args) == choices
    assert _search_flags(args) == [f for f in flags if f.startswith("--") and f not in ("--epochs", "--bf16", "--seed")]
