"""Stock Lightning, as a Lightning user reaches for it: Trainer flags through the real CLI (each checked by
its effect), callbacks and loggers from config, and the module driven by a plain Trainer from Python."""

import json

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.nn import functional as F

from pima_lightning.data import PimaDataModule
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.runs import callbacks
from pima_lightning.runs.null_profiler import NullProfiler
from pima_lightning.runs.training import datamodule_and_model

QUIET = ["trainer.enable_progress_bar=false"]
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=10"]  # 10 minibatch steps


@pytest.fixture
def trained(train_cli, tmp_path):
    """``trained(*overrides, name="run")``: a finished CLI run: (run dir, metrics.json, console output and
    train.log, where Lightning's notices go)."""

    def run(*overrides: str, name: str = "run"):
        run_dir = tmp_path / name
        result = train_cli(*QUIET, *overrides, run_dir=run_dir)
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr + (run_dir / "train.log").read_text()
        return run_dir, json.loads((run_dir / "metrics.json").read_text()), output

    return run


def held_out(pima_csv, **settings):
    """The held-out rows of the notebook's split, as the data module serves them."""
    datamodule = PimaDataModule(path=str(pima_csv), **settings)
    datamodule.setup()
    return datamodule.test_set.tensors


@pytest.mark.parametrize(
    ("overrides", "steps"),
    [
        (["trainer.max_epochs=2"], 104),  # 52 minibatches of 10 rows an epoch, as Keras counts them
        (["trainer.max_steps=100"], 100),  # stops inside the second epoch
        (["trainer.max_epochs=1", "trainer.accumulate_grad_batches=2"], 26),  # a step per 2 minibatches
        (["trainer.max_epochs=1", "trainer.limit_train_batches=0.5"], 26),
        (["trainer.max_epochs=1", "trainer.limit_train_batches=5"], 5),
        (["trainer.fast_dev_run=true"], 1),
    ],
    ids=["epochs", "max_steps", "accumulate", "limit-fraction", "limit-count", "fast_dev_run"],
)
def test_flags_that_decide_how_many_optimizer_steps_run(trained, overrides, steps):
    run_dir, metrics, _ = trained(*overrides)
    assert metrics["steps"] == steps
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == steps


@pytest.mark.parametrize(
    ("overrides", "validated_at"),
    [
        # within an epoch: TensorBoard's x-axis is then Lightning's step (it is the epoch otherwise)
        (["trainer.max_epochs=1", "trainer.val_check_interval=10"], [9, 19, 29, 39, 49]),
        (["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2"], [1]),  # the second epoch
    ],
    ids=["every-10-minibatches", "every-2nd-epoch"],
)
def test_flags_that_decide_when_to_validate(trained, read_scalars, tmp_path, overrides, validated_at):
    run_dir, _, _ = trained(*overrides)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("val/loss")] == validated_at


def test_limit_val_batches_validates_on_the_first_batches_only(trained, pima_csv):
    # the first of two batches of 128 rows: 128 of the 254
    run_dir, metrics, _ = trained(
        "trainer.max_epochs=1", "data.eval_batch_size=128", "trainer.limit_val_batches=0.5"
    )
    model, _ = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    features, labels = held_out(pima_csv)
    with torch.no_grad():
        first_batch = F.binary_cross_entropy_with_logits(model(features[:128]), labels[:128])
        every_row = F.binary_cross_entropy_with_logits(model(features), labels)
    assert metrics["val/loss"] == pytest.approx(first_batch.item(), abs=1e-6)
    assert metrics["test/loss"] == pytest.approx(every_row.item(), abs=1e-6)
    assert metrics["val/loss"] != pytest.approx(metrics["test/loss"], abs=1e-4)


def test_limit_val_batches_zero_trains_without_validation(trained, read_scalars):
    run_dir, metrics, _ = trained(*SHORT, "trainer.limit_val_batches=0")
    assert not any(name.startswith("val/") for name in metrics)
    assert "val/loss" not in read_scalars(run_dir) and "train/loss" in read_scalars(run_dir)


def momentum_norm(run_dir) -> float:
    """The norm of SGD's momentum buffers in the run's last checkpoint: it sums the (clipped) gradients."""
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    (optimizer,) = checkpoint["optimizer_states"]
    return torch.cat([state["momentum_buffer"].flatten() for state in optimizer["state"].values()]).norm()


