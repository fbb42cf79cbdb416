"""Exact oracles for simulator/workload/traces.py (issue 19, mutation survivors): every error message
whole (file, 1-based line, column or key, value, what is allowed), the per-cell slow path of the CSV
reader on rows the vectorized path leaves to it, Mooncake prefix chunks written out by hand, format
detection on its edge cases (BOM, quoted header, suffix, 64 KiB head) and the skip warnings."""
import json
import locale
from pathlib import Path

import pytest

import simulator.workload.traces as traces
from simulator.errors import ServesimError
from simulator.workload.traces import TRACE_FORMATS, TraceWarning, detect_format, load_trace

SPLITWISE = "arrived_at,num_prefill_tokens,num_decode_tokens\n"
AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BURST = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
LENGTHS = "num_prefill_tokens,num_decode_tokens\n"


def _write(tmp_path: Path, text, name: str = "t.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path


def _error(path: Path, *args, **kwargs) -> str:
    with pytest.raises(ServesimError) as e:
        load_trace(path, *args, **kwargs)
    return str(e.value)


def _rows(r) -> tuple[list, list, list]:
    return r.arrival_s.tolist(), r.prompt_tokens.tolist(), r.output_tokens.tolist()


# ---- CSV cells: whole messages -----------------------------------------------------------------
@pytest.mark.parametrize("row, where, what", [
    ("0,1.5,2", "column 'num_prefill_tokens'", "1.5 is not a whole number of tokens"),
    ("0,-3,2", "column 'num_prefill_tokens'", "-3 is negative; token counts must be >= 0"),
    ("0,10,2.5", "column 'num_decode_tokens'", "2.5 is not a whole number of tokens"),
    ("0,1000000001,2", "column 'num_prefill_tokens'",
     "1e+09 tokens is beyond any model's context; token counts must be <= 1e+09"),
])
def test_bad_count_cells(tmp_path, row, where, what):
    path = _write(tmp_path, SPLITWISE + "0,10,2\n" + row + "\n")
    assert _error(path, "splitwise") == f"{path}, line 3, {where}: {what}"


def test_zero_output_messages(tmp_path):
    path = _write(tmp_path, SPLITWISE + "0,10,0\n")
    assert _error(path, "splitwise") == f"{path}, line 2: num_decode_tokens is 0; outputs need >= 1 token"
    path = _write(tmp_path, BURST + "0,m,10,3,13,ok\n1,m,10,0,10,fail\n")
    assert _error(path, "burstgpt") == (f"{path}, line 3: Response tokens is 0 (a failed request in BurstGPT); pass "
                                        "--trace-skip-failed (scenario key trace_skip_failed) to skip such rows")


def test_burstgpt_skips_only_zero_outputs_and_counts_them(tmp_path):
    path = _write(tmp_path, BURST + "0,m,10,0,10,fail\n1,m,20,1,21,ok\n2,m,30,0,30,fail\n3,m,40,2,42,ok\n")
    with pytest.warns(TraceWarning) as rec:
        r = load_trace(path, "burstgpt", skip_zero_output=True)
    assert _rows(r) == ([0.0, 2.0], [20, 40], [1, 2])  # first kept arrival (t = 1) becomes 0
    assert [str(w.message) for w in rec] == [f"{path}: skipped 2 rows with 0 output tokens (failed requests)"]


def test_short_and_empty_rows(tmp_path):
    path = _write(tmp_path, SPLITWISE + "0,10,2\n,\n")  # 2 empty fields: a short row, not an empty time
    assert _error(path, "splitwise") == f"{path}, line 3: 2 fields, header has 3"


def test_bad_last_row_without_final_newline(tmp_path):
    path = _write(tmp_path, SPLITWISE + "0,10,2\n1,x,3")
    assert _error(path, "splitwise") == f"{path}, line 3, column 'num_prefill_tokens': 'x' is not a number"


def test_empty_and_unreadable_csv(tmp_path):
    path = _write(tmp_path, "")
    cols = "['arrived_at', 'num_prefill_tokens', 'num_decode_tokens']"
    assert _error(path, "splitwise") == f"{path}, line 1: splitwise header lacks column(s) {cols}; found []; required {cols}"
    path = _write(tmp_path, SPLITWISE + '"0,10,2\n')
    assert _error(path, "splitwise") == f'{path}, line 2: a quoted field opened in this row has no closing quote (")'


def test_csv_with_a_byte_order_mark(tmp_path):
    path = _write(tmp_path, SPLITWISE + "0,10,2\n", encoding="utf-8-sig")
    assert _rows(load_trace(path, "splitwise")) == ([0.0], [10], [2])


def test_csv_is_read_as_utf8_whatever_the_locale(tmp_path):
    path = _write(tmp_path, BURST + "0,模型-é,10,3,13,ok\n")
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: the default text encoding is ASCII
    try:
        r = load_trace(path, "burstgpt")
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
    assert _rows(r) == ([0.0], [10], [3])


def test_not_utf8_names_the_byte_offset(tmp_path):
    # header 48 bytes + "0,10,2\n" 7 + "1," 2: the latin-1 byte is at offset 57
    path = _write(tmp_path, (SPLITWISE + "0,10,2\n1,\xe9,3\n").encode("latin-1"))
    assert _error(path) == f"{path}: not UTF-8 text (byte offset 57): invalid continuation byte"


# ---- the per-cell slow path: rows the vectorized reader leaves to it ----------------------------
def test_slow_path_row_keeps_its_numbers(tmp_path):
    # "1_000" is not a number to pandas but is to int(): the row is read cell by cell
    path = _write(tmp_path, SPLITWISE + "0.5,10,2\n2.0,1_000,3\n")
    assert _rows(load_trace(path, "splitwise")) == ([0.0, 1.5], [10, 1000], [2, 3])


def test_lengths_rows_all_arrive_at_zero(tmp_path):
    path = _write(tmp_path, LENGTHS + "10,2\n1_000,3\n20,4\n")
    assert _rows(load_trace(path, "lengths")) == ([0.0, 0.0, 0.0], [10, 1000, 20], [2, 3, 4])
    path = _write(tmp_path, LENGTHS + "10,2\n5,x\n")
    assert _error(path, "lengths") == f"{path}, line 3, column 'num_decode_tokens': 'x' is not a number"


def test_lengths_refuses_trace_arrivals(tmp_path):
    path = _write(tmp_path, LENGTHS + "10,2\n")
    assert _error(path, "lengths", require_timestamps=True) == (
        f"{path}: a length-only trace (no arrival timestamps); pass --trace-arrivals rate (scenario key "
        'trace_arrivals = "rate") to give arrivals from --rate/--arrival')


def test_azure_slow_path_seconds_and_dates(tmp_path):
    # seconds: 0.25 s fast, 2.5 s on the slow path (its "1_000" cell) -> arrivals 0, 2.25
    path = _write(tmp_path, AZURE + "0.25,10,2\n2.5,1_000,3\n")
    assert _rows(load_trace(path, "azure")) == ([0.0, 2.25], [10, 1000], [2, 3])
    # " UTC" is not ISO 8601 (slow path, pandas' mixed parser); the second date is 1.5 s later
    path = _write(tmp_path, AZURE + "2024-01-02 03:04:05 UTC,10,2\n2024-01-02 03:04:06.5,20,3\n")
    assert _rows(load_trace(path, "azure")) == ([0.0, 1.5], [10, 20], [2, 3])


def test_azure_iso_dates_never_take_the_slow_path(tmp_path, monkeypatch):
    cols, _, unit = traces._CSV_SPECS["azure"]

    def slow(text):
        raise AssertionError(f"per-cell parse of {text!r}")

    monkeypatch.setitem(traces._CSV_SPECS, "azure", (cols, slow, unit))
    path = _write(tmp_path, AZURE + "2024-01-02 03:04:05,10,2\n2024-01-02 03:04:05.25,20,3\n"
                  "2024-01-02T03:04:06.1234567+00:00,30,4\n")
    assert _rows(load_trace(path, "azure")) == ([0.0, 0.25, 1.1234567], [10, 20, 30], [2, 3, 4])


@pytest.mark.parametrize("row, what", [
    ("yesterday,10,2", "column 'TIMESTAMP': 'yesterday' is neither a date-time 'YYYY-MM-DD HH:MM:SS[.fraction]"
                       "[+HH:MM]' nor a number of seconds"),
    ("2024-01-02 03:04:05,abc,2", "column 'ContextTokens': 'abc' is not a number"),
])
def test_azure_bad_cells(tmp_path, row, what):
    path = _write(tmp_path, AZURE + row + "\n")
    assert _error(path, "azure") == f"{path}, line 2, {what}"


# ---- Mooncake -----------------------------------------------------------------------------------
def _mooncake(tmp_path, rows, name="m.jsonl", encoding="utf-8") -> Path:
    return _write(tmp_path, "".join(json.dumps(r) + "\n" for r in rows), name, encoding)


def test_mooncake_prefix_chunks_follow_the_sorted_rows(tmp_path):
    # hash id i covers tokens [512 i, 512 (i + 1)), cut at input_length; ids past the prompt ignored
    path = _mooncake(tmp_path, [{"timestamp": 2000, "input_length": 600, "output_length": 5, "hash_ids": [7, 8, 9]},
                                {"timestamp": 0, "input_length": 100, "output_length": 1, "hash_ids": [3]}])
    r = load_trace(path, "mooncake")
    assert _rows(r) == ([0.0, 2.0], [100, 600], [1, 5])
    assert r.prefix == [((3, 100),), ((7, 512), (8, 88))]


def test_mooncake_without_hash_ids_has_no_prefix_and_reads_a_bom(tmp_path):
    path = _mooncake(tmp_path, [{"timestamp": 0, "input_length": 10, "output_length": 2}], encoding="utf-8-sig")
    r = load_trace(path, "mooncake")
    assert _rows(r) == ([0.0], [10], [2]) and r.prefix is None


def test_mooncake_count_limit_is_inclusive(tmp_path):
    path = _mooncake(tmp_path, [{"timestamp": 0, "input_length": 10**9, "output_length": 5}])
    assert _rows(load_trace(path, "mooncake")) == ([0.0], [10**9], [5])


@pytest.mark.parametrize("row, what", [
    ('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [7, true]}',
     ", key 'hash_ids': hash_ids must be a list of integers, got [7, True]"),
    ('{"timestamp": Infinity, "input_length": 10, "output_length": 5}', ", key 'timestamp': inf is not a finite number"),
    ('{"input_length": 10, "timestamp": 5}',
     ": expected an object with keys ['timestamp', 'input_length', 'output_length']; found ['input_length', 'timestamp']"),
])
def test_mooncake_bad_rows(tmp_path, row, what):
    path = _write(tmp_path, '{"timestamp": 0, "input_length": 1, "output_length": 1}\n' + row + "\n", "m.jsonl")
    assert _error(path, "mooncake") == f"{path}, line 2{what}"


# ---- options --------------------------------------------------------------------------------------
def test_misapplied_multi_turn_message(tmp_path):
    path = _mooncake(tmp_path, [{"timestamp": 0, "input_length": 10, "output_length": 2}])
    assert _error(path, "mooncake", multi_turn=True) == "sharegpt_multi_turn applies to sharegpt traces, not mooncake"


def test_sharegpt_default_seed_is_zero(tmp_path):
    conv = {"conversations": [{"from": "human", "value": "abcd"}, {"from": "gpt", "value": "abcd"}]}
    path = _write(tmp_path, json.dumps([conv] * 5), "s.json")
    default = load_trace(path, sharegpt_rate=2.0).arrival_s.tolist()
    assert default == load_trace(path, sharegpt_rate=2.0, seed=0).arrival_s.tolist()
    assert default != load_trace(path, sharegpt_rate=2.0, seed=1).arrival_s.tolist()


# ---- detect_format ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, fmt", [
    ("bom.csv", "\ufeff" + SPLITWISE + "0,1,1\n", "splitwise"),
    ("quoted.csv", '"arrived_at","num_prefill_tokens","num_decode_tokens"\n0,1,1\n', "splitwise"),
    ("other.csv", "Xarrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n", "lengths"),  # another column
    ("csv.jsonl", SPLITWISE + "0,1,1\n", "splitwise"),  # a .jsonl name does not make CSV text Mooncake
    ("keys.json", '{"timestamp": 0, "input_length": 1, "output_length": 1}\n', "mooncake"),
    ("upper.JSONL", '{"timestamp": 0}\n', "mooncake"),  # by suffix alone, any case
])
def test_detect_format_cases(tmp_path, name, text, fmt):
    assert detect_format(_write(tmp_path, text, name)) == fmt


