import os
import re

import numpy as np
import pytest
from conftest import peak_memory_of

from pima_lightning.errors import InputError
from pima_lightning.inputs import csvfile
from pima_lightning.inputs.csvfile import Columns, read_feature_rows, read_labelled_csv

HEADER = "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age,Outcome"
ROW0 = "6,148,72,35,0,33.6,0.627,50,1"
ROW1 = "1,85,66,29,0,26.6,0.351,31,0"


def read_pima_csv(path):
    """Features and labels, as the data module reads them."""
    return read_labelled_csv(path)[:2]


def write(tmp_path, text: str, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_reads_the_real_csv_as_numpy_loadtxt_does(pima_csv):
    features, labels = read_pima_csv(pima_csv)
    reference = np.loadtxt(pima_csv, delimiter=",")
    np.testing.assert_array_equal(features, reference[:, :8])
    np.testing.assert_array_equal(labels, reference[:, 8])
    assert features.shape == (768, 8)
    assert np.bincount(labels).tolist() == [500, 268]


def test_header_row_is_recognised_and_skipped(tmp_path, pima_csv):
    with_header = write(tmp_path, HEADER + "\n" + pima_csv.read_text())
    for got, want in zip(read_pima_csv(with_header), read_pima_csv(pima_csv), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + ROW0 + "\n" + ROW1 + "\n",  # UTF-8 byte-order mark
        ROW0 + "\r\n" + ROW1 + "\r\n",  # Windows line endings
        ROW0 + "\n" + ROW1 + "\n\n\n",  # trailing blank lines
        " 6, 148 ,72,35,0,33.6,0.627,50, 1\n1,85,66,29,0,26.6,0.351,31,0.0\n",  # spaces, 0.0 label
    ],
    ids=["bom", "crlf", "blank-lines", "spaces"],
)
def test_unambiguous_variants_are_accepted(tmp_path, text):
    features, labels = read_pima_csv(write(tmp_path, text))
    np.testing.assert_array_equal(features[0], [6, 148, 72, 35, 0, 33.6, 0.627, 50])
    assert labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no data rows"),
        (HEADER + "\n", "no data rows"),
        (ROW0 + "\n1,85,66,29,0,26.6,0.351,0\n", "line 2: expected 9 comma-separated values"),
        (ROW0.replace(",", ";") + "\n", "';'-delimited"),
        (ROW0 + "\n1,85,abc,29,0,26.6,0.351,31,0\n", "line 2, column 3: 'abc' is not a number"),
        (ROW0 + "\n1,85,-inf,29,0,26.6,0.351,31,0\n", "line 2, column 3: '-inf' is not a finite number"),
        (ROW1 + "\n" + ROW0 + "\n1,inf,66,29,0,26.6,0.351,31,0\n", "line 3, column 2: 'inf'"),
        (ROW0 + "\n1,85,1e39,29,0,26.6,0.351,31,0\n", "line 2, column 3: '1e39' is beyond ±1e+30"),
        (ROW0.replace(",", "\t") + "\n", "(the file looks tab-delimited; save it with commas)"),
        (ROW0 + "\n" + "1" * 70_000 + "\n", "line 2: longer than 65,536 characters"),
        (ROW0 + "\n" + "1," * 40_000, "line 2: longer than 65,536 characters"),  # and no line end
        (ROW0 + '\n"' + (ROW1 + "\n") * 40, 'line 2: a quote (") opened on this line is not closed'),
    ],
    ids=[
        "empty",
        "header-only",
        "column-count",
        "semicolons",
        "text",
        "minus-inf",
        "inf",
        "beyond-float32",
        "tabs",
        "long-line",
        "endless-line",
        "unclosed-quote",
    ],
)
def test_bad_files_raise_one_clear_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_pima_csv(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file_and_directory_are_reported(tmp_path):
    with pytest.raises(InputError, match=r"file not found; give an existing CSV with data\.path="):
        read_pima_csv(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_pima_csv(tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, kind):
    """A FIFO would block the open and /dev/zero would never end: neither is read."""
    path = tmp_path / "data.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"data\.csv: not a regular file .* data\.path must name a CSV file"):
        read_pima_csv(path)


def test_pandas_and_the_line_by_line_reader_agree(tmp_path, pima_csv):
    """Two readers, one answer: pandas' table is the Python parser's, header, quotes and spaces included."""
    lines = pima_csv.read_text().splitlines()
    text = HEADER + "\n" + "\n".join([f'"{lines[0]}"'.replace(",", '","'), " " + lines[1], *lines[2:]]) + "\n"
    path = write(tmp_path, text)
    pandas_codes, line_codes = csvfile.ValueCodes(), csvfile.ValueCodes()
    by_pandas = csvfile._parsed_by_pandas(path, HEADER.split(","), labels=pandas_codes, label=-1)
    by_line = csvfile._parsed_line_by_line(
        path, "data.path", Columns(None, -1, None, "{width} values"), HEADER.split(","), line_codes
    )
    for table, codes in ((by_pandas, pandas_codes), (by_line, line_codes)):  # each label's class, in order
        classes, position = codes.ordered()
        assert classes == ["0", "1"]
        table[:, -1] = position[table[:, -1].astype(int)]
    np.testing.assert_array_equal(by_pandas, by_line)
    np.testing.assert_array_equal(by_pandas, np.loadtxt(pima_csv, delimiter=","))


def test_non_utf8_file_is_reported(tmp_path):
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_pima_csv(write(tmp_path, "\xff\xfe" + ROW0, encoding="latin-1"))


def test_feature_rows_accept_8_or_9_columns_and_ignore_the_label(tmp_path, pima_csv):
    features, _ = read_pima_csv(pima_csv)
    np.testing.assert_array_equal(read_feature_rows(pima_csv, 8), features)
    unlabelled = write(tmp_path, ROW0[:-2] + "\n" + ROW1[:-2] + "\n")
    np.testing.assert_array_equal(read_feature_rows(unlabelled, 8), features[:2])
    # a header, with no feature names to match it against, is refused rather than read by position (issue 25)
    headed = write(tmp_path, ",".join(HEADER.split(",")[:8]) + "\n" + ROW0[:-2] + "\n", name="headed.csv")
    with pytest.raises(InputError, match=r"its header names columns .* cannot be matched by name"):
        read_feature_rows(headed, 8)
    odd_labels = write(tmp_path, ROW0[:-1] + "yes\n" + ROW1[:-1] + "7\n", name="odd.csv")
    np.testing.assert_array_equal(read_feature_rows(odd_labels, 8), features[:2])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ROW0[:-2] + "\n" + ROW1 + "\n", "line 2: 9 values, but the lines before it have 8"),
        (
            ROW0 + "\n1,85,66\n",
            "line 2: expected 8 or 9 comma-separated values (8 features, optionally a label), found 3",
        ),
        ("1,85,66,29,0,x,0.351,31\n", "line 1, column 6: 'x' is not a number"),
        ("-3e40,85,66,29,0,26.6,0.351,31\n", "line 1, column 1: '-3e40' is beyond ±1e+30"),
    ],
)
def test_bad_feature_rows_name_the_line_and_the_option(tmp_path, text, expected):
    with pytest.raises(InputError, match=re.escape(expected)):
        read_feature_rows(write(tmp_path, text), 8)
    with pytest.raises(InputError, match=re.escape("give an existing CSV with input=/path/to/file.csv")):
        read_feature_rows(tmp_path / "absent.csv", 8)


