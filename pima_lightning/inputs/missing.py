"""``data.missing_values``: the values of a table's feature columns that mean missing (Pima's impossible
zeros), set to NaN before anything is fitted, so that the medians and scales are those of real values."""

from collections.abc import Sequence

import numpy as np

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import printable
from pima_lightning.model import marked_columns


def mark_missing(
    features: np.ndarray,
    missing_values: dict | None,
    names: Sequence[str] | None,
    categories: dict[int, list[str]] | None = None,
) -> np.ndarray:
    """``features`` (a copy) with NaN where a column holds a value ``missing_values`` lists for it: a
    column named as the header ``names`` it, or, in a file without a header, by its number from 1 (the
    model's own reading of the setting, ``model.marked_columns``). A categorical column (``categories``)
    is refused: its values are categories, and its missing cells one of them already."""
    if not missing_values:
        return features
    setting = f"data.missing_values={printable(str(missing_values))[:200]}"
    try:
        marks = marked_columns(missing_values, features.shape[1], names)
    except ValueError as err:
        raise InputError(f"{setting}: {printable(str(err))}") from None
    if categorical := [index for index in marks if index in (categories or {})]:
        column = names[categorical[0]] if names else categorical[0] + 1
        raise InputError(
            f"{setting}: {printable(str(column))[:80]!r} is a categorical column, whose empty and NA cells "
            "are a category of their own already: declare missing values for numeric columns only"
        )
    marked = features.copy()
    for index, values in marks.items():
        marked[np.isin(marked[:, index], values), index] = np.nan
    return marked
