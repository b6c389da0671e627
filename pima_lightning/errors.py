"""The one exception type for bad user input, and the one way any error a user can fix ends a command."""

import errno
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException

from pima_lightning import signals

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


class InputError(ValueError):
    """A CSV, path or config value the user supplied is unusable; the message says how to fix it."""

    @staticmethod
    def within(error: BaseException) -> "InputError | None":
        """The InputError that ``error`` is or was raised from (hydra's instantiate wraps it), if any."""
        while error is not None and not isinstance(error, InputError):
            error = error.__cause__
        return error


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters, DEL


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\r``): what a file, a checkpoint
    or a path holds is never sent raw to a terminal, where an escape sequence could rewrite it."""
    return CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def written_so_far(folder: Path, hint: str = "") -> str:
    """What an interrupted command says it left in ``folder``: "nothing was written", or the entries it
    wrote (Hydra's record and the log aside) and ``hint`` (how to go on from them)."""
    record = {".hydra", ".lock"}
    entries = sorted(e.name for e in folder.iterdir() if e.name not in record and e.suffix != ".log")
    if not entries:
        return f"before the command finished; nothing was written in {folder}"
    shown = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
    return f"before the command finished; written so far in {folder}: {shown}{hint}"


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
            where = f": {cause.filename}" if cause.filename else ""
            return printable(f"{cause.strerror or cause}{where}")
        cause = cause.__cause__
    if isinstance(error, InstantiationException):
        return printable(" ".join(str(error).split()))
    return None


def exit_with_one_line(error: BaseException) -> NoReturn:
    """Exit with ``error: <one line>`` and status 1 if the user can fix ``error``; else re-raise it."""
    if (message := user_error(error)) is not None:
        raise SystemExit(f"error: {message}") from None
    raise error


def install_handlers() -> None:
    """What every command installs as it starts: SIGTERM and Ctrl-C handlers (``signals.py``), and a
    hook for errors in background threads. TensorBoard's event writer fails in its own thread on a full
    disk, and its traceback, cut short as the process exits, would precede the main thread's one line
    about the same error: the hook says it in one line instead, the traceback going to the log file."""
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
