"""Write files so that no reader ever sees a half-written one: the one way every file here is written.

``atomic_path`` hands out a temporary name in the target's own folder (so the final rename never turns
into a copy across filesystems), keeping the target's suffix (torch.export and ONNX check it); once the
writer returns, the file is flushed to disk (fsync), renamed over the target, and the folder's entry is
flushed too. If anything fails (a full disk, a kill before the rename), the target is left as it was and
the temporary file is removed; the error goes on to the caller.
"""

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pima_lightning.errors import InputError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` once written and synced."""
    path = Path(path)
    # a plain name (not tempfile's) so the file gets the usual permissions, not 0600
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield partial
        _fsync(partial, os.O_RDONLY)
        os.replace(partial, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:  # a full disk, say: name the file the user expects, not the temporary one
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        if partial.exists():  # (unlinking a missing file on a read-only mount fails, hiding the error)
            partial.unlink()


def check_output(path: Path, option: str, keep: dict[str, str | Path]) -> Path:
    """``path`` as written (``~`` expanded), after raising InputError unless it (set by ``option``) is a
    new name in an existing folder or an existing regular file, and none of the files in ``keep`` (setting
    -> path: the input, the checkpoint), which writing there would destroy. Write to the path it returns:
    the checked one."""
    path = Path(path).expanduser()
    for setting, kept in keep.items():
        kept = Path(kept).expanduser()
        if path.resolve() == kept.resolve() or (path.exists() and kept.exists() and path.samefile(kept)):
            raise InputError(f"{option}={path} is the file given as {setting}; write the output elsewhere")
    if path.is_dir():
        raise InputError(f"{option}={path} is a folder; name a file in it, e.g. {option}={path / 'out'}")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise InputError(f"{option}={path} is not a regular file (a device, pipe or socket); name a file")
    if not path.parent.is_dir():
        raise InputError(f"{option}={path}: the folder {path.parent} does not exist; create it first")
    return path


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode())


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    write_text(path, json.dumps(payload, indent=2) + "\n")
