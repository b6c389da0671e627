"""The notebook's network (``MLP``) and the LightningModule that trains it (``PimaClassifier``)."""

from collections.abc import Sequence
from itertools import islice

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn
from torch.nn import functional as F

from pima_lightning.errors import InputError
from pima_lightning.metrics import StageMetrics


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


class ReplicatedLinear(nn.Module):
    """``replicas`` independent dense layers applied at once by one batched matrix product.

    Weight ``(replicas, in, out)`` (Keras's kernel layout, per replica) and bias ``(replicas, 1, out)``;
    input ``(replicas, rows, in)``, output ``(replicas, rows, out)``: replica k's rows meet replica k's
    weights only. With one replica it computes what ``nn.Linear`` computes, as fast.
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


class MLP(nn.Sequential):
    """Raw features -> Standardize -> [Linear -> ReLU -> Dropout] per hidden width -> Linear -> logit.

    Initialised as Keras initialises the notebook's layers: Glorot-uniform hidden kernels, the
    output kernel U(-0.05, 0.05) (Keras's 'uniform'), zero biases. ``replicas`` independently
    initialised copies train side by side (``ReplicatedLinear``); dropout draws a mask per copy.
    """

    def __init__(
        self,
        n_features: int = 8,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        feature_mean=None,
        feature_scale=None,
        replicas: int = 1,
    ) -> None:
        layers: list[nn.Module] = [Standardize(n_features, feature_mean, feature_scale)]
        width = n_features
        for units in hidden:
            layers += [ReplicatedLinear(replicas, width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(ReplicatedLinear(replicas, width, 1))
        super().__init__(*layers)
        self.n_features, self.replicas = n_features, replicas
        self.reset_parameters()

    def linear_layers(self) -> list[ReplicatedLinear]:
        """The dense layers, input side first."""
        return [layer for layer in self if isinstance(layer, ReplicatedLinear)]

    def get_weights(self, replica: int = 0) -> list[np.ndarray]:
        """Keras's ``get_weights()`` of one replica: kernel ``(inputs, units)`` then bias, per dense layer."""
        arrays = []
        for layer in self.linear_layers():
            arrays += [
                layer.weight[replica].detach().cpu().numpy(),
                layer.bias[replica, 0].detach().cpu().numpy(),
            ]
        return arrays

    def reset_parameters(self) -> None:
        """Keras initialisation (see the class docstring), replica by replica."""
        *hidden, output = self.linear_layers()
        for layer in hidden:
            for weight in layer.weight:
                nn.init.xavier_uniform_(weight)  # the fans of one replica's (in, out) matrix
        nn.init.uniform_(output.weight, -0.05, 0.05)
        for layer in (*hidden, output):
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(replicas, rows)`` for ``features`` of shape ``(rows, n_features)`` (the same rows
        for every replica) or ``(replicas, rows, n_features)`` (each replica's own rows)."""
        return self.logits_of_standardized(self.standardize(features))

    def standardize(self, features: torch.Tensor) -> torch.Tensor:
        """The first layer alone: features scaled as the rest of the network expects them."""
        return self[0](features)

    def logits_of_standardized(self, features: torch.Tensor) -> torch.Tensor:
        """``forward`` after the first layer, for features already passed through ``standardize``
        (training scales an epoch's rows once rather than minibatch by minibatch)."""
        if features.dim() == 2:
            features = features.expand(self.replicas, -1, -1)
        for layer in islice(self, 1, None):
            features = layer(features)
        return features.squeeze(-1)

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        """P(class 1) per row, shape ``(rows,)``: the mean over replicas of each replica's sigmoid
        (the ensemble's probability; with one replica, the model's)."""
        return self(features).sigmoid().mean(0)


def _check_buildable(group: str, config: dict, build) -> None:
    """Build a throw-away optimizer or scheduler from ``config`` so that torch's own checks of its
    values (a negative learning rate, say) fail before training starts, as one InputError."""
    try:
        build(instantiate(config))
    except (ValueError, TypeError) as err:
        settings = ", ".join(f"{key}={value}" for key, value in config.items() if not key.startswith("_"))
        raise InputError(f"{group} ({settings}): {err}") from None


class PimaClassifier(L.LightningModule):
    """Trains ``MLP`` with binary cross-entropy, an optional L1 penalty and a configured optimizer.

    With ``replicas`` > 1 it trains that many independent copies at once; every metric is then
    reported as the replicas' mean (``val/acc``) and standard deviation (``val/acc_std``), the
    ensemble's as ``val/ensemble_acc``, and each replica's values are kept in ``replica_metrics``.

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
        replicas: int = 1,
        feature_mean=None,
        feature_scale=None,
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise InputError(f"model.dropout={dropout}: expected a probability in [0, 1)")
        if l1 < 0:
            raise InputError(f"model.l1={l1}: expected a penalty >= 0")
        if replicas < 1:
            raise InputError(f"model.replicas={replicas}: expected a whole number >= 1")
        _check_buildable("optimizer", optimizer, lambda build: build([nn.Parameter(torch.zeros(1))]))
        if scheduler:
            probe = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
            _check_buildable("scheduler", scheduler, lambda build: build(probe))
        # the feature statistics are restored from the state dict, not from hyperparameters
        self.save_hyperparameters(ignore=["feature_mean", "feature_scale"], logger=False)
        self.automatic_optimization = False  # training_step steps through a whole epoch itself
        self.network = MLP(n_features, hidden, dropout, feature_mean, feature_scale, replicas)
        # one set per stage, computed and reset at the end of each of its epochs; an ensemble of
        # training rows means nothing (each replica sees its own order, with dropout)
        self.train_metrics = StageMetrics(replicas, ensemble=False)
        self.val_metrics = StageMetrics(replicas, ensemble=replicas > 1)
        self.test_metrics = StageMetrics(replicas, ensemble=replicas > 1)
        self.epoch_metrics: dict[str, float] = {}  # each stage's latest epoch: "val/acc" -> value
        self.replica_metrics: dict[str, list[float]] = {}  # "test/acc" -> one value per replica

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(replicas, rows)`` for raw feature rows."""
        return self.network(features)

    @torch.no_grad()
    def predict_proba(self, features) -> np.ndarray:
        """P(class 1) for raw feature rows (array or tensor), the ensemble's when there are replicas;
        puts the model in eval mode (dropout off)."""
        self.eval()
        features = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        return self.network.probability(features).cpu().numpy()

    def l1_penalty(self) -> torch.Tensor:
        """``l1 * sum(|w|)`` over each replica's weight matrices (biases excluded, as Keras's
        kernel_regularizer): shape ``(replicas,)``."""
        return self.hparams.l1 * sum(layer.weight.abs().sum((1, 2)) for layer in self.network.linear_layers())

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each replica's mean binary cross-entropy over the rows, shape ``(replicas,)``.
        ``labels``: ``(rows,)`` or ``(replicas, rows)``."""
        return F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="none").mean(-1)

    def objective(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What a training step minimises, a scalar: the sum over replicas of each replica's mean
        binary cross-entropy and its L1 penalty. A sum rather than a mean: no parameter belongs to two
        replicas, so each replica's gradient is then that of its own loss, as in a run of its own."""
        # the same cross-entropy as ``loss(...).sum()`` in one reduction: the per-replica vector and
        # its sum cost two more autograd nodes per step, about 0.18 s over the default run's 7,800 steps
        rows = labels.shape[-1]
        objective = (
            F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="sum") / rows
        )
        if self.hparams.l1:
            objective = objective + self.l1_penalty().sum()
        return objective

    def stage_metrics(self, stage: str) -> StageMetrics:
        """The metrics of ``stage``: train, val or test."""
        return getattr(self, f"{stage}_metrics")

    def _evaluate(self, stage: str, batch) -> None:
        features, labels = batch
        logits = self(features)
        self.stage_metrics(stage).update(logits, labels, self.loss(logits, labels))

    def _log_epoch(self, stage: str) -> None:
        """Compute the stage's epoch metrics into ``epoch_metrics``: per metric the replicas' mean, and
        with replicas their standard deviation (``_std``) and the ensemble's value (``ensemble_``);
        each replica's values into ``replica_metrics``. Training and validation values go to the
        logger, one point per epoch; test values are logged once, with the hyperparameters (train.py).

        Nothing goes through ``self.log``, which costs about a millisecond per value here (as much
        as 10 minibatch steps): callbacks read ``epoch_metrics`` (the tuner's pruning callback, the
        progress bar in callbacks.py), so ``trainer.callback_metrics`` stays empty.
        """
        metrics = self.stage_metrics(stage)
        per_replica, ensemble = metrics.compute()
        metrics.reset()
        names = list(per_replica)
        # (metrics, replicas); torchmetrics hands one replica's values back as scalars
        table = torch.stack([per_replica[name].reshape(-1) for name in names])
        values = {f"{stage}/{name}": mean for name, mean in zip(names, table.mean(1).tolist(), strict=True)}
        if self.hparams.replicas > 1:
            stds = table.std(1).tolist()
            values |= {f"{stage}/{name}_std": std for name, std in zip(names, stds, strict=True)}
        if ensemble:
            ensemble_values = torch.stack(list(ensemble.values())).tolist()
            values |= {
                f"{stage}/ensemble_{name}": v for name, v in zip(ensemble, ensemble_values, strict=True)
            }
        self.replica_metrics |= {
            f"{stage}/{name}": row for name, row in zip(names, table.tolist(), strict=True)
        }
        self.epoch_metrics = {
            name: value for name, value in self.epoch_metrics.items() if not name.startswith(f"{stage}/")
        } | values
        if stage != "test" and self.logger is not None:
            self.logger.log_metrics(values, step=self.current_epoch)

    def training_step(self, batch, batch_idx: int) -> None:
        """A whole epoch: one optimizer step per minibatch of ``batch``, an ``Epoch``.

        Lightning's per-step hooks and bookkeeping cost more than a step of this 193-parameter model;
        stepping through the epoch's minibatches here pays them once per epoch. The arithmetic is that
        of one Lightning step per minibatch, minimising ``objective``.
        """
        optimizer, direct = self.optimizers(), self._steps_directly()
        if direct:
            optimizer = optimizer.optimizer  # the torch optimizer itself
        epoch_logits = []
        standardized = batch._replace(features=self.network.standardize(batch.features))  # once an epoch
        for features, labels in standardized.minibatches():
            logits = self.network.logits_of_standardized(features)
            objective = self.objective(logits, labels)
            optimizer.zero_grad()
            if direct:
                objective.backward()
            else:
                self.manual_backward(objective)
            optimizer.step()
            epoch_logits.append(logits.detach())
        if direct:
            # count the steps as LightningOptimizer.step counts them: trainer.global_step, max_steps
            # and checkpointing read this counter
            progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
            progress.increment_by(batch.n_minibatches)
        # each replica's training loss: the cross-entropy of the epoch's minibatch outputs (their
        # row-weighted mean), plus the L1 penalty of its weights at the end of the epoch
        logits, labels = torch.cat(epoch_logits, dim=-1), batch.labels
        epoch_loss = self.loss(logits, labels)
        if self.hparams.l1:
            epoch_loss = epoch_loss + self.l1_penalty().detach()
        if not torch.isfinite(epoch_loss).all():
            replica = int((~torch.isfinite(epoch_loss)).nonzero()[0])
            which = f" of replica {replica}" if self.hparams.replicas > 1 else ""
            raise InputError(
                f"training diverged: the training loss{which} became {epoch_loss[replica].item()} in epoch "
                f"{self.current_epoch}; lower optimizer.lr, or standardise the features "
                "(data.standardize=true)"
            )
        # one metric update per epoch: per-minibatch updates would cost as much as the minibatches
        self.train_metrics.update(logits, labels, epoch_loss)

    def _steps_directly(self) -> bool:
        """Whether minibatch steps call ``backward()`` and the torch optimizer directly.

        On one device at 32-bit precision, Lightning's ``manual_backward`` and ``LightningOptimizer.step``
        add nothing to them but their hooks (``on_before_backward``, ``on_after_backward``,
        ``on_before_optimizer_step``), which cost as much as the step itself here; those hooks are
        not called then. Elsewhere Lightning's calls are needed (DDP prepares its gradient reducer
        for every backward pass; 16-bit mixed precision scales the loss) and are made.
        """
        trainer = self.trainer
        return (
            isinstance(trainer.strategy, SingleDeviceStrategy) and type(trainer.precision_plugin) is Precision
        )

    def on_train_epoch_end(self) -> None:
        if (scheduler := self.lr_schedulers()) is not None:
            scheduler.step()
        self._log_epoch("train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
