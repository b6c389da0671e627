"""Memory and time of reading a large CSV: ``read_labelled_csv`` on the real CSV repeated ``--copies`` times.

    python benchmarks/csv_memory.py [--copies 9000]

9000 copies are 6.9M rows, 210 MB. Each reader runs in a fresh process that reports its peak
resident memory above what it held before reading (``ru_maxrss`` against ``VmRSS``), divided by
the table's float32 size (rows x 9 x 4 bytes; target of issue 12: <= 3), and the seconds it took:
- ``read_labelled_csv``: pandas' parser, then the whole-table checks (the path every good file takes);
- ``line by line``: the Python parser alone (the path a bad file takes to name its line);
- ``pd.read_csv`` and ``np.loadtxt``: each library alone on the path, into one float64 array.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.utils import instantiate

READERS = {
    "read_labelled_csv": (
        "from pima_lightning.inputs.csvfile import read_labelled_csv; table = read_labelled_csv(PATH)[0]"
    ),
    "line by line": (
        "from pima_lightning.inputs import csvfile; "
        "table = csvfile._parsed_line_by_line(PATH, 'data.path', csvfile.Columns(None, -1, None, ''), None)"
    ),
    "pd.read_csv": "import pandas as pd; table = pd.read_csv(PATH, header=None, dtype=float).to_numpy()",
    "np.loadtxt": "import numpy as np; table = np.loadtxt(PATH, delimiter=',')",
}
MEASURE = """
import resource, time
from pathlib import Path
import numpy as np
import pima_lightning.inputs.csvfile
PATH = Path({path!r})
before = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
started = time.perf_counter()
{read}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(len(table), peak - before, seconds)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=9000, help="copies of the 768-row CSV")
    args = parser.parse_args()
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        datamodule = instantiate(compose("config").data)
    datamodule.prepare_data()
    text = datamodule.csv_path.read_text()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.csv"
        with path.open("w") as handle:
            for _ in range(args.copies):
                handle.write(text if text.endswith("\n") else text + "\n")
        print(f"{path.stat().st_size / 2**20:.0f} MiB, {768 * args.copies:,} rows")
        for name, read in READERS.items():
            code = MEASURE.format(path=str(path), read=read)
            rows, extra_mib, seconds = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
            float32_mib = int(rows) * 9 * 4 / 2**20
            print(
                f"{name:>14}: {float(seconds):5.1f} s, peak +{float(extra_mib):.0f} MiB = "
                f"{float(extra_mib) / float32_mib:.2f}x the float32 table "
                f"({float32_mib:.0f} MiB; target <= 3)"
            )


if __name__ == "__main__":
    main()
