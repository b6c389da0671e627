"""Read and validate a classification CSV: numeric feature columns and a label of classes, header optional.

The Pima file has 8 features, then the label, and no header; any other CSV works the same way: the
features are every column but the label (the last one, or the one ``data.label_column`` names in a
header), and a header's names are kept as the feature names. A feature cell may be missing (empty, or
a mark such as ``NA`` or ``?``): it is read as NaN, and the model fills it (``model.FillMissing``).

Two readers, one answer. pandas' C parser reads the file in one pass, a chunk of rows at a time, into
one float64 array (a 200 MB, 6.9M-row file: see ``benchmarks/csv_memory.py`` for its time and peak
memory), and the table is then checked whole. Only when pandas cannot parse a file, or the check finds
a bad value, is it read again line by line in Python, so that the error names the file, the line, the
column and what was expected. Either way no line longer than ``MAX_LINE_CHARS`` is read whole, and
only regular files are opened.
"""

import csv
import io
import itertools
import math
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pima_lightning.errors import InputError
from pima_lightning.inputs.files import CONTROL, MAX_CSV_BYTES, check_regular, printable

MAX_LINE_CHARS = 65_536  # a row of 9 numbers takes under 100; a longer line is not a row of numbers
# the model computes in float32 (largest 3.4e38); values beyond this bound could overflow it even once
# centred and scaled (3e38 - -3e38 is inf), so a prediction would be nan: far beyond any measurement
MAX_MAGNITUDE = 1e30
MISSING_MARKS = {"NA", "N/A", "NAN", "NULL", "NONE", "?", "-", "MISSING"}  # how tables write a missing value
# ... as pandas reads them (it compares cells exactly): an empty cell, and each mark in three cases
NA_VALUES = [
    "",
    *sorted({case(mark) for mark in MISSING_MARKS for case in (str.upper, str.lower, str.title)}),
]
SCAN_BYTES = 1 << 20  # how much of a file is looked at a time for a character that is not blank
CHUNK_ROWS = 1 << 16  # rows pandas parses at a time: a few MB beside the table
QUOTED_CHARS = 16  # at most this much of a refused file's text is quoted in an error
DELIMITERS = {";": "';'", "\t": "tab"}  # other delimiters a CSV is saved with, and what to call them


class LabelledRows(NamedTuple):
    """A labelled CSV's rows: float64 ``features (n, k)``, int64 ``labels (n,)`` (each row's class, an
    index into ``classes``), the features' and the label's names from its header (None without one), how
    many rows were left out for having no label (an empty cell or a mark such as ``NA``), and the classes:
    the label column's distinct values in order, numbers by value (``0``, ``1``), then text."""

    features: np.ndarray
    labels: np.ndarray
    feature_names: list[str] | None
    label_name: str | None = None
    unlabelled: int = 0
    classes: list[str] | None = None  # the label's distinct values, in order: label k is classes[k]
    # each categorical feature's categories, in order, by the feature's index: its cells hold their index
    # among them (NaN where missing; -1 for a value a fixed list lacks)
    categories: dict[int, list[str]] | None = None


class Columns(NamedTuple):
    """Which cells of a line are read: ``features`` (column indices), ``label`` (its index, or None when
    the label is not read), ``widths`` (accepted cell counts; None: any, as long as every line has the
    first line's) and ``expected`` (what a line must hold, for messages)."""

    features: Sequence[int] | None  # None: every column but the label
    label: int | None
    widths: tuple[int, ...] | None
    expected: str


