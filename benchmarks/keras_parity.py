"""Keras parity: train each notebook preset over several seeds and print mean ± std of its metrics.

    python benchmarks/keras_parity.py                 # every preset and the default run, seeds 0-4
    python benchmarks/keras_parity.py --seeds 10 --configs default recommended

Runs in-process through Hydra's compose API (the same configs as the CLI), one run after another,
each writing to a temporary directory. The last column repeats the figures measured with Keras 3 /
TensorFlow 2.21 on the same split (5 seeds) where such a measurement exists.
"""

import argparse
import statistics
import sys
import tempfile
import time

from hydra import compose, initialize_config_module

from pima_lightning.train import train

CONFIGS = {
    # name: (overrides, what the test metrics are measured on, Keras figure)
    "default": ([], "254 held-out rows", "75.0% ± 1.7% (SGD, standardised)"),
    "fit_all": (["experiment=fit_all"], "the 768 training rows", "-"),
    "fit_all_adam": (["experiment=fit_all_adam"], "the 768 training rows", "-"),
    "validation_split": (["experiment=validation_split"], "last 254 rows", "-"),
    "validation_data": (["experiment=validation_data"], "254 held-out rows", "63.8% ± 0.0% (raw features)"),
    "recommended": (["experiment=recommended"], "254 held-out rows", "-"),
}


def run(overrides: list[str], seed: int, output_dir: str) -> dict[str, float]:
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                f"seed={seed}",
                f"output_dir={output_dir}",
                "trainer.enable_progress_bar=false",
                "torch_threads=null",  # torch's default (2 here), as these figures were measured
            ],
        )
    return train(cfg)


def mean_std(values: list[float], percent: bool = False) -> str:
    mean, spread = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f}% ± {100 * spread:.1f}%" if percent else f"{mean:.3f} ± {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per config (default 5)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=150, help="trainer.max_epochs (default 150)")
    args = parser.parse_args()

    rows = []
    for name in args.configs:
        overrides, measured_on, keras = CONFIGS[name]
        results = []
        for seed in range(args.seeds):
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as output_dir:
                metrics = run([*overrides, f"trainer.max_epochs={args.epochs}"], seed, output_dir)
            results.append(metrics)
            print(
                f"{name} seed {seed}: acc {metrics['test/acc']:.4f} auroc {metrics['test/auroc']:.4f} "
                f"({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
            )
        accuracy = mean_std([m["test/acc"] for m in results], percent=True)
        auroc = mean_std([m["test/auroc"] for m in results])
        rows.append((name, measured_on, str(len(results)), accuracy, auroc, keras))

    header = ("config", "metrics on", "seeds", "accuracy", "AUROC", "Keras accuracy (measured)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
