"""Load what a training run saved, as data: the network's sizes and weights, and the split it was tested on.

A checkpoint may come from anywhere, so nothing in it is built or followed. It is read with torch's
weights-only unpickler; the network is rebuilt from its sizes, each checked for type and range, and
its weights are loaded strictly (the expected names and shapes, finite values); the optimizer and
scheduler configs are refused unless ``check_buildable_config`` allows them, and never built; of the
data settings only the split's numbers are kept: the files, folders and URLs it names are not used.
"""

import logging
from itertools import pairwise
from pathlib import Path

import torch

from pima_lightning.checks import number, whole
from pima_lightning.config_checks import check_buildable_config
from pima_lightning.data import FOLD_SCOPES, SPLITS
from pima_lightning.ensemble import classifier
from pima_lightning.errors import InputError
from pima_lightning.model import PimaClassifier

log = logging.getLogger(__name__)
LIMITS = {"n_features": 100_000, "width": 100_000, "layers": 100, "replicas": 100_000}


def load_checkpoint(path: str | Path) -> tuple[PimaClassifier, dict]:
    """Return ``(model in eval mode, the split settings it was trained with)``: what
    ``PimaClassifier.load_from_checkpoint`` returns for a checkpoint of one's own, for a file from anywhere.

    The split settings are ``split``, ``test_size``, ``split_seed``, ``stratify``, ``val_size`` and
    ``label_column``, and ``trained_on``: the CSV the run named (None for the public copy), as text to
    show, never to open.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports unreadable files with many exception types
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise InputError(
            f"{path}: not a pima_lightning checkpoint ({type(err).__name__}: {reason})"
        ) from None
    try:
        model = _network(checkpoint)
        split = _split_settings(checkpoint)
    except InputError as err:
        raise InputError(f"{path}: not a usable pima_lightning checkpoint ({err})") from None
    return model.eval(), split


def _network(checkpoint) -> PimaClassifier:
    """The model rebuilt from the checkpoint's checked sizes and weights."""
    settings = _mapping(checkpoint, "hyper_parameters")
    hidden = settings.get("hidden")
    if not isinstance(hidden, list | tuple) or not 1 <= len(hidden) <= LIMITS["layers"]:
        raise InputError(
            f"hidden: expected a list of 1 to {LIMITS['layers']} layer widths, found {hidden!r:.80}"
        )
    for group in ("optimizer", "scheduler"):
        if settings.get(group):
            check_buildable_config(group, settings[group])
    n_features = whole("n_features", settings.get("n_features"), 1, LIMITS["n_features"])
    widths = [whole("hidden width", width, 1, LIMITS["width"]) for width in hidden]
    replicas = whole("replicas", settings.get("replicas", 1), 1, LIMITS["replicas"])
    state = _mapping(checkpoint, "state_dict")
    if not all(isinstance(value, torch.Tensor) and value.is_floating_point() for value in state.values()):
        raise InputError("state_dict: expected floating-point tensors only")
    # sizes must describe the weights the file holds, before a network of those sizes is allocated
    sizes = [n_features, *widths, 1]
    implied = 2 * n_features + replicas * sum(a * b + b for a, b in pairwise(sizes))
    held = sum(value.numel() for value in state.values())
    if implied != held:
        raise InputError(f"hyper_parameters describe {implied} numbers, the state_dict holds {held}")
    names = settings.get("feature_names")
    if names is not None and (
        not isinstance(names, list | tuple)
        or len(names) != n_features
        or not all(isinstance(name, str) and len(name) <= 200 for name in names)
    ):
        raise InputError(f"feature_names: expected {n_features} names, found {names!r:.80}")
    model = classifier(
        replicas,
        n_features=n_features,
        feature_names=names,
        hidden=widths,
        dropout=number("dropout", settings.get("dropout"), 0, 1, high_open=True),
        l1=number("l1", settings.get("l1", 0.0), 0),
        optimizer=settings.get("optimizer") or None,
        scheduler=settings.get("scheduler") or None,
    )
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