def test_gradient_clip_val_clips_every_gradient(trained):
    clipped, _, _ = trained(*SHORT, "trainer.gradient_clip_val=1e-9", name="clipped")
    free, _, _ = trained(*SHORT, name="free")
    # 10 steps of gradients of norm <= 1e-9, with momentum 0.9: a buffer of norm < 1e-8
    assert momentum_norm(clipped) < 1e-8
    assert momentum_norm(free) > 1e-3


def test_bf16_mixed_precision_trains_in_bfloat16(trained):
    bf16_dir, bf16, output = trained(*SHORT, "trainer.precision=bf16-mixed", name="bf16")
    fp32_dir, fp32, _ = trained(*SHORT, name="fp32")
    assert "bfloat16 Automatic Mixed Precision" in output
    weights = [
        torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for run_dir in (bf16_dir, fp32_dir)
    ]
    assert weights[0]["network.0.weight"].dtype == torch.float32  # mixed: the weights stay float32
    difference = (weights[0]["network.0.weight"] - weights[1]["network.0.weight"]).abs().max()
    assert 0 < difference < 0.01  # the same training, rounded to bfloat16 on the way
    assert bf16["test/loss"] != fp32["test/loss"]


def test_overfit_batches_trains_on_the_same_minibatch_every_epoch(trained, read_scalars):
    run_dir, metrics, _ = trained(
        "trainer.overfit_batches=1",
        "trainer.max_epochs=15",
        "optimizer=adam",
        "optimizer.lr=0.05",
        "model.dropout=0",
    )
    assert metrics["steps"] == 15
    losses = read_scalars(run_dir)["train/loss"]
    # 10 rows learnt by heart; reshuffled minibatches would keep the loss near 0.5 (it did, once)
    assert losses[-1] < 0.05 < losses[0]


def test_profiler_simple_prints_where_the_time_went(trained):
    _, _, output = trained(*SHORT, "trainer.profiler=simple")
    assert "FIT Profiler Report" in output
    assert "[LightningModule]PimaClassifier.training_step" in output or "training_step" in output


def test_the_default_trainer_profiles_nothing_through_one_shared_context(make_config):
    """Lightning wraps each hook call in ``profiler.profile(...)``; the default run's profiler hands out one
    shared do-nothing context for all of them (nested, as hooks are) and has nothing to report."""
    trainer = instantiate(make_config(*QUIET).trainer)
    assert isinstance(trainer.profiler, NullProfiler)
    outer = trainer.profiler.profile("run_training_batch")
    inner = trainer.profiler.profile("[LightningModule]PimaClassifier.training_step")
    assert inner is outer
    with outer, inner:
        pass
    assert trainer.profiler.summary() == ""


@pytest.mark.parametrize(
    ("ours", "lightnings", "settings"),
    [
        (callbacks.ModelCheckpoint, ModelCheckpoint, {"dirpath": "checkpoints", "every_n_epochs": 10}),
        (callbacks.ModelCheckpoint, ModelCheckpoint, {"dirpath": "checkpoints", "monitor": "val/loss"}),
        (callbacks.EarlyStopping, EarlyStopping, {"monitor": "val/loss", "patience": 20}),
    ],
)
def test_the_callbacks_state_key_is_lightnings_built_once(monkeypatch, ours, lightnings, settings):
    """Lightning asks each callback for its ``state_key`` on every hook it calls; ours is the same key,
    under which checkpoints keep the callback's state, built on the first call only."""
    key = lightnings(**settings).state_key
    assert ours(**settings).state_key == key
    built = []
    generate = L.Callback._generate_state_key
    monkeypatch.setattr(
        L.Callback, "_generate_state_key", lambda self, **kw: built.append(kw) or generate(self, **kw)
    )
    fresh = ours(**settings)
    assert {fresh.state_key for _ in range(3)} == {key}
    assert len(built) == 1


def test_detect_anomaly_names_the_operation_that_made_the_first_nan(train_cli):
    result = train_cli(*QUIET, "trainer.detect_anomaly=true", "optimizer.lr=1e20", "data.standardize=false")
    assert result.returncode != 0
    assert "Function 'BinaryCrossEntropyWithLogitsBackward0' returned nan values" in result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "trainer.limit_train_batches=0.001",
            "error: You requested to check 0.001 of the `train_dataloader`",
        ),
        ("+trainer.colour=blue", "unexpected keyword argument 'colour'"),
        ("trainer.precision=bogus", "Precision 'bogus' is invalid"),
    ],
    ids=["lightning-refuses", "unknown-argument", "bad-value"],
)
def test_trainer_mistakes_are_one_error_line(train_cli, tmp_path, override, expected):
    result = train_cli(*QUIET, override, run_dir=tmp_path / "run")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("overrides", "monitor"),
    [
        (["callbacks=early_stopping"], "EarlyStopping monitors val/loss; ModelCheckpoint monitors val/loss"),
        (["scheduler=plateau"], "ReduceLROnPlateau monitors val/loss"),
    ],
    ids=["early-stopping", "plateau"],
)
def test_selecting_on_validation_rows_that_are_the_test_rows_is_refused(train_cli, overrides, monitor):
    result = train_cli(*QUIET, *overrides)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {monitor}, but with data.val_size=0 the validation rows are the held-out test rows, so "
        "this would select on the test set; set data.val_size (e.g. data.val_size=0.2) to validate on "
        "rows carved from the training part"
    )


