"""The kinds of setting, each a check: a whole number, a number in a range, true or false, one of some
choices, text, names, layer widths. ``settings.declared`` says which kind each setting is; commands use
them for their own settings (``cv.folds``). Each check returns the value as the type it was checked for,
or raises ``InputError`` with one line: ``<name>=<value>: expected <what>``.
"""

import math

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import CONTROL, printable
from pima_lightning.model import MAX_PARAMETERS, parameter_count


def whole(name: str, value, low: int = 1, high: int | None = None, unit: str = "") -> int:
    """``value`` if it is an int (not a bool, not 1.5) in ``[low, high]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        raise InputError(f"{name}={shown(value)}: expected a whole number{unit} {span}")
    return value


def number(
    name: str,
    value,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    what: str = "a number",
) -> float:
    """``value`` as a float if it is a finite int or float inside the interval (open ends as asked)."""
    inside = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        if high == math.inf:
            span = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            span = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        a_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        raise InputError(f"{name}={shown(value)}: expected {what if a_number else 'a number'} {span}")
    return float(value)


def shown(value) -> str:
    """The value as the user typed it on the command line (``[12, 6]``, ``abc``), cut at 80 characters,
    its control characters escaped (a checkpoint's text may hold any)."""
    return printable(f"{value!s:.80}" if isinstance(value, str) else f"{value!r:.80}")


def flag(name: str, value) -> bool:
    """``value`` if it is true or false (``data.stratify=yes`` reaches Python as the text 'yes')."""
    if not isinstance(value, bool):
        raise InputError(f"{name}={shown(value)}: expected true or false")
    return value


def one_of(name: str, value, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if not (isinstance(value, str) and value in choices):
        raise InputError(f"{name}={shown(value)}: expected one of {', '.join(choices)}")
    return value


MAX_TEXT = 1000  # characters of a path, URL or digest a setting may hold


def optional_text(name: str, value, what: str = "text") -> str | None:
    """``value`` if it is printable text of at most ``MAX_TEXT`` characters, or None."""
    if value is not None and not is_printable(value, MAX_TEXT, shortest=0):
        raise InputError(f"{name}={shown(value)}: expected {what} (printable characters) or null")
    return value


def column_name(name: str, value) -> str | None:
    """A column of the CSV's header, by name, or None (the last column)."""
    if value is not None and not is_printable(value):
        raise InputError(f"{name}={shown(value)}: expected a column name from the CSV's header, or null")
    return value


def names(name: str, value, count: int | None = None, example: str = "") -> list[str] | None:
    """A list of ``count`` (any number, without one) names of printable characters, or None."""
    if value is None:
        return None
    named = isinstance(value, list | tuple) and (count is None or len(value) == count)
    if not (named and all(is_printable(item) for item in value)):
        how_many = f"{count} names" if count else "a list of names"
        raise InputError(
            f"{name}={shown(value)}: expected {how_many} of printable characters, e.g. {example}"
        )
    return list(value)


MAX_MARKS = 100  # values a column may declare missing


def missing_marks(name: str, value) -> dict | None:
    """``data.missing_values``: for some columns, the values that mean missing, e.g. ``{Glucose: [0]}``;
    a column by its header name, or by its number counted from 1 in a file without a header; or None."""
    if value is None:
        return None
    example = "e.g. {Glucose: [0], BloodPressure: [0]}, or {2: [0]} for a file without a header"
    if not isinstance(value, dict) or not value:
        raise InputError(
            f"{name}={shown(value)}: expected columns and the values that mean missing, {example}"
        )
    marks = {}
    for column, values in value.items():
        named = is_printable(column) or (
            isinstance(column, int) and not isinstance(column, bool) and column >= 1
        )
        listed = isinstance(values, list | tuple) and 1 <= len(values) <= MAX_MARKS
        if not (named and listed and all(_finite(item) for item in values)):
            raise InputError(
                f"{name}={shown(value)}: expected a column (a name, or a number from 1) and a list of 1 to "
                f"{MAX_MARKS} numbers for each, {example}"
            )
        marks[column] = [float(item) for item in values]
    return marks


def columns(name: str, value) -> list | None:
    """``data.categorical_columns``: columns by their header names, or by their numbers counted from 1 in
    a file without a header; or None."""
    if value is None:
        return None
    named = isinstance(value, list | tuple) and all(
        is_printable(item) or (isinstance(item, int) and not isinstance(item, bool) and item >= 1)
        for item in value
    )
    if not named:
        raise InputError(
            f"{name}={shown(value)}: expected a list of columns (header names, or numbers from 1 without a "
            "header), e.g. [sex, smoker]"
        )
    return list(value)


MAX_CATEGORY_COUNT = 200  # a column's categories (inputs.csvfile.MAX_CATEGORIES)


def category_lists(name: str, value) -> dict[int, list[str]] | None:
    """A model's categories: for each categorical feature (its index from 0), its categories' names, each
    once; or None."""
    if value is None:
        return None
    lists = isinstance(value, dict) and all(
        isinstance(column, int)
        and not isinstance(column, bool)
        and 0 <= column < NETWORK_LIMITS["features"]
        and isinstance(names, list | tuple)
        and 1 <= len(names) <= MAX_CATEGORY_COUNT
        and len(set(names)) == len(names)
        and all(is_printable(item) for item in names)
        for column, names in value.items()
    )
    if not lists:
        raise InputError(
            f"{name}={shown(value)}: expected for each categorical feature (an index from 0) a list of 1 to "
            f"{MAX_CATEGORY_COUNT} distinct names"
        )
    return {column: list(names) for column, names in value.items()}


def column_indices(name: str, value) -> list[int]:
    """Columns by their index from 0, each once, in increasing order (the model's indicator inputs)."""
    value = [] if value is None else value
    indices = isinstance(value, list | tuple) and all(
        isinstance(item, int) and not isinstance(item, bool) and 0 <= item < NETWORK_LIMITS["features"]
        for item in value
    )
    if not (indices and list(value) == sorted(set(value))):
        raise InputError(f"{name}={shown(value)}: expected increasing column indices from 0, each once")
    return list(value)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_printable(value, longest: int = 200, shortest: int = 1) -> bool:
    """Whether ``value`` is text of ``shortest`` to ``longest`` characters, none a control character."""
    return isinstance(value, str) and shortest <= len(value) <= longest and not CONTROL.search(value)


# the network sizes every command accepts: what train builds, evaluate, predict, export and summary load
NETWORK_LIMITS = {"features": 100_000, "layers": 100, "width": 100_000, "replicas": 100_000}


def widths(name: str, value) -> list[int]:
    """The hidden layers' widths: a list of whole numbers >= 1 (empty: logistic regression) within
    ``NETWORK_LIMITS``."""
    listed = isinstance(value, list | tuple)
    if not (listed and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value)):
        raise InputError(f"{name}={shown(value)}: expected a list of whole numbers >= 1, e.g. [12, 6]")
    if len(value) > NETWORK_LIMITS["layers"]:
        raise InputError(f"{name}: {len(value)} layers; at most {NETWORK_LIMITS['layers']} are accepted")
    for width in value:
        whole(f"{name} width", width, 1, NETWORK_LIMITS["width"])
    return list(value)


def check_network_size(n_features: int, hidden: list[int], replicas: int = 1, prefix: str = "") -> None:
    """Raise InputError unless the network fits ``NETWORK_LIMITS`` and ``MAX_PARAMETERS``."""
    whole(f"{prefix}n_features", n_features, 1, NETWORK_LIMITS["features"])
    widths(f"{prefix}hidden", hidden)
    whole(f"{prefix}replicas", replicas, 1, NETWORK_LIMITS["replicas"])
    if (count := parameter_count(n_features, hidden, replicas)) > MAX_PARAMETERS:
        raise InputError(
            f"{prefix}hidden={list(hidden)!r:.80} with {n_features} features and {replicas} replica(s) has "
            f"{count:,} parameters; at most {MAX_PARAMETERS:,} are accepted (choose smaller layers)"
        )
