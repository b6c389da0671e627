"""More than two classes (issue 27 §6, the core model): K logits, softmax and cross-entropy, torchmetrics'
multiclass scores, K-class predictions, pictures, evaluation and ONNX export; replicas, cv and tune members of
K classes. Two classes stay the notebook's
one sigmoid output (``test_model.py``, ``test_summary.py`` pin its 193 parameters)."""

import json

import lightning as L
import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader

from pima_lightning import PimaClassifier, PimaDataModule
from pima_lightning.ensembles.classifier import StackedClassifier
from pima_lightning.ensembles.replicas import EnsembleDataModule
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}


def test_wine_trains_with_a_plain_trainer_beside_logistic_regression(tmp_path):
    """scikit-learn's wine table (178 rows, 13 features, 3 classes) as a DataFrame."""
    L.seed_everything(7)
    datamodule = PimaDataModule(frame=load_wine(as_frame=True).frame, label_column="target", batch_size=16)
    model = PimaClassifier(optimizer={"_target_": "torch.optim.Adam", "lr": 0.01})
    trainer = L.Trainer(max_epochs=50, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    (tested,) = trainer.test(model, datamodule=datamodule, verbose=False)
    assert set(tested) == {f"test/{name}" for name in ("loss", "acc", "auroc", "f1", "precision", "recall")}
    assert model.hparams.classes == ["0", "1", "2"] and model.network[-1].out_features == 3
    x_train, y_train = (tensor.numpy() for tensor in datamodule.train_set.tensors)
    x_test, y_test = (tensor.numpy() for tensor in datamodule.test_set.tensors)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    assert tested["test/acc"] >= accuracy_score(y_test, baseline.predict(x_test)) - 0.05
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    assert probabilities.shape == (len(y_test), 3)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(len(y_test)))
    assert (probabilities.argmax(1).numpy() == y_test).mean() == pytest.approx(tested["test/acc"])
    trainer.save_checkpoint(tmp_path / "wine.ckpt")
    loaded = PimaClassifier.load_from_checkpoint(tmp_path / "wine.ckpt", weights_only=True).eval()
    checked, _ = load_checkpoint(tmp_path / "wine.ckpt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(torch.as_tensor(x_test)), checked(torch.as_tensor(x_test)))


@pytest.fixture
def five_classes_csv(tmp_path):
    """400 rows of a header, an id, four numeric features (one with missing cells) and a text label of
    five classes that the features separate."""
    rng = np.random.default_rng(3)
    label = rng.integers(0, 5, 400)
    centres = rng.normal(0, 3, (5, 4))
    features = centres[label] + rng.normal(0, 1, (400, 4))
    frame = pd.DataFrame(features, columns=["w", "x", "y", "z"]).round(4)
    frame.loc[::11, "y"] = np.nan
    frame.insert(0, "id", [f"r{row}" for row in range(400)])
    frame["kind"] = np.array(["ant", "bee", "cat", "dog", "eel"])[label]
    path = tmp_path / "five.csv"
    frame.to_csv(path, index=False)
    return path


def test_five_text_classes_from_the_cli_to_predictions_evaluation_and_onnx(
    five_classes_csv, train_cli, cli, tmp_path
):
    run_dir = tmp_path / "run"
    settings = [f"data.path={five_classes_csv}", "data.label_column=kind", "data.ignore_columns=[id]"]
    result = train_cli(
        *settings, "optimizer=adam", "optimizer.lr=0.01", "trainer.max_epochs=20", run_dir=run_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dense_2 (Linear)              (None, 5)" in (run_dir / "train.log").read_text()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    model, _ = load_checkpoint(ckpt)
    assert model.hparams.classes == ["ant", "bee", "cat", "dog", "eel"]
    output = tmp_path / "predictions.csv"
    predicted = cli("predict", f"ckpt_path={ckpt}", f"input={five_classes_csv}", f"output={output}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    table = pd.read_csv(output)
    assert list(table.columns) == ["class", *(f"probability_{name}" for name in model.hparams.classes)]
    truth = pd.read_csv(five_classes_csv)
    assert (table["class"] == truth["kind"]).mean() > 0.8
    # the CLI's probabilities are a plain trainer.predict's on the same raw rows (missing cells as NaN)
    rows = torch.as_tensor(truth[["w", "x", "y", "z"]].to_numpy(np.float32))
    expected = torch.cat(
        L.Trainer(**QUIET).predict(model, dataloaders=DataLoader(rows, batch_size=64))
    ).numpy()
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), expected, atol=1e-6)
    evaluated = cli(
        "evaluate", f"ckpt_path={ckpt}", f"data.path={five_classes_csv}", f"output_dir={tmp_path / 'ev'}"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert 0.8 < report["acc"] <= 1 and 0.9 < report["auroc"] <= 1
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()
    exported = cli("export", f"ckpt_path={ckpt}", "format=onnx", f"output={tmp_path / 'five.onnx'}")
    assert exported.returncode == 0, exported.stderr[-2000:]
    session = onnxruntime.InferenceSession(str(tmp_path / "five.onnx"))
    (onnx_probabilities,) = session.run(None, {"features": rows.numpy()})
    np.testing.assert_allclose(onnx_probabilities, expected, atol=1e-6)
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["classes"]) == model.hparams.classes
    assert json.loads(metadata["inputs"]) == ["w", "x", "y", "z"] and metadata["missing"] == "NaN"


def test_replicas_of_k_classes_score_each_copy_and_their_ensemble(tmp_path):
    """model.replicas: each copy K outputs and its own multiclass scores; the ensemble is the mean of the
    copies' softmax, which trainer.predict returns, the logged scores agree with, and ONNX exports."""
    L.seed_everything(7)
    datamodule = EnsembleDataModule(
        replicas=3, frame=load_wine(as_frame=True).frame, label_column="target", batch_size=16
    )
    model = StackedClassifier(replicas=3, optimizer={"_target_": "torch.optim.Adam", "lr": 0.01})
    trainer = L.Trainer(max_epochs=30, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    (tested,) = trainer.test(model, datamodule=datamodule, verbose=False)
    assert model.network[-1].weight.shape == (3, 6, 3)
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    labels = datamodule.test_set.tensors[1].long()
    assert probabilities.shape == (len(labels), 3)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(len(labels)))
    ensemble_accuracy = (probabilities.argmax(1) == labels).float().mean().item()
    assert tested["test/ensemble_acc"] == pytest.approx(ensemble_accuracy)
    with torch.no_grad():
        copies = model.eval()(datamodule.test_set.tensors[0]).softmax(-1)  # (copies, rows, K)
    each = [(copy.argmax(1) == labels).float().mean().item() for copy in copies]
    assert model.replica_metrics["test/acc"] == pytest.approx(each)
    assert tested["test/acc"] == pytest.approx(np.mean(each)) and min(each) > 0.85
    trainer.save_checkpoint(tmp_path / "replicas.ckpt")
    checked, _ = load_checkpoint(tmp_path / "replicas.ckpt")
    with torch.no_grad():
        torch.testing.assert_close(checked.predict_step(datamodule.test_set.tensors, 0), probabilities)


@pytest.mark.parametrize(
    ("command", "overrides", "written"),
    [
        ("cv", ["cv.folds=3", "cv.seeds=2"], "cv.json"),
        ("tune", ["tune.n_trials=1", "tune.folds=3"], "best.json"),
    ],
)
def test_cv_and_tune_train_members_of_k_classes(cli, tmp_path, command, overrides, written):
    frame = load_wine(as_frame=True).frame
    frame.to_csv(tmp_path / "wine.csv", index=False)
    data = [f"data.path={tmp_path / 'wine.csv'}", "data.label_column=target", "optimizer=adam"]
    fit = ["optimizer.lr=0.01", "data.batch_size=16", "trainer.max_epochs=20"]
    result = cli(command, *data, *fit, *overrides, f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / written).read_text())
    if command == "cv":  # the members, their seeds' ensemble and the baselines, with multiclass scores
        methods = report["summary"]["methods"]
        assert set(methods) >= {"network", "network seed ensemble", "logistic regression"}
        for method in ("network", "network seed ensemble", "logistic regression"):
            assert 0.85 < methods[method]["acc"]["mean"] <= 1 and 0.9 < methods[method]["auroc"]["mean"] <= 1
            assert set(methods[method]) == {"acc", "auroc", "f1", "precision", "recall"}


def test_class_names_rename_each_of_k_classes_and_must_match_their_count():
    frame = load_wine(as_frame=True).frame
    datamodule = PimaDataModule(
        frame=frame, label_column="target", class_names=["barolo", "grignolino", "barbera"]
    )
    datamodule.setup("fit")
    assert datamodule.class_names == ["barolo (0)", "grignolino (1)", "barbera (2)"]
    with pytest.raises(InputError, match=r"data.class_names=\['a', 'b'\]: 2 names for the 3 classes"):
        PimaDataModule(frame=frame, label_column="target", class_names=["a", "b"]).setup("fit")
