"""The one exception type for bad user input: its message says what is wrong and how to fix it.

Imports nothing: copy it with ``model.py`` and ``data.py`` into a project of your own."""


class InputError(ValueError):
    """A CSV, path or config value the user supplied is unusable; the message says how to fix it."""

    @staticmethod
    def within(error: BaseException) -> "InputError | None":
        """The InputError that ``error`` is or was raised from (hydra's instantiate wraps it), if any."""
        while error is not None and not isinstance(error, InputError):
            error = error.__cause__
        return error
