"""Read and validate a Pima CSV: 8 numeric feature columns and a 0/1 label, header optional.

Hand-written rather than ``numpy.loadtxt``: errors must name the file, the line and what was
expected in one sentence a user can act on, and a header row must be recognised.
"""

import csv
import math
from pathlib import Path

import numpy as np

from pima_lightning.errors import InputError

FEATURE_NAMES = (
    "pregnancies",
    "glucose",
    "blood_pressure",
    "skin_thickness",
    "insulin",
    "bmi",
    "diabetes_pedigree",
    "age",
)
N_FEATURES = len(FEATURE_NAMES)
N_COLUMNS = N_FEATURES + 1  # features, then the label
LABELLED = f"{N_COLUMNS} comma-separated values (8 features, then a 0/1 label)"
FEATURES_ONLY = f"{N_FEATURES} or {N_COLUMNS} comma-separated values (8 features, optionally a label)"


def read_pima_csv(path: str | Path, option: str = "data.path") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(features, labels)``: float64 ``(n, 8)`` and int64 ``(n,)`` in file order.

    ``option`` is the setting that named the file; error messages tell the user to change it.
    """
    table = _read_table(Path(path), option, widths=(N_COLUMNS,), expected=LABELLED, labelled=True)
    return table[:, :N_FEATURES], table[:, N_FEATURES].astype(np.int64)


def read_feature_rows(path: str | Path, option: str = "input") -> np.ndarray:
    """Return the features, float64 ``(n, 8)``, of rows that may or may not end with a label (ignored)."""
    table = _read_table(Path(path), option, widths=(N_FEATURES, N_COLUMNS), expected=FEATURES_ONLY)
    return table[:, :N_FEATURES]


def _read_table(
    path: Path, option: str, widths: tuple[int, ...], expected: str, labelled=False
) -> np.ndarray:
    """Parse every data line; all lines must have the width of the first one."""
    rows, first_width = [], None
    for line, cells in _data_lines(path, option, widths):
        first_width = first_width or len(cells)
        if len(cells) in widths and len(cells) != first_width:
            raise InputError(
                f"{path}, line {line}: {len(cells)} values, but the lines before it have {first_width}"
            )
        rows.append(_parse_row(path, line, cells, widths, expected, labelled))
    if not rows:
        raise InputError(f"{path}: no data rows; expected lines of {expected}")
    return np.array(rows, dtype=np.float64)


def _data_lines(path: Path, option: str, widths: tuple[int, ...]):
    """Yield ``(line_number, cells)`` for each non-blank line, skipping a header line."""
    if not path.exists():
        raise InputError(f"{path}: file not found; give an existing CSV with {option}=/path/to/file.csv")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; {option} must name a CSV file")
    try:
        # utf-8-sig drops a byte-order mark; newline="" lets csv handle \r\n line endings
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = True
            for cells in (reader := csv.reader(handle)):
                if not any(cell.strip() for cell in cells):
                    continue
                if first and _is_header(cells, widths):
                    first = False
                    continue
                first = False
                yield reader.line_num, cells
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason}); expected a CSV file") from None


def _is_header(cells: list[str], widths: tuple[int, ...]) -> bool:
    """A header is a first line of an accepted width in which no cell is a number."""
    return len(cells) in widths and not any(_is_number(cell) for cell in cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_row(
    path: Path, line: int, cells: list[str], widths: tuple[int, ...], expected: str, labelled: bool
) -> list[float]:
    """Convert one line's cells to floats, or raise InputError naming the line and the problem."""
    if len(cells) not in widths:
        hint = " (the file looks ';'-delimited; save it with commas)" if ";" in cells[0] else ""
        raise InputError(f"{path}, line {line}: expected {expected}, found {len(cells)}{hint}")
    # a label column is parsed only where it is used
    parsed = cells if labelled else cells[:N_FEATURES]
    values = []
    for column, cell in enumerate(parsed, start=1):
        try:
            value = float(cell)
        except ValueError:
            raise InputError(
                f"{path}, line {line}, column {column}: {cell.strip()!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise InputError(
                f"{path}, line {line}, column {column}: {cell.strip()!r} is not a finite number; "
                "remove or impute that row"
            )
        values.append(value)
    if labelled and values[-1] not in (0.0, 1.0):
        raise InputError(
            f"{path}, line {line}: the label (column {N_COLUMNS}) is {cells[-1].strip()!r}, expected 0 or 1"
        )
    return values