def read_labelled_csv(
    path: str | Path,
    option: str = "data.path",
    label_column: str | None = None,
    ignore_columns: Sequence[str] = (),
    categorical_columns: Sequence[str | int] = (),
    categories: dict[int, list[str]] | None = None,
) -> LabelledRows:
    """The rows of a labelled CSV in file order. The label is the last column, or the header's column
    named ``label_column``; every other column is a feature, but those the header names in
    ``ignore_columns`` (an ID, a date: never read as numbers). ``option`` is the setting that named the
    file: error messages tell the user to change it.

    A feature column of text (most of its cells not numbers) is categorical, as is each column
    ``categorical_columns`` names (by the header's name, or by its number from 1 without a header): its
    cells are coded by their category's index (``LabelledRows.categories``). ``categories`` fixes which
    features are categorical and their categories (a trained model's, by feature index): a value not
    among them is coded -1, and no other column is read as categories."""
    path = Path(path)
    _check_regular_file(path, option)
    _check_not_blank(path)
    header = _header(path)
    label = -1
    _check_header_width(path, header)
    if label_column is not None:
        if header is None:
            raise InputError(
                f"data.label_column={label_column}: {path} has no header line naming its columns; "
                "add one, or leave data.label_column unset to take the last column as the label"
            )
        if label_column not in header:
            raise InputError(
                f"data.label_column={label_column}: {path} has no such column (its header: "
                f"{', '.join(header)[:300]})"
            )
        label = header.index(label_column)
    if ignore_columns and header is None:
        raise InputError(
            f"data.ignore_columns={_listed(ignore_columns)}: {path} has no header line naming its columns; "
            "add one, or leave data.ignore_columns unset"
        )
    if missing := [name for name in ignore_columns if name not in header]:
        raise InputError(
            f"data.ignore_columns={_listed(ignore_columns)}: {path} has no column "
            f"{printable(missing[0])[:80]!r} (its header: {', '.join(header)[:300]})"
        )
    ignored = [header.index(name) for name in ignore_columns]
    if ignored:
        label %= len(header)
        if label in ignored:
            raise InputError(
                f"data.ignore_columns={_listed(ignore_columns)}: {header[label]!r} is the label column; "
                "a column to ignore must be a feature column"
            )
        if len(header) - len(set(ignored)) < 2:
            raise InputError(f"data.ignore_columns={_listed(ignore_columns)}: no feature column is left")
    if ignored:
        expected = "{width} comma-separated values, one for each column of the header"
    elif label == -1:
        expected = "{width} comma-separated values ({features} features, then a label)"
    else:
        expected = "{width} comma-separated values ({features} features and the label " + f"{label_column!r})"
    kept = [column for column in range(len(header)) if column not in ignored] if ignored else None
    codes = ValueCodes()
    feature_columns = _feature_columns(path, header, label, ignored)
    declared = _declared(header, feature_columns, categorical_columns)
    coded = _categorical(path, feature_columns, declared, categories)
    table = _read_table(
        path, option, Columns(kept, label, None, expected), header, ignored, codes, coded, categories is None
    )
    names = header if kept is None else [header[column] for column in kept]
    label = label % table.shape[1] if kept is None else kept.index(label)
    label_name = None if header is None else names[label]
    found = {}
    for column, values in coded.items():  # the categories in order, and the cells' indices among them
        at = column if kept is None else kept.index(column)
        found[feature_columns.index(column)], table[:, at] = values.remapped(table[:, at])
        name = printable(header[column])[:40] if header else None
        check_categories(path, name or str(column + 1), found[feature_columns.index(column)], table[:, at],
                         categories is not None or column in declared,
                         f"data.ignore_columns=[{name}]" if name else "remove it")  # fmt: skip
    unlabelled = np.isnan(table[:, label])
    if unlabelled.any():  # rows without a label: nothing to learn or score
        table = table[~unlabelled]
        if not len(table):
            raise InputError(f"{path}: no row has a label; expected a class in the label column")
    codes.check_classes(path, label_name)
    classes, labels = codes.remapped(table[:, label])  # re-indexed only when text put them out of order
    width = table.shape[1]
    features = table[:, :label] if label == width - 1 else np.delete(table, label, axis=1)
    feature_names = None if header is None else [name for i, name in enumerate(names) if i != label]
    rows = LabelledRows(
        features, labels.astype(np.int64), feature_names, label_name, int(unlabelled.sum()), classes
    )
    return rows._replace(categories=dict(sorted(found.items())) or None)


MAX_CATEGORIES = 200  # categories a column may have: more are an ID or free text, whose one-hot would swamp


def _feature_columns(path: Path, header: list[str] | None, label: int, ignored: Sequence[int]) -> list[int]:
    """The file's feature columns: all but the label and the ignored ones (counted in the header, or
    in the first data line of a file without one)."""
    width = len(header) if header else len(next(_data_lines(path), (0, []))[1])
    return [column for column in range(width) if column != label % max(width, 1) and column not in ignored]


def _categorical(
    path: Path, feature_columns: list[int], declared: list[int], categories: dict[int, list[str]] | None
) -> "dict[int, ValueCodes]":
    """A coder for each categorical file column known before reading: those ``categories`` fixes (a
    model's, by feature index), else the ``declared`` file columns (``data.categorical_columns``)."""
    if categories is not None:
        if bad := [index for index in categories if not 0 <= int(index) < len(feature_columns)]:
            raise InputError(f"{path}: the model's categorical feature {bad[0]} is not among its features")
        return fixed_coders(categories, feature_columns)
    return {column: ValueCodes() for column in declared}


def fixed_coders(categories: dict[int, list[str]] | None, columns: Sequence[int]) -> "dict[int, ValueCodes]":
    """A coder of each of a model's categorical features (``categories``, by feature index), by the file
    column ``columns`` gives that feature."""
    return {columns[int(index)]: ValueCodes(names) for index, names in (categories or {}).items()}


