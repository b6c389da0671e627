"""Members of one run (members.py): their own rows, scaling, initial weights and scores; cv on them."""

import json
import statistics

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F
from torchmetrics.functional.classification import binary_accuracy, binary_auroc

from pima_lightning.cv import cross_validation
from pima_lightning.data import PimaDataModule
from pima_lightning.ensembles.classifier import StackedClassifier, worst_seed
from pima_lightning.ensembles.members import MembersDataModule, members_of
from pima_lightning.errors import InputError
from pima_lightning.model import PimaClassifier


@pytest.fixture(scope="module")
def folds(pima_csv):
    """The 768 rows and their 10 stratified folds (76 or 77 held out: unequal sizes)."""
    datamodule = PimaDataModule(path=str(pima_csv), folds=10)
    datamodule.setup("fit")
    return datamodule.cv_features, datamodule.cv_labels, datamodule.cv_splits


def test_every_member_trains_on_its_own_training_rows_once_an_epoch_and_never_on_held_out_rows(folds):
    _, labels, splits = folds
    members = members_of([splits], seeds=[7, 8])
    # the row's number as its only feature: the batches then say which rows each member was given
    row_ids = np.arange(len(labels), dtype=np.float64)[:, None]
    datamodule = MembersDataModule(row_ids, labels, members, batch_size=10, standardize=False)
    for _ in range(2):  # two epochs: each a new order
        seen = [[] for _ in members]
        for batch_features, batch_labels, real in datamodule.train_dataloader():
            assert batch_features.shape[:2] == real.shape == batch_labels.shape == (len(members), 10)
            for member, (ids, mask) in enumerate(zip(batch_features[..., 0], real, strict=True)):
                seen[member] += ids[mask].long().tolist()
                assert not batch_labels[member][~mask].any() and not ids[~mask].any()  # the padding row
        for member, member_seen in zip(members, seen, strict=True):
            assert sorted(member_seen) == sorted(member.train_rows.tolist())  # each once, nothing else
            assert not set(member_seen) & set(member.held_out_rows.tolist())
        assert seen[0] != sorted(seen[0]) and seen[0] != seen[1]  # shuffled, each member its own order
    held_features, held_labels, real = datamodule.held_out_batch()
    for member, member_rows in enumerate(m.held_out_rows for m in members):
        assert held_features[member, real[member], 0].long().tolist() == member_rows.tolist()
        assert held_labels[member, real[member]].tolist() == labels[member_rows].tolist()
    assert {int(real[member].sum()) for member in range(len(members))} == {76, 77}


def test_each_member_is_scaled_with_its_own_training_rows_statistics(folds):
    features, labels, splits = folds
    members = members_of([splits[:3]], seeds=[7])
    datamodule = MembersDataModule(features, labels, members)
    for member, (train_rows, _) in enumerate(splits[:3]):
        scaler = StandardScaler().fit(features[train_rows])
        np.testing.assert_allclose(datamodule.feature_mean[member], scaler.mean_, rtol=1e-5)
        np.testing.assert_allclose(datamodule.feature_scale[member], scaler.scale_, rtol=1e-5)


def test_a_member_starts_from_the_weights_a_single_run_of_its_seed_starts_from():
    model = StackedClassifier(n_features=8, seeds=[7, 3, 7])
    for member, seed in enumerate([7, 3, 7]):
        L.seed_everything(seed, verbose=False)
        single = PimaClassifier(n_features=8)
        for stacked, layer in zip(model.network.linear_layers(), single.network.linear_layers(), strict=True):
            assert torch.equal(stacked.weight[member], layer.weight.T)
            assert torch.equal(stacked.bias[member, 0], layer.bias)


def test_padding_enters_no_loss_and_no_score(folds):
    features, labels, splits = folds
    members = members_of([splits[:4]], seeds=[7])
    datamodule = MembersDataModule(features, labels, members)
    model = StackedClassifier(n_features=8, seeds=[1, 2, 3, 4])
    model.adapt(datamodule)
    model.eval()  # no dropout: the same logits twice
    batch = datamodule.held_out_batch()
    with torch.no_grad():
        objective = model.training_step(batch, 0)
        model.test_step(batch, 0)
        model.on_test_epoch_end()  # as Lightning's test loop ends an epoch
    expected = 0.0
    for member, held_out in enumerate(m.held_out_rows for m in members):
        rows = torch.as_tensor(features[held_out], dtype=torch.float32).expand(4, -1, -1)
        with torch.no_grad():
            logits = model(rows)[member]  # the member alone, on its real rows only
        targets = torch.as_tensor(labels[held_out], dtype=torch.float32)
        expected += F.binary_cross_entropy_with_logits(logits, targets).item()
        scores = model.member_scores[member]
        assert scores["acc"] == pytest.approx(binary_accuracy(logits.sigmoid(), targets.long()).item())
        assert scores["auroc"] == pytest.approx(binary_auroc(logits.sigmoid(), targets.long()).item())
        np.testing.assert_allclose(model.member_probabilities[member], logits.sigmoid().numpy(), rtol=1e-6)
    assert objective.item() == pytest.approx(expected, rel=1e-5)


