import numpy as np
import pytest
from hydra.utils import instantiate

from pima_lightning.train import train

PRESETS = ["fit_all", "fit_all_adam", "validation_split", "validation_data", "recommended", "zeros_missing"]


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_and_trains(make_config, fast, preset, tmp_path):
    cfg = make_config(*fast, "trainer.max_epochs=2", f"experiment={preset}")
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1
    assert (tmp_path / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("preset", "optimizer", "lr", "split", "standardize"),
    [
        ("fit_all", "torch.optim.SGD", 0.01, "none", False),
        ("fit_all_adam", "torch.optim.Adam", 0.1, "none", False),
        ("validation_split", "torch.optim.SGD", 0.01, "last", False),
        ("validation_data", "torch.optim.SGD", 0.01, "random", False),
        ("recommended", "torch.optim.Adam", 0.0036, "random", True),
    ],
)
def test_presets_set_the_notebooks_settings(make_config, preset, optimizer, lr, split, standardize):
    cfg = make_config(f"experiment={preset}")
    assert (cfg.optimizer._target_, cfg.optimizer.lr) == (optimizer, lr)
    assert (cfg.data.split, cfg.data.standardize) == (split, standardize)


def test_validation_split_preset_holds_out_the_last_33_percent_in_file_order(make_config, pima_csv):
    datamodule = instantiate(make_config("experiment=validation_split").data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = np.loadtxt(pima_csv, delimiter=",").astype(np.float32)
    split_at = int(np.floor(768 * (1 - 0.33)))  # Keras: the first 514 rows train, the last 254 validate
    np.testing.assert_array_equal(datamodule.train_set.tensors[0].numpy(), dataset[:split_at, :8])
    np.testing.assert_array_equal(datamodule.val_set.tensors[0].numpy(), dataset[split_at:, :8])
    np.testing.assert_array_equal(datamodule.test_set.tensors[0].numpy(), dataset[split_at:, :8])


def test_fit_all_preset_trains_and_evaluates_on_every_row(make_config, pima_csv):
    datamodule = instantiate(make_config("experiment=fit_all").data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = np.loadtxt(pima_csv, delimiter=",").astype(np.float32)
    for part in (datamodule.train_set, datamodule.val_set, datamodule.test_set):
        np.testing.assert_array_equal(part.tensors[0].numpy(), dataset[:, :8])
