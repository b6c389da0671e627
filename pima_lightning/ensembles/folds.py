"""A cross-validation's folds, as ``cv`` and ``tune`` make them: checked, named as train overrides, read."""

from typing import NamedTuple

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from pima_lightning.errors import InputError


def check_every_fold_holds_every_class(labels: np.ndarray, folds: int, setting: str = "cv.folds") -> None:
    """Refuse folds of which some would hold no row of a class: their AUROC (and the baselines'
    fits) would be undefined. Stratified folds hold a class in every fold when it has ``folds`` rows."""
    counts = np.bincount(labels.astype(int), minlength=2)
    if (fewest := int(counts.min())) < folds:
        scarce = int(counts.argmin())
        advice = f"use {setting}={fewest} or fewer" if fewest >= 2 else "cross-validation needs 2 or more"
        raise InputError(
            f"{setting}={folds}: class {scarce} has {fewest} of the {len(labels)} rows the folds split, so "
            f"some folds would hold none of it and their AUROC is undefined; {advice}"
        )


def fold_overrides(folds: int, fold: int, fold_seed: int, scope: str) -> list[str]:
    """The train overrides that make a run hold out fold ``fold`` of ``folds`` (``cv`` and ``tune``)."""
    return [
        f"data.folds={folds}",
        f"data.fold={fold}",
        f"data.fold_seed={fold_seed}",
        f"data.fold_scope={scope}",
    ]


class FoldRows(NamedTuple):
    """The rows the folds split, the folds, and what the members' model takes from the data: the
    categorical features' categories (by feature index; None without any) and the classes."""

    features: np.ndarray
    labels: np.ndarray
    splits: list
    categories: dict | None
    classes: list[str]


def fold_rows(fold_cfg: DictConfig) -> FoldRows:
    """The rows the folds split and the folds themselves, as the data module made them."""
    datamodule = instantiate(fold_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return FoldRows(
        datamodule.cv_features, datamodule.cv_labels, datamodule.cv_splits, datamodule.categories,
        datamodule.classes,
    )  # fmt: skip
