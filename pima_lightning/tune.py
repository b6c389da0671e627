"""Hyperparameter search with Optuna: ``python -m pima_lightning.tune [tune.n_trials=30] [train overrides]``.

Each trial composes the same Hydra config as ``train`` with the sampled learning rate, batch size,
dropout, weight decay, optimizer and epochs, and trains ``tune.folds`` x ``tune.seeds`` members in one
run (``members.py``): a member per (fold, seed) of stratified folds of the training rows, each validated
on its fold's held-out rows. Its score (``tune.objective``) is, by default, the mean over folds of each
fold's worst seed's validation accuracy, so that a setting that collapses on an unlucky seed scores
low; ``mean`` is the members' mean. Trials are pruned epoch by epoch on that score (Optuna's Lightning
callback). With ``tune.folds=0`` a trial is one run validated on ``tune.val_size`` of the training rows.
The held-out test rows are touched once, after the search: the best trial's settings are trained on all
training rows and tested (with folds=0, the best trial's own model is). The study lives in ``study.db``
(SQLite) in the run dir: rerun with ``hydra.run.dir=<that dir>`` to resume it.
"""

import logging
import math
import sqlite3
import statistics
import warnings
from contextlib import closing
from importlib import resources
from pathlib import Path

import hydra
import optuna
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna_integration import PyTorchLightningPruningCallback

from pima_lightning.ensembles.classifier import worst_seed
from pima_lightning.ensembles.fitting import check_members_config, fit_members
from pima_lightning.ensembles.folds import check_every_fold_holds_every_class, fold_overrides, fold_rows
from pima_lightning.ensembles.members import MAX_SEEDS, members_of
from pima_lightning.errors import InputError
from pima_lightning.inputs.files import MAX_CSV_BYTES, check_regular, sha256_of
from pima_lightning.model import SCORES
from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.evaluation import evaluate
from pima_lightning.runs.exits import one_line_config_errors, one_line_errors, written_so_far
from pima_lightning.runs.training import command_line_train_overrides, train
from pima_lightning.settings.checks import number, whole

log = logging.getLogger(__name__)

# what a trial of tune.folds x tune.seeds members scores, and the metric pruning reads each epoch
OBJECTIVES = {"worst_seed": "val/acc_worst_seed", "mean": "val/acc"}
SAMPLED = {"optimizer", "lr", "weight_decay", "batch_size", "dropout", "max_epochs"}  # trial_overrides' names
TEST_FIGURES = (*SCORES, "loss")  # best.json's test figures
MAX_STUDY_BYTES = 1 << 30  # a study of thousands of trials holds a few MB
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# command-line overrides that do not change what a trial learns, so a resumed study may differ in them
UNCOMPARED = (
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "torch_threads",
    "trainer.accelerator",
)


def searched(train_overrides: list[str]) -> set[str]:
    """The settings a trial samples: all of ``SAMPLED``, but the epochs when the command line fixes them
    (``trainer.max_epochs=20``: every trial trains 20 epochs; it was silently replaced by the space's)."""
    fixed = any(override.lstrip("+").startswith("trainer.max_epochs=") for override in train_overrides)
    return SAMPLED - {"max_epochs"} if fixed else set(SAMPLED)


