"""Write result files so that no reader ever sees a half-written one."""

import json
import os
import tempfile
from pathlib import Path


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON to a temporary file beside ``path``, then rename it into place."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        json.dump(payload, tmp, indent=2)
        tmp.write("\n")
    os.replace(tmp.name, path)
