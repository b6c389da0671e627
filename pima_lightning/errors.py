"""The one exception type for bad user input, and how any error a user can fix reads as one line."""

from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException


class InputError(ValueError):
    """A CSV, path or config value the user supplied is unusable; the message says how to fix it."""

    @staticmethod
    def within(error: BaseException) -> "InputError | None":
        """The InputError that ``error`` is or was raised from (hydra's instantiate wraps it), if any."""
        while error is not None and not isinstance(error, InputError):
            error = error.__cause__
        return error


def user_error(error: BaseException) -> str | None:
    """One line for an error the user can fix from the command line, or None for a bug.

    Such errors are ours (``InputError``), Lightning's refusals of a Trainer setting
    (``MisconfigurationException``), and Hydra's failures to build an object from the config (an
    unknown Trainer argument, say); Hydra's instantiate wraps the first two, so the chain is followed.
    """
    cause = error
    while cause is not None and not isinstance(cause, (InputError, MisconfigurationException)):
        cause = cause.__cause__
    found = cause or (error if isinstance(error, InstantiationException) else None)
    return None if found is None else " ".join(str(found).split())
