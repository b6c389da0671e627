"""The Keras tutorial's 12-6-1 MLP on the Pima Indians diabetes CSV, on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"

import warnings

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates: nothing a user can act on
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")

from pima_lightning.data import PimaDataModule  # noqa: E402
from pima_lightning.model import MLP, PimaClassifier  # noqa: E402

__all__ = ["MLP", "PimaClassifier", "PimaDataModule"]
