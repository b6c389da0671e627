"""The core as a Lightning user writes it: a plain ``Trainer``, ``trainer.predict``, ``load_from_checkpoint``,
``hydra.utils.instantiate``; no package helper anywhere."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pima_lightning
from pima_lightning import PimaClassifier, PimaDataModule

EPOCHS = 3
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}


@pytest.fixture
def one_thread():
    """The CLI's ``torch_threads=1``, for results that match it to the last digit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fitted(pima_csv, model=None, **trainer_settings):
    """``(trainer, model, datamodule)`` after ``Trainer.fit`` from seed 7, as the README shows it."""
    L.seed_everything(7)
    model = model or PimaClassifier()
    datamodule = PimaDataModule(path=str(pima_csv))
    trainer = L.Trainer(max_epochs=EPOCHS, **QUIET, **trainer_settings)
    trainer.fit(model, datamodule=datamodule)
    return trainer, model, datamodule


def test_a_plain_trainer_fits_the_defaults_to_the_clis_test_metrics(
    pima_csv, train_cli, tmp_path, one_thread
):
    trainer, model, datamodule = fitted(pima_csv)
    (tested,) = trainer.test(model, datamodule=datamodule, verbose=False)
    result = train_cli(
        f"trainer.max_epochs={EPOCHS}", "trainer.enable_progress_bar=false", run_dir=tmp_path / "cli"
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    for name in ("test/acc", "test/auroc", "test/loss", "test/f1", "test/precision", "test/recall"):
        assert tested[name] == pytest.approx(cli[name], abs=1e-6), name
    assert tested["test/acc"] > 0.6  # it learned something in 3 epochs: the majority share is 0.64


def test_the_model_takes_its_width_and_scaling_from_the_data_it_is_fitted_on(pima_csv, tmp_path):
    adam = {"_target_": "torch.optim.Adam", "lr": 0.01}
    _, model, datamodule = fitted(pima_csv, PimaClassifier(optimizer=adam))
    np.testing.assert_allclose(model.preprocess.mean.numpy(), datamodule.feature_mean, rtol=1e-6)
    np.testing.assert_allclose(model.preprocess.scale.numpy(), datamodule.feature_scale, rtol=1e-6)
    assert not model.preprocess.is_identity()

    rng = np.random.default_rng(0)  # any binary CSV: 30 named features, the label in the middle
    features = rng.normal(size=(300, 30)) * 50 + 100
    labels = (features[:, 0] + features[:, 1] > 200).astype(int)
    table = np.column_stack([features[:, :10], labels, features[:, 10:]])
    names = [f"f{i}" for i in range(10)] + ["outcome"] + [f"f{i}" for i in range(10, 30)]
    csv = tmp_path / "wide.csv"
    np.savetxt(csv, table, delimiter=",", header=",".join(names), comments="", fmt="%.4f")
    wide = PimaDataModule(path=str(csv), label_column="outcome")
    model = PimaClassifier(optimizer=adam)
    L.Trainer(max_epochs=5, **QUIET).fit(model, datamodule=wide)
    assert model.hparams.n_features == 30 and model.hparams.feature_names == [f"f{i}" for i in range(30)]
    assert model.network[0].in_features == 30
    (tested,) = L.Trainer(**QUIET).test(model, datamodule=wide, verbose=False)
    assert tested["test/acc"] > 0.8  # a linear rule on raw values of ~100: learnable only when scaled


def test_fitting_without_a_datamodule_says_what_is_missing_in_one_line(pima_csv):
    rows = DataLoader(TensorDataset(torch.randn(20, 8), torch.ones(20)), batch_size=10)
    with pytest.raises(
        ValueError, match=r"learns its input width and feature scaling from the datamodule"
    ) as raised:
        L.Trainer(max_epochs=1, **QUIET).fit(PimaClassifier(), train_dataloaders=rows)
    assert "\n" not in str(raised.value)
    with pytest.raises(
        ValueError, match="object has no n_features, feature_names, feature_mean, feature_scale"
    ):
        PimaClassifier().adapt(object())
    datamodule = PimaDataModule(path=str(pima_csv))
    datamodule.setup("fit")
    model = PimaClassifier()
    model.adapt(datamodule)  # or adapt it first, then any dataloaders
    L.Trainer(max_epochs=1, **QUIET).fit(model, train_dataloaders=datamodule.train_dataloader())
    with pytest.raises(ValueError, match="the model takes 8 features, the data has 3"):
        model.adapt(
            type(
                "Three", (), {"n_features": 3, "feature_names": None, "feature_mean": 0, "feature_scale": 1}
            )()
        )


def test_predict_returns_probabilities_of_the_held_out_rows(pima_csv):
    trainer, model, datamodule = fitted(pima_csv)
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule))
    features, _ = datamodule.test_set.tensors
    assert probabilities.shape == (254,)
    with torch.no_grad():
        torch.testing.assert_close(probabilities, model.eval()(features).sigmoid())
    again = torch.cat(trainer.predict(model, dataloaders=datamodule.test_dataloader()))
    torch.testing.assert_close(again, probabilities)
    bare = torch.cat(trainer.predict(model, dataloaders=DataLoader(features, batch_size=100)))
    torch.testing.assert_close(bare, probabilities)


