"""Score a trained model on labelled rows (Keras's ``evaluate()``): what ``evaluate`` does, and ``train`` for
its test rows, ``tune`` for its best trial and ``predict`` for its trainer."""

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch

from pima_lightning.data import PimaDataModule, Rows, row_fingerprints
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import COLUMN_SETTINGS, load_checkpoint
from pima_lightning.inputs.files import MAX_CSV_BYTES, sha256_of
from pima_lightning.model import METRICS, PimaClassifier
from pima_lightning.runs import signals
from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.loggers import InThreadSummaryWriter
from pima_lightning.runs.plots import add_pictures, diagnostic_figures, save_figures

log = logging.getLogger(__name__)


def test_and_picture(
    trainer: L.Trainer,
    model: PimaClassifier,
    datamodule: PimaDataModule,
    output_dir: Path,
    title: str,
    ckpt_path: str | None = None,
) -> tuple[dict[str, float], dict[str, Path]]:
    """Run the test loop on ``datamodule``'s test rows, with the model's weights or those of
    ``ckpt_path``; save their pictures as PNGs in ``output_dir`` and return their paths by name.

    Every process of a distributed run must call this (the test loop is collective); only the first
    draws and saves the pictures, and the others get none.
    """
    (metrics,) = trainer.test(
        model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True, verbose=False
    )
    signals.stop_if_received()  # a signal during the last (or only) batch: the test did not finish
    if not trainer.is_global_zero:
        return metrics, {}
    features, labels = datamodule.test_set.tensors
    with torch.no_grad():  # every row at once, in this process (under DDP each process scores its share)
        probabilities = model.eval().predict_step(features.to(model.device), 0).cpu().numpy()
    figures = diagnostic_figures(labels.numpy(), probabilities, title, datamodule.class_names)
    return metrics, save_figures(figures, output_dir)


def inference_trainer() -> L.Trainer:
    """A quiet one-process CPU Trainer for scoring a trained model: no logs, checkpoints or bar."""
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _same_file(path: str, trained_on: str | None) -> bool:
    """Whether ``path`` names the file the checkpoint says it was trained on (compared, never opened)."""
    if trained_on is None:
        return False
    given, stored = Path(path).expanduser(), Path(trained_on).expanduser()
    if given.absolute() == stored.absolute():
        return True
    return given.exists() and stored.exists() and given.samefile(stored)


