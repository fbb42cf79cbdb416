"""Tests for simulator/workload/traces.py: every format on tiny fixtures, the real Splitwise trace, and
every bad-input case (the message must name the file and the 1-based line)."""
from __future__ import annotations

import json
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import ServesimError
from simulator.workload.traces import (
    TRACE_FORMATS,
    TraceWarning,
    detect_format,
    load_trace,
)

DATA = Path(__file__).parent / "data" / "traces"
REFERENCE = Path(__file__).parents[2] / "shared" / "reference" / "traces"
SPLITWISE_CONV = REFERENCE / "splitwise_conv.csv"
SPLITWISE_CODE = REFERENCE / "splitwise_code.csv"
SPLITWISE_HEADER = "arrived_at,num_prefill_tokens,num_decode_tokens\n"
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BURST_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
needs_reference = pytest.mark.skipif(
    not SPLITWISE_CONV.is_file(), reason=f"reference traces not present at {REFERENCE}")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(path: Path, line: int | None, *fragments: str, **kwargs) -> str:
    """load_trace(path) must raise ServesimError naming the file, the line and the fragments."""
    with pytest.raises(ServesimError) as info:
        load_trace(path, **kwargs)
    msg = str(info.value)
    assert path.name in msg, msg
    if line is not None:
        assert re.search(rf"\bline {line}\b", msg), msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def check(r, arrival_s, prompt_tokens, output_tokens) -> None:
    np.testing.assert_allclose(r.arrival_s, arrival_s, rtol=0, atol=1e-9)
    assert r.prompt_tokens.tolist() == prompt_tokens
    assert r.output_tokens.tolist() == output_tokens
    assert r.arrival_s.dtype == np.float64 and r.prompt_tokens.dtype == np.int64


# ---- each format on its fixture --------------------------------------------------------------
def test_splitwise_fixture_sorted_stable_and_shifted():
    r = load_trace(DATA / "splitwise_small.csv", "splitwise")
    # rows 10.5, 10.0, 12.25, 10.5 -> sorted (ties keep file order), first at 0
    check(r, [0.0, 0.5, 0.5, 2.25], [50, 100, 7, 300], [5, 20, 3, 1])


def test_azure_fixture_datetimes_with_7_fraction_digits():
    r = load_trace(DATA / "azure_small.csv", "azure")
    # 46.18059 s (row 3) is first; 18:16:00 is 60 - 46.18059 = 13.81941 s later
    check(r, [0.0, 0.5, 1.0, 13.81941], [879, 374, 396, 10], [55, 44, 109, 2])


def test_azure_day_rollover_nine_digits_and_plain_seconds(tmp_path):
    p = write(tmp_path, "a.csv", AZURE_HEADER + "2023-11-16 23:59:59.900000001,5,1\n"
              "2023-11-17T00:00:00.1,6,2\n")
    check(load_trace(p, "azure"), [0.0, 0.199999999], [5, 6], [1, 2])
    p = write(tmp_path, "b.csv", AZURE_HEADER + "12.5,5,1\n10,6,2\n")
    check(load_trace(p, "azure"), [0.0, 2.5], [6, 5], [2, 1])


def test_burstgpt_zero_output_raises_by_default():
    expect_error(DATA / "burstgpt_small.csv", 3, "Response tokens", "--trace-skip-failed")


def test_burstgpt_skip_zero_output_warns_with_count():
    with pytest.warns(TraceWarning, match="skipped 1 rows with 0 output tokens"):
        r = load_trace(DATA / "burstgpt_small.csv", "burstgpt", skip_zero_output=True)
    check(r, [0.0, 3.5], [472, 200], [18, 100])


def test_mooncake_fixture_milliseconds():
    r = load_trace(DATA / "mooncake_small.jsonl", "mooncake")
    check(r, [0.0, 0.482, 3.535], [100, 6955, 6472], [1, 52, 26])


def test_sharegpt_fixture_estimate_and_pairing():
    r = load_trace(DATA / "sharegpt_small.json", "sharegpt")
    # bytes: prompts 11, 28, 7 ("Ça" is 3 bytes), 40 -> 3, 7, 2, 10; replies 29, 20, 3, 400 ->
    # 7, 5, 1 (max(1, round(0.75))), 100. The system turn is not a request.
    check(r, [0.0] * 4, [3, 7, 2, 10], [7, 5, 1, 100])


