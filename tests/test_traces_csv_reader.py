"""The CSV reader of simulator/workload (traces.py, csv_table.py) without pandas: a CSV trace load
imports no pandas (Azure date-times alone import it), the one-pass number conversion agrees to the
bit with the per-cell path (_count/_time) on every spelling of a whole number, and the csv-module
reader keeps pandas' records (quoted cells, blank and whitespace lines, long fields) with messages
that name the line (a long record, an open quote)."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import simulator.workload.csv_table as csv_table
import simulator.workload.traces as traces
from simulator.errors import ServesimError
from simulator.workload.traces import load_trace

ROOT = Path(__file__).resolve().parents[1]
SPLITWISE = "arrived_at,num_prefill_tokens,num_decode_tokens\n"
AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _pandas_imported_by(path: Path) -> str:
    """stdout of a fresh process that loads `path` and prints whether pandas got imported."""
    code = ("import sys; from simulator.workload.traces import load_trace; "
            f"r = load_trace({str(path)!r}); print(len(r), 'pandas' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("text, printed", [
    (SPLITWISE + '0.5,10,2\n"1.5",20,3\n\n2,1_000,4\n', "3 False\n"),  # quoted cell, blank line, slow-path cell
    (AZURE + "3,5,1\n1.25,6,2\n", "2 False\n"),  # Azure timestamps as plain seconds
])
def test_a_csv_trace_load_imports_no_pandas(tmp_path, text, printed):
    assert _pandas_imported_by(_write(tmp_path, text)) == printed


def test_azure_date_times_alone_import_pandas(tmp_path):
    path = _write(tmp_path, AZURE + "2024-01-02 03:04:05,10,2\n2024-01-02 03:04:05.25,20,3\n")
    assert _pandas_imported_by(path) == "2 True\n"
    assert load_trace(path).arrival_s.tolist() == [0.0, 0.25]


# ---- one-pass numbers vs the per-cell path ------------------------------------------------------
MIXED = SPLITWISE + '12,12,12.0\n12.0,1e2,"12"\n1e2,12.0,1e2\n3,+7,007\n2.5, 4 ,5e0\n'
# arrivals 12, 12, 100, 3, 2.5 s -> minus the first (2.5): sorted 0, 0.5, 9.5, 9.5, 97.5
EXPECTED = ([0.0, 0.5, 9.5, 9.5, 97.5], [4, 7, 12, 100, 12], [5, 7, 12, 12, 100])


def _arrays(r) -> tuple[bytes, bytes, bytes]:
    return r.arrival_s.tobytes(), r.prompt_tokens.tobytes(), r.output_tokens.tobytes()


def test_vectorized_and_per_cell_paths_give_the_same_arrays(tmp_path, monkeypatch):
    path = _write(tmp_path, MIXED)
    fast = load_trace(path, "splitwise")
    assert (fast.arrival_s.tolist(), fast.prompt_tokens.tolist(), fast.output_tokens.tolist()) == EXPECTED
    # every row through _count/_time: the vectorized columns say "slow path" for every cell
    monkeypatch.setattr(traces, "_numbers", lambda cells, whole: np.full(len(cells), np.nan))
    slow = load_trace(path, "splitwise")
    assert _arrays(slow) == _arrays(fast)


def test_a_whitespace_line_sends_its_columns_cell_by_cell_and_is_skipped(tmp_path):
    # "   " is no number to float(): the one-pass conversion fails, so the columns go cell by cell
    fast = load_trace(_write(tmp_path, MIXED, "a.csv"), "splitwise")
    spaced = load_trace(_write(tmp_path, MIXED.replace("\n3,", "\n   \n3,"), "b.csv"), "splitwise")
    assert _arrays(spaced) == _arrays(fast)


def test_floats_reads_what_float_reads():
    cells = ["12", "12.0", "1e2", " 7 ", "1_000", "", "x", "inf", "0.1", "9007199254740993"]
    got = csv_table.float_cells(cells)
    want = [12.0, 12.0, 100.0, 7.0, 1000.0, np.nan, np.nan, np.inf, 0.1, 9007199254740992.0]
    np.testing.assert_array_equal(got, want)
    assert np.isnan(csv_table.float_cells(["5\x00", "1"])).tolist() == [True, False]  # float() refuses a NUL


def test_minus_zero_reads_as_zero(tmp_path):
    # "-0" is 0 on the per-cell path (int("-0")) and on the vectorized one (-0.0 + 0.0 = +0.0)
    for name, body in (("i.csv", "0,1,1\n-0,2,2\n"), ("f.csv", "0.0,1,1\n-0.0,2,2\n")):
        r = load_trace(_write(tmp_path, SPLITWISE + body, name), "splitwise")
        assert np.signbit(r.arrival_s).tolist() == [False, False]


def test_spans_give_each_record_its_first_line_and_its_fields():
    cells, width, spans = csv_table.csv_table(Path("t.csv"), 'a,b,p\n1,2,"x\n\ny"\n\n3,4\n')
    assert (width, spans) == (3, [(1, 3), (2, 3), (5, 0), (6, 2)])
    assert cells == ["a", "b", "p", "1", "2", "x\n\ny", "", "", "", "3", "4", ""]


# ---- the reader: records and messages -----------------------------------------------------------
def test_quoted_and_plain_files_read_the_same(tmp_path):
    plain = load_trace(_write(tmp_path, SPLITWISE + "0.5,10,2\n1.5,20,3\n", "p.csv"), "splitwise")
    quoted = load_trace(_write(tmp_path, '"arrived_at","num_prefill_tokens","num_decode_tokens"\n'
                                         '"0.5","10","2"\n"1.5","20",3\n', "q.csv"), "splitwise")
    assert _arrays(quoted) == _arrays(plain)
    assert plain.arrival_s.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("quote", [False, True])  # text without quotes is split directly, else csv reads it
def test_table_pads_short_records_and_blank_lines(quote):
    def table(text):
        cells, width, spans = csv_table.csv_table(Path("t.csv"), '"a"' + text[1:] if quote else text)
        assert spans is None if not quote else len(spans) * width == len(cells)
        return cells, width

    assert table("a,b,c\n1,2\n\n   \n4,5,6") == (
        ["a", "b", "c", "1", "2", "", "", "", "", "   ", "", "", "4", "5", "6"], 3)
    assert table("a,b\n1,2\n\n\n") == (["a", "b", "1", "2", "", "", "", ""], 2)  # the last newline ends a record
    assert table("a\n\n1") == (["a", "", "1"], 1)
    with pytest.raises(ServesimError, match=r"^t\.csv, line 4: 4 fields, header has 2$"):
        table("a,b\n1\n\n1,2,3,\n1,2,3\n")


@pytest.mark.parametrize("text", ["", "\n", "\na,b\n1,2\n", '\n"a",b\n1,2,3\n"'])
def test_no_columns_when_empty_or_the_first_line_is_blank(text):
    assert csv_table.csv_table(Path("t.csv"), text) == ([], 0, None)  # no columns to parse


@pytest.mark.parametrize("text, message", [
    (SPLITWISE + '0,1,1\n\n1,2,"3\n', 'line 4: a quoted field opened in this row has no closing quote (")'),
    (SPLITWISE + '0,1,1,1\n"5\n', "line 2: 4 fields, header has 3"),  # a long record before the open quote
    (SPLITWISE + '0,1,1\n1,2,3,"4\n', 'line 3: a quoted field opened in this row has no closing quote (")'),
    # (the open record's own length is no error)
    ("  \n" + SPLITWISE, "line 2: 3 fields, header has 1"),  # a whitespace first line is the header
])
def test_reader_messages(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ServesimError) as e:
        load_trace(path, "splitwise")
    assert str(e.value) == (f"{path}: {message}" if message.startswith("not") else f"{path}, {message}")


def test_an_open_quote_over_the_csv_field_limit_keeps_the_message_and_the_limit(tmp_path):
    limit = csv.field_size_limit()
    path = _write(tmp_path, SPLITWISE + '0,1,1\n"' + "1,2,3\n" * (limit // 6 + 10))
    with pytest.raises(ServesimError) as e:
        load_trace(path, "splitwise")
    assert str(e.value) == f'{path}, line 3: a quoted field opened in this row has no closing quote (")'
    assert csv.field_size_limit() == limit


# ---- pinned by mutation testing (helper muttraces) ------------------------------------------------
def test_floats_reads_minus_zero_as_plus_zero():
    got = csv_table.float_cells(["-0", "200", " +7 ", "-0.0", "2.5"])
    assert got.tolist() == [0.0, 200.0, 7.0, 0.0, 2.5]
    assert np.signbit(got).tolist() == [False] * 5


def test_table_of_text_with_carriage_returns_goes_to_the_csv_module():
    # no quotes, but "\r": the csv module ends records at \r\n (a direct split would keep "b\r")
    assert csv_table.csv_table(Path("t.csv"), "a,b\r\n1,2\r\n") == (["a", "b", "1", "2"], 2, [(1, 2), (2, 2)])
    with pytest.raises(ServesimError) as e:  # a lone \r inside a record: the csv module's error, with the file
        csv_table.csv_table(Path("t.csv"), "a,b\r1,2\n")
    # (the csv module's hint after " - " differs between Python versions)
    assert str(e.value).startswith("t.csv: not a readable CSV file: new-line character seen in unquoted field - ")


def test_quoted_table_refuses_a_long_last_record():
    with pytest.raises(ServesimError, match=r"^t\.csv, line 3: 3 fields, header has 2$"):
        csv_table.csv_table(Path("t.csv"), '"a",b\n1,2\n1,2,3\n')


def test_a_short_line_longer_than_the_csv_field_limit_is_counted_not_refused(tmp_path):
    # the short-row check re-reads the physical line with the csv module: one field of 200000
    # characters, beyond the default field limit (131072), needs the raised limit (len + 1)
    assert csv.field_size_limit() < 200_000
    path = _write(tmp_path, SPLITWISE + "0,1,1\n" + "7" * 200_000 + "\n")
    with pytest.raises(ServesimError) as e:
        load_trace(path, "splitwise")
    assert str(e.value) == f"{path}, line 3: 1 fields, header has 3"


def test_integer_timestamps_are_float64_like_pandas_read_them(tmp_path):
    # 2**53 + 1 is no float64: both cells read 2**53, so the two requests arrive together (a per-cell
    # int would put them 1 s apart)
    path = _write(tmp_path, SPLITWISE + "9007199254740993,1,1\n9007199254740992,2,2\n")
    assert load_trace(path, "splitwise").arrival_s.tolist() == [0.0, 0.0]


def test_azure_seconds_past_the_int64_ns_range_take_the_per_cell_path(tmp_path):
    # 1e10 s = 1e19 ns > 2**63 - 1: the vectorized cast overflows (numpy's "invalid value" warning,
    # silenced here), the cell fails times >= 0 and _azure_time_ns gives exact int ns: 2 s apart
    path = _write(tmp_path, AZURE + "10000000000,1,1\n10000000002,2,2\n")
    with np.errstate(invalid="ignore"):
        r = load_trace(path, "azure")
    assert r.arrival_s.tolist() == [0.0, 2.0]


@pytest.mark.parametrize("big", ["9223372036854775808", "10000000000000000000"])  # 2**63, 1e19
def test_floats_reads_minus_zero_as_plus_zero_next_to_huge_values(big):
    got = csv_table.float_cells(["-0", "-1", big])
    assert got.tolist() == [0.0, -1.0, float(big)]
    assert np.signbit(got).tolist() == [False, True, False]
