"""Public request traces -> RequestArrays: Splitwise, Azure LLM, BurstGPT, Mooncake, ShareGPT, and
a measured benchmark's own requests ("bench": vLLM bench serve / SGLang bench_serving results,
parsed by bench_results.py; arrivals at their send times when the file has them, else at 0).

Owns parsing and validating trace files (format detection, per-line error messages) (ShareGPT's
pairing, token counts and arrivals: sharegpt.py). Bad input raises
ServesimError naming the file and the 1-based line. Rows are never dropped silently: BurstGPT
zero-output rows need skip_zero_output=True (CLI --trace-skip-failed; then a TraceWarning gives the
count), and skipped ShareGPT turns are counted in a TraceWarning. CSV formats are read with the
standard library's csv module (csv_table.py: every cell as text, then validated here; the number columns converted in
one pass, a row with a bad cell re-read cell by cell for its error message); pandas is imported
only for Azure date-time cells (pd.to_datetime). "lengths" is a length-only CSV (Vidur's:
num_prefill_tokens, num_decode_tokens, no arrival column): every arrival is 0, for
--trace-arrivals rate.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Callable, Iterator, TextIO

import numpy as np

from simulator.errors import ServesimError
from simulator.workload.bench_results import read_bench_result
from simulator.workload.csv_table import csv_table, float_cells
from simulator.workload.prefix import mooncake_chunks
from simulator.workload.requests import RequestArrays

MAX_TOKENS_PER_REQUEST = 10**9  # a larger count is a corrupt cell, not a request
TRACE_FORMATS = ("splitwise", "azure", "burstgpt", "mooncake", "sharegpt", "bench", "lengths")
_MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")
_DATE_START = re.compile(r"\s*\d{4}-\d{2}-\d{2}[ T]")  # guards pandas from 'now', 'today', 'May 10'


class TraceWarning(UserWarning):
    """Rows or turns were skipped while loading a trace (the message gives the count)."""


def _number(value: object) -> float | int:
    """A JSON/CSV value as a finite int or float; ValueError (the reason) otherwise."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{value.strip()!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def _count(value: object) -> int:
    """A token count: a whole number >= 0 (the >= 1 rules are checked by the caller)."""
    v = _number(value)
    if isinstance(v, float) and not v.is_integer():
        raise ValueError(f"{v} is not a whole number of tokens")
    if v < 0:
        raise ValueError(f"{v} is negative; token counts must be >= 0")
    if v > MAX_TOKENS_PER_REQUEST:
        raise ValueError(f"{v:g} tokens is beyond any model's context; token counts must be <= {MAX_TOKENS_PER_REQUEST:.0e}")
    return int(v)


def _time(value: object) -> float | int:
    """A numeric timestamp (seconds or milliseconds, as the format says); must be >= 0."""
    v = _number(value)
    if v < 0:
        raise ValueError(f"timestamp {v} is negative; timestamps must be >= 0")
    return v


def _azure_time_ns(text: str) -> int:
    """An ISO date-time (any fraction digits, optional UTC offset; naive = UTC) or plain seconds ->
    integer ns since the epoch (seconds: ns from 0)."""
    import pandas as pd  # lazily: `import simulator` stays light

    try:
        seconds = _number(text)
    except ValueError:
        pass
    else:
        return round(_time(seconds) * 10**9)
    if not _DATE_START.match(text):
        raise ValueError(f"{text.strip()!r} is neither a date-time 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]' "
                         "nor a number of seconds")
    try:
        ts = pd.to_datetime(text.strip(), format="mixed", utc=True)
    except (ValueError, OverflowError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{text.strip()!r} is not a date-time 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]': "
                         f"{reason}") from None
    return int(ts.as_unit("ns").value)


