"""Members: many copies of the notebook's model trained in one run, each on rows of its own.

A member is a (fold, seed) pair: it trains on its fold's training rows only, standardised with statistics
fitted on those rows, in its own shuffled order, from the initial weights a single run with its seed
starts from, and it is scored on its fold's held-out rows. ``cv`` trains every fold (and seed) of a
cross-validation as members of one run, ``tune`` scores each trial by the members of one run.

Here are the members' rows; they train on the engine replicas train on (``classifier.py``'s
``StackedClassifier``, a copy a member). The replicas share their rows; members do not, so a batch holds
each member's rows, padded where members have fewer: features ``(members, rows, n_features)``, labels and a
``real`` mask ``(members, rows)``. A padding row (an extra all-zero row) never enters a loss or a metric:
every member's loss and scores are the mean over its real rows.

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
from torch.utils.data import DataLoader, IterableDataset

from pima_lightning.data import fitted_inputs, input_width, missing_columns
from pima_lightning.model import probability_scores

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

    ``feature_fill``, ``feature_mean`` and ``feature_scale`` are one row a member: each member's medians
    and scaling, fitted on its training rows as the core fits them (``data.fitted_inputs``); a feature
    column with missing values (NaN) anywhere in ``features`` gets a "was missing" input for every member
    (``missing_indicators``), so that every member has the same inputs, as every member has an input for
    each of a categorical column's ``categories`` (those of the whole table, by feature index); which of
    them a member's training rows hold, it knows (``category_known``, one row a member): the others are
    "any other value" to it, as a category a model never saw is."""

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, members: Sequence[Member], batch_size: int = 10,
        standardize: bool = True, categories: dict[int, list[str]] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.members, self.batch_size = list(members), batch_size
        table = np.asarray(features)
        rows = torch.as_tensor(table, dtype=torch.float32)
        self.features = torch.cat([rows, torch.zeros(1, rows.shape[1])])  # the padding row last
        self.labels = torch.cat([torch.as_tensor(np.asarray(labels), dtype=torch.float32), torch.zeros(1)])
        self.n_features = rows.shape[1]
        self.missing_indicators = missing_columns(table)
        self.categories = categories or None
        count = max(2, int(np.max(labels)) + 1) if len(labels) else 2  # without names: the codes
        self.classes = list(classes) if classes is not None else [str(code) for code in range(count)]
        self.input_width = input_width(self.n_features, self.missing_indicators, self.categories)
        self.train_rows = [torch.as_tensor(member.train_rows) for member in self.members]
        self.held_out_rows = [torch.as_tensor(member.held_out_rows) for member in self.members]
        fitted = [
            fitted_inputs(table[member.train_rows], self.missing_indicators, standardize, self.categories)
            for member in self.members
        ]
        self.feature_fill, self.feature_mean, self.feature_scale, self.category_known = (
            torch.as_tensor(np.stack(statistic), dtype=torch.float32) if statistic[0] is not None else None
            for statistic in zip(*fitted, strict=True)
        )

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


def scores_of(probabilities, labels) -> dict[str, float]:
    """The scores (torchmetrics', the core's) of ``probabilities``: P(the second class) per row, or each
    class's ``(rows, K)``, for rows of these classes."""
    scores = probability_scores(torch.as_tensor(probabilities), torch.as_tensor(labels).long())
    return {name: float(value) for name, value in scores.items()}
