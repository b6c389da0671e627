"""``data.missing_values``: the values of a table's feature columns that mean missing (Pima's impossible
zeros), set to NaN before anything is fitted, so that the medians and scales are those of real values."""

from collections.abc import Sequence

import numpy as np

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import printable
from pima_lightning.model import marked_columns


def mark_missing(
    features: np.ndarray, missing_values: dict | None, names: Sequence[str] | None
) -> np.ndarray:
    """``features`` (a copy) with NaN where a column holds a value ``missing_values`` lists for it: a
    column named as the header ``names`` it, or, in a file without a header, by its number from 1 (the
    model's own reading of the setting, ``model.marked_columns``)."""
    if not missing_values:
        return features
    try:
        marks = marked_columns(missing_values, features.shape[1], names)
    except ValueError as err:
        raise InputError(
            f"data.missing_values={printable(str(missing_values))[:200]}: {printable(str(err))}"
        ) from None
    marked = features.copy()
    for index, values in marks.items():
        marked[np.isin(marked[:, index], values), index] = np.nan
    return marked
