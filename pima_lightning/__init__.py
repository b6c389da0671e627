"""The Keras tutorial's 12-6-1 MLP on the Pima Indians diabetes CSV, on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"

import warnings

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates: nothing a user can act on
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
