"""Keras's ``evaluate()``: ``python -m pima_lightning.evaluate ckpt_path=PATH [data.path=CSV]``.

Loss and every metric of a trained model on labelled rows (by default the held-out rows of the
split the model was trained with; ``data.rows=held_out|all`` chooses for ``data.path``), printed as a
table, written as ``evaluation.json``, and pictured as an ROC curve, a precision-recall curve and a
confusion matrix. For a checkpoint of ``model.replicas`` > 1: every replica's metrics, their mean ± std,
and the ensemble's (the mean of the replicas' probabilities), which the pictures show.
"""

import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from pima_lightning.atomic import write_json
from pima_lightning.checkpoint import load_checkpoint
from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError, one_line_errors
from pima_lightning.model import PimaClassifier
from pima_lightning.plots import diagnostic_figures, save_figures

log = logging.getLogger(__name__)


def test_and_picture(
    trainer: L.Trainer,
    model: PimaClassifier,
    datamodule: PimaDataModule,
    output_dir: Path,
    title: str,
    ckpt_path: str | None = None,
) -> tuple[dict[str, float], dict[str, Figure]]:
    """Run the test loop on ``datamodule``'s test rows, with the model's weights or those of
    ``ckpt_path``; save their pictures as PNGs in ``output_dir``.

    Every process of a distributed run must call this (the test loop is collective); only the first
    draws and saves the pictures, and the others get no figures.
    """
    (metrics,) = trainer.test(
        model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True, verbose=False
    )
    if not trainer.is_global_zero:
        return metrics, {}
    features, labels = datamodule.test_set.tensors
    with torch.no_grad():  # every row at once, in this process (under DDP each process scores its share)
        probabilities = model.eval().predict_step(features.to(model.device), 0).cpu().numpy()
    figures = diagnostic_figures(labels.numpy(), probabilities, title, datamodule.class_names)
    save_figures(figures, output_dir)
    return metrics, figures


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

    ``rows="held_out"`` scores the held-out rows of the split the model was trained with, rebuilt
    from the checkpoint's split settings on ``data_path`` or, without one, on the verified public copy
    in ``data_dir``; ``rows="all"`` scores every row of ``data_path``. By default: the held-out rows
    of ``data_path`` when it is the CSV the model was trained on (else its training rows would be scored
    too), every row of another ``data_path``, the public copy's held-out rows without one. The checkpoint
    never chooses a file: the path it names is only compared with ``data_path``.
    """
    if rows not in (None, "held_out", "all") or (rows == "all" and not data_path):
        raise InputError(f"data.rows={rows}: expected held_out, or all with data.path=CSV")
    model, split = load_checkpoint(ckpt_path)
    trained_on = split.pop("trained_on")
    if rows is None:
        rows = "all" if data_path and not _same_file(data_path, trained_on) else "held_out"
        if data_path and rows == "held_out":
            log.info(
                "%s is the CSV the model was trained on: scoring its held-out rows (data.rows=all: all)",
                data_path,
            )
    if rows == "all":
        # every row of the given file, scaled with the statistics stored in the model
        data_settings = {
            "path": data_path,
            "split": "none",
            "val_size": 0.0,
            "label_column": split["label_column"],
        }
        described = "rows (every row)"
    elif data_path is None and trained_on is not None:
        raise InputError(
            f"{ckpt_path} was trained on {trained_on[:200]!r}, not the public copy; to score its held-out "
            "rows pass data.path=<that CSV>; to score every row of a CSV, data.path=<CSV> data.rows=all"
        )
    else:
        data_settings = {"path": data_path, "data_dir": data_dir, **split}
        described = f"rows (held out, data.split={split['split']})"
        if split.get("folds"):
            described = f"rows (fold {split['fold']} of {split['folds']}, {split['fold_scope']} rows)"
    datamodule = PimaDataModule(**data_settings)
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
    trainer = inference_trainer()
    metrics, figures = test_and_picture(
        trainer, model, datamodule, output_dir, title=f"{len(datamodule.test_set)} {described}"
    )
    with SummaryWriter(output_dir / "tensorboard") as writer:  # the pictures in TensorBoard's Images tab
        for name, figure in figures.items():
            writer.add_figure(f"evaluate/{name}", figure)
    report = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "data": str(datamodule.csv_path.resolve()),
        "rows": described,
        "n_rows": len(datamodule.test_set),
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


def format_report(report: dict) -> str:
    """The report as a table under a line naming the checkpoint and the rows; for a replicas
    checkpoint, the replicas' mean ± std and the ensemble's value (predictions use the ensemble)."""
    lines = [f"{report['checkpoint']} on {report['n_rows']} {report['rows']} of {report['data']}"]
    replicas = report["replicas"]
    if replicas > 1:
        lines.append(f"  {'':<10} {f'{replicas} replicas, mean ± std':>24} {'ensemble':>9}")
    for name in ("loss", "acc", "auroc", "f1", "precision", "recall"):
        if replicas == 1:
            lines.append(f"  {name:<10} {report[name]:.4f}")
        else:
            spread = f"{report[name]:.4f} ± {report[f'{name}_std']:.4f}"
            lines.append(f"  {name:<10} {spread:>24} {report[f'ensemble_{name}']:>9.4f}")
    return "\n".join(lines)


@hydra.main(config_path="pkg://pima_lightning.conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    """Hydra entry point; returns the report."""
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise SystemExit("error: no checkpoint given; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    with one_line_errors():
        report = evaluate(
            cfg.ckpt_path, Path(cfg.output_dir), cfg.data.path, cfg.data.rows, cfg.data.data_dir
        )
    print(format_report(report))
    log.info("Wrote evaluation.json and pictures to %s", cfg.output_dir)
    return report


if __name__ == "__main__":
    main()
