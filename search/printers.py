"""What a command prints while its use case runs: one printer per use case, called with
each event (`study.Event`, `confirm.Event`); the live lines themselves are progress.py's."""

from __future__ import annotations

from .config import MNIST_TRAIN, ConfirmConfig, SearchConfig


class SearchPrinter:
    """Prints a search's events: the opening line, a line per finished trial, live progress."""

    def __init__(self, cfg: SearchConfig, quiet: bool) -> None:
        self.cfg, self.quiet, self.progress = cfg, quiet, None

    def __call__(self, event) -> None:
        from . import study as studies
        from .progress import Progress, search_status
        from .results import report

        cfg = self.cfg
        if isinstance(event, studies.Started):
            print(f"study {cfg.study_name!r} in {cfg.storage}: {event.done} of {cfg.trials} trials finished; "
                  f"{'starting ' + str(event.left) + ' more' if event.left else 'nothing to do'} on {cfg.device} with "
                  f"{cfg.workers} worker(s); {cfg.recipe.epochs} epochs at most, budget {cfg.max_params:,} "
                  f"parameters, pruner {cfg.pruner}, sampler {event.sampler}, "
                  + (f"promotion from a {cfg.rung_epochs}-epoch rung (best 1/{cfg.eta})" if cfg.promotes
                     else "every candidate the full protocol")
                  + f"; goal: {cfg.goal.describe()}")
            self.progress = Progress(cfg.trials, event.done, "trials", enabled=not self.quiet)
        elif isinstance(event, studies.TrialFinished):
            self.progress.write(report.trial_line(event.trial))
        elif isinstance(event, studies.Polled):
            self.progress.update(*search_status(event.trials, cfg.trials, cfg.recipe.epochs, cfg.workers,
                                                cfg.rung_epochs if cfg.promotes else None))
        elif isinstance(event, studies.Ended):  # the summary, before the figures are attached
            self.close()
            print(f"\ntrials: {report.counts_line(event.study)}")
            if report.failures(event.study):
                print(report.failures_text(event.study))
            running = report.running_text(event.study.get_trials(deepcopy=False), cfg.storage, cfg.study_name)
            if running:
                print(running)
            print(report.front_table(event.study))
            if report.quick_look(event.study):
                print(report.quick_look(event.study))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None


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
            self.progress.update(*confirm_status(event.runs, self.plan.total, self.plan.recipe.epochs, event.ids, split))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
