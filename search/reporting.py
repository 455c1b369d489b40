"""`drill-search report`: a study's HTML report (the front, the curves, the importances,
and what its companion studies of runs add: the answer and their tables), written
beside the study file; with `attach`, its figures are stored in the study for
optuna-dashboard. Nothing else is written: a reading command leaves the study as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from .config import ConfigError, Recipe, ReportConfig
from .execution.identity import load
from .execution.storage import open_existing, open_storage, report_path
from .results import confirmation, document


class ReportError(Exception):
    """The report cannot be written where asked; the message is one sentence for the user."""


@dataclass(frozen=True)
class Written:
    study: optuna.Study
    path: Path  # the HTML file
    summary: confirmation.Summary  # what the companion studies add (the answer, their tables)


def write(cfg: ReportConfig) -> Written:
    """Read the study, write its HTML report, and store its figures when `cfg.attach`."""
    study = load(open_existing(cfg.storage), cfg.study_name, cfg.storage)
    extra = confirmation.summary(study, open_storage(cfg.storage), Recipe(), cfg.command_flags)
    figs = document.figures(study, extra.spread)
    path = cfg.output or report_path(cfg.storage, study.study_name)
    if path.is_dir():
        raise ConfigError("output", f"{path} is a folder: name the HTML file, e.g. {path}/report.html.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        document.write_html(study, path, figs, answer=extra.answer, tables=extra.tables)
    except OSError as e:
        raise ReportError(f"cannot write the report to {path}: {e.strerror or e}.") from None
    if cfg.attach:
        document.attach(study, figs)
    return Written(study, path, extra)
