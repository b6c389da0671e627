"""How long a CSV of nothing but blank lines takes to refuse, against reading a real CSV of the same size.

    python benchmarks/blank_lines.py [--megabytes 20]

Prints the seconds each takes and their ratio. Before ``_check_not_blank`` a 20 MB file of newlines
took 31 s to refuse (issue 18, row 18): three passes of Python over 20 million lines.
"""

import argparse
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from pima_lightning.errors import InputError
from pima_lightning.inputs.csvfile import read_labelled_csv


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def refuse(path: Path) -> None:
    try:
        read_labelled_csv(path)
    except InputError:
        return
    raise AssertionError(f"{path} was read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=20)
    size = parser.parse_args().megabytes << 20
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        datamodule = instantiate(compose("config").data)
    datamodule.prepare_data()
    real = datamodule.csv_path.read_bytes().rstrip(b"\n") + b"\n"  # whole lines when repeated
    with tempfile.TemporaryDirectory() as folder:
        blank, table = Path(folder) / "blank.csv", Path(folder) / "table.csv"
        blank.write_bytes(b"\n" * size)
        table.write_bytes(real * (size // len(real)))
        refused, read = seconds(lambda: refuse(blank)), seconds(lambda: read_labelled_csv(table))
    print(
        f"{size >> 20} MB of blank lines refused in {refused:.3f} s; "
        f"the real CSV, as large, read in {read:.2f} s"
    )
    print(f"ratio refuse / read: {refused / read:.4f}")


if __name__ == "__main__":
    main()
