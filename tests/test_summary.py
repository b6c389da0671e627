import numpy as np
import torch

from pima_lightning.model import MLP
from pima_lightning.summary import model_summary


def test_summary_lists_layers_shapes_and_193_parameters():
    text = model_summary(MLP())
    assert "1 (Linear)        (None, 12)         108" in text
    assert "4 (Linear)        (None, 6)           78" in text
    assert "7 (Linear)        (None, 1)            7" in text
    assert "Total params: 193" in text and "Trainable params: 193" in text
    assert "Input scaling: none (raw features)" in text
    scaled = model_summary(MLP(feature_mean=np.ones(8), feature_scale=np.full(8, 2.0)))
    assert "Input scaling: z-score" in scaled


def test_summary_follows_the_configured_widths():
    assert "Total params: 833" in model_summary(MLP(hidden=[32, 16]))  # 8*32+32 + 32*16+16 + 16+1


def test_summary_cli_prints_without_writing_files(cli, tmp_path):
    result = cli("summary", "model.hidden=[32,16]")
    assert result.returncode == 0, result.stderr
    assert "Total params: 833" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_get_weights_has_keras_shapes_and_values():
    network = MLP()
    weights = network.get_weights()
    assert [w.shape for w in weights] == [(8, 12), (12,), (12, 6), (6,), (6, 1), (1,)]
    np.testing.assert_array_equal(weights[0], network.linear_layers()[0].weight.detach().numpy().T)
    assert sum(w.size for w in weights) == 193


def test_summary_leaves_the_random_stream_and_the_mode_alone():
    network = MLP()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model_summary(network)
    assert torch.equal(torch.rand(3), expected)
    assert network.training
