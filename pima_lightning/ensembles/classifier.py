"""The one engine for many copies of the core's network in one run: ``StackedClassifier``.

Replicas (``model.replicas=K``) and the members of ``cv`` and ``tune`` are the same thing: K copies of
``MLP``, copy k starting from the weights a single run of its seed starts from, each minimising its own
binary cross-entropy (plus the L1 penalty) on its own rows, and scored by one path (``StageMetrics``).
They differ only in their rows: replicas share the training rows (each shuffles them its own way) and the
scaling fitted on them, and their ensemble (the mean of their probabilities) is scored and predicts;
a member trains on its fold's rows, with the scaling fitted on those, and is scored on its fold's
held-out rows. A batch is ``(features, labels)`` for rows every copy shares, or ``(features, labels,
real)`` with each copy's own rows, ``(copies, rows, n_features)``, and a ``real`` mask ``(copies, rows)``
that keeps padding out of every loss and score.

The network is ``StackedMLP``: one batched matrix product per layer (``torch.baddbmm`` over stacked
``(K, in, out)`` weights). The alternative, ``torch.func.stack_module_state`` + ``vmap`` over K copies of
``MLP`` (PyTorch's model-ensembling tutorial), keeps the parameters outside any module: the optimizer, the
state dict, checkpoints, DDP and export then need the functional call threaded through each, and dropout
under ``vmap`` needs ``randomness="different"``. Stacked parameters are ordinary ``nn.Parameter``s, so the
stock optimizer, checkpointing, DDP and ``torch.export`` work unchanged.
"""

