"""Speed: pima_lightning's default run against the barest Lightning doing the same work.

    python benchmarks/speed.py [--repeats 3]

Alternates them, ``--repeats`` times each, one torch thread on every side (pima_lightning's default
``torch_threads=1``; ``OMP_NUM_THREADS=1`` for the scripts), and prints the medians and two ratios
against each target: of the medians, and the median of each repeat's own ratio (its two runs ran
minutes apart at most, so the machine's drift between repeats cancels out):
- fit: the 150-epoch fit alone (``fit_time_s`` in metrics.json) against benchmarks/lightning_floor.py's
  fit, the same work as a bare ``LightningModule`` (training and validation steps, ``configure_optimizers``)
  on ``Trainer(barebones=True)`` with a stock ``DataLoader``, validating every epoch; target <= 1.15;
- process: the whole ``python -m pima_lightning.train`` process against the whole lightning_floor.py
  process, imports and data loading included (pima_lightning also tests, draws and writes its logs,
  checkpoints and pictures); target <= 1.2;
- replicas: the fit of ``model.replicas=32`` (32 models at once) against the default run's; target <= 1.5;
- for reference, Lightning's floor: lightning_floor.py's fit against benchmarks/plain_loop.py's, a
  hand-written PyTorch loop doing the same work (its whole process is printed too).
Run it on an otherwise idle machine.
"""

import argparse
import json
import os
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
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # pima_lightning sets its own torch_threads=1
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=one_thread)
    return time.perf_counter() - started, result.stdout


def train(*overrides: str) -> tuple[float, float]:
    """``python -m pima_lightning.train`` without a progress bar: (process seconds, fit seconds)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            "-m",
            "pima_lightning.train",
            "trainer.enable_progress_bar=false",
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
        "bare lightning fit": [],
        "lightning process": [],
        "bare lightning process": [],
        "32 replicas fit": [],
        "plain fit": [],
        "plain process": [],
    }
    for repeat in range(args.repeats):
        seconds, fit_seconds = train()
        times["lightning process"].append(seconds)
        times["lightning fit"].append(fit_seconds)
        seconds, output = timed([sys.executable, str(HERE / "lightning_floor.py"), str(csv_path)])
        times["bare lightning process"].append(seconds)
        times["bare lightning fit"].append(float(output.split("fit ")[1].split(" s")[0]))
        times["32 replicas fit"].append(train("model.replicas=32")[1])
        seconds, output = timed([sys.executable, str(HERE / "plain_loop.py"), str(csv_path)])
        times["plain process"].append(seconds)
        times["plain fit"].append(float(output.split("fit ")[1].split(" s")[0]))
        print(
            f"repeat {repeat + 1}: "
            + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items()),
            file=sys.stderr,
        )
    for name, values in times.items():
        print(f"{name:<22} median {statistics.median(values):6.2f} s over {args.repeats}")
    for title, numerator, denominator, target in (
        ("fit ratio pima_lightning / bare lightning", "lightning fit", "bare lightning fit", "<= 1.15"),
        (
            "process ratio pima_lightning / bare lightning",
            "lightning process",
            "bare lightning process",
            "<= 1.2",
        ),
        ("fit ratio 32 replicas / 1", "32 replicas fit", "lightning fit", "<= 1.5"),
        ("fit ratio bare lightning / plain loop", "bare lightning fit", "plain fit", "Lightning's own floor"),
    ):
        of_medians = statistics.median(times[numerator]) / statistics.median(times[denominator])
        paired = statistics.median([a / b for a, b in zip(times[numerator], times[denominator], strict=True)])
        print(f"{title} = {of_medians:.2f} of medians, {paired:.2f} by repeats ({target})")


if __name__ == "__main__":
    main()
