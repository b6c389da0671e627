import math

import pytest
import torch
from hydra.utils import instantiate

from pima_lightning.ensembles.classifier import StackedClassifier, StackedMLP
from pima_lightning.errors import InputError
from pima_lightning.model import MLP, PimaClassifier
from pima_lightning.settings.config_checks import check_model_settings


@pytest.fixture
def classifier(make_config):
    """``classifier(*overrides)``: the model the composed config builds, for the Pima CSV's 8 features."""
    return lambda *overrides: instantiate(make_config(*overrides).model, n_features=8)


def test_the_notebooks_network_has_193_trainable_parameters():
    network = MLP()
    counts = [layer.weight.numel() + layer.bias.numel() for layer in network.linear_layers()]
    assert counts == [8 * 12 + 12, 12 * 6 + 6, 6 * 1 + 1]
    assert sum(p.numel() for p in network.parameters() if p.requires_grad) == 193
    assert [type(layer).__name__ for layer in network] == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip
    assert [layer.p for layer in network if isinstance(layer, torch.nn.Dropout)] == [0.2, 0.2]


def test_hidden_widths_and_dropout_are_configurable():
    network = MLP(hidden=[32, 16, 8], dropout=0.5)
    assert [layer.out_features for layer in network.linear_layers()] == [32, 16, 8, 1]
    assert {layer.p for layer in network if isinstance(layer, torch.nn.Dropout)} == {0.5}
    assert [layer.weight.shape for layer in StackedMLP(5, 8, [12, 6], 0.2).linear_layers()] == [
        (5, 8, 12),
        (5, 12, 6),
        (5, 6, 1),
    ]


def test_keras_initialisation():
    torch.manual_seed(0)
    *hidden, output = MLP().linear_layers()
    for layer in hidden:
        limit = math.sqrt(6 / (layer.in_features + layer.out_features))  # Glorot uniform
        assert layer.weight.abs().max() <= limit
        assert layer.weight.abs().max() > 0.8 * limit  # spread over the range, not a narrower default
    assert output.weight.abs().max() <= 0.05  # Keras 'uniform': U(-0.05, 0.05)
    assert output.weight.abs().max() > 0.03
    assert all(not layer.bias.any() for layer in (*hidden, output))


def test_kernels_are_drawn_in_keras_layout_as_each_replica_draws_them():
    """One model and replica 0 of an ensemble from the same seed hold the same weights."""
    torch.manual_seed(3)
    plain = MLP().get_weights()
    torch.manual_seed(3)
    stacked = StackedMLP(1, 8, [12, 6], 0.2).get_weights()
    for mine, theirs in zip(plain, stacked, strict=True):
        torch.testing.assert_close(torch.as_tensor(mine), torch.as_tensor(theirs))


def test_different_seeds_give_different_weights():
    torch.manual_seed(1)
    first = MLP().linear_layers()[0].weight.clone()
    torch.manual_seed(2)
    assert not torch.equal(first, MLP().linear_layers()[0].weight)


def test_inputs_are_standardised_with_the_stored_statistics():
    model = PimaClassifier(n_features=8).eval()
    mean, scale = torch.arange(8.0), torch.arange(1.0, 9.0)
    model.preprocess.mean.copy_(mean)
    model.preprocess.scale.copy_(scale)
    raw = torch.randn(5, 8) * 10 + 3
    with torch.no_grad():
        torch.testing.assert_close(model(raw), model.network((raw - mean) / scale).squeeze(-1))
    assert set(model.state_dict()) >= {"preprocess.mean", "preprocess.scale"}  # they travel in checkpoints


def test_output_is_one_logit_per_row():
    assert PimaClassifier(n_features=8)(torch.randn(7, 8)).shape == (7,)
    ensemble = StackedClassifier(3, n_features=8)
    assert ensemble(torch.randn(7, 8)).shape == (3, 7)  # the same rows for every replica
    assert ensemble(torch.randn(3, 7, 8)).shape == (3, 7)  # each replica's own rows
    assert ensemble.predict_step(torch.randn(7, 8), 0).shape == (7,)


def test_one_replica_of_an_ensemble_computes_what_torch_linear_layers_compute():
    ensemble = StackedClassifier(2, n_features=8).eval()
    plain = PimaClassifier(n_features=8).eval()
    with torch.no_grad():
        for mine, theirs in zip(ensemble.network.linear_layers(), plain.network.linear_layers(), strict=True):
            theirs.weight.copy_(mine.weight[1].T)
            theirs.bias.copy_(mine.bias[1, 0])
        rows = torch.randn(9, 8) * 5
        torch.testing.assert_close(ensemble(rows)[1], plain(rows))


def test_replicas_share_no_weights_and_draw_their_own_dropout_masks():
    torch.manual_seed(0)
    network = StackedMLP(4, 8, [12, 6], 0.2)
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


def test_the_default_optimizer_is_the_notebooks_sgd():
    optimizer = PimaClassifier(n_features=8).configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.9, True)


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


def test_the_model_builds_only_classes_of_torch_optim():
    for target in ("builtins.print", "torch.optim.sgd.torch.load", "os.system"):
        model = PimaClassifier(n_features=8, optimizer={"_target_": target})
        with pytest.raises(ValueError, match=r"names no Optimizer class in torch\.optim"):
            model.configure_optimizers()


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
    torch.testing.assert_close(model.l1_penalty(), 0.01 * weights)
    rows, labels = torch.randn(10, 8), torch.ones(10)  # minimised: the cross-entropy plus the penalty
    no_dropout = classifier("model.l1=0.01", "model.dropout=0")
    loss = no_dropout.training_step((rows, labels), 0)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(no_dropout(rows), labels)
    penalty = 0.01 * sum(layer.weight.abs().sum() for layer in no_dropout.network.linear_layers())
    torch.testing.assert_close(loss, plain + penalty)


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
        ("model.hidden=[0]", r"model.hidden=\[0\]"),
    ],
)
def test_bad_model_settings_are_rejected_where_the_config_is_read(make_config, override, expected):
    with pytest.raises(InputError, match=expected):
        check_model_settings(make_config(override).model)
