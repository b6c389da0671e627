"""Lightning callbacks this package adds to training runs."""

import lightning as L
import torch


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
