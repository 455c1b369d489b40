"""Seeing and trusting results: report, dashboard app, confirm, export."""

from __future__ import annotations

import datetime
import json
import wsgiref.util
from io import BytesIO

import optuna
import optuna_dashboard
import pytest
import torch
from optuna.trial import TrialState

from search import confirm, study as studies
from search.config import Recipe
from search.engine.data import Mnist, normalize
from search.execution import identity, runs as runs_module, workers
from search.execution.storage import artifact_store, open_storage
from search.results import confirmation, document, export, selection, verdicts
from tests.conftest import synthetic_split
from tests.test_search import config, synthetic_data


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A small finished search on synthetic digits: baselines plus sampled trials."""
    tmp = tmp_path_factory.mktemp("study")
    cfg = config(tmp, trials=7, with_baselines=True, pruner="median", prune_warmup=1,
                 recipe=Recipe(epochs=2, batch_size=64))
    studies.enqueue_baselines(identity.open_search(cfg), cfg.max_params)
    workers.run_worker(cfg, data=synthetic_data())
    return cfg, optuna.load_study(study_name=cfg.study_name, storage=cfg.storage)


def train_and_judge(choices, seeds, recipe, data, storage, name, check=runs_module.TEST, train_size=None, **kw):
    """The runs of `choices` x `seeds` trained in this process (what the workers of
    `confirm.retrain` do, each with its part), then the verdicts on what is stored."""
    runs_module.train(confirm.asked(choices, seeds), recipe, data, torch.device("cpu"), storage, name, check,
                      train_size=train_size, **kw)
    study = runs_module.open_runs(storage, name, check)
    return verdicts.verdicts(study, choices, seeds, runs_module.run_protocol(recipe, train_size, check), check)


def test_report_has_the_front_labels_budget_and_target(searched, tmp_path):
    cfg, study = searched
    path = tmp_path / "r.html"
    document.write_html(study, path)
    html = path.read_text()
    assert "Pareto front" in html and "hand-designed rounds" in html
    for name in ("round1", "round2", "round3"):
        assert name in html
    assert "budget 10,000" in html and "99.4% target" in html
    assert "Plotly.newPlot" in html and '<script src="http' not in html  # self-contained
    for t in selection.front(study):
        assert f"<td>{t.number}</td>" in html


def test_front_holds_only_complete_trials_within_budget_that_nothing_beats(searched):
    _, study = searched
    front = selection.front(study)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())]
    assert front and all(t in complete for t in front)
    for t in front:
        assert not any(o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
                       for o in complete)


def environ_errors(body: bytes) -> str:
    return body.decode(errors="replace")[:2000]


def _get(app, path: str):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": BytesIO(b"")}
    wsgiref.util.setup_testing_defaults(environ)
    status = {}
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.setdefault("s", s)))
    return status["s"], body


def test_dashboard_app_serves_the_study_with_metric_names_and_figures(searched):
    cfg, study = searched
    document.attach(study, document.figures(study))
    app = optuna_dashboard.wsgi(open_storage(cfg.storage), artifact_store=artifact_store(cfg.storage))
    status, body = _get(app, "/api/studies")
    assert status.startswith("200")
    listed = json.loads(body)["study_summaries"]
    (entry,) = [s for s in listed if s["study_name"] == cfg.study_name]
    status, body = _get(app, f"/api/studies/{entry['study_id']}")
    assert status.startswith("200"), environ_errors(body)
    detail = json.loads(body)
    assert detail["objective_names"] == ["val_acc_last3", "params"]
    assert {g["id"] for g in detail["plotly_graph_objects"]} >= {"pareto-front", "curves"}
    attrs = {a["key"] for a in detail["union_user_attrs"]}
    assert {"baseline", "val_acc", "state_reason", "params"} <= attrs
    assert len(detail["trials"]) == 7


def test_report_leaves_the_study_it_reads_as_it_was(searched, tmp_path, monkeypatch):
    """Even when its figures differ from the stored ones (another plotly, another machine),
    `report` only reads: a fresh clone's `git status` stays clean."""
    from search import cli

    cfg, _ = searched
    journal = tmp_path / "read.journal"
    optuna.copy_study(from_study_name=cfg.study_name, from_storage=cfg.storage,
                      to_storage=open_storage(str(journal)))
    before = journal.read_bytes()
    real = document.figures

    def elsewhere(study, spread=None):
        figs = real(study, spread)
        figs["curves"].update_layout(title="drawn by another plotly")
        return figs

    monkeypatch.setattr(document, "figures", elsewhere)
    args = ["report", "--storage", str(journal), "--study-name", cfg.study_name, "--output", str(tmp_path / "r.html")]
    assert cli.main(args) == 0
    assert journal.read_bytes() == before
    assert cli.main([*args, "--attach"]) == 0
    assert journal.read_bytes() != before  # asked to store the figures, it does