def _declared(
    header: list[str] | None, feature_columns: list[int], declared: Sequence[str | int]
) -> list[int]:
    """The file columns ``data.categorical_columns`` names: a header's names, or feature numbers from 1 in
    a file without a header; InputError for one that is not a feature column."""
    columns = []
    for column in declared or ():
        if header is not None and column in header and header.index(column) in feature_columns:
            columns.append(header.index(column))
        elif header is None and isinstance(column, int) and 1 <= column <= len(feature_columns):
            columns.append(feature_columns[column - 1])
        else:
            expected = (
                "a feature's name from the header ("
                + ", ".join(header[c] for c in feature_columns)[:200]
                + ")"
                if header is not None
                else f"a feature column's number, 1 to {len(feature_columns)} (the file has no header)"
            )
            raise InputError(
                f"data.categorical_columns={_listed([str(c) for c in declared])}: "
                f"{printable(str(column))[:80]!r} is not a feature column; expected {expected}"
            )
    return columns


def check_categories(
    source, column: str, names: list[str], codes: np.ndarray, declared: bool, leave_out: str
) -> None:
    """Refuse, in one line, a categorical ``column`` of more than ``MAX_CATEGORIES`` values, or a text
    column found to be categorical (not ``declared``) whose every value differs: an ID, or free text
    (``leave_out`` says how to leave it out)."""
    named = repr(column) if not column.isdigit() else column
    present = int((~np.isnan(codes)).sum())
    shown = ", ".join(repr(name)[:20] for name in names[:3])
    if len(names) > MAX_CATEGORIES:
        raise InputError(
            f"{source}: column {named} holds {len(names):,} distinct values ({shown}, ...); at most "
            f"{MAX_CATEGORIES} categories are one-hot encoded: is it an ID or free text? ({leave_out})"
        )
    if not declared and len(names) > 20 and len(names) == present:
        raise InputError(
            f"{source}: column {named} is text with a different value in every row ({shown}, ...): an ID or "
            f"free text, not categories; leave it out ({leave_out})"
        )


def _listed(names: Sequence[str]) -> str:
    """Column names as typed on the command line: ``[id,date]``."""
    return f"[{','.join(printable(str(name))[:80] for name in names)}]"


def read_feature_rows(
    path: str | Path,
    n_features: int,
    option: str = "input",
    feature_names: Sequence[str] | None = None,
    categories: dict[int, list[str]] | None = None,
) -> np.ndarray:
    """The features, float64 ``(n, n_features)``, of rows that may also hold a label (not read).

    With ``feature_names`` (the model's, from its training CSV's header) and a header in the file, the
    features are the columns of those names, in that order, and the file's other columns (a label, an
    ID, text) are not read; a file without a header is read by position (the first ``n_features``
    columns, then at most a label); a header the model has no names to match is refused. ``categories``
    (the model's, by feature index): those features' cells are coded by their place among them, -1 for a
    value the model never saw.
    """
    path = Path(path)
    _check_regular_file(path, option)
    _check_not_blank(path)
    header, columns = _header(path), list(range(n_features))
    _check_header_width(path, header)
    if header is not None and feature_names is None:  # reading named columns by position could misplace them
        raise InputError(
            f"{path}: its header names columns ({', '.join(header)[:120]}), but the model was trained on a "
            f"CSV without a header, so they cannot be matched by name; remove the header line to read the "
            f"first {n_features} columns in the order of the training CSV"
        )
    if header is not None and feature_names is not None:
        missing = [name for name in feature_names if name not in header]
        if missing:
            raise InputError(
                f"{path}: no column {missing[0]!r}, which the model was trained on; its columns: "
                f"{', '.join(feature_names)[:300]}"
            )
        columns = [header.index(name) for name in feature_names]
        others = [column for column in range(len(header)) if column not in columns]
        expected = (
            f"{{width}} comma-separated values, as the header names ({n_features} of them the features)"
        )
        coded = fixed_coders(categories, columns)
        return _read_table(path, option, Columns(columns, None, None, expected), header, others, coded=coded)
    widths = (n_features, n_features + 1)
    expected = (
        f"{n_features} or {n_features + 1} comma-separated values ({n_features} features, optionally a label)"
    )
    coded = fixed_coders(categories, columns)
    return _read_table(path, option, Columns(columns, None, widths, expected), header, coded=coded)


