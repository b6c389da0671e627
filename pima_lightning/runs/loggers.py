"""Loggers this package configures (``conf/logger/``)."""

import contextlib
import fcntl
import math
import os
import threading
import time
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard import SummaryWriter

from pima_lightning.errors import InputError


def epoch_as_step(metrics: dict[str, float], step: int | None) -> tuple[dict[str, float], int | None]:
    """The metrics without the ``epoch`` value Lightning adds, and that epoch as the step (``step`` when
    none was added)."""
    metrics = dict(metrics)
    epoch = metrics.pop("epoch", None)
    return metrics, step if epoch is None else int(epoch)


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

    The event file is flushed at most once every ``FLUSH_EVERY_S`` while training (Lightning asks after
    every ``log_metrics``, twice an epoch: 1.4 ms an epoch of the notebook's run, 150 flushes in 13 s), and
    when the run ends or is interrupted (``finalize``). TensorBoard itself looks for new events every 5 s.
    Events are written by the thread that logs them (``InThreadSummaryWriter``), not handed to another.
    """

    FLUSH_EVERY_S = 1.0

    def __init__(self, *args, epochs_on_x_axis: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epochs_on_x_axis = epochs_on_x_axis
        self._flushed_at = -math.inf

    @property
    @rank_zero_experiment
    def experiment(self) -> SummaryWriter:
        if self._experiment is None:  # as Lightning makes it, with the writer below
            if self.root_dir:
                self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = InThreadSummaryWriter(log_dir=self.log_dir, **self._kwargs)
        return self._experiment

    @rank_zero_only
    def save(self) -> None:
        if (now := time.monotonic()) - self._flushed_at >= self.FLUSH_EVERY_S:
            self._flushed_at = now
            super().save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self._flushed_at = -math.inf  # Lightning's finalize saves once more: not skipped
        super().finalize(status)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if not self.epochs_on_x_axis:
            return super().log_metrics(metrics, step)
        return super().log_metrics(*epoch_as_step(metrics, step))


class InThreadSummaryWriter(SummaryWriter):
    """torch's ``SummaryWriter``, writing each event to its file in the thread that logs it.

    tensorboard's event file writer hands every event to a thread of its own through a queue: each one
    wakes that thread, and the two pass Python's GIL back and forth (the notebook's run under strace:
    57,363 futex calls with the writer thread, 68 with this). Measured on the 150-epoch default fit, 4
    alternated runs: 10.6, 7.5, 7.8, 7.0 s with the writer thread; 9.2, 6.5, 6.5, 6.1 s with this.
    Writing an event here is appending a few hundred bytes to the file (tensorboard's file layer opens it
    for each append); flushing is left to the logger.
    """

    def _get_file_writer(self):
        # torch's private method, the one place a file writer is made (again after close(), e.g. for the
        # test after the fit); every add_* call goes through it
        file_writer = super()._get_file_writer()
        write_in_this_thread(file_writer.event_writer)
        return file_writer


class RecordsWrittenNow:
    """What tensorboard's ``_AsyncWriter`` does (write, flush, close), done at once by the caller."""

    def __init__(self, record_writer) -> None:
        self._record_writer = record_writer
        self._lock = threading.Lock()  # one event's header and bytes stay together if threads log at once

    def write(self, event_bytes: bytes) -> None:
        with self._lock:
            self._record_writer.write(event_bytes)

    def flush(self) -> None:
        with self._lock:
            self._record_writer.flush()

    def close(self) -> None:
        with self._lock:
            self._record_writer.flush()
            self._record_writer.close()


def write_in_this_thread(event_writer) -> None:
    """Stop a tensorboard ``EventFileWriter``'s writer thread (after it writes what it was handed) and
    have its events written by whoever adds them.

    This reaches into tensorboard's private ``_async_writer`` (its ``_worker`` thread and ``_writer``), as
    every release since 2.0 has them. A release without them keeps its own writer thread: slower, as
    correct (tests/test_train.py's thread test then fails and says so)."""
    threaded = getattr(event_writer, "_async_writer", None)
    if isinstance(threaded, RecordsWrittenNow):
        return
    worker, record_writer = getattr(threaded, "_worker", None), getattr(threaded, "_writer", None)
    if not hasattr(worker, "stop") or not hasattr(record_writer, "write"):
        return
    worker.stop()
    event_writer._async_writer = RecordsWrittenNow(record_writer)


class EpochMLFlowLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` with epochs on MLflow's x-axis, as ``EpochTensorBoardLogger`` does for
    TensorBoard (MLflow's charts showed the optimizer step, 51...7800), and a store it can use or one line
    saying why not.

    A local SQLite store (``sqlite:///path/mlflow.db``) is checked before MLflow touches it: a path that is a
    folder, or in a folder that cannot be written, is refused at once (MLflow retried for about 100 s and
    printed 36 lines first). Runs that start together on a new store take turns creating it
    (``<store>.lock``, ``flock``): MLflow's schema migration is not safe to run twice at once (2 of 3 such
    runs failed). A deleted experiment of the same name, or an empty name, is one line.
    """

    def __init__(self, *args, **kwargs) -> None:
        name = kwargs.get("experiment_name", args[0] if args else "lightning_logs")
        if not str(name or "").strip():
            raise InputError(
                "logger.mlflow.experiment_name is empty; name the MLflow experiment, e.g. pima_lightning"
            )
        self._store_file = _sqlite_file(kwargs.get("tracking_uri"))
        if self._store_file is not None:
            _check_store(self._store_file)
        with self._store_lock():
            super().__init__(*args, **kwargs)

    @contextlib.contextmanager
    def _store_lock(self):
        if self._store_file is None:
            yield
            return
        with open(self._store_file.with_name(self._store_file.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._initialized:
            return self._mlflow_client
        with self._store_lock():
            found = self._mlflow_client.get_experiment_by_name(self._experiment_name)
            if found is not None and found.lifecycle_stage == "deleted":
                raise InputError(
                    f"logger.mlflow.experiment_name={self._experiment_name}: that MLflow experiment is "
                    f"deleted (in the store's trash); restore it (mlflow experiments restore --experiment-id "
                    f"{found.experiment_id}) or name another experiment"
                )
            return super().experiment

    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        return super().log_metrics(*epoch_as_step(metrics, step))


def _sqlite_file(uri) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI, or None for any other store."""
    if not isinstance(uri, str) or not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///")).expanduser().absolute()


def _check_store(path: Path) -> None:
    """Refuse an SQLite store path MLflow cannot use, before it retries for minutes."""
    if path.is_dir():
        raise InputError(
            f"logger.mlflow.tracking_uri: {path} is a folder; name a database file, e.g. {path}/mlflow.db"
        )
    folder = next(parent for parent in path.parents if parent.exists())
    if (
        not folder.is_dir()
        or not os.access(folder, os.W_OK | os.X_OK)
        or (path.exists() and not os.access(path, os.W_OK))
    ):
        raise InputError(
            f"logger.mlflow.tracking_uri: cannot write {path} (read-only or not yours); choose another store"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