def test_the_report_stores_figures_only_when_they_changed(searched, tmp_path):
    """Reading a finished study (the shipped one) must not grow its storage file."""
    cfg, _ = searched
    journal = tmp_path / "copy.journal"
    optuna.copy_study(from_study_name=cfg.study_name, from_storage=cfg.storage,
                      to_storage=open_storage(str(journal)))
    study = optuna.load_study(study_name=cfg.study_name, storage=open_storage(str(journal)))
    figs = document.figures(study)
    document.attach(study, figs)  # stored now, or already stored by another test
    size = journal.stat().st_size
    assert not document.attach(study, document.figures(study))
    assert journal.stat().st_size == size
    figs["curves"].update_layout(title="a trial was added")
    assert document.attach(study, figs)
    assert journal.stat().st_size > size


def test_export_loads_in_plain_torch_with_the_same_predictions(searched, tmp_path):
    cfg, study = searched
    store = artifact_store(cfg.storage)
    number = selection.front(study)[0].number
    model, _ = export.trained_model(study, number, store)
    out = export.export(study, number, store, tmp_path / "exp")
    loaded = torch.export.load(str(out / "model.pt2")).module()
    x = normalize(synthetic_split(64, seed=7).images)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    meta = json.loads((out / "arch.json").read_text())
    assert meta["trial"] == number and meta["params"] == int(study.trials[number].values[1])
    assert "total parameters" in (out / "layers.txt").read_text()


def test_exported_arch_json_holds_the_schedule_batch_and_rotation(searched, tmp_path):
    import spaces

    cfg, study = searched
    number = selection.front(study)[0].number
    out = export.export(study, number, artifact_store(cfg.storage), tmp_path / "exp")
    meta = json.loads((out / "arch.json").read_text())
    c = spaces.decode(study.trials[number].params)
    assert (meta["schedule"], meta["lr_step"], meta["batch_size"], meta["rotation"]) == (
        c.schedule, c.lr_step, c.batch_size, c.rotation)
    assert meta["recipe"] == study.trials[number].user_attrs["recipe"]  # what trained it: here batch 64


def test_export_refuses_trials_without_weights(searched, tmp_path):
    cfg, study = searched
    with pytest.raises(export.ExportError):
        export.export(study, 999, artifact_store(cfg.storage), tmp_path)
    pruned = optuna.create_study(directions=["maximize", "minimize"])
    pruned.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
    with pytest.raises(export.ExportError, match="only complete trials"):
        export.export(pruned, 0, artifact_store(cfg.storage), tmp_path)


