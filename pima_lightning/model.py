"""The notebook's network (``MLP``) and the LightningModule that trains it (``PimaClassifier``)."""

import math
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class, instantiate
from torch import nn
from torch.nn import functional as F

from pima_lightning.checks import number, whole
from pima_lightning.errors import InputError
from pima_lightning.metrics import StageMetrics

PLATEAU_MONITOR = "val/loss"  # what ReduceLROnPlateau (scheduler=plateau) watches
PROGRESS_BAR = ("val/loss", "val/acc")  # shown beside the progress bar, as Keras prints them


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

    def is_identity(self) -> bool:
        """Whether the features pass through unscaled (``data.standardize=false``)."""
        return not self.mean.any() and bool((self.scale == 1).all())

    def describe(self) -> str:
        """One line saying whether and how inputs are scaled."""
        if self.is_identity():
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
        if features.dim() == 2:
            features = features.expand(self.replicas, -1, -1)
        return super().forward(features).squeeze(-1)

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        """P(class 1) per row, shape ``(rows,)``: the mean over replicas of each replica's sigmoid
        (the ensemble's probability; with one replica, the model's)."""
        return self(features).sigmoid().mean(0)


# what the optimizer and scheduler configs may build: a subclass of these, named under this prefix
BUILDABLE = {
    "optimizer": ("torch.optim.", torch.optim.Optimizer),
    "scheduler": ("torch.optim.lr_scheduler.", torch.optim.lr_scheduler.LRScheduler),
}


def check_buildable_config(group: str, config) -> None:
    """Raise InputError unless ``config`` (an optimizer or scheduler config, from the command line or
    from a checkpoint) builds a torch.optim class from plain values.

    Its ``_target_`` must start with torch.optim's prefix (checked before anything is imported, so no
    other module's import runs) and name a subclass of ``Optimizer`` or ``LRScheduler`` (a function
    reached through a module, ``torch.optim.sgd.torch.load``, is not one); no value, however deeply
    nested, may hold a ``_target_`` of its own, which ``instantiate`` would call first.
    """
    prefix, base = BUILDABLE[group]
    target = config.get("_target_") if isinstance(config, dict) else None
    if not isinstance(target, str) or not target.startswith(prefix) or not _names_subclass(target, base):
        raise InputError(
            f"{group}: _target_ {str(target)[:80]!r} is not a class of {prefix.rstrip('.')} "
            f"({base.__name__}); choose one of conf/{group}/"
        )
    nested = [key for key, value in config.items() if key != "_target_" and _builds_something(value)]
    if nested:
        raise InputError(f"{group}.{nested[0]}: a value may not build an object (it holds a _target_)")


def _names_subclass(target: str, base: type) -> bool:
    try:
        found = get_class(target)
    except (ImportError, ValueError):
        return False
    return issubclass(found, base)


def _is_widths(hidden) -> bool:
    """Whether ``hidden`` is a list of layer widths: whole numbers >= 1 (none: logistic regression)."""
    listed = isinstance(hidden, Sequence) and not isinstance(hidden, str)
    return listed and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in hidden)


