"""ShareGPT conversation files -> RequestArrays (traces.py dispatches here for format "sharegpt").

Owns pairing each human turn with the model reply that follows it (one request; the prompt is
that turn's text alone), the token counts (a local tokenizers file, else ~4 UTF-8 bytes per
token) and the optional Poisson arrivals. Bad input raises ServesimError naming file and line;
skipped turns are counted in a TraceWarning.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np

from simulator.errors import ServesimError
from simulator.workload.requests import RequestArrays
from simulator.workload.traces import TraceWarning, _json_error

SHAREGPT_BYTES_PER_TOKEN = 4.0  # rough average for English text under BPE tokenizers
SHAREGPT_HUMAN_ROLES = frozenset({"human", "user"})
SHAREGPT_MODEL_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bard", "bing"})


def _json_array(text: str, path: Path):
    """Yield (char offset, element) of a top-level JSON list, keeping offsets for line numbers."""
    decoder, ws = json.JSONDecoder(), re.compile(r"\s*")

    def fail(pos: int, what: str) -> ServesimError:
        return ServesimError(f"{path}, line {text.count(chr(10), 0, pos) + 1}: {what}")

    i = ws.match(text, 0).end()
    if text[i:i + 1] != "[":
        raise fail(i, "expected a JSON list of conversations starting with '['")
    i = ws.match(text, i + 1).end()
    if text[i:i + 1] != "]":
        while True:
            try:
                obj, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError as e:
                raise _json_error(path, e, e.lineno) from None
            yield i, obj
            i = ws.match(text, end).end()
            if text[i:i + 1] == "]":
                break
            if text[i:i + 1] != ",":
                raise fail(i, "expected ',' or ']' after a conversation")
            i = ws.match(text, i + 1).end()
    if (i := ws.match(text, i + 1).end()) != len(text):
        raise fail(i, "unexpected text after the closing ']'")


def _sharegpt_pairs(path: Path) -> tuple[list[str], list[str], int, list[int]]:
    """(prompt texts, output texts, last line, conversation index of each pair). Each human turn
    directly followed by a model turn is one request; its prompt is that turn's text alone."""
    text = path.read_text(encoding="utf-8-sig")
    prompts, outputs, convs, empty, unpaired = [], [], [], 0, 0
    for c, (pos, conv) in enumerate(_json_array(text, path)):
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, dict) and isinstance(
                t.get("from"), str) and isinstance(t.get("value"), str) for t in turns):
            raise ServesimError(f"{path}, line {text.count(chr(10), 0, pos) + 1}: a conversation must be "
                                "an object with 'conversations': a list of {'from': str, 'value': str}")
        roles = [t["from"].lower() for t in turns]
        for k, role in enumerate(roles):
            if role in SHAREGPT_HUMAN_ROLES:
                if k + 1 < len(roles) and roles[k + 1] in SHAREGPT_MODEL_ROLES:
                    human, model = turns[k]["value"], turns[k + 1]["value"]
                    if human.strip() and model.strip():
                        prompts.append(human)
                        outputs.append(model)
                        convs.append(c)
                    else:
                        empty += 1
                else:
                    unpaired += 1
    if empty or unpaired:
        warnings.warn(f"{path}: skipped {empty} human/model turn pairs with empty text and "
                      f"{unpaired} human turns with no model reply", TraceWarning, stacklevel=4)
    return prompts, outputs, max(1, text.count("\n") + (not text.endswith("\n"))), convs


def _token_counts(texts: list[str], tokenizer_path: Path | None) -> np.ndarray:
    """Tokens per text: the tokenizer's count (add_special_tokens=False), or the estimate
    max(1, round(utf8_bytes / 4)). Every count is clamped to >= 1."""
    if tokenizer_path is None:
        return np.array([max(1, round(len(t.encode("utf-8")) / SHAREGPT_BYTES_PER_TOKEN))
                         for t in texts], dtype=np.int64)
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ServesimError("counting tokens with tokenizer_path needs the 'tokenizers' "
                            "package: pip install tokenizers") from None
    if not tokenizer_path.is_file():
        raise ServesimError(f"{tokenizer_path}: tokenizer file not found")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as e:  # the library raises its own exception types
        raise ServesimError(f"{tokenizer_path}: not a tokenizer.json that tokenizers reads: {e}") from None
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    return np.array([max(1, len(enc.ids)) for enc in encodings], dtype=np.int64)


def load_sharegpt(path: Path, tokenizer_path: Path | None, rate_per_s: float | None,
                   seed: int, multi_turn: bool = False) -> RequestArrays:
    """multi_turn: turn k of a conversation is sent with its history, as a chat client does: its
    prompt = the kept human/model pairs before it plus its human text (their token counts added;
    chat-template tokens are not counted), and the rows carry prefix identity (workload/prefix.py:
    chunk (conversation, 2 i) is pair i's human text, (conversation, 2 i + 1) its reply), so a
    later turn shares its history's blocks with the earlier ones. Rows stay in file order."""
    if rate_per_s is not None and not (rate_per_s > 0):
        raise ServesimError(f"sharegpt_rate must be > 0 requests/s (or None), got {rate_per_s}")
    prompts, outputs, last_line, convs = _sharegpt_pairs(path)
    if not prompts:
        raise ServesimError(f"{path}, line {last_line}: no requests (no human turn followed by a "
                            "model turn)")
    arrival_s = np.zeros(len(prompts))
    if rate_per_s is not None and not math.isinf(rate_per_s):  # Poisson: exponential gaps, first at 0
        gaps_s = np.random.default_rng(seed).exponential(1.0 / rate_per_s, size=len(prompts) - 1)
        arrival_s[1:] = np.cumsum(gaps_s)
    tokens = _token_counts(prompts + outputs, tokenizer_path)
    if multi_turn:
        prompt_tokens, prefix = _with_history(tokens[:len(prompts)].tolist(), tokens[len(prompts):].tolist(), convs)
        return RequestArrays.from_columns(arrival_s, prompt_tokens, tokens[len(prompts):], prefix)
    return RequestArrays.from_columns(arrival_s, tokens[:len(prompts)], tokens[len(prompts):])


def _with_history(human: list[int], reply: list[int], convs: list[int]) -> tuple[list[int], list[tuple]]:
    """Multi-turn prompts (history + this human turn) and their chunks, including the reply's chunk
    (so the engine can cache the blocks a reply fills for the next turn)."""
    prompts, prefix, history, turn, last = [], [], [], 0, None
    for h, r, c in zip(human, reply, convs):
        if c != last:
            history, turn, last = [], 0, c
        chunks = (*history, ((c, 2 * turn), h))
        prompts.append(sum(n for _, n in chunks))
        prefix.append((*chunks, ((c, 2 * turn + 1), r)))
        history, turn = [*chunks, ((c, 2 * turn + 1), r)], turn + 1
    return prompts, prefix


def previous_turns(prefix: list) -> list[int]:
    """For multi-turn rows (load_sharegpt(multi_turn=True) prefix chunks, in replay order): the row
    of each row's previous turn in its conversation, -1 for a first turn. A chat client sends turn
    k only after turn k - 1's reply arrived; the engine composition holds a turn back until then.
    Rows replayed cyclically point at the previous turn of their own cycle (the latest one)."""
    latest: dict[tuple, int] = {}
    out = []
    for i, chunks in enumerate(prefix):
        conversation, k = chunks[-2][0]  # (conversation, 2 turn): this turn's human text
        out.append(latest.get((conversation, k - 2), -1) if k >= 2 else -1)
        latest[(conversation, k)] = i
    return out
