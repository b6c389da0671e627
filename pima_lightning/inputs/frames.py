"""A pandas DataFrame's rows as a labelled table, checked as a CSV's are (``inputs/csvfile.py``).

For a Python session: ``PimaDataModule(frame=df, label_column="target")``. The label is the column
``label_column`` names, else the last one; every other column is a feature, but those ``ignore_columns``
names. Features must be numbers (booleans count as 0/1) within float32's reach, or missing (NaN, None); a row
without a label is left out; the label's distinct values (numbers, text, booleans) are the classes, in order.
Each refusal is one line naming the column, and the row by the frame's index.
"""

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pima_lightning.errors import InputError
from pima_lightning.inputs.csvfile import MAX_MAGNITUDE, LabelCodes, LabelledRows
from pima_lightning.inputs.files import CONTROL, printable

SOURCE = "<DataFrame>"  # what a run on a DataFrame names as its data, in messages and checkpoints


def labelled_frame(
    frame: pd.DataFrame, label_column: str | None = None, ignore_columns: Sequence[str] = ()
) -> LabelledRows:
    """The rows of ``frame`` in its order: float64 features, 0/1 labels, the columns' names."""
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
    cells, codes = frame.iloc[:, label], LabelCodes()
    numeric = pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)
    found = codes.numbers(cells.to_numpy(np.float64, na_value=np.nan)) if numeric else codes.codes(cells)
    labelled = ~np.isnan(found)
    if not labelled.any():
        raise InputError(f"frame: no row has a label; expected a class in the column {names[label]!r}")
    codes.check_classes(SOURCE, names[label])
    classes, position = codes.ordered()
    labels = position[found[labelled].astype(np.int64)]
    table = np.empty((int(labelled.sum()), len(features)))
    for position, column in enumerate(features):
        table[:, position] = _numbers(frame, column, names[column])[labelled]
    return LabelledRows(
        table, labels, [names[c] for c in features], names[label], int((~labelled).sum()), classes
    )


def _numbers(frame: pd.DataFrame, column: int, name: str) -> np.ndarray:
    """A feature column as float64, or InputError naming the first cell that is not a usable number."""
    values = frame.iloc[:, column]
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if (text := np.isnan(numbers) & values.notna().to_numpy()).any():
        row = int(np.flatnonzero(text)[0])
        raise InputError(
            f"{_cell(frame, row, name)}: {printable(str(values.iloc[row]))[:16]!r} is not a number; encode "
            f"the text column as numbers or leave it out (ignore_columns=[{name}])"
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