def _read_table(
    path: Path, option: str, columns: Columns, header: list[str] | None, ignored: Sequence[int] = (),
    labels: "ValueCodes | None" = None, coded: "dict[int, ValueCodes] | None" = None, infer: bool = False,
) -> np.ndarray:  # fmt: skip
    """The data rows as a float64 array: every column of a labelled line (its label as its code in
    ``labels``, a missing label as NaN), or the columns read, in their order; all lines must have the
    width of the first one. ``header``: the file's names; ``ignored``: columns never read as numbers;
    ``coded``: the categorical columns, each cell its code in the column's coder, to which ``infer`` adds
    the text feature columns found (most of their cells not numbers)."""
    coded = {} if coded is None else coded
    table = _parsed_by_pandas(path, header, ignored, labels, columns.label, coded, infer)
    if table is None or not _acceptable(table, columns):
        fresh = ValueCodes() if labels is not None else None  # the codes of the pandas pass, forgotten
        fresh_coded = {column: values.fresh() for column, values in coded.items()}
        table = _parsed_line_by_line(path, option, columns, header, fresh, fresh_coded)
        if labels is not None:
            labels.keys = fresh.keys
        for column, values in fresh_coded.items():
            coded[column].keys = values.keys
        return table
    if columns.features is None:
        return table
    wanted = list(columns.features)
    return table[:, : len(wanted)] if wanted == list(range(len(wanted))) else table[:, wanted]


MAX_CLASSES = 20  # a label column of more distinct values than this is no class label


class ValueCodes:
    """The distinct values of a label column (its classes) or of a categorical feature column (its
    categories), each given a code as it is first met: a number by its value (``1`` and ``1.0`` are one
    value), text as written, stripped; a missing cell (empty, ``NA``, ...) is NaN. ``ordered`` then puts
    the values in order: numbers by value, then text.

    ``known``: a fixed list of values (a trained model's categories, ``ordered``'s names), coded by their
    place in it; a value not in it is coded -1 (unseen)."""

    def __init__(self, known: Sequence[str] | None = None) -> None:
        self.keys: dict[float | str, int] = {}
        self.frozen = known is not None
        for name in known or ():
            self.keys.setdefault(_key(name), len(self.keys))

    def fresh(self) -> "ValueCodes":
        """A coder of the same fixed values, or of none yet."""
        return ValueCodes([_name(key) for key in self.keys] if self.frozen else None)

    def code(self, cell: str) -> float:
        """The code of one cell (NaN for a missing value)."""
        text = str(cell).strip()
        if not text or text.upper() in MISSING_MARKS:
            return math.nan
        key = _key(text)
        if self.frozen:
            return float(self.keys.get(key, -1))
        return float(self.keys.setdefault(key, len(self.keys)))

    def codes(self, cells: pd.Series) -> np.ndarray:
        """The codes of a chunk of label cells (text, or NaN where pandas read a missing value)."""
        found, distinct = pd.factorize(cells, use_na_sentinel=True)
        lookup = np.array([*(self.code(cell) for cell in distinct), math.nan])
        return lookup[found]  # -1, a missing label, is the last entry: NaN

    def numbers(self, values: np.ndarray) -> np.ndarray:
        """The codes of labels read as numbers (NaN where missing): ``values`` itself where the codes are
        the values (0/1 labels), so that a large table's label column is not copied."""
        distinct = pd.unique(values)  # a hash table's pass: no sorted copy of the column
        distinct = np.sort(distinct[~np.isnan(distinct)])
        lookup = np.array([self.keys.setdefault(float(value), len(self.keys)) for value in distinct], float)
        if np.array_equal(lookup, distinct):
            return values
        codes = lookup[np.searchsorted(distinct, values).clip(max=max(len(distinct) - 1, 0))]
        codes[np.isnan(values)] = math.nan
        return codes

    def remapped(self, codes: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The values in order (``ordered``), and ``codes`` as indices among them (NaN and -1 kept)."""
        names, position = self.ordered()
        if (position == np.arange(len(position))).all():
            return names, codes
        found = codes >= 0  # False for NaN and -1
        remapped = codes.copy()
        remapped[found] = position[codes[found].astype(np.int64)]
        return names, remapped

    def ordered(self) -> tuple[list[str], np.ndarray]:
        """The class names in order (a number written as ``%g``), and each code's index among them."""
        if self.frozen:  # the given order
            return [_name(key) for key in self.keys], np.arange(len(self.keys))
        keys = sorted(self.keys, key=lambda key: (isinstance(key, str), key))
        position = np.empty(len(keys), np.int64)
        for index, key in enumerate(keys):
            position[self.keys[key]] = index
        return [_name(key) for key in keys], position

    def check_classes(self, path: Path, name: str | None) -> None:
        """Refuse, in one line, a label column of measurements (fractions, or more than ``MAX_CLASSES``
        distinct numbers: a regression target) or of more than ``MAX_CLASSES`` distinct texts (an ID)."""
        keys = list(self.keys)
        numbers = np.array(sorted(key for key in keys if not isinstance(key, str)))
        column = f" {printable(name)[:40]!r}" if name else ""
        fractions = bool(len(numbers)) and bool((numbers != np.round(numbers)).any())
        if len(numbers) == len(keys) and (fractions or len(numbers) > MAX_CLASSES):
            picked = ", ".join(
                f"{value:g}" for value in numbers[np.linspace(0, len(numbers) - 1, 3).astype(int)]
            )
            raise InputError(
                f"{path}: the label column{column} holds {len(numbers):,} distinct values ({picked}, ...): "
                "it looks like a regression target, and this package classifies (at most "
                f"{MAX_CLASSES} classes, written as text or whole numbers)"
            )
        if len(keys) > MAX_CLASSES:
            shown = ", ".join(repr(str(key))[:20] for key in keys[:3])
            raise InputError(
                f"{path}: the label column{column} holds {len(keys):,} distinct values ({shown}, ...); at "
                f"most {MAX_CLASSES} classes are accepted: is it an ID or a measurement rather than a class?"
            )


def _key(text: str) -> float | str:
    """How ``ValueCodes`` tells values apart: a number by its value, text as written (printable, at most
    200 characters, as a setting holds a name)."""
    try:
        key: float | str = float(text)
    except ValueError:
        return printable(text)[:200]
    return key if math.isfinite(key) else text


def _name(key: float | str) -> str:
    """A value's name: text as it is, a number as ``%g`` (``1``, ``2.5``)."""
    return key if isinstance(key, str) else f"{key:g}"


def _check_regular_file(path: Path, option: str) -> None:
    """Refuse a missing path, a folder, what is not a regular file (a FIFO or a device would never end,
    or block) and a file past ``MAX_CSV_BYTES``, before anything is read."""
    check_regular(path, option, MAX_CSV_BYTES, kind="CSV")


def _check_not_blank(path: Path) -> None:
    """Refuse a file of blank lines at once: the line readers would walk millions of them in Python (a
    20 MB file of newlines took 31 s to refuse, ``benchmarks/blank_lines.py``)."""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(SCAN_BYTES), b""):
            if chunk.strip(b" \t\r\n\x0b\x0c"):
                return
    raise InputError(f"{path}: no data rows; expected lines of comma-separated numbers")


