import json
import sqlite3

import numpy as np
import optuna
import pytest
from hydra import compose, initialize_config_module
from optuna_integration import PyTorchLightningPruningCallback

from pima_lightning.data import PimaDataModule
from pima_lightning.ensembles.members import MembersDataModule
from pima_lightning.errors import InputError
from pima_lightning.train import train
from pima_lightning.tune import search

QUICK = ["trainer.max_epochs=3", "trainer.enable_progress_bar=false"]


def finished_trials(study_db) -> int:
    with sqlite3.connect(study_db) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
        ).fetchone()[0]


def test_tiny_search_selects_by_cross_validation_reports_test_once_and_resumes(cli, tmp_path):
    run_dir = tmp_path / "tune"
    first = cli(
        "tune", "tune.n_trials=2", "tune.folds=2", "tune.space.max_epochs=[3]", *QUICK, run_dir=run_dir
    )
    assert first.returncode == 0, first.stderr
    assert finished_trials(run_dir / "study.db") == 2
    # a trial is 2 folds x 3 seeds members of one run, each validated on its fold of the training rows
    for trial in ("0", "1"):
        record = json.loads((run_dir / "trials" / trial / "members.json").read_text())
        assert sorted((m["fold"], m["seed"]) for m in record["members"]) == [
            (fold, seed) for fold in (0, 1) for seed in (7, 8, 9)
        ]
        accuracies = {(m["fold"], m["seed"]): m["val_acc"] for m in record["members"]}
        worst = [min(accuracies[fold, seed] for seed in (7, 8, 9)) for fold in (0, 1)]
        assert record["objective"] == pytest.approx(sum(worst) / 2)  # the folds' worst seeds
    # a rerun in the same dir continues the stored study up to the new total
    second = cli(
        "tune", "tune.n_trials=3", "tune.folds=2", "tune.space.max_epochs=[3]", *QUICK, run_dir=run_dir
    )
    assert second.returncode == 0, second.stderr
    assert finished_trials(run_dir / "study.db") == 3
    assert "Running 1 trials (2 of 3 already finished)" in second.stdout + second.stderr
    assert f"written to {run_dir}: best.json" in second.stdout
    best = json.loads((run_dir / "best.json").read_text())
    scores = [
        json.loads((run_dir / "trials" / t / "members.json").read_text())["objective"]
        for t in "012"
        if (run_dir / "trials" / t / "members.json").exists()  # pruned trials stop early
    ]
    assert best["best_val_acc"] == pytest.approx(max(scores))
    tested = json.loads((run_dir / "best_test" / "metrics.json").read_text())  # retrained, tested once
    assert best["test"]["acc"] == tested["test/acc"]
    # QUICK's trainer.max_epochs=3 on the command line fixes the epochs: they are not searched (issue 25)
    sampled = {"optimizer", "lr", "weight_decay", "batch_size", "dropout"}
    assert set(best["best_params"]) == sampled
    # the resumed sampler draws new settings: re-seeded as at the start, it repeated trial 0's
    trials = optuna.load_study(study_name="pima", storage=f"sqlite:///{run_dir / 'study.db'}").trials
    assert trials[2].params not in [trials[0].params, trials[1].params]
    # a study is resumed only by the search that made it: another space or other data is one line
    for changed, named in (
        ("tune.space.lr=[0.001,0.01]", "tune.space.lr"),
        ("data.test_size=0.5", "data.test_size"),
    ):
        refused = cli("tune", "tune.n_trials=4", "tune.folds=2", "tune.space.max_epochs=[3]", *QUICK, changed,
                      run_dir=run_dir)  # fmt: skip
        assert refused.returncode == 1
        said = refused.stderr.strip().splitlines()[-1]  # after Optuna's own notice
        assert (
            said.startswith(f"error: {run_dir / 'study.db'} holds a study of another search:")
            and named in said
        )
        assert "\n" not in said
    assert finished_trials(run_dir / "study.db") == 3


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["tune.n_trials=0"], "error: tune.n_trials=0: expected a whole number >= 1"),
        (
            ["tune.space.lr=[0.3,0.0001]"],
            "error: tune.space.lr=[0.3, 0.0001]: expected [low, high] with 0 < low < high",
        ),
        (
            ["tune.space.dropout=[0.5,1.5]"],
            "error: tune.space.dropout=[0.5, 1.5]: expected [low, high] with 0 <= low < high < 1",
        ),
        (
            ["tune.space.optimizer=[rmsprop]"],
            "error: tune.space.optimizer: rmsprop is not in conf/optimizer/ (adam, sgd)",
        ),
        (["tune.folds=1"], "error: tune.folds=1: expected 0 (one validation part) or a whole number >= 2"),
    ],
)
def test_search_settings_are_checked_before_any_trial(tmp_path, overrides, expected):
    """In-process (a CLI start costs 5 s); the CLI's one line for the first case is the next test."""
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("tune", overrides=[*overrides, f"output_dir={tmp_path}"])
        with pytest.raises(InputError) as raised:
            search(cfg, QUICK, tmp_path)
    assert f"error: {raised.value}" == expected
    assert not (tmp_path / "study.db").exists()


