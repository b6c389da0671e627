"""Export a trained model: ``python -m pima_lightning.export ckpt_path=PATH format=onnx|torchscript|pt2``.

The exported graph takes raw feature rows (float32, shape ``(rows, 8)``; NaN where a value is missing; a
categorical feature's category as its index in the list the ONNX metadata's ``categories`` gives, -1 for
a value not in it)
and returns the probability of diabetes per row (shape ``(rows,)``): the checkpoint's filling of missing
values and its input scaling are inside it, and for a checkpoint of ``model.replicas`` > 1 it is the
ensemble's probability (the mean of the replicas'); for a model of K > 2 classes, each class's, ``(rows, K)``.
"""

import json
import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from pima_lightning.ensembles.classifier import copy_probabilities
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.model import PimaClassifier, class_probabilities
from pima_lightning.runs.atomic import atomic_path, check_output
from pima_lightning.runs.exits import error_exit, one_line_config_errors, one_line_errors

log = logging.getLogger(__name__)

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "pt2": ".pt2"}


class Probability(nn.Module):
    """The model's probability per row (for a replicas checkpoint, the ensemble's): its scaling and its
    network, without the metrics and the trainer a LightningModule carries, as a module to export."""

    def __init__(self, model: PimaClassifier) -> None:
        super().__init__()
        self.fill_missing, self.one_hot = model.fill_missing, model.one_hot
        self.preprocess, self.network = model.preprocess, model.network
        self.ensemble = model.hparams.get("replicas", 1) > 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.network(self.preprocess(self.one_hot(self.fill_missing(features))))
        if self.ensemble:  # the replicas' logits (replicas, rows) or (replicas, rows, K)
            return copy_probabilities(logits).mean(0)
        # one logit a row: (rows, 1) -> (rows,); K logits stay (rows, K) (a squeeze there exports as an error)
        return class_probabilities(logits[..., 0] if logits.shape[-1] == 1 else logits)


def export(ckpt_path: str, fmt: str, output: str | None = None) -> Path:
    """Write the model in ``fmt`` to ``output`` (default: beside the checkpoint); return the path."""
    if fmt not in SUFFIXES:
        raise InputError(f"format={fmt}: expected one of {', '.join(SUFFIXES)}")
    model, _ = load_checkpoint(ckpt_path)
    scorer = Probability(model).eval()
    example = torch.zeros(2, model.hparams.n_features)  # export specialises sizes 0 and 1
    rows = {0: torch.export.Dim("rows")}
    path = Path(output) if output else Path(ckpt_path).with_suffix(SUFFIXES[fmt])
    path = check_output(path, "output", {"ckpt_path": ckpt_path})
    with atomic_path(path) as partial:
        if fmt == "onnx":
            # weights inside the one file (external_data=False): a 193-parameter model needs no side file
            torch.onnx.export(
                scorer,
                (example,),
                partial,
                input_names=["features"],
                output_names=["probability"],
                dynamic_shapes=(rows,),
                external_data=False,
                verbose=False,
            )
            describe_onnx(partial, model)
        elif fmt == "torchscript":
            torch.jit.trace(scorer, example).save(partial)
        else:
            torch.export.save(torch.export.export(scorer, (example,), dynamic_shapes=(rows,)), partial)
    return path


def describe_onnx(path: Path, model: PimaClassifier) -> None:
    """Write into the ONNX file's metadata what a caller must know to feed it and read it: the input
    columns in order (``inputs``, JSON; a file without a header's are ``column 1``, ...), that NaN is a
    missing value, each categorical input's categories (``categories``, JSON: an input's name to its
    categories, whose index in that list is the number to feed; -1 for any other value), and the classes
    (``classes``, JSON) its probabilities are of."""
    import onnx  # the export extra's; imported here so the other formats do not need it

    hp = model.hparams
    inputs = hp.feature_names or [f"column {number}" for number in range(1, hp.n_features + 1)]
    classes = hp.get("classes") or ["0", "1"]
    output = "P(the second class) per row" if len(classes) == 2 else "each class's probability per row"
    described = onnx.load(path)
    onnx.helper.set_model_props(
        described,
        {
            "inputs": json.dumps(inputs),
            "missing": "NaN",
            "classes": json.dumps(classes),
            "categories": json.dumps(
                {inputs[int(column)]: names for column, names in (hp.get("categories") or {}).items()}
            ),
            "probability": output,
        },
    )
    onnx.save(described, path)


@one_line_config_errors("export")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise error_exit("no checkpoint given; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        with one_line_errors():
            path = export(cfg.ckpt_path, cfg.format, cfg.output)
    except ImportError as err:
        raise error_exit(f"{err.name} is missing; pip install 'pima-lightning[export]'") from None
    log.info("Wrote %s", path)


if __name__ == "__main__":
    main()
