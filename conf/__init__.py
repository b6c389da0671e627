"""Hydra configs, shipped inside the package as ``pima_lightning.conf`` (see pyproject.toml)."""
