import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from pima_lightning.tensorboard_logger import SingleEventTensorBoardLogger


def test_the_logger_writes_one_event_per_call_and_tensorboard_reads_every_value(tmp_path, read_scalars):
    logger = SingleEventTensorBoardLogger(tmp_path, name="tensorboard", version="")
    for epoch in range(3):
        logger.log_metrics({"val/loss": 1.0 / (epoch + 1), "val/acc": 0.5 + epoch / 10}, step=epoch)
    logger.finalize("success")
    (event_file,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    events = [event for event in EventFileLoader(str(event_file)).Load() if event.HasField("summary")]
    assert [event.step for event in events] == [0, 1, 2]  # one event per call, not one per value
    scalars = read_scalars(tmp_path)
    assert scalars["val/loss"] == pytest.approx([1.0, 1 / 2, 1 / 3])
    assert scalars["val/acc"] == pytest.approx([0.5, 0.6, 0.7])
