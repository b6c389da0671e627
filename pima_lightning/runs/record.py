"""What a finished training run records (``metrics.json``) and says on the console."""

import math
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from pima_lightning.data import PimaDataModule

NAMES = {"acc": "accuracy", "auroc": "AUROC", "loss": "loss"}  # the metrics the result line shows


def run_record(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: PimaDataModule,
    results: dict[str, float],
    timing: dict[str, float],
    tested_checkpoint: str | None,
) -> dict:
    """The metrics, the run's seed, epochs, steps and timings, and the accuracy of always predicting the
    commoner class of the scored rows (the baseline to beat); with replicas, each replica's metrics."""
    stage = "test" if cfg.test else "val"
    replicas = model.hparams.get("replicas", 1)
    record = {
        **results,
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "replicas": replicas,
        **timing,
        "torch_threads": torch.get_num_threads(),
    }
    if tested_checkpoint:  # the best epoch's weights, not the last
        record["tested_checkpoint"] = tested_checkpoint
    if replicas > 1:  # each replica's held-out metrics, replica 0 first
        record["per_replica"] = {
            name: values for name, values in model.replica_metrics.items() if name.startswith(f"{stage}/")
        }
    if f"{stage}/acc" in record:  # not when no validation ran (trainer.limit_val_batches=0, say)
        labels = (datamodule.test_set if stage == "test" else datamodule.val_set).tensors[1]
        labels = labels[: scored_rows(trainer, stage, len(labels), datamodule.hparams.eval_batch_size)]
        record[f"{stage}/rows"] = len(labels)
        counts = torch.bincount(labels.long(), minlength=2)  # each class's rows
        record[f"{stage}/majority_share"] = (counts.max() / max(len(labels), 1)).item()
        if len(counts) == 2:  # the second class's share, for two classes
            record[f"{stage}/positive_share"] = labels.mean().item()
        # data.split=none: the scored rows are the training rows, and are said to be (never "Test")
        record[f"{stage}/held_out"] = datamodule.hparams.split != "none"
    return record


def one_class_remark(record: dict, stage: str) -> str:
    """`` (= always predicting class 0)`` when the scores say the model gave every row one class: no
    positive found and the accuracy that of the negatives' share (so no false positive either)."""
    recall, accuracy = record.get(f"{stage}/recall"), record[f"{stage}/acc"]
    positives = record.get(f"{stage}/positive_share")
    if recall is None or positives is None:
        return ""
    if recall == 0 and math.isclose(accuracy, 1 - positives, abs_tol=1e-6):
        return " (= always predicting class 0)"
    if recall == 1 and math.isclose(accuracy, positives, abs_tol=1e-6):
        return " (= always predicting class 1)"
    return ""


def scored_rows(trainer: L.Trainer, stage: str, rows: int, batch_size: int) -> int:
    """How many of ``rows`` the stage's last epoch scored: fewer with ``limit_test_batches``, say."""
    batches = trainer.num_test_batches if stage == "test" else trainer.num_val_batches
    if not batches:
        return rows
    return min(rows, sum(batches) * batch_size * trainer.world_size)


def result_lines(record: dict, output_dir: Path) -> str:
    """``Test (254 rows): accuracy ..., AUROC ..., loss ... | 150 epochs in 12.3 s | <run dir>``, and with
    replicas (mean ± std and the ensemble's) a table of every replica's values on the lines after."""
    stage = "test" if "test/acc" in record else "val"
    ending = f"{record['epochs']} epochs in {record['wall_time_s']:.1f} s | {output_dir}"
    return _lines(record, stage, ending) + _rose(record)


def _rose(record: dict) -> str:
    """A line after the result when the validation loss rose far above its minimum, else ''."""
    if rose := record.get("val/loss_rose"):
        return (
            f"\nval/loss rose from its minimum {rose['best']:.4f} (epoch {rose['best_epoch']}) to "
            f"{rose['last']:.4f} (epoch {rose['last_epoch']}): the network went on to fit its training rows' "
            "noise; callbacks=early_stopping data.val_size=0.2 stops near the best epoch and tests it"
        )
    return ""


def _lines(record: dict, stage: str, ending: str) -> str:
    """The result line (and with replicas its table)."""
    if f"{stage}/acc" not in record:
        return f"Trained {ending}"
    heading = f"{'Test' if stage == 'test' else 'Validation'} ({record[f'{stage}/rows']} rows)"
    if not record.get(f"{stage}/held_out", True):
        heading = f"Training rows ({record[f'{stage}/rows']}, none held out: data.split=none)"
    if record["replicas"] == 1:
        remarks = {"acc": one_class_remark(record, stage)}
        values = ", ".join(
            f"{label} {record[f'{stage}/{name}']:.4f}{remarks.get(name, '')}" for name, label in NAMES.items()
        )
        return f"{heading}: {values} | {ending}"
    mean_std = ", ".join(
        f"{label} {record[f'{stage}/{name}']:.4f} ± {record[f'{stage}/{name}_std']:.4f}"
        for name, label in NAMES.items()
    )
    ensemble = ", ".join(f"{label} {record[f'{stage}/ensemble_{name}']:.4f}" for name, label in NAMES.items())
    table = ["", "replica  " + "  ".join(f"{label:>8}" for label in NAMES.values())]
    for replica in range(record["replicas"]):
        values = [record["per_replica"][f"{stage}/{name}"][replica] for name in NAMES]
        table.append(f"{replica:>7}  " + "  ".join(f"{value:8.4f}" for value in values))
    replicas = f"{record['replicas']} replicas: {mean_std} (mean ± std); ensemble: {ensemble}"
    return f"{heading}, {replicas} | {ending}" + "\n".join(table)
