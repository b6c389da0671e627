"""Score raw rows: ``python -m pima_lightning.predict ckpt_path=PATH input=CSV [output=CSV]``.

Rows hold the 8 raw features, optionally followed by a label (ignored), header optional; an empty cell is
a missing value. The checkpoint's own filling and scaling are applied. The output CSV has one line per
input row, in order: ``probability`` (of the second class: diabetes, 1) and ``class`` (the second class's
name when probability > 0.5, else the first's: 1 or 0 for Pima). For K > 2 classes: ``class`` (the likeliest)
and ``probability_<class>`` for each class.
"""

import logging
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from pima_lightning.data import PimaDataModule
from pima_lightning.errors import InputError
from pima_lightning.inputs.checkpoint import load_checkpoint
from pima_lightning.runs.atomic import check_output, write_text
from pima_lightning.runs.evaluation import inference_trainer
from pima_lightning.runs.exits import error_exit, one_line_config_errors, one_line_errors

log = logging.getLogger(__name__)


def predict(ckpt_path: str, input_path: str, output_path: Path) -> np.ndarray:
    """Write ``probability,class`` for every row of ``input_path``; return the probabilities (of the
    model's second class).

    Lightning's predict loop runs the model's ``predict_step`` over ``PimaDataModule.predict_dataloader``,
    which reads the checkpoint's feature columns (by name where both have names)."""
    output_path = check_output(output_path, "output", {"input": input_path, "ckpt_path": ckpt_path})
    model, _ = load_checkpoint(ckpt_path)
    batches = inference_trainer().predict(model, datamodule=PimaDataModule(predict_path=str(input_path)))
    probabilities = torch.cat(batches).numpy()
    if not (finite := np.isfinite(probabilities).reshape(len(probabilities), -1).all(axis=1)).all():
        rows = np.flatnonzero(~finite)
        shown = ", ".join(str(row + 1) for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise InputError(
            f"{input_path}: the model gives no finite probability for rows {shown} ({len(rows)} of "
            f"{len(probabilities)} data rows): their values or the checkpoint's weights overflow float32; "
            "check those rows and that the checkpoint is one training wrote"
        )
    classes = np.array(model.hparams.get("classes") or ["0", "1"])
    if probabilities.ndim == 1:  # two classes: P(the second one), and the class at threshold 0.5
        table = pd.DataFrame(
            {"probability": probabilities, "class": classes[(probabilities > 0.5).astype(int)]}
        )
        summary = f"{int((probabilities > 0.5).sum())} of class {classes[1]}"
    else:  # K classes: the likeliest one, then each one's probability
        predicted = classes[probabilities.argmax(1)]
        table = pd.DataFrame(
            {"class": predicted} | {f"probability_{c}": probabilities[:, k] for k, c in enumerate(classes)}
        )
        summary = ", ".join(f"{int((predicted == c).sum())} of class {c}" for c in classes)
    write_text(output_path, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    log.info("Wrote %d predictions (%s) to %s", len(table), summary, output_path)
    return probabilities


@one_line_config_errors("predict")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    for key, example in (("ckpt_path", "<run dir>/checkpoints/last.ckpt"), ("input", "rows.csv")):
        if OmegaConf.is_missing(cfg, key):
            raise error_exit(f"no {key} given; pass {key}={example}")
    output = Path(cfg.output or Path(cfg.output_dir) / "predictions.csv").expanduser()
    with one_line_errors():
        predict(cfg.ckpt_path, cfg.input, output)


if __name__ == "__main__":
    main()
