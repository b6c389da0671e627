import numpy as np
import torch

from pima_lightning.ensembles.classifier import StackedClassifier
from pima_lightning.model import PimaClassifier
from pima_lightning.summary import model_summary


def test_summary_lists_layers_by_their_keras_names_shapes_and_193_parameters():
    model = PimaClassifier(n_features=8)
    text = model_summary(model)
    assert "normalization (Standardize)   (None, 8)            0" in text
    assert "dense (Linear)                (None, 12)         108" in text
    assert "dropout (Dropout)             (None, 12)           0" in text
    assert "dense_1 (Linear)              (None, 6)           78" in text
    assert "dense_2 (Linear)              (None, 1)            7" in text
    assert "Total params: 193" in text and "Trainable params: 193" in text
    assert "Input scaling: none (raw features)" in text
    model.preprocess.scale.fill_(2.0)
    assert "Input scaling: z-score" in model_summary(model)


def test_summary_follows_the_configured_widths_and_replicas():
    assert "Total params: 833" in model_summary(
        PimaClassifier(n_features=8, hidden=[32, 16])
    )  # 8*32+32 + ...
    replicated = model_summary(StackedClassifier(4, n_features=8))
    assert "dense (StackedLinear)         (4, None, 12)       432" in replicated
    assert (
        "Total params: 772" in replicated
        and "Replicas: 4 independent copies of 193 parameters each" in replicated
    )


def test_summary_cli_prints_without_writing_files(cli, tmp_path):
    result = cli("summary", "model.hidden=[32,16]")
    assert result.returncode == 0, result.stderr
    assert "Total params: 833" in result.stdout
    assert "Input scaling: z-score with training-row statistics, fitted when training starts" in result.stdout
    assert list(tmp_path.iterdir()) == []
    raw = cli("summary", "data.standardize=false")
    assert "Input scaling: none (raw features; data.standardize=false)" in raw.stdout
    refused = cli("summary", "model.replicas=0")
    assert (
        refused.returncode == 1
        and refused.stderr.strip() == "error: model.replicas=0: expected a whole number from 1 to 100000"
    )


def test_get_weights_has_keras_shapes_and_values():
    rows = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)

    def keras_forward(kernel_1, bias_1, kernel_2, bias_2, kernel_3, bias_3):
        hidden = np.maximum(np.maximum(rows @ kernel_1 + bias_1, 0) @ kernel_2 + bias_2, 0)
        return (hidden @ kernel_3 + bias_3)[:, 0]

    model = PimaClassifier(n_features=8).eval()
    weights = model.network.get_weights()
    assert [w.shape for w in weights] == [(8, 12), (12,), (12, 6), (6,), (6, 1), (1,)]
    assert sum(w.size for w in weights) == 193
    with torch.no_grad():  # Keras's arithmetic on Keras's arrays gives the network's output
        np.testing.assert_allclose(model(torch.from_numpy(rows)).numpy(), keras_forward(*weights), atol=1e-6)
    ensemble = StackedClassifier(2, n_features=8).eval()
    for replica in (0, 1):
        with torch.no_grad():
            np.testing.assert_allclose(
                ensemble(torch.from_numpy(rows))[replica].numpy(),
                keras_forward(*ensemble.network.get_weights(replica)),
                atol=1e-6,
            )


def test_summary_leaves_the_random_stream_and_the_mode_alone():
    model = PimaClassifier(n_features=8)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model_summary(model)
    assert torch.equal(torch.rand(3), expected)
    assert model.training
