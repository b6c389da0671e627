"""``model.replicas=K``: K copies of the notebook's model trained at once on the same training rows.

Each copy (replica) has its own initialisation (replica k that of the single run of ``seed + k``), dropout
masks and order of the training rows; every metric is reported per replica, as the replicas' mean and
standard deviation, and for the ensemble (the mean of their probabilities), which is also what
``predict_step`` and ``export`` use. The engine is ``StackedClassifier`` (``classifier.py``), the one
cv and tune train their members with; here are what the config builds (``conf/model/mlp.yaml``,
``conf/data/pima.yaml``): the plain ``PimaClassifier`` and ``PimaDataModule`` for one replica, a
``StackedClassifier`` and an ``EnsembleDataModule`` (whose training batches carry every replica's rows)
for more.
"""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from pima_lightning.data import IndexBatches, PimaDataModule
from pima_lightning.ensembles.classifier import StackedClassifier
from pima_lightning.model import PimaClassifier


class ReplicaBatchSampler(IndexBatches):
    """A ``BatchSampler`` whose minibatches hold a row index per replica: a tensor ``(replicas, rows)``.

    Replica 0 takes ``sampler``'s order, as ``DataLoader(rows, batch_size, shuffle=True)`` would. Replica
    k > 0 takes ``order_k[i]`` for each index ``i`` of that order, where ``order_k`` is a permutation of
    the ``n_rows`` rows drawn afresh every epoch from torch's global generator: each replica's order is
    then uniformly random and independent of the others'. Under DDP, Lightning injects its
    ``DistributedSampler`` as ``sampler``; every process draws the same ``order_k`` (``seed_everything``
    seeds them alike), so each replica still sees every row once an epoch across the processes.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool, replicas: int = 1, n_rows: int = 0) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.replicas, self.n_rows = replicas, n_rows

    def __iter__(self) -> Iterator[torch.Tensor]:
        orders = torch.stack(
            [torch.arange(self.n_rows), *(torch.randperm(self.n_rows) for _ in range(self.replicas - 1))]
        )
        for batch in super().__iter__():
            yield orders[:, batch]


class EnsembleDataModule(PimaDataModule):
    """``PimaDataModule`` whose training minibatches hold each replica's own rows:
    features ``(replicas, rows, n_features)``, labels ``(replicas, rows)`` (``ReplicaBatchSampler``)."""

    def __init__(self, replicas: int = 2, **settings) -> None:
        super().__init__(**settings)
        self.replicas = replicas

    def train_dataloader(self) -> DataLoader:
        rows = len(self.train_set)
        batches = ReplicaBatchSampler(self.row_order(), self.hparams.batch_size, False, self.replicas, rows)
        return self.loader(self.train_set, batch_sampler=batches)


def classifier(replicas: int = 1, **settings) -> PimaClassifier | StackedClassifier:
    """``PimaClassifier(**settings)``, or with ``replicas`` > 1 a ``StackedClassifier`` of that many."""
    return StackedClassifier(replicas, **settings) if replicas > 1 else PimaClassifier(**settings)


def datamodule(replicas: int = 1, **settings) -> PimaDataModule:
    """``PimaDataModule(**settings)``, or with ``replicas`` > 1 an ``EnsembleDataModule`` for that many."""
    return EnsembleDataModule(replicas, **settings) if replicas > 1 else PimaDataModule(**settings)