def _azure_times_ns(cells: list[str], path: Path) -> np.ndarray:
    """Vectorized _azure_time_ns: int64 ns, or the sentinel -1 where a cell needs the slow path.
    pandas (to_datetime) is imported only when a cell looks like a date-time. Raises ServesimError
    for a column that mixes date-times and plain seconds (line numbers: one record per line)."""
    num = float_cells(cells)
    out = np.full(len(cells), -1, dtype=np.int64)
    plain = np.isfinite(num) & (num >= 0)  # valid plain seconds (a negative cell gets its own error)
    ok = plain & (num < 9e9)  # beyond ~9.2e9 s the ns overflow int64: per cell
    out[ok] = np.round(num[ok] * 1e9).astype(np.int64)
    rest = [k for k in np.flatnonzero(~ok).tolist() if _DATE_START.match(cells[k])]
    if rest and plain.any():
        seconds = int(np.flatnonzero(plain)[0])
        raise ServesimError(f"{path}, line {rest[0] + 2}: TIMESTAMP {cells[rest[0]].strip()!r} is a date-time but "
                            f"line {seconds + 2} has plain seconds ({cells[seconds].strip()!r}); allowed: one form in "
                            "every row (plain seconds count from 1970: years away from the date-times)")
    if rest:
        import pandas as pd  # lazily, for date-times only: `import simulator` and numeric traces stay light

        texts = pd.Series([cells[k] for k in rest], dtype=str).str.strip()
        dt = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        ns = dt.dt.as_unit("ns").astype("int64").to_numpy()
        parsed = dt.notna().to_numpy()
        out[np.array(rest, dtype=np.int64)[parsed]] = ns[parsed]
    return out


# format -> ((time, prompt, output) column names, time parser, seconds per time unit)
# (time column None: no timestamps, every arrival 0). Detection tries them in this order.
_CSV_SPECS: dict[str, tuple[tuple[str | None, str, str], Callable[[str], float | int], float]] = {
    "splitwise": (("arrived_at", "num_prefill_tokens", "num_decode_tokens"), _time, 1.0),
    "azure": (("TIMESTAMP", "ContextTokens", "GeneratedTokens"), _azure_time_ns, 1e-9),
    "burstgpt": (("Timestamp", "Request tokens", "Response tokens"), _time, 1.0),
    "lengths": ((None, "num_prefill_tokens", "num_decode_tokens"), _time, 1.0),
}


_Row = tuple[int, float | int, int, int]  # (line, timestamp in the format's unit, prompt, output)


def _collect(path: Path, fmt: str, cols: tuple[str, ...], rows: Iterator[_Row], time_unit_s: float,
             skip_zero_output: bool = False, prefix: list | None = None) -> RequestArrays:
    """Apply the >= 1 token rules (and BurstGPT's skip rule) to parsed rows; build the arrays.
    `prefix`: per row, its prefix identity (filled while `rows` is read; formats that skip no rows)."""
    kept, skipped, line = [], 0, 1
    for line, t, p, o in rows:
        if p < 1:
            raise ServesimError(f"{path}, line {line}: {cols[1]} is 0; prompts need >= 1 token")
        if o < 1 and fmt == "burstgpt" and skip_zero_output:
            skipped += 1
        elif o < 1:
            hint = (" (a failed request in BurstGPT); pass --trace-skip-failed (scenario key "
                    "trace_skip_failed) to skip such rows"
                    if fmt == "burstgpt" else "; outputs need >= 1 token")
            raise ServesimError(f"{path}, line {line}: {cols[2]} is 0{hint}")
        else:
            kept.append((t, p, o))
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} rows with 0 output tokens (failed requests)",
                      TraceWarning, stacklevel=3)
    if not kept:
        raise ServesimError(f"{path}, line {line}: no requests in the trace")
    times, prompts, outputs = zip(*kept)
    first = min(times)  # exact integer/float subtraction before scaling to seconds
    units_per_s = round(1 / time_unit_s)  # dividing (not * 1e-9) rounds ns/ms to the nearest float
    arrival_s = np.array([t - first for t in times], dtype=np.float64) / units_per_s
    return RequestArrays.from_columns(arrival_s, prompts, outputs, prefix)


def _numbers(cells: list[str], whole: bool) -> np.ndarray:
    """Vectorized _count (whole=True) / _time: float64, NaN where a cell needs the slow path."""
    num = float_cells(cells)
    bad = ~np.isfinite(num) | (num < 0)
    if whole:
        bad |= np.isfinite(num) & ((num != np.floor(num)) | (num > MAX_TOKENS_PER_REQUEST))
    num[bad] = np.nan
    return num


