"""The notebook's 12-6-1 network (``MLP``) and the LightningModule that trains it (``PimaClassifier``).

This file imports torch, Lightning and torchmetrics only: copy it into a project of your own as it is.

    model = PimaClassifier()                       # the notebook's model and SGD
    trainer = L.Trainer(max_epochs=150)
    trainer.fit(model, datamodule)                 # input width and scaling from the datamodule
    trainer.test(model, datamodule)
    probabilities = torch.cat(trainer.predict(model, datamodule))
    model = PimaClassifier.load_from_checkpoint(path)
"""

from collections.abc import Sequence

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)
from torchmetrics.utilities import dim_zero_cat

# the largest network built, all copies together: 400 MB of float32. A checkpoint's sizes are data from a
# file: load_from_checkpoint must refuse hidden=[60000, 60000] before allocating 14 GB, not after
MAX_PARAMETERS = 100_000_000
# the notebook's first compile, SGD(learning_rate=0.01, momentum=0.9, nesterov=True), as plain data
NOTEBOOK_SGD = {"_target_": "torch.optim.SGD", "lr": 0.01, "momentum": 0.9, "nesterov": True}
PLATEAU_MONITOR = "val/loss"  # what ReduceLROnPlateau (scheduler=plateau) watches
PROGRESS_BAR = ("val/loss", "val/acc")  # shown beside the progress bar, as Keras prints them
# each epoch's scores of the validation and test rows, at threshold 0.5 as Keras's
SCORES = {
    "acc": binary_accuracy,
    "auroc": binary_auroc,
    "f1": binary_f1_score,
    "precision": binary_precision,
    "recall": binary_recall,
}
# ... for more than two classes (softmax probabilities): accuracy, and the macro averages over the classes of
# F1, precision, recall and the one-vs-rest AUROC
MULTICLASS_SCORES = {
    "acc": lambda probabilities, targets, **settings: multiclass_accuracy(
        probabilities, targets, average="micro", **settings
    ),
    "auroc": multiclass_auroc,
    "f1": multiclass_f1_score,
    "precision": multiclass_precision,
    "recall": multiclass_recall,
}
METRICS = ("loss", *SCORES)  # every figure a stage logs (train: loss and acc only), in the order reports show


