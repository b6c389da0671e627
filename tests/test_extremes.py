"""No silent wrong numbers and nothing raw on the terminal (issue 18 rows 14 and 17): values that would
overflow the model's float32 arithmetic are refused where they are read, an output that is not a finite
probability is an error naming the rows, and text from a file or a checkpoint is never printed with its
control characters."""

import pytest
import torch

from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.inputs.csvfile import read_labelled_csv
from pima_lightning.runs.exits import user_error

ROW = "6,148,72,35,0,33.6,0.627,50"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pima_csv):
    from conftest import compose_config

    from pima_lightning.train import train

    run_dir = tmp_path_factory.mktemp("run")
    train(compose_config(["trainer.max_epochs=1", "trainer.enable_progress_bar=false"], run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def test_values_whose_arithmetic_would_overflow_float32_are_refused_at_read(tmp_path):
    """3e38 is inside float32's range, but centring it (x - mean) overflows: the run would fail in
    training with the blame on the learning rate, and predict would write nan."""
    path = tmp_path / "big.csv"
    path.write_text(f"{ROW},1\n1,85,66,29,0,26.6,0.351,3e38,0\n")
    with pytest.raises(InputError, match=r"line 2, column 8: '3e38' is beyond ±1e\+30"):
        read_labelled_csv(path)


def test_an_output_that_is_not_a_finite_probability_is_an_error_naming_the_rows(trained, cli, tmp_path):
    """Finite but extreme weights (a crafted or diverged checkpoint) overflow to nan: before, predict
    wrote ``nan,0`` and exited 0."""
    checkpoint = torch.load(trained, weights_only=True)
    for layer in ("network.0.weight", "network.3.weight"):  # inf units, then inf - inf
        checkpoint["state_dict"][layer] *= 3e37
    extreme = tmp_path / "extreme.ckpt"
    torch.save(checkpoint, extreme)
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join([ROW, "1,85,66,29,0,26.6,0.351,31", ROW]) + "\n")
    output = tmp_path / "predictions.csv"
    result = cli("predict", f"ckpt_path={extreme}", f"input={rows}", f"output={output}")
    assert result.returncode == 1
    said = result.stderr.strip()
    assert (
        said.startswith(f"error: {rows}: the model gives no finite probability for rows ")
        and "\n" not in said
    )
    assert not output.exists()


CONTROL = "\x1b[2J\x1b[31mred\rBEL\x07"


def test_text_from_a_checkpoint_or_a_csv_header_with_control_characters_is_refused(trained, tmp_path):
    checkpoint = torch.load(trained, weights_only=True)
    checkpoint["hyper_parameters"]["feature_names"] = [CONTROL, *[f"x{k}" for k in range(7)]]
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    with pytest.raises(InputError, match=r"feature_names=\[.*\]: expected a list of names") as refused:
        load_checkpoint(crafted)
    assert "\x1b" not in str(refused.value) and "\\x1b" in str(refused.value)
    header = tmp_path / "header.csv"
    header.write_text(",".join(["\x1b[31mred\x07", *[f"x{k}" for k in range(7)], "outcome"]) + f"\n{ROW},1\n")
    with pytest.raises(InputError, match="holds a control character") as refused:
        read_labelled_csv(header)
    assert "\x1b" not in str(refused.value) and "\x07" not in str(refused.value)


def test_the_error_line_escapes_control_characters_from_paths_and_settings(trained, cli, tmp_path):
    missing = tmp_path / f"rows{CONTROL}.csv"
    result = cli("predict", f"ckpt_path={trained}", f"input='{missing}'")  # quoted for Hydra's grammar
    said = result.stderr.strip()
    assert result.returncode == 1 and said.startswith("error: ")
    assert not any(ord(char) < 32 or ord(char) == 127 for char in said)
    assert "\\x1b[2J" in said
    assert user_error(InputError("a\x1b[31mb\x9bc\rd")) == "a\\x1b[31mb\\x9bc d"
