"""An epoch on a bigger table: pima_lightning, bare Lightning and a plain loop, 200,000 rows, batch 256.

The table is made deterministically: the Pima rows resampled with replacement to 200,000, each value plus
Gaussian noise of 5% of its column's spread (seed 0), labels kept; written once as a CSV. Every contender
does the same work: the 67/33 split (seed 7), standardised features, the notebook's network and SGD, 5
epochs of 256-row minibatches reshuffled every epoch, validation on the 66,000 held-out rows after each.

- pima_lightning: ``python -m pima_lightning.train``'s ``train()`` with ``data.path=<the table>
  data.batch_size=256 trainer.max_epochs=5 test=false``, timed by its ``metrics.json``'s ``fit_time_s``
  (so not the CSV read).
- bare Lightning: ``benchmarks/lightning_floor.py``'s module on ``Trainer(barebones=True)``, batches taken
  by one index operation on in-memory tensors (a ``BatchSampler`` over the row indices, the dataset
  indexed once per batch), validation in one batch: the best idiomatic in-memory loading.
- plain loop: ``benchmarks/plain_loop.py``'s ``fit``.

Contenders alternate, ``--repeats`` times each, one torch thread; the medians' seconds an epoch and the
ratios are printed. ``python benchmarks/big_table.py --repeats 3``.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning_floor import BareClassifier
from plain_loop import fit
from sklearn.model_selection import train_test_split
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

ROWS, BATCH, EPOCHS = 200_000, 256, 5
ROOT = Path(__file__).resolve().parents[1]


def make_table(pima_csv: Path, path: Path) -> None:
    """The Pima rows resampled to ``ROWS`` with noise of 5% of each column's spread (seed 0)."""
    pima = np.loadtxt(pima_csv, delimiter=",")
    rng = np.random.default_rng(0)
    rows = pima[rng.integers(0, len(pima), ROWS)]
    rows[:, :8] += rng.normal(0, 1, (ROWS, 8)) * 0.05 * pima[:, :8].std(axis=0)
    np.savetxt(path, rows, delimiter=",", fmt=["%.4f"] * 8 + ["%d"])


class Batches(Dataset):
    """In-memory rows whose item is a whole batch: ``dataset[indices]`` indexes each tensor once."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices):
        return tuple(tensor[indices] for tensor in self.tensors)


def split(path: Path):
    table = np.loadtxt(path, delimiter=",")
    x_train, x_test, y_train, y_test = train_test_split(
        table[:, :8], table[:, 8], test_size=0.33, random_state=7
    )
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    return [
        torch.as_tensor(a, dtype=torch.float32)
        for a in ((x_train - mean) / scale, y_train, (x_test - mean) / scale, y_test)
    ]


def bare_lightning(rows) -> float:
    x_train, y_train, x_test, y_test = rows
    torch.manual_seed(7)
    train = Batches(x_train, y_train)
    batches = BatchSampler(RandomSampler(train), BATCH, drop_last=False)
    train_rows = DataLoader(train, sampler=batches, batch_size=None)
    held_out = DataLoader(Batches(x_test, y_test), sampler=[slice(None)], batch_size=None)
    trainer = L.Trainer(barebones=True, max_epochs=EPOCHS, accelerator="cpu", devices=1)
    started = time.perf_counter()
    trainer.fit(BareClassifier(), train_rows, held_out)
    return (time.perf_counter() - started) / EPOCHS


def plain_loop(rows) -> float:
    _, seconds = fit(*rows, epochs=EPOCHS, batch_size=BATCH)
    return seconds / EPOCHS


def pima_lightning(path: Path, output_dir: Path) -> float:
    from hydra import compose, initialize_config_module

    from pima_lightning.train import train

    overrides = [f"data.path={path}", f"data.batch_size={BATCH}", f"trainer.max_epochs={EPOCHS}",
                 "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "test=false",
                 f"output_dir={output_dir}"]  # fmt: skip
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    train(cfg)
    return json.loads((output_dir / "metrics.json").read_text())["fit_time_s"] / EPOCHS


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--pima", default=str(Path.home() / ".cache/pima_lightning/pima-indians-diabetes.csv")
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "big.csv"
        make_table(Path(args.pima), table)
        rows = split(table)
        times: dict[str, list[float]] = {"pima_lightning": [], "bare Lightning": [], "plain loop": []}
        for repeat in range(args.repeats):
            times["pima_lightning"].append(pima_lightning(table, Path(folder) / f"run{repeat}"))
            times["bare Lightning"].append(bare_lightning(rows))
            times["plain loop"].append(plain_loop(rows))
            print(f"repeat {repeat}: " + ", ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items()))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"seconds an epoch ({ROWS:,} rows x 8, batch {BATCH}, {EPOCHS} epochs, medians of {args.repeats}):")
    for name, seconds in median.items():
        print(f"  {name:<15} {seconds:6.2f}")
    print(f"pima_lightning / bare Lightning: {median['pima_lightning'] / median['bare Lightning']:.2f} "
          "(target <= 1.2)")  # fmt: skip
    print(f"bare Lightning / plain loop:    {median['bare Lightning'] / median['plain loop']:.2f}")
