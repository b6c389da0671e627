"""Files are written whole or not at all (a full disk leaves the last good file and no partial one), and
no command writes over the file it reads, the checkpoint, a folder or a device."""

import errno
import json
import threading
from pathlib import Path

import pytest
import torch
from tensorboard.compat.tensorflow_stub.io import gfile

from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.exits import exit_with_one_line
from pima_lightning.train import main

QUIET = ["trainer.enable_progress_bar=false"]


def fill_the_disk_after(monkeypatch, writes_that_succeed: int, name_part: str = "") -> None:
    """Make ``Path.write_bytes`` fail as a full disk does (half the bytes written, then ENOSPC), for
    files whose name holds ``name_part``, after that many such writes succeed."""
    real_write_bytes, done = Path.write_bytes, []

    def write_bytes(path: Path, data: bytes) -> int:
        if name_part in path.name:
            if len(done) >= writes_that_succeed:
                real_write_bytes(path, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            done.append(path)
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_a_full_disk_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_json(target, {"epoch": 1})
    fill_the_disk_after(monkeypatch, 0)
    with pytest.raises(OSError, match="No space left on device") as raised:
        write_json(target, {"epoch": 2, "padding": "x" * 1000})
    assert raised.value.filename == str(target)  # the file the user expects, not the temporary one
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


def test_a_read_only_folder_is_reported_with_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    """On a read-only mount the temporary file cannot be made, and unlinking it (missing) fails too:
    that second error used to replace the first, naming ``.<name>.<pid>.partial``."""

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    target = tmp_path / "predictions.csv"
    with pytest.raises(OSError) as raised:
        write_json(target, {})
    with pytest.raises(SystemExit, match=f"^error: Read-only file system: {target}$"):
        exit_with_one_line(raised.value)


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_good_one(make_config, tmp_path, monkeypatch):
    cfg = make_config("trainer.max_epochs=3", "checkpoint_every=1", *QUIET)
    fill_the_disk_after(monkeypatch, 1, name_part="last")  # epoch 0's last.ckpt, then the disk is full
    with pytest.raises(SystemExit) as exited:
        main.__wrapped__(cfg)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    assert str(exited.value) == f"error: No space left on device: {checkpoint}"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 0  # whole, and loadable
    assert [path.name for path in checkpoint.parent.iterdir()] == ["last.ckpt"]
    assert not (tmp_path / "metrics.json").exists()


def test_a_full_disk_under_the_tensorboard_log_is_one_line_naming_the_event_file(
    make_config, tmp_path, monkeypatch
):
    """The training thread writes TensorBoard's events itself (``runs/loggers.py``); TensorBoard's file
    layer opens the event file for each one, by a name in bytes."""
    real_append = gfile.LocalFileSystem.append

    def append(self, filename: bytes, file_content, binary_mode=False):
        if b"events.out.tfevents" in filename:
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_append(self, filename, file_content, binary_mode)

    monkeypatch.setattr(gfile.LocalFileSystem, "append", append)
    with pytest.raises(SystemExit) as exited:
        main.__wrapped__(make_config("trainer.max_epochs=2", *QUIET))
    event_file = next((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert str(exited.value) == f"error: No space left on device: {event_file}"
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/out/p.csv"),
            "error: Permission denied: /out/p.csv",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ro/p.csv"),
            "error: Read-only file system: /ro/p.csv",
        ),
    ],
)
def test_operating_system_errors_about_files_are_one_line(error, line):
    with pytest.raises(SystemExit, match=f"^{line}$"):
        exit_with_one_line(error)


def test_a_bug_keeps_its_traceback():
    with pytest.raises(KeyError):
        exit_with_one_line(KeyError("val/acc"))


@pytest.fixture
def checkpoint(make_config, tmp_path):
    from pima_lightning.train import train

    train(
        make_config(
            "trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.enable_progress_bar=false"
        )
    )
    return tmp_path / "checkpoints" / "last.ckpt"


def outputs_that_would_destroy(tmp_path, rows, checkpoint):
    (tmp_path / "a folder").mkdir()
    return {
        "the input": (rows, f"output={rows} is the file given as input; write the output elsewhere"),
        "the checkpoint": (checkpoint, f"output={checkpoint} is the file given as ckpt_path; write the"),
        "a folder": (tmp_path / "a folder", f"output={tmp_path / 'a folder'} is a folder; name a file in it"),
        "a device": (Path("/dev/null"), "output=/dev/null is not a regular file (a device, pipe or socket)"),
        "no such folder": (tmp_path / "nope" / "p.csv", f"the folder {tmp_path / 'nope'} does not exist"),
    }  # fmt: skip


@pytest.mark.parametrize("target", ["the input", "the checkpoint", "a folder", "a device", "no such folder"])
def test_predict_refuses_an_output_that_would_destroy_something(cli, tmp_path, checkpoint, target):
    rows = tmp_path / "rows.csv"
    rows.write_text("6,148,72,35,0,33.6,0.627,50\n")
    output, expected = outputs_that_would_destroy(tmp_path, rows, checkpoint)[target]
    before = {path: path.read_bytes() for path in (rows, checkpoint)}
    result = cli("predict", f"ckpt_path={checkpoint}", f"input={rows}", f"output={output}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last and "Traceback" not in result.stderr
    assert all(path.read_bytes() == content for path, content in before.items())


def test_export_refuses_to_write_over_its_checkpoint(cli, checkpoint):
    before = checkpoint.read_bytes()
    result = cli("export", f"ckpt_path={checkpoint}", "format=pt2", f"output={checkpoint}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: output={checkpoint} is the file given as ckpt_path; write the output elsewhere"
    )
    assert checkpoint.read_bytes() == before


def test_a_background_threads_error_is_one_warning_line(monkeypatch, capsys, caplog):
    """TensorBoard's event writer fails in its own thread on a full disk; Python's default hook printed
    a traceback, cut short as the process exited, before the command's own error line."""
    from pima_lightning.runs import exits as errors

    monkeypatch.setattr(threading, "excepthook", errors._thread_error)  # what install_handlers sets

    def write_events():
        raise OSError(errno.ENOSPC, "No space left on device", "/run/tensorboard/events.out")

    writer = threading.Thread(target=write_events, name="TensorBoard writer")
    writer.start()
    writer.join()
    assert capsys.readouterr().err == (
        "warning: TensorBoard writer failed: OSError: [Errno 28] No space left on device: "
        "'/run/tensorboard/events.out'\n"
    )
    assert caplog.records[-1].exc_info[0] is OSError  # the traceback: for the log file only
