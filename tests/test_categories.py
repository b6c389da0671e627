"""Categorical features (issue 27 §4): text columns (and ``data.categorical_columns``) are read as codes of
their categories, one-hot encoded inside the model with one input for any value the training rows lacked;
the category lists travel in the checkpoint as plain data, and the ONNX metadata names them."""

import json

import lightning as L
import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from pima_lightning import PimaClassifier, PimaDataModule
from pima_lightning.data import fitted_inputs
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.inputs.csvfile import read_feature_rows, read_labelled_csv
from pima_lightning.model import OneHotCategories

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
CITIES = ["north", "south", "east", "west"]


def mixed_frame(rows: int = 450, seed: int = 5) -> pd.DataFrame:
    """An id, two numeric features (one with missing cells), a text category with missing cells, a text
    category of four values, a numeric code that is a category, and a label of three text classes that
    depends on all of them."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, rows).round(1)
    income = rng.normal(50, 15, rows).round(2)
    sex = rng.choice(["female", "male"], rows)
    city = rng.choice(CITIES, rows)
    plan = rng.choice([1, 2, 3], rows)
    score = (age - 45) / 12 + np.where(sex == "male", 1.2, -1.2) + np.select(
        [city == "north", city == "south"], [2.0, -2.0], 0.0
    ) + np.where(plan == 3, 1.5, 0.0)  # fmt: skip
    label = np.array(["low", "mid", "high"])[np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))]
    frame = pd.DataFrame({"id": [f"c{k}" for k in range(rows)], "age": age, "income": income, "sex": sex,
                          "city": city, "plan": plan, "level": label})  # fmt: skip
    frame.loc[::13, "age"] = np.nan
    frame.loc[::17, "sex"] = np.nan
    return frame


@pytest.fixture
def mixed_csv(tmp_path):
    path = tmp_path / "mixed.csv"
    mixed_frame().to_csv(path, index=False)
    return path


SETTINGS = ["data.label_column=level", "data.ignore_columns=[id]", "data.categorical_columns=[plan]"]


def test_text_columns_are_categories_coded_in_order_and_numeric_codes_on_request(mixed_csv):
    read = read_labelled_csv(mixed_csv, label_column="level", ignore_columns=["id"])
    assert read.feature_names == ["age", "income", "sex", "city", "plan"]
    assert read.categories == {2: ["female", "male"], 3: ["east", "north", "south", "west"]}
    assert read.classes == ["high", "low", "mid"]
    frame = mixed_frame()
    expected_city = frame["city"].map({name: code for code, name in enumerate(sorted(CITIES))})
    np.testing.assert_array_equal(read.features[:, 3], expected_city.to_numpy())
    assert np.isnan(read.features[::17, 2]).all() and not np.isnan(read.features[1::17, 2]).any()
    declared = read_labelled_csv(
        mixed_csv, label_column="level", ignore_columns=["id"], categorical_columns=["plan"]
    )
    assert declared.categories[4] == ["1", "2", "3"]
    np.testing.assert_array_equal(declared.features[:, 4], frame["plan"].to_numpy() - 1)
    # a trained model's categories code another file: a value it never saw is -1
    fixed = read_labelled_csv(
        mixed_csv,
        label_column="level",
        ignore_columns=["id"],
        categories={2: ["female", "male"], 3: ["north", "south"]},
    )
    assert fixed.categories == {2: ["female", "male"], 3: ["north", "south"]}
    assert set(np.unique(fixed.features[:, 3])) == {-1.0, 0.0, 1.0}
    # the frame reads the same
    from_frame = PimaDataModule(
        frame=frame, label_column="level", ignore_columns=["id"], categorical_columns=["plan"]
    )
    from_frame.setup("fit")
    assert from_frame.categories == declared.categories


def test_the_line_reader_codes_categories_as_pandas_does(tmp_path, mixed_csv):
    """A quoted cell sends a table with missing cells to the line-by-line reader: the same codes."""
    text = mixed_csv.read_text().replace("c1,", '"c1",', 1)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(text)
    by_pandas = read_labelled_csv(mixed_csv, label_column="level", ignore_columns=["id"])
    by_lines = read_labelled_csv(quoted, label_column="level", ignore_columns=["id"])
    assert by_lines.categories == by_pandas.categories
    np.testing.assert_array_equal(by_lines.features, by_pandas.features)


@pytest.mark.parametrize(
    ("change", "settings", "message"),
    [
        (lambda f: f.assign(note=[f"free text {k}" for k in range(len(f))]), {},
         "column 'note' holds 450 distinct values ('free text 0', 'free text 1', 'free text 10', ...); at "
         "most 200 categories are one-hot encoded: is it an ID or free text? (data.ignore_columns=[note])"),
        (lambda f: f.iloc[:40].assign(note=[f"n{k}" for k in range(40)]), {},
         "column 'note' is text with a different value in every row ('n0', 'n1', 'n10', ...): an ID or "
         "free text, not categories; leave it out (data.ignore_columns=[note])"),
        (lambda f: f, {"categorical_columns": ["height"]},
         "data.categorical_columns=[height]: 'height' is not a feature column; expected a feature's name "
         "from the header (age, income, sex, city, plan)"),
        (lambda f: f, {"categorical_columns": ["level"]},
         "data.categorical_columns=[level]: 'level' is not a feature column"),
    ],
    ids=["too-many", "an-id", "no-such-column", "the-label"],
)  # fmt: skip
def test_what_cannot_be_categories_is_refused_in_one_line(tmp_path, change, settings, message):
    path = tmp_path / "table.csv"
    change(mixed_frame()).to_csv(path, index=False)
    with pytest.raises(InputError) as refused:
        read_labelled_csv(path, label_column="level", ignore_columns=["id"], **settings)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_missing_values_are_not_declared_for_a_categorical_column(mixed_csv):
    datamodule = PimaDataModule(
        path=str(mixed_csv), label_column="level", ignore_columns=["id"], missing_values={"city": [0]}
    )
    with pytest.raises(InputError, match="'city' is a categorical column, whose empty and NA cells are a "):
        datamodule.setup("fit")


def test_one_hot_inputs_known_categories_any_other_value_and_missing():
    """Column 1 has 3 categories, of which the training rows held 0 and 2; column 0 is a number."""
    one_hot = OneHotCategories(2, {1: 3})
    one_hot.known = torch.tensor([1.0, 0.0, 1.0])
    rows = torch.tensor([[5.0, 0.0], [6.0, 2.0], [7.0, 1.0], [8.0, -1.0], [9.0, float("nan")]])
    expected = torch.tensor(
        [
            [5, 1, 0, 0, 0],  # category 0
            [6, 0, 0, 1, 0],  # category 2
            [7, 0, 0, 0, 1],  # category 1, which training lacked: any other value
            [8, 0, 0, 0, 1],  # never seen
            [9, 0, 0, 0, 0],  # missing: its was-missing input says so
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(one_hot(rows), expected)
    # one row of known categories a member: each member's rows meet its own
    one_hot.known = torch.tensor([[[1.0, 1.0, 1.0]], [[0.0, 1.0, 1.0]]])
    members = one_hot(rows[:2].expand(2, -1, -1))
    torch.testing.assert_close(members[1, 0], torch.tensor([5.0, 0, 0, 0, 1]))  # member 1 lacks category 0


def test_categories_are_fitted_on_the_training_rows_only():
    """A category only the held-out rows have is "any other value" to the model, as an unseen one is."""
    rows = np.array([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0], [1.0, 4.0]])
    _, mean, scale, known = fitted_inputs(rows, [], True, {0: ["a", "b", "c"]})
    assert known.tolist() == [1.0, 1.0, 0.0]
    assert len(mean) == len(scale) == 1 + 3 + 1  # the number, three categories, any other value
    np.testing.assert_allclose(mean[1:], [0.5, 0.5, 0.0, 0.0])  # its share of the training rows
    np.testing.assert_allclose(scale[3:], [1.0, 1.0])  # never set there: left as it is


def test_the_scaling_is_fitted_on_the_inputs_the_model_makes(mixed_csv):
    """``data.fitted_inputs`` computes the one-hot inputs to scale in numpy; the model's torch steps
    must make the same ones from the training rows: their means and scales are the model's."""
    datamodule = PimaDataModule(
        path=str(mixed_csv), label_column="level", ignore_columns=["id"], categorical_columns=["plan"]
    )
    datamodule.setup("fit")
    model = PimaClassifier()
    model.adapt(datamodule)
    with torch.no_grad():
        inputs = model.one_hot(model.fill_missing(datamodule.train_set.tensors[0]))
    assert inputs.shape[1] == 2 + 1 + 1 + (2 + 4 + 3) + 3  # age, income, age's and sex's indicators, ...
    torch.testing.assert_close(inputs.mean(0), model.preprocess.mean, atol=1e-5, rtol=0)
    spread = inputs.std(0, correction=0)  # StandardScaler's scale, 1 where an input never changes
    assert (spread[-3:] == 0).all()  # the training rows hold no value but their categories
    expected = torch.where(spread > 0, spread, torch.ones_like(spread))
    torch.testing.assert_close(expected, model.preprocess.scale, atol=1e-5, rtol=0)


