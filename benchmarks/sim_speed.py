"""Simulator speed: requests and generated tokens per wall-second, and peak memory.

Setting (issue 2): splitwise_conv trace lengths (../shared/reference/traces) on Llama-2-7B /
A100-80GB, chunked prefill (chunk 512, max_num_seqs 128), Poisson arrivals at 6.45 req/s.
Targets on a 2-core machine: 10k requests < 2 s wall, 100k < 20 s, memory ~linear.
Each size runs in a fresh subprocess so peak RSS is per run.

    python benchmarks/sim_speed.py [N ...]     (default: 10000 100000)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT.parent / "shared" / "reference" / "traces" / "splitwise_conv.csv"

CHILD = r"""
import json, resource, sys, time
from simulator.scenario import Scenario
from simulator.run import simulate
from simulator.results.summary import build_summary
n = int(sys.argv[1])
s = Scenario(model="llama-2-7b", hardware="a100-80gb", scheduler="sarathi", chunk_size=512,
             max_num_seqs=128, trace=sys.argv[2], trace_arrivals="rate", rate=6.45, num_requests=n, seed=0)
t0 = time.perf_counter()
r = simulate(s)
sim_s = time.perf_counter() - t0
m = build_summary(r)["metrics"]
total_s = time.perf_counter() - t0
print(json.dumps({"n": n, "sim_s": sim_s, "total_s": total_s, "steps": m["num_steps"],
    "completed": m["completed"], "failed": m["failed"], "tokens": m["total_output_tokens"],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(TRACE)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if not TRACE.is_file():
        sys.exit(f"trace not found: {TRACE}")
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    print(f"{'requests':>9} {'completed':>9} {'failed':>6} {'steps':>8} {'sim wall s':>10} "
          f"{'+summary s':>10} {'req/s':>9} {'gen tok/s':>10} {'peak RSS MB':>11}")
    for n in sizes:
        r = run(n)
        print(f"{r['n']:>9} {r['completed']:>9} {r['failed']:>6} {r['steps']:>8} {r['sim_s']:>10.2f} "
              f"{r['total_s']:>10.2f} {r['n'] / r['sim_s']:>9.0f} {r['tokens'] / r['sim_s']:>10.0f} "
              f"{r['peak_rss_mb']:>11.0f}")


if __name__ == "__main__":
    main()
