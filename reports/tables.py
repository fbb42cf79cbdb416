"""Reading a run's requests / steps tables a chunk at a time, only the columns a report needs.

Owns the file side: `requests.csv` / `steps.csv` (small runs) or `requests.parquet` /
`steps.parquet` (large runs, the `parquet` extra), same column names either way. CSV goes through
pandas' chunked reader, Parquet through pyarrow's record batches (one row group at a time), so
memory stays at one chunk whatever the run's size. Columns missing from older files are skipped
(the digest copes). Yields dicts of numpy columns; reduces nothing (digest.py) and draws nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CHUNK_ROWS = 500_000
TABLE_SUFFIXES = (".parquet", ".csv")


def find_table(run_dir: Path, stem: str) -> Path | None:
    """run_dir/stem.parquet or run_dir/stem.csv (Parquet first: a large run writes that)."""
    for suffix in TABLE_SUFFIXES:
        path = Path(run_dir) / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def columns_of(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(_parquet(path).schema_arrow.names)
    with open(path, newline="") as fh:
        return fh.readline().strip().split(",")


def iter_chunks(path: Path, wanted, chunk_rows: int = CHUNK_ROWS):
    """Dicts {column: numpy array} of at most chunk_rows rows, only the `wanted` columns present."""
    path = Path(path)
    cols = [c for c in columns_of(path) if c in set(wanted)]
    if path.suffix == ".parquet":
        import pyarrow as pa

        for batch in _parquet(path).iter_batches(batch_size=chunk_rows, columns=cols):
            yield {name: _numpy(batch.column(i)) for i, name in enumerate(batch.schema.names)}
            del batch
            pa.default_memory_pool().release_unused()  # hand decoded row groups back, not keep them pooled
        return
    import pandas as pd

    dtypes = {c: str for c in cols if c in ("status", "bound", "source", "fail_reason")}
    try:
        reader = pd.read_csv(path, usecols=cols, dtype=dtypes, chunksize=chunk_rows, keep_default_na=True)
        for frame in reader:
            yield {c: frame[c].to_numpy() for c in cols}
    except pd.errors.EmptyDataError:
        return


def read_table(path: Path, wanted=None) -> dict[str, np.ndarray]:
    """A whole (small) table in memory; `wanted` None = every column."""
    cols = columns_of(Path(path)) if wanted is None else wanted
    parts = list(iter_chunks(path, cols))
    if not parts:
        return {c: np.zeros(0) for c in columns_of(Path(path)) if c in set(cols)}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _numpy(column) -> np.ndarray:
    """An Arrow column as numpy; a string column (status, bound, source) through its dictionary, so
    a chunk holds one Python string per distinct value, not one per row."""
    import pyarrow as pa

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            or pa.types.is_dictionary(column.type)):
        return column.to_numpy(zero_copy_only=False)
    coded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
    names = np.array(coded.dictionary.to_pylist() + [""], dtype=object)
    codes = coded.indices.to_numpy(zero_copy_only=False)
    return names[np.where(np.isnan(codes.astype(np.float64)), len(names) - 1, codes).astype(np.int64)]


def _parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install 'servesim[parquet]'") from None
    return pq.ParquetFile(path, pre_buffer=False)  # pre-buffering would hold every row group of the columns