def trial_overrides(trial: optuna.Trial, space: DictConfig, names: set[str] = SAMPLED) -> list[str]:
    """Sample one point of the search space (the settings ``names``), as Hydra overrides of the train
    config."""
    optimizer = trial.suggest_categorical("optimizer", list(space.optimizer))
    epochs = (
        [f"trainer.max_epochs={trial.suggest_categorical('max_epochs', list(space.max_epochs))}"]
        if "max_epochs" in names
        else []
    )
    return [
        f"optimizer={optimizer}",
        f"optimizer.lr={trial.suggest_float('lr', *space.lr, log=True)}",
        f"optimizer.weight_decay={trial.suggest_float('weight_decay', *space.weight_decay, log=True)}",
        f"data.batch_size={trial.suggest_categorical('batch_size', list(space.batch_size))}",
        f"model.dropout={trial.suggest_float('dropout', *space.dropout)}",
        *epochs,
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
    for name in ("startup_trials", "warmup_epochs"):
        whole(f"tune.{name}", tune[name], 0)
    whole("tune.seeds", tune.seeds, 1, MAX_SEEDS)
    if tune.objective not in OBJECTIVES:
        raise InputError(f"tune.objective={tune.objective}: expected one of {', '.join(OBJECTIVES)}")
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
    digest = sha256_of(datamodule.csv_path, "data.path", MAX_CSV_BYTES, kind="CSV")
    overrides = {
        key: value
        for key, _, value in (override.partition("=") for override in sorted(train_overrides))
        if not key.lstrip("+~").startswith(UNCOMPARED)
    }
    tune = {key: cfg.tune[key] for key in ("folds", "fold_seed", "val_size", "seeds", "objective")}
    space = OmegaConf.to_container(cfg.tune.space, resolve=True)
    return {"data": digest, **overrides, **{f"tune.{k}": v for k, v in tune.items()},
            **{f"tune.space.{k}": v for k, v in space.items()}}  # fmt: skip


OPTUNA_TABLES = {"studies", "trials", "version_info"}  # tables every Optuna storage has


def check_study_file(db: Path) -> None:
    """Refuse a ``study.db`` that is not a regular file, or an SQLite database of another application
    (Optuna would add its tables to it), before Optuna opens it. Read only, with sqlite3's read-only mode."""
    if not db.exists() and not db.is_symlink():
        return
    check_regular(db, "the study file", MAX_STUDY_BYTES)
    if db.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as err:
        raise InputError(
            f"{db}: not an Optuna study ({type(err).__name__}: {str(err)[:160]}); "
            "move it away to start a new study"
        ) from None
    if tables and not tables >= OPTUNA_TABLES:
        shown = ", ".join(sorted(tables)[:5])
        raise InputError(
            f"{db}: an SQLite database of another application (tables {shown[:160]}), not an Optuna study; "
            "move it away to start a new study"
        )


def open_study(tune: DictConfig, db: Path, identity: dict) -> optuna.Study:
    """The study in ``db``, made now or resumed: refused with one line when it is not readable, holds
    another application's tables, was not made by this package's tune or was made by another search. Its
    sampler is seeded by ``tune.sampler_seed`` and the trials already run, so that a resumed study draws
    new settings rather than repeating its first trials'."""
    check_study_file(db)
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
        names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
        if names and "pima" not in names:
            raise InputError(
                f"{db}: holds Optuna studies ({', '.join(names)[:120]}) but none that tune made; "
                "tune in a new folder"
            )
        study = optuna.create_study(
            study_name="pima",
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=tune.startup_trials,
                n_warmup_steps=tune.warmup_epochs,
            ),
        )
    except InputError:
        raise
    except Exception as err:  # SQLAlchemy and Optuna report an unreadable database many ways
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(
            f"{db}: not an Optuna study ({type(err).__name__}: {reason}); move it away to start a new study"
        ) from None
    made_by = study.user_attrs.get("search")
    if made_by is None and study.trials:
        raise InputError(
            f"{db}: an Optuna study without the record tune keeps of its search (its data, settings and "
            "space), so it cannot be resumed; tune in a new folder"
        )
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


