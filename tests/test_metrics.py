import pytest
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
)

from pima_lightning.metrics import StageMetrics, classification_scores

TORCHMETRICS = {
    "acc": binary_accuracy,
    "auroc": binary_auroc,
    "f1": binary_f1_score,
    "precision": binary_precision,
    "recall": binary_recall,
}


def test_scores_equal_torchmetrics_replica_by_replica_ties_included():
    torch.manual_seed(0)
    probabilities = torch.rand(6, 300)
    probabilities[:, :40] = 0.5  # on the threshold: not positive
    probabilities[:, 40:90] = probabilities[:, 40:41]  # ties, which AUROC counts as half
    probabilities[5] = 0.2  # a replica predicting no positives: precision and F1 are 0
    labels = (torch.rand(6, 300) > 0.6).long()
    scores = classification_scores(probabilities, labels)
    for name, reference in TORCHMETRICS.items():
        expected = torch.stack([reference(p, y) for p, y in zip(probabilities, labels, strict=True)])
        torch.testing.assert_close(scores[name], expected, msg=name)


def test_stage_metrics_keep_replicas_apart_and_score_the_ensemble():
    torch.manual_seed(1)
    logits, labels = torch.randn(3, 80), (torch.rand(80) > 0.5).float()
    metrics = StageMetrics(replicas=3, ensemble=True)
    for part in (slice(0, 50), slice(50, 80)):  # two batches make one epoch
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            logits[:, part], labels[part].expand(3, -1), reduction="none"
        ).mean(-1)
        metrics.update(logits[:, part], labels[part], losses)
    per_replica, ensemble = metrics.compute()
    for replica in range(3):
        probabilities = logits[replica].sigmoid()
        assert per_replica["auroc"][replica] == pytest.approx(
            binary_auroc(probabilities, labels.long()).item()
        )
        expected_loss = torch.nn.functional.binary_cross_entropy(probabilities, labels)
        assert per_replica["loss"][replica] == pytest.approx(expected_loss.item(), rel=1e-5)
    mean_probability = logits.sigmoid().mean(0)
    assert ensemble["acc"] == pytest.approx(binary_accuracy(mean_probability, labels.long()).item())
    assert ensemble["loss"] == pytest.approx(
        torch.nn.functional.binary_cross_entropy(mean_probability, labels).item(), rel=1e-5
    )
    metrics.reset()
    assert not metrics.probabilities and not metrics.rows  # ready for the next epoch