def _parsed_by_pandas(
    path: Path, header: list[str] | None, ignored: Sequence[int] = (), labels: "ValueCodes | None" = None,
    label: int | None = None, coded: "dict[int, ValueCodes] | None" = None, infer: bool = False,
) -> np.ndarray | None:  # fmt: skip
    """Every data row parsed by pandas' C parser (after the ``header`` line, if ``_header`` found one), a
    chunk of rows at a time, into one float64 array, so that the table is held once; None if pandas
    cannot parse the file as numbers (or a line is longer than ``MAX_LINE_CHARS``). The ``ignored``
    columns are read as text and hold 0 in the table. A cell that is empty or marks a missing value
    (``MISSING_MARKS``) is NaN; a row short of cells fails here, and the line reader names it.

    The ``label`` column (an index, or None for a table without labels) holds ``labels``' code of each
    row's label: its numbers are read as numbers first, and only if a label is text is the file read
    again with that column as text. The ``coded`` columns (categorical features) are read as text, each
    cell replaced by its code; with ``infer``, a feature column most of whose cells are text found on
    that second reading joins them."""
    labelled = labels is not None and label is not None
    coded = {} if coded is None else coded
    if labelled:  # the label's position, counted from the start: -1 is the first row's last column
        label %= len(header) if header else len(next(_data_lines(path), (0, [""]))[1])
    table = _parsed_chunks(path, header, ignored, labels if labelled else None, label, coded=coded)
    if table is None and (labelled or infer):
        text_labels, found = _text_columns(path, header, ignored, label if labelled else None, infer)
        if not text_labels and not (found - set(coded)):
            return None  # nothing read as text would help: the line reader says what is wrong
        if labelled:
            labels.keys.clear()
        for column in found - set(coded):
            coded[column] = ValueCodes()
        for values in coded.values():
            values.keys = values.fresh().keys
        table = _parsed_chunks(path, header, ignored, labels if labelled else None, label, text_labels, coded)
    if table is None:
        return None
    # pandas pads a row short of cells with NaN, as if its last cells were empty: with NaN in the table,
    # every line must be seen to hold all its cells
    if np.isnan(table).any() and not _every_line_has_cells(path, table.shape[1]):
        return None
    return table


