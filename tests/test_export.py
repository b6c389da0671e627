import shutil

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import predicted_probabilities
from hydra import compose, initialize_config_module

from pima_lightning.errors import InputError
from pima_lightning.export import export
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.train import train


@pytest.fixture(scope="module", params=[1, 3], ids=["one model", "3 replicas"])
def checkpoint_and_rows(request, tmp_path_factory, notebook_split):
    """A short training run's checkpoint and its raw held-out rows; with replicas, the export scores
    with their ensemble, as ``predict_step`` does."""
    run_dir = tmp_path_factory.mktemp("run")
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"output_dir={run_dir}", "trainer.max_epochs=3",
                                           f"model.replicas={request.param}",
                                           "trainer.enable_progress_bar=false"])  # fmt: skip
    train(cfg)
    return run_dir / "checkpoints" / "last.ckpt", notebook_split[1].astype(np.float32)


def expected(checkpoint, rows):
    return predicted_probabilities(load_checkpoint(checkpoint)[0], rows)


def test_onnx_export_scores_raw_rows_like_the_checkpoint(checkpoint_and_rows, tmp_path):
    checkpoint, rows = checkpoint_and_rows
    path = export(str(checkpoint), "onnx", str(tmp_path / "model.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # weights inside: no side file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(path, elsewhere / "copied.onnx")  # the one file alone, as a user would hand it on
    session = onnxruntime.InferenceSession(str(elsewhere / "copied.onnx"))
    (probabilities,) = session.run(["probability"], {"features": rows})
    assert probabilities.shape == (254,)
    np.testing.assert_allclose(probabilities, expected(checkpoint, rows), atol=1e-6)
    (one,) = session.run(["probability"], {"features": rows[:1]})  # any number of rows
    np.testing.assert_allclose(one, probabilities[:1], atol=1e-6)


def test_torchscript_and_pt2_exports_score_raw_rows_like_the_checkpoint(checkpoint_and_rows, tmp_path):
    checkpoint, rows = checkpoint_and_rows
    scripted = torch.jit.load(export(str(checkpoint), "torchscript", str(tmp_path / "model.pt")))
    program = torch.export.load(export(str(checkpoint), "pt2", str(tmp_path / "model.pt2"))).module()
    for module in (scripted, program):
        with torch.no_grad():
            probabilities = module(torch.from_numpy(rows)).numpy()
        np.testing.assert_allclose(probabilities, expected(checkpoint, rows), atol=1e-6)


def test_export_defaults_beside_the_checkpoint_and_rejects_unknown_formats(checkpoint_and_rows, tmp_path):
    checkpoint, _ = checkpoint_and_rows
    assert export(str(checkpoint), "pt2") == checkpoint.with_suffix(".pt2")
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt", "last.pt2"]
    with pytest.raises(InputError, match="format=h5: expected one of onnx, torchscript, pt2"):
        export(str(checkpoint), "h5")


def test_the_export_command_says_where_it_wrote_and_nothing_else(checkpoint_and_rows, cli, tmp_path):
    checkpoint, _ = checkpoint_and_rows
    output = tmp_path / "model.onnx"
    result = cli("export", f"ckpt_path={checkpoint}", f"output={output}")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == (f"Wrote {output}\n", "")  # no exporter notes