def test_a_mixed_three_class_table_from_the_cli_to_predictions_evaluation_and_onnx(
    mixed_csv, train_cli, cli, tmp_path
):
    run_dir = tmp_path / "run"
    settings = [f"data.path={mixed_csv}", *SETTINGS]
    result = train_cli(
        *settings, "optimizer=adam", "optimizer.lr=0.01", "trainer.max_epochs=30", run_dir=run_dir
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = (run_dir / "train.log").read_text()
    assert (
        "one_hot (OneHotCategories)" in log and "sex (female, male); city (east, north, south, west)" in log
    )
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    model, _ = load_checkpoint(ckpt)
    assert model.hparams.categories == {2: ["female", "male"], 3: ["east", "north", "south", "west"],
                                        4: ["1", "2", "3"]}  # fmt: skip
    assert model.hparams.classes == ["high", "low", "mid"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.75, metrics
    # the commonest class's share of the 149 held-out rows (three near-equal classes), not the labels' mean
    assert 1 / 3 <= metrics["test/majority_share"] < 0.45 and "test/positive_share" not in metrics
    # rows to score: columns in another order, no label, a city never seen, a missing sex
    rows = mixed_frame(40, seed=9).drop(columns=["level"])[["plan", "city", "sex", "income", "age", "id"]]
    rows.loc[0, "city"], rows.loc[1, "sex"] = "atlantis", np.nan
    rows.to_csv(tmp_path / "rows.csv", index=False)
    output = tmp_path / "predictions.csv"
    predicted = cli("predict", f"ckpt_path={ckpt}", f"input={tmp_path / 'rows.csv'}", f"output={output}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    table = pd.read_csv(output)
    assert list(table.columns) == ["class", "probability_high", "probability_low", "probability_mid"]
    # the same rows through a plain Trainer, coded with the model's categories (its reader; no helper)
    coded = read_feature_rows(
        tmp_path / "rows.csv",
        5,
        feature_names=model.hparams.feature_names,
        categories=model.hparams.categories,
    )
    assert coded[0, 3] == -1 and np.isnan(coded[1, 2])
    features = torch.as_tensor(coded, dtype=torch.float32)
    expected = torch.cat(L.Trainer(**QUIET).predict(model, dataloaders=DataLoader(features, batch_size=16)))
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), expected.numpy(), atol=1e-6)
    assert np.isfinite(expected.numpy()).all()
    evaluated = cli(
        "evaluate", f"ckpt_path={ckpt}", f"data.path={mixed_csv}", f"output_dir={tmp_path / 'ev'}"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert report["acc"] == pytest.approx(
        metrics["test/acc"], abs=1e-6
    )  # the same held-out rows, coded alike
    exported = cli("export", f"ckpt_path={ckpt}", "format=onnx", f"output={tmp_path / 'mixed.onnx'}")
    assert exported.returncode == 0, exported.stderr[-2000:]
    session = onnxruntime.InferenceSession(str(tmp_path / "mixed.onnx"))
    (onnx_probabilities,) = session.run(None, {"features": features.numpy()})
    np.testing.assert_allclose(onnx_probabilities, expected.numpy(), atol=1e-6)
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["categories"]) == {
        "sex": ["female", "male"], "city": ["east", "north", "south", "west"], "plan": ["1", "2", "3"]
    }  # fmt: skip
    assert json.loads(metadata["inputs"]) == ["age", "income", "sex", "city", "plan"]


def test_a_frame_of_categories_with_a_plain_trainer_and_load_from_checkpoint(tmp_path):
    """pandas' category dtype and text columns, a plain Trainer, trainer.predict, load_from_checkpoint."""
    L.seed_everything(7)
    frame = mixed_frame().drop(columns=["id"]).astype({"city": "category"})
    datamodule = PimaDataModule(
        frame=frame, label_column="level", categorical_columns=["plan"], batch_size=16
    )
    model = PimaClassifier(optimizer={"_target_": "torch.optim.Adam", "lr": 0.01})
    trainer = L.Trainer(max_epochs=20, **QUIET)
    trainer.fit(model, datamodule=datamodule)
    assert set(model.hparams.categories) == {2, 3, 4} and model.network[0].in_features == 2 + 1 + 12 + 1
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    trainer.save_checkpoint(tmp_path / "mixed.ckpt")
    loaded = PimaClassifier.load_from_checkpoint(tmp_path / "mixed.ckpt", weights_only=True)
    again = torch.cat(L.Trainer(**QUIET).predict(loaded, datamodule=datamodule))
    torch.testing.assert_close(again, probabilities)
    checked, _ = load_checkpoint(tmp_path / "mixed.ckpt")
    rows = datamodule.test_set.tensors[0]
    with torch.no_grad():
        torch.testing.assert_close(checked(rows), loaded.eval()(rows))


def test_cv_members_and_baselines_one_hot_the_categories(mixed_csv, cli, tmp_path):
    """Two-class version of the mixed table: cv's members each know their own training rows' categories,
    and the scikit-learn baselines one-hot the same columns."""
    frame = pd.read_csv(mixed_csv)
    frame["level"] = (frame["level"] == "high").map({True: "high", False: "other"})
    frame.to_csv(tmp_path / "two.csv", index=False)
    result = cli(
        "cv", f"data.path={tmp_path / 'two.csv'}", *SETTINGS, "cv.folds=3", "trainer.max_epochs=5",
        f"output_dir={tmp_path / 'cv'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    methods = json.loads((tmp_path / "cv" / "cv.json").read_text())["summary"]["methods"]
    # one-hot, logistic regression separates the classes (0.953 here); reading the codes as numbers, 0.778
    assert 0.9 < methods["logistic regression"]["acc"]["mean"] <= 1, methods
    assert 0.75 < methods["network"]["acc"]["mean"] <= 1, methods