def test_early_stopping_stops_and_the_test_scores_the_best_epoch(trained, read_scalars, pima_csv):
    run_dir, metrics, _ = trained(
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=3",
        "data.val_size=0.2",
        "optimizer=adam",
        "optimizer.lr=0.05",
        "trainer.max_epochs=100",
    )
    val_losses = read_scalars(run_dir)["val/loss"]
    best_epoch = val_losses.index(min(val_losses))
    assert len(val_losses) == metrics["epochs"] < 100  # stopped early
    assert len(val_losses) == best_epoch + 4  # 3 epochs without improvement after the best
    best = run_dir / "checkpoints" / "best.ckpt"
    assert metrics["tested_checkpoint"] == str(best)
    assert torch.load(best, weights_only=True)["epoch"] == best_epoch
    model, _ = load_checkpoint(best)
    features, labels = held_out(pima_csv, val_size=0.2)
    with torch.no_grad():
        accuracy = ((model(features) > 0).float() == labels).float().mean().item()
    assert metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6)


def test_callbacks_are_added_and_removed_from_the_command_line(trained, read_scalars):
    run_dir, _, output = trained(
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=5",
        "+callbacks.every_epoch._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.every_epoch.dirpath={'${output_dir}'}/every_epoch",
        "+callbacks.every_epoch.save_top_k=-1",
        "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "trainer.enable_progress_bar=true",
        "~callbacks.progress_bar",
    )
    assert sorted(path.name for path in (run_dir / "every_epoch").iterdir()) == [
        "epoch=0-step=5.ckpt",
        "epoch=1-step=10.ckpt",
    ]
    assert read_scalars(run_dir)["lr-SGD"] == pytest.approx([0.01, 0.01])  # Lightning's stock monitor
    assert "epoch 2/2" not in output  # the lines progress_bar writes off a terminal


def test_plateau_scheduler_lowers_the_learning_rate_when_val_loss_stalls(trained, read_scalars):
    # a relative threshold of 1 counts no epoch as an improvement: the rate halves after every epoch
    run_dir, _, _ = trained(
        *SHORT[1:],
        "trainer.max_epochs=3",
        "scheduler=plateau",
        "scheduler.patience=0",
        "scheduler.threshold=1.0",
        "data.val_size=0.2",
    )
    assert read_scalars(run_dir)["train/lr"] == pytest.approx([0.01, 0.005, 0.0025])


def test_csv_logger_writes_every_epoch_value(trained):
    run_dir, metrics, _ = trained(*SHORT[1:], "trainer.max_epochs=2", "logger=csv")
    assert not (run_dir / "tensorboard").exists()
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    values = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    val_acc = [float(row["val/acc"]) for row in values if row["val/acc"]]
    assert len(val_acc) == 2 and val_acc[-1] == pytest.approx(metrics["val/acc"])
    assert (run_dir / "csv" / "hparams.yaml").is_file()


def test_no_logger_still_writes_the_results(trained):
    run_dir, metrics, _ = trained(*SHORT, "logger=none")
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "csv").exists()
    assert 0 < metrics["test/acc"] < 1 and (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_a_plain_trainer_with_stock_callbacks_drives_the_module_from_python(make_config, tmp_path):
    """What a Lightning user writes by hand: metrics reach callback_metrics, callbacks, validate and test."""
    datamodule, model = datamodule_and_model(make_config("data.val_size=0.2"))
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[EarlyStopping(monitor="val/loss", patience=5), best],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/auroc"} <= set(trainer.callback_metrics)
    assert best.best_model_score == max(best.best_k_models.values())
    (validated,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    assert validated["val/acc"] == pytest.approx(trainer.callback_metrics["val/acc"].item())
    (tested,) = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)
    assert set(tested) >= {"test/loss", "test/acc", "test/auroc", "test/f1", "test/precision", "test/recall"}
    assert 0.5 < tested["test/acc"] < 1
