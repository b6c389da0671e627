"""Run folders are never mixed (issue 18 rows 5 and 6): a folder holding an earlier run or sweep is
refused before anything in it changes, unless the run continues it; two runs cannot use one folder at
once; a folder that cannot be made is one line."""

import shutil
import subprocess
import sys
import time

import pytest

from pima_lightning.runs.folders import make_folder

QUIET = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes (but the lock, which names the process holding it)."""
    return {
        path: path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def test_a_folder_holding_a_finished_run_is_refused_unless_the_run_resumes_from_it(train_cli, cli, tmp_path):
    run_dir = tmp_path / "run"
    assert train_cli(*QUIET, run_dir=run_dir).returncode == 0
    before = snapshot(run_dir)
    refused = train_cli(*QUIET, "seed=8", run_dir=run_dir)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: hydra.run.dir={run_dir} holds an earlier run (")
    )
    assert f"or continue that run with ckpt_path={run_dir}/checkpoints/last.ckpt" in refused.stderr
    last = run_dir / "checkpoints" / "last.ckpt"
    evaluated = cli("evaluate", f"ckpt_path={last}", run_dir=run_dir)  # evaluate into a training run's folder
    assert evaluated.returncode == 1 and "holds an earlier run" in evaluated.stderr
    assert snapshot(run_dir) == before  # metrics.json, last.ckpt, .hydra/overrides.yaml, train.log untouched
    resumed = train_cli(*QUIET, "trainer.max_epochs=2", f"ckpt_path={last}", run_dir=run_dir)
    assert resumed.returncode == 0, resumed.stderr  # continuing the run in its own folder
    assert '"epochs": 2' in (run_dir / "metrics.json").read_text()


def test_two_runs_cannot_use_one_folder_at_once(train_cli, tmp_path, pima_csv):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "pima_lightning.train", "trainer.max_epochs=150",
         "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (run_dir / ".hydra" / "overrides.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    second = train_cli(*QUIET, run_dir=run_dir)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={run_dir} is in use by a run still going (process {first.pid}); "
        "wait for it to end or choose another hydra.run.dir"
    )
    first.terminate()
    first.communicate(timeout=60)
    assert first.returncode == 143  # the first run was not disturbed, only stopped here to save time


def test_a_sweep_folder_used_before_is_refused(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    assert cli("train", "-m", "seed=1,2", *QUIET, f"hydra.sweep.dir={sweep_dir}").returncode == 0
    before = snapshot(sweep_dir)
    again = cli("train", "-m", "seed=3", *QUIET, f"hydra.sweep.dir={sweep_dir}")
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: hydra.sweep.dir={sweep_dir} holds earlier results")
    )
    assert snapshot(sweep_dir) == before  # job 0's metrics.json is still seed 1's, the summary its own


def test_a_run_folder_that_cannot_be_made_is_one_line(train_cli, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for folder, existing in (("/dev/null/x", "/dev/null"), (f"{a_file}/run", a_file)):
        result = train_cli(*QUIET, run_dir=folder)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: hydra.run.dir={folder}: {existing} is not a folder; choose another hydra.run.dir"
        )
    result = train_cli(*QUIET, f"output_dir={a_file}", run_dir=tmp_path / "run")  # output_dir set apart
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: output_dir={a_file}: {a_file} is not a folder; choose another output_dir"
    )
    assert a_file.read_text() == "not a folder"


def test_a_disk_with_almost_no_space_left_is_refused_before_hydra_writes(tmp_path, monkeypatch):
    """Hydra's own write of .hydra/config.yaml on a full disk ended in a chained traceback."""
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 20, 10 << 20, 12 << 10)
    )
    with pytest.raises(SystemExit) as raised:
        make_folder(tmp_path / "run", "hydra.run.dir")
    assert str(raised.value) == (
        f"error: hydra.run.dir={tmp_path / 'run'}: only 12 KiB free on its disk, and a run writes about "
        "0.5 MiB; free some space or choose another hydra.run.dir"
    )
