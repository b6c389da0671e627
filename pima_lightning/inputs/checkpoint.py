"""Load what a training run saved, as data: the network's sizes and weights, and the split it was tested on.

A checkpoint may come from anywhere, so nothing in it is built or followed. It is read with torch's
weights-only unpickler; the network is rebuilt from its sizes, each checked for type and range, and
its weights are loaded strictly (the expected names and shapes, finite values); the optimizer and
scheduler configs are refused unless ``check_buildable_config`` allows them, and never built; of the
data settings only the split's numbers are kept: the files, folders and URLs it names are not used.
"""

import logging
import re
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from pima_lightning.ensembles.replicas import classifier
from pima_lightning.errors import InputError
from pima_lightning.inputs.csvfile import MAX_CLASSES
from pima_lightning.inputs.files import MAX_CHECKPOINT_BYTES, check_regular, printable
from pima_lightning.model import PimaClassifier, marked_columns, outputs, parameter_count, with_fill
from pima_lightning.settings.checks import check_network_size
from pima_lightning.settings.declared import ADDED_LATER, DATA, MODEL, check_settings

log = logging.getLogger(__name__)
MAX_DEPTH = 20  # levels of nesting a checkpoint may have (a real one has 7)


def load_checkpoint(path: str | Path) -> tuple[PimaClassifier, dict]:
    """Return ``(model in eval mode, the split settings it was trained with)``: what
    ``PimaClassifier.load_from_checkpoint`` returns for a checkpoint of one's own, for a file from anywhere.

    The split settings are ``split``, ``test_size``, ``split_seed``, ``stratify``, ``val_size``,
    ``label_column`` and ``ignore_columns``; ``trained_on``: the CSV the run named (None for the public
    copy), as text to show, never to open; and ``fitted_on``: what the data module recorded of the rows
    the model was fitted on (``DataRecord``), or None for a checkpoint without that record.
    """
    checkpoint = read_checkpoint(path)
    try:
        model = network(checkpoint)
        split = _split_settings(checkpoint) | {"fitted_on": data_record(checkpoint)}
    except InputError as err:
        raise InputError(f"{path}: not a usable pima_lightning checkpoint ({err})") from None
    return model.eval(), split


