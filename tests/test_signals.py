"""Every signal is an honest exit (issue 18 rows 7 and 8): SIGTERM ends a command with 143 and Ctrl-C with
130, each with one ``error:`` line, in any stage; a sweep stops and still summarises the jobs that ran;
cross-validation's worker processes end with it. The signals are real, sent to the real CLI."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import descendants

# a callback that sends its own process a signal when a hook runs: the stage is certain, not a race
SENDER = """
import os, signal
import lightning as L

class SignalAt(L.Callback):
    def __init__(self, hook, signum="SIGTERM", job=None):
        self.signum, self.job = getattr(signal, signum), job
        setattr(self, hook, self._send)

    def _send(self, *args, **kwargs):
        from hydra.core.hydra_config import HydraConfig
        if self.job is None or HydraConfig.get().job.num == self.job:
            os.kill(os.getpid(), self.signum)
"""
QUIET = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.fixture
def sender(tmp_path) -> list[str]:
    """The overrides that add ``SignalAt`` (``python -m`` finds the module in its working folder)."""
    (tmp_path / "signal_at.py").write_text(SENDER)
    return ["+callbacks.signal_at._target_=signal_at.SignalAt"]


@pytest.mark.parametrize(
    ("signum", "status", "said"), [("SIGTERM", 143, "SIGTERM"), ("SIGINT", 130, "Ctrl-C")]
)
def test_a_signal_while_testing_is_an_honest_exit(train_cli, sender, tmp_path, signum, status, said):
    """Lightning's answer to SIGTERM outside fit is SystemExit(None): before, exit 0 with no result."""
    run_dir = tmp_path / "run"
    result = train_cli(
        *QUIET, *sender, "+callbacks.signal_at.hook=on_test_start", f"+callbacks.signal_at.signum={signum}",
        run_dir=run_dir,
    )  # fmt: skip
    assert result.returncode == status, result.stderr
    last = run_dir / "checkpoints" / "last.ckpt"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: interrupted by {said} while testing; to score the model: "
        f"python -m pima_lightning.evaluate ckpt_path={last}"
    )
    assert last.is_file() and not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "failure.json").read_text()) == {"error": f"interrupted by {said}"}


def test_a_signal_in_a_sweep_job_stops_the_sweep_which_still_writes_its_summary(cli, sender, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = cli(
        "train", "-m", "seed=1,2,3", *QUIET, *sender, "+callbacks.signal_at.hook=on_test_start",
        "+callbacks.signal_at.job=1", f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    assert result.returncode == 143, result.stderr
    jobs = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]
    assert [(job["job"], job["status"]) for job in jobs] == [("0", "finished"), ("1", "failed")]
    assert jobs[1]["error"] == "interrupted by SIGTERM"
    assert not (sweep_dir / "2").exists()  # the sweep stopped
    assert "error: the sweep stopped; its summary covers the jobs that ran" in result.stderr


def test_sigterm_outside_any_trainer_is_an_honest_exit(tmp_path):
    """Between stages no Lightning handler runs: Python's default would end the process unannounced."""
    code = (
        "import os, signal, time\n"
        "from pima_lightning.runs.exits import one_line_errors\n"
        "with one_line_errors():\n    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(30)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 143
    assert (
        result.stderr.strip()
        == "error: interrupted by SIGTERM before the command finished; nothing was written"
    )


def start_cv(cwd: Path, run_dir: Path, *overrides: str) -> subprocess.Popen:
    """``python -m pima_lightning.cv <overrides>`` started in ``cwd``, writing to ``run_dir``."""
    command = [sys.executable, "-m", "pima_lightning.cv", *overrides, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_to_cross_validation_ends_its_worker_processes(tmp_path, pima_csv):
    run_dir = tmp_path / "run"
    process = start_cv(tmp_path, run_dir, "cv.engine=runs", "cv.jobs=2", "cv.folds=2")
    deadline = time.monotonic() + 120
    while not list(run_dir.glob("folds/*/tensorboard")) and time.monotonic() < deadline:
        time.sleep(0.5)  # until the workers train
    workers = descendants(process.pid)
    assert workers and process.poll() is None
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM")
    deadline = time.monotonic() + 20
    while (
        alive := {pid for pid in workers if Path(f"/proc/{pid}").exists()}
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in alive]
    assert not (run_dir / "cv.json").exists()


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")]
)
def test_a_signal_to_cross_validation_of_members_is_an_honest_exit(tmp_path, pima_csv, signum, code, name):
    run_dir = tmp_path / "run"
    process = start_cv(tmp_path, run_dir, "cv.folds=3", "cv.baselines=false")
    deadline = time.monotonic() + 120
    log = run_dir / "cv.log"
    while not (log.exists() and "Training 3 members" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the members train
    assert process.poll() is None
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    assert stderr.strip().splitlines()[-1].startswith(f"error: interrupted by {name}")
    assert not (run_dir / "cv.json").exists() and not (run_dir / "members.csv").exists()