def _parsed_chunks(
    path: Path, header: list[str] | None, ignored: Sequence[int] = (), labels: "ValueCodes | None" = None,
    label: int | None = None, text_labels: bool = False, coded: "dict[int, ValueCodes] | None" = None,
) -> np.ndarray | None:  # fmt: skip
    """``_parsed_by_pandas``' one pass: every column as numbers, but the ``ignored`` ones (0) and, with
    ``labels``, the ``label`` column, each cell replaced by its code a chunk at a time (so that a large
    table's label column is never copied whole); ``text_labels``: that column is read as text, as the
    ``coded`` columns are, each cell replaced by its code."""
    coded = coded or {}
    text = [*ignored, *([label] if text_labels else []), *coded]
    try:
        with path.open("rb") as raw:
            chunks = pd.read_csv(
                io.BufferedReader(_BoundedLines(raw)),
                header=0 if header else None,
                names=range(len(header)) if header else None,  # the columns by position
                dtype={column: object for column in text} if text else np.float64,
                na_values=NA_VALUES,
                keep_default_na=False,
                skipinitialspace=True,
                encoding="utf-8-sig",
                chunksize=CHUNK_ROWS,
            )
            table, rows = None, 0
            for chunk in chunks:
                if text_labels:
                    chunk[label] = labels.codes(chunk[label])
                for column, values in coded.items():
                    chunk[column] = values.codes(chunk[column])
                if ignored:
                    chunk[list(ignored)] = 0.0
                values = chunk.to_numpy(np.float64)
                if labels is not None and not text_labels:
                    values[:, label] = labels.numbers(values[:, label])
                if table is None:  # allocated once: growing it would copy it
                    # a row's bytes: at least its commas, around cells that may be empty
                    shortest = values.shape[1] - 1
                    table = np.empty((_row_bound(path, shortest), values.shape[1]))
                table[rows : rows + len(values)] = values
                rows += len(values)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, _LineTooLong):
        return None  # unparsable numbers, ragged rows, not UTF-8: the line-by-line reader says where
    return table[:rows] if rows else None


def _text_columns(
    path: Path, header: list[str] | None, ignored: Sequence[int], label: int | None, features: bool
) -> tuple[bool, set[int]]:
    """Which columns hold text, read once more with every cell as text (rows of the wrong width skipped:
    the line reader names them): whether the ``label`` column holds a cell that is not a number, and,
    with ``features``, the other columns most of whose cells are not numbers (categorical). A column
    most of whose cells are numbers is numeric, its text a mistake the line reader names."""
    present: dict[int, int] = {}
    numeric: dict[int, int] = {}
    try:
        with path.open("rb") as raw:
            chunks = pd.read_csv(
                io.BufferedReader(_BoundedLines(raw)),
                header=0 if header else None,
                names=range(len(header)) if header else None,
                dtype=object,
                na_values=NA_VALUES,
                keep_default_na=False,
                skipinitialspace=True,
                encoding="utf-8-sig",
                chunksize=CHUNK_ROWS,
                on_bad_lines="skip",
            )
            for chunk in chunks:
                for column in chunk.columns:
                    if column in ignored:
                        continue
                    cells = chunk[column].dropna()
                    present[column] = present.get(column, 0) + len(cells)
                    numbers = int(pd.to_numeric(cells, errors="coerce").notna().sum())
                    numeric[column] = numeric.get(column, 0) + numbers
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, _LineTooLong):
        return False, set()
    text_label = label is not None and numeric.get(label, 0) < present.get(label, 0)
    found = {
        int(column)
        for column in present
        if features and column != label and mostly_text(present[column], numeric[column])
    }
    return text_label, found


def mostly_text(cells: int, numbers: int) -> bool:
    """Whether a column of ``cells`` present cells, ``numbers`` of them numbers, is text (categories): a
    column most of whose cells are numbers is numbers, and its text a mistake to name."""
    return 2 * numbers < cells


def _every_line_has_cells(path: Path, width: int) -> bool:
    """Whether every line of the file that is not blank holds ``width`` cells (``width - 1`` commas),
    counted a chunk at a time; False for a file with quotes, whose commas may be inside a cell."""
    rest = b""  # the start of a line that runs past the chunk
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(SCAN_BYTES), b""):
            data = np.frombuffer(rest + chunk, np.uint8)
            ends = np.flatnonzero(data == ord("\n"))
            if len(ends) and not _lines_hold(data, ends, width):
                return False
            rest = data[ends[-1] + 1 :].tobytes() if len(ends) else data.tobytes()
    data = np.frombuffer(rest, np.uint8)
    return _lines_hold(data, np.array([len(data)]), width)


BLANK_BYTES = np.frombuffer(b" \t\r", np.uint8)


def _lines_hold(data: np.ndarray, ends: np.ndarray, width: int) -> bool:
    """Whether the lines of ``data`` that end at ``ends`` are each blank or of ``width - 1`` commas."""
    if (data == ord('"')).any():
        return False
    starts = np.concatenate([[0], ends[:-1] + 1])

    def per_line(mask: np.ndarray) -> np.ndarray:
        running = np.concatenate([[0], np.cumsum(mask)])
        return running[ends] - running[starts]

    commas, filled = per_line(data == ord(",")), per_line(~np.isin(data, BLANK_BYTES))
    return bool(((commas == width - 1) | (filled == 0)).all())


