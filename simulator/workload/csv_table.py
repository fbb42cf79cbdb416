"""CSV text -> a flat table of text cells, and text cells -> float64 in one pass (the CSV trace
formats of traces.py read their files through these).

Owns the CSV reading rules: the csv module's excel dialect (quoted fields, "" escapes, quoted
newlines) with no field-length limit, text without quotes split directly (the same cells, faster),
short records and blank lines padded with "", each record's first line kept when records can span
lines, and one-line ServesimErrors naming the file and line for records longer than the header and
for a quoted field left open. Does not know trace formats or validate numbers (traces.py).
"""
from __future__ import annotations

import csv
import io
import math
from itertools import chain
from operator import methodcaller
from pathlib import Path

import numpy as np

from simulator.errors import ServesimError

_EOF = "\x00servesim end of file\x00"  # appended to CSV text: a record of its own unless a quoted field is open


def float_cells(cells: list[str]) -> np.ndarray:
    """Cells as float64, NaN where float() refuses a cell (traces.py's per-cell _number reads
    the same text with int(), else float(): the same value). One pass in C: float() mapped into
    numpy (twice as fast as a str array's .astype(np.float64), which also drops a cell's trailing
    NUL characters), "" cells (blank lines, short rows) read as "nan"; a column with any other
    non-number goes cell by cell. "-0" reads as +0.0."""
    try:
        texts = [c or "nan" for c in cells] if "" in cells else cells
        num = np.fromiter(map(float, texts), dtype=np.float64, count=len(cells))
    except ValueError:
        num = np.empty(len(cells), dtype=np.float64)
        for k, cell in enumerate(cells):
            try:
                num[k] = float(cell)
            except ValueError:
                num[k] = math.nan
    return num + 0.0  # -0.0 + 0.0 = +0.0: a "-0" cell reads as 0, as int() reads it on the per-cell path


def csv_records(path: Path, text: str) -> tuple[list[list[str]], list[int]]:
    """csv.reader's records of `text` (excel dialect) and the 1-based line where each starts (a
    quoted field may hold newlines), with no limit on a field's length (pandas had none; the csv
    module's default is 128 KiB)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        reader, records, starts, last = csv.reader(io.StringIO(text)), [], [], 0
        for record in reader:
            records.append(record)
            starts.append(last + 1)
            last = reader.line_num  # the line this record ends on
        return records, starts
    except csv.Error as e:
        raise ServesimError(f"{path}: not a readable CSV file: {e}") from None
    finally:
        csv.field_size_limit(limit)


Spans = list[tuple[int, int]]  # per record: (1-based line where it starts, fields it had)


def csv_table(path: Path, text: str) -> tuple[list[str], int, Spans | None]:
    """The records of a CSV text as one flat list of cells, record after record, each padded with
    "" to the first record's width; that width (0: no records); and the records' spans when the
    csv module read them (None: record k is line k + 1, its fields split at ","). Read with the
    csv module (excel dialect: "-quoted fields, "" escapes, quoted newlines); text without quotes
    is split at newlines and commas directly (what the csv module gives it, in a third of the time).
    Blank lines are records of "" (as the pandas reader traces.py used before kept them);
    no records when the text is empty or starts with a blank line (no columns). Errors: "N fields,
    header has M" at the first record longer than the first, and a quoted field left open at the
    end of the text, each at the line where its record starts."""
    if '"' not in text and "\r" not in text:  # no quoting: a record is a line, its fields split at ","
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the text's last newline ends a record; it starts none
        if not lines or not lines[0]:
            return [], 0, None
        commas = list(map(methodcaller("count", ","), lines))
        width = commas[0] + 1
        if max(commas) >= width:
            k = next(k for k, n in enumerate(commas) if n >= width)
            raise ServesimError(f"{path}, line {k + 1}: {commas[k] + 1} fields, header has {width}")
        if min(commas) < width - 1:  # short rows and blank lines: missing fields are ""
            for k in np.flatnonzero(np.array(commas) < width - 1).tolist():
                lines[k] += "," * (width - 1 - commas[k])
        return ",".join(lines).split(","), width, None
    sep = "" if not text or text.endswith("\n") else "\n"
    rows, starts = csv_records(path, text + sep + _EOF)
    closed = rows[-1] == [_EOF]  # else the sentinel was read into a quoted field left open
    if closed:
        rows.pop()
    if not rows or not rows[0]:
        return [], 0, None
    width, lens = len(rows[0]), list(map(len, rows))
    whole = lens if closed else lens[:-1]  # the open record: its missing quote is its error
    if whole and max(whole) > width:
        k = next(k for k, n in enumerate(whole) if n > width)
        raise ServesimError(f"{path}, line {starts[k]}: {lens[k]} fields, header has {width}")
    if not closed:
        raise ServesimError(f'{path}, line {starts[len(rows) - 1]}: a quoted field opened in this row has no closing '
                            'quote (")')
    if min(lens) < width:  # short rows and blank lines: missing fields are ""
        for k in np.flatnonzero(np.array(lens) < width).tolist():
            rows[k] = rows[k] + [""] * (width - lens[k])
    return list(chain.from_iterable(rows)), width, list(zip(starts, lens))
