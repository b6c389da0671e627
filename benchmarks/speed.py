"""Speed: pima_lightning's default run against a hand-written PyTorch loop doing the same work.

    python benchmarks/speed.py [--repeats 3]

Alternates them, ``--repeats`` times each, and prints the median times and their ratios against the
targets of issue 11 (idiomatic Lightning: a Lightning step per minibatch):
- fit: the 150-epoch fit alone (``fit_time_s`` in metrics.json against benchmarks/plain_loop.py's loop),
  target <= 2.0;
- process: the whole ``python -m pima_lightning.train`` process against ``python benchmarks/plain_loop.py``,
  imports, data loading, test and (for pima_lightning) logs, checkpoints and pictures included, target <= 1.8;
- replicas: the fit of ``model.replicas=32`` (32 models at once) against the default run's (one model),
  target <= 1.5;
- Lightning's floor: benchmarks/lightning_floor.py, the plain loop's work as a bare ``LightningModule`` on
  ``Trainer(barebones=True)``, against the plain loop: what Lightning's own loop costs before anything
  this package adds (its callbacks, logger, metrics and validation).
Both use torch's default thread count (pima_lightning with torch_threads=null); run it on an otherwise idle
machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.utils import instantiate

HERE = Path(__file__).resolve().parent


def dataset_path() -> Path:
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        datamodule = instantiate(compose("config").data)
    datamodule.prepare_data()
    return datamodule.csv_path


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, result.stdout


def train(*overrides: str) -> tuple[float, float]:
    """``python -m pima_lightning.train`` without a progress bar: (process seconds, fit seconds)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            "-m",
            "pima_lightning.train",
            "trainer.enable_progress_bar=false",
            "torch_threads=null",  # torch's default, as the plain loop uses
            f"hydra.run.dir={run_dir}",
        ]
        seconds, _ = timed([sys.executable, *command, *overrides])
        return seconds, json.loads((Path(run_dir) / "metrics.json").read_text())["fit_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()
    csv_path = dataset_path()
    times: dict[str, list[float]] = {
        "lightning fit": [],
        "plain fit": [],
        "lightning process": [],
        "plain process": [],
        "32 replicas fit": [],
        "bare lightning fit": [],
    }
    for repeat in range(args.repeats):
        seconds, fit_seconds = train()
        times["lightning process"].append(seconds)
        times["lightning fit"].append(fit_seconds)
        times["32 replicas fit"].append(train("model.replicas=32")[1])
        seconds, output = timed([sys.executable, str(HERE / "plain_loop.py"), str(csv_path)])
        times["plain process"].append(seconds)
        times["plain fit"].append(float(output.split("fit ")[1].split(" s")[0]))
        _, output = timed([sys.executable, str(HERE / "lightning_floor.py"), str(csv_path)])
        times["bare lightning fit"].append(float(output.split("fit ")[1].split(" s")[0]))
        print(
            f"repeat {repeat + 1}: "
            + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items()),
            file=sys.stderr,
        )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<18} median {value:6.2f} s over {args.repeats}")
    for kind, target in (("fit", 2.0), ("process", 1.8)):
        ratio = medians[f"lightning {kind}"] / medians[f"plain {kind}"]
        print(f"{kind} ratio lightning / plain = {ratio:.2f} (target <= {target})")
    ratio = medians["32 replicas fit"] / medians["lightning fit"]
    print(f"fit ratio 32 replicas / 1 = {ratio:.2f} (target <= 1.5)")
    ratio = medians["bare lightning fit"] / medians["plain fit"]
    print(f"fit ratio bare lightning / plain = {ratio:.2f} (Lightning's own floor)")
    ratio = medians["lightning fit"] / medians["bare lightning fit"]
    print(f"fit ratio lightning / bare lightning = {ratio:.2f} (what this package adds)")


if __name__ == "__main__":
    main()
