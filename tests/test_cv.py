"""Cross-validation: folds as scikit-learn makes them, per-fold scaling, baselines on the same folds."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pima_lightning.data import PimaDataModule


def fold_module(**kwargs) -> PimaDataModule:
    datamodule = PimaDataModule(**kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


@pytest.mark.parametrize("scope", ["all", "train"])
def test_folds_are_stratified_disjoint_cover_the_rows_and_scale_on_their_training_rows(pima_csv, scope):
    dataset = np.loadtxt(pima_csv, delimiter=",")
    rows, labels = dataset[:, :8], dataset[:, 8]
    if scope == "train":  # the training part of the notebook's split; its held-out rows never appear
        rows, held_out, labels, _ = train_test_split(rows, labels, test_size=0.33, random_state=7)
    expected = StratifiedKFold(n_splits=4, shuffle=True, random_state=3).split(rows, labels)
    seen = []
    for fold, (train_rows, test_rows) in enumerate(expected):
        datamodule = fold_module(folds=4, fold=fold, fold_seed=3, fold_scope=scope)
        tested, trained = datamodule.test_set.tensors, datamodule.train_set.tensors
        np.testing.assert_allclose(tested[0].numpy(), rows[test_rows], rtol=1e-6)
        np.testing.assert_allclose(trained[0].numpy(), rows[train_rows], rtol=1e-6)
        share = labels[test_rows].mean()
        assert abs(share - labels.mean()) < 1.5 / len(test_rows)  # stratified: the class ratio, to a row
        np.testing.assert_allclose(datamodule.feature_mean, rows[train_rows].mean(axis=0))  # fold's own
        seen.extend(test_rows.tolist())
    assert sorted(seen) == list(range(len(labels)))  # disjoint, and every row held out once
    if scope == "train":
        assert not set(map(tuple, held_out)) & set(map(tuple, rows))  # held-out rows are in no fold


def test_cv_command_scores_network_and_baselines_on_the_same_folds(cli, tmp_path, pima_csv):
    run_dir = tmp_path / "cv"
    result = cli("cv", "cv.folds=3", "cv.engine=runs", "trainer.max_epochs=2", run_dir=run_dir)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr  # the majority baseline's precision is 0, not a warning a fold
    report = json.loads((run_dir / "cv.json").read_text())
    folds = report["folds"]
    assert [(row["repeat"], row["fold"]) for row in folds] == [(0, 0), (0, 1), (0, 2)]
    for row in folds:  # each fold is an ordinary run
        metrics = json.loads((run_dir / "folds" / f"0_{row['fold']}" / "metrics.json").read_text())
        assert row["network acc"] == metrics["test/acc"]
    dataset = np.loadtxt(pima_csv, delimiter=",")
    splits = StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(dataset[:, :8], dataset[:, 8])
    reference = cross_validate(
        make_pipeline(StandardScaler(), LogisticRegression()), dataset[:, :8], dataset[:, 8], cv=list(splits),
        scoring={"acc": "accuracy", "auroc": "roc_auc"},
    )  # fmt: skip
    assert [row["logistic regression acc"] for row in folds] == pytest.approx(reference["test_acc"].tolist())
    assert [row["logistic regression auroc"] for row in folds] == pytest.approx(
        reference["test_auroc"].tolist()
    )
    paired = report["summary"]["network - logistic regression acc"]
    differences = [row["network acc"] - row["logistic regression acc"] for row in folds]
    assert paired["mean"] == pytest.approx(np.mean(differences))
    # float32 against float64 scores: a difference within rounding (1e-8) is a tie, not a win (issue 25)
    assert paired["network wins"] == sum(d > 1e-6 for d in differences)
    assert paired["ties"] == sum(abs(d) <= 1e-6 for d in differences)
    assert (run_dir / "cv.csv").read_text().startswith("repeat,fold,network acc,network auroc")
    assert (run_dir / "cv.png").stat().st_size > 10_000
    assert "3-fold CV x 1 of all rows: network " in result.stdout
    assert "network - logistic regression, same folds: accuracy " in result.stdout


def test_folds_that_would_lack_a_class_are_refused_before_any_training(tmp_path, pima_csv):
    """3 rows of class 1 in 10 folds: 7 folds would hold none, their AUROC undefined (a traceback in
    the summary before). Refused with the number of folds that would work."""
    import warnings

    from hydra import compose, initialize_config_module

    from pima_lightning.cv import cross_validation
    from pima_lightning.errors import InputError

    dataset = np.loadtxt(pima_csv, delimiter=",")
    few = np.concatenate([dataset[dataset[:, 8] == 0][:57], dataset[dataset[:, 8] == 1][:3]])
    path = tmp_path / "few.csv"
    np.savetxt(path, few, delimiter=",", fmt="%g")
    overrides = [f"data.path={path}"]
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("cv", overrides=overrides)
        with pytest.raises(InputError) as raised, warnings.catch_warnings():
            warnings.simplefilter("error")  # the one line only: scikit-learn's notice of it is kept out
            cross_validation(cfg, overrides, tmp_path / "cv")
    assert str(raised.value) == (
        "cv.folds=10: class 1 has 3 of the 60 rows the folds split, so some folds would hold none of it "
        "and their AUROC is undefined; use cv.folds=3 or fewer"
    )
    assert not (tmp_path / "cv").exists()  # nothing trained
