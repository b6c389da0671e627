"""The Keras tutorial's 12-6-1 MLP on the Pima Indians diabetes CSV, on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
