"""Seeing and trusting results: report, dashboard app, confirm, export."""

from __future__ import annotations

import json
import wsgiref.util
from io import BytesIO

import optuna
import optuna_dashboard
import pytest
import torch
from optuna.trial import TrialState

from search import workers
from search import confirm, export, report, study as studies
from search.config import Recipe
from search.data import Mnist, normalize
from search.storage import artifact_store, open_storage
from tests.conftest import synthetic_split
from tests.test_search import config, synthetic_data


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A small finished search on synthetic digits: baselines plus sampled trials."""
    tmp = tmp_path_factory.mktemp("study")
    cfg = config(tmp, trials=7, with_baselines=True, pruner="median", prune_warmup=1,
                 recipe=Recipe(epochs=2, batch_size=64))
    studies.enqueue_baselines(studies.open_search(cfg), cfg.max_params)
    workers.run_worker(cfg, data=synthetic_data())
    return cfg, optuna.load_study(study_name=cfg.study_name, storage=cfg.storage)


def test_report_has_the_front_labels_budget_and_target(searched, tmp_path):
    cfg, study = searched
    path = tmp_path / "r.html"
    report.write_html(study, path)
    html = path.read_text()
    assert "Pareto front" in html and "hand-designed rounds" in html
    for name in ("round1", "round2", "round3"):
        assert name in html
    assert "budget 10,000" in html and "99.4% target" in html
    assert "Plotly.newPlot" in html and '<script src="http' not in html  # self-contained
    for t in report.front(study):
        assert f"<td>{t.number}</td>" in html


def test_front_holds_only_complete_trials_within_budget_that_nothing_beats(searched):
    _, study = searched
    front = report.front(study)
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
    report.attach(study, report.figures(study))
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
    real = report.figures

    def elsewhere(study):
        figs = real(study)
        figs["curves"].update_layout(title="drawn by another plotly")
        return figs

    monkeypatch.setattr(report, "figures", elsewhere)
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
    figs = report.figures(study)
    report.attach(study, figs)  # stored now, or already stored by another test
    size = journal.stat().st_size
    assert not report.attach(study, report.figures(study))
    assert journal.stat().st_size == size
    figs["curves"].update_layout(title="a trial was added")
    assert report.attach(study, figs)
    assert journal.stat().st_size > size


def test_export_loads_in_plain_torch_with_the_same_predictions(searched, tmp_path):
    cfg, study = searched
    store = artifact_store(cfg.storage)
    number = report.front(study)[0].number
    model, _ = export.trained_model(study, number, store)
    out = export.export(study, number, store, tmp_path / "exp")
    loaded = torch.export.load(str(out / "model.pt2")).module()
    x = normalize(synthetic_split(64, seed=7).images)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    meta = json.loads((out / "arch.json").read_text())
    assert meta["trial"] == number and meta["params"] == int(study.trials[number].values[1])
    assert "total parameters" in (out / "layers.txt").read_text()


def test_export_refuses_trials_without_weights(searched, tmp_path):
    cfg, study = searched
    not_complete = [t.number for t in study.trials if t.state != TrialState.COMPLETE]
    with pytest.raises(export.ExportError):
        export.export(study, 999, artifact_store(cfg.storage), tmp_path)
    if not_complete:
        with pytest.raises(export.ExportError, match="only complete trials"):
            export.export(study, not_complete[0], artifact_store(cfg.storage), tmp_path)


def test_confirm_stores_per_seed_results_and_resumes(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(cfg.storage)
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    choices = confirm.choose(study, [report.front(study)[0].number], cfg.max_params, with_baselines=False)
    runs = []
    verdicts = confirm.run(choices, [1, 2], Recipe(epochs=1), data, torch.device("cpu"), storage,
                           "confirm-test", on_run=lambda c, s, h: runs.append((c.label, s, h is None)))
    (v,) = verdicts
    assert len(v.final) == 2 and runs == [(choices[0].label, 1, False), (choices[0].label, 2, False)]
    stored = optuna.load_study(study_name="confirm-test", storage=storage).trials
    assert sorted(t.user_attrs["confirm_seed"] for t in stored) == [1, 2]
    assert all(t.values[0] == pytest.approx(t.user_attrs["test_acc"][-1]) for t in stored)
    again = confirm.run(choices, [1, 2], Recipe(epochs=1), data, torch.device("cpu"), storage,
                        "confirm-test", on_run=lambda c, s, h: runs.append((c.label, s, h is None)))
    assert runs[-2:] == [(choices[0].label, 1, True), (choices[0].label, 2, True)]  # nothing retrained
    assert again[0].final == v.final
    assert "reach 99.4% on every seed" in confirm.table(again, 1)


def test_a_run_stored_twice_counts_once(searched, tmp_path):
    # two confirm commands on one storage both trained seed 1: the mean must not count it twice
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/twice.db")
    data = Mnist(synthetic_split(256, seed=1), synthetic_split(128, seed=2))
    choices = confirm.choose(study, [report.front(study)[0].number], cfg.max_params, with_baselines=False)
    confirm.run(choices, [1, 2], Recipe(epochs=1), data, torch.device("cpu"), storage, "c")
    runs = confirm.open_confirm(storage, "c")
    key = confirm.run_protocol(Recipe(epochs=1), None)
    first = next(t for t in runs.trials if t.user_attrs["confirm_seed"] == 1)
    runs.add_trial(optuna.trial.create_trial(params=first.params, distributions=first.distributions,
                                             values=[first.values[0] - 1.0, first.values[1]],
                                             user_attrs=first.user_attrs))
    (v,) = confirm.verdicts(runs, choices, [1, 2], key)
    assert len(v.final) == 2 and first.values[0] in v.final and first.values[0] - 1.0 not in v.final


def test_confirm_workers_split_the_missing_runs_each_run_once(searched, tmp_path):
    cfg, study = searched
    storage = open_storage(f"sqlite:///{tmp_path}/c.db")
    data = Mnist(synthetic_split(256, seed=1), synthetic_split(128, seed=2))
    choices = confirm.choose(study, [t.number for t in report.front(study)[:2]], cfg.max_params,
                             with_baselines=False)
    key = confirm.run_protocol(Recipe(epochs=1), None)
    confirm.run(choices, [1], Recipe(epochs=1), data, torch.device("cpu"), storage, "c")  # seed 1 is stored
    todo = confirm.missing(confirm.open_confirm(storage, "c"), choices, [1, 2, 3], key)
    assert [(c.label, s) for c, s in todo] == [(c.label, s) for c in choices for s in (2, 3)]
    trained = []
    for worker in (0, 1):  # what two workers do (`workers.run_confirm`), one after the other here
        confirm.run(choices, [1, 2, 3], Recipe(epochs=1), data, torch.device("cpu"), storage, "c",
                    on_run=lambda c, s, h: trained.append((c.label, s, h is None)), runs=todo[worker::2])
    assert sorted(trained) == sorted((c.label, s, False) for c, s in todo)  # each missing run trained once
    runs = optuna.load_study(study_name="c", storage=storage).trials
    assert sorted((t.user_attrs["label"], t.user_attrs["confirm_seed"]) for t in runs) == sorted(
        (c.label, s) for c, s in confirm.plan(choices, [1, 2, 3]))
    assert confirm.missing(confirm.open_confirm(storage, "c"), choices, [1, 2, 3], key) == []


def test_a_confirm_worker_that_fails_is_one_sentence_and_its_reason(searched, tmp_path, capfd):
    cfg, study = searched
    choices = confirm.choose(study, [report.front(study)[0].number], cfg.max_params, with_baselines=False)
    not_a_folder = tmp_path / "file"  # no MNIST, and no download can land there, online or not
    not_a_folder.write_text("")
    job = workers.ConfirmJob(choices, [1], Recipe(epochs=1), str(not_a_folder), "cpu",
                             f"sqlite:///{tmp_path}/c.db", "c", None, 1)
    with pytest.raises(studies.SearchFailed, match="a confirmation run failed"):
        workers.run_confirm(job, on_poll=lambda trials, ids: None, poll_seconds=0.1)
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


def test_confirm_default_choice_is_the_front_plus_rounds_under_budget(searched):
    _, study = searched
    labels = [c.label for c in confirm.choose(study, None, 10_000)]
    assert {"round1", "round2", "round3"} <= set(labels) and "round0" not in labels
    assert len(labels) == len({c.candidate for c in confirm.choose(study, None, 10_000)})


def test_confirm_never_mixes_runs_made_under_another_recipe(searched):
    cfg, study = searched
    storage = open_storage(cfg.storage)
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    choices = confirm.choose(study, [report.front(study)[0].number], cfg.max_params, with_baselines=False)
    runs = []

    def go(recipe):
        return confirm.run(choices, [1], recipe, data, torch.device("cpu"), storage, "confirm-recipes",
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
    assert confirm.stored_table(study, storage, Recipe(epochs=1)) is None  # nothing confirmed yet
    data = Mnist(train=synthetic_split(256, 1), test=synthetic_split(128, 4))
    first = confirm.choose(study, [report.front(study)[0].number], cfg.max_params, with_baselines=False)
    confirm.run(first, [1, 2, 7], Recipe(epochs=1), data, torch.device("cpu"), storage,
                confirm.confirm_study_name(study.study_name))
    text = confirm.stored_table(study, storage, Recipe(epochs=1))
    row = next(line for line in text.splitlines() if line.startswith(first[0].label + " "))
    assert row[len(first[0].label):].split()[1] == "2"  # params, then seeds: 1 and 2, not the extra seed 7
    assert "\n2 runs took " in text and " process-hours, " in text  # what the runs shown cost
    others = [c.label for c in confirm.choose(study, None, cfg.max_params) if c.label != first[0].label]
    assert text.splitlines()[-1] == "not confirmed yet: " + ", ".join(others)
    assert confirm.stored_table(study, storage, Recipe(epochs=1, batch_size=128)) is None  # another recipe's runs
    path = tmp_path / "r.html"
    report.write_html(study, path, confirmation=text)
    assert "<h2>Confirmation</h2>" in path.read_text() and first[0].label in path.read_text()


def test_a_recorded_run_holds_its_own_candidate_even_with_a_trial_waiting(tmp_path):
    # A leftover waiting trial (another command's, or a re-queue) sits in the study; the
    # run must train and record exactly the candidate it was given, and leave the other.
    import spaces
    from baselines import ROUNDS
    from search.record import record_run

    storage = open_storage(f"sqlite:///{tmp_path}/b.db")
    study = studies.open_baselines(storage)
    study.enqueue_trial(spaces.encode(ROUNDS["round1"].candidate), user_attrs={"baseline": "round1"})
    data = Mnist(train=synthetic_split(128, 1), test=synthetic_split(64, 4))
    record_run(study, ROUNDS["round3"].candidate, Recipe(epochs=1), data, torch.device("cpu"), {"baseline": "round3"})
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
    fig = report.front_figure(study)
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
    fig = report.curves_figure(study)
    assert [tr.showlegend for tr in fig.data if tr.legendgroup == "pruned"] == [True]


def test_cost_counts_trained_epochs_against_an_unpruned_search():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("recipe", {"epochs": 15})
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    for state, reason, n, values in ((TrialState.COMPLETE, "complete", 15, [99.0, 5000]),
                                     (TrialState.PRUNED, "pruned: x", 3, None),
                                     (TrialState.PRUNED, "rejected: too big", 0, None)):
        study.add_trial(optuna.trial.create_trial(
            state=state, values=values, params={"x": min(n, 9)}, distributions=dist,
            user_attrs={"state_reason": reason, "val_acc": [98.0] * n, "epoch_seconds": [60.0] * n}))
    line = report.cost_line(study)
    assert line.startswith("18 candidate-epochs trained for 3 finished trials")
    assert "the 2 that were not rejected would train 2 x 15 = 30" in line and "0.3 worker-hours" in line