def test_a_header_that_repeats_a_name_is_refused_by_both_readers(tmp_path):
    """With ``x,x,y,outcome``, a column taken by the name ``x`` could be either: predict once took the
    first twice."""
    path = write(tmp_path, "x,x,y,outcome\n1,2,3,1\n4,5,6,0\n")
    expected = r"line 1: the header names the column 'x' more than once; give every column its own name"
    with pytest.raises(InputError, match=expected):
        read_labelled_csv(path, label_column="outcome")
    with pytest.raises(InputError, match=expected):
        read_feature_rows(path, 3, feature_names=["x", "y", "z"])


def test_a_header_wider_or_narrower_than_the_rows_is_refused(tmp_path):
    """Five names over rows of four values once made column 0 the label (its index wrapped around)."""
    wider = write(tmp_path, "a,b,c,d,outcome\n1,2,3,1\n4,5,6,0\n", name="wider.csv")
    with pytest.raises(InputError, match=r"line 1: the header names 5 columns, the rows hold 4 values"):
        read_labelled_csv(wider, label_column="outcome")
    narrower = write(tmp_path, "a,outcome\n1,2,3,1\n4,5,6,0\n", name="narrower.csv")
    with pytest.raises(InputError, match=r"the header names 2 columns, the rows hold 4 values"):
        read_labelled_csv(narrower)
    with pytest.raises(InputError, match=r"the header names 2 columns, the rows hold 4 values"):
        read_feature_rows(narrower, 3, feature_names=["a", "b", "c"])  # predict's reader too


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "6,148,high,35,0,33.6,0.627,50,1",
            "line 3, column 3 ('BloodPressure'): 'high' is not a number; the column is read as numbers "
            "(most of its cells are); correct it, or empty it to mark it missing "
            "(data.categorical_columns=[BloodPressure] reads the column as categories)",
        ),
    ],
    ids=["text"],
)
def test_a_bad_cell_is_named_by_its_header_column_with_what_to_do(tmp_path, row, expected):
    """A new user's own table: the column named as the header names it, the label said to be the
    label, and the fix in the same line. (Missing cells and text labels are read: test_missing_values.py,
    test_labels.py.)"""
    path = write(tmp_path, f"{HEADER}\n{ROW1}\n{row}\n")
    with pytest.raises(InputError) as raised:
        read_pima_csv(path)
    assert str(raised.value).startswith(f"{path}, {expected}")


