"""``AtomicCheckpointIO``: Lightning's checkpoint writer, through ``atomic.write_bytes``."""

import io
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pima_lightning.runs.atomic import write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save checkpoints to a temporary file in their own folder, fsync'ed, then renamed.

    Lightning's own writer goes through a temporary file in the system's temp folder, so on another
    filesystem its final "rename" is a copy, and a full disk left a 0-byte ``last.ckpt`` (issue 12).
    Loading and removing are Lightning's. Set as a Trainer plugin in ``conf/trainer/default.yaml``.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options; got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # serialised in memory first (tens of KB here): a full disk then fails in Python's write, as an
        # OSError naming the file, where inside torch.save it fails as a RuntimeError from C++
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getvalue())
