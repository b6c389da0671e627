"""Bad settings, divergence, interruption and reproducibility, through the real CLI where users meet them."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from pima_lightning.runs.exits import user_error
from pima_lightning.train import train

QUIET = ["trainer.enable_progress_bar=false"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["seed=abc"], "error: seed=abc: expected a whole number from 0 to 4294967295"),
        (["model.dropout=1"], "error: model.dropout=1: expected a probability in [0, 1)"),
    ],
    ids=["type", "range"],
)
def test_config_mistakes_fail_before_training_with_one_line(train_cli, tmp_path, overrides, expected):
    run_dir = tmp_path / "run"
    result = train_cli(*QUIET, *overrides, run_dir=run_dir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in result.stderr
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
    failure = json.loads((run_dir / "failure.json").read_text())  # the run dir says why it is empty
    assert failure["error"] == "InputError: " + expected.removeprefix("error: ")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["seed=abc"], "seed=abc: expected a whole number from 0 to 4294967295"),
        (["checkpoint_every=0"], "checkpoint_every=0: expected a whole number of epochs >= 1"),
        (["data.batch_size=0"], "data.batch_size=0: expected a whole number >= 1"),
        (["data.batch_size=1.5"], "data.batch_size=1.5: expected a whole number >= 1"),
        (["data.stratify=yes"], "data.stratify=yes: expected true or false"),
        (["data.test_size=1.2"], "data.test_size=1.2: expected a fraction in (0, 1)"),
        (["data.split=shuffle"], "data.split=shuffle: expected one of random, last, none"),
        (["model.dropout=1"], "model.dropout=1: expected a probability in [0, 1)"),
        (["model.hidden=[0]"], "model.hidden=[0]: expected a list of whole numbers >= 1, e.g. [12, 6]"),
        (["model.hidden=[-3]"], "model.hidden=[-3]: expected a list of whole numbers >= 1, e.g. [12, 6]"),
        (
            ["model.replicas=0"],
            "model.replicas=0: expected a whole number from 1 to 100000",
        ),
        (["optimizer.lr=0"], "optimizer.lr=0: expected a number in (0, 1e+30]"),
        (["optimizer.lr=-1"], "optimizer.lr=-1: expected a number in (0, 1e+30]"),
        (["optimizer.lr=1e308"], "optimizer.lr=1e+308: expected a number in (0, 1e+30]"),
        (["optimizer=adam", "optimizer.betas=[1.5,0.9]"], "): Invalid beta parameter at index 0: 1.5"),
        (["scheduler=step", "scheduler.gamma=-1"], "scheduler.gamma=-1: expected a number in (0, 1e+30]"),
        (["trainer.max_epochs=-5"], "`max_epochs` must be a non-negative integer or -1. You passed in -5."),
    ],
)
def test_values_of_the_wrong_type_or_range_are_one_line_before_training(
    make_config, tmp_path, overrides, expected
):
    """The line the CLI prints for each (``user_error``), checked in-process: a CLI start costs 5 s."""
    with pytest.raises(Exception) as raised:
        train(make_config(*QUIET, *overrides))
    assert user_error(raised.value).endswith(expected)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


def test_unknown_config_choice_names_the_valid_ones(train_cli):
    result = train_cli(*QUIET, "optimizer=rmsprop")
    assert result.returncode != 0
    # one line naming the options (Hydra's own message took 9 lines; issue 25)
    assert (
        result.stderr.strip()
        == "error: optimizer=rmsprop: conf/optimizer/ has no such option; its options: adam, sgd"
    )


def test_a_diverging_run_stops_with_the_epoch_named(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    result = train_cli(*QUIET, "optimizer.lr=1e20", "data.standardize=false", run_dir=run_dir)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: training diverged: the training loss became nan in epoch 0; lower optimizer.lr, "
        "or standardise the features (data.standardize=true)"
    )
    assert not (run_dir / "metrics.json").exists()


def test_divergence_on_standardised_features_does_not_suggest_standardising(make_config):
    with pytest.raises(Exception) as raised:
        train(make_config(*QUIET, "optimizer.momentum=2", "trainer.max_epochs=2"))
    assert user_error(raised.value).endswith("; lower optimizer.lr or optimizer.momentum (below 1)")


def test_same_seed_gives_identical_weights_other_seed_other_weights(make_config, tmp_path):
    def final_weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        train(make_config(*QUIET, "trainer.max_epochs=3", f"seed={seed}", f"output_dir={tmp_path / name}"))
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    first, again, other = final_weights(1, "a"), final_weights(1, "b"), final_weights(2, "c")
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["network.0.weight"], other["network.0.weight"])
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in "ab"]
    assert {k: v for k, v in metrics[0].items() if not k.endswith("time_s")} == {
        k: v for k, v in metrics[1].items() if not k.endswith("time_s")
    }


def loadable(checkpoint) -> bool:
    try:
        torch.load(checkpoint, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError):
        return False
    return True


def test_a_killed_run_leaves_no_results_and_resumes_to_the_uninterrupted_metrics(make_config, tmp_path):
    epochs = ["trainer.max_epochs=60", *QUIET]
    uninterrupted = train(make_config(*epochs, f"output_dir={tmp_path / 'full'}"))

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "pima_lightning.train", *epochs, f"hydra.run.dir={killed}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not loadable(checkpoint) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert not (killed / "metrics.json").exists()
    interrupted_at = torch.load(checkpoint, weights_only=True)["epoch"]
    assert interrupted_at < 59

    resumed = train(make_config(*epochs, f"ckpt_path={checkpoint}", f"output_dir={tmp_path / 'resumed'}"))
    assert resumed == uninterrupted


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_set_of_results(train_cli, make_config, tmp_path):
    run_dir = tmp_path / "ddp"
    result = train_cli(*QUIET, "trainer=ddp_cpu", "trainer.max_epochs=20", run_dir=run_dir)
    assert result.returncode == 0, result.stderr
    assert "Starting with 2 processes" in (run_dir / "train.log").read_text()
    assert (run_dir / "train_ddp_process_1.log").is_file()  # the second process really ran
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len({path.name.split(".")[-2] for path in events}) == 1  # one writing process (pid in the name)
    assert list(run_dir.glob("**/metrics.json")) == [run_dir / "metrics.json"]
    distributed = json.loads((run_dir / "metrics.json").read_text())
    single = train(make_config(*QUIET, "trainer.max_epochs=20", f"output_dir={tmp_path / 'single'}"))
    assert abs(distributed["test/acc"] - single["test/acc"]) < 0.05


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="trainer=ddp needs at least 2 CUDA GPUs")
def test_ddp_on_gpus(train_cli, tmp_path):
    result = train_cli(*QUIET, "trainer=ddp", "trainer.max_epochs=3", run_dir=tmp_path / "ddp")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ddp" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("mode", "folder", "result"),
    [([], "runs", "metrics.json"), (["-m", "seed=0"], "multirun", "0/metrics.json")],
    ids=["run", "multirun"],
)
def test_two_runs_started_together_get_their_own_dirs(tmp_path, mode, folder, result):
    command = [sys.executable, "-m", "pima_lightning.train", *mode, "trainer.max_epochs=1", *QUIET]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    assert [process.wait(timeout=300) for process in processes] == [0, 0]
    dirs = list((tmp_path / "outputs" / folder).iterdir())
    assert len(dirs) == 2
    assert all((path / result).is_file() for path in dirs)


@pytest.mark.parametrize(
    ("signal_number", "status", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_a_signal_exits_non_zero_leaves_a_resumable_checkpoint_and_says_how(
    tmp_path, signal_number, status, name
):
    run_dir = tmp_path / "run"
    epochs = ["trainer.max_epochs=150", "checkpoint_every=100", *QUIET]  # no last.ckpt before the signal
    command = [sys.executable, "-m", "pima_lightning.train", *epochs, f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not list(run_dir.glob("tensorboard/events.*")) and time.monotonic() < deadline:  # training began
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal_number)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == status
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: interrupted by {name} in epoch ") and last.endswith(
        f"resume with ckpt_path={saved}"
    )
    assert last.split("error: ")[1] in (run_dir / "train.log").read_text()
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "checkpoints" / "last.ckpt").exists()
    stopped_at = torch.load(saved, weights_only=True)["epoch"]
    assert stopped_at < 149
    resumed = train_cli_run(tmp_path, f"ckpt_path={saved}", f"trainer.max_epochs={stopped_at + 2}", *QUIET)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["epochs"] == stopped_at + 2


def train_cli_run(cwd, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pima_lightning.train", *overrides, f"hydra.run.dir={cwd / 'resumed'}"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "overrides",
    [["trainer.max_epochs=0"], ["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=5"]],
    ids=["no-epochs", "no-validation"],
)
def test_runs_without_validation_finish_with_their_test_metrics(make_config, tmp_path, overrides):
    from pima_lightning.train import main

    assert main.__wrapped__(make_config(*QUIET, *overrides)) is None  # val rows = test rows: no objective
    assert 0 < json.loads((tmp_path / "metrics.json").read_text())["test/acc"] < 1
