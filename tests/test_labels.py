"""Labels of any two values (issue 27 §5): text or numbers, the classes in sorted order (numbers by value,
then text), their names kept in the model and used in predictions, pictures and reports."""

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from pima_lightning import PimaClassifier, PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.inputs.csvfile import read_labelled_csv
from pima_lightning.inputs.frames import labelled_frame

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("cells", "classes", "codes"),
    [
        (["yes", "no", " yes", "no"], ["no", "yes"], [1, 0, 1, 0]),  # stripped: ' yes' is 'yes'
        (["2", "1", "2.0", "1"], ["1", "2"], [1, 0, 1, 0]),  # numbers by value: 2 and 2.0 are one class
        (["1", "-1", "-1", "1"], ["-1", "1"], [1, 0, 0, 1]),
        (["10", "9", "9", "10"], ["9", "10"], [1, 0, 0, 1]),  # by value, not as text ('10' < '9')
        (["0", "1", "1", "0"], ["0", "1"], [0, 1, 1, 0]),  # the notebook's labels keep their codes
        (["tested_positive", "tested_negative", "NA", "tested_negative"],
         ["tested_negative", "tested_positive"], [1, 0, 0]),  # a row without a label is left out
    ],
)  # fmt: skip
def test_any_two_label_values_are_the_classes_in_order(tmp_path, cells, classes, codes):
    rows = [f"{index},{index * 2},{cell}" for index, cell in enumerate(cells)]
    read = read_labelled_csv(write(tmp_path, "labels.csv", "a,b,outcome\n" + "\n".join(rows) + "\n"))
    assert read.classes == classes and read.labels.tolist() == codes
    assert read.features.shape == (len(codes), 2)


def test_text_labels_and_a_bad_feature_cell_still_name_the_cell(tmp_path):
    path = write(tmp_path, "bad.csv", "a,b,sex\n1,2,male\n3,x,female\n")
    with pytest.raises(InputError, match=r"line 3, column 2 \('b'\): 'x' is not a number"):
        read_labelled_csv(path)


def test_a_label_of_ids_or_too_many_classes_is_one_line(tmp_path):
    ids = "\n".join(f"{row},{row + 1},patient{row}" for row in range(30))
    with pytest.raises(
        InputError, match=r"holds 30 distinct values .*at most 20 classes are accepted: is it an ID"
    ):
        read_labelled_csv(write(tmp_path, "ids.csv", "a,b,who\n" + ids + "\n"))


def test_frames_take_text_and_boolean_labels():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "ok": [True, False, True, None]})
    read = labelled_frame(frame.astype({"ok": "object"}))
    assert read.classes == ["False", "True"] and read.labels.tolist() == [1, 0, 1] and read.unlabelled == 1
    spoken = labelled_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "answer": ["no", "yes", "no"]}))
    assert spoken.classes == ["no", "yes"] and spoken.labels.tolist() == [0, 1, 0]


@pytest.fixture
def breast_cancer_text_csv(tmp_path):
    """scikit-learn's breast-cancer table as a CSV with a text id first and a text diagnosis last."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = np.where(frame.pop("target") == 1, "benign", "malignant")
    frame.insert(0, "id", [f"p{row}" for row in range(len(frame))])
    path = tmp_path / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


def test_text_labels_travel_in_the_model_to_predictions_pictures_and_evaluation(
    breast_cancer_text_csv, train_cli, cli, tmp_path
):
    run_dir = tmp_path / "run"
    settings = [
        f"data.path={breast_cancer_text_csv}",
        "data.label_column=diagnosis",
        "data.ignore_columns=[id]",
    ]
    result = train_cli(
        *settings, "optimizer=adam", "trainer.max_epochs=5", "data.batch_size=32", run_dir=run_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    model, _ = load_checkpoint(ckpt)
    assert model.hparams.classes == ["benign", "malignant"]
    assert PimaClassifier.load_from_checkpoint(ckpt, weights_only=True).hparams.classes == [
        "benign",
        "malignant",
    ]
    output = tmp_path / "predictions.csv"
    predicted = cli("predict", f"ckpt_path={ckpt}", f"input={breast_cancer_text_csv}", f"output={output}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    table = pd.read_csv(output)
    assert set(table["class"]) <= {"benign", "malignant"}
    assert (table["class"] == np.where(table["probability"] > 0.5, "malignant", "benign")).all()
    truth = pd.read_csv(breast_cancer_text_csv)["diagnosis"]
    assert (table["class"] == truth).mean() > 0.85
    evaluated = cli("evaluate", f"ckpt_path={ckpt}", f"data.path={breast_cancer_text_csv}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    other = tmp_path / "other.csv"
    frame = pd.read_csv(breast_cancer_text_csv)
    frame["diagnosis"] = frame["diagnosis"].map({"benign": "B", "malignant": "M"})
    frame.to_csv(other, index=False)
    refused = cli("evaluate", f"ckpt_path={ckpt}", f"data.path={other}", "data.rows=all")
    assert refused.returncode != 0
    assert "its labels are B, M; the model's classes are benign, malignant" in refused.stderr


def test_a_plain_trainer_on_text_labels_names_its_classes(breast_cancer_text_csv):
    L.seed_everything(7)
    datamodule = PimaDataModule(
        path=str(breast_cancer_text_csv), label_column="diagnosis", ignore_columns=["id"], batch_size=32
    )
    model = PimaClassifier(optimizer={"_target_": "torch.optim.Adam", "lr": 0.003})
    trainer = L.Trainer(max_epochs=3, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    assert datamodule.classes == ["benign", "malignant"] and model.hparams.classes == ["benign", "malignant"]
    assert datamodule.class_names == ["diagnosis = benign", "diagnosis = malignant"]
    renamed = PimaDataModule(
        path=str(breast_cancer_text_csv), label_column="diagnosis", ignore_columns=["id"],
        class_names=["harmless", "cancer"],
    )  # fmt: skip
    renamed.setup("fit")
    assert renamed.class_names == ["harmless (benign)", "cancer (malignant)"]
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    labels = datamodule.test_set.tensors[1]
    assert ((probabilities > 0.5).float() == labels).float().mean() > 0.85  # class 1 is 'malignant'