class FillMissing(nn.Module):
    """Missing values filled with the training rows' medians (``fill``, a buffer), and a 0/1 "was missing"
    input appended for each column in ``indicated``: scikit-learn's ``SimpleImputer(strategy="median",
    add_indicator=True)`` (fastai's ``FillMissing``) applied in torch, so that ``predict`` on raw rows, a
    loaded checkpoint and an ONNX export fill alike. A value is missing when it is NaN (an empty cell,
    ``NA``, ``?``, ...) or one of its column's ``marks`` (``data.missing_values``: Pima's impossible zeros).
    """

    def __init__(
        self,
        n_features: int,
        indicated: Sequence[int] = (),
        marks: dict[int, list[float]] | None = None,
        categorical: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.indicated = list(indicated)
        self.register_buffer("fill", torch.zeros(n_features))
        # a categorical column's missing cells stay NaN: a category of their own (``OneHotCategories``)
        self.categorical = bool(categorical)
        fills = torch.ones(n_features, dtype=torch.bool)
        fills[list(categorical)] = False
        self.register_buffer("fills", fills, persistent=False)
        marks = marks or {}
        table = torch.full((n_features, max(map(len, marks.values()), default=0)), torch.nan)
        for column, values in marks.items():
            table[column, : len(values)] = torch.as_tensor(values, dtype=torch.float32)
        self.register_buffer("marks", table, persistent=False)  # rebuilt from the hyperparameters
        # index tensors, not lists: a list index is converted to a tensor on every call (index_select
        # of a 256-row minibatch: 3 us, against 13 us for the list; docs/speed.md)
        self.register_buffer(
            "indicator_columns", torch.tensor(self.indicated, dtype=torch.long), persistent=False
        )

    @property
    def width(self) -> int:
        """How many inputs the rows have once filled: the features, then the indicators."""
        return self.fill.shape[-1] + len(self.indicated)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(features)
        if self.marks.shape[-1]:
            missing = missing | (features.unsqueeze(-1) == self.marks).any(-1)
        filled = torch.where(missing & self.fills if self.categorical else missing, self.fill, features)
        if not self.indicated:
            return filled
        indicators = missing.index_select(-1, self.indicator_columns).to(filled.dtype)
        if indicators.shape[:-1] != filled.shape[:-1]:  # a fill of each member's own: (members, 1, width)
            indicators = indicators.expand(*filled.shape[:-1], -1)
        return torch.cat([filled, indicators], dim=-1)


class OneHotCategories(nn.Module):
    """Each categorical feature's code (its category's index, as ``inputs.csvfile.ValueCodes`` gives
    it) as one-hot inputs: one for each of the column's ``sizes[c]`` categories that the training rows
    held (``known``, a buffer fitted on them: scikit-learn's ``OneHotEncoder``), then one for any other
    value (a category the training rows lacked, or never seen: coded -1). A missing cell (NaN) sets none
    of them: its column's "was missing" input (``FillMissing``) marks it. The other inputs pass first,
    unchanged: ``(..., width)`` to ``(..., width - columns + sum(sizes) + columns)``.

    ``known`` is 1 where a category is known, shared ``(total,)`` or one row a copy ``(copies, 1, total)``
    for members trained on rows of their own. Fastai's ``Categorify`` and Keras's ``StringLookup`` keep an
    out-of-vocabulary slot the same way; the text-to-code lookup stays outside, so the graph is numbers.
    """

    def __init__(self, width: int, sizes: dict[int, int] | None = None) -> None:
        super().__init__()
        self.columns = [int(column) for column in sorted(sizes or {})]
        self.kept = [column for column in range(width) if column not in self.columns]
        counts = [int((sizes or {})[column]) for column in self.columns]
        self.width = len(self.kept) + sum(counts) + len(counts)
        if not self.columns:
            return
        self.register_buffer("known", torch.ones(sum(counts)))
        # the categorical and the other columns as index tensors, for index_select (a list index is made
        # a tensor again on every call); non-persistent: rebuilt from the hyperparameters
        self.register_buffer("categorical", torch.tensor(self.columns), persistent=False)
        self.register_buffer("passed", torch.tensor(self.kept, dtype=torch.long), persistent=False)
        # per one-hot input: the feature column it reads and the code it stands for; ``member``: which
        # column's "other" input each one counts to
        reads = torch.cat([torch.full((n,), i) for i, n in enumerate(counts)])
        self.register_buffer("reads", self.categorical[reads], persistent=False)
        self.register_buffer("codes", torch.cat([torch.arange(n) for n in counts]).float(), persistent=False)
        self.register_buffer("member", F.one_hot(reads, len(counts)).float(), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.columns:
            return features
        hot = (features.index_select(-1, self.reads) == self.codes).to(features.dtype) * self.known
        present = (~torch.isnan(features.index_select(-1, self.categorical))).to(features.dtype)
        other = present - hot @ self.member  # a value present but no known category's
        return torch.cat([features.index_select(-1, self.passed), hot, other], dim=-1)


def marked_columns(
    missing_values: dict | None, n_features: int, feature_names: Sequence[str] | None
) -> dict[int, list[float]]:
    """``missing_values`` (``{column: [values]}``, a column by its header name, or by its number counted
    from 1 in a file without a header) as ``{feature index: values}``; ValueError for a column that is
    not a feature."""
    marks: dict[int, list[float]] = {}
    for column, values in (missing_values or {}).items():
        if feature_names is not None and column in feature_names:
            index = list(feature_names).index(column)
        elif feature_names is None and isinstance(column, int) and 1 <= column <= n_features:
            index = column - 1
        else:
            named = (
                f"a feature's name from the header ({', '.join(feature_names)[:200]})"
                if feature_names is not None
                else f"a feature column's number, 1 to {n_features} (the file has no header)"
            )
            raise ValueError(f"{column!r:.80} is not a feature column; expected {named}")
        marks[index] = [float(value) for value in values]
    return marks


class Standardize(nn.Module):
    """``(x - mean) / scale`` with the statistics as buffers, so that they travel in checkpoints and
    prediction on raw rows works. Mean 0 and scale 1 pass the features through unchanged."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.scale

    def is_identity(self) -> bool:
        """Whether the features pass through unscaled (``data.standardize=false``)."""
        return not self.mean.any() and bool((self.scale == 1).all())


def outputs(classes: Sequence[str] | None) -> int:
    """How many logits the network ends in: one for two classes (the notebook's sigmoid), K for K > 2."""
    return len(classes) if classes is not None and len(classes) > 2 else 1


def input_steps(n_features: int, hparams) -> tuple[FillMissing, OneHotCategories]:
    """The ``FillMissing`` and ``OneHotCategories`` steps of a model with these hyperparameters (its
    indicators, marks and categories)."""
    marks = marked_columns(hparams.get("missing_values"), n_features, hparams.get("feature_names"))
    categories = hparams.get("categories") or {}
    fill = FillMissing(n_features, hparams.get("missing_indicators") or [], marks, sorted(categories))
    return fill, OneHotCategories(fill.width, {column: len(names) for column, names in categories.items()})


DATA_SETTINGS = ("missing_indicators", "missing_values", "classes", "categories")


def plain_data_settings(
    missing_indicators: Sequence[int] | None = None,
    missing_values: dict | None = None,
    classes: Sequence[str] | None = None,
    categories: dict | None = None,
) -> dict:
    """The hyperparameters a model takes from its data (``DATA_SETTINGS``), as plain data (lists, floats,
    text, None), as checkpoints hold them: the columns that get a was-missing input, the values that mean
    missing, the classes, and each categorical feature's categories (by its index)."""
    return {
        "missing_indicators": [int(column) for column in missing_indicators or []],
        "missing_values": {key: [float(v) for v in values] for key, values in (missing_values or {}).items()}
        or None,
        "classes": [str(name) for name in classes] if classes is not None else None,
        "categories": {int(column): [str(name) for name in names] for column, names in categories.items()}
        if categories
        else None,
    }


def data_settings_of(datamodule) -> dict:
    """What a fitted datamodule says of its missing values, classes and categories, as the model's
    hyperparameters (none and None, for a datamodule that does not say)."""
    return plain_data_settings(*(getattr(datamodule, key, None) for key in DATA_SETTINGS))


def fit_inputs(model, datamodule) -> None:
    """Copy the datamodule's fitted statistics into ``model.fill_missing`` and ``model.preprocess``: its
    ``feature_fill`` (the training rows' medians; their ``feature_mean`` where a datamodule has none),
    ``feature_mean`` and ``feature_scale``, shared, or one row a copy (``(copies, n)``) for a model of
    copies, which is then ``(copies, 1, n)`` to meet each copy's rows."""
    mean = torch.as_tensor(datamodule.feature_mean, dtype=torch.float32)
    scale = torch.as_tensor(datamodule.feature_scale, dtype=torch.float32)
    fill = getattr(datamodule, "feature_fill", None)
    fill = (
        mean[..., : model.hparams.n_features] if fill is None else torch.as_tensor(fill, dtype=torch.float32)
    )
    known = getattr(datamodule, "category_known", None)
    if mean.dim() == 2:  # a copy's own statistics meet its own rows
        mean, scale, fill = mean.unsqueeze(1), scale.unsqueeze(1), fill.unsqueeze(1)
    device = model.preprocess.mean.device
    if model.one_hot.columns and known is not None:
        known = torch.as_tensor(known, dtype=torch.float32)
        model.one_hot.known = (known.unsqueeze(1) if known.dim() == 2 else known).to(device, copy=True)
    model.fill_missing.fill = fill.to(device, copy=True)
    model.preprocess.mean, model.preprocess.scale = mean.to(device, copy=True), scale.to(device, copy=True)


def with_fill(state_dict, n_features: int | None) -> None:
    """Give a checkpoint written before models filled missing values (no ``fill_missing.fill``) the
    training rows' means as its fill, so that it loads, and fills a missing value with the mean."""
    if isinstance(state_dict, dict) and "fill_missing.fill" not in state_dict and n_features:
        mean = state_dict.get("preprocess.mean")
        if isinstance(mean, torch.Tensor) and mean.shape[-1] >= n_features:
            state_dict["fill_missing.fill"] = mean[..., :n_features].clone()


def parameter_count(n_features: int, hidden: Sequence[int], copies: int = 1, outputs: int = 1) -> int:
    """How many weights and biases ``copies`` networks of these sizes have together."""
    sizes = [n_features, *hidden, outputs]
    return copies * sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))


def check_size(n_features: int, hidden: Sequence[int], copies: int = 1, outputs: int = 1) -> None:
    """Raise ValueError, before anything is allocated, for sizes that are not positive whole numbers or
    that add up to more than ``MAX_PARAMETERS``."""
    sizes = [n_features, *hidden, copies]
    if not all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in sizes):
        raise ValueError(f"n_features={n_features!r:.40}, hidden={hidden!r:.80}: expected whole numbers >= 1")
    if (count := parameter_count(n_features, hidden, copies, outputs)) > MAX_PARAMETERS:
        raise ValueError(
            f"hidden={list(hidden)!r:.80} with {n_features} features ({copies} network(s)) has "
            f"{count:,} parameters; at most {MAX_PARAMETERS:,} are built"
        )