def _csv_rows(path: Path, fmt: str, text: str) -> Iterator[_Row]:
    """Rows of a CSV trace, every cell read as text (csv_table.py); a row's line number is the
    file's line where its record starts (header = 1; a quoted field may hold newlines)."""
    cols, parse_time, _ = _CSV_SPECS[fmt]
    table, n_cols, spans = csv_table(path, text)
    header = [c.strip() for c in table[:n_cols]]
    needed = [c for c in cols if c is not None]
    missing = [c for c in needed if c not in header]
    if missing:
        raise ServesimError(f"{path}, line 1: {fmt} header lacks column(s) {missing}; "
                            f"found {header}; required {needed}")
    if twice := [c for c in needed if header.count(c) > 1]:
        raise ServesimError(f"{path}, line 1: column(s) {twice} appear more than once in the header; allowed: "
                            "each once (which one holds the requests is not clear)")
    n_rows = len(table) // n_cols - 1
    idx = [None if c is None else header.index(c) for c in cols]
    cells = [None if i is None else table[n_cols + i::n_cols] for i in idx]
    if cols[0] is None:
        times = np.zeros(n_rows, dtype=np.int64)
    elif fmt == "azure":
        times = _azure_times_ns(cells[0], path)
    else:
        times = _numbers(cells[0], whole=False)
    prompts, outputs = _numbers(cells[1], whole=True), _numbers(cells[2], whole=True)
    good = ~(np.isnan(prompts) | np.isnan(outputs))
    if times.dtype == np.int64:  # azure ns; -1 marks a cell for the slow path
        good &= times >= 0
    else:
        good &= ~np.isnan(times)
    times_list = times.tolist()
    lines, width = None, max(i for i in idx if i is not None) + 1  # lines: split on the slow path only
    p_list, o_list = prompts.tolist(), outputs.tolist()
    for k, ok in enumerate(good.tolist()):
        line = k + 2 if spans is None else spans[k + 1][0]
        if ok:
            yield line, times_list[k], int(p_list[k]), int(o_list[k])
            continue
        row = table[(k + 1) * n_cols:(k + 2) * n_cols]
        if spans is None:  # no quotes: record k + 1 is line k + 2, its fields split at ","
            lines = text.split("\n") if lines is None else lines
            n_fields = lines[k + 1].count(",") + 1  # a blank line: one empty field
        else:
            n_fields = spans[k + 1][1]  # the csv module reads a blank line as no fields
        if n_fields == 0 or (n_fields == 1 and not row[0].strip()):
            continue  # a blank or whitespace-only line
        if any(row[i] == "" for i in idx if i is not None) and n_fields < width:
            raise ServesimError(f"{path}, line {line}: {n_fields} fields, header has {len(header)}")
        parsers = (parse_time, _count, _count)
        values = [0 if i is None else _reraise_at(path, line, f"column {c!r}", parse, row[i])
                  for c, parse, i in zip(cols, parsers, idx)]
        yield line, *values


def _reraise_at(path: Path, line: int, where: str, parse: Callable, value: object):
    """parse(value), turning its ValueError into a ServesimError naming file, line and cell."""
    try:
        return parse(value)
    except ValueError as e:
        raise ServesimError(f"{path}, line {line}, {where}: {e}") from None


def _json_error(path: Path, e: json.JSONDecodeError, line: int) -> ServesimError:
    return ServesimError(f"{path}, line {line}: not valid JSON ({e.msg}, column {e.colno})")


def _mooncake_rows(path: Path, f: TextIO, prefix: list) -> Iterator[_Row]:
    """Rows of a Mooncake JSONL trace; each row's `hash_ids` (optional) go to `prefix` as chunks
    (workload/prefix.py mooncake_chunks)."""
    for line, text in enumerate(f, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise _json_error(path, e, line) from None
        if not isinstance(obj, dict) or any(k not in obj for k in _MOONCAKE_KEYS):
            found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise ServesimError(f"{path}, line {line}: expected an object with keys "
                                f"{list(_MOONCAKE_KEYS)}; found {found}")
        for key in (k for k in _MOONCAKE_KEYS if isinstance(obj[k], str)):
            raise ServesimError(f"{path}, line {line}, key {key!r}: {obj[key]!r} is a string, not a number")
        row = tuple(_reraise_at(path, line, f"key {key!r}", parse, obj[key])
                    for key, parse in zip(_MOONCAKE_KEYS, (_time, _count, _count)))
        prefix.append(_reraise_at(path, line, "key 'hash_ids'", lambda ids: mooncake_chunks(ids, row[1]),
                                  obj.get("hash_ids", [])))
        yield line, *row


def detect_format(path: str | Path) -> str:
    """Guess the trace format from the extension and the first line (CSV header, JSON start)."""
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"{path}: trace file not found")
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        head = f.read(1 << 16)  # enough for any header; ShareGPT files can be one huge line
    first = next((ln for ln in head.splitlines() if ln.strip()), "").strip()
    if first.startswith("{") and '"input_lens"' in head:
        return "bench"
    if first.startswith("["):
        return "sharegpt"
    if first.startswith("{") and (path.suffix.lower() == ".jsonl"
                                  or all(f'"{k}"' in first for k in _MOONCAKE_KEYS)):
        return "mooncake"
    header = {c.strip().strip('"').strip() for c in first.split(",")}
    for fmt, (cols, _, _) in _CSV_SPECS.items():
        if header.issuperset(c for c in cols if c is not None):
            return fmt
    raise ServesimError(f"{path}, line 1: cannot tell the trace format from {first[:80]!r}; "
                        f"pass --trace-format one of {list(TRACE_FORMATS)}")


