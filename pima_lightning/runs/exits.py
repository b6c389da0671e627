"""How every command ends when something goes wrong: one ``error:`` line and an exit status.

Errors the user can fix (``InputError``, Lightning's refusals, the operating system's about files and disks,
Hydra's failures to build an object) end a command with one line and status 1; SIGTERM and Ctrl-C with
status 143 and 130 (``signals.py``); anything else is a bug and keeps its traceback.

Hydra's own errors about the command line, in one line: an unknown setting (``trainer.max_epoch=5``), an
option a config group does not have (``optimizer=adamw``), an override Hydra cannot parse.

Hydra prints these itself, in 5 to 9 lines with a hint that can mislead (``To append to your config use
+trainer.max_epoch=5``, which then trains without the setting meant). ``one_line_config_errors`` wraps a
command's ``@hydra.main`` entry point: Hydra raises its errors instead of printing them (its
``HYDRA_FULL_ERROR``, for the call), and the command ends with one ``error:`` line that names the close
settings or the options. A user who sets ``HYDRA_FULL_ERROR=1`` still gets Hydra's full traceback.
"""

import errno
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import OmegaConf

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import printable
from pima_lightning.runs import signals

threads_log = logging.getLogger("pima_lightning.threads")  # the log file only (conf/hydra/job_logging)

# operating-system errors about the user's files and disk, not bugs: said in one line
USER_OS_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
}


def written_so_far(folder: Path, hint: str = "") -> str:
    """What an interrupted command says it left in ``folder``: "nothing was written", or the entries it
    wrote (Hydra's record and the log aside) and ``hint`` (how to go on from them)."""
    record = {".hydra", ".lock"}
    entries = sorted(e.name for e in folder.iterdir() if e.name not in record and e.suffix != ".log")
    if not entries:
        return f"before the command finished; nothing was written in {folder}"
    shown = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
    return f"before the command finished; written so far in {folder}: {shown}{hint}"


def error_exit(message: str) -> SystemExit:
    """The one way a command stops on an error it can name: ``raise error_exit("...")`` prints
    ``error: <message>`` (control characters escaped) on stderr and ends with status 1."""
    return SystemExit(f"error: {printable(message)}")


def user_error(error: BaseException) -> str | None:
    """One line for an error the user can fix, or None for a bug (whose traceback should show).

    Such errors are ours (``InputError``), Lightning's refusals of a Trainer setting
    (``MisconfigurationException``), the operating system's about files and disks (no space, no
    permission, not found), and Hydra's failures to build an object from the config (an unknown
    Trainer argument, say); Hydra's instantiate wraps the others, so the chain is followed.
    """
    cause = error
    while cause is not None:
        if isinstance(cause, InputError | MisconfigurationException):
            return printable(" ".join(str(cause).split()))
        if isinstance(cause, OSError) and cause.errno in USER_OS_ERRORS:
            where = f": {os.fsdecode(cause.filename)}" if cause.filename else ""  # bytes from TensorBoard
            return printable(f"{cause.strerror or cause}{where}")
        cause = cause.__cause__
    if isinstance(error, InstantiationException):
        return printable(" ".join(str(error).split()))
    return None


def exit_with_one_line(error: BaseException) -> NoReturn:
    """Exit with ``error: <one line>`` and status 1 if the user can fix ``error``; else re-raise it."""
    if (message := user_error(error)) is not None:
        raise error_exit(f"{message}") from None
    raise error


def install_handlers() -> None:
    """What every command installs as it starts: SIGTERM and Ctrl-C handlers (``signals.py``), and a
    hook for errors in background threads. A library's writer thread (TensorBoard's event writer had one
    before ``runs/loggers.py`` wrote events in the training thread) that fails on a full disk would print
    a traceback, cut short as the process exits, before the main thread's one line about the same error:
    the hook says it in one line instead, the traceback going to the log file."""
    signals.install()
    threading.excepthook = _thread_error


def _thread_error(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "a background thread"
    threads_log.error("%s failed", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    first_line = (str(args.exc_value).strip().splitlines() or [""])[0]
    print(f"warning: {name} failed: {args.exc_type.__name__}: {printable(first_line)}", file=sys.stderr)


@contextmanager
def one_line_errors(
    interrupted: str | Callable[[], str] = "before the command finished; nothing was written",
) -> Iterator[None]:
    """Every command's body runs inside this: errors the user can fix end it with one line, and SIGTERM
    or Ctrl-C with ``error: interrupted by SIGTERM <interrupted>`` and status 143 or 130; ``interrupted``
    may be a function, called then, that says what the command had written by that time."""
    install_handlers()
    try:
        yield
    except BaseException as err:
        said = interrupted() if callable(interrupted) and signals.received(err) is not None else interrupted
        if (stop := signals.signal_exit(err, said)) is not None:
            raise stop from None
        if not isinstance(err, Exception):
            raise
        exit_with_one_line(err)


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
                raise error_exit(f"{error_line(err, config_name)}") from None
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
