"""The profile table format: tidy long rows (one kernel shape per row) + a metadata sidecar.

Owns the column names, CSV read/write, row validation (NaN, negative or missing times are
rejected naming the row) and the metadata.json sidecar. A profile is a directory holding
`table.csv` and `metadata.json`. Times are per call of one kernel on one layer and one
tensor-parallel rank, in microseconds (the unit is in the column name). No torch here.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

TABLE_NAME, METADATA_NAME = "table.csv", "metadata.json"

# Per-rank shape columns; an op uses the ones that define its work, the rest stay 0.
SHAPE_COLUMNS = ("num_tokens", "in_dim", "out_dim", "batch_size", "chunk_tokens", "context_tokens",
                 "num_heads", "num_kv_heads", "head_dim", "num_experts", "num_bytes", "num_layers")
TIME_COLUMNS = ("time_median_us", "time_p10_us", "time_p90_us", "time_mean_us", "time_std_us")
EXTRA_COLUMNS = ("num_repeats", "power_mean_w", "sm_clock_mhz", "mem_clock_mhz", "temperature_c",
                 "memory_used_bytes", "energy_per_call_j")
COLUMNS = ("op", "dtype") + SHAPE_COLUMNS + TIME_COLUMNS + EXTRA_COLUMNS


class ProfileError(ValueError):
    """A profile table or sidecar is malformed; the message names the file and row."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileRow:
    op: str
    dtype: str
    shape: dict[str, int]  # all SHAPE_COLUMNS, 0 when unused
    time_median_us: float
    time_p10_us: float = math.nan
    time_p90_us: float = math.nan
    time_mean_us: float = math.nan
    time_std_us: float = math.nan
    extra: dict[str, float] = field(default_factory=dict)  # EXTRA_COLUMNS that were recorded

    def __post_init__(self) -> None:
        if not self.op:
            raise ValueError("op must be a non-empty name")
        t = self.time_median_us
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise ValueError(f"time_median_us must be a finite number > 0, got {t!r}")
        for name in TIME_COLUMNS[1:]:
            v = getattr(self, name)
            if not math.isnan(v) and (not math.isfinite(v) or v < 0):
                raise ValueError(f"{name} must be finite and >= 0 (or empty), got {v!r}")
        for name, v in self.shape.items():
            if name not in SHAPE_COLUMNS or not isinstance(v, int) or v < 0:
                raise ValueError(f"shape column {name}={v!r} must be one of {SHAPE_COLUMNS}, an int >= 0")

    @property
    def time_s(self) -> float:
        return self.time_median_us * 1e-6

    def as_csv_row(self) -> list:
        shape = [self.shape.get(c, 0) for c in SHAPE_COLUMNS]
        times = [_fmt(getattr(self, c)) for c in TIME_COLUMNS]
        extra = [_fmt(self.extra.get(c, math.nan)) for c in EXTRA_COLUMNS]
        return [self.op, self.dtype, *shape, *times, *extra]


def _fmt(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))


_ZERO_SHAPE = dict.fromkeys(SHAPE_COLUMNS, 0)


def make_shape(**dims: int) -> dict[str, int]:
    if not dims.keys() <= _ZERO_SHAPE.keys():
        unknown = set(dims) - set(SHAPE_COLUMNS)
        raise ValueError(f"unknown shape column(s) {sorted(unknown)}; allowed: {SHAPE_COLUMNS}")
    shape = _ZERO_SHAPE.copy()
    for k, v in dims.items():
        shape[k] = int(v)
    return shape


def write_table(rows: list[ProfileRow], path: Path) -> None:
    """table.csv through pandas (the columns in COLUMNS order, one row per shape)."""
    import pandas as pd

    frame = pd.DataFrame([r.as_csv_row() for r in rows], columns=list(COLUMNS))
    frame.to_csv(path, index=False, lineterminator="\r\n")


def _number(text: str, name: str, where: str, *, integer: bool = False) -> float:
    if text is None or text.strip() == "":
        if integer:
            return 0
        return math.nan
    try:
        return int(text) if integer else float(text)
    except ValueError:
        raise ProfileError(f"{where}: {name}={text!r} is not a number") from None


def read_table(path: str | Path) -> list[ProfileRow]:
    """Rows of a table.csv; any bad row is an error naming the file, line and value."""
    import pandas as pd

    path = Path(path)
    text = read_text(path, "profile table")
    try:  # every cell as text; the checks below name the line and value of a bad one
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ProfileError(f"{path}: not a CSV table: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("op", "dtype", "time_median_us") if c not in frame.columns]
    if missing:
        raise ProfileError(f"{path}: missing column(s) {missing}; expected columns {COLUMNS}")
    rows = []
    for line, raw in enumerate(frame.to_dict("records"), start=2):
        where = f"{path}:{line}"
        median = raw.get("time_median_us")
        if median is None or median.strip() == "":
            raise ProfileError(f"{where}: time_median_us is missing (row {raw})")
        try:
            rows.append(ProfileRow(
                op=raw["op"], dtype=raw["dtype"],
                shape={c: _number(raw.get(c), c, where, integer=True) for c in SHAPE_COLUMNS},
                **{c: _number(raw.get(c), c, where) for c in TIME_COLUMNS},
                extra={c: _number(raw.get(c), c, where) for c in EXTRA_COLUMNS
                       if raw.get(c) not in (None, "")},
            ))
        except ValueError as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"{where}: {exc} (row {dict(raw)})") from None
    if not rows:
        raise ProfileError(f"{path}: no rows")
    return rows


def write_metadata(meta: dict, path: Path) -> None:
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_text(path: str | Path, what: str = "file") -> str:
    """A text file's contents; bytes that are not UTF-8 are a ProfileError naming the file."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start}); a {what} is UTF-8 text") from None
    except FileNotFoundError:
        raise ProfileError(f"{path}: {what} not found") from None


def read_json(path: str | Path) -> dict:
    """A JSON object file's contents; non-UTF-8 bytes, malformed JSON or JSON that is not an object
    are a ProfileError naming the file."""
    text = read_text(path, "JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a JSON object (a servesim fit, profile metadata or calibration), "
                           f"not a JSON {type(data).__name__}")
    return data


def read_metadata(path: str | Path) -> dict:
    path = Path(path)
    meta = read_json(path)
    for key in ("device", "dtype"):
        if key not in meta:
            raise ProfileError(f"{path}: metadata lacks {key!r} (needed to match scenarios)")
    return meta


@dataclass(frozen=True, slots=True)
class Profile:
    rows: list[ProfileRow]
    metadata: dict
    path: Path


def load_profile(path: str | Path) -> Profile:
    """A profile directory (table.csv + metadata.json) or the table.csv inside one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    table = folder / TABLE_NAME if path.is_dir() else path
    if not table.is_file():
        raise ProfileError(f"profile table {str(table)!r} does not exist")
    meta_path = folder / METADATA_NAME
    if not meta_path.is_file():
        raise ProfileError(f"{table}: metadata sidecar {str(meta_path)!r} is missing")
    return Profile(read_table(table), read_metadata(meta_path), folder)


def save_profile(rows: list[ProfileRow], metadata: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_table(rows, folder / TABLE_NAME)
    write_metadata(metadata, folder / METADATA_NAME)
    return folder
