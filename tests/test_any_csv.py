"""Any binary-classification CSV: feature count and names come from the file and travel with the model."""

import json
import logging

import numpy as np
import pytest
from conftest import predicted_probabilities

from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.evaluate import evaluate
from pima_lightning.inputs import csvfile
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.inputs.csvfile import read_labelled_csv
from pima_lightning.predict import predict

NAMES = ["age", "dose", "outcome", "weight", "score", "pressure"]  # the label is the third column


@pytest.fixture(scope="module")
def five_feature_csv(tmp_path_factory):
    """400 rows of 5 features (4 decimals) with a header, the label third; class 1 when a mix is high."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 5)).round(4)
    noise = rng.normal(scale=0.5, size=400)
    labels = (features @ np.array([1.5, -1.0, 0.5, 0.0, 1.0]) + noise > 0).astype(int)
    table = np.column_stack([features[:, :2], labels, features[:, 2:]])
    path = tmp_path_factory.mktemp("data") / "five.csv"
    lines = [",".join(NAMES)] + [
        ",".join(f"{value:.4f}" if i != 2 else str(int(value)) for i, value in enumerate(row))
        for row in table
    ]
    path.write_text("\n".join(lines) + "\n")
    return path, features, labels


def test_the_reader_takes_the_named_label_and_keeps_the_other_names(five_feature_csv):
    path, features, labels = five_feature_csv
    read = read_labelled_csv(path, label_column="outcome")
    np.testing.assert_allclose(read.features, features, atol=1e-4)
    assert read.labels.tolist() == labels.tolist()
    assert read.feature_names == ["age", "dose", "weight", "score", "pressure"]
    with pytest.raises(
        InputError, match=r"data.label_column=result: .* has no such column \(its header: age, dose"
    ):
        read_labelled_csv(path, label_column="result")


def test_train_predict_evaluate_and_summary_on_a_five_feature_csv(
    five_feature_csv, train_cli, cli, tmp_path, pima_csv
):
    path, features, _ = five_feature_csv
    run_dir = tmp_path / "run"
    result = train_cli(
        f"data.path={path}", "data.label_column=outcome", "trainer.max_epochs=30", "optimizer=adam",
        "optimizer.lr=0.01", run_dir=run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Inputs: age, dose, weight, score, pressure" in result.stdout
    assert "dense (Linear)                (None, 12)          72" in result.stdout  # 5 inputs: 5*12 + 12
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.8  # the rule is learnable: far above the majority class
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    model, split = load_checkpoint(checkpoint)
    assert model.hparams.feature_names == ["age", "dose", "weight", "score", "pressure"]
    assert split["label_column"] == "outcome"

    # predict picks the model's columns by name, in any order, ignoring others
    reordered = tmp_path / "reordered.csv"
    order = [4, 0, 3, 1, 2]  # pressure, age, score, dose, weight
    names = ["pressure", "age", "score", "dose", "weight"]
    reordered.write_text(
        ",".join(names)
        + "\n"
        + "\n".join(",".join(f"{v:.4f}" for v in row[order]) for row in features[:50])
        + "\n"
    )
    probabilities = predict(str(checkpoint), str(reordered), tmp_path / "p.csv")
    np.testing.assert_allclose(probabilities, predicted_probabilities(model, features[:50]), atol=1e-5)
    missing = tmp_path / "missing.csv"
    missing.write_text("age,dose,weight,score,height\n" + "1,2,3,4,5\n")
    with pytest.raises(InputError, match="no column 'pressure', which the model was trained on"):
        predict(str(checkpoint), str(missing), tmp_path / "q.csv")

    # evaluate on the held-out rows of the same file, by the stored label column; refused on another file
    (tmp_path / "evaluation").mkdir()
    report = evaluate(str(checkpoint), tmp_path / "evaluation", str(path), "held_out")
    assert report["n_rows"] == 132 and report["acc"] == pytest.approx(metrics["test/acc"])
    other = tmp_path / "other.csv"
    other.write_text("a,b,outcome\n" + "1,2,0\n3,4,1\n" * 5)
    with pytest.raises(InputError, match=r"has 2 features \(a, b\); the model was trained on 5 \(age, dose,"):
        evaluate(str(checkpoint), tmp_path / "evaluation", str(other), "all")
    with pytest.raises(InputError, match=r"label_column=outcome: .* has no header line naming its columns"):
        evaluate(str(checkpoint), tmp_path / "evaluation", str(pima_csv), "all")

    summary = cli("summary", f"ckpt_path={checkpoint}")
    assert "Inputs: age, dose, weight, score, pressure" in summary.stdout
    assert "Total params: 157" in summary.stdout  # 5*12+12 + 12*6+6 + 6+1


@pytest.fixture(scope="module")
def csv_with_an_id(five_feature_csv, tmp_path_factory):
    """five.csv with a text ID first and a free-text note last: columns that are not features."""
    path, features, labels = five_feature_csv
    header, *rows = path.read_text().splitlines()
    lines = [f"patient_id,{header},note"] + [f"P{k:04d},{row},seen on day {k}" for k, row in enumerate(rows)]
    with_id = tmp_path_factory.mktemp("data") / "with_id.csv"
    with_id.write_text("\n".join(lines) + "\n")
    return with_id, features, labels


def test_ignored_columns_are_not_features_and_are_never_read_as_numbers(csv_with_an_id):
    path, features, labels = csv_with_an_id
    read = read_labelled_csv(path, label_column="outcome", ignore_columns=["patient_id", "note"])
    np.testing.assert_allclose(read.features, features, atol=1e-4)
    assert read.labels.tolist() == labels.tolist()
    assert read.feature_names == ["age", "dose", "weight", "score", "pressure"]
    header = path.read_text().splitlines()[0].split(",")
    assert csvfile._parsed_by_pandas(path, header, [0, 7]) is not None  # read in one pass, not line by line
    # a text column is categories, but not one of 400 distinct values: an ID, to leave out
    id_column = (
        r"column 'patient_id' holds 400 distinct values \('P0000', 'P0001', 'P0002', ...\); at most 200 "
        r"categories are one-hot encoded: is it an ID or free text\? \(data.ignore_columns=\[patient_id\]\)"
    )
    with pytest.raises(InputError, match=id_column):
        read_labelled_csv(path, label_column="outcome")
    with pytest.raises(InputError, match=r"data.ignore_columns=\[outcome\]: 'outcome' is the label column"):
        read_labelled_csv(path, label_column="outcome", ignore_columns=["outcome"])
    with pytest.raises(InputError, match=r"data.ignore_columns=\[height\]: .* has no column 'height'"):
        read_labelled_csv(path, label_column="outcome", ignore_columns=["height"])


def test_a_run_that_ignores_an_id_column_trains_evaluates_and_predicts_on_its_own_file(
    csv_with_an_id, train_cli, tmp_path
):
    path, features, _ = csv_with_an_id
    run_dir = tmp_path / "run"
    result = train_cli(
        f"data.path={path}", "data.label_column=outcome", "data.ignore_columns=[patient_id,note]",
        "trainer.max_epochs=5", "trainer.enable_progress_bar=false", run_dir=run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Inputs: age, dose, weight, score, pressure" in result.stdout
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    model, split = load_checkpoint(checkpoint)
    assert split["ignore_columns"] == ["patient_id", "note"]
    (tmp_path / "evaluation").mkdir()  # the held-out rows of the same file, its columns as the run read them
    report = evaluate(str(checkpoint), tmp_path / "evaluation", str(path), "held_out")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert report["n_rows"] == 132 and report["acc"] == pytest.approx(metrics["test/acc"])
    probabilities = predict(str(checkpoint), str(path), tmp_path / "p.csv")  # ID, label and note not read
    np.testing.assert_allclose(probabilities, predicted_probabilities(model, features), atol=1e-5)


def test_the_data_module_leaves_out_rows_without_a_label_and_says_how_many(pima_csv, tmp_path, caplog):
    lines = pima_csv.read_text().splitlines()
    for row in (3, 100, 700):
        lines[row] = lines[row].rsplit(",", 1)[0] + ","
    path = tmp_path / "three_unlabelled.csv"
    path.write_text("\n".join(lines) + "\n")
    datamodule = PimaDataModule(path=str(path))
    with caplog.at_level(logging.WARNING, logger="pima_lightning.data"):
        datamodule.setup("fit")
    assert f"{path}: 3 rows without a label left out of training and scoring" in caplog.text
    assert len(datamodule.train_set) + len(datamodule.test_set) == 765
