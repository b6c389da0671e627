import json
import re
import subprocess
import sys
import threading

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.model import PimaClassifier
from pima_lightning.runs import loggers
from pima_lightning.runs.loggers import EpochTensorBoardLogger
from pima_lightning.train import train

METRIC_NAMES = ("loss", "acc", "auroc", "f1", "precision", "recall")


def test_compose_api_run_trains_tests_and_writes_results(make_config, fast, tmp_path, pima_csv):
    metrics = train(make_config(*fast))

    assert set(metrics) == {f"{stage}/{name}" for stage in ("val", "test") for name in METRIC_NAMES}
    # without data.val_size the validation rows are the held-out rows, after the same last epoch
    assert metrics["val/acc"] == pytest.approx(metrics["test/acc"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert {key: saved[key] for key in metrics} == metrics
    assert (saved["seed"], saved["epochs"]) == (7, 3)
    assert saved["wall_time_s"] > 0
    # the last checkpoint alone rebuilds the model, raw-feature scaling included, and
    # reproduces the reported held-out accuracy
    model = PimaClassifier.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt").eval()
    datamodule = PimaDataModule(path=str(pima_csv))
    datamodule.setup()
    features, labels = datamodule.test_set.tensors
    with torch.no_grad():
        accuracy = ((model(features) > 0).float() == labels).float().mean().item()
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)
    torch.testing.assert_close(model.preprocess.mean, torch.as_tensor(datamodule.feature_mean).float())


def test_same_seed_same_metrics_other_seed_other_metrics(make_config, fast):
    first = train(make_config(*fast))
    again = train(make_config(*fast))
    other = train(make_config(*fast, "seed=8"))
    assert first == again
    assert first != other


def test_console_shows_model_epoch_lines_and_result_and_lightning_notices_go_to_the_log(train_cli, tmp_path):
    """Output to a pipe (not a terminal): Keras-like lines instead of a redrawn bar, nothing else."""
    run_dir = tmp_path / "run"
    result = train_cli("trainer.max_epochs=3", "callbacks.progress_bar.every_n_epochs=2", run_dir=run_dir)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "Model:" and lines[15] == "Non-trainable params: 0"
    assert lines[16].startswith("Input scaling")
    n = r"\d\.\d{4}"
    assert re.fullmatch(f"epoch 2/3  loss {n}  acc {n}  val_loss {n}  val_acc {n}", lines[17])
    assert lines[18].startswith("epoch 3/3  loss ")
    assert lines[19].startswith("Test (254 rows): accuracy ") and len(lines) == 20
    log = (run_dir / "train.log").read_text()
    assert "Seed set to 7" in log and "GPU available: False" in log and "epoch 3/3  loss" in log


def test_cli_run_writes_tensorboard_checkpoint_config_and_metrics(train_cli, fast, tmp_path, read_scalars):
    result = train_cli(*fast)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()  # Hydra's run dir, under the working directory

    scalars = read_scalars(run_dir)
    for tag in ("train/loss", "train/acc", *(f"val/{name}" for name in METRIC_NAMES)):
        assert len(scalars[tag]) == 3, f"{tag} is not logged once per epoch"
    assert "train/auroc" not in scalars  # training rows: loss and accuracy, as Keras's fit() history
    assert scalars["train/lr"] == pytest.approx([0.01] * 3)  # beside the loss, not a card of its own
    assert "epoch" not in scalars  # the x-axis is the epoch already
    assert scalars["train/loss"][-1] < scalars["train/loss"][0]  # it learns
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in METRIC_NAMES:
        assert scalars[f"test/{name}"] == [pytest.approx(metrics[f"test/{name}"])]
    assert not any(tag.startswith("hp") for tag in scalars)  # no second copy of the test metrics
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    # TensorBoard's x-axis: epochs from 0, as Lightning numbers them; the test after the last epoch
    assert [event.step for event in events.Scalars("val/loss")] == [0, 1, 2]
    assert [event.step for event in events.Scalars("test/acc")] == [3]
    session = events.summary_metadata["_hparams_/session_start_info"]
    assert session.plugin_data.plugin_name == "hparams"
    compared = HParamsPluginData.FromString(session.plugin_data.content).session_start_info.hparams
    assert compared["optimizer"].string_value == "SGD" and compared["lr"].number_value == 0.01
    # whole numbers as digits: TensorBoard shows a number value 10 as "10.000"
    assert compared["batch_size"].string_value == "10" and compared["seed"].string_value == "7"
    assert not any(name.startswith(("callbacks", "logger", "data/url")) for name in compared)
    # no per-run experiment summary: TensorBoard builds one from every run's session, with the columns
    # whose values differ between runs ticked (checked in a browser: docs/commands.md)
    assert "_hparams_/experiment" not in events.summary_metadata
    assert "_hparams_/session_end_info" in events.summary_metadata

    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert f"accuracy {metrics['test/acc']:.4f}" in result.stdout + result.stderr


def test_cli_adam_really_trains_with_adam_at_the_configured_lr(train_cli, fast, tmp_path, read_scalars):
    run_dir = tmp_path / "adam"
    result = train_cli(*fast, "optimizer=adam", "optimizer.lr=0.002", run_dir=run_dir)
    assert result.returncode == 0, result.stderr
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (state,) = checkpoint["optimizer_states"]
    group = state["param_groups"][0]
    assert (group["lr"], group["eps"], group["betas"]) == (0.002, 1e-7, (0.9, 0.999))
    assert all("exp_avg_sq" in param_state for param_state in state["state"].values())  # Adam's moments
    assert read_scalars(run_dir)["train/lr"] == pytest.approx([0.002] * 3)


def test_the_readme_rerun_recipe_reproduces_a_run_from_another_directory(train_cli, fast, tmp_path):
    first = tmp_path / "first"
    assert train_cli(*fast, "seed=3", "optimizer=adam", "model.hidden=[16,8]", run_dir=first).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    recipe = f"sed 's/^- //' {first}/.hydra/overrides.yaml | xargs {sys.executable} -m pima_lightning.train"
    result = subprocess.run(["bash", "-c", recipe], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (replay,) = (elsewhere / "outputs" / "runs").iterdir()  # a new run dir where the README says runs go
    configs = [(d / ".hydra" / "config.yaml").read_text() for d in (first, replay)]
    assert configs[0] == configs[1] and "hidden:\n  - 16\n  - 8\n" in configs[1]  # saved unresolved
    original, replayed = (json.loads((d / "metrics.json").read_text()) for d in (first, replay))
    for timing in ("wall_time_s", "fit_time_s"):
        assert original.pop(timing) > 0 and replayed.pop(timing) > 0
    assert replayed == original


def test_cli_bad_csv_fails_with_one_line_and_no_finished_outputs(train_cli, fast, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("6,148,72,35,0,33.6,0.627,50,1\n1,85,66,29,0,26.6,abc,31,0\n")
    run_dir = tmp_path / "run"
    result = train_cli(*fast, f"data.path={bad}", run_dir=run_dir)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}, line 2, column 7: 'abc' is not a number; the column is read as numbers (most of "
        "its cells are); correct it, or empty it to mark it missing (data.categorical_columns=[7] reads the "
        "column as categories)"
    )
    assert "Traceback" not in result.stderr
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / "checkpoints").exists()


def test_resume_from_an_interrupted_run_matches_an_uninterrupted_one(make_config, fast, tmp_path):
    uninterrupted = train(make_config(*fast, "trainer.max_epochs=4", f"output_dir={tmp_path / 'full'}"))
    train(make_config(*fast, "trainer.max_epochs=2", f"output_dir={tmp_path / 'part'}"))
    resumed = train(
        make_config(
            *fast,
            "trainer.max_epochs=4",
            f"ckpt_path={tmp_path / 'part' / 'checkpoints' / 'last.ckpt'}",
            f"output_dir={tmp_path / 'resumed'}",
        )
    )
    assert resumed == uninterrupted
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["epochs"] == 4


def test_tensorboard_events_are_flushed_at_most_once_a_second_and_all_at_the_end(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(loggers.time, "monotonic", lambda: clock[0])
    logger = EpochTensorBoardLogger(save_dir=str(tmp_path), name="tensorboard", version="")
    flushes = []
    monkeypatch.setattr(logger.experiment, "flush", lambda: flushes.append(clock[0]))
    for epoch in range(40):  # Lightning saves after each log_metrics
        logger.log_metrics({"val/loss": 1 / (epoch + 1), "epoch": epoch})
        logger.save()
        clock[0] += 0.25  # four epochs a second
    assert flushes == [100.0 + second for second in range(10)]  # the first, then once a second
    monkeypatch.undo()
    logger.finalize("success")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("val/loss")] == list(range(40))
    assert (tmp_path / "tensorboard" / "hparams.yaml").is_file()  # Lightning's, written by the last save


def test_tensorboard_events_are_written_by_the_thread_that_logs_them(tmp_path):
    threads_before = set(threading.enumerate())
    logger = EpochTensorBoardLogger(save_dir=str(tmp_path), name="tensorboard", version="")
    for epoch in range(3):  # the fit
        logger.log_metrics({"val/loss": 1 / 2**epoch, "epoch": epoch})
    logger.finalize("success")  # closes the event file
    logger.log_metrics({"test/loss": 0.5, "epoch": 3})  # the test, after the fit: a new event file
    assert set(threading.enumerate()) <= threads_before  # no writer thread started
    logger.finalize("success")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("val/loss")] == [
        (0, 1.0),
        (1, 0.5),
        (2, 0.25),
    ]
    assert [(event.step, event.value) for event in events.Scalars("test/loss")] == [(3, 0.5)]


