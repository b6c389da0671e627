"""One stage's metrics for ``replicas`` models trained side by side, and for their ensemble.

The scores are computed here, for all replicas at once, from the rows' probabilities: torchmetrics
computes the same numbers (tests/test_metrics.py checks them against it) but one metric object per
score and per replica, which for 32 replicas cost more per epoch than training the epoch. Row storage
and the reduction across processes are torchmetrics' (``Metric`` states).
"""

import numpy as np
import torch
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def classification_scores(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, AUROC, F1, precision and recall of each row of ``(replicas, rows)`` probabilities
    against 0/1 ``labels`` of the same shape; each score has shape ``(replicas,)``, on their device.

    A row is predicted positive when its probability exceeds 0.5 (Keras's accuracy threshold).
    Precision and F1 are 0 where nothing is predicted positive, recall 0 where nothing is positive
    (torchmetrics' ``zero_division=0``). AUROC is the Mann-Whitney statistic, ties counting half,
    which equals the area under the ROC curve; NaN for a replica whose rows are all of one class.
    Computed with numpy, whose operations on arrays this small cost a fraction of torch's.
    """
    scores = probabilities.detach().float().cpu().numpy()
    positive = labels.detach().cpu().numpy() > 0.5
    predicted = scores > 0.5
    rows = positive.shape[-1]
    n_pos = positive.sum(-1)
    true_pos, predicted_pos = (predicted & positive).sum(-1), predicted.sum(-1)
    false_pos, false_neg = predicted_pos - true_pos, n_pos - true_pos
    pairs = n_pos * (rows - n_pos)  # (positive, negative) pairs
    below = _negatives_below(scores, positive, ties=False) + _negatives_below(scores, positive, ties=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = below / (2.0 * pairs)
    values = {
        "acc": (rows - false_pos - false_neg) / rows,
        "auroc": auroc,
        "f1": _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg),
        "precision": _ratio(true_pos, predicted_pos),
        "recall": _ratio(true_pos, n_pos),
    }
    return {
        name: torch.as_tensor(value, dtype=torch.float32, device=probabilities.device)
        for name, value in values.items()
    }


def _negatives_below(scores: np.ndarray, positive: np.ndarray, ties: bool) -> np.ndarray:
    """Per row of ``scores``, the number of (positive, negative) pairs whose negative scores lower, or
    with ``ties`` lower or equal: one sort of keys that order rows by score and, within a tie, put the
    negatives first (``ties``) or last, then a count of the negatives before each positive."""
    # probabilities are >= 0, and non-negative floats order as their bit patterns do
    keys = scores.view(np.int32).astype(np.int64) << 1 | (positive if ties else ~positive)
    ordered_positive = (np.sort(keys, axis=-1) & 1).astype(bool) == ties
    ordered_negative = ~ordered_positive
    negatives_before = np.cumsum(ordered_negative, axis=-1) - ordered_negative
    return (negatives_before * ordered_positive).sum(-1)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0."""
    return np.divide(numerator, denominator, out=np.zeros(numerator.shape), where=denominator > 0)


class StageMetrics(Metric):
    """A stage's epoch metrics for ``replicas`` models: each replica's loss and scores (see
    ``classification_scores``) and, with ``ensemble=True``, those of the ensemble (the mean of the
    replicas' probabilities; its loss is the cross-entropy of that mean). The ensemble needs every
    replica to score the same rows, in the same order (validation and test rows).
    """

    full_state_update = False

    def __init__(self, replicas: int, ensemble: bool) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.add_state("loss_total", torch.zeros(replicas), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros(()), dist_reduce_fx="sum")
        # rows first, so that joining the processes' states joins rows
        self.add_state("probabilities", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, losses: torch.Tensor) -> None:
        """``logits``: ``(replicas, rows)``; ``labels``: the same shape, or ``(rows,)`` for rows every
        replica shares; ``losses``: each replica's mean loss over these rows (what it minimises)."""
        labels = labels.expand_as(logits)
        self.loss_total += losses.detach() * labels.shape[-1]
        self.rows += labels.shape[-1]
        self.probabilities.append(logits.detach().sigmoid().T)
        self.labels.append(labels.T)

    def compute(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(per replica: name -> (replicas,) tensor, ensemble: name -> scalar, or {})``."""
        probabilities = dim_zero_cat(self.probabilities).T.contiguous()
        labels = dim_zero_cat(self.labels).T.contiguous()
        per_replica = {"loss": self.loss_total / self.rows, **classification_scores(probabilities, labels)}
        if not self.ensemble:
            return per_replica, {}
        mean_probability, shared_labels = probabilities.mean(0, keepdim=True), labels[:1]
        ensemble = {
            "loss": F.binary_cross_entropy(mean_probability, shared_labels),
            **{
                name: value[0]
                for name, value in classification_scores(mean_probability, shared_labels).items()
            },
        }
        return per_replica, ensemble