def test_an_endless_line_is_refused_before_the_parser_holds_it(tmp_path):
    """50 MB of ``1,1,1,...`` on one line: refused as too long, raising the peak memory of the process
    by a few MiB (pandas' tokeniser would hold 25 million fields of it: hundreds of MiB)."""
    path = tmp_path / "endless.csv"
    with path.open("w") as handle:
        handle.write(ROW0 + "\n" + "1," * 25_000_000 + "1\n")
    message, peak_mib = peak_memory_of("pima_lightning.inputs.csvfile:read_labelled_csv", path)
    assert message.endswith("line 2: longer than 65,536 characters; expected a CSV row of numbers")
    assert peak_mib < 50, peak_mib


def test_rows_without_a_label_are_left_out_and_counted(tmp_path):
    """An empty label cell or a missing-value mark leaves its row out (nothing to learn or score); a row
    short of its label cell is still a mistake."""
    unlabelled = [ROW0[:-1], ROW0[:-1] + "NA", ROW0[:-1] + " ?"]
    read = read_labelled_csv(write(tmp_path, "\n".join([HEADER, ROW1, *unlabelled, ROW0]) + "\n"))
    assert read.labels.tolist() == [0, 1] and read.unlabelled == 3
    np.testing.assert_array_equal(read.features[1], [6, 148, 72, 35, 0, 33.6, 0.627, 50])
    with pytest.raises(InputError, match="line 2: expected 9 comma-separated values"):
        read_labelled_csv(write(tmp_path, f"{ROW1}\n{ROW0[:-2]}\n", name="short.csv"))
    with pytest.raises(InputError, match="no row has a label"):
        read_labelled_csv(write(tmp_path, f"{ROW1[:-1]}\n{ROW0[:-1]}NA\n", name="none.csv"))


def test_a_label_column_of_measurements_is_called_a_regression_target(tmp_path, pima_csv):
    """Pima's features with BMI as the 'label': not classes however relabelled; one line says so. A few
    whole-number values are classes."""
    rows = np.loadtxt(pima_csv, delimiter=",")
    bmi_last = np.column_stack([rows[:, :5], rows[:, 6:8], rows[:, 5]])
    path = tmp_path / "bmi.csv"
    np.savetxt(path, bmi_last, delimiter=",", fmt="%g", header="a,b,c,d,e,f,g,BMI", comments="")
    with pytest.raises(InputError) as refused:
        read_labelled_csv(path)
    assert str(refused.value) == (
        f"{path}: the label column 'BMI' holds 248 distinct values (0, 33.6, 67.1, ...): it looks like a "
        "regression target, and this package classifies (at most 20 classes, written as text or whole "
        "numbers)"
    )
    three_classes = write(tmp_path, f"{ROW0}\n{ROW1}\n{ROW0[:-1]}2\n", name="three.csv")
    assert read_labelled_csv(three_classes).classes == ["0", "1", "2"]
