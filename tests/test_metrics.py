import pytest
import torch
from torch.nn import functional as F
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
)

from pima_lightning.ensembles.metrics import StageMetrics

TORCHMETRICS = {
    "acc": binary_accuracy,
    "auroc": binary_auroc,
    "f1": binary_f1_score,
    "precision": binary_precision,
    "recall": binary_recall,
}


def test_each_replica_scores_as_torchmetrics_binary_metrics_score_it_alone_ties_included():
    torch.manual_seed(0)
    logits = torch.randn(6, 300)
    logits[:, :40] = 0.0  # probability 0.5, on the threshold: not positive
    logits[:, 40:90] = logits[:, 40:41]  # ties, which AUROC counts as half
    logits[5] = -2.0  # a replica predicting no positives: precision and F1 are 0
    labels = (torch.rand(6, 300) > 0.6).float()
    metrics = StageMetrics(replicas=6, ensemble=False)
    for rows in torch.arange(300).split(64):  # an epoch of minibatches
        metrics.update(logits[:, rows], labels[:, rows])
    per_replica, ensemble, rows = metrics.compute()
    assert ensemble == {} and rows == 300
    for name, reference in TORCHMETRICS.items():
        expected = torch.stack(
            [reference(p, y.long()) for p, y in zip(logits.sigmoid(), labels, strict=True)]
        )
        torch.testing.assert_close(per_replica[name], expected, msg=name)
    expected_loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)
    torch.testing.assert_close(per_replica["loss"], expected_loss)


def test_stage_metrics_keep_replicas_apart_and_score_the_ensemble():
    torch.manual_seed(1)
    logits, labels = torch.randn(3, 80), (torch.rand(80) > 0.5).float()
    metrics = StageMetrics(replicas=3, ensemble=True)
    for part in (slice(0, 50), slice(50, 80)):  # two batches make one epoch
        metrics.update(logits[:, part], labels[part])
    per_replica, ensemble, rows = metrics.compute()
    assert rows == 80
    for replica in range(3):
        probabilities = logits[replica].sigmoid()
        assert per_replica["auroc"][replica] == pytest.approx(
            binary_auroc(probabilities, labels.long()).item()
        )
        expected_loss = F.binary_cross_entropy(probabilities, labels)
        assert per_replica["loss"][replica] == pytest.approx(expected_loss.item(), rel=1e-5)
    mean_probability = logits.sigmoid().mean(0)
    assert ensemble["acc"] == pytest.approx(binary_accuracy(mean_probability, labels.long()).item())
    assert ensemble["loss"] == pytest.approx(
        F.binary_cross_entropy(mean_probability, labels).item(), rel=1e-5
    )
    metrics.reset()
    assert not metrics.logits and not metrics.labels  # ready for the next epoch


def test_training_rows_are_scored_on_loss_and_accuracy_only():
    metrics = StageMetrics(replicas=2, ensemble=False, scores=("acc",))
    logits, labels = torch.tensor([[2.0, -1.0], [0.5, 0.7]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    metrics.update(logits, labels)
    per_replica, _, _ = metrics.compute()
    assert set(per_replica) == {"loss", "acc"}
    assert per_replica["acc"].tolist() == [0.5, 0.5]
