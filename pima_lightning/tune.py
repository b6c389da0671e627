"""Hyperparameter search with Optuna: ``python -m pima_lightning.tune [tune.n_trials=30] [train overrides]``.

Each trial composes the same Hydra config as ``train`` with the sampled learning rate, batch size,
dropout, weight decay and optimizer, and is scored by cross-validation on the training rows: its mean
validation accuracy over ``tune.folds`` stratified folds of them (pruned fold by fold on the running
mean), or with ``tune.folds=0`` on one validation part of ``tune.val_size`` of them (pruned epoch by
epoch). The held-out test rows are touched once, after the search: the best trial's settings are
trained on all training rows and tested (with folds=0, the best trial's own model is). The study
lives in ``study.db`` (SQLite) in the run dir: rerun with ``hydra.run.dir=<that dir>`` to resume it.
"""

import hashlib
import logging
import math
import statistics
from importlib import resources
from pathlib import Path

import hydra
import optuna
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna_integration import PyTorchLightningPruningCallback

from pima_lightning.atomic import write_json
from pima_lightning.checks import number, whole
from pima_lightning.cv import fold_overrides
from pima_lightning.errors import InputError, one_line_errors
from pima_lightning.evaluate import evaluate
from pima_lightning.train import command_line_train_overrides, train

log = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# command-line overrides that do not change what a trial learns, so a resumed study may differ in them
UNCOMPARED = (
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "torch_threads",
    "trainer.accelerator",
)


def trial_overrides(trial: optuna.Trial, space: DictConfig) -> list[str]:
    """Sample one point of the search space, as Hydra overrides of the train config."""
    optimizer = trial.suggest_categorical("optimizer", list(space.optimizer))
    return [
        f"optimizer={optimizer}",
        f"optimizer.lr={trial.suggest_float('lr', *space.lr, log=True)}",
        f"optimizer.weight_decay={trial.suggest_float('weight_decay', *space.weight_decay, log=True)}",
        f"data.batch_size={trial.suggest_categorical('batch_size', list(space.batch_size))}",
        f"model.dropout={trial.suggest_float('dropout', *space.dropout)}",
        f"trainer.max_epochs={trial.suggest_categorical('max_epochs', list(space.max_epochs))}",
    ]


def check_search_settings(tune: DictConfig) -> None:
    """Raise InputError for the first ``tune.*`` setting that cannot run a search."""
    whole("tune.n_trials", tune.n_trials)
    if tune.folds != 0 and (
        isinstance(tune.folds, bool) or not isinstance(tune.folds, int) or tune.folds < 2
    ):
        raise InputError(f"tune.folds={tune.folds}: expected 0 (one validation part) or a whole number >= 2")
    for name in ("fold_seed", "sampler_seed"):
        whole(f"tune.{name}", tune[name], 0, 2**32 - 1)
    for name in ("startup_trials", "warmup_folds", "warmup_epochs"):
        whole(f"tune.{name}", tune[name], 0)
    number("tune.val_size", tune.val_size, 0, 1, low_open=True, high_open=True, what="a fraction")
    space = tune.space
    for name, low_limit, high_limit in (("lr", 0, None), ("weight_decay", 0, None), ("dropout", 0, 1)):
        bounds = list(space[name]) if OmegaConf.is_list(space[name]) else space[name]
        numbers = (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(
                isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds
            )
        )
        ordered = (
            numbers
            and (bounds[0] > low_limit if name != "dropout" else bounds[0] >= 0)
            and bounds[0] < bounds[1]
        )
        if not ordered or (high_limit is not None and bounds[1] >= high_limit):
            within = "0 <= low < high < 1" if name == "dropout" else "0 < low < high"
            raise InputError(f"tune.space.{name}={bounds}: expected [low, high] with {within}")
    for name in ("batch_size", "max_epochs"):
        values = list(space[name]) if OmegaConf.is_list(space[name]) else [space[name]]
        if not values:
            raise InputError(f"tune.space.{name}: expected a list of whole numbers >= 1, e.g. [16, 32]")
        for value in values:
            whole(f"tune.space.{name} value", value)
    choices = sorted(
        entry.name.removesuffix(".yaml")
        for entry in (resources.files("pima_lightning.conf") / "optimizer").iterdir()
        if entry.name.endswith(".yaml")
    )
    optimizers = list(space.optimizer) if OmegaConf.is_list(space.optimizer) else [space.optimizer]
    for name in optimizers or [None]:
        if name not in choices:
            raise InputError(f"tune.space.optimizer: {name} is not in conf/optimizer/ ({', '.join(choices)})")