def evaluate(
    ckpt_path: str,
    output_dir: Path,
    data_path: str | None = None,
    rows: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Evaluate a checkpoint; return and write (``evaluation.json``) what was measured on which rows.

    ``rows="held_out"`` (the default) scores the rows the model was not fitted on, known by content: the
    checkpoint records the SHA-256 of the file it was trained on and a fingerprint of each row it was
    fitted on. On that same file (whatever its path: the public copy, a copy, a link) these are the held-out
    rows of its split, rebuilt from the checkpoint's split settings; on any other file (the same rows
    shuffled, say), every row whose fingerprint is not a training row's. ``rows="all"`` scores every row
    of ``data_path`` and counts the training rows among them. The checkpoint never chooses a file.
    For a checkpoint without that record, the file is known by its path, as before the record existed.
    """
    if rows not in (None, "held_out", "all") or (rows == "all" and not data_path):
        raise InputError(f"data.rows={rows}: expected held_out, or all with data.path=CSV")
    model, split = load_checkpoint(ckpt_path)
    trained_on, fitted_on = split.pop("trained_on"), split.pop("fitted_on")
    if data_path is None and trained_on is not None:
        raise InputError(
            f"{ckpt_path} was trained on {trained_on[:200]!r}, not the public copy; to score its held-out "
            "rows pass data.path=<that CSV>; to score every row of a CSV, data.path=<CSV> data.rows=all"
        )
    source = PimaDataModule(path=data_path, data_dir=data_dir)
    source.prepare_data()  # the public copy, downloaded and verified if missing
    same_file = (
        sha256_of(source.csv_path, "data.path", MAX_CSV_BYTES, kind="CSV") == fitted_on.sha256
        if fitted_on is not None
        else data_path is None or _same_file(data_path, trained_on)
    )
    if rows is None:
        rows = "all" if fitted_on is None and not same_file else "held_out"
    by_content = rows == "held_out" and not same_file  # another file: its rows the model was not fitted on
    if rows == "all" or by_content:
        every_row = {"split": "none", "val_size": 0.0, **{key: split[key] for key in COLUMN_SETTINGS}}
        data_settings = {"path": str(source.csv_path), **every_row}
    else:
        data_settings = {"path": str(source.csv_path), **split}
    datamodule = PimaDataModule(**data_settings)
    datamodule.categories = model.hparams.get("categories") or {}  # coded as the model was trained
    datamodule.prepare_data()
    datamodule.setup("test")
    trained = (model.hparams.n_features, model.hparams.feature_names)
    names_differ = datamodule.feature_names and trained[1] and datamodule.feature_names != trained[1]
    if datamodule.n_features != trained[0] or names_differ:
        raise InputError(
            f"{datamodule.csv_path} has {datamodule.n_features} features "
            f"({', '.join(datamodule.feature_names or ['no header'])[:200]}); the model was trained on "
            f"{trained[0]} ({', '.join(trained[1] or ['no header'])[:200]})"
        )
    if (classes := model.hparams.get("classes")) and datamodule.classes != classes:
        raise InputError(
            f"{datamodule.csv_path}: its labels are {', '.join(datamodule.classes)[:200]}; the model's "
            f"classes are {', '.join(classes)[:200]}: score it on a file of the same classes"
        )
    described, training_rows = _scored_rows(datamodule, split, rows, by_content, fitted_on)
    trainer = inference_trainer()
    metrics, pictures = test_and_picture(
        trainer, model, datamodule, output_dir, title=f"{len(datamodule.test_set)} {described}"
    )
    # the pictures in TensorBoard's Images tab
    with InThreadSummaryWriter(output_dir / "tensorboard") as writer:
        add_pictures(writer, pictures, "evaluate")
    report = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "data": str(datamodule.csv_path.resolve()),
        "rows": described,
        "n_rows": len(datamodule.test_set),
        "training_rows_scored": training_rows,
        "replicas": model.hparams.get("replicas", 1),
        **{name.removeprefix("test/"): value for name, value in metrics.items()},
    }
    if model.hparams.get("replicas", 1) > 1:
        report["per_replica"] = {
            name.removeprefix("test/"): values
            for name, values in model.replica_metrics.items()
            if name.startswith("test/")
        }
    write_json(output_dir / "evaluation.json", report)
    return report


def _scored_rows(
    datamodule: PimaDataModule, split: dict, rows: str, by_content: bool, fitted_on
) -> tuple[str, int | None]:
    """Which rows of ``datamodule.test_set`` are scored, in words, and how many of them the model was
    fitted on (None when the checkpoint does not record it). ``by_content``: keep only the rows whose
    fingerprint is not a fitted row's."""
    if fitted_on is None:
        unknown = "; the checkpoint does not record its training rows"
        if rows == "all":
            return f"rows (every row{unknown})", None
        return f"rows (held out, data.split={split['split']}{unknown})", None
    tensors = datamodule.test_set.tensors
    seen = np.isin(row_fingerprints(*tensors), fitted_on.rows)
    if by_content:
        if seen.all():
            raise InputError(
                f"{datamodule.csv_path}: every row is one the model was trained on, so none is held out; "
                "data.rows=all scores them anyway"
            )
        datamodule.test_set = Rows(*(tensor[torch.from_numpy(~seen)] for tensor in tensors))
        return (
            f"rows the model was not trained on (found by content, as this file differs from the one it "
            f"was trained on: {int(seen.sum())} of its {len(seen)} rows are training rows, left out)"
        ), 0
    count = int(seen.sum())
    trained = f"{count} of them rows the model was trained on" if count else ""
    if rows == "all":
        return f"rows (every row{'; ' + trained if trained else ''})", count
    if split["split"] == "none":
        return (
            f"rows (data.split=none holds no rows out: all {count} are rows the model was trained on)",
            count,
        )
    held = (
        f"fold {split['fold']} of {split['folds']}, {split['fold_scope']} rows"
        if split.get("folds")
        else f"held out, data.split={split['split']}"
    )
    return f"rows ({held}{'; ' + trained if trained else ''})", count


def format_report(report: dict) -> str:
    """The report as a table under a line naming the checkpoint and the rows; for a replicas
    checkpoint, the replicas' mean ± std and the ensemble's value (predictions use the ensemble)."""
    lines = [f"{report['checkpoint']} on {report['n_rows']} {report['rows']} of {report['data']}"]
    replicas = report["replicas"]
    if replicas > 1:
        lines.append(f"  {'':<10} {f'{replicas} replicas, mean ± std':>24} {'ensemble':>9}")
    for name in METRICS:
        if replicas == 1:
            lines.append(f"  {name:<10} {report[name]:.4f}")
        else:
            spread = f"{report[name]:.4f} ± {report[f'{name}_std']:.4f}"
            lines.append(f"  {name:<10} {spread:>24} {report[f'ensemble_{name}']:>9.4f}")
    return "\n".join(lines)
