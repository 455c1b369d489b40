"""Export a trained trial: weights, architecture, layer table, and a plain-PyTorch program.

    exports/<study>-trial-<n>/
      model.pt2     torch.export program: torch.export.load(path).module() runs it with
                    nothing but PyTorch (eval mode; input normalized MNIST, N x 1 x 28 x 28)
      weights.pt    the state dict, for search.engine.model.build_model(arch)
      arch.json     architecture, schedule, batch size, rotation, the recipe that trained it,
                    parameter count, recorded accuracies, provenance
      layers.txt    the layer table
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import torch
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

import spaces

from .. import optuna_private
from ..config import ExportConfig
from ..engine.data import MEAN, STD
from ..engine.model import build_model, count_params, layer_table
from ..execution import record
from ..execution.identity import load
from ..execution.storage import artifact_store, open_existing


class ExportError(Exception):
    """The trial cannot be exported; the message is one sentence for the user."""


def trained_model(study: optuna.Study, number: int, store) -> tuple[torch.nn.Module, optuna.trial.FrozenTrial]:
    """The trial's network with the weights it finished with, in eval mode."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ExportError(f"study {study.study_name!r} has no trial {number} (it has {len(trials)}).")
    t = trials[number]
    if t.state != TrialState.COMPLETE:
        raise ExportError(f"trial {number} is {t.state.name.lower()}: only complete trials have trained weights.")
    try:
        weights = record.load_weights(t, optuna_private.storage(study), store)
    except ArtifactNotFound:
        # The study records the weights but the store lacks the file: a study copied
        # without the -artifacts/ folder beside it, or a server whose weights stayed on
        # the machine that trained them.
        raise ExportError(f"trial {number}'s weights are recorded in the study but missing from the artifact "
                          "store (copy the -artifacts/ folder that sits beside the study file, or retrain it "
                          "with drill-search confirm).") from None
    if weights is None:
        raise ExportError(f"trial {number} kept no weights in the artifact store; retrain it with drill-search confirm.")
    model = build_model(spaces.decode(t.params).arch)
    model.load_state_dict(weights)
    return model.eval(), t


def write(cfg: ExportConfig) -> Path:
    """`drill-search export`: the trial of the stored study written to `cfg.folder`."""
    study = load(open_existing(cfg.storage), cfg.study_name, cfg.storage)
    return export(study, cfg.trial, artifact_store(cfg.storage, create=False), cfg.folder)


def export(study: optuna.Study, number: int, store, out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"the output {out_dir} is a file: name a folder to write the model into.")
    model, t = trained_model(study, number, store)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot make the folder {out_dir}: {e.strerror or e}.") from None
    torch.save(model.state_dict(), out_dir / "weights.pt")
    example = torch.zeros(2, 1, 28, 28)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, out_dir / "model.pt2")
    cand = spaces.decode(t.params)
    a = t.user_attrs
    meta = {
        "study": study.study_name,
        "trial": t.number,
        "baseline": a.get("baseline"),
        # the candidate: "arch", then its training knobs, lr at batch 64; `recipe` is what
        # trained it (a recipe's batch size overrides the candidate's, its lr scaled linearly)
        **cand.to_dict(),
        "recipe": a.get("recipe"),
        "params": count_params(model),
        "input": {"shape": [None, 1, 28, 28], "normalize": {"mean": MEAN, "std": STD},
                  "output": "log-probabilities of the 10 digits"},
        "final_epoch": {k: a[k][-1] for k in ("val_acc", "test_acc", "test_loss") if a.get(k)},
        "epochs": len(a.get("test_acc", [])),
        "seed": a.get("seed"),
        "versions": a.get("versions"),
    }
    (out_dir / "arch.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out_dir / "layers.txt").write_text(layer_table(model) + "\n")
    return out_dir
