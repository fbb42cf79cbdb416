"""CSV traces whose quoted fields hold newlines (a prompt column): every row keeps the line where
its record starts, and a bad row is never taken for a blank line (review4: a row after a quoted
blank line was dropped silently)."""
import pytest

from simulator.errors import ServesimError
from simulator.workload.traces import load_trace

HEADER = "num_prefill_tokens,num_decode_tokens,prompt\n"


def _file(tmp_path, body: str):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + body)
    return path


def test_a_bad_row_after_a_quoted_blank_line_is_an_error_at_its_own_line(tmp_path):
    path = _file(tmp_path, '10,5,"Summarize:\n\nThe text"\n20,,"Hi"\n30,7,"Q"\n')
    with pytest.raises(ServesimError) as e:
        load_trace(path, "lengths")
    assert str(e.value) == f"{path}, line 5, column 'num_decode_tokens': '' is not a number"


def test_rows_after_multiline_records_keep_their_lines(tmp_path):
    path = _file(tmp_path, '10,5,"a\nb\nc"\n0,5,x\n')
    with pytest.raises(ServesimError) as e:
        load_trace(path, "lengths")
    assert str(e.value) == f"{path}, line 5: num_prefill_tokens is 0; prompts need >= 1 token"


def test_blank_and_whitespace_lines_between_multiline_records_are_skipped(tmp_path):
    path = _file(tmp_path, '10,5,"a\nb"\n\n   \n30,7,q\n')
    got = load_trace(path, "lengths")
    assert got.prompt_tokens.tolist() == [10, 30] and got.output_tokens.tolist() == [5, 7]


def test_a_short_row_after_a_multiline_record_names_its_fields(tmp_path):
    path = _file(tmp_path, '10,5,"a\nb"\n7\n')
    with pytest.raises(ServesimError) as e:
        load_trace(path, "lengths")
    assert str(e.value) == f"{path}, line 4: 1 fields, header has 3"
