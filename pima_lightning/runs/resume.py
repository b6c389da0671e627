"""What a resumed run takes from its checkpoint: each part checked or replaced before the Trainer sees it.

Lightning restores a checkpoint's trainer state as it finds it: the optimizer's hyperparameters,
loop counters, callback states (ModelCheckpoint removes the file its state calls the previous best,
recursively and, for a ``local://`` path, anywhere) and the data module's random state. A checkpoint
may come from anywhere, so the run resumes from a copy in which

- the network and its weights are those ``checkpoint.network`` accepts for inference (one loader);
- the settings that cannot change (declared `fixed` in `settings/declared.py`) equal the config's;
- the optimizer's hyperparameters are the config's, its buffers restored only when each has its
  parameter's shape and finite values (with a scheduler, the learning rate it reached is kept);
- the scheduler's settings are the config's, only its progress restored: its public epoch and plateau
  counters, and the learning rate it reached (the optimizer's saved rate); none of torch's private
  scheduler attributes is read; the loop counters have the structure and types this Lightning writes;
- a callback's state is restored only for a callback of this run, with its settings (a patience, a
  folder) from the config; a ModelCheckpoint keeps its scores and none of its saved paths: its best
  checkpoint is the file of its own name beside ``ckpt_path``, copied over (so the best epoch survives);
- the data module's random state is a generator state of this torch.
"""

import copy
import logging
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.migration import migrate_checkpoint
from packaging.version import InvalidVersion, Version

from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import network, read_checkpoint
from pima_lightning.model import PimaClassifier
from pima_lightning.settings.declared import ADDED_LATER, DATA, MODEL, fixed

log = logging.getLogger(__name__)

# settings a run cannot change when it resumes: the checkpoint's network, scaling, optimizer state and data
# order would silently win over them, or not fit them (the model and data module hyperparameters by name)
FIXED_MODEL, FIXED_DATA = fixed(MODEL), fixed(DATA)
# a scheduler's progress, its public attributes (torch documents them: LRScheduler.last_epoch, and
# ReduceLROnPlateau's best, num_bad_epochs and cooldown_counter); the rest of its state is its settings,
# taken from the config, or torch's private bookkeeping, left as a fresh scheduler has it
SCHEDULER_PROGRESS = ("last_epoch", "best", "num_bad_epochs", "cooldown_counter")
LOOPS = ("fit_loop", "validate_loop", "test_loop", "predict_loop")  # the loops a checkpoint saves
SETTINGS = {"patience", "dirpath", "monitor", "mode"}  # in a callback's state, taken from the config
# the parts of a checkpoint that Lightning and this package read; the rest is left out of the copy
KEPT = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops", "callbacks",
        "optimizer_states", "lr_schedulers", "hparams_name", "hyper_parameters", "datamodule_hparams_name",
        "datamodule_hyper_parameters")  # fmt: skip


def resumable_checkpoint(
    ckpt_path: str | Path, model: PimaClassifier, datamodule: L.LightningDataModule, trainer: L.Trainer,
    scratch: Path,
) -> tuple[Path, int]:  # fmt: skip
    """Return ``(the checked copy of ckpt_path in scratch to resume from, the epoch it resumes after)``;
    raise InputError (one line naming the part and what is wrong) for a checkpoint this run cannot
    resume. ``ckpt_path`` itself is never changed."""
    checkpoint = read_checkpoint(ckpt_path)
    try:
        network(checkpoint)  # the same checks as for inference
        _check_same_settings(checkpoint, model, dict(datamodule.hparams))
        _migrate(checkpoint)
        # the layout this Lightning's loops save (Lightning has no public description of it)
        loops = {name: getattr(trainer, name).state_dict() for name in LOOPS}
        copy_ = {key: checkpoint[key] for key in KEPT if key in checkpoint}
        copy_ |= {
            "pytorch-lightning_version": L.__version__,  # migrated: its layout is this Lightning's now
            "epoch": _like("epoch", checkpoint.get("epoch"), 0),
            "global_step": _like("global_step", checkpoint.get("global_step"), 0),
            "loops": _like("loops", checkpoint.get("loops"), loops),
            "callbacks": _callback_states(checkpoint.get("callbacks") or {}, trainer, Path(ckpt_path)),
            **_optimizer_states(checkpoint, model),
        }
        data_key = type(datamodule).__qualname__
        if data_key in checkpoint:
            copy_[data_key] = _random_state(checkpoint[data_key])
    except InputError as err:
        raise InputError(f"ckpt_path={ckpt_path}: cannot resume from it ({err})") from None
    resumed = scratch / "resume.ckpt"
    torch.save(copy_, resumed)
    return resumed, copy_["epoch"]


