"""logger=mlflow (issue 19): the run read back through MLflow's own client, from the SQLite store the
config names: its name, the compared hyperparameters as params, every epoch's metrics, and the
checkpoint and pictures as artifacts."""

import json
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason='logger=mlflow needs pip install -e ".[track]"')


def artifacts(client, run_id: str, folder: str | None = None) -> list[str]:
    found = []
    for entry in client.list_artifacts(run_id, folder):
        found += artifacts(client, run_id, entry.path) if entry.is_dir else [entry.path]
    return found


def test_an_mlflow_run_holds_params_metric_history_and_artifacts(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    result = train_cli(
        "logger=mlflow", "trainer.max_epochs=3", "trainer.enable_progress_bar=false", "optimizer=adam",
        run_dir=run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # MLflow's notices (creating the experiment) go to train.log only
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")  # the cwd's outputs/
    (run,) = client.search_runs([client.get_experiment_by_name("pima_lightning").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == (
        "optimizer=adam,trainer.enable_progress_bar=false,trainer.max_epochs=3"  # not logger=mlflow
    )
    assert run.data.params["optimizer"] == "Adam" and run.data.params["lr"] == "0.001"
    assert run.data.params["batch_size"] == "10" and run.data.params["max_epochs"] == "3"
    recorded = json.loads((run_dir / "metrics.json").read_text())
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) == 3 and history[-1].value == pytest.approx(recorded["val/loss"])
    assert [point.step for point in history] == [0, 1, 2]  # epochs on MLflow's x-axis, as TensorBoard's
    assert run.data.metrics["test/acc"] == pytest.approx(recorded["test/acc"])
    stored = artifacts(client, run.info.run_id)
    assert {"test/roc_curve.png", "test/confusion_matrix.png", "test/precision_recall_curve.png"} <= set(
        stored
    )
    assert "checkpoints/last.ckpt" in stored
    (tmp_path / "got").mkdir()
    got = client.download_artifacts(run.info.run_id, "checkpoints/last.ckpt", str(tmp_path / "got"))
    assert Path(got).read_bytes() == (run_dir / "checkpoints" / "last.ckpt").read_bytes()


def test_many_loggers_writes_tensorboard_csv_and_mlflow(make_config):
    cfg = make_config("logger=many_loggers")
    assert [entry._target_.rsplit(".", 1)[-1] for entry in cfg.logger.values()] == [
        "EpochTensorBoardLogger",  # Lightning's TensorBoardLogger, epochs on the x-axis
        "CSVLogger",
        "EpochMLFlowLogger",  # Lightning's MLFlowLogger, epochs on the x-axis
    ]
