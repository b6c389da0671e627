"""Train one run from the train config: what ``train`` does, and ``cv`` and ``tune`` for runs of their own."""

import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.model import PLATEAU_MONITOR, PimaClassifier
from pima_lightning.runs import signals
from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.callbacks import LossWatch, interrupted
from pima_lightning.runs.evaluation import test_and_picture
from pima_lightning.runs.hparams import (
    compared_hyperparameters,
    in_multirun,
    job_run_name,
    run_name,
    write_hparams_session,
)
from pima_lightning.runs.model_summary import model_summary
from pima_lightning.runs.plots import add_pictures
from pima_lightning.runs.record import result_lines, run_record
from pima_lightning.runs.resume import resumable_checkpoint
from pima_lightning.settings.checks import whole
from pima_lightning.settings.config_checks import check_model_size, check_train_config

log = logging.getLogger(__name__)
file_log = logging.getLogger("pima_lightning.file_only")  # the run's log file, not the console
# the module logs once an epoch, so no step interval applies: not worth a warning every run with few batches
warnings.filterwarnings(
    "ignore", message=r"The number of training batches \(\d+\) is smaller than the logging"
)
OmegaConf.register_new_resolver("job_run_name", job_run_name, replace=True)  # conf/logger/*.yaml: version
OmegaConf.register_new_resolver("run_name", run_name, replace=True)  # conf/logger/mlflow.yaml: run_name
# conf/callbacks/model_checkpoint.yaml: a checkpoint kept by a monitored metric is best.ckpt (train rewrites
# last.ckpt with the last epoch's weights when the fit ends), compared every epoch
OmegaConf.register_new_resolver(
    "checkpoint_name", lambda monitor: "best" if monitor else "last", replace=True
)
OmegaConf.register_new_resolver(
    "checkpoint_period", lambda monitor, every: 1 if monitor else every, replace=True
)


