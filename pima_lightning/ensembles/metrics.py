"""One stage's epoch metrics for ``replicas`` models trained side by side, and for their ensemble.

``StageMetrics`` is a torchmetrics ``Metric`` that keeps the epoch's logits and labels (torchmetrics'
states, so DDP gathers them across processes) and scores them at the epoch's end with torchmetrics'
multilabel functions, one label column per replica (``average=None``: a value per replica).

Why not a ``MetricCollection`` of ``Multilabel*`` objects updated every step: measured here (1 thread,
torchmetrics 1.9), updating the five of them costs 158-177 us per minibatch, against 9 us to keep the
rows; over the default run's 7,800 steps that is 1.2 s of a fit of about 10 s. The numbers are the
same (tests/test_metrics.py checks them against torchmetrics' binary metrics, replica by replica).
"""

import torch
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.functional import classification
from torchmetrics.utilities import dim_zero_cat

from pima_lightning.model import SCORES as BINARY
from pima_lightning.model import class_scores

# the core's scores (model.SCORES), each with torchmetrics' multilabel function of the same score: a label
# column per replica
SCORES = {
    name: (getattr(classification, score.__name__.replace("binary_", "multilabel_")), score)
    for name, score in BINARY.items()
}


class StageMetrics(Metric):
    """A stage's epoch metrics for ``replicas`` models: each replica's mean binary cross-entropy and
    ``scores`` (of accuracy, AUROC, F1, precision and recall, at threshold 0.5 as Keras's) and, with
    ``ensemble=True``, those of the ensemble (the mean of the replicas' probabilities; its loss is the
    cross-entropy of that mean). The ensemble needs every replica to score the same rows (validation
    and test rows); rows of each replica's own (a ``real`` mask given) have none. Rows where ``real``
    is False (padding) enter no loss and no score.

    For K > 2 classes (logits ``(replicas, rows, K)``) each replica is scored on its own with the core's
    multiclass scores (``model.class_scores``: softmax, cross-entropy, macro averages), one replica after
    the other; the ensemble's probabilities are the mean of the replicas' softmax.
    """

    full_state_update = False

    def __init__(self, replicas: int, ensemble: bool, scores: tuple[str, ...] = tuple(SCORES)) -> None:
        super().__init__()
        self.replicas, self.ensemble, self.scores = replicas, ensemble, tuple(scores)
        self.shared_rows = True  # until an update brings each replica's own rows
        # rows first, so that joining the processes' states joins rows; a padding row's label is -1
        self.add_state("logits", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, real: torch.Tensor | None = None) -> None:
        """``logits``: ``(replicas, rows)`` (``(replicas, rows, K)`` for K > 2 classes); ``labels``:
        ``(replicas, rows)``, or ``(rows,)`` for rows every replica shares; ``real``: ``(replicas, rows)``,
        False for padding, when each has rows of its own."""
        labels = labels.expand(logits.shape[:2])
        if real is not None:
            self.shared_rows = False
            labels = torch.where(real, labels, torch.full_like(labels, -1))
        self.logits.append(logits.detach().float().transpose(0, 1))
        self.labels.append(labels.T)

    def probabilities(self) -> list[torch.Tensor]:
        """Each replica's P(class 1) of its real rows (each class's, ``(rows, K)``, for K > 2 classes), in
        the order they were updated (this process's)."""
        logits, labels = dim_zero_cat(self.logits), dim_zero_cat(self.labels)
        chance = torch.sigmoid if logits.dim() == 2 else lambda copy: copy.softmax(-1)
        return [chance(logits[:, copy][labels[:, copy] >= 0]) for copy in range(logits.shape[1])]

    def compute(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
        """``(per replica: name -> (replicas,) tensor, ensemble: name -> scalar tensor or {}, rows
        scored)``; as for any ``Metric``, torchmetrics squeezes one replica's values to scalars."""
        # (rows, replicas); after a DDP sync each state is one tensor already
        logits, labels = dim_zero_cat(self.logits), dim_zero_cat(self.labels)
        if logits.dim() == 3:
            return self._multiclass(logits, labels)
        real = labels >= 0
        targets = labels.long()
        probabilities = logits.sigmoid()
        settings = {"num_labels": self.replicas, "average": None, "validate_args": False}
        if not real.all():
            settings["ignore_index"] = -1
        losses = F.binary_cross_entropy_with_logits(logits, labels.clamp(min=0), reduction="none")
        per_replica = {"loss": (losses * real).sum(0) / real.sum(0).clamp(min=1)}
        per_replica |= {name: SCORES[name][0](probabilities, targets, **settings) for name in self.scores}
        rows = len(labels)
        if not (self.ensemble and self.shared_rows):
            return per_replica, {}, rows
        mean_probability, shared_targets = probabilities.mean(1), targets[:, 0]
        ensemble = {"loss": F.binary_cross_entropy(mean_probability, labels[:, 0])}
        ensemble |= {
            name: SCORES[name][1](mean_probability, shared_targets, validate_args=False)
            for name in self.scores
        }
        return per_replica, ensemble, rows

    def _multiclass(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
        """``compute`` for K > 2 classes: ``logits (rows, replicas, K)``, ``labels (rows, replicas)``."""
        kept = ("loss", *self.scores)
        scored = [
            class_scores(logits[:, copy][labels[:, copy] >= 0], labels[:, copy][labels[:, copy] >= 0])
            for copy in range(logits.shape[1])
        ]
        per_replica = {name: torch.stack([scores[name] for scores in scored]) for name in kept}
        if self.replicas == 1:  # as torchmetrics gives one replica's values: scalars
            per_replica = {name: value[0] for name, value in per_replica.items()}
        if not (self.ensemble and self.shared_rows):
            return per_replica, {}, len(labels)
        # the ensemble's probabilities as logits: log of the mean softmax, whose softmax is that mean
        mean_logits = logits.softmax(-1).mean(1).clamp(min=1e-12).log()
        ensemble = class_scores(mean_logits, labels[:, 0])
        return per_replica, {name: ensemble[name] for name in kept}, len(labels)
