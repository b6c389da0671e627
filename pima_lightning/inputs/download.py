"""Fetch the public copy of the dataset once, checksum-verified, written atomically."""

import logging
from pathlib import Path
from urllib.error import URLError

from torch.hub import download_url_to_file

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import sha256_of

MAX_DATASET_BYTES = 1 << 20  # the public copy holds 23,279 bytes: a cached file far larger is not it

log = logging.getLogger(__name__)


def ensure_dataset(path: Path, url: str, sha256: str) -> Path:
    """Return ``path`` after checking its SHA-256, downloading ``url`` there first if it is missing."""
    if path.exists() or path.is_symlink():  # a FIFO, a device or a link to one is refused, never read
        actual = sha256_of(path, "the cached public copy", MAX_DATASET_BYTES)
        if actual != sha256:
            raise InputError(
                f"{path}: SHA-256 is {actual}, expected {sha256}; delete the file to download "
                f"it again, or train on your own CSV with data.path=/path/to/file.csv"
            )
        return path
    log.info("Downloading %s to %s", url, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # torch.hub writes to a temporary name beside `path`, checks the hash, then renames:
        # a cut-off or corrupted download never leaves a file at `path`
        download_url_to_file(url, str(path), hash_prefix=sha256, progress=False)
    except (URLError, OSError, RuntimeError) as err:
        raise InputError(
            f"could not download {url} to {path} ({err}); copy the file there by hand, "
            f"or train on a local CSV with data.path=/path/to/file.csv"
        ) from None
    return path