def _check_same_settings(checkpoint: dict, model: PimaClassifier, data_settings: dict) -> None:
    """Raise InputError naming each setting that differs between the checkpoint's run and this one."""
    saved_model, saved_data = checkpoint["hyper_parameters"], checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(saved_data, dict):
        raise InputError("datamodule_hyper_parameters: missing")
    # a setting a checkpoint predates (label_column, folds) had the value ADDED_LATER says
    now = {
        "model": {key: model.hparams.get(key, ADDED_LATER.get(key)) for key in FIXED_MODEL},
        "data": {key: data_settings.get(key) for key in FIXED_DATA},
    }
    then = {
        section: {key: saved.get(key, ADDED_LATER.get(key, value)) for key, value in now[section].items()}
        for section, saved in (("model", saved_model), ("data", saved_data))
    }
    then, now = _flat("", then), _flat("", now)
    changed = [
        f"{key.replace('model.optimizer', 'optimizer').replace('model.scheduler', 'scheduler')} "
        f"({then.get(key)!r:.120} then, {now.get(key)!r:.120} now)"
        for key in sorted(then.keys() | now.keys())
        if then.get(key) != now.get(key)
    ]
    if changed:
        raise InputError(
            f"it was trained with other settings, which cannot change when a run resumes: "
            f"{'; '.join(changed)}; resume with the run's own settings (<run dir>/.hydra/overrides.yaml), "
            "or train anew without ckpt_path"
        )


def _flat(prefix: str, value) -> dict:
    """``{"model.hidden": [12, 6], "model.optimizer.lr": 0.01, ...}``; tuples compare as lists."""
    if isinstance(value, dict):
        return {
            key: item
            for name, child in value.items()
            for key, item in _flat(f"{prefix}{name}.", child).items()
        }
    return {prefix.removesuffix("."): list(value) if isinstance(value, tuple) else value}


def _migrate(checkpoint: dict) -> None:
    """Lightning's own migrations (its public ``migrate_checkpoint``, what its loader applies) of a
    checkpoint of an older Lightning, so that it is checked against this one's loop layout, not refused
    for it; a version that is none, or newer, and parts they cannot migrate are refused."""
    written = checkpoint.get("pytorch-lightning_version")
    try:
        version = Version(written) if isinstance(written, str) and len(written) <= 40 else None
    except InvalidVersion:
        version = None
    if version is None:
        raise InputError(
            f"pytorch-lightning_version: expected a version such as {L.__version__}, found {written!r:.60}"
        )
    if version > Version(L.__version__):
        raise InputError(f"written by Lightning {version}, newer than this Lightning {L.__version__}")
    try:
        migrate_checkpoint(checkpoint)
    except Exception as err:  # the migrations index into the layout they expect: KeyError, TypeError, ...
        raise InputError(
            f"its Lightning {written} layout could not be migrated to {L.__version__}'s "
            f"({type(err).__name__}: {str(err)[:80]})"
        ) from None


