"""Keras-style ``model.summary()``: ``python -m pima_lightning.summary [ckpt_path=PATH | model.hidden=...]``.

Hand-written because Lightning's ModelSummary also lists the loss and metric modules and shows no
per-layer output shapes without an example input; this table lists the network's layers as Keras does.
"""

import hydra
import torch
from omegaconf import DictConfig

from pima_lightning.checkpoint import load_checkpoint
from pima_lightning.errors import one_line_errors
from pima_lightning.model import MLP


def model_summary(network: MLP, scaling: str | None = None, feature_names: list[str] | None = None) -> str:
    """A table of each layer's name, output shape and parameter count, then the totals.

    With replicas, output shapes lead with the replica count and parameters count every replica.
    ``scaling`` says how inputs will be scaled, for a network whose statistics are not fitted yet;
    ``feature_names`` (a header's) are listed in input order.
    """
    replicas = network.replicas
    features = torch.zeros(replicas, 1, network.n_features)
    rows = [("Layer (type)", "Output Shape", "Param #")]
    was_training = network.training
    network.eval()  # dropout in training mode would draw from, and so shift, the seeded random stream
    with torch.no_grad():
        for index, layer in enumerate(network):
            features = layer(features)
            kind = type(layer).__name__
            shape = ", ".join(
                [*([str(replicas)] if replicas > 1 else []), "None", *map(str, features.shape[2:])]
            )
            rows.append(
                (f"{index} ({kind})", f"({shape})", f"{sum(p.numel() for p in layer.parameters()):,}")
            )
    network.train(was_training)
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    total = sum(p.numel() for p in network.parameters())
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
        f"Input scaling: {scaling or network[0].describe()}",
    ]
    if feature_names:
        lines.append(f"Inputs: {', '.join(feature_names)}")
    if replicas > 1:
        lines.append(f"Replicas: {replicas} independent copies of {total // replicas:,} parameters each")
    return "\n".join(lines)


@hydra.main(config_path="pkg://pima_lightning.conf", config_name="summary", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Print the summary of a trained network (``ckpt_path=...``) or of the configured one."""
    with one_line_errors():
        names = None
        if cfg.ckpt_path:
            model = load_checkpoint(cfg.ckpt_path)[0]
            network, names = model.network, model.hparams.feature_names
        else:
            network = MLP(
                hidden=list(cfg.model.hidden), dropout=cfg.model.dropout, replicas=cfg.model.replicas
            )
    # an untrained network has no statistics yet: say what training will fit
    planned = None
    if not cfg.ckpt_path:
        planned = (
            "z-score with training-row statistics, fitted when training starts (data.standardize=true)"
            if cfg.data.standardize
            else "none (raw features; data.standardize=false)"
        )
    print(model_summary(network, planned, names))


if __name__ == "__main__":
    main()
