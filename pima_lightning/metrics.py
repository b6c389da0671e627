"""One stage's metrics for ``replicas`` models trained side by side, and for their ensemble.

The scores are computed here, for all replicas at once, from the rows' probabilities: torchmetrics
computes the same numbers (tests/test_metrics.py checks them against it) but one metric object per
score and per replica, which for 32 replicas cost more per epoch than training the epoch. Row storage
and the reduction across processes are torchmetrics' (``Metric`` states).
"""

import torch
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def classification_scores(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, AUROC, F1, precision and recall of each row of ``(replicas, rows)`` probabilities
    against 0/1 ``labels`` of the same shape; each score has shape ``(replicas,)``.

    A row is predicted positive when its probability exceeds 0.5 (Keras's accuracy threshold).
    Precision and F1 are 0 where nothing is predicted positive, recall 0 where nothing is positive
    (torchmetrics' ``zero_division=0``). AUROC is the Mann-Whitney statistic, ties counting half,
    which equals the area under the ROC curve; NaN for a replica whose rows are all of one class.
    """
    positive, predicted = labels.bool(), probabilities > 0.5
    true_pos = (predicted & positive).sum(-1).double()
    false_pos = (predicted & ~positive).sum(-1).double()
    false_neg = (~predicted & positive).sum(-1).double()
    rows = labels.shape[-1]
    ordered = probabilities.sort(-1).values
    # each probability's rank among its replica's rows, tied probabilities sharing their mean rank
    below = torch.searchsorted(ordered, probabilities, right=False)
    at_or_below = torch.searchsorted(ordered, probabilities, right=True)
    ranks = (below + at_or_below + 1).double() / 2
    n_pos = positive.sum(-1).double()
    n_neg = rows - n_pos
    auroc = ((ranks * positive).sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    scores = {
        "acc": (rows - false_pos - false_neg) / rows,
        "auroc": auroc,
        "f1": _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg),
        "precision": _ratio(true_pos, true_pos + false_pos),
        "recall": _ratio(true_pos, true_pos + false_neg),
    }
    return {name: value.float() for name, value in scores.items()}


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), 0.0)


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
