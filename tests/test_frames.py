"""A pandas DataFrame in a Python session: ``PimaDataModule(frame=df, label_column=...)``, checked as a CSV
is, trained with a plain Lightning ``Trainer``; its checkpoint holds plain data, never the frame."""

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pima_lightning import PimaClassifier, PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.inputs.frames import labelled_frame

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}


def test_a_frame_and_its_csv_give_the_same_rows_and_split(pima_csv):
    from_csv = PimaDataModule(path=str(pima_csv))
    from_frame = PimaDataModule(frame=pd.read_csv(pima_csv, header=None))
    for datamodule in (from_csv, from_frame):
        datamodule.setup("fit")
    for part in ("train_set", "test_set"):
        for ours, theirs in zip(
            getattr(from_frame, part).tensors, getattr(from_csv, part).tensors, strict=True
        ):
            assert torch.equal(ours, theirs), part
    assert from_frame.feature_names == [str(column) for column in range(8)]


def test_breast_cancer_trains_with_a_plain_trainer_and_its_checkpoint_loads(tmp_path):
    """scikit-learn's breast-cancer table (569 rows, 30 features, 0/1 target) as a DataFrame: the network
    beside logistic regression on the same rows and scaling."""
    frame = load_breast_cancer(as_frame=True).frame
    L.seed_everything(7)
    datamodule = PimaDataModule(frame=frame, label_column="target", batch_size=32)
    model = PimaClassifier(optimizer={"_target_": "torch.optim.Adam", "lr": 0.003})
    trainer = L.Trainer(max_epochs=20, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    (tested,) = trainer.test(model, datamodule=datamodule, verbose=False)
    x_train, y_train = (tensor.numpy() for tensor in datamodule.train_set.tensors)
    x_test, y_test = (tensor.numpy() for tensor in datamodule.test_set.tensors)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    assert tested["test/acc"] > accuracy_score(y_test, baseline.predict(x_test)) - 0.05
    assert model.hparams.n_features == 30 and model.hparams.feature_names == list(frame.columns[:-1])
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    assert probabilities.shape == (len(y_test),)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    stored = torch.load(tmp_path / "model.ckpt", weights_only=True)["datamodule_hyper_parameters"]
    assert stored["path"] == "<DataFrame>" and "frame" not in stored
    loaded = PimaClassifier.load_from_checkpoint(tmp_path / "model.ckpt", weights_only=True)
    checked, _ = load_checkpoint(tmp_path / "model.ckpt")
    rows = torch.as_tensor(x_test[:5])
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(rows), checked(rows))


def changed(frame: pd.DataFrame, row: int, column: str, value, dtype: str) -> pd.DataFrame:
    """A copy of ``frame`` with one cell replaced (the column first made ``dtype`` to hold it)."""
    copy = frame.astype({column: dtype})
    copy.loc[row, column] = value
    return copy


def test_rows_without_a_label_are_left_out_and_bad_cells_named(pima_csv):
    frame = pd.read_csv(pima_csv, header=None, names=[*"abcdefgh", "outcome"])
    unlabelled = changed(changed(frame, 3, "outcome", np.nan, "float64"), 5, "outcome", np.nan, "float64")
    read = labelled_frame(unlabelled)
    assert len(read.labels) == 766 and read.unlabelled == 2
    cases = [
        (changed(frame, 2, "c", "high", "object"), "frame, row 2, column 'c': 'high' is not a number, though "
         "most of the column's values are; correct it, or make it NaN to mark it missing "
         "(categorical_columns=[c] reads the column as categories)"),
        (changed(frame, 4, "d", np.inf, "float64"), "frame, row 4, column 'd': inf is not a finite number"),
    ]  # fmt: skip
    for bad, expected in cases:
        with pytest.raises(InputError) as refused:
            labelled_frame(bad)
        assert str(refused.value).startswith(expected), str(refused.value)
    with pytest.raises(InputError, match="ignore_columns: 'outcome' is the label column"):
        labelled_frame(frame, ignore_columns=["outcome"])
    assert labelled_frame(frame, ignore_columns=["a"]).feature_names == [*"bcdefgh"]
    with pytest.raises(InputError, match="frame: expected a pandas DataFrame, found ndarray"):
        labelled_frame(frame.to_numpy())
