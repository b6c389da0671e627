"""Lightning callbacks this package adds to training runs."""

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar


class RandomStateCheckpoint(L.Callback):
    """Store torch's random state in each checkpoint and restore it on resume.

    Dropout masks and the order of training batches both draw from torch's global generator, and
    Lightning does not checkpoint it: without this, a resumed run would continue with another random
    stream and finish with other metrics than an uninterrupted run with the same seed.
    """

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, also showing the last epoch's validation loss and accuracy."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        shown = {name: pl_module.epoch_metrics.get(f"val/{name}") for name in ("loss", "acc")}
        return super().get_metrics(trainer, pl_module) | {
            f"val_{name}": f"{value:.3f}" for name, value in shown.items() if value is not None
        }
