"""Lightning callbacks this package adds to training runs."""

import functools
import logging
import math
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch import callbacks as lightning_callbacks
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException

from pima_lightning.errors import InputError
from pima_lightning.runs.signals import signal_exit

log = logging.getLogger(__name__)
# what an epoch line shows, as Keras's fit() names it, and where Lightning's metrics hold it
EPOCH_LINE = {"loss": "train/loss", "acc": "train/acc", "val_loss": "val/loss", "val_acc": "val/acc"}


class StateKeyBuiltOnce:
    """A Lightning callback whose ``state_key`` is built once.

    Lightning labels every callback hook it calls with the callback's ``state_key`` (for the profiler,
    whether or not one profiles), about six hooks a training step. Lightning's ``ModelCheckpoint`` and
    ``EarlyStopping`` build that key anew each time from settings their ``__init__`` fixed (a dict and its
    ``repr``, 3.8 µs here): 320 times an epoch of the notebook's run. Counted by
    benchmarks/instructions.py, the default fit's epoch took 236.1 M instructions with Lightning's
    ``ModelCheckpoint``, 232.4 M with the one below. The key is Lightning's own, so checkpoints written
    with either callback load with the other.
    """

    @functools.cached_property
    def state_key(self) -> str:
        return super().state_key


class ModelCheckpoint(StateKeyBuiltOnce, lightning_callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, its ``state_key`` built once."""


class EarlyStopping(StateKeyBuiltOnce, lightning_callbacks.EarlyStopping):
    """Lightning's ``EarlyStopping``, its ``state_key`` built once."""


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


def console_progress(enabled: bool = True, every_n_epochs: int = 10) -> ProgressBar | None:
    """Lightning's live bar when stdout is a terminal; else ``EpochLines`` (a redrawn bar written to a
    file or a CI log is thousands of carriage returns); None when ``trainer.enable_progress_bar=false``."""
    if not enabled:
        return None
    return TQDMProgressBar() if sys.stdout.isatty() else EpochLines(every_n_epochs)


class EpochLines(ProgressBar):
    """Progress as lines, like Keras's ``fit(verbose=2)``: every ``every_n_epochs`` epochs and after the
    last, ``epoch 10/150  loss 0.5120  acc 0.7520  val_loss 0.4980  val_acc 0.7640``, logged (so it
    also reaches ``train.log``).

    An epoch's line is written when the next epoch starts or training ends: the module logs the
    training metrics in its ``on_train_epoch_end``, which Lightning calls after the callbacks'.
    """

    def __init__(self, every_n_epochs: int = 10) -> None:
        super().__init__()
        self.every_n_epochs, self.enabled, self.written = every_n_epochs, True, 0

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch and trainer.current_epoch % self.every_n_epochs == 0:
            self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.written:
            self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        """The line of the last finished epoch (``trainer.current_epoch`` counts the finished ones)."""
        self.written = trainer.current_epoch
        if not self.enabled or not trainer.is_global_zero:
            return
        of = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        values = [
            f"{name} {float(trainer.callback_metrics[key]):.4f}"
            for name, key in EPOCH_LINE.items()
            if key in trainer.callback_metrics
        ]
        log.info("  ".join([f"epoch {trainer.current_epoch}{of}", *values]))


class LossWatch(L.Callback):
    """Watch the losses the module logs, epoch by epoch, and act on what they show:

    - stop training with one line once the training loss is no longer a finite number, saying what to
      change (checked when the next epoch starts and when training ends: the module logs its epoch's
      training loss in its own ``on_train_epoch_end``, which Lightning calls after the callbacks');
    - keep each epoch's ``val/loss``, so that a run can say where its minimum was when the loss then rose
      far above it (the network fitting its training rows' noise): ``overfitting()``.

    One callback, not one per job: Lightning calls every callback on every hook of every step (about six
    a step) whether it overrides them or not, and a callback costs about 1 ms an epoch of the notebook's
    run that way (``docs/speed.md``).
    """

    def __init__(self) -> None:
        self.checked = -1  # the last epoch whose training loss was checked
        self.losses: dict[int, float] = {}  # val/loss by epoch, counted from 1 as printed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # (not on_validation_epoch_end: the module logs val/loss in its own, which Lightning calls after
        # the callbacks', so there the metrics are still the previous validation's)
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and not trainer.sanity_checking:
            self.losses[trainer.current_epoch + 1] = float(loss)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch - 1  # the last finished epoch
        loss = trainer.callback_metrics.get("train/loss")
        if epoch <= self.checked or loss is None:
            return
        self.checked = epoch
        if math.isfinite(float(loss)):
            return
        losses = getattr(pl_module, "replica_metrics", {}).get("train/loss", [float(loss)])
        replica = next((k for k, value in enumerate(losses) if not math.isfinite(value)), 0)
        which = f" of replica {replica}" if len(losses) > 1 else ""
        remedy = "lower optimizer.lr"
        if pl_module.preprocess.is_identity():
            remedy += ", or standardise the features (data.standardize=true)"
        elif pl_module.hparams.optimizer.get("momentum", 0) >= 1:
            remedy += " or optimizer.momentum (below 1)"
        raise InputError(
            f"training diverged: the training loss{which} became {losses[replica]} in epoch {epoch}; {remedy}"
        )

    def overfitting(self) -> dict[str, float] | None:
        """The minimum and the last loss when the last is at least 1.5 times the minimum and the minimum
        came in the first two thirds of the epochs; else None."""
        if len(self.losses) < 3:
            return None
        best_epoch = min(self.losses, key=self.losses.get)
        last_epoch = max(self.losses)
        best, last = self.losses[best_epoch], self.losses[last_epoch]
        if last >= 1.5 * best and best_epoch <= 2 * last_epoch / 3:
            return {"best_epoch": best_epoch, "best": best, "last_epoch": last_epoch, "last": last}
        return None


def interrupted(trainer: L.Trainer, stop: BaseException) -> SystemExit | None:
    """The exit for a fit that a signal stopped (None if none did): 143 for SIGTERM (what batch
    schedulers send), 130 for Ctrl-C, after saying where training stopped and how to resume (on stderr
    and in train.log)."""
    saved = [
        callback.ckpt_path
        for callback in trainer.callbacks
        if isinstance(callback, InterruptedCheckpoint) and Path(callback.ckpt_path).is_file()
    ]
    resume = f"resume with ckpt_path={saved[0]}" if saved else "no checkpoint was written for it"
    return signal_exit(stop, f"in epoch {trainer.current_epoch} (step {trainer.global_step}); {resume}")
