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
N_COLUMNS = len(FEATURE_NAMES) + 1  # features, then the label


def read_pima_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(features, labels)``: float64 ``(n, 8)`` and int64 ``(n,)`` in file order."""
    path = Path(path)
    rows = [_parse_row(path, line, cells) for line, cells in _data_lines(path)]
    if not rows:
        raise InputError(
            f"{path}: no data rows; expected lines of {N_COLUMNS} comma-separated numbers "
            "(8 features, then a 0/1 label)"
        )
    table = np.array(rows, dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _data_lines(path: Path):
    """Yield ``(line_number, cells)`` for each non-blank line, skipping a header line."""
    if not path.exists():
        raise InputError(f"{path}: file not found; give an existing CSV with data.path=/path/to/file.csv")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; data.path must name a CSV file")
    try:
        # utf-8-sig drops a byte-order mark; newline="" lets csv handle \r\n line endings
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = True
            for cells in (reader := csv.reader(handle)):
                if not any(cell.strip() for cell in cells):
                    continue
                if first and _is_header(cells):
                    first = False
                    continue
                first = False
                yield reader.line_num, cells
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason}); expected a CSV file") from None


def _is_header(cells: list[str]) -> bool:
    """A header is a first line of the right width in which no cell is a number."""
    return len(cells) == N_COLUMNS and not any(_is_number(cell) for cell in cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_row(path: Path, line: int, cells: list[str]) -> list[float]:
    """Convert one line's cells to floats, or raise InputError naming the line and the problem."""
    if len(cells) != N_COLUMNS:
        hint = " (the file looks ';'-delimited; save it with commas)" if ";" in cells[0] else ""
        raise InputError(
            f"{path}, line {line}: expected {N_COLUMNS} comma-separated values "
            f"(8 features, then a 0/1 label), found {len(cells)}{hint}"
        )
    values = []
    for column, cell in enumerate(cells, start=1):
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
    if values[-1] not in (0.0, 1.0):
        raise InputError(
            f"{path}, line {line}: the label (column {N_COLUMNS}) is {cells[-1].strip()!r}, expected 0 or 1"
        )
    return values
