import json
import sqlite3

import optuna
import pytest
from optuna_integration import PyTorchLightningPruningCallback

from pima_lightning.train import train

QUICK = ["trainer.max_epochs=3", "trainer.enable_progress_bar=false"]


def finished_trials(study_db) -> int:
    with sqlite3.connect(study_db) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
        ).fetchone()[0]


def test_tiny_search_selects_on_validation_reports_test_once_and_resumes(cli, tmp_path):
    run_dir = tmp_path / "tune"
    first = cli("tune", "tune.n_trials=2", *QUICK, run_dir=run_dir)
    assert first.returncode == 0, first.stderr
    assert finished_trials(run_dir / "study.db") == 2
    # trials never see the test rows: their metrics are validation metrics on 103 carved-out rows
    for trial in ("0", "1"):
        metrics = json.loads((run_dir / "trials" / trial / "metrics.json").read_text())
        assert "val/acc" in metrics and not any(key.startswith("test/") for key in metrics)
    # a rerun in the same dir continues the stored study up to the new total
    second = cli("tune", "tune.n_trials=3", *QUICK, run_dir=run_dir)
    assert second.returncode == 0, second.stderr
    assert finished_trials(run_dir / "study.db") == 3
    assert "Running 1 trials (2 of 3 already finished)" in second.stdout + second.stderr
    assert f"written to {run_dir}: best.json" in second.stdout
    best = json.loads((run_dir / "best.json").read_text())
    trial_scores = [
        json.loads((run_dir / "trials" / t / "metrics.json").read_text())["val/acc"] for t in "012"
    ]
    assert best["best_val_acc"] == pytest.approx(max(trial_scores))
    evaluation = json.loads((run_dir / "best_test" / "evaluation.json").read_text())
    assert evaluation["n_rows"] == 254 and best["test"]["acc"] == evaluation["acc"]
    assert set(best["best_params"]) == {"optimizer", "lr", "weight_decay", "batch_size", "dropout"}


def test_pruning_callback_reads_the_logged_validation_accuracy_and_stops_a_hopeless_trial(make_config):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    trial = study.ask()
    pruning = PyTorchLightningPruningCallback(trial, monitor="val/acc")
    with pytest.raises(optuna.TrialPruned, match="epoch 0"):
        train(make_config(*QUICK, "data.val_size=0.2", "test=false"), callbacks=[pruning])
    (reported,) = study.trials[0].intermediate_values.items()
    assert reported[0] == 0 and 0.5 < reported[1] < 1  # epoch 0's validation accuracy, as logged