import inspect
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pima_lightning.ensembles.metrics import SCORES, StageMetrics
from pima_lightning.model import (
    DATA_SETTINGS,
    MLP,
    NOTEBOOK_SGD,
    PROGRESS_BAR,
    FillMissing,
    OneHotCategories,
    PimaClassifier,
    Standardize,
    check_size,
    data_settings_of,
    fit_inputs,
    input_steps,
    optimizers,
    outputs,
    plain_data_settings,
    with_fill,
)


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
    """``replicas`` copies of ``MLP``; copy k starts from the weights ``MLP`` draws right after
    ``torch.manual_seed(seeds[k])``, which are a single run's initial weights for ``seed=seeds[k]``
    (``L.seed_everything`` seeds torch so). ``seeds`` defaults to the seed torch was last given and the
    next ones (``torch.initial_seed() + k``): replica k of a run with ``seed=s`` starts where the run with
    ``seed=s+k`` starts. Drawn in a forked generator: the run's own random stream is left where it was.
    Dropout draws a mask per copy."""

    def __init__(
        self, replicas: int, n_features: int, hidden, dropout: float, seeds: Sequence[int] | None = None,
        outputs: int = 1,
    ) -> None:  # fmt: skip
        check_size(n_features, list(hidden), replicas, outputs)
        if seeds is None:
            first = torch.initial_seed()
            seeds = [(first + k) % 2**64 for k in range(replicas)]
        if len(seeds) != replicas:
            raise ValueError(f"{len(seeds)} seeds for {replicas} replicas: expected one seed a replica")
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            layers += [StackedLinear(replicas, width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(StackedLinear(replicas, width, outputs))
        super().__init__(*layers)
        self.replicas, self.outputs = replicas, outputs
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for replica, seed in enumerate(seeds):
                torch.manual_seed(seed)
                single = MLP(n_features, list(hidden), dropout, outputs)
                for stacked, layer in zip(self.linear_layers(), single.linear_layers(), strict=True):
                    stacked.weight[replica] = layer.weight.T
                    stacked.bias[replica, 0] = layer.bias

    def linear_layers(self) -> list[StackedLinear]:
        """The dense layers, input side first."""
        return [layer for layer in self if isinstance(layer, StackedLinear)]

    def kernel_l1(self) -> torch.Tensor:
        """Each copy's ``sum(|w|)`` over its weight matrices (biases excluded, as Keras's
        ``kernel_regularizer``): shape ``(replicas,)``, what an L1 penalty multiplies."""
        return sum(layer.weight.abs().sum((1, 2)) for layer in self.linear_layers())

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
        for every replica) or ``(replicas, rows, n_features)`` (each replica's own rows); ``(replicas,
        rows, K)`` for K > 2 classes."""
        if features.dim() == 2:
            features = features.expand(self.replicas, -1, -1)
        logits = super().forward(features)
        return logits.squeeze(-1) if self.outputs == 1 else logits


class StackedClassifier(L.LightningModule):
    """``replicas`` copies of the core's network (``MLP`` on standardised features), trained side by side.

    ``seeds`` (one a copy) give copy k the weights a single run of ``seeds[k]`` starts from; by default
    the run's seed and the next ones. ``folds`` (one a copy) group the members of one fold, whose worst
    seed ``val/acc_worst_seed`` averages over the folds. The scaling and the input width come from the
    datamodule (``adapt``, or ``setup`` from ``trainer.datamodule``): ``feature_mean`` of shape
    ``(n_features,)`` is shared by every copy, ``(copies, n_features)`` is each copy's own.

    Logged each epoch for every stage: the copies' mean (``val/acc``), their standard deviation
    (``val/acc_std``) and, where every copy scores the same rows, the ensemble's (``val/ensemble_acc``).
    ``replica_metrics`` keeps each copy's values of the latest epoch (``"test/acc" -> [one a copy]``);
    after a test, ``member_scores`` holds each copy's scores and ``member_probabilities`` its P(class 1)
    of its real rows, in their order.
    """

    def __init__(
        self,
        replicas: int = 2,
        seeds: Sequence[int] | None = None,
        folds: Sequence[int] | None = None,
        **network,
    ) -> None:
        """``network``: the core's settings, ``PimaClassifier``'s keyword arguments (``hidden``,
        ``dropout``, ``l1``, ``optimizer``, ``scheduler``, ``n_features``, ``feature_names``), with its
        defaults: one declaration of them, the core's."""
        super().__init__()
        try:
            bound = inspect.signature(PimaClassifier).bind(**network)
        except TypeError as err:
            raise TypeError(f"StackedClassifier: {err}") from None
        bound.apply_defaults()
        network = bound.arguments
        network["optimizer"] = dict(network["optimizer"] or NOTEBOOK_SGD)
        network["hidden"] = list(network["hidden"])
        if network["feature_names"] is not None:
            network["feature_names"] = list(network["feature_names"])
        network |= plain_data_settings(*(network[key] for key in DATA_SETTINGS))
        seeds = list(seeds) if seeds is not None else None
        replicas = len(seeds) if seeds is not None else replicas
        folds = list(folds) if folds is not None else None
        self.save_hyperparameters(
            {"replicas": replicas, **network, "seeds": seeds, "folds": folds}, logger=False
        )
        self.fill_missing: FillMissing | None = None
        self.one_hot: OneHotCategories | None = None
        self.preprocess: Standardize | None = None
        self.network: StackedMLP | None = None
        self.scaling_fitted = False
        if network["n_features"] is not None:
            self.build(network["n_features"])
        self.outputs: list[tuple[torch.Tensor, ...]] = []  # the epoch's training (logits, labels[, real])
        # training rows: loss and accuracy, as Keras's fit() history; each copy has rows of its own there
        self.train_metrics = StageMetrics(replicas, ensemble=False, scores=("acc",))
        # members are validated every epoch for the tuner, which reads their accuracy alone
        validated = tuple(SCORES) if folds is None else ("acc",)
        self.val_metrics = StageMetrics(replicas, ensemble=True, scores=validated)
        self.test_metrics = StageMetrics(replicas, ensemble=True)
        self.replica_metrics: dict[str, list[float]] = {}
        self.member_probabilities: list[np.ndarray] = []

    def build(self, n_features: int) -> None:
        """Create the filling, one-hot and scaling steps and the copies of the network for ``n_features``
        inputs (and their missing-value indicators and categories)."""
        hp = self.hparams
        hp.n_features = n_features
        self.fill_missing, self.one_hot = input_steps(n_features, hp)
        self.preprocess = Standardize(self.one_hot.width)
        self.network = StackedMLP(
            hp.replicas, self.one_hot.width, hp.hidden, hp.dropout, hp.seeds, outputs(hp.get("classes"))
        )

    def adapt(self, datamodule) -> None:
        """Take the input width, feature names, missing values and scaling statistics (shared, or one row
        a copy) from ``datamodule``, whose ``setup`` has run."""
        inputs = data_settings_of(datamodule)
        classes = inputs.pop("classes") or self.hparams.classes
        if self.network is None:
            if getattr(datamodule, "feature_names", None) is not None:
                self.hparams.feature_names = list(datamodule.feature_names)
            self.hparams.update(inputs, classes=classes)
            self.build(datamodule.n_features)
        elif outputs(classes) != outputs(self.hparams.classes):
            raise ValueError(
                f"the model was built for {max(outputs(self.hparams.classes), 2)} classes, the data has "
                f"{len(classes)}: build it without n_features, and it takes them from the data"
            )
        elif getattr(datamodule, "feature_names", None) is not None:
            self.hparams.feature_names = list(datamodule.feature_names)
        self.hparams.classes = classes
        fit_inputs(self, datamodule)
        self.scaling_fitted = True

    def setup(self, stage: str) -> None:
        if not self.scaling_fitted:
            self.adapt(self.trainer.datamodule)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        with_fill(checkpoint.get("state_dict"), self.hparams.n_features)
        self.scaling_fitted = True  # the statistics come with the weights

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(copies, rows)`` for raw features ``(rows, n_features)`` (every copy's) or ``(copies,
        rows, n_features)`` (each copy's own)."""
        return self.network(PimaClassifier.inputs(self, features))

    def l1_penalty(self) -> torch.Tensor:
        """Each copy's ``l1 * sum(|w|)``: shape ``(copies,)``."""
        return self.hparams.l1 * self.network.kernel_l1()

    def _scored(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The batch's logits ``(copies, rows)``, its labels (``(rows,)`` when every copy shares the rows),
        and its ``real`` mask if any."""
        features, labels, *real = batch
        return self(features), labels, (real[0] if real else None)

    def objective(
        self, logits: torch.Tensor, labels: torch.Tensor, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        """What a training step minimises: the sum over copies of each copy's mean (binary) cross-entropy
        over its (real) rows, plus its L1 penalty. A sum, not a mean: no parameter belongs to two copies,
        so each copy's gradient is that of its own loss (none for a copy with no rows this step)."""
        losses = row_losses(logits, labels)
        losses = losses.mean(-1) if real is None else (losses * real).sum(-1) / real.sum(-1).clamp(min=1)
        return losses.sum() + self.l1_penalty().sum() if self.hparams.l1 else losses.sum()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        logits, labels, real = self._scored(batch)
        self.outputs.append((logits.detach(), labels, *([] if real is None else [real])))
        return self.objective(logits, labels, real)

    def validation_step(self, batch, batch_idx: int) -> None:
        self.val_metrics.update(*self._scored(batch))

    def test_step(self, batch, batch_idx: int) -> None:
        self.test_metrics.update(*self._scored(batch))

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        """The ensemble's P(the second class) per row, ``(rows,)``, or each class's, ``(rows, K)``: the mean
        of the copies' probabilities."""
        features = batch[0] if isinstance(batch, list | tuple) else batch
        return copy_probabilities(self(features)).mean(0)

    def on_train_epoch_end(self) -> None:
        if self.outputs:  # scored once an epoch, as the core scores its training rows
            # rows are the last dimension, but of K classes' logits (copies, rows, K)
            parts = [
                torch.cat(part, dim=1 if part[0].dim() == 3 else -1)
                for part in zip(*self.outputs, strict=True)
            ]
            self.outputs.clear()
            self.train_metrics.update(*parts)
        self._log_epoch("train")
        self.log("train/lr", float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        if self.test_metrics.update_called:  # read before the scores are computed and reset
            self.member_probabilities = [copy.cpu().numpy() for copy in self.test_metrics.probabilities()]
        self._log_epoch("test")

    @property
    def member_val_acc(self) -> list[float]:
        """Each copy's accuracy of the latest validation."""
        return self.replica_metrics.get("val/acc", [])

    @property
    def member_scores(self) -> list[dict[str, float]]:
        """Each copy's loss and scores of the latest test: ``[{"loss": ..., "acc": ...}, ...]``."""
        tested = {
            name.removeprefix("test/"): values
            for name, values in self.replica_metrics.items()
            if name.startswith("test/")
        }
        return [dict(zip(tested, copy, strict=True)) for copy in zip(*tested.values(), strict=True)]

    def _log_epoch(self, stage: str) -> None:
        """Compute and reset the stage's metrics; log per metric the copies' mean, their standard
        deviation (``_std``) and the ensemble's value (``ensemble_``). With L1, ``train/loss`` adds the
        penalty of the weights at the epoch's end to the cross-entropy."""
        metrics = getattr(self, f"{stage}_metrics")
        if not metrics.update_called:  # a stage without batches (members not validated)
            return
        per_copy, ensemble, _ = metrics.compute()
        metrics.reset()
        per_copy = {name: value.reshape(-1) for name, value in per_copy.items()}  # (copies,)
        if stage == "train" and self.hparams.l1:
            per_copy["loss"] = per_copy["loss"] + self.l1_penalty().detach()
        self.replica_metrics |= {f"{stage}/{name}": values.tolist() for name, values in per_copy.items()}
        values = {f"{stage}/{name}": value.mean() for name, value in per_copy.items()}
        values |= {
            f"{stage}/{name}_std": value.std() if len(value) > 1 else torch.zeros(())
            for name, value in per_copy.items()
        }
        values |= {f"{stage}/ensemble_{name}": value for name, value in ensemble.items()}
        if stage == "val" and self.hparams.folds is not None:
            worst = worst_seed(self.member_val_acc, self.hparams.folds)
            values["val/acc_worst_seed"] = torch.tensor(worst)
        # under DDP every process holds the same values (torchmetrics gathered the rows): averaging
        # them across processes (sync_dist) changes nothing and tells Lightning they are global
        shown = {name: values.pop(name) for name in PROGRESS_BAR if name in values}
        self.log_dict(shown, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return optimizers(self.parameters(), self.hparams.optimizer, self.hparams.scheduler)


def copy_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Each copy's P(the second class) per row from ``(copies, rows)`` logits, or each class's from
    ``(copies, rows, K)``."""
    return logits.sigmoid() if logits.dim() == 2 else logits.softmax(-1)


def row_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each copy's loss on each row, ``(copies, rows)``: the binary cross-entropy of one logit a row
    (``logits (copies, rows)``) or the cross-entropy of K (``(copies, rows, K)``); ``labels`` are the
    rows' classes, ``(rows,)`` shared or ``(copies, rows)`` (a padding row may hold any class)."""
    if logits.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="none")
    targets = labels.long().expand(logits.shape[:-1])
    return F.cross_entropy(logits.movedim(-1, 1), targets, reduction="none")  # torch takes classes second


def worst_seed(accuracies: Sequence[float], folds: Sequence[int]) -> float:
    """The mean over folds of the lowest accuracy among each fold's seeds (with one seed a fold: the mean)."""
    lowest: dict[int, float] = {}
    for accuracy, fold in zip(accuracies, folds, strict=True):
        lowest[fold] = min(lowest.get(fold, accuracy), accuracy)
    return float(np.mean(list(lowest.values())))
