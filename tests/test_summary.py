import numpy as np
import torch

from pima_lightning.model import MLP
from pima_lightning.summary import model_summary


def test_summary_lists_layers_shapes_and_193_parameters():
    text = model_summary(MLP())
    assert "1 (ReplicatedLinear)   (None, 12)         108" in text
    assert "4 (ReplicatedLinear)   (None, 6)           78" in text
    assert "7 (ReplicatedLinear)   (None, 1)            7" in text
    assert "Total params: 193" in text and "Trainable params: 193" in text
    assert "Input scaling: none (raw features)" in text
    scaled = model_summary(MLP(feature_mean=np.ones(8), feature_scale=np.full(8, 2.0)))
    assert "Input scaling: z-score" in scaled


def test_summary_follows_the_configured_widths_and_replicas():
    assert "Total params: 833" in model_summary(MLP(hidden=[32, 16]))  # 8*32+32 + 32*16+16 + 16+1
    replicated = model_summary(MLP(replicas=4))
    assert "1 (ReplicatedLinear)   (4, None, 12)       432" in replicated
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


def test_get_weights_has_keras_shapes_and_values():
    network = MLP(replicas=2)
    weights = network.get_weights()
    assert [w.shape for w in weights] == [(8, 12), (12,), (12, 6), (6,), (6, 1), (1,)]
    assert sum(w.size for w in weights) == 193
    rows = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    for replica in (0, 1):  # Keras's arithmetic on Keras's arrays gives the network's output
        kernel_1, bias_1, kernel_2, bias_2, kernel_3, bias_3 = network.get_weights(replica)
        hidden = np.maximum(np.maximum(rows @ kernel_1 + bias_1, 0) @ kernel_2 + bias_2, 0)
        expected = (hidden @ kernel_3 + bias_3)[:, 0]
        with torch.no_grad():
            np.testing.assert_allclose(
                network.eval()(torch.from_numpy(rows))[replica].numpy(), expected, atol=1e-6
            )


def test_summary_leaves_the_random_stream_and_the_mode_alone():
    network = MLP()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model_summary(network)
    assert torch.equal(torch.rand(3), expected)
    assert network.training