def train(cfg: DictConfig, callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Fit on the training rows, then (``cfg.test``) test once on the held-out rows; write ``metrics.json``.

    Returns the last validation's ``val/*`` metrics and the ``test/*`` metrics. The trainer gets the
    callbacks and loggers of ``cfg.callbacks`` and ``cfg.logger``, and ``callbacks`` besides (the
    tuner passes its pruning callback). With a checkpoint callback that monitors a metric
    (``callbacks=early_stopping``), the test scores the weights of its best epoch.
    """
    started = time.perf_counter()
    seed_and_threads(cfg)
    output_dir = Path(cfg.output_dir)

    datamodule, model = datamodule_and_model(cfg)
    # logger=[] (lightning-hydra-template's way), logger=none or logger: null: no logger at all
    loggers = instantiate_group(cfg.get("logger"))
    losses = LossWatch()
    callbacks = [*instantiate_group(cfg.get("callbacks")), losses, *callbacks]
    if not loggers and (monitors := [c for c in callbacks if isinstance(c, LearningRateMonitor)]):
        log.info("No logger: the learning-rate monitor, which writes to one, is left out")
        callbacks = [callback for callback in callbacks if callback not in monitors]
    check_validation_rows_are_not_test_rows(cfg, callbacks)
    within_epochs = cfg.trainer.get("val_check_interval") not in (None, 1.0)
    for logger in loggers:
        if within_epochs and getattr(logger, "epochs_on_x_axis", False):
            log.info("trainer.val_check_interval validates within epochs: TensorBoard's x-axis is the step")
            logger.epochs_on_x_axis = False
    trainer = instantiate(cfg.trainer, default_root_dir=output_dir, callbacks=callbacks, logger=loggers)
    with tempfile.TemporaryDirectory() as scratch:
        resume = None
        if cfg.ckpt_path:  # a checked copy: the checkpoint's trainer state is data too
            resume, epoch = resumable_checkpoint(cfg.ckpt_path, model, datamodule, trainer, Path(scratch))
            log.info("Resuming %s after epoch %d", cfg.ckpt_path, epoch)
        # a sweep prints the layer table once, for its first job; the others' is in their train.log
        later_job = in_multirun() and HydraConfig.get().job.num > 0
        (file_log if later_job else log).info("Model:\n%s", model_summary(model))
        hyperparameters = compared_hyperparameters(cfg)
        for logger in trainer.loggers:
            logger.log_hyperparams(hyperparameters)
        fit_started = time.perf_counter()
        try:
            # weights only: Lightning would unpickle a ckpt_path=http://... checkpoint with arbitrary code
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
            signals.stop_if_received()  # a signal during the last batch, which Lightning let end
        except BaseException as stop:  # Lightning's answer to SIGTERM is SystemExit(None): an exit 0
            if (honest := interrupted(trainer, stop)) is not None:
                raise honest from None
            raise
    fit_time = time.perf_counter() - fit_started
    # evaluate, predict and export read the final weights from last.ckpt, whatever the callbacks
    trainer.save_checkpoint(output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    results = {
        name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")
    }
    tested_checkpoint = None
    if cfg.test:
        best = [ckpt for ckpt in trainer.checkpoint_callbacks if getattr(ckpt, "monitor", None)]
        tested_checkpoint = (best[0].best_model_path or None) if best else None
        try:
            test_metrics, pictures = test_and_picture(
                trainer,
                model,
                datamodule,
                output_dir,
                title=f"{len(datamodule.test_set)} {scored_rows_named(datamodule)}",
                ckpt_path=tested_checkpoint,
            )
        except BaseException as stop:
            last = output_dir / "checkpoints" / "last.ckpt"
            what = f"while testing; to score the model: python -m pima_lightning.evaluate ckpt_path={last}"
            if (honest := signals.signal_exit(stop, what)) is not None:
                raise honest from None
            raise
        results |= test_metrics
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
                epochs = getattr(logger, "epochs_on_x_axis", False)
                step = trainer.current_epoch if epochs else trainer.global_step
                add_pictures(logger.experiment, pictures, "test", step)
                write_hparams_session(logger.log_dir, hyperparameters)
            if isinstance(logger, MLFlowLogger) and trainer.is_global_zero:
                for picture in pictures.values():  # test/<name>.png, the files themselves
                    logger.experiment.log_artifact(logger.run_id, str(picture), "test")
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger) and trainer.is_global_zero:  # the checkpoints train wrote
            for checkpoint in sorted((output_dir / "checkpoints").glob("*.ckpt")):
                logger.experiment.log_artifact(logger.run_id, str(checkpoint), "checkpoints")
        logger.finalize("success")  # flush and close the logs before metrics.json marks the run finished
    if trainer.is_global_zero:  # under DDP the first process alone writes the results
        timing = {"wall_time_s": time.perf_counter() - started, "fit_time_s": fit_time}
        record = run_record(cfg, trainer, model, datamodule, results, timing, tested_checkpoint)
        if rose := losses.overfitting():
            record["val/loss_rose"] = rose
        write_json(output_dir / "metrics.json", record)
        log.info(result_lines(record, output_dir))
    return results


def scored_rows_named(datamodule: PimaDataModule) -> str:
    """What the rows a run tests are: held out, or with ``data.split=none`` the training rows."""
    return "held-out rows" if datamodule.hparams.split != "none" else "training rows (data.split=none)"


def command_line_train_overrides(own_group: str) -> list[str]:
    """The command line's overrides of the train config, for a command that trains runs of its own
    (``tune``, ``cv``): all of them but the command's own settings (``<own_group>.*``) and Hydra's."""
    return [
        override
        for override in HydraConfig.get().overrides.task
        if not override.lstrip("+~").startswith((f"{own_group}.", "hydra"))
    ]


def seed_and_threads(cfg: DictConfig) -> None:
    """Seed every generator with ``cfg.seed`` and compute with ``cfg.torch_threads`` CPU threads (None
    keeps torch's default): how every command that trains starts."""
    L.seed_everything(whole("seed", cfg.seed, 0, 2**32 - 1), workers=True)
    if (threads := cfg.get("torch_threads")) is not None:
        torch.set_num_threads(whole("torch_threads", threads))


def datamodule_and_model(cfg: DictConfig) -> tuple[PimaDataModule, PimaClassifier]:
    """The checked config's data module, read and validated (bad input fails here, before training
    starts), and its model, adapted to the data: the CSV's width and names, the training rows' scaling."""
    check_train_config(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    check_model_size(cfg.model, datamodule.input_width)
    model = instantiate(cfg.model)
    model.adapt(datamodule)
    return datamodule, model


def instantiate_group(group: DictConfig | None) -> list:
    """The objects of a config group of named entries (``callbacks``, ``logger``), in config order;
    ``+callbacks.NAME._target_=...`` adds one, ``~callbacks.NAME`` removes one."""
    built = [instantiate(entry) for entry in (group or {}).values() if entry]
    return [thing for thing in built if thing is not None]  # console_progress with the bar turned off


def check_validation_rows_are_not_test_rows(cfg: DictConfig, callbacks: Sequence[L.Callback]) -> None:
    """Refuse to select or adapt on validation metrics when the validation rows are the test rows
    (``data.val_size=0``, the notebook's ``validation_data``): that would select on the test set."""
    monitors = [
        f"{type(callback).__name__} monitors {callback.monitor}"
        for callback in callbacks
        if str(getattr(callback, "monitor", None) or "").startswith("val/")
    ]
    if str((cfg.scheduler or {}).get("_target_", "")).endswith("ReduceLROnPlateau"):
        monitors.append(f"ReduceLROnPlateau monitors {PLATEAU_MONITOR}")
    if monitors and cfg.data.val_size == 0:
        raise InputError(
            f"{'; '.join(monitors)}, but with data.val_size=0 the validation rows are the held-out test "
            "rows, so this would select on the test set; set data.val_size (e.g. data.val_size=0.2) to "
            "validate on rows carved from the training part"
        )
