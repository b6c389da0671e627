"""Members of one run against ordinary runs: cross-validation and one tune trial.

    python benchmarks/members.py [--folds 10] [--epochs 150]

Prints the times, the ratios and the targets of issue 20, one torch thread everywhere (the default
``torch_threads=1``):
- cv: ``python -m pima_lightning.cv`` (every fold a member of one run) against the same folds trained
  one after another as ordinary runs (``cv.engine=runs cv.jobs=1``), whole processes, baselines off;
  target <= 0.2, with the network's mean accuracy within 1.5 points of theirs; and for reference
  against a hand-written PyTorch loop doing the same folds one by one (``benchmarks/plain_loop.py``);
- trial: one tune trial's run (5 folds x 3 seeds = 15 members of the split's 514 training rows,
  validated every epoch) against one plain training run of the same epochs (``fit_time_s``); target <= 2.
Run it on an otherwise idle machine.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from pima_lightning.ensembles.fitting import fit_members
from pima_lightning.ensembles.folds import fold_overrides, fold_rows
from pima_lightning.ensembles.members import members_of

HERE = Path(__file__).resolve().parent


def cv_process(*overrides: str) -> tuple[float, float]:
    """``python -m pima_lightning.cv cv.baselines=false <overrides>``: (seconds, network mean accuracy)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            sys.executable,
            "-m",
            "pima_lightning.cv",
            "cv.baselines=false",
            f"hydra.run.dir={run_dir}",
        ]
        started = time.perf_counter()
        subprocess.run([*command, *overrides], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        summary = json.loads((Path(run_dir) / "cv.json").read_text())["summary"]
        return seconds, summary["methods"]["network"]["acc"]["mean"]


def plain_loop_cv(folds: int, epochs: int) -> tuple[float, float]:
    """``benchmarks/plain_loop.py CSV FOLDS EPOCHS``, the same folds trained one by one in a hand-written
    loop, as a whole process: (seconds, mean accuracy)."""
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        datamodule = instantiate(compose("config").data)
    datamodule.prepare_data()
    command = [sys.executable, str(HERE / "plain_loop.py"), str(datamodule.csv_path), str(folds), str(epochs)]
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - started, float(output.split("accuracy ")[1])


def plain_fit(epochs: int) -> float:
    """One ordinary ``python -m pima_lightning.train`` run's fit, in seconds (``fit_time_s``)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [sys.executable, "-m", "pima_lightning.train", "trainer.enable_progress_bar=false"]
        command += [f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}"]
        subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads((Path(run_dir) / "metrics.json").read_text())["fit_time_s"]


def trial_fit(epochs: int, folds: int = 5, seeds: int = 3) -> float:
    """A tune trial's members run (fit, validation every epoch, the final scoring), in seconds."""
    with (
        initialize_config_module("pima_lightning.conf", version_base="1.3"),
        tempfile.TemporaryDirectory() as out,
    ):
        overrides = ["trainer.enable_progress_bar=false", f"trainer.max_epochs={epochs}", f"output_dir={out}"]
        cfg = compose("config", overrides=[*overrides, *fold_overrides(folds, 0, 0, "train")])
        rows = fold_rows(cfg)
        members = members_of([rows.splits], [cfg.seed + offset for offset in range(seeds)])
        started = time.perf_counter()
        fit_members(cfg, rows.features, rows.labels, members, Path(out), validate=True, classes=rows.classes)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    common = [f"cv.folds={args.folds}", f"trainer.max_epochs={args.epochs}"]
    members_s, members_acc = cv_process(*common)
    runs_s, runs_acc = cv_process(*common, "cv.engine=runs", "cv.jobs=1")
    print(
        f"cv, {args.folds} folds x {args.epochs} epochs: members {members_s:.1f} s, "
        f"runs one after another {runs_s:.1f} s"
    )
    print(f"  ratio {members_s / runs_s:.3f} (target <= 0.2)")
    loop_s, loop_acc = plain_loop_cv(args.folds, args.epochs)
    print(
        f"  a plain PyTorch loop, the folds one by one (benchmarks/plain_loop.py): {loop_s:.1f} s, "
        f"accuracy {loop_acc:.4f}; cv members / plain loop {members_s / loop_s:.3f}"
    )
    print(
        f"  network accuracy: members {members_acc:.4f}, runs {runs_acc:.4f}, "
        f"difference {100 * (members_acc - runs_acc):+.2f} points (target within 1.5)"
    )
    trial_s, plain_s = trial_fit(args.epochs), plain_fit(args.epochs)
    print(
        f"tune trial, 5 folds x 3 seeds x {args.epochs} epochs: {trial_s:.1f} s; "
        f"one plain run's fit {plain_s:.1f} s"
    )
    print(f"  ratio {trial_s / plain_s:.3f} (target <= 2)")


if __name__ == "__main__":
    main()
