"""ShareGPT token estimate without a tokenizer (issue 19): max(1, round(UTF-8 bytes / 4)), on
non-ASCII text whose characters and bytes give different counts (a count by characters would
undercount CJK text 3x and emoji 4x). Python's round() rounds halves to even, as the loader does.
"""
import json

import pytest

from simulator.workload import load_trace

CASES = [
    # text, UTF-8 bytes, expected tokens; characters / 4 would give the last column
    ("日本語のテキスト", 24, 6),  # 8 chars -> 2
    ("ありがとう", 15, 4),  # 5 chars -> 1 (15 / 4 = 3.75 -> 4)
    ("😀" * 4, 16, 4),  # 4 chars -> 1
    ("é" * 10, 20, 5),  # 10 chars -> round(2.5) = 2
    ("ok", 2, 1),  # round(0.5) = 0, clamped to 1
    ("Привет, мир! Как дела?", 38, 10),  # 22 chars -> round(5.5) = 6; 38 / 4 = 9.5 -> 10 (half to even)
]


@pytest.mark.parametrize("text, nbytes, tokens", CASES)
def test_estimate_counts_utf8_bytes(tmp_path, text, nbytes, tokens):
    assert len(text.encode("utf-8")) == nbytes
    assert round(len(text) / 4) != tokens or len(text) == nbytes  # characters would give another count
    conv = {"conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": "a" * 40}]}
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([conv], ensure_ascii=False), encoding="utf-8")
    r = load_trace(path, "sharegpt")
    assert r.prompt_tokens.tolist() == [tokens] and r.output_tokens.tolist() == [10]


def test_prompt_and_reply_each_counted(tmp_path):
    convs = [{"conversations": [{"from": "human", "value": t}, {"from": "gpt", "value": u}]}
             for (t, _, _), (u, _, _) in zip(CASES, reversed(CASES))]
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    r = load_trace(path, "sharegpt")
    assert r.prompt_tokens.tolist() == [c[2] for c in CASES]
    assert r.output_tokens.tolist() == [c[2] for c in reversed(CASES)]