def _like(where: str, value, reference):
    """``value`` if it has the form of ``reference``, what this Lightning and torch save there: the same
    keys at every level, a count for a count, a number (not NaN) for a number, a one-number tensor for a
    tensor, true or false, short text; where the reference is None, None or a plain value."""
    if isinstance(reference, dict):
        if not isinstance(value, dict) or set(value) != set(reference):
            found = sorted(map(str, value)) if isinstance(value, dict) else type(value).__name__
            raise InputError(f"{where}: expected the keys {sorted(reference)}, found {found!s:.120}")
        return {key: _like(f"{where}.{key}", value[key], item) for key, item in reference.items()}
    number = isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN
    if isinstance(reference, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(reference, int):
        ok, what = number and isinstance(value, int) and 0 <= value < 2**53, "a count"
    elif isinstance(reference, float):
        ok, what = number, "a number"
    elif isinstance(reference, torch.Tensor):
        ok = isinstance(value, torch.Tensor) and value.numel() == 1 and not value.isnan().any()
        what = "a one-number tensor"
    elif isinstance(reference, str):
        ok, what = isinstance(value, str) and len(value) <= 1000, "text"
    else:
        ok, what = reference is None and (value is None or number or isinstance(value, str)), "a plain value"
    if not ok:
        raise InputError(f"{where}: expected {what}, found {value!r:.60}")
    return value


def _callback_states(states, trainer: L.Trainer, ckpt_path: Path) -> dict:
    """The states of this run's callbacks, each checked; the others are left out (Lightning ignores them)."""
    if not isinstance(states, dict):
        raise InputError(f"callbacks: expected a mapping of callback states, found {type(states).__name__}")
    kept = {}
    for callback in (callback for callback in trainer.callbacks if callback.state_key in states):
        state, fresh, name = states[callback.state_key], callback.state_dict(), type(callback).__name__
        if not isinstance(state, dict):
            raise InputError(f"callbacks: {name}'s state is not a mapping")
        if isinstance(callback, ModelCheckpoint):
            state = _model_checkpoint_state(state, callback, ckpt_path)
        else:  # its progress, of the types it saves; its settings are the config's
            state = fresh | {key: state[key] for key in fresh.keys() - SETTINGS if key in state}
            _like(f"callbacks: {name}", state, fresh)
        try:  # a state that its callback cannot take is refused here, not in the middle of fit
            copy.deepcopy(callback).load_state_dict(state)
        except Exception as err:
            raise InputError(f"callbacks: {name}'s state: {type(err).__name__}: {err!s:.120}") from None
        kept[callback.state_key] = state
    return kept


def _model_checkpoint_state(state: dict, callback: ModelCheckpoint, ckpt_path: Path) -> dict:
    """A ModelCheckpoint's scores, and none of the paths its state names: Lightning deletes or trusts
    those at the next save, so a resume never reads them. What they were for, the best epoch, is found by
    name instead: the file this callback writes (``best.ckpt``) in the folder of ``ckpt_path``, checked
    and copied into this run's folder, is the callback's best again."""
    if not isinstance(state.get("best_k_models") or {}, dict):
        raise InputError("callbacks: ModelCheckpoint.best_k_models is not a mapping")
    scores = {key: state.get(key) for key in ("best_model_score", "current_score", "kth_value")}
    for key, value in scores.items():
        if value is not None:
            _like(f"callbacks: ModelCheckpoint.{key}", value, torch.tensor(0.0))
    kept = callback.state_dict() | scores
    if scores["best_model_score"] is not None and (best := _best_checkpoint(callback, ckpt_path)):
        kept |= {"best_model_path": best, "kth_best_model_path": best,
                 "best_k_models": {best: scores["best_model_score"]}}  # fmt: skip
    home = ckpt_path.expanduser().resolve().parent
    named = [state.get("best_model_path"), state.get("last_model_path"), *(state.get("best_k_models") or {})]
    elsewhere = [path for path in named if path and (not isinstance(path, str) or _elsewhere(path, home))]
    if elsewhere:  # a run's own state names files beside its checkpoint: say so when it names another place
        log.info("ModelCheckpoint's saved paths from %s not restored (%s): a resume reads none", ckpt_path,
                 ", ".join(repr(str(path)[:200]) for path in elsewhere[:3]))  # fmt: skip
    return kept


def _elsewhere(path: str, folder: Path) -> bool:
    """Whether ``path`` is anything but a plain local file in ``folder``."""
    return "://" in path or "::" in path or Path(path).resolve().parent != folder


def _best_checkpoint(callback: ModelCheckpoint, ckpt_path: Path) -> str | None:
    """This run's copy of the best checkpoint the callback wrote beside ``ckpt_path`` (by its configured
    file name, e.g. ``best.ckpt``), checked as every command checks a checkpoint; None without one."""
    if not (callback.monitor and callback.dirpath and callback.filename and "{" not in callback.filename):
        return None
    name = f"{callback.filename}{callback.FILE_EXTENSION}"
    source, target = ckpt_path.expanduser().resolve().parent / name, Path(callback.dirpath).resolve() / name
    if not source.is_file() or source.is_symlink():
        return None
    if source != target and not target.exists():
        network(read_checkpoint(source))  # the copy is what the test scores: it must load
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return str(target)


def _optimizer_states(checkpoint: dict, model: PimaClassifier) -> dict:
    """``optimizer_states`` and ``lr_schedulers`` rebuilt from the config's optimizer and scheduler, with
    the checkpoint's buffers (each of its parameter's shape, finite) and the scheduler's progress."""
    configured = model.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    scheduler = configured["lr_scheduler"]["scheduler"] if isinstance(configured, dict) else None
    saved = checkpoint.get("optimizer_states")
    if not (isinstance(saved, list) and len(saved) == 1 and isinstance(saved[0], dict)):
        raise InputError("optimizer_states: expected the state of one optimizer")
    parameters, buffers = list(model.parameters()), saved[0].get("state", {})
    if not isinstance(buffers, dict):
        raise InputError("optimizer_states: its state is not a mapping")
    for index, state in buffers.items():
        if not (isinstance(index, int) and 0 <= index < len(parameters) and isinstance(state, dict)):
            raise InputError(f"optimizer_states: a state for parameter {index!r:.40}, of {len(parameters)}")
        for name, value in state.items():
            where, shape = f"optimizer_states: parameter {index}'s {name!s:.40}", parameters[index].shape
            if value is None or (isinstance(value, int | float) and abs(value) < float("inf")):
                continue
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise InputError(f"{where} is not a float tensor")
            if value.shape != shape and not (name == "step" and value.numel() == 1):
                raise InputError(f"{where} has shape {tuple(value.shape)}, the parameter {tuple(shape)}")
            if not torch.isfinite(value).all():
                raise InputError(f"{where} holds non-finite numbers")
    groups, schedulers = optimizer.state_dict()["param_groups"], []
    if scheduler is not None:  # its progress, and the rate it had reached (the optimizer's saved groups)
        saved_schedulers = checkpoint.get("lr_schedulers")
        if not (isinstance(saved_schedulers, list) and len(saved_schedulers) == 1):
            raise InputError("lr_schedulers: expected the state of one scheduler")
        fresh = scheduler.state_dict()
        progress = {
            key: saved_schedulers[0].get(key, fresh[key]) for key in SCHEDULER_PROGRESS if key in fresh
        }
        schedulers = [fresh | _like("lr_schedulers", progress, {key: fresh[key] for key in progress})]
        groups = [group | {"lr": lr} for group, lr in zip(groups, _rates(saved[0], len(groups)), strict=True)]
    return {"optimizer_states": [{"state": buffers, "param_groups": groups}], "lr_schedulers": schedulers}


def _rates(saved: dict, count: int) -> list[float]:
    """The learning rate of each of the ``count`` parameter groups of a saved optimizer state."""
    groups = saved.get("param_groups")
    rates = [group.get("lr") if isinstance(group, dict) else None for group in groups or []]
    if not (isinstance(groups, list) and len(rates) == count):
        raise InputError(f"optimizer_states: expected {count} parameter group(s)")
    if not all(isinstance(lr, int | float) and 0 < lr < float("inf") for lr in rates):
        raise InputError(f"optimizer_states: learning rates {rates!r:.60}: expected positive numbers")
    return [float(lr) for lr in rates]


def _random_state(state) -> dict:
    """The data module's random state: torch generator states of this torch's size, not all zero (torch's
    generator cannot start from that). What the module records of its data is left out: the resumed run
    records its own."""
    recorded = {"data_sha256", "trained_rows"}
    if not isinstance(state, dict) or set(state) - {"torch_rng_state", "cuda_rng_states", *recorded}:
        raise InputError("the data module's state: expected torch_rng_state (and cuda_rng_states)")
    reference, rng, cuda = torch.get_rng_state(), state.get("torch_rng_state"), state.get("cuda_rng_states")
    if rng is not None and not (
        isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.shape == reference.shape
    ):
        raise InputError(f"the data module's torch_rng_state: expected {reference.numel()} bytes")
    if rng is not None and not rng.any():
        raise InputError("the data module's torch_rng_state: all zero, which no generator saves")
    if cuda is not None and not (
        isinstance(cuda, list) and all(isinstance(s, torch.Tensor) and s.dtype == torch.uint8 for s in cuda)
    ):
        raise InputError("the data module's cuda_rng_states: expected generator states")
    return {key: value for key, value in state.items() if key not in recorded}
