"""``data.missing_values``: the values of a table's feature columns that mean missing (Pima's impossible
zeros), set to NaN before anything is fitted, so that the medians and scales are those of real values."""

from collections.abc import Sequence

import numpy as np

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import printable


def mark_missing(
    features: np.ndarray, missing_values: dict | None, names: Sequence[str] | None
) -> np.ndarray:
    """``features`` (a copy) with NaN where a column holds a value ``missing_values`` lists for it: a
    column named as the header ``names`` it, or, in a file without a header, by its number from 1."""
    if not missing_values:
        return features
    marked = features.copy()
    for column, values in missing_values.items():
        if names is not None and column in names:
            index = list(names).index(column)
        elif names is None and isinstance(column, int) and 1 <= column <= features.shape[1]:
            index = column - 1
        else:
            columns = (
                f"a feature's name from the header ({', '.join(names)[:200]})"
                if names is not None
                else f"a feature column's number, 1 to {features.shape[1]} (the file has no header)"
            )
            raise InputError(
                f"data.missing_values={printable(str(missing_values))[:200]}: {printable(repr(column))[:80]} "
                f"is not a feature column; expected {columns}"
            )
        marked[np.isin(marked[:, index], values), index] = np.nan
    return marked