def test_worst_seed_averages_each_folds_lowest_seed():
    assert worst_seed([0.8, 0.6, 0.7, 0.9], [0, 0, 1, 1]) == pytest.approx((0.6 + 0.7) / 2)
    assert worst_seed([0.8, 0.6], [0, 1]) == pytest.approx(0.7)  # one seed a fold: the mean


def run_cv(output_dir, *overrides) -> dict:
    """``python -m pima_lightning.cv <overrides>``, in this process, writing to ``output_dir``."""
    quiet = ["trainer.enable_progress_bar=false", f"output_dir={output_dir}"]
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        return cross_validation(compose("cv", overrides=[*quiet, *overrides]), [], output_dir)


def test_members_agree_with_the_same_folds_trained_one_at_a_time(tmp_path):
    """5 folds, 40 epochs: the members of one run against 5 ordinary runs (cv.engine=runs). Their initial
    weights are the same; batch orders and dropout masks differ, so the folds' accuracies differ by noise."""
    common = ["cv.folds=5", "trainer.max_epochs=40", "cv.baselines=false"]
    members = run_cv(tmp_path / "m", *common)
    runs = run_cv(tmp_path / "r", *common, "cv.engine=runs", "cv.jobs=1")
    ours, theirs = (summary["methods"]["network"] for summary in (members, runs))
    assert abs(ours["acc"]["mean"] - theirs["acc"]["mean"]) < 0.015  # within 1.5 points
    assert abs(ours["auroc"]["mean"] - theirs["auroc"]["mean"]) < 0.015
    report = json.loads((tmp_path / "m" / "cv.json").read_text())
    assert [(row["repeat"], row["fold"]) for row in report["folds"]] == [(0, fold) for fold in range(5)]


def test_cv_with_seeds_reports_the_spread_inside_folds_and_each_folds_seed_ensemble(tmp_path):
    summary = run_cv(tmp_path, "cv.folds=3", "cv.seeds=2", "trainer.max_epochs=5")
    members = (tmp_path / "members.csv").read_text().splitlines()
    assert members[0].startswith("repeat,fold,seed,") and len(members) == 1 + 3 * 2
    seeds = sorted({line.split(",")[2] for line in members[1:]})
    assert seeds == ["7", "8"]
    report = json.loads((tmp_path / "cv.json").read_text())
    rows = [line.split(",") for line in members[1:]]
    header = members[0].split(",")
    for fold_row in report["folds"]:
        accuracies = [float(r[header.index("acc")]) for r in rows if int(r[1]) == fold_row["fold"]]
        assert fold_row["network acc"] == pytest.approx(statistics.mean(accuracies))
        assert fold_row["network seed std acc"] == pytest.approx(statistics.stdev(accuracies))
        assert 0 < fold_row["network seed ensemble acc"] <= 1
    assert "network seed ensemble - logistic regression acc" in summary
    assert set(summary["methods"]) >= {"network", "network seed ensemble", "logistic regression"}


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("model.replicas=2", "model.replicas=2: cv trains seeds as members; use cv.seeds"),
        ("scheduler=plateau", "scheduler=plateau would lower every member's learning rate"),
        ("data.val_size=0.2", "data.val_size=0.2: cv scores each member on its fold's held-out rows"),
        ("callbacks=early_stopping", "callbacks.early_stopping selects on a validation metric"),
        ("trainer=ddp_cpu", "2 processes (trainer.devices=2): members train in one process"),
        ("cv.engine=threads", "cv.engine=threads: expected one of members, runs"),
    ],
)
def test_settings_members_cannot_honour_are_refused_in_one_line(tmp_path, override, said):
    with pytest.raises(InputError, match="^" + said.replace("(", r"\(").replace(")", r"\)")):
        run_cv(tmp_path, "cv.folds=2", "trainer.max_epochs=1", override)


def test_a_diverging_member_stops_cross_validation_with_one_line(tmp_path):
    with pytest.raises(
        InputError, match=r"^training diverged: the loss of the member of fold 0 \(repeat 0\)"
    ):
        run_cv(tmp_path, "cv.folds=2", "trainer.max_epochs=2", "optimizer.lr=1e6", "cv.baselines=false")
    assert not (tmp_path / "cv.json").exists()
