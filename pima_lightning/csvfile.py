"""Read and validate a Pima CSV: 8 numeric feature columns and a 0/1 label, header optional.

Two readers, one answer. numpy's C parser (``np.loadtxt``) reads the file in one pass into one
float64 array (a 200 MB, 6.9M-row file: about 2x its float32 size at peak, see
``benchmarks/csv_memory.py``), and the table is then checked whole. Only when numpy cannot parse a
file, or the check finds a bad value, is it read again line by line in Python, so that the error
names the file, the line, the column and what was expected, and a header row is recognised.
Either way no line longer than ``MAX_LINE_CHARS`` is read whole, and only regular files are opened.
"""

import csv
import itertools
import math
import stat
import warnings
from array import array
from collections.abc import Iterator
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
MAX_LINE_CHARS = 65_536  # a row of 9 numbers takes under 100; a longer line is not one of ours
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model computes in float32: larger values become inf
DELIMITERS = {";": "';'", "\t": "tab"}  # other delimiters a CSV is saved with, and what to call them


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
    """The data rows as a float64 array; all lines must have the width of the first one."""
    _check_regular_file(path, option)
    table = _parsed_by_numpy(path, widths)
    if table is None or not _acceptable(table, widths, labelled):
        table = _parsed_line_by_line(path, option, widths, expected, labelled)
    return table


def _check_regular_file(path: Path, option: str) -> None:
    """Refuse a missing path, a folder, and what is not a regular file (a FIFO or a device would never
    end, or block), following symbolic links, before anything is opened."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(
            f"{path}: file not found; give an existing CSV with {option}=/path/to/file.csv"
        ) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; {option} must name a CSV file")
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{path}: not a regular file (a device, FIFO or socket); {option} must name a CSV file"
        )


def _parsed_by_numpy(path: Path, widths: tuple[int, ...]) -> np.ndarray | None:
    """Every data row parsed by numpy in one pass, or None if numpy cannot parse the file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = (line for line in _bounded_lines(handle, path) if line.strip())
            first = next(lines, None)
            if first is None:
                return None
            body = lines if _is_header(next(csv.reader([first])), widths) else itertools.chain([first], lines)
            with warnings.catch_warnings():  # a header alone: the line-by-line reader says "no data rows"
                warnings.filterwarnings("ignore", "loadtxt: input contained no data")
                return np.loadtxt(body, delimiter=",", comments=None, quotechar='"', ndmin=2)
    except InputError:
        raise
    except (
        ValueError
    ):  # numbers numpy cannot parse, a ragged row, not UTF-8: the line-by-line reader says where
        return None


def _acceptable(table: np.ndarray, widths: tuple[int, ...], labelled: bool) -> bool:
    """Whether numpy's table holds rows of an accepted width, features within float32's range and 0/1
    labels; checked a column at a time to keep temporary arrays small."""
    if len(table) == 0 or table.shape[1] not in widths:
        return False
    features_ok = all(bool((np.abs(column) <= FLOAT32_MAX).all()) for column in table[:, :N_FEATURES].T)
    return features_ok and (not labelled or bool(np.isin(table[:, N_FEATURES], (0.0, 1.0)).all()))


def _parsed_line_by_line(
    path: Path, option: str, widths: tuple[int, ...], expected: str, labelled: bool
) -> np.ndarray:
    """Parse every data line in Python; raise InputError naming the first bad line, if any."""
    values, width = array("d"), None  # 8 bytes a value, as numpy's table: no list of Python floats
    for line, cells in _data_lines(path, widths):
        width = width or len(cells)
        if len(cells) in widths and len(cells) != width:
            raise InputError(
                f"{path}, line {line}: {len(cells)} values, but the lines before it have {width}"
            )
        values.extend(_parse_row(path, line, cells, widths, expected, labelled))
    if width is None:
        raise InputError(f"{path}: no data rows; expected lines of {expected}")
    parsed = width if labelled else N_FEATURES
    return np.frombuffer(values, dtype=np.float64).reshape(-1, parsed)


def _bounded_lines(handle, path: Path) -> Iterator[str]:
    """The file's lines, refusing one longer than ``MAX_LINE_CHARS`` before it is read whole."""
    for number in itertools.count(1):
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise InputError(
                f"{path}, line {number}: longer than {MAX_LINE_CHARS:,} characters; "
                "expected a CSV row of numbers"
            )
        yield line


def _data_lines(path: Path, widths: tuple[int, ...]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` for each non-blank line, skipping a header line."""
    try:
        # utf-8-sig drops a byte-order mark; newline="" lets csv handle \r\n line endings
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = True
            for cells in (reader := csv.reader(_bounded_lines(handle, path))):
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
        seen = [name for delimiter, name in DELIMITERS.items() if delimiter in cells[0]]
        hint = f" (the file looks {seen[0]}-delimited; save it with commas)" if seen else ""
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
        if abs(value) > FLOAT32_MAX:
            raise InputError(
                f"{path}, line {line}, column {column}: {cell.strip()!r} is beyond float32's range "
                f"(±{FLOAT32_MAX:.1e}), in which the model computes; remove or rescale that value"
            )
        values.append(value)
    if labelled and values[-1] not in (0.0, 1.0):
        raise InputError(
            f"{path}, line {line}: the label (column {N_COLUMNS}) is {cells[-1].strip()!r}, expected 0 or 1"
        )
    return values
