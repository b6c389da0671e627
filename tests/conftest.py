"""Shared fixtures: the real dataset, composed configs and the real CLI."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from sklearn.model_selection import train_test_split
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# a few epochs and quiet output: enough to exercise the whole pipeline
FAST = ["trainer.max_epochs=3", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def compose_config(overrides: list[str], output_dir: Path):
    """The config ``python -m pima_lightning.train`` would see, writing to ``output_dir``."""
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        return compose("config", overrides=[f"output_dir={output_dir}", *overrides])


def run_cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` as a user would, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def make_config(tmp_path):
    """``make_config(*overrides)``: a composed config whose run writes to ``tmp_path``."""
    return lambda *overrides: compose_config(list(overrides), tmp_path)


@pytest.fixture
def fast() -> list[str]:
    """Overrides for a short, quiet training run."""
    return list(FAST)


@pytest.fixture
def cli(tmp_path):
    """``cli(module, *overrides, run_dir=None)``: ``python -m pima_lightning.<module>``, in tmp_path."""

    def run(module: str, *overrides: str, run_dir=None) -> subprocess.CompletedProcess:
        hydra_dir = [f"hydra.run.dir={run_dir}"] if run_dir else []
        return run_cli(f"pima_lightning.{module}", *overrides, *hydra_dir, cwd=tmp_path)

    return run


@pytest.fixture
def train_cli(cli):
    """``train_cli(*overrides, run_dir=None)``: the real ``python -m pima_lightning.train``, in tmp_path."""
    return lambda *overrides, run_dir=None: cli("train", *overrides, run_dir=run_dir)


@pytest.fixture(scope="session")
def pima_csv(tmp_path_factory) -> Path:
    """The real dataset, where the default config finds it (downloaded and verified if missing)."""
    datamodule = instantiate(compose_config([], tmp_path_factory.mktemp("unused")).data)
    datamodule.prepare_data()
    return datamodule.csv_path


@pytest.fixture(scope="session")
def notebook_split(pima_csv):
    """The notebook's own ``X_train, X_test, y_train, y_test``, computed as the notebook computes them."""
    dataset = np.loadtxt(pima_csv, delimiter=",")
    return train_test_split(dataset[:, 0:8], dataset[:, 8], test_size=0.33, random_state=7)


def predicted_probabilities(model, rows) -> np.ndarray:
    """P(class 1) of raw feature rows, as ``trainer.predict`` computes it: the model's ``predict_step``."""
    with torch.no_grad():
        return model.eval().predict_step(torch.as_tensor(rows, dtype=torch.float32), 0).numpy()


@pytest.fixture
def read_scalars():
    """``read_scalars(run_dir)``: every scalar series in the run's TensorBoard event files, by tag."""

    def read(run_dir: Path) -> dict[str, list[float]]:
        events = EventAccumulator(str(run_dir / "tensorboard"))
        events.Reload()
        return {tag: [event.value for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    return read


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, read from /proc (the workers a signal must end with their parent)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # a process that ended while listed
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def peak_memory_of(reader: str, path) -> tuple[str, int]:
    """``reader(path)``'s error (or ``loaded``) and how far (MiB) it raised the peak resident memory of a
    process that had already imported it (so the figure does not depend on the imports' size). ``reader``:
    ``module:function``, e.g. ``pima_lightning.inputs.checkpoint:load_checkpoint``."""
    module, function = reader.split(":")
    code = (
        f"import resource, sys\nfrom {module} import {function} as read\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    read(sys.argv[1])\n    print('loaded')\nexcept ValueError as err:\n    print(err)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    message, peak = result.stdout.strip().rsplit("\n", 1)
    return message, int(peak)