def _split_settings(checkpoint) -> dict:
    """The held-out split's settings, checked; the data paths and URL are left out."""
    settings = _mapping(checkpoint, "datamodule_hyper_parameters")
    split = settings.get("split")
    if split not in SPLITS:
        raise InputError(f"split: expected one of {', '.join(SPLITS)}, found {split!r:.80}")
    stratify = settings.get("stratify")
    if not isinstance(stratify, bool):
        raise InputError(f"stratify: expected true or false, found {stratify!r:.80}")
    label_column = settings.get("label_column")
    if label_column is not None and not (isinstance(label_column, str) and len(label_column) <= 200):
        raise InputError(f"label_column: expected a column name or nothing, found {label_column!r:.80}")
    trained_on = settings.get("path")
    if trained_on is not None and not isinstance(trained_on, str):
        raise InputError(f"path: expected text or nothing, found {type(trained_on).__name__}")
    return {
        "split": split,
        "test_size": number("test_size", settings.get("test_size"), 0, 1, low_open=True, high_open=True),
        "split_seed": whole("split_seed", settings.get("split_seed"), 0, 2**32 - 1),
        "stratify": stratify,
        "val_size": number("val_size", settings.get("val_size"), 0, 1, high_open=True),
        "label_column": label_column,
        **_fold_settings(settings),
        "trained_on": trained_on,
    }


def _fold_settings(settings: dict) -> dict:
    """The cross-validation fold a run held out (none for checkpoints from before folds existed)."""
    folds = whole("folds", settings.get("folds", 0), 0, 1_000)
    if not folds:
        return {}
    scope = settings.get("fold_scope")
    if scope not in FOLD_SCOPES:
        raise InputError(f"fold_scope: expected one of {', '.join(FOLD_SCOPES)}, found {scope!r:.80}")
    return {
        "folds": folds,
        "fold": whole("fold", settings.get("fold"), 0, folds - 1),
        "fold_seed": whole("fold_seed", settings.get("fold_seed"), 0, 2**32 - 1),
        "fold_scope": scope,
    }


def _mapping(checkpoint, key: str) -> dict:
    value = checkpoint.get(key) if isinstance(checkpoint, dict) else None
    if not isinstance(value, dict):
        raise InputError(f"{key}: missing")
    return value


# settings a run cannot change when it resumes: the checkpoint's network, scaling, optimizer state and data
# order would silently win over them, or not fit them (the model and data module hyperparameters by name)
FIXED_MODEL = ("n_features", "feature_names", "hidden", "dropout", "l1", "replicas", "optimizer", "scheduler")
RESUMED_DEFAULTS = {"replicas": 1}  # a plain model's checkpoint has no replicas
FIXED_DATA = ("path", "label_column", "sha256", "split", "test_size", "split_seed", "stratify", "val_size",
              "standardize", "batch_size", "folds", "fold", "fold_seed", "fold_scope")  # fmt: skip


