import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from pima_lightning.errors import InputError
from pima_lightning.model import MLP, PimaClassifier


@pytest.fixture
def classifier(make_config):
    """``classifier(*overrides)``: a PimaClassifier built from the composed config, as train builds it."""
    return lambda *overrides: build_classifier(make_config(*overrides))


def build_classifier(cfg) -> PimaClassifier:
    return PimaClassifier(
        **OmegaConf.to_container(cfg.model),
        optimizer=OmegaConf.to_container(cfg.optimizer),
        scheduler=OmegaConf.to_container(cfg.scheduler) or None,
    )


def test_the_notebooks_network_has_193_trainable_parameters():
    network = MLP()
    counts = [layer.weight.numel() + layer.bias.numel() for layer in network.linear_layers()]
    assert counts == [8 * 12 + 12, 12 * 6 + 6, 6 * 1 + 1]
    assert sum(p.numel() for p in network.parameters() if p.requires_grad) == 193
    dense = "ReplicatedLinear"
    assert [type(layer).__name__ for layer in network] == [
        "Standardize", dense, "ReLU", "Dropout", dense, "ReLU", "Dropout", dense,
    ]  # fmt: skip
    assert [layer.p for layer in network if isinstance(layer, torch.nn.Dropout)] == [0.2, 0.2]


def test_hidden_widths_and_dropout_are_configurable():
    network = MLP(hidden=[32, 16, 8], dropout=0.5)
    assert [layer.out_features for layer in network.linear_layers()] == [32, 16, 8, 1]
    assert [layer.weight.shape for layer in MLP(replicas=5).linear_layers()] == [
        (5, 8, 12),
        (5, 12, 6),
        (5, 6, 1),
    ]
    assert {layer.p for layer in network if isinstance(layer, torch.nn.Dropout)} == {0.5}


def test_keras_initialisation():
    torch.manual_seed(0)
    *hidden, output = MLP(replicas=3).linear_layers()
    for layer in hidden:
        limit = math.sqrt(6 / (layer.in_features + layer.out_features))  # Glorot uniform, per replica
        for weight in layer.weight:
            assert weight.abs().max() <= limit
            assert weight.abs().max() > 0.8 * limit  # spread over the range, not a narrower default
    assert output.weight.abs().max() <= 0.05  # Keras 'uniform': U(-0.05, 0.05)
    assert output.weight.abs().max() > 0.03
    assert all(not layer.bias.any() for layer in (*hidden, output))


def test_different_seeds_give_different_weights():
    torch.manual_seed(1)
    first = MLP().linear_layers()[0].weight.clone()
    torch.manual_seed(2)
    assert not torch.equal(first, MLP().linear_layers()[0].weight)


def test_inputs_are_standardised_with_the_stored_statistics():
    mean, scale = np.arange(8.0), np.arange(1.0, 9.0)
    network = MLP(feature_mean=mean, feature_scale=scale).eval()
    plain = MLP().eval()
    plain.load_state_dict(
        {k: v for k, v in network.state_dict().items() if not k.startswith("0.")}, strict=False
    )
    raw = torch.randn(5, 8) * 10 + 3
    standardised = (raw - torch.as_tensor(mean, dtype=torch.float32)) / torch.as_tensor(
        scale, dtype=torch.float32
    )
    torch.testing.assert_close(network(raw), plain(standardised))
    assert set(network.state_dict()) >= {"0.mean", "0.scale"}  # they travel in checkpoints


def test_output_is_one_logit_per_row_and_replica():
    assert MLP()(torch.randn(7, 8)).shape == (1, 7)
    assert MLP(replicas=3)(torch.randn(7, 8)).shape == (3, 7)  # the same rows for every replica
    assert MLP(replicas=3)(torch.randn(3, 7, 8)).shape == (3, 7)  # each replica's own rows
    assert MLP(replicas=3).probability(torch.randn(7, 8)).shape == (7,)


def test_one_replica_computes_what_torch_linear_layers_compute():
    network = MLP(feature_mean=np.full(8, 2.0), feature_scale=np.full(8, 3.0)).eval()
    reference = torch.nn.Sequential(
        torch.nn.Linear(8, 12),
        torch.nn.ReLU(),
        torch.nn.Linear(12, 6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 1),
    )
    with torch.no_grad():
        for mine, theirs in zip(network.linear_layers(), reference[::2], strict=True):
            theirs.weight.copy_(mine.weight[0].T)
            theirs.bias.copy_(torch.randn_like(theirs.bias))
            mine.bias[0, 0].copy_(theirs.bias)
    rows = torch.randn(9, 8) * 5
    torch.testing.assert_close(network(rows)[0], reference((rows - 2) / 3).squeeze(-1))


