"""Each setting of the data module and the network, declared once: its type and range, and whether a
resumed run must keep it. Every boundary a setting crosses reads these declarations:

- a composed config (``settings.config_checks``), before anything is built:
  ``data.test_size=1.2: expected a fraction in (0, 1)``;
- a checkpoint's saved hyperparameters (``inputs.checkpoint``), before anything is allocated:
  ``test_size=nan: expected a number in (0, 1)``;
- a resume's comparison of the checkpoint's settings with the config's (``runs.resume``): the ``fixed`` ones.

The keys are the constructors' parameters (``PimaDataModule``, ``PimaClassifier``) and the configs' keys
(``conf/data/pima.yaml``, ``conf/model/mlp.yaml``); a test keeps the three the same. What each setting
means is said once too, beside its value in those configs.

Not Hydra structured configs: for a ``bool`` field OmegaConf turns ``data.stratify=yes`` into True (here
it is refused: true or false says what is meant), and Hydra 1.3 reports a type error found while
composing in five lines without the ``error:`` line every other mistake gets.
"""

from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import torch

from pima_lightning.data import FOLD_SCOPES, SPLITS
from pima_lightning.errors import InputError
from pima_lightning.model import torch_class
from pima_lightning.settings.checks import (
    NETWORK_LIMITS,
    category_lists,
    column_indices,
    column_name,
    columns,
    flag,
    missing_marks,
    names,
    number,
    one_of,
    optional_text,
    shown,
    whole,
    widths,
)


class Setting(NamedTuple):
    """``check(name, value)``: the value, checked, or InputError naming ``name``. ``fixed``: a resumed run
    must have the checkpoint's value (its weights, scaling, split or batch order depend on it)."""

    check: Callable[[str, object], object]
    fixed: bool = False


SEED = partial(whole, low=0, high=2**32 - 1)
HELD_OUT = partial(number, low=0, high=1, low_open=True, high_open=True, what="a fraction")
CARVED_OUT = partial(number, low=0, high=1, high_open=True, what="a fraction")
REPLICAS = partial(whole, low=1, high=NETWORK_LIMITS["replicas"])


def folds(name: str, value) -> int:
    """0 (no cross-validation) or a whole number of folds from 2 to 1,000."""
    if not (isinstance(value, int) and not isinstance(value, bool) and (value == 0 or 2 <= value <= 1_000)):
        raise InputError(
            f"{name}={shown(value)}: expected 0 (no cross-validation) or a whole number from 2 to 1000"
        )
    return value


# what the optimizer and scheduler configs may build: a class of this module, a subclass of that base
BUILDABLE = {
    "optimizer": (torch.optim, torch.optim.Optimizer),
    "scheduler": (torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler),
}


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


def buildable(group: str, name: str, config) -> dict | None:
    """``config`` if ``check_buildable_config`` allows it; None when empty (the model's default)."""
    if not config:
        return None
    check_buildable_config(group, config)
    return config


def _builds_something(value) -> bool:
    """Whether ``value`` holds a ``_target_`` anywhere inside."""
    if isinstance(value, dict):
        return "_target_" in value or any(_builds_something(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_builds_something(item) for item in value)
    return False


DATA = {
    "path": Setting(partial(optional_text, what="the text of a path"), fixed=True),
    "label_column": Setting(column_name, fixed=True),
    "ignore_columns": Setting(partial(names, example="[patient_id]"), fixed=True),
    "missing_values": Setting(missing_marks, fixed=True),
    "categorical_columns": Setting(columns, fixed=True),
    "class_names": Setting(partial(names, example="[benign,malignant]")),  # one a class: checked in setup
    "data_dir": Setting(partial(optional_text, what="the text of a path")),
    "url": Setting(partial(optional_text, what="a URL")),
    "sha256": Setting(partial(optional_text, what="a checksum"), fixed=True),
    "split": Setting(partial(one_of, choices=SPLITS), fixed=True),
    "test_size": Setting(HELD_OUT, fixed=True),
    "split_seed": Setting(SEED, fixed=True),
    "stratify": Setting(flag, fixed=True),
    "val_size": Setting(CARVED_OUT, fixed=True),
    "standardize": Setting(flag, fixed=True),
    "batch_size": Setting(whole, fixed=True),
    "eval_batch_size": Setting(whole),
    "num_workers": Setting(partial(whole, low=0, high=1024)),
    "pin_memory": Setting(flag),
    "replicas": Setting(REPLICAS),  # the model's (model.replicas), which is fixed
    "folds": Setting(folds, fixed=True),
    "fold": Setting(partial(whole, low=0), fixed=True),  # below folds: checked in check_settings
    "fold_seed": Setting(SEED, fixed=True),
    "fold_scope": Setting(partial(one_of, choices=FOLD_SCOPES), fixed=True),
    "predict_path": Setting(partial(optional_text, what="the text of a path")),
}
MODEL = {
    "n_features": Setting(partial(whole, low=1, high=NETWORK_LIMITS["features"]), fixed=True),
    "feature_names": Setting(partial(names, example="[age,bmi]"), fixed=True),
    "missing_indicators": Setting(column_indices, fixed=True),
    "missing_values": Setting(missing_marks, fixed=True),
    "classes": Setting(partial(names, example="[no,yes]"), fixed=True),
    "categories": Setting(category_lists, fixed=True),
    "hidden": Setting(widths, fixed=True),
    "dropout": Setting(partial(number, low=0, high=1, high_open=True, what="a probability"), fixed=True),
    "l1": Setting(partial(number, low=0, what="a penalty"), fixed=True),
    "replicas": Setting(REPLICAS, fixed=True),
    "optimizer": Setting(partial(buildable, "optimizer"), fixed=True),
    "scheduler": Setting(partial(buildable, "scheduler"), fixed=True),
}
# above this, a step of lr x gradient overflows float32 (3.4e38) and torch stops with an overflow error
MAX_SETTING = 1e30
# the settings torch accepts but that cannot train (a zero learning rate, a negative decay factor); the
# rest torch checks itself (an Adam beta above 1) when config_checks builds a throw-away optimizer
POSITIVE = partial(number, low=0, high=MAX_SETTING, low_open=True)
NON_NEGATIVE = partial(number, low=0, high=MAX_SETTING)
OPTIMIZER = {"lr": Setting(POSITIVE), "eps": Setting(POSITIVE), "momentum": Setting(NON_NEGATIVE),
             "weight_decay": Setting(NON_NEGATIVE)}  # fmt: skip
SCHEDULER = {"gamma": Setting(POSITIVE), "factor": Setting(POSITIVE)}
# the value a setting had in checkpoints written before it existed
ADDED_LATER = {"replicas": 1, "l1": 0.0, "label_column": None, "ignore_columns": None, "folds": 0,
               "scheduler": None, "missing_indicators": [], "missing_values": None,
               "classes": ["0", "1"],  # before text labels, every label was 0 or 1
               "categorical_columns": None, "categories": None}  # fmt: skip


def check_settings(declared: dict[str, Setting], values: Mapping, prefix: str = "") -> dict:
    """The declared settings among ``values``, each checked (``<prefix><key>=<value>: expected ...``), and the
    rule between them (a fold below the number of folds)."""
    checked = {
        key: setting.check(f"{prefix}{key}", values[key])
        for key, setting in declared.items()
        if key in values
    }
    if checked.get("folds"):
        whole(f"{prefix}fold", checked["fold"], 0, checked["folds"] - 1)
    return checked


def fixed(declared: dict[str, Setting]) -> tuple[str, ...]:
    """The settings a resumed run cannot change."""
    return tuple(key for key, setting in declared.items() if setting.fixed)