def test_predict_path_serves_a_csvs_rows_in_the_models_columns(pima_csv, tmp_path):
    trainer, model, _ = fitted(pima_csv)
    rows = np.loadtxt(pima_csv, delimiter=",")[:7]
    csv = tmp_path / "rows.csv"
    np.savetxt(csv, rows[:, :8], delimiter=",")  # features only, no label
    scored = torch.cat(trainer.predict(model, datamodule=PimaDataModule(predict_path=str(csv))))
    with torch.no_grad():
        expected = model.eval()(torch.as_tensor(rows[:, :8], dtype=torch.float32)).sigmoid()
    torch.testing.assert_close(scored, expected)


def test_batches_and_outputs_have_plain_shapes_and_stock_layers(pima_csv):
    datamodule = PimaDataModule(path=str(pima_csv))
    datamodule.setup("fit")
    features, labels = next(iter(datamodule.train_dataloader()))
    assert features.shape == (10, 8) and labels.shape == (10,)
    model = PimaClassifier(n_features=8)
    assert model(features).shape == (10,)
    linear = [layer for layer in model.network if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linear] == [(8, 12), (12, 6), (6, 1)]
    stock = nn.Sequential(
        nn.Linear(8, 12),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(12, 6),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(6, 1),
    )
    stock.load_state_dict(model.network.state_dict())  # the state dict maps onto stock layers
    assert [w.shape for w in model.network.get_weights()] == [(8, 12), (12,), (12, 6), (6,), (6, 1), (1,)]


def test_load_from_checkpoint_rebuilds_the_fitted_model(pima_csv, tmp_path):
    trainer, model, datamodule = fitted(pima_csv)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = PimaClassifier.load_from_checkpoint(tmp_path / "model.ckpt", weights_only=True)
    assert loaded.hparams.n_features == 8
    torch.testing.assert_close(
        torch.cat(trainer.predict(loaded, datamodule=datamodule)),
        torch.cat(trainer.predict(model, datamodule=datamodule)),
    )


def test_a_cli_checkpoint_loads_the_documented_way(train_cli, tmp_path, pima_csv):
    result = train_cli(
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "optimizer=adam",
        run_dir=tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    model = PimaClassifier.load_from_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert model.hparams.optimizer["_target_"] == "torch.optim.Adam"
    datamodule = PimaDataModule(path=str(pima_csv))
    (tested,) = L.Trainer(**QUIET).test(model, datamodule=datamodule, verbose=False)
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert tested["test/acc"] == pytest.approx(recorded["test/acc"], abs=1e-6)


def test_the_config_is_the_object_graph(make_config):
    cfg = make_config("optimizer=adam", "model.hidden=[16]")
    model, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    assert type(model) is PimaClassifier and type(datamodule) is PimaDataModule
    assert model.hparams.hidden == [16] and model.hparams.optimizer["_target_"] == "torch.optim.Adam"
    assert type(model.hparams.optimizer) is dict  # plain data, as a checkpoint holds it
    ensemble = instantiate(make_config("model.replicas=3").model)
    assert type(ensemble).__name__ == "StackedClassifier" and ensemble.hparams.replicas == 3


def test_model_py_can_be_copied_as_it_is(tmp_path):
    source = Path(pima_lightning.__file__).parent / "model.py"
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"collections", "lightning", "torch", "torchmetrics"}, imported
    (tmp_path / "my_model.py").write_text(source.read_text())
    script = (
        "import my_model, torch; m = my_model.PimaClassifier(n_features=8); "
        "print(tuple(m(torch.zeros(4, 8)).shape))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(4,)"
