"""Checks of a composed train config, made once where it is read, before anything is built or trained.

The data module and the model take these settings as they are (a Python user passes Python values);
a config comes from a command line or a file, so its values are checked here: types and ranges (one
``InputError`` line naming the key), and optimizer and scheduler configs that may build only a class
of ``torch.optim`` from plain values. The same optimizer check guards resumed checkpoints.
"""

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from pima_lightning.errors import InputError
from pima_lightning.model import settings, torch_class
from pima_lightning.settings.checks import check_network_size, whole
from pima_lightning.settings.declared import (
    BUILDABLE,
    DATA,
    MODEL,
    OPTIMIZER,
    SCHEDULER,
    check_buildable_config,
    check_settings,
)


def check_train_config(cfg: DictConfig) -> None:
    """Raise InputError for the first setting of ``cfg`` (seed, data, model, optimizer, scheduler) that
    is of the wrong type or out of range, or an optimizer or scheduler that torch would refuse."""
    whole("seed", cfg.seed, 0, 2**32 - 1)
    whole("checkpoint_every", cfg.checkpoint_every, unit=" of epochs")
    metric = cfg.get("optimized_metric")
    if metric is not None and not (isinstance(metric, str) and metric.startswith("val/")):
        raise InputError(
            f"optimized_metric={metric}: expected a validation metric (val/acc, val/loss, val/auroc, ...); "
            "a sweeper must never select on the test rows"
        )
    accelerator = str(cfg.trainer.get("accelerator", ""))
    # Lightning's own refusal says only "No supported gpu backend found!"
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible here (torch.cuda.is_available() is "
            "False); train on the CPU with trainer=cpu (or trainer=ddp_cpu for several processes)"
        )
    check_model_settings(cfg.model)  # first: data.replicas is model.replicas
    check_data_settings(cfg.data)
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.scheduler else None
    check_optimizer_settings(optimizer, scheduler)


def check_data_settings(data: DictConfig) -> None:
    """The data module's settings (``data.*``), as ``settings.declared`` declares them."""
    check_settings(DATA, OmegaConf.to_container(data, resolve=True), prefix="data.")


def check_model_settings(model: DictConfig) -> None:
    """The network's settings (``model.*``), as ``settings.declared`` declares them."""
    check_settings(MODEL, OmegaConf.to_container(model, resolve=True), prefix="model.")


def check_model_size(model: DictConfig, n_features: int) -> None:
    """The network's size on data of ``n_features`` columns, within the limits every command loads."""
    check_network_size(n_features, list(model.hidden), model.replicas, prefix="model.")


def check_optimizer_settings(optimizer: dict, scheduler: dict | None) -> None:
    """Check the settings torch accepts but that cannot train (``declared.OPTIMIZER``, ...), then build a
    throw-away optimizer (and scheduler) so that torch's own checks of the rest (an Adam beta above 1,
    say) fail before training starts, as one InputError."""
    check_buildable_config("optimizer", optimizer)
    if scheduler:
        check_buildable_config("scheduler", scheduler)
    check_settings(OPTIMIZER, optimizer, prefix="optimizer.")
    check_settings(SCHEDULER, scheduler or {}, prefix="scheduler.")
    probe = [nn.Parameter(torch.zeros(1))]
    builds = [("optimizer", optimizer, lambda build, kwargs: build(probe, **kwargs))]
    if scheduler:
        builds.append(
            ("scheduler", scheduler, lambda build, kwargs: build(torch.optim.SGD(probe, lr=0.1), **kwargs))
        )
    for group, config, build in builds:
        module, base = BUILDABLE[group]
        try:
            build(torch_class(config, module, base), settings(config))
        except (ValueError, TypeError) as err:
            shown = ", ".join(f"{key}={value}" for key, value in config.items() if not key.startswith("_"))
            raise InputError(f"{group} ({shown}): {err}") from None