def _row_bound(path: Path, shortest: int) -> int:
    """At most how many rows the file holds: its lines of ``shortest`` bytes or more, counted a chunk at a
    time. Blank lines and a header make it an upper bound; the rows of the table past the last one read
    are never written, so never paged in."""
    count, carried = 0, 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(SCAN_BYTES), b""):
            ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == ord("\n"))
            count += int((np.diff(ends, prepend=-1 - carried) - 1 >= shortest).sum())
            carried = len(chunk) - 1 - int(ends[-1]) if len(ends) else carried + len(chunk)
    return count + (carried >= shortest)


class _LineTooLong(Exception):
    """A line longer than ``MAX_LINE_CHARS``: the line reader names it."""


class _BoundedLines(io.RawIOBase):
    """A binary file as pandas reads it, stopping at a line longer than ``MAX_LINE_CHARS`` bytes before
    pandas holds it whole (a file of one endless line would otherwise be tokenised in one piece)."""

    def __init__(self, raw) -> None:
        self.raw, self.since_line_end = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        read = self.raw.readinto(buffer)
        ends = np.flatnonzero(np.frombuffer(buffer, np.uint8, read) == ord("\n"))
        runs = np.diff(ends, prepend=-1 - self.since_line_end) - 1 if len(ends) else np.array([])
        self.since_line_end = read - 1 - ends[-1] if len(ends) else self.since_line_end + read
        if self.since_line_end > MAX_LINE_CHARS or (len(runs) and runs.max() > MAX_LINE_CHARS):
            raise _LineTooLong
        return read


def _read_columns(columns: Columns, width: int) -> tuple[list[int], int | None]:
    """The feature columns and the label column (or None) of a line of ``width`` cells."""
    label = None if columns.label is None else columns.label % width
    features = columns.features or [column for column in range(width) if column != label]
    return list(features), label


def _acceptable(table: np.ndarray, columns: Columns) -> bool:
    """Whether the table has an accepted width and features within float32's range; checked a column at a
    time to keep temporary arrays small."""
    width = table.shape[1]
    if len(table) == 0 or (width not in columns.widths if columns.widths else width < 2):
        return False
    features, _ = _read_columns(columns, width)
    if max(features) >= width:
        return False
    # NaN, a missing value, passes; infinities and values past MAX_MAGNITUDE do not
    features_ok = not any(bool((np.abs(table[:, column]) > MAX_MAGNITUDE).any()) for column in features)
    return features_ok


def _parsed_line_by_line(
    path: Path, option: str, columns: Columns, names: list[str] | None, labels: ValueCodes | None = None,
    coded: dict[int, ValueCodes] | None = None,
) -> np.ndarray:  # fmt: skip
    """Parse every data line in Python, raising InputError at the first bad one (naming its column as
    the header ``names`` it): a labelled table keeps every column, a table of features only the columns
    read, in their order."""
    labels = labels if labels is not None else ValueCodes()  # the label column holds each label's code
    values, width, read = array("d"), None, []  # 8 bytes a value, as numpy's table: no Python floats
    for line, cells in _data_lines(path):
        if width is None:
            width = len(cells) if columns.widths is None or len(cells) in columns.widths else 0
            features, label = _read_columns(columns, max(width, 1))
            read = features if columns.features else list(range(width))  # a labelled line: every cell
        expected = (
            columns.expected.format(width=width, features=width - 1)
            if width >= 2
            else "2 or more comma-separated values (features, then a 0/1 label)"
        )
        if len(cells) not in (columns.widths or (width,)) or width < 2 or max(read) >= len(cells):
            seen = [name for delimiter, name in DELIMITERS.items() if delimiter in cells[0]]
            hint = f" (the file looks {seen[0]}-delimited; save it with commas)" if seen else ""
            raise InputError(f"{path}, line {line}: expected {expected}, found {len(cells)}{hint}")
        if len(cells) != width:
            raise InputError(
                f"{path}, line {line}: {len(cells)} values, but the lines before it have {width}"
            )
        values.extend(_parse_row(path, line, cells, read, label, names, labels, coded or {}))
    if width is None:
        raise InputError(f"{path}: no data rows; expected lines of comma-separated numbers")
    return np.frombuffer(values, dtype=np.float64).reshape(-1, len(read))


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