def test_export_of_a_study_copied_without_its_weights_is_one_sentence_and_exit_2(searched, tmp_path, capsys):
    import shutil

    from search.cli import main
    from search.execution.storage import storage_file

    cfg, study = searched
    copy = tmp_path / "copied.db"  # the study file alone, not its -artifacts/ folder beside it
    shutil.copy(storage_file(cfg.storage), copy)
    number = selection.front(study)[0].number
    code = main(["export", str(number), "--storage", str(copy), "--output", str(tmp_path / "e")])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert err.startswith("drill-search: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert f"trial {number}" in err and "weights" in err
    assert not (tmp_path / "e").exists()


def test_confirm_stores_per_seed_results_and_resumes(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(cfg.storage)
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    choices = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    runs = []
    verdicts = train_and_judge(choices, [1, 2], Recipe(epochs=1), data, storage,
                               "confirm-test", on_run=lambda c, s, h: runs.append((c.label, s, h is None)))
    (v,) = verdicts
    assert len(v.final) == 2 and runs == [(choices[0].label, 1, False), (choices[0].label, 2, False)]
    stored = optuna.load_study(study_name="confirm-test", storage=storage).trials
    assert sorted(t.user_attrs["confirm_seed"] for t in stored) == [1, 2]
    assert all(t.values[0] == pytest.approx(t.user_attrs["test_acc"][-1]) for t in stored)
    again = train_and_judge(choices, [1, 2], Recipe(epochs=1), data, storage,
                            "confirm-test", on_run=lambda c, s, h: runs.append((c.label, s, h is None)))
    assert runs[-2:] == [(choices[0].label, 1, True), (choices[0].label, 2, True)]  # nothing retrained
    assert again[0].final == v.final
    assert "reach 99.4% on every seed" in confirmation.table(again, 1)


def test_reevaluation_trains_on_the_search_split_scores_validation_and_averages_only_its_own_runs(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/reeval.db")
    data = Mnist(train=synthetic_split(300, 1), test=synthetic_split(128, 4))
    check = runs_module.Check("reeval", "val_acc_last3", (1, 2), "test", val_size=100, val_seed=0)
    trial = selection.front(study)[0]
    choices = selection.choose(study, [trial.number], cfg.max_params, with_baselines=False)
    (v,) = train_and_judge(choices, [1, 2], Recipe(epochs=2), data, storage, "r", check=check)
    runs = runs_module.open_runs(storage, "r", check).trials
    assert len(runs) == 2 and all(len(t.user_attrs["val_acc"]) == 2 for t in runs)
    for t in runs:  # the score is the search's: the mean validation accuracy of the last epochs
        assert t.values[0] == pytest.approx(sum(t.user_attrs["val_acc"]) / 2, abs=1e-3)
    # the search run picked the leaders (biased upward): shown beside, never in the mean
    assert v.final == tuple(t.values[0] for t in runs) and v.choice.search_score == trial.values[0]
    assert f"{trial.values[0]:.2f}" in confirmation.table([v], 2, check)
    assert v.test == tuple(t.user_attrs["test_acc"][-1] for t in runs)
    train, evals = check.splits(data, None)
    assert len(train) == 200 and len(evals["val"]) == 100 and set(evals) == {"val", "test"}
    assert runs_module.run_protocol(Recipe(), None, check)["val_size"] == 100  # a different protocol from TEST's
    assert "leader: " in confirmation.table([v], 2, check)


def test_leaders_are_the_best_within_the_goal_that_one_run_cannot_tell_apart():
    from optuna.distributions import FloatDistribution

    from search.config import Goal

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("val_size", 5_000)
    for score, params in ((99.20, 4_000), (99.05, 4_500), (98.50, 3_000), (99.60, 8_000), (99.18, 4_900)):
        study.add_trial(optuna.trial.create_trial(params={"x": 0.0}, distributions={"x": FloatDistribution(0, 1)},
                                                  values=[score, params]))
    leaders = selection.leaders(study, Goal(max_params=5_000), most=4, z=2.0)
    # the 8,000-parameter net is outside the goal; 98.50 is 0.7 points behind (about 3 SE)
    assert [t.values[0] for t in leaders] == [99.20, 99.18, 99.05]
    assert [t.values[0] for t in selection.leaders(study, Goal(max_params=5_000), most=2)] == [99.20, 99.18]
    assert [t.values[0] for t in selection.leaders(study, Goal())][0] == 99.60  # no goal: the front


def test_the_reevaluation_table_calls_a_noise_level_lead_a_tie():
    def verdict(label, scores):
        return verdicts.Verdict(runs_module.Choice(label, None), 4_000, tuple(scores), tuple(scores))

    check = runs_module.VALIDATION
    close = confirmation.table([verdict("a", (99.20, 99.10, 99.30)), verdict("b", (99.15, 99.05, 99.25))], 15, check)
    assert "leader: a" in close and "within one standard error of it: b" in close
    clear = confirmation.table([verdict("a", (99.40, 99.41, 99.42)), verdict("b", (99.10, 99.11, 99.12))], 15, check)
    assert "leader: a (99.41%)" in clear and "within one standard error" not in clear


def test_a_waiting_trial_without_parameters_is_not_a_planned_run(searched, tmp_path):
    # `fail-stale --study-name search-confirm` re-queues a confirm trial as a waiting one
    # with no parameters; the next confirm's progress reads the study's trials
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/w.db")
    runs = runs_module.open_runs(storage, "c")
    runs.enqueue_trial({})
    choices = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    assert confirm.planned_runs(runs.trials, choices, [1], runs_module.run_protocol(Recipe(epochs=1), None)) == []


def test_a_run_stored_twice_counts_once(searched, tmp_path):
    # two confirm commands on one storage both trained seed 1: the mean must not count it twice
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/twice.db")
    data = Mnist(synthetic_split(256, seed=1), synthetic_split(128, seed=2))
    choices = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    train_and_judge(choices, [1, 2], Recipe(epochs=1), data, storage, "c")
    runs = runs_module.open_runs(storage, "c")
    key = runs_module.run_protocol(Recipe(epochs=1), None)
    first = next(t for t in runs.trials if t.user_attrs["confirm_seed"] == 1)
    runs.add_trial(optuna.trial.create_trial(params=first.params, distributions=first.distributions,
                                             values=[first.values[0] - 1.0, first.values[1]],
                                             user_attrs=first.user_attrs))
    (v,) = verdicts.verdicts(runs, choices, [1, 2], key)
    assert len(v.final) == 2 and first.values[0] in v.final and first.values[0] - 1.0 not in v.final



def test_runs_are_judged_in_seed_order_whichever_was_stored_first():
    # two workers: seed 2's run may be stored before seed 1's; tables list seeds 1, 2
    from types import SimpleNamespace

    runs = [SimpleNamespace(number=n, user_attrs={"confirm_seed": seed}) for n, seed in ((0, 2), (1, 1), (2, 2))]
    assert [(t.number, t.user_attrs["confirm_seed"]) for t in selection.one_per_seed(runs)] == [(1, 1), (0, 2)]


def test_confirm_workers_split_the_missing_runs_each_run_once(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/c.db")
    data = Mnist(synthetic_split(256, seed=1), synthetic_split(128, seed=2))
    choices = selection.choose(study, [t.number for t in selection.front(study)[:2]], cfg.max_params,
                             with_baselines=False)
    key = runs_module.run_protocol(Recipe(epochs=1), None)
    train_and_judge(choices, [1], Recipe(epochs=1), data, storage, "c")  # seed 1 is stored
    todo = confirm.missing(runs_module.open_runs(storage, "c"), choices, [1, 2, 3], key)
    assert [(c.label, s) for c, s in todo] == [(c.label, s) for c in choices for s in (2, 3)]
    trained = []
    for worker in (0, 1):  # what two workers do (`confirm.supervise`), one after the other here
        runs_module.train(todo[worker::2], Recipe(epochs=1), data, torch.device("cpu"), storage, "c",
                          on_run=lambda c, s, h: trained.append((c.label, s, h is None)))
    assert sorted(trained) == sorted((c.label, s, False) for c, s in todo)  # each missing run trained once
    runs = optuna.load_study(study_name="c", storage=storage).trials
    assert sorted((t.user_attrs["label"], t.user_attrs["confirm_seed"]) for t in runs) == sorted(
        (c.label, s) for c, s in confirm.asked(choices, [1, 2, 3]))
    assert confirm.missing(runs_module.open_runs(storage, "c"), choices, [1, 2, 3], key) == []


def test_a_confirm_worker_that_fails_is_one_sentence_and_its_reason(searched, tmp_path, capfd):
    cfg, study = searched
    choices = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    not_a_folder = tmp_path / "file"  # no MNIST, and no download can land there, online or not
    not_a_folder.write_text("")
    url = f"sqlite:///{tmp_path}/c.db"
    runs = runs_module.open_runs(open_storage(url), "c")
    plan = confirm.Plan(runs_module.TEST, choices, [1], Recipe(epochs=1), None, "c", confirm.asked(choices, [1]))
    job = workers.ConfirmJob(Recipe(epochs=1), str(not_a_folder), "cpu", url, "c", None, 1)
    with pytest.raises(identity.SearchFailed, match="a confirmation run failed"):
        confirm.supervise(runs, plan, job, on_event=lambda e: None, poll_seconds=0.1)
    err = capfd.readouterr().err
    assert "drill-search confirm worker: DataError: MNIST is not usable" in err and "Traceback" not in err


def test_confirm_progress_counts_stored_runs_and_shows_only_its_own_workers():
    from optuna.trial import create_trial

    from search.progress import confirm_status

    def run(state, seed, worker, epochs, seconds=10.0):
        attrs = {"label": "trial 3", "confirm_seed": seed, "worker": worker,
                 "test_acc": [99.0] * epochs, "epoch_seconds": [seconds] * epochs}
        return create_trial(state=state, user_attrs=attrs, params={"lr": 0.1},
                            distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1.0)},
                            values=[99.0, 5000] if state == TrialState.COMPLETE else None)

    runs = [run(TrialState.COMPLETE, 1, "h:1", 4), run(TrialState.COMPLETE, 1, "h:9", 4),  # stored twice
            run(TrialState.RUNNING, 2, "h:2", 1), run(TrialState.RUNNING, 3, "h:3", 0),
            run(TrialState.RUNNING, 4, "h:dead", 2, seconds=500.0)]  # another command's leftover
    running, done, left = confirm_status(runs, total=5, epochs=4, ids={"h:2", "h:3"})
    assert done == 1 and [r.label for r in running] == ["trial 3 seed 2", "trial 3 seed 3"]
    # 3 + 4 epochs left of the running runs + 2 runs not started x 4 epochs, at 10 s, on 2 workers
    assert left == (3 + 4 + 2 * 4) * 10.0 / 2
    # a worker that ended (its run done, or replaced after a crash) no longer shares the work
    _, _, left = confirm_status(runs, total=5, epochs=4, ids={"h:2", "h:3", "h:7", "h:8"})
    assert left == (3 + 4 + 2 * 4) * 10.0 / 2


def test_confirm_default_choice_is_the_front_plus_rounds_under_budget(searched):
    _, study = searched
    labels = [c.label for c in selection.choose(study, None, 10_000)]
    assert {"round1", "round2", "round3"} <= set(labels) and "round0" not in labels
    assert len(labels) == len({c.candidate for c in selection.choose(study, None, 10_000)})


def test_confirm_never_mixes_runs_made_under_another_recipe(searched):
    cfg, study = searched
    storage = open_storage(cfg.storage)
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    choices = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    runs = []

    def go(recipe):
        return train_and_judge(choices, [1], recipe, data, storage, "confirm-recipes",
                               on_run=lambda c, s, h: runs.append(h is None))

    a = go(Recipe(epochs=1, batch_size=128))
    b = go(Recipe(epochs=1))  # batch 64: another recipe, so it must train, not reuse
    c = go(Recipe(epochs=1, batch_size=128))  # the first recipe again: reused
    assert runs == [False, False, True]
    assert c[0].final == a[0].final
    stored = optuna.load_study(study_name="confirm-recipes", storage=storage).trials
    assert sorted(t.user_attrs["run_protocol"]["batch_size"] for t in stored) == [64, 128]
    assert len(b[0].final) == 1


def test_the_report_shows_what_the_confirmation_study_holds_under_its_recipe(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(cfg.storage)
    assert confirmation.stored_table(study, storage, Recipe(epochs=1)) is None  # nothing confirmed yet
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    first = selection.choose(study, [selection.front(study)[0].number], cfg.max_params, with_baselines=False)
    train_and_judge(first, [1, 2, 7], Recipe(epochs=1), data, storage,
                    runs_module.TEST.study_name(study.study_name))
    text = confirmation.stored_table(study, storage, Recipe(epochs=1))
    row = next(line for line in text.splitlines() if line.startswith(first[0].label + " "))
    assert row[len(first[0].label):].split()[1] == "2"  # params, then seeds: 1 and 2, not the extra seed 7
    assert "\n2 runs took " in text and " process-hours, " in text  # what the runs shown cost
    others = [c.label for c in selection.choose(study, None, cfg.max_params) if c.label != first[0].label]
    assert text.splitlines()[-1] == "not confirmed yet: " + ", ".join(others)
    assert confirmation.stored_table(study, storage, Recipe(epochs=1, batch_size=128)) is None  # another recipe's runs
    path = tmp_path / "r.html"
    extra = confirmation.summary(study, storage, Recipe(epochs=1))
    document.write_html(study, path, answer=extra.answer, tables=extra.tables)
    assert "<h2>Confirmation on test</h2>" in path.read_text() and first[0].label in path.read_text()


def test_a_recorded_run_holds_its_own_candidate_even_with_a_trial_waiting(tmp_path):
    # A leftover waiting trial (another command's, or a re-queue) sits in the study; the
    # run must train and record exactly the candidate it was given, and leave the other.
    import spaces
    from baselines import ROUNDS
    from search.execution.runs import record_run

    storage = open_storage(f"sqlite:///{tmp_path}/b.db")
    study = runs_module.open_baselines(storage)
    study.enqueue_trial(spaces.encode(ROUNDS["round1"].candidate), user_attrs={"baseline": "round1"})
    data = Mnist(train=synthetic_split(128, 1), test=synthetic_split(64, 4))
    record_run(study, ROUNDS["round3"].candidate, Recipe(epochs=1), data.train, {"test": data.test},
               torch.device("cpu"), {"baseline": "round3"})
    waiting, done = study.trials
    assert waiting.state == TrialState.WAITING and waiting.user_attrs == {"baseline": "round1"}
    assert done.state == TrialState.COMPLETE and done.user_attrs["baseline"] == "round3"
    assert spaces.decode(done.params) == ROUNDS["round3"].candidate and done.values[1] == 5760


def test_points_below_the_zoomed_front_axis_are_drawn_on_its_floor_and_counted(tmp_path):
    import spaces
    from baselines import ROUNDS

    study = optuna.create_study(directions=["maximize", "minimize"], study_name="low")
    params = spaces.encode(ROUNDS["round3"].candidate)
    dists = {k: spaces.SPACE[k] for k in params}
    for acc, n in ((99.0, 5000), (90.0, 3000), (99.2, 8000)):
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, values=[acc, n], params=params, distributions=dists,
            user_attrs={"params": n, "val_acc": [acc], "test_acc": [acc + 0.2]}))
    fig = document.front_figure(study)
    lo, hi = fig.layout.yaxis.range
    assert lo == pytest.approx(96.8) and hi == 100.0  # zoom kept
    ys = [(y, sym) for tr in fig.data for y, sym in zip(tr.y, tr.marker.symbol)]
    assert all(y >= lo for y, _ in ys)  # nothing off the axis...
    assert (lo, "triangle-down") in ys  # ...the 90% trial sits on the floor, marked
    notes = [a.text for a in fig.layout.annotations if "below" in a.text]
    assert notes and notes[0].startswith("▼ 1 trial(s) below 96.8%")


def test_the_pruned_curves_legend_entry_appears_whatever_trial_came_first():
    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[99.0, 5000], params={"x": 1},
                                              distributions=dist, user_attrs={"params": 5000, "val_acc": [98.0, 99.0]}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"x": 2}, distributions=dist,
                                              user_attrs={"params": 6000, "val_acc": [97.0],
                                                          "state_reason": "pruned: x"}))
    fig = document.curves_figure(study)
    assert [tr.showlegend for tr in fig.data if tr.legendgroup == "pruned"] == [True]


