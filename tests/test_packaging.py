import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_non_editable_install_ships_the_configs_and_trains_from_any_directory(tmp_path):
    """``pip install .`` (not -e) must carry conf/ inside the package, found from any working directory."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(REPO)],
        check=True,
        capture_output=True,
    )
    assert (target / "pima_lightning" / "conf" / "optimizer" / "adam.yaml").is_file()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-m", "pima_lightning.train", "optimizer=adam", "trainer.max_epochs=1",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    assert "torch.optim.Adam" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert (run_dir / "metrics.json").is_file()
    imported = subprocess.run(
        [sys.executable, "-c", "import pima_lightning.conf; print(pima_lightning.conf.__file__)"],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert imported.stdout.startswith(str(target))