def _data_lines(path: Path, skip_header: bool = True) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` for each non-blank line, skipping a header line (if asked)."""
    try:
        # utf-8-sig drops a byte-order mark; newline="" lets csv handle \r\n line endings
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first, last_line = True, 0
            for cells in (reader := csv.reader(_bounded_lines(handle, path))):
                start, last_line = last_line + 1, reader.line_num
                if last_line != start:  # the record took more than one line: a quoted value ran past its line
                    raise InputError(
                        f'{path}, line {start}: a quote (") opened on this line is not closed on it; '
                        "remove it, or close it before the line ends"
                    )
                if not any(cell.strip() for cell in cells):
                    continue
                if first and skip_header and _is_header(cells):
                    first = False
                    continue
                first = False
                yield reader.line_num, cells
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason}); expected a CSV file") from None


def _is_header(cells: list[str]) -> bool:
    """A header is a first line of two or more cells in which no cell is a number (a lone cell is a
    line whose delimiter is not a comma)."""
    return len(cells) > 1 and not any(_is_number(cell) for cell in cells)


def _header(path: Path) -> list[str] | None:
    """The names in the file's header line (stripped), or None if its first line holds a number; a name
    given twice is refused, since a column taken by that name could be either."""
    for _, cells in _data_lines(path, skip_header=False):
        if not _is_header(cells):
            return None
        names = [cell.strip() for cell in cells]
        if controlled := [column for column, name in enumerate(names) if CONTROL.search(name)]:
            raise InputError(  # not quoted: such a "header" is likely no CSV at all (/proc/self/environ)
                f"{path}, line 1: the header name of column {controlled[0] + 1} holds a control character; "
                "give every column a name of printable characters"
            )
        repeated = [name for name in dict.fromkeys(names) if names.count(name) > 1]
        if repeated:
            raise InputError(
                f"{path}, line 1: the header names the column {_shown(repeated[0])} more than once; "
                "give every column its own name"
            )
        return names
    return None


def _check_header_width(path: Path, header: list[str] | None) -> None:
    """Refuse a header that names more or fewer columns than the first row holds: its names would
    label other columns' values (a label named past the row's end once wrapped around to column 0)."""
    if header is None:
        return
    for line, cells in _data_lines(path):
        if len(cells) != len(header):
            raise InputError(
                f"{path}, line 1: the header names {len(header)} columns, the rows hold {len(cells)} values "
                f"(line {line}); give one name per column"
            )
        return


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_row(
    path: Path, line: int, cells: list[str], read: list[int], label: int | None, names: list[str] | None,
    labels: ValueCodes | None = None, coded: dict[int, ValueCodes] | None = None,
) -> list[float]:  # fmt: skip
    """Convert the cells ``read`` to floats (the label to its code in ``labels``, a categorical column's
    cell to its code in ``coded``), or raise InputError naming the line, column and problem, and what to
    do about it. A missing value (an empty cell, a mark such as ``NA``) is NaN."""
    values, coded = [], coded or {}
    for column in read:
        cell = cells[column]
        try:
            value = float(cell)
        except ValueError:
            value = None
        if column == label:
            value = labels.code(cell)  # NaN: a row without a label, left out by read_labelled_csv
        elif column in coded:
            value = coded[column].code(cell)  # NaN where missing: a category of its own in the model
        elif not cell.strip() or cell.strip().upper() in MISSING_MARKS:
            value = math.nan  # a missing value: the model fills it with the training rows' median
        elif value is None:
            if label is None:  # rows to score: the model says which columns are numbers
                fix = "the model reads this column as numbers; correct it, or empty it to mark it missing"
            else:
                named = printable(names[column])[:40] if names else str(column + 1)
                fix = (
                    "the column is read as numbers (most of its cells are); correct it, or empty it to mark "
                    f"it missing (data.categorical_columns=[{named}] reads the column as categories)"
                )
            raise InputError(f"{_cell(path, line, column, names)}: {_shown(cell)} is not a number; {fix}")
        elif not math.isfinite(value):
            raise InputError(
                f"{_cell(path, line, column, names)}: {_shown(cell)} is not a finite number; "
                "remove it, or leave the cell empty to mark it missing"
            )
        elif abs(value) > MAX_MAGNITUDE:
            raise InputError(
                f"{_cell(path, line, column, names)}: {_shown(cell)} is beyond ±{MAX_MAGNITUDE:.0e}, "
                "past which the model's float32 arithmetic could overflow; remove or rescale that value"
            )
        values.append(value)
    return values


def _cell(path: Path, line: int, column: int, names: list[str] | None) -> str:
    """Where a bad cell is: ``<file>, line 3, column 3 ('BloodPressure')``, named if the header names it."""
    name = f" ({printable(names[column])[:40]!r})" if names and column < len(names) else ""
    return f"{path}, line {line}, column {column + 1}{name}"


def _shown(cell: str) -> str:
    """A bad cell's text as an error line quotes it: stripped, control characters escaped, at most
    ``QUOTED_CHARS``: enough to find the cell, too few to copy a file's secrets (``/proc/self/environ``)
    into the console, the log and ``failure.json``."""
    return repr(printable(cell.strip())[:QUOTED_CHARS])