@pytest.mark.parametrize("name, fmt", [
    ("splitwise_small.csv", "splitwise"), ("azure_small.csv", "azure"),
    ("burstgpt_small.csv", "burstgpt"), ("mooncake_small.jsonl", "mooncake"),
    ("sharegpt_small.json", "sharegpt")])
def test_detect_format(name, fmt):
    assert detect_format(DATA / name) == fmt


def test_format_none_detects(tmp_path):
    assert len(load_trace(DATA / "mooncake_small.jsonl")) == 3
    assert len(load_trace(str(DATA / "splitwise_small.csv"))) == 4


def test_detect_format_unknown_lists_formats(tmp_path):
    p = write(tmp_path, "mystery.txt", "a,b,c\n1,2,3\n")
    with pytest.raises(ServesimError, match="mystery.txt") as info:
        detect_format(p)
    assert all(fmt in str(info.value) for fmt in TRACE_FORMATS)
    with pytest.raises(ServesimError, match="not found"):
        detect_format(tmp_path / "absent.csv")


# ---- the real Splitwise traces ---------------------------------------------------------------
@needs_reference
def test_real_splitwise_conv():
    r = load_trace(SPLITWISE_CONV)
    assert len(r) == 19366
    assert (r.arrival_s[0], r.prompt_tokens[0], r.output_tokens[0]) == (0.0, 374, 44)
    assert (r.arrival_s[1], r.prompt_tokens[1], r.output_tokens[1]) == (4.314579, 396, 109)
    assert np.all(np.diff(r.arrival_s) >= 0)


@needs_reference
def test_real_splitwise_code():
    r = load_trace(SPLITWISE_CODE, "splitwise")
    assert len(r) == 8819
    assert (r.arrival_s[0], r.prompt_tokens[0], r.output_tokens[0]) == (0.0, 4808, 10)


@needs_reference
def test_real_splitwise_loads_fast():
    best_s = min(_timed_load(SPLITWISE_CONV) for _ in range(3))
    assert best_s < 0.5, f"loading {SPLITWISE_CONV.name} took {best_s:.3f} s"


def _timed_load(path: Path) -> float:
    start = time.perf_counter()
    load_trace(path, "splitwise")
    return time.perf_counter() - start


# ---- bad input: CSV formats ------------------------------------------------------------------
def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.csv", None, "not found", format="splitwise")


def test_missing_column_lists_found_and_required(tmp_path):
    p = write(tmp_path, "cols.csv", "arrived_at,num_prefill_tokens,decode\n0,1,1\n")
    expect_error(p, 1, "num_decode_tokens", "'decode'", "required", format="splitwise")


@pytest.mark.parametrize("row, column", [
    ("0.5,abc,3", "num_prefill_tokens"), ("0.5,-4,3", "num_prefill_tokens"),
    ("0.5,nan,3", "num_prefill_tokens"), ("0.5,2.5,3", "num_prefill_tokens"),
    ("0.5,4,", "num_decode_tokens"), ("-1.0,4,3", "arrived_at"), ("nan,4,3", "arrived_at"),
    ("inf,4,3", "arrived_at"), ("x,4,3", "arrived_at")])
def test_bad_cells_name_line_and_column(tmp_path, row, column):
    p = write(tmp_path, "bad.csv", SPLITWISE_HEADER + "0.0,1,1\n" + row + "\n0.9,1,1\n")
    expect_error(p, 3, column, format="splitwise")


@pytest.mark.parametrize("row, what", [("0.5,0,3", "num_prefill_tokens is 0"),
                                       ("0.5,4,0", "num_decode_tokens is 0")])
def test_zero_tokens(tmp_path, row, what):
    p = write(tmp_path, "zero.csv", SPLITWISE_HEADER + "0.0,1,1\n" + row + "\n")
    expect_error(p, 3, what, format="splitwise")


def test_short_row(tmp_path):
    p = write(tmp_path, "short.csv", SPLITWISE_HEADER + "0.0,1,1\n0.5,4\n")
    expect_error(p, 3, "2 fields", format="splitwise")