def test_cost_counts_trained_epochs_against_an_unpruned_search():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("recipe", {"epochs": 15})
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    start = datetime.datetime(2026, 12, 1, 12, 0)
    for state, reason, n, rung, values in ((TrialState.COMPLETE, "complete", 15, 3, [99.0, 5000]),
                                           (TrialState.PRUNED, "not promoted", 0, 3, None),
                                           (TrialState.PRUNED, "rejected: too big", 0, 0, None)):
        trial = optuna.trial.create_trial(
            state=state, values=values, params={"x": min(n, 9)}, distributions=dist,
            user_attrs={"state_reason": reason, "val_acc": [98.0] * n, "epoch_seconds": [60.0] * n,
                        "rung_val_acc": [97.0] * rung, "rung_epoch_seconds": [60.0] * rung})
        trial.datetime_start, trial.datetime_complete = start, start + datetime.timedelta(seconds=60 * (n + rung))
        study.add_trial(trial)
    line = document.cost_line(study)
    assert line.startswith("21 candidate-epochs trained for 3 finished trials, 6 of them on rungs")
    assert "1.4 full-run equivalents, candidate-epochs / 15" in line and "the 2 that were not rejected would train 2 x 15 = 30" in line
    assert "0.3 worker-hours (the sum of trial durations)" in line  # 21 minutes


