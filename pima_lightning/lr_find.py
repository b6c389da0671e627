"""Lightning's learning-rate finder: ``python -m pima_lightning.lr_find [train overrides] [lr_find.*=...]``.

Runs ``Tuner.lr_find`` on the training rows of the train config (optimizer, model and data overrides
apply), then writes the loss against the learning rate as ``lr_find.png`` and ``lr_find.json`` in
its run dir and prints the suggested learning rate: the one where the loss fell fastest.

The suggestion is Lightning's (the steepest fall of its smoothed loss, skipping the first 10 steps
and the last). The picture leaves those steps out and draws the running average with the bias correction
put right (``unbiased``): Lightning's curve starts at about 0.35 where every minibatch's loss is near
ln 2 = 0.69 and rises for the first 50 steps, which reads as "the smallest rate is best".
``lr_find.json`` keeps both curves.
"""

import logging
import sys
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner, lr_finder
from matplotlib.figure import Figure
from omegaconf import DictConfig

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import printable
from pima_lightning.runs.atomic import write_json
from pima_lightning.runs.exits import one_line_config_errors, one_line_errors
from pima_lightning.runs.plots import save_figures
from pima_lightning.runs.training import datamodule_and_model, seed_and_threads
from pima_lightning.settings.checks import number, whole
from pima_lightning.settings.declared import MAX_SETTING

log = logging.getLogger(__name__)
MODES = ("exponential", "linear")  # how Lightning's finder steps from min_lr to max_lr
SKIP_BEGIN, SKIP_END = 10, 1  # steps the suggestion leaves out at each end (Lightning's defaults)
SMOOTHING = 0.98  # the finder's running average of the loss: 0.98 x the last one + 0.02 x this step's


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
    # The finder draws its own tqdm bar whatever the Trainer's setting, and Lightning offers no switch;
    # in a file or a CI log that is a hundred redrawn bars, so off the terminal it is disabled.
    bar = lr_finder.tqdm
    if not (cfg.trainer.enable_progress_bar and sys.stderr.isatty()):
        lr_finder.tqdm = partial(bar, disable=True)
    try:
        # update_attr=False: the learning rate lives in the optimizer config, which the finder sets itself
        finder = Tuner(trainer).lr_find(model, datamodule=datamodule, update_attr=False, **cfg.lr_find)
    finally:
        lr_finder.tqdm = bar
    suggestion = finder.suggestion(skip_begin=SKIP_BEGIN, skip_end=SKIP_END)  # on Lightning's own curve
    optimizer = cfg.optimizer._target_.rsplit(".", 1)[-1]
    corrected = unbiased(finder.results["loss"])
    figure = curve(finder.results["lr"], corrected, suggestion, cfg.lr_find.mode)
    figure.suptitle(f"learning-rate finder: {optimizer}, {cfg.data.batch_size} rows a step")
    save_figures({"lr_find": figure}, output_dir)
    result = {
        "suggestion": suggestion,
        "lr": finder.results["lr"],
        "loss": finder.results["loss"],  # Lightning's smoothed curve, which the suggestion is read from
        "loss_bias_corrected": corrected,  # the curve lr_find.png draws
    }
    write_json(output_dir / "lr_find.json", result)
    return result


def unbiased(smoothed: list[float]) -> list[float]:
    """Lightning's smoothed losses with the bias correction it applies one step late put right: it divides
    step k's running average by 1 - 0.98 ** (k + 1) where 1 - 0.98 ** k is due, so its curve starts low
    (0.35 at the first step, 0.64 at the 11th, where every minibatch's loss is near ln 2 = 0.69) and
    rises, which reads as "the smallest rate is best"; put right, it starts flat at ln 2."""
    return [
        loss * (1 - SMOOTHING ** (step + 2)) / (1 - SMOOTHING ** (step + 1))
        for step, loss in enumerate(smoothed)
    ]


def curve(rates: list[float], losses: list[float], suggestion: float | None, mode: str) -> Figure:
    """The smoothed loss against the learning rate over the steps the suggestion weighs: without the
    first ``SKIP_BEGIN``, whose low start is the smoothing's bias correction (a learner reads it as "the
    smallest rate is best"), and the last ``SKIP_END``; the suggestion as a red point."""
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    axes = figure.add_subplot()
    shown = slice(SKIP_BEGIN, len(rates) - SKIP_END)
    axes.plot(rates[shown], losses[shown])
    if suggestion is not None:
        step = rates.index(suggestion)
        label = f"Lightning's suggestion: {suggestion:.3g}"
        axes.plot(suggestion, losses[step], "o", color="red", label=label)
        axes.legend()
    axes.set_xscale("log" if mode == "exponential" else "linear")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss (running average)")
    axes.set_title(f"steps {SKIP_BEGIN + 1} to {len(rates) - SKIP_END} of {len(rates)}", fontsize=9)
    return figure


@one_line_config_errors("lr_find")
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
