"""One run of many members from the train config: what ``cv`` and ``tune`` train (``members.py``)."""

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pima_lightning.ensembles.classifier import StackedClassifier
from pima_lightning.ensembles.members import Member, MembersDataModule
from pima_lightning.errors import InputError
from pima_lightning.runs.callbacks import console_progress
from pima_lightning.runs.training import seed_and_threads
from pima_lightning.settings.config_checks import check_model_size, check_train_config

log = logging.getLogger(__name__)
# MemberBatches is an IterableDataset with a length; Lightning's notice concerns worker processes, which
# the members' loader never starts
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


def check_members_config(cfg: DictConfig, command: str) -> None:
    """Refuse train settings that members of one run cannot honour, saying what to use instead."""
    check_train_config(cfg)
    runs = f"{command}.engine=runs (one ordinary run a fold)" if command == "cv" else "tune.folds=0"
    if cfg.model.replicas > 1:
        raise InputError(
            f"model.replicas={cfg.model.replicas}: {command} trains seeds as members; use {command}.seeds"
        )
    if cfg.data.val_size > 0:
        raise InputError(
            f"data.val_size={cfg.data.val_size}: {command} scores each member on its fold's held-out rows; "
            f"leave data.val_size at 0, or use {runs}"
        )
    if str((cfg.scheduler or {}).get("_target_", "")).endswith("ReduceLROnPlateau"):
        raise InputError(
            f"scheduler=plateau would lower every member's learning rate on their mean validation loss, so "
            f"the members would not be independent; use scheduler=step or exponential, or {runs}"
        )
    monitoring = [
        name for name, entry in (cfg.get("callbacks") or {}).items() if entry and entry.get("monitor")
    ]
    if monitoring:
        raise InputError(
            f"callbacks.{monitoring[0]} selects on a validation metric, which members of one run share; "
            f"use {runs}"
        )


def fit_members(
    cfg: DictConfig,
    features: np.ndarray,
    labels: np.ndarray,
    members: Sequence[Member],
    output_dir: Path,
    validate: bool = False,
    callbacks: Sequence[L.Callback] = (),
    divergence_is_error: bool = True,
    categories: dict[int, list[str]] | None = None,
    classes: Sequence[str] | None = None,
) -> StackedClassifier:
    """Train ``members`` in one run with the train config's model, optimizer, batch size, scaling and
    trainer, validating on their held-out rows every epoch if ``validate``, then test them on those
    rows once (``member_scores``, ``member_probabilities``). A member whose loss ends non-finite is an
    error, or with ``divergence_is_error=False`` a warning (the tuner's: such a member predicts class 0
    for every row and scores as such, so the setting that made it scores low and the search goes on).
    ``categories``: the categorical features' categories, the codes ``features`` hold; ``classes``: the
    label's, which ``labels`` index."""
    seed_and_threads(cfg)
    datamodule = MembersDataModule(
        features, labels, members, cfg.data.batch_size, cfg.data.standardize, categories, classes
    )
    check_model_size(cfg.model, datamodule.input_width)
    folds = sorted({(member.repeat, member.fold) for member in members})
    model = StackedClassifier(  # its input width and missing-value indicators from the datamodule (adapt)
        seeds=[member.seed for member in members],
        folds=[folds.index((member.repeat, member.fold)) for member in members],
        hidden=list(cfg.model.hidden),
        dropout=cfg.model.dropout,
        l1=cfg.model.l1,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.scheduler else None,
    )
    model.adapt(datamodule)
    progress = console_progress(cfg.trainer.enable_progress_bar, every_n_epochs=10)
    trainer = instantiate(
        cfg.trainer,
        default_root_dir=output_dir,
        callbacks=[*([progress] if progress else []), *callbacks],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
    )
    if trainer.world_size > 1:
        raise InputError(
            f"{trainer.world_size} processes (trainer.devices={cfg.trainer.devices}): members train in one "
            "process; spread folds over processes with python -m pima_lightning.train -m data.folds=K "
            "'data.fold=range(K)'"
        )
    log.info(
        "Training %d members (%d folds x %d seeds) in one run, %d steps an epoch",
        len(members), len(folds), len(members) // len(folds), len(datamodule.train_dataloader()),
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule, verbose=False)
    diverged = [
        f"fold {member.fold} (repeat {member.repeat}), seed {member.seed}"
        for member, scores in zip(members, model.member_scores, strict=True)
        if not math.isfinite(scores["loss"])
    ]
    if diverged and divergence_is_error:
        raise InputError(
            f"training diverged: the loss of the member of {diverged[0]} is no longer a number; lower "
            "optimizer.lr"
        )
    if diverged:
        log.warning("Training diverged for %d of %d members (%s)", len(diverged), len(members), diverged[0])
    return model