def test_the_answer_names_the_validation_leader_and_falls_back_to_test_saying_so():
    import spaces
    from baselines import ROUNDS

    cand = ROUNDS["round3"].candidate

    def verdict(label, params, scores, trial=None, baseline=None):
        return verdicts.Verdict(runs_module.Choice(label, cand, source_trial=trial, baseline=baseline), params,
                               tuple(scores), tuple(scores))

    confirmed = [verdict("trial 4", 4_800, (99.30, 99.32, 99.31), trial=4),
                 verdict("trial 9", 4_900, (99.42, 99.41, 99.40), trial=9),
                 verdict("trial 12", 6_000, (99.50, 99.50, 99.50), trial=12),
                 verdict("round3", 5_760, (99.28, 99.47, 99.29), baseline="round3")]
    reevaluated = [verdict("trial 4", 4_800, (99.20, 99.25, 99.22), trial=4),
                   verdict("trial 9", 4_900, (99.10, 99.12, 99.11), trial=9)]
    lines = confirmation.answer(confirmed, reevaluated, 5_000, " --storage s.journal")
    assert lines[0].startswith("Network to use, at most 5,000 parameters: trial 4, 4,800 parameters")
    assert "leader of the re-evaluation on validation" in lines[0] and lines[0].endswith("export 4 --storage s.journal")
    unconfirmed = [verdict("trial 7", 4_700, (99.30, 99.31), trial=7), *reevaluated]
    lines = confirmation.answer(confirmed, unconfirmed, 5_000)  # the leader is named, never swapped for a confirmed one
    assert lines[0].startswith("Leader of the re-evaluation on validation, at most 5,000 parameters: trial 7")
    assert lines[0].endswith("drill-search confirm --trials 7 --no-baselines")
    assert lines[1].startswith("Smallest confirmed network at 99.4% or more on every seed: trial 9")
    assert "round3 (5,760 parameters) 99.35%" in lines[2]
    fallback = confirmation.answer(confirmed, [], 5_000)
    assert "trial 9" in fallback[0] and "a choice made on test" in fallback[0]
    only = confirmation.answer(confirmed[:1], [], 5_000)  # one confirmed: nothing was chosen on test
    assert "trial 4" in only[0] and "the only one confirmed (chosen before its test runs)" in only[0]
    assert "choice made on test" not in only[0]
    assert spaces.contains(cand)


