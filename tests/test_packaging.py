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


COMMANDS = {"train", "evaluate", "predict", "export", "summary", "lr_find", "cv", "tune"}
SUBPACKAGES = {"ensembles", "inputs", "runs", "settings"}


def package_imports(path: Path) -> set[str]:
    """The top-level names of the package that a module imports (``runs`` for pima_lightning.runs.x)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pima_lightning"):
            parts = node.module.split(".")
            names |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pima_lightning.")}
    return names


def test_the_layout_keeps_core_commands_and_machinery_apart():
    """docs/code.md's import rules: no command imports another, no subpackage imports a command, and the
    core imports no more than its map says."""
    package = REPO / "pima_lightning"
    assert {path.stem for path in package.glob("*.py")} == COMMANDS | {"__init__", "model", "data", "errors"}
    assert {path.name for path in package.iterdir() if (path / "__init__.py").is_file()} >= SUBPACKAGES
    for command in COMMANDS:
        assert not package_imports(package / f"{command}.py") & (COMMANDS - {command}), command
    for path in package.glob("*/*.py"):
        assert not package_imports(path) & COMMANDS, path
    assert package_imports(package / "model.py") == set()
    assert package_imports(package / "errors.py") == set()
    assert package_imports(package / "data.py") <= {"errors", "inputs"}
