import numpy as np
import pytest

from pima_lightning.evaluate import evaluate
from pima_lightning.train import train


@pytest.fixture
def checkpoint(make_config, fast, tmp_path):
    train(make_config(*fast))
    return tmp_path / "checkpoints" / "last.ckpt"


def read_predictions(path):
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    assert path.read_text().splitlines()[0] == "probability,class"
    return table[:, 0], table[:, 1]


def test_predict_on_the_held_out_rows_agrees_with_evaluate(checkpoint, cli, tmp_path, notebook_split):
    # the checkpoint's own held-out rows, raw, written as a CSV without labels (and, as the public copy
    # it was trained on, without a header: a header it cannot match by name is refused, test_trust.py)
    _, x_test, _, y_test = notebook_split
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, x_test, delimiter=",")
    output = tmp_path / "scored.csv"

    result = cli("predict", f"ckpt_path={checkpoint}", f"input={rows}", f"output={output}")
    assert result.returncode == 0, result.stderr
    probabilities, classes = read_predictions(output)
    assert len(probabilities) == 254
    np.testing.assert_array_equal(classes, probabilities > 0.5)
    report = evaluate(str(checkpoint), tmp_path)
    assert (classes == y_test).mean() == pytest.approx(report["acc"], abs=1e-6)


def test_predict_ignores_a_label_column_and_defaults_to_the_run_dir(checkpoint, cli, tmp_path, pima_csv):
    result = cli("predict", f"ckpt_path={checkpoint}", f"input={pima_csv}", run_dir=tmp_path / "p")
    assert result.returncode == 0, result.stderr
    probabilities, _ = read_predictions(tmp_path / "p" / "predictions.csv")
    assert len(probabilities) == 768
    assert ((probabilities > 0) & (probabilities < 1)).all()


def test_predict_rejects_bad_rows_with_one_line(checkpoint, cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("6,148,72,35,0,33.6,0.627,50\n1,85,66,29,0,thin,0.351,31\n")
    output = tmp_path / "out.csv"
    result = cli("predict", f"ckpt_path={checkpoint}", f"input={bad}", f"output={output}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}, line 2, column 6: 'thin' is not a number; the model reads this column as numbers; "
        "correct it, or empty it to mark it missing"
    )
    assert not output.exists()
