"""What a command prints while its use case runs: one printer per use case, called with
each event (`study.SearchEvent`, `confirm.ConfirmEvent`, `baseline.BaselineEvent`, `dashboard.Serving`), and
what it prints of the outcome; the live lines themselves are progress.py's."""

from __future__ import annotations

import sys

from .config import MNIST_TRAIN, BaselineConfig, ConfirmConfig, ExportConfig, SearchConfig


class SearchPrinter:
    """Prints a search's events: the opening line, a line per finished trial, live progress."""

    def __init__(self, cfg: SearchConfig, quiet: bool) -> None:
        self.cfg, self.quiet, self.progress = cfg, quiet, None

    def __call__(self, event) -> None:
        from . import study as studies
        from .progress import Progress, search_status
        from .results import document

        if isinstance(event, studies.Started):
            self.cfg = event.cfg  # the study's own choices where no flag made them
        cfg = self.cfg
        if isinstance(event, studies.Started):
            if event.changed:
                print(f"this run changes the study's {' and its '.join(event.changed)}")
            print(f"study {cfg.study_name!r} in {cfg.storage}: {event.done} of {cfg.trials} trials finished; "
                  f"{'starting ' + str(event.left) + ' more' if event.left else 'nothing to do'} on {cfg.device} with "
                  f"{cfg.workers} worker(s); {cfg.recipe.epochs} epochs at most, budget {cfg.max_params:,} "
                  f"parameters, pruner {cfg.pruner}, sampler {cfg.sampler}, "
                  + (f"promotion from a {cfg.rung_epochs}-epoch rung (best 1/{cfg.eta})" if cfg.promotes
                     else "every candidate the full protocol")
                  + f"; goal: {cfg.goal.describe()}")
            self.progress = Progress(cfg.trials, event.done, "trials", enabled=not self.quiet)
        elif isinstance(event, studies.TrialFinished):
            self.progress.write(document.trial_line(event.trial))
        elif isinstance(event, studies.Polled):
            self.progress.update(*search_status(event.trials, cfg.trials, cfg.recipe.epochs, cfg.workers,
                                                cfg.rung_epochs if cfg.promotes else None))
        elif isinstance(event, studies.Ended):  # the summary, before the figures are attached
            self.close()
            print(f"\ntrials: {document.counts_line(event.study)}")
            if document.failures(event.study):
                print(document.failures_text(event.study))
            running = document.running_text(event.study.get_trials(deepcopy=False), cfg.storage, cfg.study_name)
            if running:
                print(running)
            print(document.front_table(event.study))
            if document.quick_look(event.study):
                print(document.quick_look(event.study))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def finish(self, outcome) -> None:
        """The last words of a search (`study.SearchOutcome`): where to see it, and whether it resumes."""
        from .execution.storage import dashboard_command

        print(f"\nsee the accuracy-vs-parameters front:  {dashboard_command(self.cfg.storage, self.cfg.study_name)}")
        if outcome.stopped_short:
            print(f"the --timeout stopped the search at {outcome.finished} of {self.cfg.trials} finished trials, short "
                  "of its total; the same command goes on from there.")
        if outcome.interrupted:
            print("interrupted, will resume: finished trials are kept, and the same command trains the "
                  "interrupted ones again.", file=sys.stderr)


class ConfirmPrinter:
    """Prints a confirmation's events: what it will train, a line per finished run, live progress."""

    def __init__(self, cfg: ConfirmConfig, quiet: bool) -> None:
        self.cfg, self.quiet, self.progress, self.plan = cfg, quiet, None, None

    def __call__(self, event) -> None:
        from . import confirm
        from .progress import Progress, confirm_status, run_line

        if isinstance(event, confirm.Planned):
            p = self.plan = event.plan
            images = f"all {MNIST_TRAIN:,}" if p.check.is_test else "the search's"
            print(f"{'re-evaluating' if self.cfg.reevaluate else 'confirming'} {len(p.choices)} architecture(s) x "
                  f"{len(p.seeds)} seeds, {p.recipe.epochs} epochs each, on "
                  f"{images if p.train_size is None else f'{p.train_size:,}'} training images, device "
                  f"{self.cfg.device}, {self.cfg.workers} worker(s): {', '.join(c.label for c in p.choices)}")
            stored = p.total - len(p.missing)
            if stored:
                print(f"{stored} of the {p.total} runs are already stored" + ("; training the rest" if p.missing else ""))
            self.progress = Progress(p.total, stored, "runs", enabled=not self.quiet and bool(p.missing))
        elif isinstance(event, confirm.TrialFinished):
            score = "final test" if self.plan.check.is_test else self.plan.check.metric
            self.progress.write(run_line(event.trial, score))
        elif isinstance(event, confirm.Polled):
            split = "test" if self.plan.check.is_test else "val"
            self.progress.update(*confirm_status(event.trials, self.plan.total, self.plan.recipe.epochs, event.workers, split))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()

    def finish(self, outcome) -> None:
        """The table of verdicts (`confirm.ConfirmOutcome`), and where the runs are stored."""
        from .results import confirmation

        plan = outcome.plan
        print()
        print(confirmation.table(outcome.verdicts, plan.recipe.epochs, plan.check))
        print(f"stored in study {plan.study_name!r} of {self.cfg.storage}")