def test_the_dashboard_note_names_the_rounds_trials(searched):
    _, study = searched
    note = document.dashboard_note(study)
    rounds = [t for t in study.trials if "baseline" in t.user_attrs]
    assert rounds and all(f"trial {t.number} is {t.user_attrs['baseline']}" in note for t in rounds)


def test_a_study_shorter_than_the_protocol_is_labelled_a_quick_look(tmp_path):
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("recipe", {"epochs": 15})
    study.set_user_attr("train_size", None)
    assert document.quick_look(study) is None
    study.set_user_attr("recipe", {"epochs": 5})
    study.set_user_attr("train_size", 10_000)
    assert document.quick_look(study).startswith("Quick look: this study trains 5 epochs on 10,000 training images")
    path = tmp_path / "q.html"
    document.write_html(study, path, figs={})
    assert "Quick look" in path.read_text()


def test_a_retry_that_inherits_a_decided_rung_does_not_count_it_again():
    from search.execution.record import epochs_trained

    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    rung = {"promoted": True, "rung_val_acc": [97.0] * 3, "rung_epoch_seconds": [41.0, 40.0, 42.0]}

    def trial(number, state, **attrs):
        t = optuna.trial.create_trial(state=state, params={"x": 1}, distributions=dist, user_attrs=attrs,
                                      values=[99.0, 4000] if state == TrialState.COMPLETE else None)
        t.number = number
        return t

    died = trial(0, TrialState.FAIL, **rung, val_acc=[98.0] * 5)  # its worker died in the full run
    old_copy = trial(1, TrialState.COMPLETE, **rung, retry_of=0, val_acc=[98.0] * 15)  # before rung_inherited
    new_copy = trial(2, TrialState.COMPLETE, **rung, retry_of=0, rung_inherited=True, val_acc=[98.0] * 15)
    own = trial(3, TrialState.COMPLETE, promoted=True, rung_val_acc=[97.0] * 3, rung_epoch_seconds=[39.0] * 3,
                retry_of=0, val_acc=[98.0] * 15)  # trained a rung of its own (other timings)
    assert epochs_trained([died, old_copy, new_copy, own]) == {0: (3, 5), 1: (0, 15), 2: (0, 15), 3: (3, 15)}