def test_detect_format_replaces_bad_bytes_so_load_names_them(tmp_path):
    path = _write(tmp_path, (SPLITWISE + "0,10,2\n1,\xe9,3\n").encode("latin-1"))
    assert detect_format(path) == "splitwise"


@pytest.mark.parametrize("name, text, shown", [
    ("empty.csv", "", ""),
    ("obj.json", '{"a": 1}\n', '{"a": 1}'),
    ("long.csv", "a" * 100 + "\n", "a" * 80),
])
def test_detect_format_failure_message(tmp_path, name, text, shown):
    path = _write(tmp_path, text, name)
    with pytest.raises(ServesimError) as e:
        detect_format(path)
    assert str(e.value) == (f"{path}, line 1: cannot tell the trace format from {shown!r}; "
                            f"pass --trace-format one of {list(TRACE_FORMATS)}")


def test_detect_format_reads_only_the_first_64_kib(tmp_path):
    # ShareGPT files can be one huge line, so detection reads 65536 characters; a bench result whose
    # per-request lists start later (here at ~70000) needs --trace-format bench
    raw = {"note": "x" * 70_000, "input_lens": [5], "output_lens": [2], "ttfts": [0.1], "itls": [[0.01]]}
    path = _write(tmp_path, "{\n" + json.dumps(raw)[1:], "late.json")
    assert path.read_text().index('"input_lens"') > 65536
    with pytest.raises(ServesimError, match="cannot tell the trace format"):
        detect_format(path)
    assert _rows(load_trace(path, "bench")) == ([0.0], [5], [2])
