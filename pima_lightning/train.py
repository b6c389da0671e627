"""Train the notebook's model: ``python -m pima_lightning.train [group=option] [key=value ...]``."""

import logging
import sys
from difflib import get_close_matches
from importlib.resources import files
from pathlib import Path

import hydra
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from pima_lightning.errors import InputError
from pima_lightning.runs import signals
from pima_lightning.runs.exits import exit_with_one_line, install_handlers, one_line_config_errors
from pima_lightning.runs.hparams import in_multirun
from pima_lightning.runs.relaunch import one_sweep_job
from pima_lightning.runs.sweep import launching_process, record_failure, report, sweep_interrupted
from pima_lightning.runs.training import train

log = logging.getLogger(__name__)


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
    top_level = _top_level_settings()
    unknown = [key for key in cfg if key not in top_level]
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
