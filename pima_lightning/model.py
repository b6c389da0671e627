"""The notebook's network (``MLP``) and the LightningModule that trains it (``PimaClassifier``)."""

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
)

from pima_lightning.errors import InputError


class Standardize(nn.Module):
    """``(x - mean) / scale`` with the statistics stored as buffers, so they travel in checkpoints."""

    def __init__(self, n_features: int, mean=None, scale=None) -> None:
        super().__init__()
        mean = np.zeros(n_features) if mean is None else mean
        scale = np.ones(n_features) if scale is None else scale
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.scale

    def describe(self) -> str:
        """One line saying whether and how inputs are scaled."""
        if not self.mean.any() and bool((self.scale == 1).all()):
            return "none (raw features)"
        return f"z-score with training-row statistics ({self.mean.numel()} means and scales)"


class MLP(nn.Sequential):
    """Raw features -> Standardize -> [Linear -> ReLU -> Dropout] per hidden width -> Linear -> logit.

    Initialised as Keras initialises the notebook's layers: Glorot-uniform hidden kernels, the
    output kernel U(-0.05, 0.05) (Keras's 'uniform'), zero biases.
    """

    def __init__(
        self,
        n_features: int = 8,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        feature_mean=None,
        feature_scale=None,
    ) -> None:
        layers: list[nn.Module] = [Standardize(n_features, feature_mean, feature_scale)]
        width = n_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, 1))
        super().__init__(*layers)
        self.n_features = n_features
        self.reset_parameters()

    def linear_layers(self) -> list[nn.Linear]:
        """The dense layers, input side first."""
        return [layer for layer in self if isinstance(layer, nn.Linear)]

    def get_weights(self) -> list[np.ndarray]:
        """Keras's ``get_weights()``: kernel ``(inputs, units)`` then bias, per dense layer, as numpy."""
        arrays = []
        for layer in self.linear_layers():
            arrays += [layer.weight.detach().cpu().numpy().T, layer.bias.detach().cpu().numpy()]
        return arrays

    def reset_parameters(self) -> None:
        """Keras initialisation (see the class docstring)."""
        *hidden, output = self.linear_layers()
        for layer in hidden:
            nn.init.xavier_uniform_(layer.weight)
        nn.init.uniform_(output.weight, -0.05, 0.05)
        for layer in (*hidden, output):
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits, one per row: shape ``(n,)``."""
        return super().forward(features).squeeze(-1)


def _check_buildable(group: str, config: dict, build) -> None:
    """Build a throw-away optimizer or scheduler from ``config`` so that torch's own checks of its
    values (a negative learning rate, say) fail before training starts, as one InputError."""
    try:
        build(instantiate(config))
    except (ValueError, TypeError) as err:
        settings = ", ".join(f"{key}={value}" for key, value in config.items() if not key.startswith("_"))
        raise InputError(f"{group} ({settings}): {err}") from None


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {
            "acc": BinaryAccuracy(),  # threshold 0.5, as Keras's accuracy
            "auroc": BinaryAUROC(),
            "f1": BinaryF1Score(),
            "precision": BinaryPrecision(),
            "recall": BinaryRecall(),
        },
        prefix=prefix,
    )


class PimaClassifier(L.LightningModule):
    """Trains ``MLP`` with binary cross-entropy, an optional L1 penalty and a configured optimizer.

    ``optimizer`` and ``scheduler`` are Hydra configs (``_partial_: true``) kept as plain dicts, so
    a checkpoint alone rebuilds the model: ``PimaClassifier.load_from_checkpoint(path)``.
    """

    def __init__(
        self,
        optimizer: dict,
        scheduler: dict | None = None,
        n_features: int = 8,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        l1: float = 0.0,
        feature_mean=None,
        feature_scale=None,
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise InputError(f"model.dropout={dropout}: expected a probability in [0, 1)")
        if l1 < 0:
            raise InputError(f"model.l1={l1}: expected a penalty >= 0")
        _check_buildable("optimizer", optimizer, lambda build: build([nn.Parameter(torch.zeros(1))]))
        if scheduler:
            probe = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
            _check_buildable("scheduler", scheduler, lambda build: build(probe))
        # the feature statistics are restored from the state dict, not from hyperparameters
        self.save_hyperparameters(ignore=["feature_mean", "feature_scale"], logger=False)
        self.automatic_optimization = False  # training_step steps through a whole epoch itself
        self.network = MLP(n_features, hidden, dropout, feature_mean, feature_scale)
        self.loss_fn = nn.BCEWithLogitsLoss()
        # one set per stage: Lightning resets each at the end of its own epoch
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_metrics, self.val_metrics, self.test_metrics = (
            _metrics("train/"),
            _metrics("val/"),
            _metrics("test/"),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for raw feature rows."""
        return self.network(features)

    @torch.no_grad()
    def predict_proba(self, features) -> np.ndarray:
        """P(class 1) for raw feature rows (array or tensor); puts the model in eval mode (dropout off)."""
        self.eval()
        logits = self(torch.as_tensor(features, dtype=torch.float32, device=self.device))
        return logits.sigmoid().cpu().numpy()

    def l1_penalty(self) -> torch.Tensor:
        """``l1 * sum(|w|)`` over the weight matrices (biases excluded, as Keras's kernel_regularizer)."""
        return self.hparams.l1 * sum(layer.weight.abs().sum() for layer in self.network.linear_layers())

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of logits; in training mode plus the L1 penalty (what is minimised)."""
        loss = self.loss_fn(logits, labels)
        if self.training and self.hparams.l1:
            loss = loss + self.l1_penalty()
        return loss

    @staticmethod
    def _accumulate(mean_loss: MeanMetric, metrics: MetricCollection, loss, logits, labels) -> None:
        """Add rows to the stage's epoch metrics, which ``_log_epoch`` logs once per epoch."""
        mean_loss.update(loss.detach(), weight=len(labels))
        # probabilities, not logits: torchmetrics reads logits that all lie in [0, 1] as probabilities
        metrics.update(logits.detach().sigmoid(), labels.long())

    def _evaluate(self, batch, mean_loss: MeanMetric, metrics: MetricCollection) -> None:
        features, labels = batch
        logits = self(features)
        self._accumulate(mean_loss, metrics, self.loss(logits, labels), logits, labels)

    def _log_epoch(self, stage: str, mean_loss: MeanMetric, metrics: MetricCollection) -> None:
        # metric objects logged once per epoch (Lightning computes and resets them): a per-step
        # self.log would cost more than the whole step of this 193-parameter model
        # test metrics go to the logger once, together with the hyperparameters (see train.py)
        to_logger = stage != "test"
        self.log(f"{stage}/loss", mean_loss, logger=to_logger)
        self.log_dict(metrics, logger=to_logger)

    def training_step(self, batch, batch_idx: int) -> None:
        """A whole epoch: one optimizer step per minibatch of ``batch`` (see ``EpochOfMinibatches``).

        Lightning's hooks, loop bookkeeping and logging cost more per step than the step itself on this
        193-parameter model; stepping through the epoch's minibatches here pays them once per epoch.
        The arithmetic is that of one Lightning step per minibatch.
        """
        optimizer = self.optimizers()
        epoch_logits, epoch_loss = [], 0.0
        for features, labels in zip(*batch, strict=True):
            logits = self(features)
            loss = self.loss(logits, labels)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            epoch_logits.append(logits.detach())
            epoch_loss = epoch_loss + loss.detach() * len(labels)
        labels = torch.cat(batch[1])
        if not torch.isfinite(epoch_loss):
            raise InputError(
                f"training diverged: the training loss became {epoch_loss.item()} in epoch "
                f"{self.current_epoch}; lower optimizer.lr, or standardise the features "
                "(data.standardize=true)"
            )
        # one metric update per epoch: per-minibatch updates would cost as much as the minibatches
        self._accumulate(
            self.train_loss, self.train_metrics, epoch_loss / len(labels), torch.cat(epoch_logits), labels
        )

    def on_train_epoch_end(self) -> None:
        if (scheduler := self.lr_schedulers()) is not None:
            scheduler.step()
        self._log_epoch("train", self.train_loss, self.train_metrics)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_loss, self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_loss, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_loss, self.test_metrics)

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