def load_trace(path: str | Path, format: str | None = None, *, tokenizer_path: str | Path | None = None,
               sharegpt_rate: float | None = None, seed: int = 0,
               skip_zero_output: bool = False, require_timestamps: bool = False,
               multi_turn: bool = False) -> RequestArrays:
    """Load a trace file as RequestArrays (sorted, first arrival at t=0).

    format: one of TRACE_FORMATS, or None to detect it. tokenizer_path, sharegpt_rate (req/s,
    None = all at t=0) and seed apply to "sharegpt" only; skip_zero_output to "burstgpt" only.
    require_timestamps (the scenario's trace_arrivals="trace"): a "lengths" file, which has no
    arrival times, is then an error. multi_turn ("sharegpt" only; scenario sharegpt_multi_turn):
    each turn's prompt is its conversation's history (sharegpt.load_sharegpt).
    Mooncake rows' `hash_ids` become the rows' prefix identity (workload/prefix.py).
    ShareGPT: each human turn directly followed by a model turn is one request (prompt = that
    human text alone, without earlier turns; output = the reply). Its token counts come from the
    tokenizer, else are an estimate: max(1, round(utf8_bytes / 4)), ~4 bytes per English BPE token.
    """
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"{path}: trace file not found")
    fmt = detect_format(path) if format is None else format
    if fmt not in TRACE_FORMATS:
        raise ServesimError(f"unknown trace format {fmt!r}; allowed: {list(TRACE_FORMATS)}")
    if fmt != "sharegpt" and (tokenizer_path is not None or sharegpt_rate is not None):
        raise ServesimError(f"tokenizer_path and sharegpt_rate apply to sharegpt traces, not {fmt}")
    if fmt != "sharegpt" and multi_turn:
        raise ServesimError(f"sharegpt_multi_turn applies to sharegpt traces, not {fmt}")
    if fmt != "burstgpt" and skip_zero_output:
        raise ServesimError(f"--trace-skip-failed (skip_zero_output) applies to burstgpt traces, not {fmt}")
    if fmt == "lengths" and require_timestamps:
        raise ServesimError(f"{path}: a length-only trace (no arrival timestamps); pass --trace-arrivals rate "
                            "(scenario key trace_arrivals = \"rate\") to give arrivals from --rate/--arrival")
    try:
        if fmt == "sharegpt":
            tok_path = None if tokenizer_path is None else Path(tokenizer_path)
            from simulator.workload.sharegpt import load_sharegpt

            return load_sharegpt(path, tok_path, sharegpt_rate, seed, multi_turn)
        if fmt == "bench":
            return read_bench_result(path).requests()
        if fmt == "mooncake":  # Mooncake timestamps are milliseconds
            prefix: list = []
            with path.open(encoding="utf-8-sig", newline="") as f:
                reqs = _collect(path, fmt, _MOONCAKE_KEYS, _mooncake_rows(path, f, prefix), 1e-3, prefix=prefix)
            return reqs if any(prefix) else RequestArrays(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens)
        cols, _, time_unit_s = _CSV_SPECS[fmt]
        text = path.read_text(encoding="utf-8-sig")
        return _collect(path, fmt, cols, _csv_rows(path, fmt, text), time_unit_s, skip_zero_output)
    except UnicodeDecodeError as e:
        raise ServesimError(f"{path}: not UTF-8 text (byte offset {e.start}): {e.reason}") from None
