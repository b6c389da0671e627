"""Hydra's own errors about the command line, in one line: an unknown setting (``trainer.max_epoch=5``), an
option a config group does not have (``optimizer=adamw``), an override Hydra cannot parse.

Hydra prints these itself, in 5 to 9 lines with a hint that can mislead (``To append to your config use
+trainer.max_epoch=5``, which then trains without the setting meant). ``one_line_config_errors`` wraps a
command's ``@hydra.main`` entry point: Hydra raises its errors instead of printing them (its
``HYDRA_FULL_ERROR``, for the call), and the command ends with one ``error:`` line that names the close
settings or the options. A user who sets ``HYDRA_FULL_ERROR=1`` still gets Hydra's full traceback.
"""

import functools
import os
from collections.abc import Callable
from difflib import get_close_matches

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf

TRACE = "HYDRA_FULL_ERROR"


def one_line_config_errors(config_name: str) -> Callable:
    """Decorate a command's ``@hydra.main`` function, whose primary config is ``config_name``."""

    def wrap(main: Callable) -> Callable:
        @functools.wraps(main)
        def run(*args, **kwargs):
            asked = os.environ.get(TRACE)
            os.environ[TRACE] = "1"
            try:
                return main(*args, **kwargs)
            except (ConfigCompositionException, OverrideParseException) as err:
                if asked == "1":
                    raise
                raise SystemExit(f"error: {error_line(err, config_name)}") from None
            finally:
                if asked is None:
                    os.environ.pop(TRACE, None)
                else:
                    os.environ[TRACE] = asked

        return run

    return wrap


def error_line(err: Exception, config_name: str) -> str:
    """One line for Hydra's error ``err`` about the command line of a command of ``config_name``."""
    message = str(err).strip()
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, choice = err.missing_cfg_file.rpartition("/")
        close = get_close_matches(choice, list(err.options), n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(f'{group}={option}' for option in close)}? " if close else ""
        return (
            f"{group}={choice}: conf/{group}/ has no such option; {hint}its options: {', '.join(err.options)}"
        )
    if message.startswith("Could not override '"):
        key = message.split("'")[1]
        close = get_close_matches(key, setting_names(config_name), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "see python -m <command> --cfg job"
        return f"{key}: no such setting; {hint}"
    first = message.splitlines()[0] if message else type(err).__name__
    if isinstance(err, OverrideParseException):
        return f"{first}: a value with characters such as ~ = , or spaces needs quotes, e.g. key='~/out.csv'"
    cause = str(err.__cause__).strip().splitlines()[0] if err.__cause__ else ""
    return f"{first}{f' ({cause})' if cause else ''}"


def setting_names(config_name: str) -> list[str]:
    """Every setting of the command's config composed without overrides, dotted (``trainer.max_epochs``)."""
    GlobalHydra.instance().clear()
    with initialize_config_module("pima_lightning.conf", version_base="1.3"):
        config = OmegaConf.to_container(compose(config_name), resolve=False)
    names = []
    pending = [("", config)]
    while pending:
        prefix, node = pending.pop()
        for key, value in node.items():
            name = f"{prefix}{key}"
            names.append(name)
            if isinstance(value, dict):
                pending.append((f"{name}.", value))
    return names