class MLP(nn.Sequential):
    """[Linear -> ReLU -> Dropout] per hidden width, then Linear to one logit: Keras's
    ``Dense(12, relu) -> Dropout -> Dense(6, relu) -> Dropout -> Dense(1)`` without the final sigmoid
    (``outputs`` logits for more than two classes: ``Dense(K)`` without the softmax).

    Initialised as Keras initialises the notebook's layers: Glorot-uniform hidden kernels, the output
    kernel U(-0.05, 0.05) (Keras's 'uniform'), zero biases; each kernel is drawn in Keras's
    ``(inputs, units)`` layout, so a seed gives the numbers Keras's layout would hold.
    """

    def __init__(
        self, n_features: int = 8, hidden: Sequence[int] = (12, 6), dropout: float = 0.2, outputs: int = 1
    ) -> None:
        check_size(n_features, hidden, outputs=outputs)
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            # skip_init: nn.Linear's own initialisation would draw from the seeded stream first
            layers += [nn.utils.skip_init(nn.Linear, width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.utils.skip_init(nn.Linear, width, outputs))
        super().__init__(*layers)
        output = self.linear_layers()[-1]
        with torch.no_grad():
            for layer in self.linear_layers():
                kernel = torch.empty(layer.in_features, layer.out_features)
                if layer is output:
                    nn.init.uniform_(kernel, -0.05, 0.05)
                else:
                    nn.init.xavier_uniform_(kernel)
                layer.weight.copy_(kernel.T)
                layer.bias.zero_()

    def linear_layers(self) -> list[nn.Linear]:
        """The dense layers, input side first."""
        return [layer for layer in self if isinstance(layer, nn.Linear)]

    def get_weights(self) -> list:
        """Keras's ``get_weights()``: per dense layer its kernel ``(inputs, units)``, then its bias."""
        arrays = []
        for layer in self.linear_layers():
            arrays += [layer.weight.detach().cpu().T.numpy(), layer.bias.detach().cpu().numpy()]
        return arrays


def torch_class(config: dict, module, base: type) -> type:
    """The class that ``config["_target_"]`` names directly in ``module`` (``torch.optim.SGD``), if it is a
    subclass of ``base``: a name, never an import path, so a config from a file cannot reach other code."""
    target = str(config.get("_target_", ""))
    name = target.removeprefix(f"{module.__name__}.")
    found = getattr(module, name, None) if name != target and "." not in name else None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise ValueError(f"_target_ {target[:80]!r} names no {base.__name__} class in {module.__name__}")
    return found


def settings(config: dict) -> dict:
    """A Hydra-style config's keyword arguments: everything but ``_target_`` (and ``_partial_``, which
    checkpoints written by earlier versions hold)."""
    return {key: value for key, value in config.items() if key not in ("_target_", "_partial_")}


class EpochScores(Metric):
    """An epoch's binary cross-entropy and ``SCORES`` of the rows it was updated with: a torchmetrics
    ``Metric`` that keeps the logits and labels (gathered across DDP processes) and scores them once, at
    the epoch's end, with torchmetrics' functions.

    Why not a ``MetricCollection`` of ``BinaryAccuracy``, ``BinaryAUROC``, ... updated every batch: measured
    on the default run (one thread, a plain ``Trainer``), those and their ``self.log`` calls took an epoch
    from 68 to 85 ms; this takes it to 75 ms. The figures are torchmetrics' own either way.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("logits", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.logits.append(logits.detach().float())
        self.labels.append(labels)

    def compute(self) -> dict[str, torch.Tensor]:
        return class_scores(dim_zero_cat(self.logits), dim_zero_cat(self.labels))


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of one logit a row ``(rows,)``; cross-entropy of K logits ``(rows, K)``."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, labels)
    return F.cross_entropy(logits, labels.long())


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """P(the second class) ``(rows,)`` from one logit a row; the softmax ``(rows, K)`` from K logits."""
    return logits.sigmoid() if logits.dim() == 1 else logits.softmax(-1)


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """Each row's class: 1 where its logit is positive (probability > 0.5), or the largest of K logits."""
    return (logits > 0).long() if logits.dim() == 1 else logits.argmax(-1)


def class_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss and ``SCORES`` (``MULTICLASS_SCORES`` for K logits a row) of these rows, torchmetrics'."""
    # probabilities, not logits: torchmetrics would take logits that all lie in [0, 1] for probabilities
    loss = class_loss(logits, labels)
    return {"loss": loss} | probability_scores(class_probabilities(logits), labels.long())


def probability_scores(probabilities: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """``SCORES`` (threshold 0.5) of P(the second class) per row ``(rows,)``, or ``MULTICLASS_SCORES`` of
    each class's probability ``(rows, K)``, for rows of the classes ``targets`` (long) gives."""
    if probabilities.dim() == 1:
        return {name: score(probabilities, targets, validate_args=False) for name, score in SCORES.items()}
    k = probabilities.shape[-1]
    return {
        name: score(probabilities, targets, num_classes=k, validate_args=False)
        for name, score in MULTICLASS_SCORES.items()
    }


class PimaClassifier(L.LightningModule):
    """``MLP`` on standardised features, trained with binary cross-entropy (plus an optional L1 penalty);
    for a label of K > 2 ``classes`` (from the data, in order), K outputs trained with cross-entropy.

    ``optimizer`` and ``scheduler`` are plain data, Hydra's shape (``{"_target_": "torch.optim.Adam",
    "lr": 0.001}``), built in ``configure_optimizers``. The input width (``n_features``), the feature
    names and the scaling statistics come from the data the model is fitted on: ``setup`` takes them
    from ``trainer.datamodule`` (its ``n_features``, ``feature_names``, ``feature_mean`` and
    ``feature_scale``) unless the model has them already (``adapt`` was called, or it was loaded from
    a checkpoint). They travel in the checkpoint, so ``load_from_checkpoint`` rebuilds the same model.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (12, 6),
        dropout: float = 0.2,
        l1: float = 0.0,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        n_features: int | None = None,
        feature_names: Sequence[str] | None = None,
        missing_indicators: Sequence[int] | None = None,
        missing_values: dict | None = None,
        classes: Sequence[str] | None = None,
        categories: dict[int, list[str]] | None = None,
    ) -> None:
        super().__init__()
        optimizer = dict(optimizer or NOTEBOOK_SGD)
        hidden = list(hidden)
        feature_names = list(feature_names) if feature_names is not None else None
        plain = plain_data_settings(missing_indicators, missing_values, classes, categories)
        missing_indicators, missing_values, classes, categories = plain.values()
        self.save_hyperparameters(logger=False)
        self.fill_missing: FillMissing | None = None  # built with the network, once the width is known
        self.one_hot: OneHotCategories | None = None
        self.preprocess: Standardize | None = None
        self.network: MLP | None = None
        self.scaling_fitted = False
        if n_features is not None:
            self.build(n_features)
        self.train_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []  # the epoch's (logits, labels)
        self.val_metrics = EpochScores()
        self.test_metrics = EpochScores()

    def build(self, n_features: int) -> None:
        """Create the filling, one-hot and scaling steps and the network for ``n_features`` inputs (and
        their missing-value indicators and categories)."""
        hp = self.hparams
        hp.n_features = n_features
        self.fill_missing, self.one_hot = input_steps(n_features, hp)
        self.preprocess = Standardize(self.one_hot.width)
        self.network = MLP(self.one_hot.width, hp.hidden, hp.dropout, outputs(hp.get("classes")))

    def inputs(self, features: torch.Tensor) -> torch.Tensor:
        """What the network reads of raw feature rows: filled, one-hot encoded, standardised."""
        return self.preprocess(self.one_hot(self.fill_missing(features)))

    def adapt(self, datamodule) -> None:
        """Take the input width, feature names and scaling statistics from ``datamodule``, whose
        ``setup`` has run (as Keras's ``Normalization.adapt`` learns them from the training rows)."""
        needed = ("n_features", "feature_names", "feature_mean", "feature_scale")
        missing = [name for name in needed if not hasattr(datamodule, name)]
        if missing:
            raise ValueError(
                f"{type(datamodule).__name__} has no {', '.join(missing)}: PimaClassifier takes its input "
                "width and scaling from a datamodule that has them after setup(), such as PimaDataModule"
            )
        inputs = data_settings_of(datamodule)
        classes = inputs.pop("classes") or self.hparams.classes
        if self.network is None:
            if datamodule.feature_names is not None:
                self.hparams.feature_names = list(datamodule.feature_names)
            self.hparams.update(inputs, classes=classes)
            self.build(datamodule.n_features)
        elif outputs(classes) != outputs(self.hparams.classes):
            raise ValueError(
                f"the model was built for {max(outputs(self.hparams.classes), 2)} classes, the data has "
                f"{len(classes)}: build it without n_features, and it takes them from the data"
            )
        elif datamodule.n_features != self.hparams.n_features:
            raise ValueError(
                f"the model takes {self.hparams.n_features} features, the data has {datamodule.n_features}"
            )
        elif any(self.hparams[key] != value for key, value in inputs.items()):
            raise ValueError(
                "the model was built for other missing values or categories than the data's "
                "(missing_indicators, missing_values, categories): build it without n_features, and it "
                "takes them from the data"
            )
        elif datamodule.feature_names is not None:
            self.hparams.feature_names = list(datamodule.feature_names)
        self.hparams.classes = classes
        fit_inputs(self, datamodule)
        self.scaling_fitted = True

    def setup(self, stage: str) -> None:
        if self.scaling_fitted:
            return
        if self.trainer.datamodule is None:
            raise ValueError(
                "PimaClassifier learns its input width and feature scaling from the datamodule: call "
                "trainer.fit(model, datamodule=...), or model.adapt(datamodule) before passing dataloaders"
            )
        self.adapt(self.trainer.datamodule)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        with_fill(checkpoint.get("state_dict"), self.hparams.n_features)
        self.scaling_fitted = True  # the statistics come with the weights

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(rows,)`` for raw feature rows ``(rows, n_features)``."""
        if self.network is None:
            raise ValueError(
                "no network yet: it is built when fitting starts, or by PimaClassifier(n_features=)"
            )
        return self.network(self.inputs(features)).squeeze(-1)

    def l1_penalty(self) -> torch.Tensor:
        """``l1 * sum(|w|)`` over the weight matrices (biases excluded, as Keras's kernel_regularizer)."""
        return self.hparams.l1 * sum(layer.weight.abs().sum() for layer in self.network.linear_layers())

    def objective(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What a training step minimises: the (binary) cross-entropy, plus ``l1``'s penalty."""
        loss = class_loss(logits, labels)
        return loss + self.l1_penalty() if self.hparams.l1 else loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        features, labels = batch
        logits = self(features)
        self.train_outputs.append((logits.detach(), labels))
        return self.objective(logits, labels)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training loss and accuracy (Keras's ``fit()`` history), from the logits of its
        steps; with ``l1``, the loss adds the penalty of the weights at the epoch's end.

        Kept in ``training_step`` and scored once here, not logged every step: measured on the default
        run (one thread, a plain ``Trainer``), ``self.log`` of the loss and a torchmetrics accuracy every
        step doubled an epoch (72 to 145 ms), torchmetrics objects updated every step cost 25%, summing
        into a tensor every step 8%; keeping the step's outputs costs nothing measurable. Under DDP each
        process scores its own share of the rows (equal shares), and ``sync_dist`` averages them.
        """
        if not self.train_outputs:
            return
        logits, labels = (torch.cat(parts) for parts in zip(*self.train_outputs, strict=True))
        self.train_outputs.clear()
        loss = class_loss(logits, labels)
        if self.hparams.l1:
            loss = loss + self.l1_penalty().detach()
        accuracy = (predicted_classes(logits) == labels.long()).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, sync_dist=True)
        self.log_learning_rate()

    def log_learning_rate(self) -> None:
        """Log the epoch's learning rate as ``train/lr``, beside the training loss (with a scheduler it
        changes between epochs). Lightning's ``LearningRateMonitor`` would log it as ``lr-SGD``, a card of
        its own ahead of the loss in TensorBoard, and at optimizer steps rather than epochs."""
        self.log("train/lr", float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def validation_step(self, batch, batch_idx: int) -> None:
        features, labels = batch
        self.val_metrics.update(self(features), labels)

    def test_step(self, batch, batch_idx: int) -> None:
        features, labels = batch
        self.test_metrics.update(self(features), labels)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test", self.test_metrics)

    def _log_scores(self, stage: str, metrics: EpochScores) -> None:
        """Log the epoch's loss and scores once (torchmetrics gathers every DDP process's rows first)."""
        scores = {f"{stage}/{name}": value for name, value in metrics.compute().items()}
        metrics.reset()
        shown = {name: scores.pop(name) for name in PROGRESS_BAR if name in scores}
        self.log_dict(shown, prog_bar=True)
        self.log_dict(scores)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        """P(the second class) per row, ``(rows,)``; for more than two classes each class's, ``(rows, K)``."""
        features = batch[0] if isinstance(batch, list | tuple) else batch
        return class_probabilities(self(features))

    def configure_optimizers(self):
        return optimizers(self.parameters(), self.hparams.optimizer, self.hparams.scheduler)


def optimizers(parameters, optimizer: dict, scheduler: dict | None):
    """What ``configure_optimizers`` returns for Hydra-style ``optimizer`` and ``scheduler`` configs: the
    optimizer alone, or it and its scheduler, stepped once an epoch (``ReduceLROnPlateau`` on
    ``PLATEAU_MONITOR``)."""
    built = torch_class(optimizer, torch.optim, torch.optim.Optimizer)(parameters, **settings(optimizer))
    if not scheduler:
        return built
    base = torch.optim.lr_scheduler.LRScheduler
    schedule = torch_class(scheduler, torch.optim.lr_scheduler, base)(built, **settings(scheduler))
    lr_scheduler = {"scheduler": schedule, "interval": "epoch"}
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        lr_scheduler["monitor"] = PLATEAU_MONITOR
    return {"optimizer": built, "lr_scheduler": lr_scheduler}
