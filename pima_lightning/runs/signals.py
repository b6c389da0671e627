"""Every signal is an honest exit: SIGTERM (what batch schedulers send) ends any command with status 143
and Ctrl-C with 130, each after one ``error:`` line, in any stage of any command.

While a Trainer runs, Lightning's own SIGTERM handler is installed; it stops the loop at the next batch
with ``SIGTERMException``, a ``SystemExit`` whose status is None, so a signal in ``trainer.test`` (or
``validate``, ``predict``) would end the command with status 0; Lightning answers Ctrl-C with
``sys.exit(1)``. Outside a Trainer, Python's default handler would end the process with no message.
``install`` puts a handler in place for the whole command that records which signal came (Lightning
calls it too, beside its own) and, when no Trainer is running, stops the command at once;
``exit_status`` then turns whatever the signal caused into the honest exit.
"""

import logging
import signal
import sys
from types import FrameType

from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # the console gets the message once, as error: on stderr
EXIT_STATUS = {signal.SIGTERM: 143, signal.SIGINT: 130}
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}
_received: list[signal.Signals] = []  # the signals that came, in order


def install() -> None:
    """Handle SIGTERM and Ctrl-C for the rest of the process (a command calls this as it starts)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.append(signal.SIGTERM)
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:  # no Trainer runs: stop here
        raise SIGTERMException()
    # else Lightning's handler runs beside this one, and its loop stops at the next batch


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _received.append(signal.SIGINT)
    raise KeyboardInterrupt


def stop_if_received() -> None:
    """Stop, as the signal would have, if one came while a Trainer ran: Lightning looks for SIGTERM
    between batches only, so one that comes during a stage's last batch (a test of one batch, say) would
    let the stage end as if nothing came. Called after each stage."""
    if _received:
        raise SIGTERMException() if _received[0] == signal.SIGTERM else KeyboardInterrupt


def received(error: BaseException | None = None) -> signal.Signals | None:
    """The signal that stopped the command, if one did: one that came, or the exception one raises."""
    if _received:
        return _received[0]
    if isinstance(error, SIGTERMException):
        return signal.SIGTERM
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    return None


def signal_exit(error: BaseException | None, what: str) -> SystemExit | None:
    """The exit for a command a signal stopped (None if none did), after saying on stderr and in the
    log ``error: interrupted by SIGTERM <what>``; ``what`` says where and what is left."""
    if isinstance(error, SystemExit) and error.code in EXIT_STATUS.values():
        return error  # an exit this module made, already said
    if (signum := received(error)) is None:
        return None
    message = f"interrupted by {NAMES[signum]} {what}"
    log.error(message)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return SystemExit(EXIT_STATUS[signum])
