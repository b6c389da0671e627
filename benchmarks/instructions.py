"""Instructions an epoch: the notebook run's fit against bare Lightning's, counted, not timed.

    python benchmarks/instructions.py [--epochs 2 5]

Seconds on a shared machine drift by more than the differences being measured (docs/speed.md);
instruction counts do not. Under valgrind's callgrind, each contender fits the notebook's network for
E1 and then for E2 epochs in one process, counted only inside ``Trainer.fit``, and
``(count(E2) - count(E1)) / (E2 - E1)`` is one epoch's instructions without the fit's set-up:
- bare Lightning: benchmarks/lightning_floor.py's ``fit`` (``Trainer(barebones=True)``, a stock
  ``DataLoader``, no logging), the floor speed.py times;
- pima_lightning: ``train()`` of the default config (what ``python -m pima_lightning.train`` runs) with
  the test left out, its ``trainer.fit`` counted: the callbacks, TensorBoard, six validation scores and
  the model's input steps included. Its checkpoint every 10 epochs is not (fewer epochs than that are
  counted; writing one takes about 3 ms).
It prints both and their ratio against the fit target (<= 1.15). Instructions are not seconds (a
cache miss costs more than an add, and waiting costs none): the target is speed.py's, whose ratio has
read higher than this one (1.35 and 1.42 against 1.161 on the same commit, docs/speed.md). Needs
valgrind and a C compiler with valgrind's headers (Debian: valgrind, gcc); takes about five minutes.
"""

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = ("bare_lightning", "pima_lightning")
# the client requests that count only inside Trainer.fit: zero, count, stop, dump under a name
TOGGLES = r"""
#include <valgrind/callgrind.h>
void count_from_here(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_until_here(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""


def build_toggles(folder: Path) -> Path:
    source, library = folder / "toggles.c", folder / "libtoggles.so"
    source.write_text(TOGGLES)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def count_fits(library: str, dump_name: dict[str, str]) -> None:
    """Count the instructions of every ``Trainer.fit`` in this process, each dumped under
    ``dump_name["now"]``."""
    import lightning as L

    toggles = ctypes.CDLL(library)
    fit = L.Trainer.fit

    def counted_fit(trainer, *args, **kwargs):
        toggles.count_from_here()
        try:
            return fit(trainer, *args, **kwargs)
        finally:
            toggles.count_until_here(dump_name["now"].encode())

    L.Trainer.fit = counted_fit


def fit_pima_lightning(csv_path: str, epochs: int, output_dir: str) -> None:
    from hydra import compose, initialize_config_module

    from pima_lightning.runs.training import train

    overrides = [f"data.path={csv_path}", f"trainer.max_epochs={epochs}", "test=false"]
    overrides += [f"output_dir={Path(output_dir) / f'run{epochs}'}", "trainer.enable_progress_bar=false"]
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        train(compose("config", overrides=overrides))


def inner(contender: str, csv_path: str, epochs: list[int], library: str) -> None:
    """Under callgrind: a warm-up fit of one epoch (not used), then the counted ones."""
    import logging

    import torch

    sys.path.insert(0, str(HERE))
    from lightning_floor import fit as fit_bare_lightning

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    dump_name = {}
    count_fits(library, dump_name)
    with tempfile.TemporaryDirectory() as output_dir:
        for n, name in ((1, "warm-up"), *((n, f"{contender}@{n}") for n in epochs)):
            dump_name["now"] = name
            if contender == "bare_lightning":
                fit_bare_lightning(csv_path, n)
            else:
                fit_pima_lightning(csv_path, n, output_dir)


def dumped_counts(folder: Path) -> dict[str, int]:
    """``{label@epochs: instructions}`` from callgrind's dumps in ``folder``."""
    counts = {}
    for dump in folder.glob("callgrind.*"):
        text = dump.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (\S+)$", text, re.M)
        total = re.search(r"^totals: (\d+)", text, re.M)
        if label and total:
            counts[label.group(1)] = int(total.group(1))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs=2, default=[2, 5], metavar=("E1", "E2"))
    parser.add_argument("--inner", nargs=3, help=argparse.SUPPRESS)  # CONTENDER CSV LIBRARY
    args = parser.parse_args()
    if args.inner:
        contender, csv_path, library = args.inner
        inner(contender, csv_path, args.epochs, library)
        return
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"error: needs {' and '.join(missing)} (Debian: apt-get install valgrind gcc)")
    from speed import dataset_path

    csv_path = dataset_path()
    e1, e2 = args.epochs
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        library = build_toggles(folder)
        for contender in CONTENDERS:
            command = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={folder}/callgrind.{contender}.%p",
                sys.executable,
                __file__,
                "--inner",
                contender,
                str(csv_path),
                str(library),
                "--epochs",
                str(e1),
                str(e2),
            ]
            print(f"counting {contender} ({e1} and {e2} epochs) ...", file=sys.stderr)
            one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
            result = subprocess.run(command, capture_output=True, text=True, env=one_thread)
            if result.returncode:
                sys.exit(f"error: {contender} under callgrind failed:\n{result.stderr[-3000:]}")
        counts = dumped_counts(folder)
    per_epoch = {
        contender: (counts[f"{contender}@{e2}"] - counts[f"{contender}@{e1}"]) / (e2 - e1)
        for contender in CONTENDERS
    }
    for contender, count in per_epoch.items():
        print(f"{contender:<16} {count / 1e6:8.1f} M instructions an epoch")
    ratio = per_epoch["pima_lightning"] / per_epoch["bare_lightning"]
    print(f"fit ratio pima_lightning / bare lightning = {ratio:.3f} (target <= 1.15), by instructions")


if __name__ == "__main__":
    main()
