"""What a new user misread (issue 19): a run that predicts one class for every row, and one whose
validation loss rose far above its minimum, say so on the result line, checked against the run's own
TensorBoard events."""

import json

import numpy as np
import pytest

from pima_lightning.data import PimaDataModule
from pima_lightning.runs.plots import diagnostic_figures
from pima_lightning.runs.record import result_lines
from pima_lightning.train import train

QUIET = ["trainer.enable_progress_bar=false"]


def finished(make_config, tmp_path, *overrides) -> tuple[dict, str]:
    train(make_config(*QUIET, *overrides))
    record = json.loads((tmp_path / "metrics.json").read_text())
    return record, result_lines(record, tmp_path)


def test_a_run_that_predicts_one_class_says_so(make_config, tmp_path):
    """SGD on raw features collapses to the majority class, as the notebook's does."""
    record, line = finished(make_config, tmp_path, "data.standardize=false", "trainer.max_epochs=3")
    assert record["test/recall"] == 0 and record["test/acc"] == pytest.approx(
        1 - record["test/positive_share"]
    )
    assert "accuracy 0.6378 (= always predicting class 0), AUROC" in line


def test_a_run_that_finds_both_classes_has_no_such_remark(make_config, tmp_path):
    record, line = finished(make_config, tmp_path, "trainer.max_epochs=20")
    assert 0 < record["test/recall"] < 1 and "always predicting" not in line


def test_a_validation_loss_far_above_its_minimum_names_the_minimum(make_config, tmp_path, read_scalars):
    """A wide network without dropout at Adam's lr 0.01 overfits within a few epochs."""
    record, line = finished(
        make_config,
        tmp_path,
        "model.hidden=[64,64]",
        "model.dropout=0",
        "optimizer=adam",
        "optimizer.lr=0.01",
        "trainer.max_epochs=40",
    )
    losses = read_scalars(tmp_path)["val/loss"]  # one value an epoch, as TensorBoard shows them
    rose = record["val/loss_rose"]
    assert rose["best"] == pytest.approx(min(losses)) and rose["best_epoch"] == losses.index(min(losses)) + 1
    assert rose["last"] == pytest.approx(losses[-1]) and rose["last_epoch"] == 40
    assert line.splitlines()[-1].startswith(f"val/loss rose from its minimum {rose['best']:.4f} (epoch ")
    assert "callbacks=early_stopping data.val_size=0.2" in line


def test_a_run_whose_validation_loss_settles_has_no_remark(make_config, tmp_path):
    record, line = finished(make_config, tmp_path, "trainer.max_epochs=20")
    assert "val/loss_rose" not in record and len(line.splitlines()) == 1


def test_pictures_name_the_classes_as_the_csv_does(tmp_path, pima_csv):
    """``no diabetes (0)`` / ``diabetes (1)`` were drawn for any CSV."""
    rows = np.loadtxt(pima_csv, delimiter=",")
    named, bare = tmp_path / "named.csv", tmp_path / "bare.csv"
    named.write_text("preg,glucose,bp,skin,insulin,bmi,pedigree,age,tested_positive\n")
    with named.open("a") as handle:
        np.savetxt(handle, rows, delimiter=",", fmt="%g")
    np.savetxt(bare, rows, delimiter=",", fmt="%g")

    def names(**settings) -> list[str]:
        datamodule = PimaDataModule(**settings)
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule.class_names

    assert names() == ["no diabetes (0)", "diabetes (1)"]  # the public copy keeps its names
    assert names(path=str(named)) == ["tested_positive = 0", "tested_positive = 1"]
    assert names(path=str(bare)) == ["class 0", "class 1"]
    assert names(path=str(bare), class_names=["benign", "malignant"]) == ["benign (0)", "malignant (1)"]
    figure = diagnostic_figures(rows[:, 8], rows[:, 1] / 200, "all rows", names(path=str(named)))
    axes = figure["confusion_matrix"].axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == names(path=str(named))