def test_a_trial_handed_back_at_the_total_is_not_counted_as_work_left():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial({}, user_attrs={"beyond_total": True})
    study.enqueue_trial({})
    assert document.counts_line(study) == "1 waiting"


def test_a_reevaluation_reads_the_recipe_of_a_study_made_by_an_older_version():
    # v1's study records "reference_batch", a key Recipe no longer has
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("recipe", {"epochs": 15, "batch_size": 64, "momentum": 0.9, "lr_gamma": 0.01,
                                   "augment": True, "bf16": False, "reference_batch": 64})
    study.set_user_attr("train_size", None)
    recipe, train_size = runs_module.search_protocol(study, Recipe(seed=5))
    assert recipe == Recipe(epochs=15, batch_size=64, seed=5) and train_size is None


def _store_runs(storage, search, check, choice, scores):
    """Runs of `choice` as `confirm` (check TEST) or `reevaluate` (VALIDATION) store them,
    one per seed, made by hand: nothing is trained."""
    import spaces
    from search.engine.model import count_params

    check = check.of(search)
    recipe, train_size = runs_module.search_protocol(search, Recipe()) if check.val_size else (Recipe(), None)
    key = runs_module.run_key(runs_module.run_protocol(recipe, train_size, check), choice.candidate)
    runs = runs_module.open_runs(storage, check.study_name(search.study_name), check)
    params = spaces.encode(choice.candidate)
    for seed, score in zip(check.seeds + (4,), scores):
        attrs = {"label": choice.label, "confirm_seed": seed, "run_protocol": key, "test_acc": [score],
                 "source_trial": choice.source_trial, "baseline": choice.baseline}
        runs.add_trial(optuna.trial.create_trial(
            params=params, distributions=spaces.distributions(params),
            values=[score, count_params(choice.candidate.arch)],
            user_attrs={k: v for k, v in attrs.items() if v is not None}))


