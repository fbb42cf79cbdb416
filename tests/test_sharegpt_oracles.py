"""Exact oracles for simulator/workload/sharegpt.py (issue 19, mutation survivors): multi-turn prompts
and prefix chunks written out by hand, previous_turns on hand-made chunk lists, every error message
whole with its 1-based line (leading newlines, compact JSON, BOM), and the skip warning's counts."""
import json
import sys
import types

import pytest

from simulator.errors import ServesimError
from simulator.workload.sharegpt import load_sharegpt, previous_turns
from simulator.workload.traces import TraceWarning, load_trace

SHAPE = "a conversation must be an object with 'conversations': a list of {'from': str, 'value': str}"


def _conv(*texts: tuple[str, str]) -> dict:
    return {"conversations": [{"from": who, "value": text} for who, text in texts]}


# estimate: max(1, round(utf8 bytes / 4)); "a" * 4k is k tokens
MULTI = [_conv(("human", "a" * 4), ("gpt", "b" * 8), ("human", "c" * 12), ("gpt", "d" * 16),
               ("human", "e" * 28), ("gpt", "f" * 32)),
         _conv(("user", "g" * 20), ("assistant", "h" * 24))]


def _write(tmp_path, text: str, name: str = "sg.json", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def _error(path, **kwargs) -> str:
    with pytest.raises(ServesimError) as e:
        load_trace(path, "sharegpt", **kwargs)
    return str(e.value)


def test_multi_turn_prompts_carry_history_and_chunks(tmp_path):
    r = load_trace(_write(tmp_path, json.dumps(MULTI)), "sharegpt", multi_turn=True)
    # turn tokens: conversation 0 = (1, 2), (3, 4), (7, 8); conversation 1 = (5, 6)
    assert r.prompt_tokens.tolist() == [1, 1 + 2 + 3, 1 + 2 + 3 + 4 + 7, 5]
    assert r.output_tokens.tolist() == [2, 4, 8, 6] and r.arrival_s.tolist() == [0.0] * 4
    assert r.prefix == [
        (((0, 0), 1), ((0, 1), 2)),
        (((0, 0), 1), ((0, 1), 2), ((0, 2), 3), ((0, 3), 4)),
        (((0, 0), 1), ((0, 1), 2), ((0, 2), 3), ((0, 3), 4), ((0, 4), 7), ((0, 5), 8)),
        (((1, 0), 5), ((1, 1), 6)),
    ]
    assert previous_turns(r.prefix) == [-1, 0, 1, -1]


def test_multi_turn_with_poisson_arrivals_keeps_file_order(tmp_path):
    r = load_trace(_write(tmp_path, json.dumps(MULTI)), "sharegpt", multi_turn=True, sharegpt_rate=0.5, seed=1)
    assert r.arrival_s[0] == 0.0 and all(b > a for a, b in zip(r.arrival_s, r.arrival_s[1:]))
    assert r.prompt_tokens.tolist() == [1, 6, 17, 5] and r.output_tokens.tolist() == [2, 4, 8, 6]
    assert [chunks[-1][0] for chunks in r.prefix] == [(0, 1), (0, 3), (0, 5), (1, 1)]


def test_single_turn_is_the_default_of_load_sharegpt(tmp_path):
    r = load_sharegpt(_write(tmp_path, json.dumps(MULTI)), None, None, 0)
    assert r.prompt_tokens.tolist() == [1, 3, 7, 5] and r.output_tokens.tolist() == [2, 4, 8, 6]
    assert r.prefix is None


def test_previous_turns_cyclic_replay_and_missing_history():
    t0 = (((0, 0), 1), ((0, 1), 2))
    t1 = (((0, 0), 1), ((0, 1), 2), ((0, 2), 3), ((0, 3), 4))
    other = (((5, 0), 9), ((5, 1), 9))
    # a second cycle points at its own cycle's earlier turn (the latest one)
    assert previous_turns([t0, t1, other, t0, t1]) == [-1, 0, -1, -1, 3]
    assert previous_turns([t1]) == [-1]  # its first turn is not replayed: nothing to wait for
    assert previous_turns([]) == []


def test_rates_below_one_request_per_second_are_allowed(tmp_path):
    r = load_trace(_write(tmp_path, json.dumps(MULTI)), "sharegpt", sharegpt_rate=0.5, seed=3)
    assert len(r) == 4 and r.arrival_s[0] == 0.0 and r.arrival_s[-1] > 0.0


def test_bom_and_compact_json(tmp_path):
    text = json.dumps(MULTI, separators=(",", ":"))
    r = load_trace(_write(tmp_path, text, encoding="utf-8-sig"), "sharegpt")
    assert r.prompt_tokens.tolist() == [1, 3, 7, 5]


@pytest.mark.parametrize("text, line, what", [
    ('{"a": 1}\n\n\n', 1, "expected a JSON list of conversations starting with '['"),
    ("\n[\n" + json.dumps(MULTI[1]) + "\n;\n]\n", 4, "expected ',' or ']' after a conversation"),
    ("[" + json.dumps(MULTI[1]) + "]x", 1, "unexpected text after the closing ']'"),
    ("\n[\n" + '{"id": 1}' + "\n]\n", 3, SHAPE),
    ("[[1]]", 1, SHAPE),
    ('[{"conversations": [{"from": "human", "value": 5}]}]', 1, SHAPE),
    ('[{"conversations": [{"from": "human"}]}]', 1, SHAPE),
    ("[]", 1, "no requests (no human turn followed by a model turn)"),
    ("[\n]", 2, "no requests (no human turn followed by a model turn)"),
])
def test_error_messages_whole(tmp_path, text, line, what):
    path = _write(tmp_path, text)
    assert _error(path) == f"{path}, line {line}: {what}"


def test_bad_rate_message(tmp_path):
    path = _write(tmp_path, json.dumps(MULTI))
    assert _error(path, sharegpt_rate=0.0) == "sharegpt_rate must be > 0 requests/s (or None), got 0.0"


def test_skip_warning_counts(tmp_path):
    conv = _conv(("human", "  "), ("gpt", "a"), ("human", "x"), ("gpt", " "), ("human", "q"), ("human", "r"),
                 ("gpt", "ok"), ("human", "z"))
    path = _write(tmp_path, json.dumps([conv]))
    with pytest.warns(TraceWarning) as rec:
        r = load_trace(path, "sharegpt")
    assert r.prompt_tokens.tolist() == [1] and r.output_tokens.tolist() == [1]
    assert [str(w.message) for w in rec] == [
        f"{path}: skipped 2 human/model turn pairs with empty text and 2 human turns with no model reply"]


def test_only_empty_pairs_still_warn(tmp_path):
    path = _write(tmp_path, json.dumps([_conv(("human", " "), ("gpt", "a"), ("human", "abcd"), ("gpt", "ok"))]))
    with pytest.warns(TraceWarning) as rec:
        load_trace(path, "sharegpt")
    assert [str(w.message) for w in rec] == [
        f"{path}: skipped 1 human/model turn pairs with empty text and 0 human turns with no model reply"]


def test_tokenizer_errors_whole(tmp_path, monkeypatch):
    path, tok = _write(tmp_path, json.dumps(MULTI)), _write(tmp_path, "{}", "tokenizer.json")
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # `import tokenizers` fails
    assert _error(path, tokenizer_path=tok) == ("counting tokens with tokenizer_path needs the 'tokenizers' package: "
                                                "pip install tokenizers")

    class Tokenizer:
        @staticmethod
        def from_file(p):
            raise ValueError("bad vocab")

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=Tokenizer))
    assert _error(path, tokenizer_path=tok) == f"{tok}: not a tokenizer.json that tokenizers reads: bad vocab"