def test_line_numbers_count_blank_lines_bom_and_crlf(tmp_path):
    p = tmp_path / "crlf.csv"
    p.write_bytes(b"\xef\xbb\xbf" + SPLITWISE_HEADER.encode().replace(b"\n", b"\r\n")
                  + b"0.0,1,1\r\n\r\n0.5,x,1\r\n")
    expect_error(p, 4, "'x' is not a number", format="splitwise")


def test_empty_traces(tmp_path):
    expect_error(write(tmp_path, "hdr.csv", SPLITWISE_HEADER), 1, "no requests", format="splitwise")
    expect_error(write(tmp_path, "void.jsonl", ""), 1, "no requests", format="mooncake")
    p = write(tmp_path, "all_failed.csv", BURST_HEADER + "1.0,ChatGPT,5,0,5,x\n")
    with pytest.warns(TraceWarning):
        expect_error(p, 2, "no requests", format="burstgpt", skip_zero_output=True)


def test_azure_bad_timestamps(tmp_path):
    p = write(tmp_path, "az.csv", AZURE_HEADER + "2023-11-16 18:15:46.1,1,1\n2023-13-16 18:15:46.1,1,1\n")
    expect_error(p, 3, "TIMESTAMP", "month", format="azure")
    p = write(tmp_path, "az2.csv", AZURE_HEADER + "yesterday,1,1\n")
    expect_error(p, 2, "YYYY-MM-DD HH:MM:SS", format="azure")
    p = write(tmp_path, "az3.csv", AZURE_HEADER + "-3.0,1,1\n")
    expect_error(p, 2, "negative", format="azure")


def test_misapplied_options(tmp_path):
    for kwargs in ({"skip_zero_output": True}, {"sharegpt_rate": 1.0}, {"tokenizer_path": "t.json"}):
        with pytest.raises(ServesimError, match="splitwise"):
            load_trace(DATA / "splitwise_small.csv", **kwargs)
    with pytest.raises(ServesimError, match="unknown trace format 'csv'.*sharegpt"):
        load_trace(DATA / "splitwise_small.csv", "csv")


# ---- bad input: Mooncake JSONL ---------------------------------------------------------------
def test_mooncake_bad_json_line(tmp_path):
    good = '{"timestamp": 0, "input_length": 5, "output_length": 2}\n'
    p = write(tmp_path, "m.jsonl", good + "\n" + '{"timestamp": 1, "input_length": 5,\n' + good)
    expect_error(p, 3, "not valid JSON")


@pytest.mark.parametrize("obj, fragment", [
    ('{"timestamp": 1, "input_length": 5}', "output_length"),
    ('[1, 2, 3]', "found list"),
    ('{"timestamp": -5, "input_length": 5, "output_length": 2}', "'timestamp'"),
    ('{"timestamp": 1, "input_length": "5", "output_length": 2}', "input_length"),
    ('{"timestamp": 1, "input_length": 5, "output_length": 0}', "output_length is 0"),
    ('{"timestamp": 1, "input_length": true, "output_length": 2}', "not a number")])
def test_mooncake_bad_objects(tmp_path, obj, fragment):
    good = '{"timestamp": 0, "input_length": 5, "output_length": 2}\n'
    p = write(tmp_path, "m.jsonl", good + obj + "\n")
    expect_error(p, 2, fragment, format="mooncake")


# ---- ShareGPT ----------------------------------------------------------------------------------
def sharegpt_file(tmp_path: Path, n: int, name: str = "s.json") -> Path:
    convs = [{"id": str(i), "conversations": [{"from": "human", "value": "q" * (4 * (i % 7 + 1))},
                                              {"from": "gpt", "value": "a" * 8}]} for i in range(n)]
    return write(tmp_path, name, json.dumps(convs))