def _builds_something(value) -> bool:
    """Whether ``value`` holds a ``_target_`` anywhere inside."""
    if isinstance(value, dict):
        return "_target_" in value or any(_builds_something(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_builds_something(item) for item in value)
    return False


# settings torch accepts but that cannot train (a zero learning rate, a negative decay factor)
POSITIVE_SETTINGS = {"optimizer.lr", "optimizer.eps", "scheduler.gamma", "scheduler.factor"}
NON_NEGATIVE_SETTINGS = {"optimizer.momentum", "optimizer.weight_decay"}


def check_optimizer_settings(optimizer: dict, scheduler: dict | None) -> None:
    """Check the settings torch accepts but that cannot train (``POSITIVE_SETTINGS``, ...), then build a
    throw-away optimizer (and scheduler) so that torch's own checks of the rest (an Adam beta above 1,
    say) fail before training starts, as one InputError."""
    check_buildable_config("optimizer", optimizer)
    for group, config in (("optimizer", optimizer), ("scheduler", scheduler or {})):
        for key, value in config.items():
            if f"{group}.{key}" in POSITIVE_SETTINGS:
                number(f"{group}.{key}", value, 0, low_open=True)
            elif f"{group}.{key}" in NON_NEGATIVE_SETTINGS:
                number(f"{group}.{key}", value, 0)
    probe = [nn.Parameter(torch.zeros(1))]
    builds = [("optimizer", optimizer, lambda build: build(probe))]
    if scheduler:
        check_buildable_config("scheduler", scheduler)
        builds.append(("scheduler", scheduler, lambda build: build(torch.optim.SGD(probe, lr=0.1))))
    for group, config, build in builds:
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

    ``optimizer`` and ``scheduler`` are Hydra configs (``_partial_: true``) kept as plain dicts and
    built only when training starts (``configure_optimizers``), after ``check_buildable_config`` has
    allowed them; ``optimizer=None`` makes a model for inference only (``checkpoint.load_checkpoint``).
    ``n_features`` and ``feature_names`` come from the training CSV (its header's names, or None) and
    travel in the checkpoint: ``predict`` picks its input columns by them, ``summary`` lists them.
    """

    def __init__(
        self,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        n_features: int = 8,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        l1: float = 0.0,
        replicas: int = 1,
        feature_mean=None,
        feature_scale=None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        whole("model.n_features", n_features)
        if feature_names is not None:
            feature_names = list(feature_names)
            if len(feature_names) != n_features or not all(isinstance(name, str) for name in feature_names):
                raise InputError(f"feature_names: expected {n_features} names, found {feature_names!r:.200}")
        if not _is_widths(hidden):
            raise InputError(f"model.hidden={hidden}: expected a list of whole numbers >= 1, e.g. [12, 6]")
        number("model.dropout", dropout, 0, 1, high_open=True, what="a probability")
        number("model.l1", l1, 0, what="a penalty")
        whole("model.replicas", replicas)
        if optimizer is not None:  # checked as data here; built in configure_optimizers
            check_buildable_config("optimizer", optimizer)
        if scheduler:
            check_buildable_config("scheduler", scheduler)
        # the feature statistics are restored from the state dict, not from hyperparameters
        self.save_hyperparameters(ignore=["feature_mean", "feature_scale"], logger=False)
        self.network = MLP(n_features, hidden, dropout, feature_mean, feature_scale, replicas)
        # training rows: loss and accuracy, as Keras's fit() history (metrics=["accuracy"]); AUROC for
        # 32 replicas costs 5 ms an epoch. An ensemble of training rows means nothing: each replica
        # sees its own rows
        self.train_metrics = StageMetrics(replicas, ensemble=False, scores=("acc",))
        self.val_metrics = StageMetrics(replicas, ensemble=replicas > 1)
        self.test_metrics = StageMetrics(replicas, ensemble=replicas > 1)
        self.replica_metrics: dict[str, list[float]] = {}  # "test/acc" -> one value per replica
        self.scored_rows: dict[str, int] = {}  # "test" -> rows its latest epoch scored

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

    def objective(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What a training step minimises, a scalar: the sum over replicas of each replica's mean
        binary cross-entropy and its L1 penalty. A sum rather than a mean: no parameter belongs to two
        replicas, so each replica's gradient is then that of its own loss, as in a run of its own."""
        # the replicas' mean cross-entropies summed in one reduction: a per-replica vector and its sum
        # cost two more autograd nodes per step, about 0.18 s over the default run's 7,800 steps
        rows = labels.shape[-1]
        objective = (
            F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="sum") / rows
        )
        if self.hparams.l1:
            objective = objective + self.l1_penalty().sum()
        return objective

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """One minibatch, every replica's rows: ``(replicas, rows, n_features)`` and ``(replicas, rows)``."""
        features, labels = batch
        logits = self(features)
        self.train_metrics.update(logits, labels)
        return self.objective(logits, labels)

    def validation_step(self, batch, batch_idx: int) -> None:
        features, labels = batch
        self.val_metrics.update(self(features), labels)

    def test_step(self, batch, batch_idx: int) -> None:
        features, labels = batch
        self.test_metrics.update(self(features), labels)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        losses = self.replica_metrics["train/loss"]
        if not all(math.isfinite(loss) for loss in losses):
            replica = next(k for k, loss in enumerate(losses) if not math.isfinite(loss))
            which = f" of replica {replica}" if self.hparams.replicas > 1 else ""
            remedy = "lower optimizer.lr"
            if self.network[0].is_identity():
                remedy += ", or standardise the features (data.standardize=true)"
            elif self.hparams.optimizer and self.hparams.optimizer.get("momentum", 0) >= 1:
                remedy += " or optimizer.momentum (below 1)"
            raise InputError(
                f"training diverged: the training loss{which} became {losses[replica]} in epoch "
                f"{self.current_epoch}; {remedy}"
            )

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Compute and reset the stage's metrics; log per metric the replicas' mean, and with replicas
        their standard deviation (``_std``) and the ensemble's value (``ensemble_``); keep each
        replica's values in ``replica_metrics``. With L1, ``train/loss`` adds the penalty of the
        weights at the epoch's end to the cross-entropy."""
        metrics = self.stage_metrics(stage)
        per_replica, ensemble, self.scored_rows[stage] = metrics.compute()
        metrics.reset()
        per_replica = {name: value.reshape(-1) for name, value in per_replica.items()}  # (replicas,)
        if stage == "train" and self.hparams.l1:
            per_replica["loss"] = per_replica["loss"] + self.l1_penalty().detach()
        self.replica_metrics |= {f"{stage}/{name}": values.tolist() for name, values in per_replica.items()}
        values = {f"{stage}/{name}": value.mean() for name, value in per_replica.items()}
        if self.hparams.replicas > 1:
            values |= {f"{stage}/{name}_std": value.std() for name, value in per_replica.items()}
            values |= {f"{stage}/ensemble_{name}": value for name, value in ensemble.items()}
        # under DDP every process holds the same values (torchmetrics gathered the rows): averaging
        # them across processes (sync_dist) changes nothing and tells Lightning they are global
        shown = {name: values.pop(name) for name in PROGRESS_BAR if name in values}
        self.log_dict(shown, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)

    def stage_metrics(self, stage: str) -> StageMetrics:
        """The metrics of ``stage``: train, val or test."""
        return getattr(self, f"{stage}_metrics")

    def configure_optimizers(self):
        if self.hparams.optimizer is None:
            raise InputError("this model was loaded for inference and has no optimizer to train with")
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        lr_scheduler = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            lr_scheduler["monitor"] = PLATEAU_MONITOR
        return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}
