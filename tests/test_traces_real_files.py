"""Issue 16: trace files as the public datasets ship them must load (Azure UTC offsets with mixed
fractions, BurstGPT failed requests, Vidur's length-only CSV), and malformed rows give one line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.errors import ServesimError
from simulator.workload.traces import TRACE_FORMATS, TraceWarning, detect_format, load_trace

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BURST_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
LENGTHS_HEADER = "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# ---- Azure: UTC offsets, mixed fraction digits ------------------------------------------------
def test_azure_utc_offset_and_mixed_fractions(tmp_path):
    p = write(tmp_path, "azure_2024.csv", AZURE_HEADER + "2024-05-10 00:00:00.011240+00:00,100,10\n"
              "2024-05-10 00:00:01+00:00,200,20\n")
    assert detect_format(p) == "azure"
    r = load_trace(p)
    assert r.arrival_s.tolist() == [0.0, 0.98876]
    assert r.prompt_tokens.tolist() == [100, 200] and r.output_tokens.tolist() == [10, 20]


def test_azure_other_offsets_convert_to_utc(tmp_path):
    p = write(tmp_path, "a.csv", AZURE_HEADER + "2024-05-10T05:30:00.5+05:30,1,1\n"
              "2024-05-10 00:00:02Z,2,2\n")
    np.testing.assert_allclose(load_trace(p, "azure").arrival_s, [0.0, 1.5], rtol=0, atol=1e-12)


def test_azure_naive_and_plain_seconds_still_work(tmp_path):
    p = write(tmp_path, "n.csv", AZURE_HEADER + "2023-11-16 18:15:46.6805900,5,1\n2023-11-16 18:15:47,6,2\n")
    np.testing.assert_allclose(load_trace(p, "azure").arrival_s, [0.0, 0.31941], rtol=0, atol=1e-12)
    p = write(tmp_path, "s.csv", AZURE_HEADER + "3,5,1\n1.25,6,2\n")
    assert load_trace(p, "azure").arrival_s.tolist() == [0.0, 1.75]


@pytest.mark.parametrize("cell, fragment", [
    ("2024-05-10 25:00:00+00:00", "TIMESTAMP"), ("now", "YYYY-MM-DD HH:MM:SS"),
    ("2024-05-10 00:00:00+99:00", "TIMESTAMP"), ("-1", "negative")])
def test_azure_bad_cells_one_line(tmp_path, cell, fragment):
    p = write(tmp_path, "bad_az.csv", AZURE_HEADER + "2024-05-10 00:00:00+00:00,1,1\n" + cell + ",1,1\n")
    with pytest.raises(ServesimError) as info:
        load_trace(p, "azure")
    msg = str(info.value)
    assert "bad_az.csv" in msg and "line 3" in msg and fragment in msg and "\n" not in msg, msg


# ---- BurstGPT failed requests -----------------------------------------------------------------
def burst(tmp_path: Path) -> Path:
    return write(tmp_path, "burst.csv", BURST_HEADER + "0,ChatGPT,10,5,15,Conversation log\n"
                 "1.5,ChatGPT,20,0,20,Conversation log\n2,GPT-4,30,7,37,API log\n")


def test_burstgpt_zero_output_error_names_cli_flag(tmp_path, capsys):
    with pytest.raises(ServesimError) as info:
        load_trace(burst(tmp_path))
    msg = str(info.value)
    assert "line 3" in msg and "--trace-skip-failed" in msg and "trace_skip_failed" in msg
    assert "=True" not in msg and "skip_zero_output" not in msg
    err = one_line_error(capsys, "simulate", "--trace", str(burst(tmp_path)), "--json")
    assert "--trace-skip-failed" in err


def test_burstgpt_skip_failed_counts_rows(tmp_path, capsys):
    with pytest.warns(TraceWarning, match="skipped 1 rows"):
        r = load_trace(burst(tmp_path), skip_zero_output=True)
    assert r.arrival_s.tolist() == [0.0, 2.0] and r.output_tokens.tolist() == [5, 7]
    with pytest.warns(TraceWarning, match="skipped 1 rows"):
        code = main(["simulate", "--trace", str(burst(tmp_path)), "--trace-skip-failed", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)


def test_skip_failed_on_other_format_names_flag(tmp_path):
    p = write(tmp_path, "sw.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n")
    with pytest.raises(ServesimError, match="--trace-skip-failed.*splitwise"):
        load_trace(p, skip_zero_output=True)


# ---- length-only (Vidur) ----------------------------------------------------------------------
def lengths(tmp_path: Path) -> Path:
    return write(tmp_path, "vidur_lengths.csv", LENGTHS_HEADER + "100,20,120,5.0\n300,30,330,10.0\n"
                 "50,5,55,10.0\n")


def test_lengths_format_detected_and_loaded_at_zero(tmp_path):
    assert "lengths" in TRACE_FORMATS
    p = lengths(tmp_path)
    assert detect_format(p) == "lengths"
    r = load_trace(p)
    assert r.arrival_s.tolist() == [0.0, 0.0, 0.0]
    assert r.prompt_tokens.tolist() == [100, 300, 50] and r.output_tokens.tolist() == [20, 30, 5]


def test_lengths_with_rate_arrivals_runs(tmp_path, capsys):
    code = main(["simulate", "--trace", str(lengths(tmp_path)), "--trace-arrivals", "rate",
                 "--num-requests", "5", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)


def test_lengths_with_trace_arrivals_says_pass_rate(tmp_path, capsys):
    err = one_line_error(capsys, "simulate", "--trace", str(lengths(tmp_path)), "--json")
    assert "vidur_lengths.csv" in err and "timestamps" in err and "--trace-arrivals rate" in err


def test_undetectable_format_hint_names_cli_flag(tmp_path):
    p = write(tmp_path, "mystery.csv", "a,b\n1,2\n")
    with pytest.raises(ServesimError, match="pass --trace-format one of") as info:
        detect_format(p)
    assert "format=" not in str(info.value)


# ---- malformed rows ---------------------------------------------------------------------------
def test_row_with_more_fields_than_header(tmp_path, capsys):
    f = write(tmp_path, "t.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n\n1.0,10,5,9\n")
    with pytest.raises(ServesimError, match=r"t\.csv, line 4: 4 fields, header has 3"):
        load_trace(f)
    err = one_line_error(capsys, "simulate", "--trace", str(f))
    assert "t.csv" in err and re.search(r"\bline 4\b", err)


def test_first_data_row_with_more_fields(tmp_path):
    f = write(tmp_path, "u.csv", AZURE_HEADER + "1,10,5,7\n2,10,5\n")
    with pytest.raises(ServesimError, match=r"u\.csv, line 2: 4 fields"):
        load_trace(f)


def test_a_token_count_beyond_any_context_is_refused(tmp_path, capsys):
    from simulator.cli import main

    f = tmp_path / "t.csv"
    f.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,1e12,10\n")
    assert main(["simulate", "--trace", str(f)]) == 2
    err = capsys.readouterr().err
    assert "t.csv, line 2, column 'num_prefill_tokens'" in err and "<= 1e+09" in err


def test_azure_date_times_and_plain_seconds_in_one_column_are_refused(tmp_path):
    """Plain seconds count from 1970: next to 2024 date-times they would put 54 years between requests."""
    p = write(tmp_path, "mixed.csv", AZURE_HEADER + "2024-01-02 03:04:05,10,2\n5,20,3\n")
    with pytest.raises(ServesimError) as info:
        load_trace(p, "azure")
    assert str(info.value) == (f"{p}, line 2: TIMESTAMP '2024-01-02 03:04:05' is a date-time but line 3 has plain "
                               "seconds ('5'); allowed: one form in every row (plain seconds count from 1970: years "
                               "away from the date-times)")


@pytest.mark.parametrize("seconds", ["0", "0.5"])
def test_azure_zero_or_fractional_plain_seconds_next_to_date_times_are_refused(tmp_path, seconds):
    p = write(tmp_path, "mixed0.csv", AZURE_HEADER + f"2024-01-02 03:04:05,10,2\n{seconds},20,3\n")
    with pytest.raises(ServesimError, match=f"line 3 has plain seconds \\('{seconds}'\\)"):
        load_trace(p, "azure")


def test_azure_seconds_beyond_the_int64_ns_range_warn_nothing(tmp_path):
    import warnings

    p = write(tmp_path, "big.csv", AZURE_HEADER + "10000000000,1,1\n10000000002,2,2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in cast" was printed
        assert load_trace(p, "azure").arrival_s.tolist() == [0.0, 2.0]


def test_a_column_named_twice_is_refused(tmp_path):
    p = write(tmp_path, "twice.csv", "arrived_at,num_prefill_tokens,num_decode_tokens,num_prefill_tokens\n0,1,1,9\n")
    with pytest.raises(ServesimError) as info:
        load_trace(p, "splitwise")
    assert str(info.value) == (f"{p}, line 1: column(s) ['num_prefill_tokens'] appear more than once in the header; "
                               "allowed: each once (which one holds the requests is not clear)")
