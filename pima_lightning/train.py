"""Train the notebook's model: ``python -m pima_lightning.train [group=option] [key=value ...]``."""

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from pima_lightning.atomic import write_json
from pima_lightning.callbacks import ProgressBar, RandomStateCheckpoint
from pima_lightning.errors import InputError
from pima_lightning.evaluate import test_and_picture
from pima_lightning.model import PimaClassifier
from pima_lightning.summary import model_summary
from pima_lightning.sweep import record_failure
from pima_lightning.tensorboard_logger import SingleEventTensorBoardLogger

log = logging.getLogger(__name__)


def train(cfg: DictConfig, callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Fit on the training rows, then (``cfg.test``) test once on the held-out rows; write ``metrics.json``.

    Returns the last epoch's ``val/*`` metrics and the ``test/*`` metrics. ``callbacks`` are added to
    the trainer's own (the tuner passes its pruning callback).
    """
    started = time.perf_counter()
    if cfg.checkpoint_every < 1:
        raise InputError(f"checkpoint_every={cfg.checkpoint_every}: expected a whole number of epochs >= 1")
    output_dir = Path(cfg.output_dir)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    # read and validate the CSV before anything else, so bad input fails before training starts
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = PimaClassifier(
        **OmegaConf.to_container(cfg.model, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) or None,
        feature_mean=datamodule.feature_mean,
        feature_scale=datamodule.feature_scale,
    )
    log.info("Model:\n%s", model_summary(model.network))
    logger = SingleEventTensorBoardLogger(output_dir, name="tensorboard", version="", default_hp_metric=False)
    trainer = instantiate(
        cfg.trainer,
        default_root_dir=output_dir,
        logger=logger,
        callbacks=[
            # last.ckpt, rewritten (atomically) every checkpoint_every epochs so an interrupted run
            # can resume; no monitor: nothing is selected on held-out metrics
            ModelCheckpoint(
                dirpath=output_dir / "checkpoints",
                filename="last",
                every_n_epochs=cfg.checkpoint_every,
                enable_version_counter=False,
            ),
            LearningRateMonitor(logging_interval="epoch"),
            RandomStateCheckpoint(),
            *([ProgressBar()] if cfg.trainer.enable_progress_bar else []),
            *callbacks,
        ],
    )
    fit_started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    if trainer.current_epoch % cfg.checkpoint_every:  # evaluate, predict and export read the final weights
        trainer.save_checkpoint(output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    fit_time = time.perf_counter() - fit_started
    results = {name: value for name, value in model.epoch_metrics.items() if name.startswith("val/")}
    if cfg.test:
        test_metrics, figures = test_and_picture(
            trainer, model, datamodule, output_dir, title=f"{len(datamodule.test_set)} held-out rows"
        )
        results |= test_metrics
        for name, figure in figures.items():
            logger.experiment.add_figure(f"test/{name}", figure, global_step=trainer.current_epoch)
        # the config and the test metrics side by side in TensorBoard's HParams tab
        logger.log_hyperparams(
            OmegaConf.to_container(cfg, resolve=True), metrics=test_metrics, step=trainer.current_epoch
        )
    logger.finalize("success")  # flush and close the event files before metrics.json marks the run finished
    if not trainer.is_global_zero:  # under DDP the first process alone writes the results
        return results

    wall_time = time.perf_counter() - started
    stage = "test" if cfg.test else "val"
    replicas = model.hparams.replicas
    record = {
        **results,
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "replicas": replicas,
        "wall_time_s": wall_time,
        "fit_time_s": fit_time,
        "torch_threads": torch.get_num_threads(),
    }
    if replicas > 1:  # each replica's held-out metrics, replica 0 first
        record["per_replica"] = {
            name: values for name, values in model.replica_metrics.items() if name.startswith(f"{stage}/")
        }
    write_json(output_dir / "metrics.json", record)
    rows = len(datamodule.test_set) if cfg.test else len(datamodule.val_set)
    summary, table = held_out_report(record, stage)
    log.info(
        "%s (%d rows)%s | %d epochs in %.1f s | %s%s",
        "Test" if cfg.test else "Validation",
        rows,
        summary,
        trainer.current_epoch,
        wall_time,
        output_dir,
        table,
    )
    return results


def held_out_report(record: dict, stage: str) -> tuple[str, str]:
    """Accuracy, AUROC and loss as one line, and with replicas (mean ± std and the ensemble's) a
    table of every replica's on the lines after."""
    names = {"acc": "accuracy", "auroc": "AUROC", "loss": "loss"}
    if record["replicas"] == 1:
        return ": " + ", ".join(
            f"{label} {record[f'{stage}/{name}']:.4f}" for name, label in names.items()
        ), ""
    mean_std = ", ".join(
        f"{label} {record[f'{stage}/{name}']:.4f} ± {record[f'{stage}/{name}_std']:.4f}"
        for name, label in names.items()
    )
    ensemble = ", ".join(f"{label} {record[f'{stage}/ensemble_{name}']:.4f}" for name, label in names.items())
    table = ["", "replica  " + "  ".join(f"{label:>8}" for label in names.values())]
    for replica in range(record["replicas"]):
        values = [record["per_replica"][f"{stage}/{name}"][replica] for name in names]
        table.append(f"{replica:>7}  " + "  ".join(f"{value:8.4f}" for value in values))
    return f", {record['replicas']} replicas: {mean_std} (mean ± std); ensemble: {ensemble}", "\n".join(table)


@hydra.main(config_path="pkg://pima_lightning.conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the test accuracy (validation accuracy with ``test=false``) for sweepers.

    In a multirun a failing job records its error for the sweep summary and returns NaN, so that
    the other jobs run and the summary is written; the sweep then exits non-zero.
    """
    try:
        metrics = train(cfg)
        return metrics.get("test/acc", metrics["val/acc"])
    except Exception as err:
        if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
            if (bad_input := InputError.within(err)) is not None:
                raise SystemExit(f"error: {bad_input}") from None
            raise
        log.exception("Job failed")
        record_failure(Path(cfg.output_dir), err)
        return float("nan")


if __name__ == "__main__":
    main()