class BaselinePrinter:
    """Prints a round's reproduction: what trains, its layers and epochs, then the
    comparison with the original write-up."""

    def __init__(self, cfg: BaselineConfig, quiet: bool) -> None:
        self.cfg, self.quiet = cfg, quiet

    def __call__(self, event) -> None:
        from . import baseline
        from .engine.model import count_params, layer_table
        from .results import document

        cfg, recipe, c = self.cfg, self.cfg.recipe, self.cfg.baseline.candidate
        if isinstance(event, baseline.Starting):
            print(
                f"{cfg.baseline.name}: {c.arch.describe()}, {count_params(event.model):,} parameters, "
                f"lr {recipe.lr_for(c):g}, "
                f"{recipe.epochs} epochs, batch {recipe.batch_for(c)}, seed {recipe.seed}, device {cfg.device}"
                + (", bf16" if recipe.bf16 else "") + (", compiled" if recipe.compile else "")
            )
            if not self.quiet:
                print(layer_table(event.model))
        elif isinstance(event, baseline.Trained):
            history = event.result.history
            print()
            print(document.baseline_comparison(cfg.baseline, [e.evals["test"].acc for e in history]))
            per_epoch = event.result.seconds / len(history)
            print(f"\n{len(history)} epochs in {event.result.seconds:.1f} s ({per_epoch:.1f} s/epoch, "
                  f"{MNIST_TRAIN / per_epoch:,.0f} images/s)")
            print(f"recorded in study {cfg.study_name!r} of {cfg.storage}")
        elif not self.quiet:  # an epoch
            t = event.evals["test"]
            print(
                f"epoch {event.epoch:>2}/{recipe.epochs}  lr {event.lr:<7.4g} train loss {event.train.loss:.4f} "
                f"acc {event.train.acc:6.2f}%  test loss {t.loss:.4f} acc {t.acc:6.2f}%  {event.seconds:5.1f} s",
                flush=True,
            )


def print_report(written) -> None:
    """What `report` prints of the study beside the file it wrote (`reporting.Written`)."""
    from .results import document

    study, extra = written.study, written.summary
    print(f"trials: {document.counts_line(study)}")
    print(document.cost_line(study))
    if document.failures(study):
        print(document.failures_text(study))
    print(document.front_table(study))
    if extra.text:
        print(f"\n{extra.text}")
    if extra.answer:
        print("\n" + "\n".join(extra.answer))
    print(f"\nreport written to {written.path}")


def print_rounds() -> None:
    """`baselines`: the hand-designed rounds, the published design, and the figures their
    sources reported."""
    from baselines import BASELINES

    print(f"{'name':<10} {'params':>7}  {'batch':>5} {'lr':>5}  {'test@1':>7} {'test@15':>8} {'best (epoch)':>13}  network")
    sources = []
    for b in BASELINES.values():
        best, at = b.reported_best
        first = "" if b.reported_test_acc[0] is None else f"{b.reported_test_acc[0]:.2f}"
        c = b.candidate
        print(f"{b.name:<10} {c.arch.params:>7,}  {c.batch_size:>5} {c.lr_at(c.batch_size):>5g}  {first:>7} {b.reported_final:>8.2f} "
              f"{best:>7.2f} ({at})  {c.arch.describe()}")
        sources += [] if b.source in sources else [b.source]
    print("test accuracy in percent on the 10,000 MNIST test images, as reported by: " + "; ".join(sources))


def print_serving(event) -> None:
    """The dashboard's event (`dashboard.Serving`): where the study's page is."""
    print(f"optuna-dashboard on {event.storage}: {event.address}  (Ctrl-C stops it)", flush=True)


def print_export(cfg: ExportConfig, out) -> None:
    print(f"exported trial {cfg.trial} of study {cfg.study_name!r} to {out}/")
    print(f"  load it with plain PyTorch:  torch.export.load('{out}/model.pt2').module()")


def print_swept(swept, older_than: float | None) -> None:
    """What `fail-stale` did (`liveness.Swept`)."""
    print(f"failed{' and re-queued' if swept.retried else ''} {len(swept.failed)} trial(s)"
          f"{': ' + ', '.join(map(str, swept.failed)) if swept.failed else ''}; {swept.running} still running")
    if swept.spared:
        print(f"trial(s) {', '.join(map(str, swept.spared))} recorded nothing for {older_than:g} s, but their "
              "worker process is alive on this machine: stop that process to end them.")
