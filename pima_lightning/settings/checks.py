"""Type-and-range checks for single settings, shared by the constructors, ``train`` and checkpoint loading.

Hand-written rather than Hydra structured configs: Hydra 1.3 reports a type error found while
composing (``seed=abc``) in five lines without the ``error:`` prefix every other mistake gets, and a
schema cannot say ranges (``optimizer.lr=0``, ``model.hidden=[0]``), which need code anyway. Each
check returns the value as the type it was checked for, or raises ``InputError`` with one line:
``<name>=<value>: expected <what>``.
"""

import math

from pima_lightning.errors import InputError
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
        raise InputError(f"{name}={_shown(value)}: expected a whole number{unit} {span}")
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
        raise InputError(f"{name}={_shown(value)}: expected {what} {span}")
    return float(value)


def _shown(value) -> str:
    """The value as the user typed it on the command line (``[12, 6]``, ``abc``), cut at 80 characters."""
    return f"{value!s:.80}" if isinstance(value, str) else f"{value!r:.80}"


def flag(name: str, value) -> bool:
    """``value`` if it is true or false (``data.stratify=yes`` reaches Python as the text 'yes')."""
    if not isinstance(value, bool):
        raise InputError(f"{name}={_shown(value)}: expected true or false")
    return value


# the network sizes every command accepts: what train builds, evaluate, predict, export and summary load
NETWORK_LIMITS = {"features": 100_000, "layers": 100, "width": 100_000, "replicas": 100_000}


def check_layers(hidden: list[int], replicas: int = 1, prefix: str = "") -> None:
    """Raise InputError unless the layer count, each width and the replicas fit ``NETWORK_LIMITS``."""
    if len(hidden) > NETWORK_LIMITS["layers"]:
        raise InputError(
            f"{prefix}hidden: {len(hidden)} layers; at most {NETWORK_LIMITS['layers']} are accepted"
        )
    for width in hidden:
        whole(f"{prefix}hidden width", width, 1, NETWORK_LIMITS["width"])
    whole(f"{prefix}replicas", replicas, 1, NETWORK_LIMITS["replicas"])


def check_network_size(n_features: int, hidden: list[int], replicas: int = 1, prefix: str = "") -> None:
    """Raise InputError unless the network fits ``NETWORK_LIMITS`` and ``MAX_PARAMETERS``."""
    whole(f"{prefix}n_features", n_features, 1, NETWORK_LIMITS["features"])
    check_layers(hidden, replicas, prefix)
    if (count := parameter_count(n_features, hidden, replicas)) > MAX_PARAMETERS:
        raise InputError(
            f"{prefix}hidden={list(hidden)!r:.80} with {n_features} features and {replicas} replica(s) has "
            f"{count:,} parameters; at most {MAX_PARAMETERS:,} are accepted (choose smaller layers)"
        )