def settings_of(trial: optuna.trial.FrozenTrial, space: DictConfig, names: set[str], db: Path) -> list[str]:
    """A finished trial's settings as train overrides, rebuilt from its parameters, each checked against the
    search space: what a study file says is data, never command-line text (a stored override could
    name any ``_target_``)."""
    params = trial.params
    if set(params) != names:
        raise InputError(
            f"{db}: trial {trial.number} holds parameters {sorted(params)!s:.120}, not the search's "
            f"{sorted(names)}; tune in a new folder"
        )
    for name in ("lr", "weight_decay", "dropout"):
        low, high = space[name]
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise InputError(
                f"{db}: trial {trial.number}'s {name}={value!r:.40} lies outside tune.space.{name}"
            )
    for name in sorted({"optimizer", "batch_size", "max_epochs"} & names):
        choices = list(space[name]) if OmegaConf.is_list(space[name]) else [space[name]]
        if params[name] not in choices or isinstance(params[name], bool):
            raise InputError(
                f"{db}: trial {trial.number}'s {name}={params[name]!r:.40} is not one of tune.space.{name}"
            )
    return trial_overrides(optuna.trial.FixedTrial(params), space, names)


def search(cfg: DictConfig, train_overrides: list[str], output_dir: Path) -> dict:
    """Run (or resume) the study in ``output_dir``; evaluate the best trial once on the test rows."""
    tune = cfg.tune
    check_search_settings(tune)
    if tune.folds:  # the members every trial trains: folds of the training part only, never test rows
        base = compose(
            "config", overrides=[*train_overrides, *fold_overrides(tune.folds, 0, tune.fold_seed, "train")]
        )
        with warnings.catch_warnings():  # scikit-learn's notice of a scarce class: refused below, in one line
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            features, labels, splits, categories, classes = fold_rows(base)
        check_every_fold_holds_every_class(labels, tune.folds, "tune.folds")
        seeds = [cfg.seed + offset for offset in range(tune.seeds)]
        members = members_of([splits], seeds)
        log.info(
            "Each trial: %d folds x %d seeds of the %d training rows", tune.folds, tune.seeds, len(labels)
        )

    study = open_study(tune, output_dir / "study.db", search_identity(cfg, train_overrides))
    names = searched(train_overrides)
    if "max_epochs" not in names:
        log.info("trainer.max_epochs is set on the command line: every trial trains that many epochs")

    started = set()  # the trials this process runs (another process may resume the same study)

    def objective(trial: optuna.Trial) -> float:
        started.add(trial.number)
        trial_dir = output_dir / "trials" / str(trial.number)
        sampled = trial_overrides(trial, tune.space, names)
        common = ["trainer.enable_progress_bar=false", *train_overrides, *sampled, "test=false"]
        if not tune.folds:  # one validation part of the training rows, pruned epoch by epoch
            trial_cfg = compose(
                "config", overrides=[*common, f"data.val_size={tune.val_size}", f"output_dir={trial_dir}"]
            )
            # Optuna's own Lightning callback: it reads val/acc from trainer.callback_metrics every epoch
            pruning = PyTorchLightningPruningCallback(trial, monitor="val/acc")
            return train(trial_cfg, callbacks=[pruning])["val/acc"]
        # folds x seeds members of one run, each validated on its fold's held-out rows (training rows
        # of the split), pruned epoch by epoch on the objective over the members so far
        trial_cfg = compose("config", overrides=[*common, f"output_dir={trial_dir}"])
        check_members_config(trial_cfg, "tune")
        pruning = PyTorchLightningPruningCallback(trial, monitor=OBJECTIVES[tune.objective])
        trial_dir.mkdir(parents=True, exist_ok=True)
        model = fit_members(
            trial_cfg, features, labels, members, trial_dir, validate=True, callbacks=[pruning],
            divergence_is_error=False,  # a setting that diverges scores low; the search goes on
            categories=categories, classes=classes,
        )  # fmt: skip
        accuracies = model.member_val_acc
        spread = {
            "val_acc_mean": statistics.mean(accuracies),
            "val_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "val_acc_min": min(accuracies),
            "val_acc_worst_seed": worst_seed(accuracies, model.hparams.folds),
        }
        value = spread["val_acc_worst_seed" if tune.objective == "worst_seed" else "val_acc_mean"]
        # a diverged member predicts class 0 and scores the majority share (0.66 on Pima), which outranked
        # real settings: a setting that diverges on any member scores 0, below any that learns
        diverged = sum(not math.isfinite(scores["loss"]) for scores in model.member_scores)
        if diverged:
            value = 0.0
            trial.set_user_attr("diverged_members", diverged)
        for name, figure in spread.items():
            trial.set_user_attr(name, figure)
        members_record = [
            {"fold": member.fold, "seed": member.seed, "val_acc": accuracy}
            for member, accuracy in zip(members, accuracies, strict=True)
        ]
        record = {"objective": value, **spread, "diverged_members": diverged, "members": members_record}
        write_json(trial_dir / "members.json", record)
        return value

    done = sum(trial.state in FINISHED for trial in study.trials)
    if done < tune.n_trials:
        log.info("Running %d trials (%d of %d already finished)", tune.n_trials - done, done, tune.n_trials)
        try:
            study.optimize(objective, n_trials=tune.n_trials - done)
        except BaseException:  # a signal stops the search: its running trial failed, it does not run on
            for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                if trial.number in started:
                    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            raise
    best = study.best_trial
    test_dir = output_dir / "best_test"
    test_dir.mkdir(exist_ok=True)
    if cfg.data.split == "none":  # the folds trained on every row: no row is left to test on
        report = None
    elif tune.folds:  # the best settings retrained on the whole training part, then tested once
        best_cfg = compose(
            "config",
            overrides=[
                "trainer.enable_progress_bar=false",
                *train_overrides,
                *settings_of(best, tune.space, names, output_dir / "study.db"),
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
        **{name: value for name, value in best.user_attrs.items() if name.startswith("val_acc_")},
        "test": report and {name: report[name] for name in TEST_FIGURES},
        "trials": {
            state.name.lower(): sum(t.state == state for t in study.trials)
            for state in optuna.trial.TrialState
        },
    }
    write_json(output_dir / "best.json", result)
    return result


def score_name(tune: DictConfig) -> str:
    """What a trial's score is, in words."""
    if not tune.folds:
        return "validation accuracy"
    if tune.objective == "worst_seed":
        return f"worst-seed accuracy ({tune.folds} folds, the lowest of {tune.seeds} seeds in each)"
    return f"mean accuracy of {tune.folds} folds x {tune.seeds} seeds"


def test_text(result: dict) -> str:
    """The best settings' test figures, or why there are none."""
    if result["test"] is None:
        return "no test: with data.split=none no row is held out (every row trained a fold)"
    return f"test accuracy {result['test']['acc']:.4f}, AUROC {result['test']['auroc']:.4f} (evaluated once)"


def spread_text(result: dict) -> str:
    """The best trial's members' accuracy, mean ± std and lowest, when members scored it."""
    if "val_acc_mean" not in result:
        return ""
    return (
        f"; its members {result['val_acc_mean']:.4f} ± {result['val_acc_std']:.4f}, "
        f"lowest {result['val_acc_min']:.4f}"
    )


@one_line_config_errors("tune")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="tune", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the best trial's validation accuracy."""
    train_overrides = command_line_train_overrides("tune")  # they apply to every run it trains
    resume = (
        f" (the running trial marked failed); rerun with hydra.run.dir={cfg.output_dir} to resume the study"
    )
    with one_line_errors(lambda: written_so_far(Path(cfg.output_dir), resume)):
        result = search(cfg, train_overrides, Path(cfg.output_dir))
    print(
        f"Best trial {result['best_trial']}: {result['best_params']}\n"
        f"  {score_name(cfg.tune)} on training rows {result['best_val_acc']:.4f} (selected on it)"
        f"{spread_text(result)}\n"
        f"  {test_text(result)}\n"
        f"  trials: {result['trials']}\n"
        f"  written to {cfg.output_dir}: best.json, best_test/ (the test), trials/<n>/ (each trial)"
    )
    return result["best_val_acc"]


if __name__ == "__main__":
    main()
