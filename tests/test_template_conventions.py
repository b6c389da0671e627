"""What lightning-hydra-template users type by habit (issue 19): its debug presets, ``logger=[]``,
``trainer=ddp_sim``, ``trainer.min_epochs``, the loader keys, and a sweeper objective that never comes
from the test rows. In-process through the composed config, as the CLI runs it; one CLI run for the
debug preset's console."""

import json

import pytest
from hydra.utils import instantiate

from pima_lightning.data import DATASET_FILENAME, PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.settings.config_checks import check_train_config
from pima_lightning.train import check_unknown_settings, main, train

QUIET = ["trainer.enable_progress_bar=false"]


def record(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("preset", "epochs", "steps"),
    [("default", 1, 52), ("fdr", 1, 1), ("limit", 3, 15), ("overfit", 20, 60), ("profiler", 1, 52)],
)
def test_the_templates_debug_presets(make_config, tmp_path, preset, epochs, steps):
    cfg = make_config(f"debug={preset}")
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.detect_anomaly and cfg.logger is None
    train(cfg)
    result = record(tmp_path)
    assert result["steps"] == steps  # 52 minibatches an epoch; limit: 5 of them; overfit: the same 3
    assert result["epochs"] == (epochs if preset != "fdr" else 1)
    assert not (tmp_path / "tensorboard").exists()  # no logger
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_debug_default_on_the_console_is_the_runs_lines_not_librarys_internals(train_cli, tmp_path):
    result = train_cli("debug=default", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "findfont" not in result.stdout + result.stderr  # matplotlib's DEBUG lines are left out
    assert result.stdout.splitlines()[-1].startswith("Test (254 rows): accuracy ")


@pytest.mark.parametrize("no_logger", ["logger=[]", "logger=none", "python: cfg.logger = None"])
def test_no_logger_however_written_trains_and_leaves_out_the_lr_monitor(make_config, tmp_path, no_logger):
    # Lightning's LearningRateMonitor, added as a template user adds it, refuses a Trainer with no logger
    lr_monitor = "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor"
    if no_logger.startswith("python"):
        cfg = make_config(*QUIET, "trainer.max_epochs=2", lr_monitor)
        cfg.logger = None
    else:
        cfg = make_config(*QUIET, "trainer.max_epochs=2", lr_monitor, no_logger)
    assert cfg.get("logger") is None and "lr_monitor" in cfg.callbacks
    train(cfg)
    assert record(tmp_path)["epochs"] == 2
    assert not (tmp_path / "tensorboard").exists()


def test_ddp_sim_is_the_two_process_cpu_ddp(make_config):
    """The template's ddp_sim spawns (ddp_spawn); here it runs as trainer=ddp_cpu, which is tested for
    one set of results in tests/test_reliability.py."""
    assert make_config("trainer=ddp_sim").trainer == make_config("trainer=ddp_cpu").trainer


def test_min_epochs_holds_early_stopping_back(make_config, tmp_path):
    cfg = make_config(
        *QUIET,
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1",  # no epoch counts as an improvement
        "data.val_size=0.2",
        "trainer.max_epochs=10",
    )
    train(cfg)
    stopped = record(tmp_path)["epochs"]
    cfg.trainer.min_epochs = 6
    cfg.output_dir = str(tmp_path / "held")
    train(cfg)
    assert stopped < 6 and record(tmp_path / "held")["epochs"] == 6


def test_loader_keys_reach_the_dataloaders_and_train(make_config, tmp_path):
    cfg = make_config(*QUIET, "trainer.max_epochs=1", "data.num_workers=1", "data.pin_memory=true")
    train(cfg)
    assert record(tmp_path)["epochs"] == 1
    datamodule = PimaDataModule(num_workers=2, pin_memory=True)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (2, True, True)
    with pytest.raises(InputError, match=r"data.num_workers=-1: expected a whole number from 0 to 1024"):
        check_train_config(make_config("data.num_workers=-1"))


def test_the_sweeper_objective_is_a_validation_figure_never_a_test_one(make_config, tmp_path):
    """With data.val_size=0 the validation rows are the test rows: nothing is returned."""
    carved = make_config(*QUIET, "trainer.max_epochs=1", "data.val_size=0.2")
    assert main.__wrapped__(carved) == record(tmp_path)["val/acc"]
    carved.optimized_metric = "val/loss"
    carved.output_dir = str(tmp_path / "loss")
    assert main.__wrapped__(carved) == record(tmp_path / "loss")["val/loss"]
    test_rows = make_config(*QUIET, "trainer.max_epochs=1", f"output_dir={tmp_path / 'notebook'}")
    assert main.__wrapped__(test_rows) is None
    with pytest.raises(InputError, match=r"^optimized_metric=test/acc: expected a validation metric"):
        check_train_config(make_config("optimized_metric=test/acc"))


def test_an_unknown_top_level_setting_names_the_close_one(make_config):
    """``+epochs=5`` (a Keras habit, as Hydra's own hint suggests) ran 150 epochs."""
    with pytest.raises(InputError) as raised:
        check_unknown_settings(make_config("+epochs=5"))
    assert (
        str(raised.value)
        == "epochs: train has no such setting; did you mean trainer.max_epochs or trainer.min_epochs?"
    )
    check_unknown_settings(make_config("+trainer.benchmark=false", "+callbacks.x._target_=builtins.dict"))


def test_the_data_module_built_in_python_honours_pima_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PIMA_DATA_DIR", str(tmp_path))
    assert PimaDataModule().csv_path == tmp_path / DATASET_FILENAME


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("callbacks=model_checkpoint", {"model_checkpoint": "ModelCheckpoint"}),
        (
            "callbacks=[default,model_summary]",
            {"model_summary": "ModelSummary", "progress_bar": "EpochLines"},
        ),
        (
            "callbacks=[default,rich_progress_bar]",
            {"rich_progress_bar": "RichProgressBar", "progress_bar": None},
        ),
    ],
)
def test_the_templates_callback_names(make_config, tmp_path, choice, expected):
    """Each file named as the template names it, composing as its files do; Lightning allows one progress
    bar, so the rich one takes the place of this package's."""
    cfg = make_config("trainer.max_epochs=1", choice)
    built = {
        name: type(instantiate(entry)).__name__ if entry else None for name, entry in cfg.callbacks.items()
    }
    assert expected.items() <= built.items()
    train(cfg)
    assert record(tmp_path)["epochs"] == 1 and (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_the_checkpoint_goes_by_the_templates_name(make_config, tmp_path):
    train(make_config(*QUIET, "trainer.max_epochs=2", "callbacks.model_checkpoint.every_n_epochs=1",
                      "callbacks.model_checkpoint.filename='epoch_{epoch}'"))  # fmt: skip
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == [
        "epoch_epoch=1.ckpt",
        "last.ckpt",
    ]


def test_every_setting_of_the_data_and_model_configs_is_declared_once():
    """settings/declared.py's keys are the configs' keys and the constructors' parameters: a setting added
    to one of them without its declaration would go unchecked in configs and checkpoints."""
    import inspect
    from pathlib import Path

    from omegaconf import OmegaConf

    from pima_lightning.data import PimaDataModule
    from pima_lightning.model import PimaClassifier
    from pima_lightning.settings.declared import DATA, MODEL

    conf = Path(__file__).parents[1] / "conf"
    data_keys = {key for key in OmegaConf.load(conf / "data" / "pima.yaml") if not key.startswith("_")}
    model_keys = {key for key in OmegaConf.load(conf / "model" / "mlp.yaml") if not key.startswith("_")}
    python_only = {"frame"}  # a DataFrame: data, never a setting of a config or a checkpoint
    assert (
        set(DATA)
        == data_keys
        == set(inspect.signature(PimaDataModule).parameters) - python_only | {"replicas"}
    )
    assert set(MODEL) == set(inspect.signature(PimaClassifier).parameters) | {"replicas"}
    from_the_data = {
        "n_features",
        "feature_names",
        "missing_indicators",
        "missing_values",
        "classes",
        "categories",
    }
    assert model_keys == set(MODEL) - from_the_data  # the model takes these from the data it is fitted on
