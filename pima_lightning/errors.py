"""The one exception type for bad user input."""


class InputError(ValueError):
    """A CSV, path or config value the user supplied is unusable; the message says how to fix it."""
