"""What each part of a default run costs: its fit with one part taken away at a time.

    python benchmarks/parts.py [--epochs 40] [--repeats 5]

Trains the default config (through ``pima_lightning.train.train``, in this process, one torch thread)
with each variant below, alternating them ``--repeats`` times, and prints the median milliseconds an
epoch of each and its difference from the default. Run it on an otherwise idle machine.
"""

import argparse
import json
import logging
import statistics
import tempfile
import warnings
from pathlib import Path

from hydra import compose, initialize_config_module

from pima_lightning.train import train

VARIANTS = {
    "default": [],
    "callbacks=none": ["callbacks=none"],
    "logger=none": ["logger=none"],
    "no validation": ["trainer.limit_val_batches=0"],
    "deterministic=false": ["trainer.deterministic=false"],
    "all four": [
        "callbacks=none",
        "logger=none",
        "trainer.limit_val_batches=0",
        "trainer.deterministic=false",
    ],
}


def epoch_ms(overrides: list[str], epochs: int) -> float:
    """Milliseconds an epoch of the fit of the default config with ``overrides``."""
    with tempfile.TemporaryDirectory() as run_dir:
        with initialize_config_module("pima_lightning.conf", version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[
                    f"output_dir={run_dir}",
                    f"trainer.max_epochs={epochs}",
                    "trainer.enable_progress_bar=false",
                    "test=false",
                    *overrides,
                ],
            )
        train(cfg)
        return 1000 * json.loads((Path(run_dir) / "metrics.json").read_text())["fit_time_s"] / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs a fit (default 40)")
    parser.add_argument("--repeats", type=int, default=5, help="fits of each variant (default 5)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, overrides in VARIANTS.items():
            times[name].append(epoch_ms(overrides, args.epochs))
    default = statistics.median(times["default"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<20} {median:6.1f} ms an epoch ({median - default:+5.1f} ms against the default)")


if __name__ == "__main__":
    main()
