"""A pandas DataFrame's rows as a labelled table, checked as a CSV's are (``inputs/csvfile.py``).

For a Python session: ``PimaDataModule(frame=df, label_column="target")``. The label is the column
``label_column`` names, else the last one; every other column is a feature, but those ``ignore_columns``
names. Features must be numbers (booleans count as 0/1) within float32's reach, or missing (NaN, None), or
categories: a column of text or pandas' ``category`` dtype, or one ``categorical_columns`` names, coded as
a CSV's are. A row without a label is left out; the label's distinct values (numbers, text, booleans) are
the classes, in order.
Each refusal is one line naming the column, and the row by the frame's index.
"""

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pima_lightning.errors import InputError
from pima_lightning.inputs.csvfile import (
    MAX_MAGNITUDE,
    LabelledRows,
    ValueCodes,
    check_categories,
    mostly_text,
)
from pima_lightning.inputs.files import CONTROL, printable

SOURCE = "<DataFrame>"  # what a run on a DataFrame names as its data, in messages and checkpoints


def labelled_frame(
    frame: pd.DataFrame,
    label_column: str | None = None,
    ignore_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    categories: dict[int, list[str]] | None = None,
) -> LabelledRows:
    """The rows of ``frame`` in its order: float64 features (a categorical one's cells coded by their
    category's index), the labels' class indices, the columns' names. ``categories`` fixes the
    categorical features and their categories (a trained model's, by feature index), as
    ``read_labelled_csv`` does."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"frame: expected a pandas DataFrame, found {type(frame).__name__}")
    names = [str(name) for name in frame.columns]
    if bad := [name for name in names if not name or CONTROL.search(name)]:
        raise InputError(f"frame: the column name {printable(bad[0])[:80]!r} is empty or not printable")
    if repeated := [name for name in dict.fromkeys(names) if names.count(name) > 1]:
        raise InputError(
            f"frame: the column {repeated[0][:80]!r} appears more than once; give each its own name"
        )
    for setting, wanted in (
        ("label_column", [label_column] if label_column else []),
        ("ignore_columns", ignore_columns),
        ("categorical_columns", [str(name) for name in categorical_columns or ()]),
    ):
        if missing := [name for name in wanted if name not in names]:
            raise InputError(
                f"{setting}: the frame has no column {printable(str(missing[0]))[:80]!r} "
                f"(its columns: {', '.join(names)[:300]})"
            )
    label = names.index(label_column) if label_column else len(names) - 1
    if names[label] in ignore_columns:
        raise InputError(f"ignore_columns: {names[label]!r} is the label column; ignore feature columns only")
    features = [
        column for column in range(len(names)) if column != label and names[column] not in ignore_columns
    ]
    if not features:
        raise InputError("frame: no feature column; a table needs a label column and at least one feature")
    if not len(frame):
        raise InputError("frame: no rows")
    cells, codes = frame.iloc[:, label], ValueCodes()
    numeric = pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)
    found = codes.numbers(cells.to_numpy(np.float64, na_value=np.nan)) if numeric else codes.codes(cells)
    labelled = ~np.isnan(found)
    if not labelled.any():
        raise InputError(f"frame: no row has a label; expected a class in the column {names[label]!r}")
    codes.check_classes(SOURCE, names[label])
    classes, labels = codes.remapped(found[labelled])
    labels = labels.astype(np.int64)
    declared = {names.index(str(name)) for name in categorical_columns or ()}
    if declared & {label}:
        raise InputError(f"categorical_columns: {names[label]!r} is the label column; name feature columns")
    fixed = {features[int(index)]: names for index, names in (categories or {}).items()}
    table, found = np.empty((int(labelled.sum()), len(features))), {}
    for position, column in enumerate(features):
        cells = frame.iloc[:, column]
        if column in fixed or (categories is None and (column in declared or _is_text(cells))):
            values = ValueCodes(fixed.get(column))
            found[position], coded = values.remapped(values.codes(cells))
            check_categories("frame", names[column], found[position], coded, column in declared or column
                             in fixed, f"ignore_columns=[{printable(names[column])[:40]}]")  # fmt: skip
            table[:, position] = coded[labelled]
        else:
            table[:, position] = _numbers(frame, column, names[column])[labelled]
    rows = LabelledRows(
        table, labels, [names[c] for c in features], names[label], int((~labelled).sum()), classes
    )
    return rows._replace(categories=found or None)


def _is_text(cells: pd.Series) -> bool:
    """Whether a column is categories: pandas' ``category`` dtype, or text most of whose values are not
    numbers (a column of numbers with a stray word is numbers, and the word a mistake to name)."""
    if isinstance(cells.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_numeric_dtype(cells) or pd.api.types.is_bool_dtype(cells):
        return False
    present = cells.dropna()
    return mostly_text(len(present), int(pd.to_numeric(present, errors="coerce").notna().sum()))


def _numbers(frame: pd.DataFrame, column: int, name: str) -> np.ndarray:
    """A feature column as float64, or InputError naming the first cell that is not a usable number."""
    values = frame.iloc[:, column]
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if (text := np.isnan(numbers) & values.notna().to_numpy()).any():
        row = int(np.flatnonzero(text)[0])
        raise InputError(
            f"{_cell(frame, row, name)}: {printable(str(values.iloc[row]))[:16]!r} is not a number, though "
            f"most of the column's values are; correct it, or make it NaN to mark it missing "
            f"(categorical_columns=[{printable(name)[:40]}] reads the column as categories)"
        )
    if (bad := np.abs(numbers) > MAX_MAGNITUDE).any():  # NaN, a missing value, is filled by the model
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{_cell(frame, row, name)}: {float(numbers[row])!r} is not a finite number within "
            f"±{MAX_MAGNITUDE:.0e}; remove or rescale it, or make it NaN to mark it missing"
        )
    return numbers


def _cell(frame: pd.DataFrame, row: int, name: str) -> str:
    """Where a bad cell is: ``frame, row 17, column 'bmi'`` (the row by the frame's index)."""
    return f"frame, row {printable(repr(frame.index[row]))[:40]}, column {printable(name)[:40]!r}"


def frame_sha256(rows: LabelledRows) -> str:
    """A digest of the rows as read (features and labels): what a run on a DataFrame records of its data."""
    digest = hashlib.sha256(np.ascontiguousarray(rows.features).tobytes())
    digest.update(np.ascontiguousarray(rows.labels).tobytes())
    return digest.hexdigest()
