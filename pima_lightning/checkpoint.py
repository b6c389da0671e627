"""Load what a training run saved: the model and the data settings it was trained with."""

from pathlib import Path

import torch

from pima_lightning.errors import InputError
from pima_lightning.model import PimaClassifier


def load_checkpoint(path: str | Path) -> tuple[PimaClassifier, dict]:
    """Return ``(model in eval mode, PimaDataModule settings)`` from a ``.ckpt`` written by training."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = PimaClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports unreadable files with many exception types
        raise InputError(f"{path}: not a pima_lightning checkpoint ({type(err).__name__}: {err})") from None
    return model.eval(), dict(checkpoint["datamodule_hyper_parameters"])
