"""Members: many copies of the notebook's model trained in one run, each on rows of its own.

A member is a (fold, seed) pair: it trains on its fold's training rows only, standardised with statistics
fitted on those rows, in its own shuffled order, from the initial weights a single run with its seed
starts from, and it is scored on its fold's held-out rows. ``cv`` trains every fold (and seed) of a
cross-validation as members of one run, ``tune`` scores each trial by the members of one run.

Beside the core (``model.py``, ``data.py``), as ``ensemble.py``'s replicas are, and on the same engine
(``StackedMLP``: one batched matrix product per layer). The replicas share their rows; members do not,
so a batch holds each member's rows, padded where members have fewer: features ``(members, rows,
n_features)``, labels and a ``real`` mask ``(members, rows)``. A padding row (an extra all-zero row) never
enters a loss or a metric: every member's loss and scores are the mean over its real rows.

Exactness: a member's initial weights are those ``PimaClassifier`` draws after ``seed_everything(seed)``;
its batch order and dropout masks are drawn from the run's generator, so its metrics agree with a single
run of its fold within the noise between seeds, not digit for digit. Members whose training rows need
fewer minibatches than the largest member's (10 folds of 768 rows need 70 each; it takes row counts on
either side of a multiple of the batch size) get steps with no rows of theirs: no gradient, but momentum
and Adam still move their weights that step.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, IterableDataset

from pima_lightning.ensembles.replicas import StackedMLP
from pima_lightning.model import MLP, NOTEBOOK_SGD, PROGRESS_BAR, SCORES, optimizers

# seeds a fold (cv.seeds, tune.seeds): each is a network of its own in one run, so 10^6 of them ended in
# a bad_alloc traceback; 1,000 x 10 folds of the notebook's network is 1.9M parameters
MAX_SEEDS = 1_000


@dataclass(frozen=True)
class Member:
    """One member: which fold (of which repeat) and seed, and its rows (indices into the rows split)."""

    repeat: int
    fold: int
    seed: int
    train_rows: np.ndarray
    held_out_rows: np.ndarray


def members_of(
    splits: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], seeds: Sequence[int]
) -> list[Member]:
    """A member per (repeat, fold, seed): ``splits[repeat][fold]`` is ``(training rows, held-out rows)``."""
    return [
        Member(repeat, fold, seed, train_rows, held_out_rows)
        for repeat, folds in enumerate(splits)
        for fold, (train_rows, held_out_rows) in enumerate(folds)
        for seed in seeds
    ]


class MemberBatches(IterableDataset):
    """An epoch's training minibatches: for every member a fresh permutation of its own training rows
    (drawn from torch's generator), cut into ``batch_size`` rows per step; members with fewer rows are
    padded with the padding row (``real`` False) once their rows run out."""

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, rows: list[torch.Tensor], batch_size: int
    ):
        self.features, self.labels, self.rows, self.batch_size = features, labels, rows, batch_size
        self.padding = len(features) - 1  # the all-zero row appended last
        self.steps = max(-(-len(member_rows) // batch_size) for member_rows in rows)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        width = self.steps * self.batch_size
        orders = torch.full((len(self.rows), width), self.padding)
        for member, member_rows in enumerate(self.rows):
            orders[member, : len(member_rows)] = member_rows[torch.randperm(len(member_rows))]
        for step in range(self.steps):
            index = orders[:, step * self.batch_size : (step + 1) * self.batch_size]
            yield self.features[index], self.labels[index], index != self.padding


class MembersDataModule(L.LightningDataModule):
    """The rows of a cross-validation and its members: each member's training minibatches
    (``MemberBatches``) and, for validation and testing, every member's held-out rows in one batch.

    ``feature_mean`` and ``feature_scale`` are ``(members, n_features)``: each member's scaling,
    fitted on its training rows (mean 0, scale 1 with ``standardize=False``)."""

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, members: Sequence[Member], batch_size: int = 10,
        standardize: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.members, self.batch_size = list(members), batch_size
        rows = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        self.features = torch.cat([rows, torch.zeros(1, rows.shape[1])])  # the padding row last
        self.labels = torch.cat([torch.as_tensor(np.asarray(labels), dtype=torch.float32), torch.zeros(1)])
        self.n_features = rows.shape[1]
        self.train_rows = [torch.as_tensor(member.train_rows) for member in self.members]
        self.held_out_rows = [torch.as_tensor(member.held_out_rows) for member in self.members]
        if standardize:
            training = [rows[member_rows].double() for member_rows in self.train_rows]
            self.feature_mean = torch.stack([part.mean(0) for part in training]).float()
            scale = torch.stack([part.std(0, correction=0) for part in training]).float()
            self.feature_scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # as StandardScaler
        else:
            self.feature_mean = torch.zeros(len(self.members), self.n_features)
            self.feature_scale = torch.ones(len(self.members), self.n_features)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            MemberBatches(self.features, self.labels, self.train_rows, self.batch_size), batch_size=None
        )

    def held_out_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every member's held-out rows: features, labels and ``real``, padded to the longest."""
        width = max(len(member_rows) for member_rows in self.held_out_rows)
        index = torch.full((len(self.members), width), len(self.features) - 1)
        for member, member_rows in enumerate(self.held_out_rows):
            index[member, : len(member_rows)] = member_rows
        return self.features[index], self.labels[index], index != len(self.features) - 1

    def val_dataloader(self) -> DataLoader:
        return DataLoader([self.held_out_batch()], batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


class MembersClassifier(L.LightningModule):
    """``members`` independent copies of ``MLP``, member k on the rows of member k of the batches.

    ``seeds`` (one per member) give each member the initial weights ``PimaClassifier`` starts from after
    ``seed_everything(seed)``; ``folds`` (one per member) group members of the same fold, whose worst
    seed ``val/acc_worst_seed`` averages over the folds. Logged each epoch: the members' mean loss and
    accuracy (``train/*``, ``val/*``) and their standard deviation (``val/acc_std``). After a test,
    ``member_scores`` holds each member's loss, accuracy, AUROC, F1, precision and recall on its
    held-out rows, and ``member_probabilities`` its P(class 1) of those rows, in their order.
    """

    def __init__(
        self,
        n_features: int,
        seeds: Sequence[int],
        folds: Sequence[int] | None = None,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        l1: float = 0.0,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
    ) -> None:
        super().__init__()
        optimizer = dict(optimizer or NOTEBOOK_SGD)
        seeds, hidden = list(seeds), list(hidden)
        self.save_hyperparameters()
        self.folds = list(folds) if folds is not None else list(range(len(seeds)))
        self.network = StackedMLP(len(seeds), n_features, list(hidden), dropout)
        self.register_buffer("mean", torch.zeros(len(seeds), 1, n_features))
        self.register_buffer("scale", torch.ones(len(seeds), 1, n_features))
        self._initialise(seeds, n_features)
        self.sums: dict[str, dict[str, torch.Tensor]] = {}
        self.member_scores: list[dict[str, float]] = []
        self.member_probabilities: list[np.ndarray] = []
        self.member_val_acc: list[float] = []

    def _initialise(self, seeds: list[int], n_features: int) -> None:
        """Each member's weights as ``MLP`` draws them right after ``seed_everything(seed)``."""
        hp = self.hparams
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for member, seed in enumerate(seeds):
                torch.manual_seed(seed)
                single = MLP(n_features, hp.hidden, hp.dropout)
                for stacked, layer in zip(self.network.linear_layers(), single.linear_layers(), strict=True):
                    stacked.weight[member] = layer.weight.T
                    stacked.bias[member, 0] = layer.bias

    def adapt(self, datamodule: MembersDataModule) -> None:
        """Each member's scaling statistics, fitted on its training rows."""
        with torch.no_grad():
            self.mean.copy_(datamodule.feature_mean.unsqueeze(1))
            self.scale.copy_(datamodule.feature_scale.unsqueeze(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(members, rows)`` for raw features ``(members, rows, n_features)``."""
        return self.network((features - self.mean) / self.scale)

    def _per_member(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's logits, and per member the summed loss, correct predictions and real rows."""
        features, labels, real = batch
        logits = self(features)
        real = real.to(logits.dtype)
        losses = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * real
        correct = ((logits > 0).to(labels.dtype) == labels).to(logits.dtype) * real
        return logits, losses.sum(1), correct.sum(1), real.sum(1)

    def _add(self, stage: str, losses: torch.Tensor, correct: torch.Tensor, rows: torch.Tensor) -> None:
        sums = self.sums.setdefault(stage, {})
        for name, value in (("loss", losses), ("correct", correct), ("rows", rows)):
            sums[name] = sums.get(name, 0) + value.detach()

    def l1_penalty(self) -> torch.Tensor:
        """Each member's ``l1 * sum(|w|)``: shape ``(members,)``."""
        return self.hparams.l1 * sum(layer.weight.abs().sum((1, 2)) for layer in self.network.linear_layers())

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        _, losses, correct, rows = self._per_member(batch)
        self._add("train", losses, correct, rows)
        # the sum of the members' mean losses over their own rows: no parameter belongs to two members,
        # so each member's gradient is that of its own loss (none for a member with no rows this step)
        objective = (losses / rows.clamp(min=1)).sum()
        return objective + self.l1_penalty().sum() if self.hparams.l1 else objective

    def validation_step(self, batch, batch_idx: int) -> None:
        _, losses, correct, rows = self._per_member(batch)
        self._add("val", losses, correct, rows)

    def test_step(self, batch, batch_idx: int) -> None:
        logits, losses, _, rows = self._per_member(batch)
        _, labels, real = batch
        self.member_scores, self.member_probabilities = [], []
        for member in range(len(logits)):
            mask = real[member]
            probabilities = logits[member][mask].sigmoid()
            scores = {"loss": float(losses[member] / rows[member])}
            self.member_scores.append(scores | binary_scores(probabilities, labels[member][mask]))
            self.member_probabilities.append(probabilities.cpu().numpy())

    def _epoch(self, stage: str) -> dict[str, torch.Tensor] | None:
        """The stage's per-member loss and accuracy over the epoch, and reset the sums."""
        sums = self.sums.pop(stage, None)
        if not sums:
            return None
        return {"loss": sums["loss"] / sums["rows"], "acc": sums["correct"] / sums["rows"]}

    def on_train_epoch_end(self) -> None:
        if (members := self._epoch("train")) is not None:
            loss = members["loss"] + (self.l1_penalty().detach() if self.hparams.l1 else 0)
            self.log_dict({"train/loss": loss.mean(), "train/acc": members["acc"].mean()})
        self.log("train/lr", float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def on_validation_epoch_end(self) -> None:
        if (members := self._epoch("val")) is None:
            return
        accuracy = members["acc"]
        self.member_val_acc = accuracy.tolist()
        values = {"val/loss": members["loss"].mean(), "val/acc": accuracy.mean()}
        shown = {name: values.pop(name) for name in PROGRESS_BAR if name in values}
        self.log_dict(shown, prog_bar=True)
        values["val/acc_std"] = accuracy.std() if len(accuracy) > 1 else torch.zeros(())
        values["val/acc_worst_seed"] = torch.tensor(worst_seed(self.member_val_acc, self.folds))
        self.log_dict(values)

    def on_test_epoch_end(self) -> None:
        for name in ("acc", "auroc", "loss"):
            self.log(f"test/{name}", float(np.mean([scores[name] for scores in self.member_scores])))

    def configure_optimizers(self):
        return optimizers(self.parameters(), self.hparams.optimizer, self.hparams.scheduler)


def binary_scores(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``SCORES`` (torchmetrics', threshold 0.5) of P(class 1) for rows with these 0/1 labels."""
    targets = torch.as_tensor(labels).long()
    return {name: float(score(torch.as_tensor(probabilities), targets)) for name, score in SCORES.items()}


def worst_seed(accuracies: Sequence[float], folds: Sequence[int]) -> float:
    """The mean over folds of the lowest accuracy among each fold's seeds (with one seed a fold: the mean)."""
    lowest: dict[int, float] = {}
    for accuracy, fold in zip(accuracies, folds, strict=True):
        lowest[fold] = min(lowest.get(fold, accuracy), accuracy)
    return float(np.mean(list(lowest.values())))
