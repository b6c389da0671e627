"""Keras's ``model.summary()``: ``python -m pima_lightning.summary [ckpt_path=PATH | model.hidden=...]``."""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from pima_lightning.inputs.checkpoint import load_checkpoint

# Keras's layer names for ours: the scaling is Keras's Normalization layer; Keras folds the ReLU into Dense
from pima_lightning.runs.exits import one_line_config_errors, one_line_errors
from pima_lightning.runs.model_summary import model_summary
from pima_lightning.settings.config_checks import check_model_settings, check_model_size


@one_line_config_errors("summary")
@hydra.main(config_path="pkg://pima_lightning.conf", config_name="summary", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Print the summary of a trained model (``ckpt_path=...``) or of the configured one."""
    planned = None
    with one_line_errors():
        if cfg.ckpt_path:
            model = load_checkpoint(cfg.ckpt_path)[0]
        else:  # an untrained network has no statistics yet: say what training will fit
            check_model_settings(cfg.model)
            check_model_size(cfg.model, n_features=8)
            model = instantiate(cfg.model, n_features=8)  # the Pima CSV's width
            planned = (
                "z-score with training-row statistics, fitted when training starts (data.standardize=true)"
                if cfg.data.standardize
                else "none (raw features; data.standardize=false)"
            )
    print(model_summary(model, planned))


if __name__ == "__main__":
    main()
