"""The hyperparameters a run is compared by, for the loggers and TensorBoard's HParams tab."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from torch.utils.tensorboard.summary import hparams

from pima_lightning.runs.loggers import InThreadSummaryWriter


def compared_hyperparameters(cfg: DictConfig) -> dict[str, float | int | str | bool]:
    """The settings runs differ by, flat (the full config is in ``<run>/.hydra/config.yaml``)."""
    scheduler = cfg.scheduler or {}
    return {
        "optimizer": cfg.optimizer._target_.rsplit(".", 1)[-1],
        "lr": cfg.optimizer.lr,
        "weight_decay": cfg.optimizer.weight_decay,
        "scheduler": scheduler.get("_target_", "none").rsplit(".", 1)[-1],
        "batch_size": cfg.data.batch_size,
        "hidden": str(list(cfg.model.hidden)),
        "dropout": cfg.model.dropout,
        "l1": cfg.model.l1,
        "replicas": cfg.model.replicas,
        "standardize": cfg.data.standardize,
        "split": cfg.data.split,
        "val_size": cfg.data.val_size,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_run_name() -> str:
    """A multirun job's overrides (``optimizer=adam,seed=1``), to name its run in TensorBoard's run list,
    where job folders are numbered; "" for a single run (its folder is the run) and outside Hydra.

    Slashes in values (``data.path=/data/a.csv``) become underscores: in a run name they would nest.
    It is the ``version`` of the loggers in ``conf/logger/`` (the ``${job_run_name:}`` resolver)."""
    if not in_multirun():
        return ""
    return HydraConfig.get().job.override_dirname.replace("/", "_")


def run_name() -> str | None:
    """A run's name in MLflow: its overrides (``optimizer=adam,seed=1``) but the logger's, or its folder's
    name when it has none; None outside Hydra (MLflow then draws one). The ``${run_name:}`` resolver of
    ``conf/logger/mlflow.yaml``."""
    if not HydraConfig.initialized():
        return None
    # not logger=mlflow, which every run of the store shares
    named = sorted(o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("logger"))
    return ",".join(named) or Path(HydraConfig.get().runtime.output_dir).name


def write_hparams_session(log_dir: str, params: dict) -> None:
    """Write TensorBoard's HParams session for the run in ``log_dir``: ``params``, shown beside the last
    value of every series the run logged (TensorBoard finds the series itself).

    Lightning's ``TensorBoardLogger.log_hyperparams(params, metrics)`` would write every metric a second
    time at step 0; this writes the session's start and end, in an event file of the same run directory.
    Not the experiment summary that torch's ``add_hparams`` writes too: each run's would describe that
    run alone, and TensorBoard would show the first one it finds, whose columns cannot say which
    settings differ between runs. Without one, TensorBoard builds it from every run's session, and
    ticks the columns whose values differ (``optimizer`` and ``seed`` in a sweep over them).

    Whole numbers (``batch_size``, ``seed``, ``max_epochs``, ``replicas``) go in as their digits:
    TensorBoard has no integer type, and shows a number as ``10.000``; as text it shows ``10`` and
    filters by ticking values.
    """
    params = {
        name: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in params.items()
    }
    _, session_start, session_end = hparams(params, {})  # metric names go in the experiment summary only
    with InThreadSummaryWriter(log_dir) as writer:
        for summary in (session_start, session_end):
            writer.file_writer.add_summary(summary)
