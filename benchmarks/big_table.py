"""An epoch on bigger tables: pima_lightning, bare Lightning and a plain loop, 200,000 rows, batch 256.

The tables are made deterministically from the Pima rows, resampled with replacement to 200,000, each
value plus Gaussian noise of 5% of its column's spread (seed 0), labels kept; written once as CSVs:
- numeric: the 8 features;
- mixed: the same rows with Pima's zeros in glucose, blood pressure, skin, insulin and BMI as blank cells
  (missing values), plus a text column ``site`` of 6 values (seed 1): what pima_lightning reads as 5
  missing-value indicators and a category of 7 inputs (6 seen, 1 for any other), 20 inputs in all.

Every contender does the same work: the 67/33 split (seed 7), the inputs standardised with training-row
statistics, the notebook's network and SGD, 5 epochs of 256-row minibatches reshuffled every epoch,
validation on the 66,000 held-out rows after each.

- pima_lightning: ``python -m pima_lightning.train``'s ``train()`` with ``data.path=<the table>
  data.batch_size=256 trainer.max_epochs=5 test=false``, timed by its ``metrics.json``'s ``fit_time_s``
  (not the CSV read). Its model fills, one-hot encodes and standardises every minibatch itself (the
  steps travel in its checkpoint, so it predicts from raw rows).
- bare Lightning: ``benchmarks/lightning_floor.py``'s module on ``Trainer(barebones=True)``, batches taken
  by one index operation on in-memory tensors (a ``BatchSampler`` over the row indices, the dataset
  indexed once per batch), validation in one batch: the best idiomatic in-memory loading. The mixed table
  is encoded once beforehand with scikit-learn (median ``SimpleImputer`` with indicators, ``OneHotEncoder``,
  ``StandardScaler``: 19 inputs).
- plain loop: ``benchmarks/plain_loop.py``'s ``fit`` on the same tensors.
- many models: ``model.replicas=8`` (8 networks trained at once on the numeric table, each on its own
  shuffled minibatches) against 8 bare-Lightning fits one after another, counted as 8 times its measured
  epoch.

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
import pandas as pd
import torch
from lightning_floor import BareClassifier
from plain_loop import fit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

ROWS, BATCH, EPOCHS, REPLICAS = 200_000, 256, 5, 8
ROOT = Path(__file__).resolve().parents[1]
NAMES = ["pregnancies", "glucose", "blood_pressure", "skin", "insulin", "bmi", "pedigree", "age"]
ZEROS_MISSING = ["glucose", "blood_pressure", "skin", "insulin", "bmi"]  # a 0 there is a value not taken
SITES = ["north", "south", "east", "west", "centre", "coast"]


def make_tables(pima_csv: Path, folder: Path) -> dict[str, Path]:
    """The numeric and the mixed table (see the module's docstring), as CSV files in ``folder``."""
    pima = np.loadtxt(pima_csv, delimiter=",")
    rng = np.random.default_rng(0)
    rows = pima[rng.integers(0, len(pima), ROWS)]
    zero = rows[:, :8] == 0
    rows[:, :8] += rng.normal(0, 1, (ROWS, 8)) * 0.05 * pima[:, :8].std(axis=0)
    numeric = folder / "numeric.csv"
    np.savetxt(numeric, rows, delimiter=",", fmt=["%.4f"] * 8 + ["%d"])
    frame = pd.DataFrame(rows[:, :8], columns=NAMES)
    for column in ZEROS_MISSING:
        frame.loc[zero[:, NAMES.index(column)], column] = np.nan
    frame["site"] = np.random.default_rng(1).choice(SITES, ROWS)
    frame["outcome"] = rows[:, 8].astype(int)
    mixed = folder / "mixed.csv"
    frame.to_csv(mixed, index=False, float_format="%.4f")
    return {"numeric": numeric, "mixed": mixed}


class Batches(Dataset):
    """In-memory rows whose item is a whole batch: ``dataset[indices]`` indexes each tensor once."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices):
        return tuple(tensor[indices] for tensor in self.tensors)


def encoded(path: Path) -> list[torch.Tensor]:
    """The table's split, encoded once with scikit-learn, as (x_train, y_train, x_test, y_test)."""
    frame = pd.read_csv(path, header=None if path.stem == "numeric" else "infer")
    features, labels = frame.iloc[:, :-1], frame.iloc[:, -1].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.33, random_state=7)
    numbers = [column for column in features if column != "site"]
    columns = ColumnTransformer(
        [("numbers", SimpleImputer(strategy="median", add_indicator=True), numbers)]
        + ([("site", OneHotEncoder(handle_unknown="ignore"), ["site"])] if "site" in features else [])
    )
    steps = make_pipeline(columns, StandardScaler())
    x_train, x_test = steps.fit_transform(x_train), steps.transform(x_test)
    return [torch.as_tensor(a, dtype=torch.float32) for a in (x_train, y_train, x_test, y_test)]


