"""``model.replicas=K``: K independent copies of the notebook's model trained at once, beside the plain core.

Each copy (replica) has its own initialisation, dropout masks and order of the training rows; the
training step minimises the sum of their losses; every metric is reported per replica, as the
replicas' mean and standard deviation, and for the ensemble (the mean of their probabilities), which
is also what ``predict_step`` and ``export`` use. ``classifier`` and ``datamodule`` are what the config
builds (``conf/model/mlp.yaml``, ``conf/data/pima.yaml``): the plain ``PimaClassifier`` and
``PimaDataModule`` for one replica, ``EnsembleClassifier`` and ``EnsembleDataModule`` for more.

The engine: one batched matrix product per layer (``torch.baddbmm`` over stacked ``(K, in, out)``
weights). The alternative, ``torch.func.stack_module_state`` + ``vmap`` over K copies of ``MLP``
(PyTorch's model-ensembling tutorial), keeps the parameters outside any module: the optimizer, the
state dict, checkpoints, DDP and export then need the functional call threaded through each, and
dropout under ``vmap`` needs ``randomness="different"``. Stacked parameters are ordinary
``nn.Parameter``s, so the stock optimizer, checkpointing, DDP and ``torch.export`` work unchanged.
"""

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from pima_lightning.data import PimaDataModule
from pima_lightning.ensembles.metrics import StageMetrics
from pima_lightning.model import PROGRESS_BAR, PimaClassifier, Standardize, check_size


