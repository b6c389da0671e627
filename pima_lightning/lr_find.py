"""Lightning's learning-rate finder: ``python -m pima_lightning.lr_find [train overrides] [lr_find.*=...]``.

Runs ``Tuner.lr_find`` on the training rows of the train config (optimizer, model and data overrides
apply), then writes the loss against the learning rate as ``lr_find.png`` and ``lr_find.json`` in
its run dir and prints the suggested learning rate: the one where the loss fell fastest.

The curve is Lightning's smoothed loss. Its left end sits low (about 0.35 at the first step, where every
minibatch's loss is near ln 2 = 0.69): Lightning corrects the smoothing's bias with the step count after
the step, one step late (0.02 * 0.69 / (1 - 0.98**2)); the suggestion skips the first 10 steps.
"""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner
from matplotlib.figure import Figure
from omegaconf import DictConfig

from pima_lightning.atomic import write_json
from pima_lightning.checks import number, whole
from pima_lightning.config_checks import MAX_SETTING
from pima_lightning.errors import InputError, one_line_errors, printable
from pima_lightning.plots import save_figures
from pima_lightning.train import datamodule_and_model, seed_and_threads

log = logging.getLogger(__name__)
MODES = ("exponential", "linear")  # how Lightning's finder steps from min_lr to max_lr


def check_finder_settings(finder: DictConfig) -> None:
    """``lr_find.*``, checked before anything trains (Lightning would fail mid-way, or never stop)."""
    if finder.mode not in MODES:
        raise InputError(f"lr_find.mode={printable(str(finder.mode))}: expected one of {', '.join(MODES)}")
    whole("lr_find.num_training", finder.num_training, low=2, unit=" of steps")
    low = number("lr_find.min_lr", finder.min_lr, 0, MAX_SETTING, low_open=True, what="a learning rate")
    number("lr_find.max_lr", finder.max_lr, low, MAX_SETTING, low_open=True, what="a learning rate")
    if finder.early_stop_threshold is not None:
        number(
            "lr_find.early_stop_threshold",
            finder.early_stop_threshold,
            1,
            low_open=True,
            what="a multiple of the best loss (or null: never stop early)",
        )


def find_lr(cfg: DictConfig, output_dir: Path) -> dict:
    """Run the finder; write ``lr_find.png`` and ``lr_find.json`` to ``output_dir``; return the json."""
    check_finder_settings(cfg.lr_find)
    seed_and_threads(cfg)
    datamodule, model = datamodule_and_model(cfg)
    trainer = instantiate(
        cfg.trainer, default_root_dir=output_dir, logger=False, callbacks=[], enable_checkpointing=False
    )
    # update_attr=False: the learning rate lives in the optimizer config, which the finder sets itself
    finder = Tuner(trainer).lr_find(model, datamodule=datamodule, update_attr=False, **cfg.lr_find)
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    finder.plot(suggest=True, ax=figure.add_subplot())
    optimizer = cfg.optimizer._target_.rsplit(".", 1)[-1]
    figure.suptitle(f"learning-rate finder: {optimizer}, {cfg.data.batch_size} rows a step")
    save_figures({"lr_find": figure}, output_dir)
    result = {"suggestion": finder.suggestion(), "lr": finder.results["lr"], "loss": finder.results["loss"]}
    write_json(output_dir / "lr_find.json", result)
    return result


@hydra.main(config_path="pkg://pima_lightning.conf", config_name="lr_find", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the suggested learning rate (None when the loss never fell steadily)."""
    output_dir = Path(cfg.output_dir)
    with one_line_errors():
        result = find_lr(cfg, output_dir)
    suggestion = result["suggestion"]
    if suggestion is None:
        print(f"No suggestion: the loss never fell steadily; see {output_dir / 'lr_find.png'}")
    else:
        print(
            f"Suggested learning rate {suggestion:.3g} ({len(result['lr'])} steps from "
            f"{result['lr'][0]:.3g} to {result['lr'][-1]:.3g}); see {output_dir / 'lr_find.png'}\n"
            f"  python -m pima_lightning.train optimizer={HydraConfig.get().runtime.choices.optimizer} "
            f"optimizer.lr={suggestion:.3g}"
        )
    return suggestion


if __name__ == "__main__":
    main()
