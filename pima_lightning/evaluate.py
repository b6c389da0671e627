"""Keras's ``evaluate()``: ``python -m pima_lightning.evaluate ckpt_path=PATH [data.path=CSV]``.

Loss and every metric of a trained model on labelled rows (by default the held-out rows of the
split the model was trained with; ``data.rows=held_out|all`` chooses for ``data.path``), printed as a
table, written as ``evaluation.json``, and pictured as an ROC curve, a precision-recall curve and a
confusion matrix. For a checkpoint of ``model.replicas`` > 1: every replica's metrics, their mean ± std,
and the ensemble's (the mean of the replicas' probabilities), which the pictures show.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from pima_lightning.runs.evaluation import evaluate, format_report
from pima_lightning.runs.exits import error_exit, one_line_config_errors, one_line_errors

log = logging.getLogger(__name__)


@one_line_config_errors("evaluate")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    """Hydra entry point; returns the report."""
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise error_exit("no checkpoint given; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    with one_line_errors():
        report = evaluate(
            cfg.ckpt_path, Path(cfg.output_dir), cfg.data.path, cfg.data.rows, cfg.data.data_dir
        )
    print(format_report(report))
    log.info("Wrote evaluation.json and pictures to %s", cfg.output_dir)
    return report


if __name__ == "__main__":
    main()
