import json

import numpy as np
import pytest
from conftest import predicted_probabilities
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pima_lightning.errors import InputError
from pima_lightning.evaluate import evaluate
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.train import train

PICTURES = ("roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png")


@pytest.fixture
def trained_run(make_config, fast, tmp_path):
    """A short training run: (its directory, its test metrics)."""
    metrics = train(make_config(*fast))
    return tmp_path, metrics


def test_evaluate_reproduces_the_training_runs_held_out_metrics(trained_run, tmp_path):
    run_dir, metrics = trained_run
    out = tmp_path / "evaluation"
    out.mkdir()
    report = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), out)
    assert report["n_rows"] == 254
    for name in ("loss", "acc", "auroc", "f1", "precision", "recall"):
        assert report[name] == pytest.approx(metrics[f"test/{name}"], abs=1e-6)
    assert json.loads((out / "evaluation.json").read_text()) == report
    for picture in PICTURES:
        assert Image.open(out / picture).size[0] > 300
        assert Image.open(run_dir / picture).size[0] > 300  # training draws them too
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {f"evaluate/{p.removesuffix('.png')}" for p in PICTURES}


def test_evaluate_knows_the_training_file_by_content_and_counts_training_rows(
    trained_run, tmp_path, pima_csv
):
    """Issue 25 row 4: the public copy named by its path was scored whole (768 rows, 514 of them training
    rows) without a word; it is the file the model was trained on, so its held-out rows are scored."""
    run_dir, metrics = trained_run
    out = tmp_path / "evaluation"
    out.mkdir()
    held_out = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), out, str(pima_csv))
    assert held_out["n_rows"] == 254 and held_out["training_rows_scored"] == 0
    assert held_out["acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    report = evaluate(str(run_dir / "checkpoints" / "last.ckpt"), out, str(pima_csv), "all")
    assert report["n_rows"] == 768 and report["training_rows_scored"] == 514
    assert "514 of them rows the model was trained on" in report["rows"]
    model, _ = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    dataset = np.loadtxt(pima_csv, delimiter=",")
    accuracy = ((predicted_probabilities(model, dataset[:, :8]) > 0.5) == dataset[:, 8]).mean()
    assert report["acc"] == pytest.approx(accuracy, abs=1e-6)


def test_evaluate_rejects_a_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found; pass ckpt_path="):
        evaluate(str(tmp_path / "none.ckpt"), tmp_path)
    foreign = tmp_path / "foreign.ckpt"
    foreign.write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a pima_lightning checkpoint"):
        evaluate(str(foreign), tmp_path)


def test_evaluate_cli_prints_a_table_and_writes_json(trained_run, cli, tmp_path):
    run_dir, metrics = trained_run
    result = cli("evaluate", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", run_dir=tmp_path / "ev")
    assert result.returncode == 0, result.stderr
    assert f"acc        {metrics['test/acc']:.4f}" in result.stdout
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["n_rows"] == 254


def test_evaluate_cli_without_checkpoint_says_what_to_pass(cli):
    result = cli("evaluate")
    assert result.returncode != 0
    assert (
        result.stderr.strip() == "error: no checkpoint given; pass ckpt_path=<run dir>/checkpoints/last.ckpt"
    )


def test_evaluate_rebuilds_the_held_out_rows_of_a_csv_the_user_names(make_config, fast, tmp_path, pima_csv):
    own_csv = tmp_path / "own.csv"
    own_csv.write_bytes(pima_csv.read_bytes())
    metrics = train(make_config(*fast, f"data.path={own_csv}", f"output_dir={tmp_path / 'run'}"))
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"was trained on .*own\.csv', not the public copy"):
        evaluate(checkpoint, tmp_path / "out")  # the checkpoint names the file; it is not opened
    report = evaluate(checkpoint, tmp_path / "out", str(own_csv), "held_out")
    assert report["n_rows"] == 254 and report["acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    # naming the CSV it was trained on, as the refusal says, means its held-out rows (not all 768,
    # the training rows among them), unless every row is asked for
    assert evaluate(checkpoint, tmp_path / "out", str(own_csv))["n_rows"] == 254
    assert evaluate(checkpoint, tmp_path / "out", str(own_csv), "all")["n_rows"] == 768
    other_copy = tmp_path / "copy.csv"
    other_copy.write_bytes(pima_csv.read_bytes())
    assert evaluate(checkpoint, tmp_path / "out", str(other_copy))["n_rows"] == 254  # the same bytes
    with pytest.raises(InputError, match=r"data\.rows=every: expected held_out, or all with data\.path=CSV"):
        evaluate(checkpoint, tmp_path / "out", str(own_csv), "every")
