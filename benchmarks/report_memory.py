"""Report memory for very large runs: peak RSS of rendering a run report from synthetic
requests.parquet / steps.parquet tables (issue 18: a 10M-request run stays drawable in bounded memory).

    python benchmarks/report_memory.py                         # 2M and 10M requests (half as many steps)
    python benchmarks/report_memory.py --requests 1000000      # one size

Each size is written and rendered in fresh processes (peak RSS is per process); prints requests, steps, render wall
time, peak RSS and page size. Needs pyarrow (the `parquet` extra) and plotly (the `report` extra).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROW_GROUP = 1_000_000
RENDER = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from reports import render_report
t = time.perf_counter()
page = render_report([{run!r}], {out!r})
print(json.dumps({{"render_s": time.perf_counter() - t, "page_mb": page.stat().st_size / 1e6,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def write_run(run: Path, n: int, m: int) -> None:
    """n requests at 40 req/s with lognormal latencies, m steps; named bound/source columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    span = n / 40.0
    with pq.ParquetWriter(run / "requests.parquet", pa.schema(
            [("status", pa.string()), ("finish_s", pa.float64()), ("ttft_ms", pa.float64()), ("tpot_ms", pa.float64()),
             ("e2el_ms", pa.float64()), ("num_preemptions", pa.int64())])) as w:
        for s in range(0, n, ROW_GROUP):
            k = min(n, s + ROW_GROUP) - s
            ttft = rng.lognormal(4, 1, k)
            e2e = ttft + rng.lognormal(8, 0.5, k)
            w.write_table(pa.table({"status": ["finished"] * k, "finish_s": np.sort(rng.uniform(0, span, k)),
                                    "ttft_ms": ttft, "tpot_ms": rng.normal(14, 1, k), "e2el_ms": e2e,
                                    "num_preemptions": rng.integers(0, 2, k)}))
    writer = None
    for s in range(0, m, ROW_GROUP):
        k = min(m, s + ROW_GROUP) - s
        ones = np.ones(k)
        table = pa.table({"start_s": np.arange(s, s + k) * (span / m), "duration_s": ones * span / m,
                          "num_prefill_tokens": ones * 512, "num_decode": ones * 99, "num_logits": ones * 100,
                          "num_running": ones * 100, "kv_blocks_used": rng.uniform(0, 100, k), "kv_blocks_total": ones * 100,
                          "bound": np.where(rng.random(k) < 0.5, "memory", "compute").tolist(), "flops": ones * 1e13,
                          "bytes": rng.uniform(1e9, 1e11, k), "compute_s": ones * 0.01, "memory_s": ones * 0.002,
                          "comm_s": 0 * ones, "overhead_s": 0 * ones, "source": ["transfer"] * k,
                          "preemptions_total": np.arange(s, s + k) // 1000})
        writer = writer or pq.ParquetWriter(run / "steps.parquet", table.schema)
        writer.write_table(table)
    writer.close()
    (run / "summary.json").write_text(json.dumps({
        "metrics": {"duration": span + 10, "submitted": n, "completed": n}, "scenario": {"model": "synthetic"},
        "provenance": {"hardware": {"peak_flops": 989.4e12, "memory_bandwidth_bytes_per_s": 3.35e12}}}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, nargs="*", default=[2_000_000, 10_000_000])
    p.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # internal: write one run's tables and exit
    args = p.parse_args()
    if args.write:
        write_run(args.write, args.requests[0], args.requests[0] // 2)
        return 0
    print(f"{'requests':>12} {'steps':>12} {'render s':>9} {'peak RSS MB':>12} {'page MB':>8}")
    for n in args.requests:
        with tempfile.TemporaryDirectory(prefix="servesim-report-mem-") as tmp:
            run = Path(tmp) / "run"
            run.mkdir()
            # written by its own process: a child forked from a big parent starts with the parent's
            # peak RSS in ru_maxrss, so this process stays small and so does the render's baseline
            subprocess.run([sys.executable, __file__, "--write", str(run), "--requests", str(n)], check=True)
            code = RENDER.format(root=str(ROOT), run=str(run), out=str(Path(tmp) / "report.html"))
            out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout)
            print(f"{n:>12,} {n // 2:>12,} {out['render_s']:>9.1f} {out['peak_rss_mb']:>12.0f} {out['page_mb']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
