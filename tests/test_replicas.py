"""``model.replicas=K``: K independent models trained at once, reported one by one, as mean ± std and
as an ensemble (the mean of their probabilities)."""

import json
import re
import statistics

import numpy as np
import pytest
import torch
from conftest import predicted_probabilities

from pima_lightning.data import PimaDataModule
from pima_lightning.evaluate import evaluate, format_report
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.predict import predict
from pima_lightning.runs.training import datamodule_and_model, seed_and_threads
from pima_lightning.train import train

METRIC_NAMES = ("loss", "acc", "auroc", "f1", "precision", "recall")


def test_a_replicas_run_reports_each_replica_their_spread_and_the_ensemble(
    train_cli, fast, tmp_path, pima_csv, read_scalars
):
    run_dir = tmp_path / "run"
    result = train_cli(*fast, "model.replicas=4", run_dir=run_dir)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 4
    per_replica = metrics["per_replica"]
    for name in METRIC_NAMES:
        values = per_replica[f"test/{name}"]
        assert len(values) == 4
        assert metrics[f"test/{name}"] == pytest.approx(statistics.mean(values))
        assert metrics[f"test/{name}_std"] == pytest.approx(statistics.stdev(values))

    # recomputed from the checkpoint: each replica's accuracy, and the ensemble's
    model, _ = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    datamodule = PimaDataModule(path=str(pima_csv))
    datamodule.setup()
    features, labels = datamodule.test_set.tensors
    with torch.no_grad():
        replica_accuracy = ((model(features) > 0).float() == labels).float().mean(1)
    assert replica_accuracy.tolist() == pytest.approx(per_replica["test/acc"])
    ensemble_probability = predicted_probabilities(model, features)
    np.testing.assert_allclose(ensemble_probability, model(features).sigmoid().mean(0).detach(), atol=1e-7)
    assert metrics["test/ensemble_acc"] == pytest.approx(
        ((ensemble_probability > 0.5) == labels.numpy()).mean()
    )

    output = result.stdout + result.stderr
    assert "4 replicas: accuracy" in output and "ensemble: accuracy" in output
    for replica, accuracy in enumerate(per_replica["test/acc"]):  # a line per replica
        assert re.search(rf"^\s+{replica}\s+{accuracy:.4f}\s", output, re.MULTILINE), output

    scalars = read_scalars(run_dir)  # the mean, the spread and the ensemble, once per epoch
    for tag in (
        "train/loss",
        "train/loss_std",
        "val/acc",
        "val/acc_std",
        "val/ensemble_acc",
        "val/auroc_std",
    ):
        assert len(scalars[tag]) == 3, tag


def test_evaluate_and_predict_use_the_ensemble_of_a_replicas_checkpoint(
    make_config, fast, tmp_path, pima_csv
):
    metrics = train(make_config(*fast, "model.replicas=3", f"output_dir={tmp_path / 'run'}"))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    (tmp_path / "evaluation").mkdir()
    report = evaluate(str(checkpoint), tmp_path / "evaluation")
    for name in METRIC_NAMES:
        assert report[name] == pytest.approx(metrics[f"test/{name}"], abs=1e-6)
        assert report[f"ensemble_{name}"] == pytest.approx(metrics[f"test/ensemble_{name}"], abs=1e-6)
        assert len(report["per_replica"][name]) == 3
    assert "3 replicas, mean ± std" in format_report(report)

    rows = np.loadtxt(pima_csv, delimiter=",")[:, :8]
    probabilities = predict(str(checkpoint), str(pima_csv), tmp_path / "predictions.csv")
    model, _ = load_checkpoint(checkpoint)
    with torch.no_grad():
        each = model(torch.as_tensor(rows, dtype=torch.float32)).sigmoid()
    np.testing.assert_allclose(probabilities, each.mean(0).numpy(), atol=1e-6)
    assert not np.allclose(probabilities, each[0].numpy(), atol=1e-3)  # not just one replica's


@pytest.mark.slow
def test_replicas_score_like_as_many_separate_runs(make_config, tmp_path):
    """8 replicas trained together and 8 runs with seeds of their own: means within noise.

    Were the replicas' gradients mixed or scaled (say, a mean of their losses instead of a sum), they
    would train as with another learning rate, which 40 epochs show in the loss.
    """
    settings = ["trainer.max_epochs=40", "trainer.enable_progress_bar=false"]
    train(make_config(*settings, "model.replicas=8", f"output_dir={tmp_path / 'together'}"))
    together = json.loads((tmp_path / "together" / "metrics.json").read_text())["per_replica"]
    separate = [
        train(make_config(*settings, f"seed={seed}", f"output_dir={tmp_path / str(seed)}"))
        for seed in range(8)
    ]
    for name in ("acc", "loss"):
        replicas, runs = together[f"test/{name}"], [metrics[f"test/{name}"] for metrics in separate]
        noise = (statistics.variance(replicas) / 8 + statistics.variance(runs) / 8) ** 0.5
        assert abs(statistics.mean(replicas) - statistics.mean(runs)) < 3 * noise + 1 / 254, (
            name,
            replicas,
            runs,
        )


def test_replica_k_of_a_seed_s_run_starts_from_the_weights_of_the_seed_s_plus_k_run(make_config, pima_csv):
    """Weight for weight, as train builds them (seed, then data and model): replica k of ``seed=11`` is
    the single run of ``seed=11+k`` at initialisation, as a cv or tune member of that seed is."""

    def initial_weights(*overrides):
        cfg = make_config(f"data.path={pima_csv}", *overrides)
        seed_and_threads(cfg)
        return datamodule_and_model(cfg)[1].network.get_weights

    replicas = initial_weights("model.replicas=3", "seed=11")
    for k in range(3):
        single = initial_weights("seed=" + str(11 + k))()
        for mine, theirs in zip(replicas(k), single, strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(replicas(0)[0], replicas(1)[0])
