"""Checks of a composed train config, made once where it is read, before anything is built or trained.

The data module and the model take these settings as they are (a Python user passes Python values);
a config comes from a command line or a file, so its values are checked here: types and ranges (one
``InputError`` line naming the key), and optimizer and scheduler configs that may build only a class
of ``torch.optim`` from plain values. The same optimizer check guards resumed checkpoints.
"""

from collections.abc import Sequence

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from pima_lightning.data import FOLD_SCOPES, SPLITS
from pima_lightning.errors import InputError
from pima_lightning.model import settings, torch_class
from pima_lightning.settings.checks import check_layers, check_network_size, flag, number, whole

# what the optimizer and scheduler configs may build: a class of this module, a subclass of that base
BUILDABLE = {
    "optimizer": (torch.optim, torch.optim.Optimizer),
    "scheduler": (torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler),
}
# settings torch accepts but that cannot train (a zero learning rate, a negative decay factor)
POSITIVE_SETTINGS = {"optimizer.lr", "optimizer.eps", "scheduler.gamma", "scheduler.factor"}
NON_NEGATIVE_SETTINGS = {"optimizer.momentum", "optimizer.weight_decay"}
# above this, a step of lr x gradient overflows float32 (3.4e38) and torch stops with an overflow error
MAX_SETTING = 1e30


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
    check_data_settings(cfg.data)
    check_model_settings(cfg.model)
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.scheduler else None
    check_optimizer_settings(optimizer, scheduler)


def check_data_settings(data: DictConfig) -> None:
    """The data module's settings (``data.*``)."""
    if data.split not in SPLITS:
        raise InputError(f"data.split={data.split}: expected one of {', '.join(SPLITS)}")
    number("data.test_size", data.test_size, 0, 1, low_open=True, high_open=True, what="a fraction")
    number("data.val_size", data.val_size, 0, 1, high_open=True, what="a fraction")
    whole("data.split_seed", data.split_seed, 0, 2**32 - 1)
    for name in ("batch_size", "eval_batch_size"):
        whole(f"data.{name}", data[name])
    whole("data.num_workers", data.num_workers, low=0, high=1024)
    for name in ("stratify", "standardize", "pin_memory"):
        flag(f"data.{name}", data[name])
    if data.label_column is not None and not isinstance(data.label_column, str):
        raise InputError(
            f"data.label_column={data.label_column}: expected a column name from the CSV's header"
        )
    names = data.get("class_names")
    if names is not None and not (
        OmegaConf.is_list(names) and len(names) == 2 and all(isinstance(name, str) and name for name in names)
    ):
        raise InputError(
            f"data.class_names={names}: expected two names, class 0's then class 1's, e.g. [benign,malignant]"
        )
    if data.folds:
        whole("data.folds", data.folds, low=2)
        whole("data.fold", data.fold, 0, data.folds - 1)
        whole("data.fold_seed", data.fold_seed, 0, 2**32 - 1)
        if data.fold_scope not in FOLD_SCOPES:
            raise InputError(f"data.fold_scope={data.fold_scope}: expected one of {', '.join(FOLD_SCOPES)}")


def check_model_settings(model: DictConfig) -> None:
    """The network's settings (``model.*``)."""
    hidden = OmegaConf.to_container(model.hidden) if OmegaConf.is_list(model.hidden) else model.hidden
    if not is_widths(hidden):
        raise InputError(f"model.hidden={hidden}: expected a list of whole numbers >= 1, e.g. [12, 6]")
    number("model.dropout", model.dropout, 0, 1, high_open=True, what="a probability")
    number("model.l1", model.l1, 0, what="a penalty")
    check_layers(hidden, model.replicas, prefix="model.")


def check_model_size(model: DictConfig, n_features: int) -> None:
    """The network's size on data of ``n_features`` columns, within the limits every command loads."""
    check_network_size(n_features, list(model.hidden), model.replicas, prefix="model.")


def is_widths(hidden) -> bool:
    """Whether ``hidden`` is a list of layer widths: whole numbers >= 1 (none: logistic regression)."""
    listed = isinstance(hidden, Sequence) and not isinstance(hidden, str)
    return listed and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in hidden)


def check_buildable_config(group: str, config) -> None:
    """Raise InputError unless ``config`` (an optimizer or scheduler config, from the command line or
    from a checkpoint) names a class of torch.optim (``torch.optim.SGD``) and holds plain values.

    The class is looked up by name in the module (``model.torch_class``): nothing is imported, and a
    function reached through a module (``torch.optim.sgd.torch.load``) is not a class of it. No
    value, however deeply nested, may hold a ``_target_`` of its own.
    """
    module, base = BUILDABLE[group]
    target = config.get("_target_") if isinstance(config, dict) else None
    try:
        torch_class(config if isinstance(config, dict) else {}, module, base)
    except ValueError:
        raise InputError(
            f"{group}: _target_ {str(target)[:80]!r} is not a class of {module.__name__} "
            f"({base.__name__}); choose one of conf/{group}/"
        ) from None
    nested = [key for key, value in config.items() if key != "_target_" and _builds_something(value)]
    if nested:
        raise InputError(f"{group}.{nested[0]}: a value may not build an object (it holds a _target_)")


def _builds_something(value) -> bool:
    """Whether ``value`` holds a ``_target_`` anywhere inside."""
    if isinstance(value, dict):
        return "_target_" in value or any(_builds_something(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_builds_something(item) for item in value)
    return False


def check_optimizer_settings(optimizer: dict, scheduler: dict | None) -> None:
    """Check the settings torch accepts but that cannot train (``POSITIVE_SETTINGS``, ...), then build a
    throw-away optimizer (and scheduler) so that torch's own checks of the rest (an Adam beta above 1,
    say) fail before training starts, as one InputError."""
    check_buildable_config("optimizer", optimizer)
    if scheduler:
        check_buildable_config("scheduler", scheduler)
    for group, config in (("optimizer", optimizer), ("scheduler", scheduler or {})):
        for key, value in config.items():
            if f"{group}.{key}" in POSITIVE_SETTINGS:
                number(f"{group}.{key}", value, 0, MAX_SETTING, low_open=True)
            elif f"{group}.{key}" in NON_NEGATIVE_SETTINGS:
                number(f"{group}.{key}", value, 0, MAX_SETTING)
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
