"""Live progress: status lines per running trial and an overall line with an estimate."""

import io

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from search.progress import Progress, Running, estimate_left, search_status


def test_plain_output_prints_each_new_epoch_once_and_an_overall_line():
    out = io.StringIO()
    p = Progress(total=50, done=3, enabled=True, stream=out, tty=False)
    rows = [Running(7, "trial 7", 0, 15), Running(8, "trial 8", 2, 15, "val", 98.12, 44.0)]
    p.update(rows, 3, None)
    p.update(rows, 3, None)  # nothing new: nothing printed
    p.update([Running(8, "trial 8", 3, 15, "val", 98.40, 43.0)], 4, 3725.0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "  trial 7: starting epoch 1/15"
    assert lines[1] == "  trial 8: epoch 2/15  val 98.12%  44 s/epoch"
    assert "3/50 trials finished" in lines[2] and "time left: after the first epoch" in lines[2]
    assert lines[3] == "  trial 8: epoch 3/15  val 98.40%  43 s/epoch"
    assert "4/50 trials finished" in lines[4] and "~1:02:05 left" in lines[4]
    assert len(lines) == 5


def test_quiet_progress_prints_nothing():
    out = io.StringIO()
    p = Progress(total=5, enabled=False, stream=out, tty=False)
    p.update([Running(1, "trial 1", 1, 15, "val", 97.0, 40.0)], 0, 100.0)
    p.write("trial 1 ...")
    p.close()
    assert out.getvalue() == ""


def test_estimate_counts_the_rest_of_running_trials_and_the_trials_not_started():
    rows = [Running(1, "a", 5, 15), Running(2, "b", 14, 15)]
    # (10 + 1) epochs left in the running ones + 3 trials x 8 epochs, 40 s each, 2 workers
    assert estimate_left(rows, 3, 8.0, 40.0, 2) == (11 + 24) * 40.0 / 2
    assert estimate_left(rows, 3, 8.0, None, 2) is None


def test_search_status_reads_running_and_finished_trials_from_storage():
    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"x": optuna.distributions.IntDistribution(0, 9)}
    done = {"params": 5000, "val_acc": [98.0] * 4, "epoch_seconds": [30.0] * 4}
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 1}, distributions=dist, user_attrs=done))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 2}, distributions=dist,
                                 user_attrs={"params": 20000}))  # rejected: no epochs
    t = study.ask()
    t.set_user_attr("params", 6000)
    t.set_user_attr("val_acc", [97.5, 98.1])
    t.set_user_attr("epoch_seconds", [50.0, 50.0])
    running, finished, left = search_status(study.trials, total=5, epochs=15, workers=1)
    assert finished == 2
    assert [r.text() for r in running] == ["trial 2 (6,000 params): epoch 2/15  val 98.10%  50 s/epoch"]
    # 13 epochs left running + 2 not started x mean 2 epochs per finished trial, at the
    # mean of the 6 timed epochs
    assert left == pytest.approx((13 + 2 * 2) * (4 * 30 + 2 * 50) / 6)


def test_a_run_shows_how_far_its_first_epoch_has_gone():
    from search.progress import Running

    within = {"stage": "run", "epoch": 1, "step": 100, "steps": 400, "seconds": 20.0, "images_per_s": 1280}
    line = Running(3, "trial 3 (4,000 params)", 0, 15, within=within).text()
    assert line == "trial 3 (4,000 params): epoch 1/15, step 100/400  1,280 img/s  ~60 s to the epoch's end"
    stale = {**within, "epoch": 1}  # an epoch already finished: the epoch line wins
    assert Running(3, "trial 3", 1, 15, acc=98.0, within=stale).text().startswith("trial 3: epoch 1/15  val 98.00%")


def test_the_step_recorder_writes_at_most_every_few_seconds():
    from search.execution.record import StepRecorder

    class Trial:
        def __init__(self):
            self.writes = []

        def set_user_attr(self, key, value):
            self.writes.append((key, value))

    trial = Trial()
    rec = StepRecorder(trial, "rung", batch_size=256, every=3600.0)
    rec(1, 20, 100, 2.0)  # within the first hour of its making: nothing written
    assert trial.writes == []
    rec.every = 0.0
    rec(1, 40, 100, 4.0)
    written = dict(trial.writes)
    assert written["in_epoch"] == {"stage": "rung", "epoch": 1, "step": 40, "steps": 100, "seconds": 4.0,
                                   "images_per_s": 2560}
    assert set(written) == {"in_epoch", "updated_at"}  # alive, for fail-stale