def test_the_cli_says_a_bad_search_setting_in_one_line(cli, tmp_path):
    result = cli("tune", "tune.n_trials=0", *QUICK, run_dir=tmp_path / "tune")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: tune.n_trials=0: expected a whole number >= 1"
    assert not (tmp_path / "tune" / "study.db").exists()


def test_a_corrupt_study_is_one_line(cli, tmp_path):
    run_dir = tmp_path / "tune"
    run_dir.mkdir()
    (run_dir / "study.db").write_bytes(b"not a database" * 100)
    result = cli("tune", "tune.n_trials=1", *QUICK, run_dir=run_dir)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {run_dir / 'study.db'}: not an Optuna study (")
    assert result.stderr.strip().endswith("move it away to start a new study")


def test_the_search_reads_no_held_out_row_before_the_best_trial_is_chosen(
    tmp_path, monkeypatch, notebook_split
):
    """Every data module the search sets up is recorded; only the last one (the final test) holds the
    notebook's held-out rows."""
    held_out = {tuple(row) for row in notebook_split[1].astype(np.float32).tolist()}
    touched = {}  # data module -> whether it holds a held-out row (Lightning sets each up again in fit)
    setup = PimaDataModule.setup

    def recording_setup(self, stage=None):
        setup(self, stage)
        rows = {
            tuple(row)
            for part in (self.train_set, self.val_set, self.test_set)
            for row in part.tensors[0].numpy().tolist()
        }
        touched[id(self)] = bool(rows & held_out)

    monkeypatch.setattr(PimaDataModule, "setup", recording_setup)
    members_init = MembersDataModule.__init__
    members_rows = []  # every row the members of a trial train or validate on

    def recording_members(self, features, labels, members, *args, **kwargs):
        members_rows.append({tuple(row) for row in np.asarray(features, dtype=np.float32).tolist()})
        members_init(self, features, labels, members, *args, **kwargs)

    monkeypatch.setattr(MembersDataModule, "__init__", recording_members)
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        overrides = ["tune.n_trials=2", "tune.folds=2", "tune.space.max_epochs=[1]", f"output_dir={tmp_path}"]
        cfg = compose("tune", overrides=overrides)
        search(cfg, ["trainer.max_epochs=1"], tmp_path)
    assert list(touched.values()) == [False, True]  # the rows the folds split, then the one test
    assert len(members_rows) == 2 and not any(rows & held_out for rows in members_rows)  # 2 trials
    assert all(len(rows) == 514 for rows in members_rows)  # the training part's rows (all distinct)


def test_pruning_callback_reads_the_logged_validation_accuracy_and_stops_a_hopeless_trial(make_config):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    trial = study.ask()
    pruning = PyTorchLightningPruningCallback(trial, monitor="val/acc")
    with pytest.raises(optuna.TrialPruned, match="epoch 0"):
        train(make_config(*QUICK, "data.val_size=0.2", "test=false"), callbacks=[pruning])
    (reported,) = study.trials[0].intermediate_values.items()
    assert reported[0] == 0 and 0.5 < reported[1] < 1  # epoch 0's validation accuracy, as logged


def test_a_diverging_member_scores_its_trial_low_and_the_search_goes_on(tmp_path):
    """lr 1000 diverges in the first epoch: the trial completes, its members scored as predicting class 0
    (the majority share of their folds), and only the best settings' retraining says it diverged."""
    overrides = [
        *("tune.n_trials=1", "tune.folds=2", "tune.seeds=1", "tune.space.optimizer=[sgd]"),
        *("tune.space.lr=[1000,10000]", "tune.space.max_epochs=[3]", f"output_dir={tmp_path}"),
    ]
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("tune", overrides=overrides)
        with pytest.raises(InputError, match=r"^training diverged: the training loss became nan"):
            search(cfg, QUICK, tmp_path)
    assert finished_trials(tmp_path / "study.db") == 1
    record = json.loads((tmp_path / "trials" / "0" / "members.json").read_text())
    majority = 1 - 176 / 514  # class 0's share of the training part, about that of each fold
    assert all(member["val_acc"] == pytest.approx(majority, abs=0.01) for member in record["members"])
