"""Keras-style ``model.summary()`` of a model: a table of its layers, output shapes and parameters.

Hand-written because Lightning's ModelSummary also lists the loss and metric modules and shows no
per-layer output shapes without an example input; this table lists the network's layers as Keras does.
"""

import textwrap

import torch

from pima_lightning.model import PimaClassifier

# Keras's layer names for ours: the scaling is Keras's Normalization layer; Keras folds the ReLU into Dense
KERAS_NAMES = {"FillMissing": "fill_missing", "OneHotCategories": "one_hot", "Standardize": "normalization",
               "Linear": "dense", "StackedLinear": "dense", "ReLU": "re_lu",
               "Dropout": "dropout"}  # fmt: skip


def model_summary(model: PimaClassifier, scaling: str | None = None) -> str:
    """A table of each layer's Keras name and type, output shape and parameter count, then the totals.

    With replicas, output shapes lead with the replica count and parameters count every replica.
    ``scaling`` says how inputs will be scaled, for a model whose statistics are not fitted yet; the
    feature names (a header's) are listed in input order.
    """
    replicas = model.hparams.get("replicas", 1)
    features = torch.zeros(*([replicas] if replicas > 1 else []), 1, model.hparams.n_features)
    rows = [("Layer (type)", "Output Shape", "Param #")]
    seen: dict[str, int] = {}
    was_training = model.training
    model.eval()  # dropout in training mode would draw from, and so shift, the seeded random stream
    with torch.no_grad():
        # the filling step is a row where it adds inputs or reads values as missing; else (the notebook's
        # model) it only fills NaN, which its training rows never held, and the table is Keras's
        filling = model.hparams.get("missing_indicators") or model.hparams.get("missing_values")
        encoding = [model.one_hot] if model.one_hot.columns else []  # categories: a row of its own
        steps = [*([model.fill_missing] if filling else []), *encoding]
        for layer in [*steps, model.preprocess, *model.network]:
            features = layer(features)
            kind = type(layer).__name__
            name = KERAS_NAMES.get(kind, kind.lower())
            count = seen.get(name, 0)
            seen[name] = count + 1
            shape = ", ".join([*([str(replicas)] if replicas > 1 else []), "None", str(features.shape[-1])])
            rows.append(
                (
                    f"{name}{f'_{count}' if count else ''} ({kind})",
                    f"({shape})",
                    f"{sum(p.numel() for p in layer.parameters()):,}",
                )
            )
    model.train(was_training)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    rule = "-" * (sum(widths) + 6)
    lines = [rule]
    for number, (name, shape, params) in enumerate(rows):
        lines.append(f"{name:<{widths[0]}}   {shape:<{widths[1]}}   {params:>{widths[2]}}")
        if number == 0:
            lines.append(rule)
    lines += [
        rule,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Input scaling: {scaling or describe_scaling(model)}",
    ]
    if model.hparams.feature_names:
        lines.append(f"Inputs: {', '.join(model.hparams.feature_names)}")
    names = model.hparams.feature_names or [
        f"column {index + 1}" for index in range(model.hparams.n_features)
    ]
    if categories := model.hparams.get("categories"):
        listed = [
            f"{names[int(column)]} ({textwrap.shorten(', '.join(values), 60, placeholder=' ...')})"
            for column, values in categories.items()
        ]
        lines.append(
            "Categories, one-hot (an input a category, then one for any other value): " + "; ".join(listed)
        )
    if indicated := model.hparams.get("missing_indicators"):
        lines.append(
            "Missing values: filled with training-row medians; a was-missing input for "
            + ", ".join(names[index] for index in indicated)
        )
    if replicas > 1:
        lines.append(f"Replicas: {replicas} independent copies of {total // replicas:,} parameters each")
    return "\n".join(lines)


def describe_scaling(model: PimaClassifier) -> str:
    """One line saying whether and how the model scales its inputs."""
    if model.preprocess.is_identity():
        return "none (raw features)"
    return f"z-score with training-row statistics ({model.preprocess.mean.numel()} means and scales)"