def test_sharegpt_poisson_is_seeded_and_has_the_rate(tmp_path):
    p = sharegpt_file(tmp_path, 10_000)
    a = load_trace(p, sharegpt_rate=5.0, seed=7)
    b = load_trace(p, sharegpt_rate=5.0, seed=7)
    c = load_trace(p, sharegpt_rate=5.0, seed=8)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    assert a.arrival_s[0] == 0.0 and np.all(np.diff(a.arrival_s) > 0)
    assert np.mean(np.diff(a.arrival_s)) == pytest.approx(1 / 5.0, rel=0.05)
    assert a.prompt_tokens[:3].tolist() == [1, 2, 3]  # file order kept: arrivals are increasing
    assert np.all(load_trace(p, sharegpt_rate=float("inf")).arrival_s == 0.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_sharegpt_bad_rate(tmp_path, rate):
    with pytest.raises(ServesimError, match="sharegpt_rate"):
        load_trace(sharegpt_file(tmp_path, 2), sharegpt_rate=rate)


def test_sharegpt_skips_are_counted(tmp_path):
    convs = [{"id": "x", "conversations": [{"from": "human", "value": "   "}, {"from": "gpt", "value": "a"},
                                           {"from": "human", "value": "abcd"}, {"from": "gpt", "value": "ok"},
                                           {"from": "human", "value": "left hanging"}]}]
    p = write(tmp_path, "skips.json", json.dumps(convs))
    with pytest.warns(TraceWarning, match="skipped 1 human/model turn pairs with empty text and 1 human"):
        r = load_trace(p)
    check(r, [0.0], [1], [1])


def test_sharegpt_bad_json_and_structure(tmp_path):
    turns = '[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]'
    good = '  {"id": "a", "conversations": ' + turns + '}'
    p = write(tmp_path, "broken.json", "[\n" + good + ",\n" + good + "\n  {\"id\": 3}\n]\n")
    expect_error(p, 4, "expected ',' or ']'", format="sharegpt")
    p = write(tmp_path, "syntax.json", "[\n" + good + ",\n" + good + ",\n  {\"id\": 3,,}\n]\n")
    expect_error(p, 4, "not valid JSON", format="sharegpt")
    p = write(tmp_path, "shape.json", "[\n" + good + ",\n\n  {\"id\": 3, \"turns\": []}\n]\n")
    expect_error(p, 4, "'conversations'", format="sharegpt")
    p = write(tmp_path, "obj.json", '{"conversations": []}')
    expect_error(p, 1, "JSON list", format="sharegpt")
    p = write(tmp_path, "tail.json", "[\n" + good + "\n]\nextra\n")
    expect_error(p, 4, "after the closing", format="sharegpt")
    expect_error(write(tmp_path, "none.json", "[\n]\n"), 2, "no requests", format="sharegpt")


def fake_tokenizers(monkeypatch, seen: list) -> None:
    """A stand-in `tokenizers` module whose tokenizer splits on whitespace."""
    class Tokenizer:
        @staticmethod
        def from_file(path: str) -> "Tokenizer":
            seen.append(path)
            return Tokenizer()

        def encode_batch(self, texts, add_special_tokens=True):
            assert add_special_tokens is False
            return [types.SimpleNamespace(ids=t.split()) for t in texts]

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=Tokenizer))


def test_sharegpt_tokenizer_path_is_used(tmp_path, monkeypatch):
    seen: list = []
    fake_tokenizers(monkeypatch, seen)
    tok = write(tmp_path, "tokenizer.json", "{}")
    r = load_trace(DATA / "sharegpt_small.json", tokenizer_path=tok)
    assert seen == [str(tok)]
    check(r, [0.0] * 4, [2, 6, 2, 1], [7, 4, 1, 1])
    with pytest.raises(ServesimError, match="absent.json"):
        load_trace(DATA / "sharegpt_small.json", tokenizer_path=tmp_path / "absent.json")


def test_sharegpt_tokenizer_package_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    with pytest.raises(ServesimError, match="pip install tokenizers"):
        load_trace(DATA / "sharegpt_small.json", tokenizer_path=write(tmp_path, "t.json", "{}"))


def test_sharegpt_real_tokenizers_wordlevel(tmp_path):
    tokenizers = pytest.importorskip(
        "tokenizers", reason="the optional 'tokenizers' package is not installed")
    vocab = {"[UNK]": 0, "hello": 1, "there": 2}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    r = load_trace(DATA / "sharegpt_small.json", tokenizer_path=tmp_path / "tokenizer.json")
    # Whitespace splits \w+ and punctuation runs: "Hello there" -> 2, "Hi! How can I help you today?" -> 9
    assert r.prompt_tokens[0] == 2 and r.output_tokens[0] == 9
