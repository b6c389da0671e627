"""Cross-validation: ``python -m pima_lightning.cv [cv.folds=10] [cv.seeds=1] [cv.scope=all|train]``.

Every (fold, seed) is a member of one run (``cv.engine=members``, ``members.py``): it trains on its
fold's training rows only, with scaling statistics fitted on them, and is scored on the fold's held-out
rows. With ``cv.engine=runs`` each fold is an ordinary training run instead (``data.folds=k
data.fold=i``, in ``folds/<repeat>_<fold>/``), ``cv.jobs`` at a time, with every callback train has.
The same folds (scikit-learn's ``StratifiedKFold``) score scikit-learn baselines, each a ``Pipeline``
with the same scaling, through ``cross_validate``; the summary puts them beside the network, with the
paired per-fold difference network minus logistic regression, so that the comparison is not fooled by
how much the folds differ. With ``cv.seeds`` > 1 each fold's seed ensemble (the mean of its seeds'
probabilities) is a method too. The same folds run in parallel with any Hydra launcher as a multirun:
``python -m pima_lightning.train -m data.folds=10 'data.fold=range(10)'``.
"""

import logging
import os
import statistics
import warnings
from pathlib import Path

import hydra
import numpy as np
from hydra import compose
from hydra.utils import instantiate
from joblib import Parallel, delayed
from matplotlib.figure import Figure
from omegaconf import DictConfig
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pima_lightning.data import cross_validation_folds
from pima_lightning.ensembles.fitting import check_members_config, fit_members
from pima_lightning.ensembles.folds import check_every_fold_holds_every_class, fold_overrides, fold_rows
from pima_lightning.ensembles.members import MAX_SEEDS, members_of, scores_of
from pima_lightning.errors import InputError
from pima_lightning.runs.atomic import write_json, write_text
from pima_lightning.runs.exits import one_line_config_errors, one_line_errors, written_so_far
from pima_lightning.runs.plots import save_figures
from pima_lightning.runs.sweep import csv_text
from pima_lightning.runs.training import command_line_train_overrides, train
from pima_lightning.settings.checks import whole
from pima_lightning.settings.declared import DATA

log = logging.getLogger(__name__)