def check_resumable(ckpt_path: str | Path, model: PimaClassifier, data_settings: dict) -> int:
    """Raise InputError unless the run in ``ckpt_path`` was trained with the settings ``model`` and
    ``data_settings`` (the data module's hyperparameters) now have, naming each one that differs;
    return the epoch it resumes at. Other settings (``trainer.max_epochs``, the callbacks) may change."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise InputError(f"ckpt_path={path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        saved_model = _mapping(checkpoint, "hyper_parameters")
        saved_data = _mapping(checkpoint, "datamodule_hyper_parameters")
    except InputError as err:
        raise InputError(f"ckpt_path={path}: not a pima_lightning checkpoint ({err})") from None
    except Exception as err:  # torch reports unreadable files with many exception types
        raise InputError(
            f"ckpt_path={path}: not a pima_lightning checkpoint ({type(err).__name__})"
        ) from None
    # a setting a checkpoint predates (label_column, folds) had the value that is its default now
    now_model = {key: model.hparams.get(key, RESUMED_DEFAULTS.get(key)) for key in FIXED_MODEL}
    then = _flat(
        "model", {key: saved_model.get(key, RESUMED_DEFAULTS.get(key, now_model[key])) for key in FIXED_MODEL}
    )
    then |= _flat("data", {key: saved_data.get(key, data_settings.get(key)) for key in FIXED_DATA})
    now = _flat("model", now_model)
    now |= _flat("data", {key: data_settings.get(key) for key in FIXED_DATA})
    changed = [
        f"{key.replace('model.optimizer', 'optimizer').replace('model.scheduler', 'scheduler')} "
        f"({then.get(key)!r:.120} then, {now.get(key)!r:.120} now)"
        for key in sorted(then.keys() | now.keys())
        if then.get(key) != now.get(key)
    ]
    if changed:
        raise InputError(
            f"ckpt_path={path} was trained with other settings, which cannot change when a run resumes: "
            f"{'; '.join(changed)}; resume with the run's own settings (<run dir>/.hydra/overrides.yaml), "
            "or train anew without ckpt_path"
        )
    return checkpoint.get("epoch", 0)


def _flat(prefix: str, value) -> dict:
    """``{"model.hidden": [12, 6], "model.optimizer.lr": 0.01, ...}``; tuples compare as lists."""
    if isinstance(value, dict):
        return {
            key: item
            for name, child in value.items()
            for key, item in _flat(f"{prefix}.{name}", child).items()
        }
    return {prefix: list(value) if isinstance(value, tuple) else value}


# where a callback's state names files: ModelCheckpoint's (Lightning removes its "previous best" at a save)
PATH_STATES = ("dirpath", "best_model_path", "kth_best_model_path", "last_model_path")


def resume_checkpoint(ckpt_path: str | Path, checkpoint_dir: Path, scratch: Path) -> Path:
    """The checkpoint a run resumes from: ``ckpt_path`` itself, or, when a callback's state in it names a
    path outside ``checkpoint_dir`` (this run's checkpoint folder), a copy in ``scratch`` without that
    callback's state, each one left out with a notice. ``ckpt_path`` itself is never changed.

    Lightning restores callback states as they are, and at its next save ModelCheckpoint removes the
    file its state calls the previous best, recursively and, for a ``local://`` path, anywhere.
    """
    checkpoint = torch.load(Path(ckpt_path).expanduser(), map_location="cpu", weights_only=True)
    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return Path(ckpt_path)
    kept = {}
    for key, state in states.items():
        outside = [path for path in _state_paths(state) if not _inside(path, checkpoint_dir)]
        if outside:
            log.info(
                "%s's state from %s not restored: it names %s, outside this run's %s",
                str(key).split("{")[0][:80],
                ckpt_path,
                ", ".join(repr(str(path)[:200]) for path in outside[:3]),
                checkpoint_dir,
            )
        else:
            kept[key] = state
    if len(kept) == len(states):
        return Path(ckpt_path)
    copy = scratch / "resume.ckpt"
    torch.save({**checkpoint, "callbacks": kept}, copy)
    return copy


def _state_paths(state) -> list:
    """The paths a callback's state names (ModelCheckpoint's files and folder, its top-k's keys)."""
    if not isinstance(state, dict):
        return []
    paths = [state.get(key) for key in PATH_STATES]
    if isinstance(state.get("best_k_models"), dict):
        paths += list(state["best_k_models"])
    return [path for path in paths if path]


def _inside(path, folder: Path) -> bool:
    """Whether ``path`` is a plain local path inside ``folder`` (or the folder itself)."""
    if not isinstance(path, str) or "://" in path or "::" in path:
        return False
    resolved, folder = Path(path).resolve(), Path(folder).resolve()
    return resolved == folder or folder in resolved.parents