def search_identity(cfg: DictConfig, train_overrides: list[str]) -> dict:
    """What makes a study the same search: the data (its file's SHA-256), the train overrides, the
    folds or validation part and the space; ``tune.n_trials`` may grow when it resumes."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    digest = hashlib.sha256()
    with open(datamodule.csv_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    overrides = {
        key: value
        for key, _, value in (override.partition("=") for override in sorted(train_overrides))
        if not key.lstrip("+~").startswith(UNCOMPARED)
    }
    tune = {key: cfg.tune[key] for key in ("folds", "fold_seed", "val_size")}
    space = OmegaConf.to_container(cfg.tune.space, resolve=True)
    return {"data": digest.hexdigest(), **overrides, **{f"tune.{k}": v for k, v in tune.items()},
            **{f"tune.space.{k}": v for k, v in space.items()}}  # fmt: skip


def open_study(tune: DictConfig, db: Path, identity: dict) -> optuna.Study:
    """The study in ``db``, made now or resumed: refused with one line when it is not readable or was
    made by another search. Its sampler is seeded by ``tune.sampler_seed`` and the trials already run,
    so that a resumed study draws new settings rather than repeating its first trials'."""
    try:
        study = optuna.create_study(
            study_name="pima",
            storage=f"sqlite:///{db}",
            load_if_exists=True,
            direction="maximize",
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=tune.startup_trials,
                n_warmup_steps=tune.warmup_folds if tune.folds else tune.warmup_epochs,
            ),
        )
    except Exception as err:  # SQLAlchemy and Optuna report an unreadable database many ways
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(
            f"{db}: not an Optuna study ({type(err).__name__}: {reason}); move it away to start a new study"
        ) from None
    made_by = study.user_attrs.get("search")
    if made_by is None and study.trials:
        made_by = {}
    if made_by is None:
        study.set_user_attr("search", identity)
    elif made_by != identity:
        changed = [
            f"{key} ({made_by.get(key, '-')!s:.60} then, {identity.get(key, '-')!s:.60} now)"
            for key in sorted(made_by.keys() | identity.keys())
            if made_by.get(key) != identity.get(key)
        ]
        raise InputError(
            f"{db} holds a study of another search: {'; '.join(changed)}; resume it with the settings "
            "it was made with, or tune in a new folder"
        )
    study.sampler = optuna.samplers.TPESampler(seed=tune.sampler_seed + len(study.trials))
    return study


def search(cfg: DictConfig, train_overrides: list[str], output_dir: Path) -> dict:
    """Run (or resume) the study in ``output_dir``; evaluate the best trial once on the test rows."""
    tune = cfg.tune
    check_search_settings(tune)
    study = open_study(tune, output_dir / "study.db", search_identity(cfg, train_overrides))

    def objective(trial: optuna.Trial) -> float:
        trial_dir = output_dir / "trials" / str(trial.number)
        sampled = trial_overrides(trial, tune.space)
        trial.set_user_attr("overrides", sampled)  # to retrain the best trial for its one test
        common = ["trainer.enable_progress_bar=false", *train_overrides, *sampled, "test=false"]
        if not tune.folds:  # one validation part of the training rows, pruned epoch by epoch
            trial_cfg = compose(
                "config", overrides=[*common, f"data.val_size={tune.val_size}", f"output_dir={trial_dir}"]
            )
            # Optuna's own Lightning callback: it reads val/acc from trainer.callback_metrics every epoch
            pruning = PyTorchLightningPruningCallback(trial, monitor="val/acc")
            return train(trial_cfg, callbacks=[pruning])["val/acc"]
        # k folds of the training part: each fold's held-out rows validate it; pruned fold by fold
        scores = []
        for fold in range(tune.folds):
            fold_cfg = compose(
                "config",
                overrides=[
                    *common,
                    # folds of the training part only: the held-out test rows are in no fold
                    *fold_overrides(tune.folds, fold, tune.fold_seed, "train"),
                    f"output_dir={trial_dir / f'fold_{fold}'}",
                ],
            )
            scores.append(train(fold_cfg)["val/acc"])
            trial.report(statistics.mean(scores), step=fold)  # the running mean, fold by fold
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"mean validation accuracy {statistics.mean(scores):.4f} after fold {fold}"
                )
        return statistics.mean(scores)

    done = sum(trial.state in FINISHED for trial in study.trials)
    if done < tune.n_trials:
        log.info("Running %d trials (%d of %d already finished)", tune.n_trials - done, done, tune.n_trials)
        study.optimize(objective, n_trials=tune.n_trials - done)
    best = study.best_trial
    test_dir = output_dir / "best_test"
    test_dir.mkdir(exist_ok=True)
    if tune.folds:  # the best settings retrained on the whole training part, then tested once
        best_cfg = compose(
            "config",
            overrides=[
                "trainer.enable_progress_bar=false",
                *train_overrides,
                *best.user_attrs["overrides"],
                f"output_dir={test_dir}",
            ],
        )
        tested = train(best_cfg)
        report = {
            name.removeprefix("test/"): value for name, value in tested.items() if name.startswith("test/")
        }
    else:  # the best trial's held-out rows: the split of the CSV the trials trained on
        report = evaluate(
            str(output_dir / "trials" / str(best.number) / "checkpoints" / "last.ckpt"),
            test_dir,
            cfg.data.path,
            "held_out",
            cfg.data.data_dir,
        )
    result = {
        "best_trial": best.number,
        "best_params": best.params,
        "best_val_acc": best.value,
        "test": {name: report[name] for name in ("acc", "auroc", "f1", "precision", "recall", "loss")},
        "trials": {
            state.name.lower(): sum(t.state == state for t in study.trials)
            for state in optuna.trial.TrialState
        },
    }
    write_json(output_dir / "best.json", result)
    return result


@hydra.main(config_path="pkg://pima_lightning.conf", config_name="tune", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the best trial's validation accuracy."""
    train_overrides = command_line_train_overrides("tune")  # they apply to every run it trains
    with one_line_errors():
        result = search(cfg, train_overrides, Path(cfg.output_dir))
    print(
        f"Best trial {result['best_trial']}: {result['best_params']}\n"
        f"  {'cross-validated' if cfg.tune.folds else 'validation'} accuracy on training rows "
        f"{result['best_val_acc']:.4f} (selected on it)\n"
        f"  test accuracy {result['test']['acc']:.4f}, AUROC {result['test']['auroc']:.4f} (evaluated once)\n"
        f"  trials: {result['trials']}\n"
        f"  written to {cfg.output_dir}: best.json, best_test/ (the test), trials/<n>/ (each trial)"
    )
    return result["best_val_acc"]


if __name__ == "__main__":
    main()
