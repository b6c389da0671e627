"""Lightning callbacks this package adds to training runs."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException


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


class InterruptedCheckpoint(L.Callback):
    """Save ``<dirpath>/<filename>.ckpt`` when SIGTERM (a batch scheduler's) or Ctrl-C stops training.

    Lightning's ``OnExceptionCheckpoint`` saves on any exception, but with one among the callbacks
    Lightning 2.6 also turns every ``fit(ckpt_path=None)`` into ``ckpt_path="last"``: a new run in a
    folder that holds a ``last.ckpt`` would silently resume the old run. This one only saves.
    """

    def __init__(self, dirpath: str, filename: str = "interrupted") -> None:
        self.ckpt_path = str(Path(dirpath) / f"{filename}.ckpt")

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException | KeyboardInterrupt):
            trainer.save_checkpoint(self.ckpt_path, weights_only=False)
