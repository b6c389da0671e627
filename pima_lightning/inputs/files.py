"""Open a file that a user, a config or a cache names: a regular file only, of bounded size.

The one gate every reader of such a file goes through (CSVs, the cached public copy, checkpoints, the
study database, the digests that identify data). It opens without waiting (``O_NONBLOCK``: a FIFO with no
writer would block an ordinary ``open`` forever) and checks the open descriptor, not the name, so a link
to ``/dev/zero`` or a FIFO swapped in after a check is refused as what it is: no read starts on anything
but a regular file of at most the caller's size.
"""

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from pima_lightning.errors import InputError

GiB = 1 << 30
MAX_CSV_BYTES = 4 * GiB  # a table to train on or score; numpy's reader holds about 2x its float32 size
MAX_CHECKPOINT_BYTES = 2 * GiB  # the largest network (MAX_PARAMETERS float32) with Adam's two moments
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters, DEL


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\r``): what a file, a checkpoint
    or a path holds is never sent raw to a terminal, where an escape sequence could rewrite it."""
    return CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def open_regular(path: str | Path, setting: str, max_bytes: int, kind: str = "") -> BinaryIO:
    """``path`` opened for reading in binary, or InputError (one line naming ``setting``) when it is
    missing, a folder, not a regular file (FIFO, device, socket) or larger than ``max_bytes``. ``kind``
    names what the file should be in messages (``CSV``)."""
    path = Path(path).expanduser()
    a_file = f"a {kind} file" if kind else "a file"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        example = f"file.{kind.lower()}" if kind else "file"
        raise InputError(
            f"{path}: file not found; give an existing {kind or 'file'} with {setting}=/path/to/{example}"
        ) from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; {setting} must name {a_file}") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be opened ({err.strerror}); check {setting}") from None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise InputError(f"{path}: is a directory; {setting} must name {a_file}")
        if not stat.S_ISREG(status.st_mode):
            raise InputError(
                f"{path}: not a regular file (a device, FIFO or socket); {setting} must name {a_file}"
            )
        if status.st_size > max_bytes:
            raise InputError(
                f"{path}: {status.st_size:,} bytes, more than the {max_bytes:,} accepted for {setting}"
            )
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def check_regular(path: str | Path, setting: str, max_bytes: int, kind: str = "") -> None:
    """Raise InputError as ``open_regular`` does, without reading anything."""
    open_regular(path, setting, max_bytes, kind).close()


def sha256_of(path: str | Path, setting: str, max_bytes: int, kind: str = "") -> str:
    """The SHA-256 of a regular file of at most ``max_bytes`` (never reading further, should it grow)."""
    digest = hashlib.sha256()
    with open_regular(path, setting, max_bytes, kind) as handle:
        left = max_bytes + 1
        while left > 0 and (chunk := handle.read(min(1 << 20, left))):
            digest.update(chunk)
            left -= len(chunk)
    if left <= 0:
        raise InputError(f"{path}: grew past the {max_bytes:,} bytes accepted for {setting} while read")
    return digest.hexdigest()