class StackedLinear(nn.Module):
    """``replicas`` independent dense layers applied at once by one batched matrix product.

    Weight ``(replicas, in, out)`` (Keras's kernel layout, per replica) and bias ``(replicas, 1, out)``;
    input ``(replicas, rows, in)``, output ``(replicas, rows, out)``: replica k's rows meet replica k's
    weights only.
    """

    def __init__(self, replicas: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(replicas, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(replicas, 1, out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, features, self.weight)

    def extra_repr(self) -> str:
        return (
            f"replicas={len(self.weight)}, in_features={self.in_features}, out_features={self.out_features}"
        )


class StackedMLP(nn.Sequential):
    """``replicas`` copies of ``MLP``, each initialised as ``MLP`` initialises one (Keras's initialisers,
    drawn in the ``(inputs, units)`` layout, replica after replica); dropout draws a mask per copy."""

    def __init__(self, replicas: int, n_features: int, hidden, dropout: float) -> None:
        check_size(n_features, list(hidden), replicas)
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            layers += [StackedLinear(replicas, width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(StackedLinear(replicas, width, 1))
        super().__init__(*layers)
        self.replicas = replicas
        *hidden_layers, output = self.linear_layers()
        for layer in hidden_layers:
            for weight in layer.weight:
                nn.init.xavier_uniform_(weight)  # the fans of one replica's (in, out) matrix
        nn.init.uniform_(output.weight, -0.05, 0.05)

    def linear_layers(self) -> list[StackedLinear]:
        """The dense layers, input side first."""
        return [layer for layer in self if isinstance(layer, StackedLinear)]

    def get_weights(self, replica: int = 0) -> list:
        """Keras's ``get_weights()`` of one replica: kernel ``(inputs, units)`` then bias, per dense layer."""
        arrays = []
        for layer in self.linear_layers():
            arrays += [
                layer.weight[replica].detach().cpu().numpy(),
                layer.bias[replica, 0].detach().cpu().numpy(),
            ]
        return arrays

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(replicas, rows)`` for ``features`` of shape ``(rows, n_features)`` (the same rows
        for every replica) or ``(replicas, rows, n_features)`` (each replica's own rows)."""
        if features.dim() == 2:
            features = features.expand(self.replicas, -1, -1)
        return super().forward(features).squeeze(-1)


class EnsembleClassifier(PimaClassifier):
    """``replicas`` independent ``PimaClassifier``s trained side by side on one shared input scaling.

    Its training batches carry every replica's rows (``EnsembleDataModule``): features ``(replicas, rows,
    n_features)``, labels ``(replicas, rows)``; the steps are ``PimaClassifier``'s, with this ``objective``.
    Metrics are logged as the replicas' mean (``val/acc``), their standard deviation
    (``val/acc_std``) and the ensemble's (``val/ensemble_acc``); each replica's values of the latest
    epoch are kept in ``replica_metrics`` (``"test/acc" -> [one value per replica]``).
    """

    def __init__(self, replicas: int = 2, **settings) -> None:
        super().__init__(**settings)  # its save_hyperparameters records replicas too
        # training rows: loss and accuracy, as Keras's fit() history; an ensemble of training rows
        # means nothing: each replica sees its own rows
        self.train_metrics = StageMetrics(replicas, ensemble=False, scores=("acc",))
        self.val_metrics = StageMetrics(replicas, ensemble=True)
        self.test_metrics = StageMetrics(replicas, ensemble=True)
        self.replica_metrics: dict[str, list[float]] = {}

    def build(self, n_features: int) -> None:
        self.hparams.n_features = n_features
        self.preprocess = Standardize(n_features)
        hp = self.hparams
        self.network = StackedMLP(hp.replicas, n_features, hp.hidden, hp.dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(replicas, rows)``."""
        return self.network(self.preprocess(features))

    def l1_penalty(self) -> torch.Tensor:
        """Each replica's ``l1 * sum(|w|)``: shape ``(replicas,)``."""
        return self.hparams.l1 * sum(layer.weight.abs().sum((1, 2)) for layer in self.network.linear_layers())

    def objective(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The sum over replicas of each replica's mean binary cross-entropy and L1 penalty. A sum, not a
        mean: no parameter belongs to two replicas, so each replica's gradient is that of its own loss."""
        rows = labels.shape[-1]
        objective = (
            F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="sum") / rows
        )
        if self.hparams.l1:
            objective = objective + self.l1_penalty().sum()
        return objective

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        """The ensemble's P(class 1) per row: the mean of the replicas' probabilities."""
        features = batch[0] if isinstance(batch, list | tuple) else batch
        return self(features).sigmoid().mean(0)

    def on_train_epoch_end(self) -> None:
        if self.train_outputs:  # scored once an epoch, as the core scores its training rows
            logits, labels = (torch.cat(parts, dim=-1) for parts in zip(*self.train_outputs, strict=True))
            self.train_outputs.clear()
            self.train_metrics.update(logits, labels)
        self._log_epoch("train")
        self.log_learning_rate()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Compute and reset the stage's metrics; log per metric the replicas' mean, their standard
        deviation (``_std``) and the ensemble's value (``ensemble_``). With L1, ``train/loss`` adds the
        penalty of the weights at the epoch's end to the cross-entropy."""
        metrics = getattr(self, f"{stage}_metrics")
        per_replica, ensemble, _ = metrics.compute()
        metrics.reset()
        per_replica = {name: value.reshape(-1) for name, value in per_replica.items()}  # (replicas,)
        if stage == "train" and self.hparams.l1:
            per_replica["loss"] = per_replica["loss"] + self.l1_penalty().detach()
        self.replica_metrics |= {f"{stage}/{name}": values.tolist() for name, values in per_replica.items()}
        values = {f"{stage}/{name}": value.mean() for name, value in per_replica.items()}
        values |= {f"{stage}/{name}_std": value.std() for name, value in per_replica.items()}
        values |= {f"{stage}/ensemble_{name}": value for name, value in ensemble.items()}
        # under DDP every process holds the same values (torchmetrics gathered the rows): averaging
        # them across processes (sync_dist) changes nothing and tells Lightning they are global
        shown = {name: values.pop(name) for name in PROGRESS_BAR if name in values}
        self.log_dict(shown, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)


class ReplicaBatchSampler(BatchSampler):
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
        # Trainer(overfit_batches=N) trains on the same first N minibatches every epoch; Lightning turns
        # shuffling off for it only through DataLoader.sampler, which a batch sampler leaves unused
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        order = SequentialSampler(self.train_set) if overfit else RandomSampler(self.train_set)
        rows = len(self.train_set)
        batches = ReplicaBatchSampler(order, self.hparams.batch_size, False, self.replicas, rows)
        return self.loader(self.train_set, batch_sampler=batches)


def classifier(replicas: int = 1, **settings) -> PimaClassifier:
    """``PimaClassifier(**settings)``, or with ``replicas`` > 1 an ``EnsembleClassifier`` of that many."""
    return EnsembleClassifier(replicas, **settings) if replicas > 1 else PimaClassifier(**settings)


def datamodule(replicas: int = 1, **settings) -> PimaDataModule:
    """``PimaDataModule(**settings)``, or with ``replicas`` > 1 an ``EnsembleDataModule`` for that many."""
    return EnsembleDataModule(replicas, **settings) if replicas > 1 else PimaDataModule(**settings)