def test_training_pictures_reach_tensorboard(make_config, fast, tmp_path):
    train(make_config(*fast))
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {
        "test/roc_curve",
        "test/precision_recall_curve",
        "test/confusion_matrix",
    }
    assert events.Images("test/roc_curve")[0].width > 300


@pytest.mark.skipif(not torch.cuda.is_available(), reason="trainer=gpu needs a CUDA GPU")
def test_gpu_trainer_trains_on_the_gpu(make_config, fast):
    metrics = train(make_config(*fast, "trainer=gpu"))
    assert 0.5 < metrics["test/acc"] <= 1


@pytest.mark.slow
def test_the_default_150_epoch_run_beats_the_majority_class(make_config):
    metrics = train(make_config("trainer.enable_progress_bar=false"))
    # 162 of the 254 held-out rows are negative: always answering 0 scores 63.8%
    assert metrics["test/acc"] > 0.70
    assert metrics["test/auroc"] > 0.78


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("optimizer.lr=0.5", "optimizer.lr (0.01 then, 0.5 now)"),
        ("optimizer=adam", "optimizer._target_ ('torch.optim.SGD' then, 'torch.optim.Adam' now)"),
        ("data.standardize=false", "data.standardize (True then, False now)"),
        ("model.hidden=[32,16]", "model.hidden ([12, 6] then, [32, 16] now)"),
        ("data.batch_size=20", "data.batch_size (10 then, 20 now)"),
    ],
)
def test_a_resume_refuses_settings_that_cannot_change_mid_run(make_config, fast, tmp_path, override, named):
    train(make_config(*fast, "trainer.max_epochs=1", f"output_dir={tmp_path / 'first'}"))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resume = make_config(*fast, f"ckpt_path={checkpoint}", override, f"output_dir={tmp_path / 'resumed'}")
    with pytest.raises(InputError, match="which cannot change when a run resumes") as refused:
        train(resume)
    assert named in str(refused.value)
    assert not (tmp_path / "resumed" / "checkpoints").exists()


def test_a_resume_on_another_csv_is_refused_through_the_cli(train_cli, fast, tmp_path, pima_csv):
    first = tmp_path / "first"
    assert train_cli(*fast, "trainer.max_epochs=1", run_dir=first).returncode == 0
    other = tmp_path / "other.csv"
    other.write_bytes(pima_csv.read_bytes())
    result = train_cli(*fast, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", f"data.path={other}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ckpt_path=") and f"data.path (None then, '{other}' now)" in last
