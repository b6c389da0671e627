"""A cross-validation's folds, as ``cv`` and ``tune`` make them: checked, named as train overrides, read."""

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from pima_lightning.errors import InputError


def check_every_fold_holds_both_classes(labels: np.ndarray, folds: int, setting: str = "cv.folds") -> None:
    """Refuse folds of which some would hold no row of a class: their AUROC (and the baselines'
    fits) would be undefined. Stratified folds hold a class in every fold when it has ``folds`` rows."""
    counts = np.bincount(labels.astype(int), minlength=2)
    if len(counts) > 2:
        command = setting.split(".")[0]
        raise InputError(
            f"the label has {len(counts)} classes; {command} trains two-class models so far (its members and "
            "baselines): train one model with python -m pima_lightning.train"
        )
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


def fold_rows(fold_cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, list]:
    """The rows the folds split and the folds themselves, as the data module made them."""
    datamodule = instantiate(fold_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.cv_features, datamodule.cv_labels, datamodule.cv_splits