def bare_lightning(rows) -> float:
    x_train, y_train, x_test, y_test = rows
    torch.manual_seed(7)
    train = Batches(x_train, y_train)
    batches = BatchSampler(RandomSampler(train), BATCH, drop_last=False)
    train_rows = DataLoader(train, sampler=batches, batch_size=None)
    held_out = DataLoader(Batches(x_test, y_test), sampler=[slice(None)], batch_size=None)
    trainer = L.Trainer(barebones=True, max_epochs=EPOCHS, accelerator="cpu", devices=1)
    started = time.perf_counter()
    trainer.fit(BareClassifier(x_train.shape[1]), train_rows, held_out)
    return (time.perf_counter() - started) / EPOCHS


def plain_loop(rows) -> float:
    _, seconds = fit(*rows, epochs=EPOCHS, batch_size=BATCH)
    return seconds / EPOCHS


def pima_lightning(path: Path, output_dir: Path, *overrides: str) -> float:
    from hydra import compose, initialize_config_module

    from pima_lightning.train import train

    overrides = [f"data.path={path}", f"data.batch_size={BATCH}", f"trainer.max_epochs={EPOCHS}",
                 "trainer.enable_progress_bar=false", "test=false", f"output_dir={output_dir}",
                 *overrides]  # fmt: skip
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
        tables = make_tables(Path(args.pima), Path(folder))
        rows = {name: encoded(path) for name, path in tables.items()}
        times: dict[str, list[float]] = {}
        for repeat in range(args.repeats):
            runs = Path(folder) / f"repeat{repeat}"
            for name, path in tables.items():
                times.setdefault(f"{name}: pima_lightning", []).append(pima_lightning(path, runs / name))
                times.setdefault(f"{name}: bare Lightning", []).append(bare_lightning(rows[name]))
                times.setdefault(f"{name}: plain loop", []).append(plain_loop(rows[name]))
            replicas = pima_lightning(tables["numeric"], runs / "replicas", f"model.replicas={REPLICAS}")
            times.setdefault(f"{REPLICAS} models: pima_lightning", []).append(replicas)
            print(f"repeat {repeat}: " + ", ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items()))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"seconds an epoch ({ROWS:,} rows, batch {BATCH}, {EPOCHS} epochs, medians of {args.repeats}):")
    for name, seconds in median.items():
        print(f"  {name:<32} {seconds:6.2f}")
    for name in tables:
        ratio = median[f"{name}: pima_lightning"] / median[f"{name}: bare Lightning"]
        floor = median[f"{name}: bare Lightning"] / median[f"{name}: plain loop"]
        print(f"{name}: pima_lightning / bare Lightning {ratio:.2f} (target <= 1.2); "
              f"bare Lightning / plain loop {floor:.2f}")  # fmt: skip
    one_by_one = REPLICAS * median["numeric: bare Lightning"]
    ratio = median[f"{REPLICAS} models: pima_lightning"] / one_by_one
    print(f"{REPLICAS} models: model.replicas={REPLICAS} / {REPLICAS} bare Lightning fits one after another "
          f"({one_by_one:.2f} s) {ratio:.2f} (target <= 1.2)")  # fmt: skip