def read_checkpoint(path: str | Path, setting: str = "ckpt_path") -> dict:
    """The contents of a checkpoint file, read as data (torch's weights-only unpickler) once its size is
    known to be honest: the zip archive torch.save writes, uncompressed, whose entries hold no more bytes
    than the file does, and whose tensors hold the numbers they claim (no expanded, stride-0 tensors).
    The one reader of checkpoints: evaluate, predict, export, summary and resuming all use it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(
            f"{setting}={path} is a folder; pass a checkpoint in it, e.g. {path}/checkpoints/last.ckpt"
        )
    if not path.is_file():
        raise InputError(
            f"{setting}={path}: checkpoint not found; pass ckpt_path=<run dir>/checkpoints/last.ckpt"
        )
    check_regular(path, setting, MAX_CHECKPOINT_BYTES, kind="checkpoint")
    _check_archive(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports unreadable files with many exception types
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise InputError(
            f"{path}: not a pima_lightning checkpoint ({type(err).__name__}: {reason})"
        ) from None
    _check_tensors(path, checkpoint)
    return checkpoint


def _check_archive(path: Path) -> None:
    """Refuse a file that is not torch.save's archive, or whose entries would inflate past its size."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError(
            f"{path}: not a pima_lightning checkpoint (not the zip archive torch.save writes)"
        ) from None
    compressed = [entry.filename for entry in entries if entry.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise InputError(
            f"{path}: not a checkpoint torch.save wrote: its entry {compressed[0][:80]!r} is compressed"
        )
    claimed, held = sum(entry.file_size for entry in entries), path.stat().st_size
    if claimed > held:
        raise InputError(
            f"{path}: not a usable checkpoint: its entries claim {claimed:,} bytes, the file holds {held:,}"
        )


def _check_tensors(path: Path, checkpoint) -> None:
    """Refuse tensors that claim more numbers than their storage holds, or that are not plain dense
    arrays, anywhere in the checkpoint (a walk of at most ``MAX_DEPTH`` levels)."""
    pending = [(checkpoint, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: not a usable checkpoint: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            pending += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list | tuple):
            pending += [(item, depth + 1) for item in value]
        elif isinstance(value, torch.Tensor):
            if value.layout != torch.strided or value.is_quantized:
                raise InputError(f"{path}: not a usable checkpoint: a tensor of layout {value.layout}")
            stored = value.untyped_storage().nbytes() // max(value.element_size(), 1)
            if value.numel() > stored:
                raise InputError(
                    f"{path}: not a usable checkpoint: a tensor of shape {tuple(value.shape)} "
                    f"({value.numel():,} numbers) over {stored:,} stored numbers (an expanded tensor)"
                )


def network(checkpoint: dict) -> PimaClassifier:
    """The model rebuilt from the checkpoint's checked sizes and weights."""
    saved = _mapping(checkpoint, "hyper_parameters")
    settings = check_settings(MODEL, {key: saved.get(key, ADDED_LATER.get(key)) for key in MODEL})
    n_features, hidden, replicas = settings["n_features"], settings["hidden"], settings["replicas"]
    names, indicators = settings["feature_names"], settings["missing_indicators"]
    if names is not None and len(names) != n_features:
        raise InputError(f"feature_names: expected {n_features} names, found {len(names)}")
    classes = settings["classes"]
    if classes is not None and not 2 <= len(classes) <= MAX_CLASSES:
        raise InputError(f"classes: expected the names of 2 to {MAX_CLASSES} classes, found {len(classes)}")
    if indicators and indicators[-1] >= n_features:
        raise InputError(f"missing_indicators: column {indicators[-1]} of {n_features} features")
    categories = settings["categories"] or {}
    if categories and max(categories) >= n_features:
        raise InputError(f"categories: column {max(categories)} of {n_features} features")
    codes = sum(len(names) for names in categories.values())
    try:
        marked_columns(settings["missing_values"], n_features, names)
    except ValueError as err:
        raise InputError(f"missing_values: {printable(str(err))}") from None
    width = n_features + len(indicators) + codes  # each categorical feature: its codes' inputs, plus one
    check_network_size(width, hidden, replicas)
    state = _mapping(checkpoint, "state_dict")
    with_fill(state, n_features)  # a checkpoint from before models filled missing values
    if not all(isinstance(value, torch.Tensor) and value.is_floating_point() for value in state.values()):
        raise InputError("state_dict: expected floating-point tensors only")
    # sizes must describe the weights the file holds, before a network of those sizes is allocated
    implied = n_features + codes + 2 * width + parameter_count(width, hidden, replicas, outputs(classes))
    held = sum(value.numel() for value in state.values())
    if implied != held:
        raise InputError(f"hyper_parameters describe {implied} numbers, the state_dict holds {held}")
    model = classifier(**settings)
    model.on_load_checkpoint(checkpoint)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InputError(f"state_dict: {' '.join(str(err).split())[:300]}") from None
    if not all(torch.isfinite(value).all() for value in model.state_dict().values()):
        raise InputError("state_dict: weights or scaling statistics that are not finite numbers")
    if not bool((model.preprocess.scale > 0).all()):
        raise InputError("state_dict: feature scales must be positive")
    return model


# which of a file's columns are the label and the features, on any file the model scores
COLUMN_SETTINGS = ("label_column", "ignore_columns", "missing_values", "categorical_columns")
# the data settings an evaluation of a checkpoint's held-out rows reads: its split, never its files
SPLIT_SETTINGS = ("split", "test_size", "split_seed", "stratify", "val_size", *COLUMN_SETTINGS,
                  "folds", "fold", "fold_seed", "fold_scope")  # fmt: skip


def _split_settings(checkpoint) -> dict:
    """The held-out split's settings, checked; the data paths and URL are left out (``trained_on``: the
    path's text, to show)."""
    saved = _mapping(checkpoint, "datamodule_hyper_parameters")
    folds = "folds" in saved and saved["folds"] != 0
    keys = [key for key in SPLIT_SETTINGS if folds or not key.startswith("fold")] + ["path"]
    settings = check_settings(DATA, {key: saved.get(key, ADDED_LATER.get(key)) for key in keys})
    return settings | {"trained_on": settings.pop("path")}


class DataRecord(NamedTuple):
    """What a run was fitted on, by content: its file's SHA-256 and its rows' fingerprints (sorted)."""

    sha256: str
    rows: np.ndarray


DATA_MODULES = ("PimaDataModule", "EnsembleDataModule")  # where Lightning saves the data module's state


def data_record(checkpoint: dict) -> DataRecord | None:
    """The data module's record of the rows the model was fitted on, checked, or None without one."""
    state = next((checkpoint[key] for key in DATA_MODULES if isinstance(checkpoint.get(key), dict)), {})
    if "data_sha256" not in state and "trained_rows" not in state:
        return None
    digest, rows = state.get("data_sha256"), state.get("trained_rows")
    if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise InputError(f"data_sha256: expected a SHA-256 in hex, found {printable(repr(digest))[:80]}")
    if not (isinstance(rows, torch.Tensor) and rows.dtype == torch.int64 and rows.dim() == 1):
        raise InputError("trained_rows: expected a list of 64-bit row fingerprints")
    return DataRecord(digest, np.sort(rows.numpy()))


def _mapping(checkpoint, key: str) -> dict:
    value = checkpoint.get(key) if isinstance(checkpoint, dict) else None
    if not isinstance(value, dict):
        raise InputError(f"{key}: missing")
    return value
