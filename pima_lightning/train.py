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
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from pima_lightning.atomic import write_json
from pima_lightning.callbacks import RandomStateCheckpoint
from pima_lightning.errors import InputError
from pima_lightning.evaluate import test_and_picture
from pima_lightning.model import PimaClassifier
from pima_lightning.summary import model_summary
from pima_lightning.sweep import record_failure

log = logging.getLogger(__name__)


def train(cfg: DictConfig, callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Fit on the training rows, then (``cfg.test``) test once on the held-out rows; write ``metrics.json``.

    Returns the last epoch's ``val/*`` metrics and the ``test/*`` metrics. ``callbacks`` are added to
    the trainer's own (the tuner passes its pruning callback).
    """
    started = time.perf_counter()
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
    logger = TensorBoardLogger(output_dir, name="tensorboard", version="", default_hp_metric=False)
    trainer = instantiate(
        cfg.trainer,
        default_root_dir=output_dir,
        logger=logger,
        callbacks=[
            # last.ckpt, rewritten (atomically) after every epoch so an interrupted run can resume;
            # no monitor: nothing is selected on held-out metrics
            ModelCheckpoint(
                dirpath=output_dir / "checkpoints", filename="last", enable_version_counter=False
            ),
            LearningRateMonitor(logging_interval="epoch"),
            RandomStateCheckpoint(),
            *callbacks,
        ],
    )
    fit_started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    fit_time = time.perf_counter() - fit_started
    results = {
        name: value.item() for name, value in trainer.callback_metrics.items() if name.startswith("val/")
    }
    if cfg.test:
        test_metrics, figures = test_and_picture(
            trainer, model, datamodule, output_dir, title=f"{len(datamodule.test_set)} held-out rows"
        )
        results |= test_metrics
        for name, figure in figures.items():
            logger.experiment.add_figure(f"test/{name}", figure, global_step=trainer.global_step)
        # the config and the test metrics side by side in TensorBoard's HParams tab
        logger.log_hyperparams(
            OmegaConf.to_container(cfg, resolve=True), metrics=test_metrics, step=trainer.global_step
        )
    logger.finalize("success")  # flush and close the event files before metrics.json marks the run finished
    if not trainer.is_global_zero:  # under DDP the first process alone writes the results
        return results

    wall_time = time.perf_counter() - started
    write_json(
        output_dir / "metrics.json",
        {
            **results,
            "seed": cfg.seed,
            "epochs": trainer.current_epoch,
            "wall_time_s": wall_time,
            "fit_time_s": fit_time,
            "torch_threads": torch.get_num_threads(),
        },
    )
    stage, rows = ("test", len(datamodule.test_set)) if cfg.test else ("val", len(datamodule.val_set))
    log.info(
        "%s (%d rows): accuracy %.4f, AUROC %.4f, loss %.4f | %d epochs in %.1f s | %s",
        "Test" if cfg.test else "Validation",
        rows,
        results[f"{stage}/acc"],
        results[f"{stage}/auroc"],
        results[f"{stage}/loss"],
        trainer.current_epoch,
        wall_time,
        output_dir,
    )
    return results


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