@pytest.mark.parametrize("case", ["confirmed on the front", "confirmed off the front", "not confirmed"])
def test_a_round_that_leads_the_reevaluation_is_the_answer_with_its_own_confirmation(tmp_path, capsys, case):
    # Without a goal the leaders are the front, so a round on it may lead the re-evaluation
    # (and any re-evaluated trial may, with a goal or --trials). `confirm` confirms the
    # rounds by default, by name, with no trial of the search when the round is off the
    # front: the answer uses that confirmation, and without one it suggests a command that
    # does train the round.
    import spaces
    from baselines import ROUNDS
    from search import cli
    from search.config import DataConfig, SearchConfig
    from search.engine.model import count_params

    journal = str(tmp_path / "s.journal")
    search = identity.open_search(SearchConfig(storage=journal, recipe=Recipe(), data=DataConfig(root=tmp_path),
                                               space="chain"))
    round3 = ROUNDS["round3"].candidate
    smaller = spaces.decode({**spaces.encode(round3), "c1": 6, "c2": 12})
    better = 99.35 if case == "confirmed off the front" else 99.25  # 99.35 > 99.30: round3 is dominated
    for cand, score, attrs in ((round3, 99.30, {"baseline": "round3"}), (smaller, better, {})):
        params = spaces.encode(cand)
        search.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: spaces.SPACE[k] for k in params},
            values=[score, count_params(cand.arch)], user_attrs={"seed": 99, **attrs}))
    storage = open_storage(journal)
    leaders = selection.choose(search, [0, 1], 10_000, with_baselines=False)  # `reevaluate --trials 0,1`
    _store_runs(storage, search, runs_module.VALIDATION, leaders[0], (99.40, 99.36))  # round3 leads
    _store_runs(storage, search, runs_module.VALIDATION, leaders[1], (99.20, 99.22))
    defaults = selection.choose(search, None, 10_000)  # what `confirm` stores by default
    assert next(c for c in defaults if c.baseline == "round3").source_trial == (None if "off" in case else 0)
    for choice in defaults:
        if choice.baseline != "round3" or case != "not confirmed":
            _store_runs(storage, search, runs_module.TEST, choice, (99.41, 99.44, 99.47))

    code = cli.main(["report", "--storage", journal, "--output", str(tmp_path / "r.html")])
    out, err = capsys.readouterr()
    assert code == 0, err
    first = out.split("\n\nreport written")[0].split("\n\n")[-1].splitlines()[0]  # the answer's first line
    if case != "not confirmed":
        assert first.startswith("Network to use, at most 10,000 parameters: round3, 5,760 parameters"), first
        assert "leader of the re-evaluation on validation (99.38% over 2 new seeds)" in first
        assert "99.44% mean final-epoch test accuracy" in first and "not confirmed" not in first
        assert first.endswith(f"drill-search export 0 --storage {journal}")
    else:
        assert first.startswith("Leader of the re-evaluation on validation, at most 10,000 parameters: round3"), first
        # the command it suggests trains the round's three missing runs
        suggested = first.split("not confirmed on test yet: drill-search ", 1)[1].split()
        cfg = cli.confirm_config(cli.build_parser().parse_args(suggested), reevaluate=False)
        plan = confirm.make_plan(cfg, search)
        todo = confirm.missing(runs_module.open_runs(storage, plan.study_name), plan.choices, plan.seeds, plan.key)
        assert [(c.candidate, seed) for c, seed in todo] == [(round3, 1), (round3, 2), (round3, 3)]


def test_export_to_a_file_that_exists_is_one_sentence_and_leaves_it_as_it_was(searched, tmp_path, capsys):
    from search.cli import main

    cfg, study = searched
    taken = tmp_path / "model"
    taken.write_text("mine")
    number = selection.front(study)[0].number  # a trial with weights: export gets as far as writing
    code = main(["export", str(number), "--storage", cfg.storage, "--output", str(taken)])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, out + err
    assert err == f"drill-search: error: the output {taken} is a file: name a folder to write the model into.\n"
    assert taken.read_text() == "mine"