NETWORK = "network"
ENGINES = ("members", "runs")
ENSEMBLE = "network seed ensemble"  # with cv.seeds > 1: a fold's seeds' mean probability
BASELINES = {  # scikit-learn's defaults, each after the network's filling and z-scoring (``baseline``)
    "majority class": lambda: DummyClassifier(strategy="most_frequent"),
    "logistic regression": lambda: LogisticRegression(),
    "random forest": lambda: RandomForestClassifier(random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(random_state=0),
}
REFERENCE = "logistic regression"  # what the network is compared with, fold by fold
SCORES = {  # metric name here -> scikit-learn scorer
    "acc": "accuracy",
    "auroc": "roc_auc",
    # the majority-class baseline predicts no positive: its precision and F1 are 0, as torchmetrics
    # counts them for the network, rather than an UndefinedMetricWarning twice a fold
    "f1": make_scorer(f1_score, zero_division=0),
    "precision": make_scorer(precision_score, zero_division=0),
    "recall": "recall",
}
# ... for more than two classes, as the network's (model.MULTICLASS_SCORES): macro averages over the classes,
# AUROC one-vs-rest
MULTICLASS_SCORERS = {
    "acc": "accuracy",
    "auroc": "roc_auc_ovr",
    "f1": make_scorer(f1_score, average="macro", zero_division=0),
    "precision": make_scorer(precision_score, average="macro", zero_division=0),
    "recall": make_scorer(recall_score, average="macro", zero_division=0),
}


def cross_validation(cfg: DictConfig, train_overrides: list[str], output_dir: Path) -> dict:
    """Train the network on every fold of every repeat, score the baselines on the same folds, and
    write the summary (``cv.json``, ``cv.csv``, ``cv.png``) into ``output_dir``."""
    cv = cfg.cv
    folds, repeats = whole("cv.folds", cv.folds, low=2), whole("cv.repeats", cv.repeats)
    DATA["fold_scope"].check("cv.scope", cv.scope)  # the folds' data.fold_scope

    def fold_cfg(repeat: int, fold: int) -> DictConfig:
        """The train config of one fold's ordinary run (``cv.engine=runs``)."""
        return compose(
            "config",
            overrides=[
                "trainer.enable_progress_bar=false",  # a line per fold says enough
                *train_overrides,
                *fold_overrides(folds, fold, repeat, cv.scope),
                f"output_dir={output_dir / 'folds' / f'{repeat}_{fold}'}",
            ],
        )

    first = fold_cfg(0, 0)
    with warnings.catch_warnings():  # scikit-learn's notice of a class rarer than the folds: said below
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        features, labels, _, categories, classes = fold_rows(first)
        check_every_fold_holds_every_class(labels, folds)
        # each repeat's folds, as the data module of each of its runs makes them (fold seed = repeat)
        source = instantiate(first.data).csv_path
        splits = [cross_validation_folds(labels, folds, repeat, source) for repeat in range(repeats)]
    if cv.engine not in ENGINES:
        raise InputError(f"cv.engine={cv.engine}: expected one of {', '.join(ENGINES)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    if cv.engine == "members":
        seeds = whole("cv.seeds", cv.seeds, 1, MAX_SEEDS)
        check_members_config(cfg, "cv")
        rows, members = members_rows(cfg, features, labels, splits, seeds, output_dir, categories, classes)
        write_text(output_dir / "members.csv", csv_text(members))
    else:
        if cv.seeds != 1:
            raise InputError(f"cv.seeds={cv.seeds}: seeds are members of one run; use cv.engine=members")
        fold_cfgs = {
            (repeat, fold): fold_cfg(repeat, fold) for repeat in range(repeats) for fold in range(folds)
        }
        rows = runs_rows(cv, fold_cfgs)
    if cv.baselines:
        scorers = SCORES if len(np.unique(labels)) == 2 else MULTICLASS_SCORERS
        for repeat in range(repeats):
            for name, model in BASELINES.items():
                scores = cross_validate(
                    baseline(model(), categories),
                    features,
                    labels,
                    cv=splits[repeat],
                    scoring=scorers,
                )
                for fold in range(folds):
                    row = rows[repeat * folds + fold]
                    row |= {f"{name} {k}": float(scores[f"test_{k}"][fold]) for k in SCORES}
    summary = summarize(rows, folds, repeats, cv.scope)
    summary["seeds"] = cv.seeds  # a fold's "network" score is its seeds' mean
    write_json(output_dir / "cv.json", {"summary": summary, "folds": rows})
    write_text(output_dir / "cv.csv", csv_text(rows))  # a row per fold
    save_figures({"cv": chart(rows, summary)}, output_dir)
    return summary


def baseline(model, categories: dict | None = None) -> Pipeline:
    """``model`` after the network's input steps, fitted on each fold's training rows: missing values
    filled with the medians, a "was missing" column for each column with missing training rows (where
    the network has one for a column with any missing row: the same on all but the rarest columns),
    the ``categories``' columns one-hot (a missing cell a category of its own, a category the training
    rows lack none), then z-scored."""
    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    if not categories:
        return make_pipeline(imputer, StandardScaler(), model)
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    encoder = ColumnTransformer([("categories", one_hot, sorted(categories))], remainder=imputer)
    return make_pipeline(encoder, StandardScaler(), model)


def runs_rows(cv: DictConfig, fold_cfgs: dict) -> list[dict]:
    """``cv.engine=runs``: every fold an ordinary training run, ``cv.jobs`` of them at a time."""
    jobs = whole("cv.jobs", cv.jobs) if cv.jobs is not None else os.cpu_count() or 1
    log.info("Training %d folds, %d at a time", len(fold_cfgs), min(jobs, len(fold_cfgs)))
    # joblib's processes, each fold an ordinary run; with one job, in this process
    results = Parallel(n_jobs=jobs)(delayed(_train_fold)(fold_cfg) for fold_cfg in fold_cfgs.values())
    rows = []
    for (repeat, fold), metrics in zip(fold_cfgs, results, strict=True):
        log.info(
            "repeat %d, fold %d: accuracy %.4f, AUROC %.4f",
            repeat,
            fold,
            metrics["test/acc"],
            metrics["test/auroc"],
        )
        rows.append(
            {"repeat": repeat, "fold": fold, **{f"{NETWORK} {k}": metrics[f"test/{k}"] for k in SCORES}}
        )
    return rows


def members_rows(
    cfg: DictConfig, features: np.ndarray, labels: np.ndarray, splits: list, seeds: int, output_dir: Path,
    categories: dict | None = None, classes: list[str] | None = None,
) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """``cv.engine=members``: every (fold, seed) a member of one run (``members.py``). Per fold: the mean
    of its seeds' scores, with more than one seed their spread and the scores of their ensemble (the
    mean of their probabilities of the fold's rows); and a row per member."""
    members = members_of(splits, [cfg.seed + offset for offset in range(seeds)])
    model = fit_members(cfg, features, labels, members, output_dir, categories=categories, classes=classes)
    member_scores = model.member_scores
    member_rows = [
        {"repeat": member.repeat, "fold": member.fold, "seed": member.seed, **scores}
        for member, scores in zip(members, member_scores, strict=True)
    ]
    rows = []
    for repeat, folds in enumerate(splits):
        for fold, (_, held_out) in enumerate(folds):
            mine = [k for k, member in enumerate(members) if (member.repeat, member.fold) == (repeat, fold)]
            row = {"repeat": repeat, "fold": fold}
            row |= {f"{NETWORK} {k}": statistics.mean(member_scores[m][k] for m in mine) for k in SCORES}
            if seeds > 1:
                row |= {
                    f"{NETWORK} seed std {k}": statistics.stdev(member_scores[m][k] for m in mine)
                    for k in SCORES
                }
                ensemble = np.mean([model.member_probabilities[m] for m in mine], axis=0)
                row |= {
                    f"{ENSEMBLE} {k}": value for k, value in scores_of(ensemble, labels[held_out]).items()
                }
            log.info(
                "repeat %d, fold %d: accuracy %.4f, AUROC %.4f",
                repeat,
                fold,
                row[f"{NETWORK} acc"],
                row[f"{NETWORK} auroc"],
            )
            rows.append(row)
    return rows, member_rows


def _train_fold(fold_cfg: DictConfig) -> dict[str, float]:
    """One fold's training run. In a joblib worker, Lightning's notices (devices found, tips) would
    reach the console through Lightning's own handler: the command's logging config is not there."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return train(fold_cfg)


# scores closer than this are a tie: the network's are float32 (torchmetrics), the baselines' float64
# (scikit-learn), so the same accuracy differs by rounding (1e-8), while a fold's accuracy moves in steps of
# 1 / its rows (1e-6 even for folds of a million rows)
TIE = 1e-6


def summarize(rows: list[dict], folds: int, repeats: int, scope: str) -> dict:
    """Mean and sample std of every method's scores over the folds, and the paired difference of the
    network's accuracy and AUROC minus the reference's, with how many folds each wins."""
    methods = [NETWORK, *(name for name in (ENSEMBLE, *BASELINES) if f"{name} acc" in rows[0])]
    summary = {"folds": folds, "repeats": repeats, "scope": scope, "methods": {}}
    for method in methods:
        summary["methods"][method] = {
            k: {"mean": statistics.mean(r[f"{method} {k}"] for r in rows), "std": _std(rows, f"{method} {k}")}
            for k in SCORES
            if all(np.isfinite(r[f"{method} {k}"]) for r in rows)
        }
    if f"{NETWORK} seed std acc" in rows[0]:  # the spread over seeds inside a fold, averaged over folds
        summary["seed std within folds"] = {
            k: statistics.mean(r[f"{NETWORK} seed std {k}"] for r in rows) for k in SCORES
        }
    compared = [method for method in (NETWORK, ENSEMBLE) if method in methods] if REFERENCE in methods else []
    for method in compared:
        for k in SCORES:
            differences = [r[f"{method} {k}"] - r[f"{REFERENCE} {k}"] for r in rows]
            summary[f"{method} - {REFERENCE} {k}"] = {
                "mean": statistics.mean(differences),
                "std": statistics.stdev(differences) if len(differences) > 1 else 0.0,
                "network wins": sum(d > TIE for d in differences),
                "ties": sum(abs(d) <= TIE for d in differences),
                "reference wins": sum(d < -TIE for d in differences),
            }
    return summary


def _std(rows: list[dict], key: str) -> float:
    return statistics.stdev(r[key] for r in rows) if len(rows) > 1 else 0.0


def chart(rows: list[dict], summary: dict) -> Figure:
    """Every fold's accuracy per method (dots), with the mean (a bar across)."""
    methods = list(summary["methods"])
    figure = Figure(figsize=(2 + 1.3 * len(methods), 4.5), layout="constrained")
    axes = figure.add_subplot()
    for position, method in enumerate(methods):
        scores = [r[f"{method} acc"] for r in rows]
        axes.plot([position] * len(scores), scores, "o", alpha=0.5, color="tab:blue")
        axes.hlines(statistics.mean(scores), position - 0.3, position + 0.3, colors="black")
    axes.set_xticks(range(len(methods)), [m.replace(" ", "\n") for m in methods], fontsize=8)
    axes.set_ylabel("accuracy on the fold's held-out rows")
    seeds = summary.get("seeds", 1)
    each = f", {seeds} seeds a fold" if seeds > 1 else ""
    mean_of_seeds = " (network: its seeds' mean)" if seeds > 1 else ""
    figure.suptitle(
        f"{summary['folds']}-fold CV x {summary['repeats']}{each} ({summary['scope']} rows): accuracy per "
        f"fold\ndots: folds{mean_of_seeds}; bar: mean"
    )
    return figure


def console_line(summary: dict) -> str:
    """The result in a line or two: every method's mean ± std, and the paired difference."""
    parts = [
        f"{method} {scores['acc']['mean']:.1%} ± {scores['acc']['std']:.1%}"
        + (f" (AUROC {scores['auroc']['mean']:.3f})" if "auroc" in scores else "")
        for method, scores in summary["methods"].items()
    ]
    line = f"{summary['folds']}-fold CV x {summary['repeats']} of {summary['scope']} rows: " + ", ".join(
        parts
    )
    if (spread := summary.get("seed std within folds")) is not None:
        line += f"\nseeds within a fold: accuracy std {spread['acc']:.1%} (mean over folds)"
    for method in (NETWORK, ENSEMBLE):
        if (paired := summary.get(f"{method} - {REFERENCE} acc")) is not None:
            folds = paired["network wins"] + paired["ties"] + paired["reference wins"]
            line += (
                f"\n{method} - {REFERENCE}, same folds: accuracy {100 * paired['mean']:+.1f} ± "
                f"{100 * paired['std']:.1f} points; of {folds} "
                f"folds the {method} wins {paired['network wins']}, ties {paired['ties']}, loses "
                f"{paired['reference wins']}"
            )
    return line


@one_line_config_errors("cv")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="cv", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the network's mean accuracy over the folds."""
    train_overrides = command_line_train_overrides("cv")  # they apply to every run it trains
    with one_line_errors(lambda: written_so_far(Path(cfg.output_dir))):
        summary = cross_validation(cfg, train_overrides, Path(cfg.output_dir))
    written = "members.csv" if cfg.cv.engine == "members" else "folds/"
    print(f"{console_line(summary)}\nwritten to {cfg.output_dir}: cv.json, cv.csv, cv.png, {written}")
    return summary["methods"][NETWORK]["acc"]["mean"]


if __name__ == "__main__":
    main()
