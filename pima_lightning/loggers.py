"""Loggers this package configures (``conf/logger/``)."""

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class EpochTensorBoardLogger(TensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with epochs on TensorBoard's x-axis instead of optimizer steps.

    The model logs once an epoch, so against steps each curve is 150 points spread over 0-7,800 (52 steps
    an epoch) and the first card is ``epoch``, the straight line Lightning adds to map steps to epochs.
    Here that ``epoch`` value (Lightning's ``trainer.current_epoch``, from 0, as in checkpoint names and
    Keras's own TensorBoard callback) is the step, and no ``epoch`` series is written. The test metrics,
    logged after the last epoch, land at ``max_epochs``. Values logged with an explicit ``step`` (a
    ``self.log("step", ...)`` or a callback that passes one, as ``LearningRateMonitor`` does) keep it.

    ``epochs_on_x_axis=False`` keeps Lightning's steps, for a run that validates within epochs
    (``Trainer(val_check_interval=10)``), whose validations would otherwise share one x position.
    """

    def __init__(self, *args, epochs_on_x_axis: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epochs_on_x_axis = epochs_on_x_axis

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if not self.epochs_on_x_axis:
            return super().log_metrics(metrics, step)
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        return super().log_metrics(metrics, step if epoch is None else int(epoch))
