"""Train the notebook's model: ``python -m pima_lightning.train [group=option] [key=value ...]``."""

import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from difflib import get_close_matches
from importlib.resources import files
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from pima_lightning import signals
from pima_lightning.atomic import write_json
from pima_lightning.callbacks import DivergenceCheck, ValidationLossHistory, interrupted
from pima_lightning.checks import whole
from pima_lightning.config_checks import check_model_size, check_train_config
from pima_lightning.config_errors import one_line_config_errors
from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError, exit_with_one_line, install_handlers
from pima_lightning.evaluate import test_and_picture
from pima_lightning.hparams import (
    compared_hyperparameters,
    in_multirun,
    job_run_name,
    run_name,
    write_hparams_session,
)
from pima_lightning.model import PLATEAU_MONITOR, PimaClassifier
from pima_lightning.relaunch import one_sweep_job
from pima_lightning.resume import resumable_checkpoint
from pima_lightning.run_record import result_lines, run_record
from pima_lightning.summary import model_summary
from pima_lightning.sweep import launching_process, record_failure, report, sweep_interrupted

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
    history = ValidationLossHistory()
    callbacks = [*instantiate_group(cfg.get("callbacks")), DivergenceCheck(), history, *callbacks]
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
            test_metrics, figures = test_and_picture(
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
                for name, figure in figures.items():
                    epochs = getattr(logger, "epochs_on_x_axis", False)
                    step = trainer.current_epoch if epochs else trainer.global_step
                    logger.experiment.add_figure(f"test/{name}", figure, global_step=step)
                write_hparams_session(logger.log_dir, hyperparameters)
            if isinstance(logger, MLFlowLogger) and trainer.is_global_zero:
                for name, figure in figures.items():
                    logger.experiment.log_figure(logger.run_id, figure, f"test/{name}.png")
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger) and trainer.is_global_zero:  # the checkpoints train wrote
            for checkpoint in sorted((output_dir / "checkpoints").glob("*.ckpt")):
                logger.experiment.log_artifact(logger.run_id, str(checkpoint), "checkpoints")
        logger.finalize("success")  # flush and close the logs before metrics.json marks the run finished
    if trainer.is_global_zero:  # under DDP the first process alone writes the results
        timing = {"wall_time_s": time.perf_counter() - started, "fit_time_s": fit_time}
        record = run_record(cfg, trainer, model, datamodule, results, timing, tested_checkpoint)
        if rose := history.overfitting():
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
    check_model_size(cfg.model, datamodule.n_features)
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


def sweeper_objective(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """``cfg.optimized_metric`` of the last validation, what a Hydra sweeper plugin optimises; None, with a
    line saying why, when the validation rows are the held-out test rows (``data.val_size=0``), since a
    sweeper would then select on the test set."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if cfg.data.val_size == 0:
        if _a_sweeper_optimises():  # basic multiruns and single runs use no return value
            log.warning(
                "optimized_metric=%s is not returned to the sweeper: with data.val_size=0 the validation "
                "rows are the test rows; set data.val_size (e.g. 0.2) to optimise on training rows",
                name,
            )
        return None
    if name not in metrics:
        known = ", ".join(sorted(key for key in metrics if key.startswith("val/")))
        raise InputError(
            f"optimized_metric={name}: this run logs no such metric; its validation metrics: {known}"
        )
    return metrics[name]


def _a_sweeper_optimises() -> bool:
    """Whether this run is a job of a sweeper plugin that uses its return value (Optuna's, Ax's, ...)."""
    if not in_multirun():
        return False
    return not str(HydraConfig.get().sweeper.get("_target_", "")).endswith("BasicSweeper")


def _default_train_config() -> DictConfig:
    """The train config as composed without overrides."""
    if GlobalHydra.instance().is_initialized():
        return compose("config")
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        return compose("config")


def _top_level_settings() -> set[str]:
    """The train config's top-level keys: ``conf/config.yaml``'s own and its defaults list's groups, read
    from the file (composing the whole config costs 150 ms, which every run would pay)."""
    primary = OmegaConf.load(files("pima_lightning.conf") / "config.yaml")
    groups = {
        group
        for entry in primary.defaults
        if OmegaConf.is_dict(entry)
        for group in entry
        if not group.startswith("override ")
    }
    return set(primary) - {"defaults"} | groups


def check_unknown_settings(cfg: DictConfig) -> None:
    """Refuse a top-level setting the train config does not have (``+epochs=5``, a Keras habit that
    Hydra's own hint suggests), naming the closest setting it does have (``trainer.max_epochs``)."""
    unknown = [key for key in cfg if key not in _top_level_settings()]
    if unknown:
        known = OmegaConf.to_container(_default_train_config(), resolve=False)  # nothing resolved: keys only
        settings = [
            f"{group}.{key}" if group else key
            for group in (None, *(k for k, value in known.items() if isinstance(value, dict)))
            for key in (known[group] if group else known)
        ]
        ends = {setting.rsplit(".", 1)[-1]: setting for setting in reversed(settings)}
        close = set(get_close_matches(unknown[0], list(ends), n=3, cutoff=0.6))
        named = [setting for end, setting in reversed(ends.items()) if end in close]  # in config order
        hint = (
            f"; did you mean {' or '.join(named)}?"
            if named
            else "; see python -m pima_lightning.train --cfg job"
        )
        raise InputError(f"{unknown[0]}: train has no such setting{hint}")


@one_line_config_errors("config")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` of the validation rows for a sweeper plugin (None
    when they are the test rows).

    A failing run leaves ``failure.json`` (its error's first line) in its run dir, so that a dir
    holding only logs is never mistaken for an unfinished run. In a multirun the failing job then
    returns NaN, so that the other jobs run and the summary is written; the sweep exits non-zero.
    """
    install_handlers()
    multirun = in_multirun()
    if multirun and sweep_interrupted(Path(HydraConfig.get().sweep.dir)):  # started after a signal
        record_failure(Path(cfg.output_dir), "not run: the sweep was interrupted")
        return float("nan")
    try:
        check_unknown_settings(cfg)
        with one_sweep_job():  # under DDP, its extra processes run this job and end with it
            metrics = train(cfg)
        return sweeper_objective(cfg, metrics)
    except BaseException as err:
        if (
            stop := signals.signal_exit(err, "before the run finished; no metrics.json was written")
        ) is not None:  # a signal stops a sweep too, which still summarises the jobs that ran
            record_failure(Path(cfg.output_dir), f"interrupted by {signals.NAMES[signals.received(err)]}")
            if multirun and launching_process():  # else the launching process summarises
                report(Path(HydraConfig.get().sweep.dir))
                print("error: the sweep stopped; its summary covers the jobs that ran", file=sys.stderr)
            raise stop from None
        if not isinstance(err, Exception):
            raise
        record_failure(Path(cfg.output_dir), err)
        if not multirun:
            exit_with_one_line(err)
        log.exception("Job failed")
        return float("nan")


if __name__ == "__main__":
    main()