def test_replicas_share_no_weights_and_draw_their_own_dropout_masks():
    torch.manual_seed(0)
    network = MLP(replicas=4)
    for layer in network.linear_layers():
        assert len({tuple(weight.flatten().tolist()) for weight in layer.weight}) == 4  # own initialisation
    with torch.no_grad():  # make every replica identical: only dropout can then tell them apart
        for layer in network.linear_layers():
            layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
    rows = torch.randn(50, 8)
    network.eval()
    assert all(torch.equal(logits, network(rows)[0]) for logits in network(rows))
    network.train()
    assert len({tuple(logits.tolist()) for logits in network(rows)}) == 4  # a mask of its own each


def test_a_replicas_gradient_is_that_of_its_own_loss_alone(classifier):
    """Training sums the replicas' losses; changing one replica leaves the others' gradients as they were."""
    model = classifier("model.replicas=3", "model.dropout=0").train()
    rows, labels = torch.randn(3, 10, 8), (torch.rand(3, 10) > 0.5).float()

    def gradients():
        model.zero_grad()
        model.objective(model(rows), labels).backward()
        return [layer.weight.grad.clone() for layer in model.network.linear_layers()]

    before = gradients()
    with torch.no_grad():
        for layer in model.network.linear_layers():
            layer.weight[2].mul_(3.0)
    after = gradients()
    for old, new in zip(before, after, strict=True):
        torch.testing.assert_close(old[:2], new[:2])
        assert not torch.allclose(old[2], new[2])


def test_sgd_config_builds_the_notebooks_optimizer(classifier):
    optimizer = classifier().configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.9, True)


def test_adam_config_uses_keras_defaults_and_overrides(classifier):
    optimizer = classifier("optimizer=adam").configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (0.001, (0.9, 0.999), 1e-7)
    fast = classifier("optimizer=adam", "optimizer.lr=0.1").configure_optimizers()
    assert fast.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    ("choice", "kind"),
    [("exponential", torch.optim.lr_scheduler.ExponentialLR), ("step", torch.optim.lr_scheduler.StepLR)],
)
def test_scheduler_choices_decay_the_learning_rate_per_epoch(classifier, choice, kind):
    configured = classifier(f"scheduler={choice}").configure_optimizers()
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, kind)
    assert configured["lr_scheduler"]["interval"] == "epoch"
    before = configured["optimizer"].param_groups[0]["lr"]
    for _ in range(50):
        configured["optimizer"].step()
        scheduler.step()
    assert configured["optimizer"].param_groups[0]["lr"] < before


def test_l1_penalty_sums_absolute_weights_only(classifier):
    model = classifier("model.l1=0.01")
    weights = sum(layer.weight.abs().sum() for layer in model.network.linear_layers())
    torch.testing.assert_close(model.l1_penalty(), 0.01 * weights.reshape(1))
    logits, labels = torch.randn(1, 10), torch.ones(10)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits[0], labels)
    torch.testing.assert_close(model.objective(logits, labels), plain + 0.01 * weights)  # minimised


def test_the_objective_sums_the_replicas_mean_losses(classifier):
    model = classifier("model.replicas=3")
    logits, labels = torch.randn(3, 10), (torch.rand(3, 10) > 0.5).float()
    losses = [torch.nn.functional.binary_cross_entropy_with_logits(logits[k], labels[k]) for k in range(3)]
    torch.testing.assert_close(model.objective(logits, labels), sum(losses))


def test_weight_decay_reaches_the_optimizer(classifier):
    optimizer = classifier("optimizer.weight_decay=0.001").configure_optimizers()
    assert optimizer.param_groups[0]["weight_decay"] == 0.001


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.dropout=1.0", "model.dropout=1.0"),
        ("model.l1=-1", "model.l1=-1"),
        ("model.replicas=0", "model.replicas=0"),
    ],
)
def test_bad_model_settings_are_rejected(classifier, override, expected):
    with pytest.raises(InputError, match=expected):
        classifier(override)


def test_optimizer_config_is_instantiable_as_hydra_builds_it(make_config):
    cfg = make_config("optimizer=adam")
    partial = instantiate(cfg.optimizer)
    assert isinstance(partial(MLP().parameters()), torch.optim.Adam)
