"""Simulator speed and memory: wall time and peak RSS of whole CLI runs, against their targets.

Cases (each in a fresh process, so peak RSS is that run's; `servesim` as a user runs it):
  10k, 100k   issue 2's setting: splitwise_conv trace lengths (../shared/reference/traces) on
              Llama-2-7B / A100-80GB, chunked prefill (chunk 512, max_num_seqs 128), Poisson
              6.45 req/s; the simulation time alone (in-process timer), target 10k <= 0.83 s
  1m-json     issue 17: 1M requests, default model and hardware, 128-token prompts, 32-token
              outputs, 50 req/s, `--json`; target <= 25 s and <= 400 MB
  1m-out      the same with `--out DIR` (parquet: more than 100k requests); target <= 600 MB
  10m-out     10M requests, default model at 100 req/s with default lengths on 8 replicas (one
              replica serves ~13 req/s: a day of traffic needs them), `--out DIR`;
              target <= 6 min and <= 1 GB
  plan-100    `plan` over 100 candidates (2 models x 5 devices x tp 1,2 x 5 max_num_seqs), 2 jobs,
              a fresh store; target <= 2 min
Machines are noisy: compare ratios within one run.

    python benchmarks/sim_speed.py [CASE ...]     (default: 10k 100k 1m-json 1m-out plan-100)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT.parent / "shared" / "reference" / "traces" / "splitwise_conv.csv"
SERVESIM = [sys.executable, "-m", "simulator.cli"]

# a child that runs a command and reports its wall time and peak RSS (its only child's)
TIMED = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t0
print(json.dumps({"rc": r.returncode, "wall_s": wall, "stderr": r.stderr[-2000:],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

# issue 2's in-process timing of the simulation alone
SIM_ONLY = r"""
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
print(json.dumps({"sim_s": sim_s, "steps": m["num_steps"], "completed": m["completed"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SIMULATE_1M = ["simulate", "--num-requests", "1000000", "--rate", "50", "--prompt-tokens", "128",
               "--output-tokens", "32"]
SIMULATE_10M = ["simulate", "--num-requests", "10000000", "--rate", "100", "--replicas", "8"]
PLAN_100 = ["plan", "--target-rate", "20", "--slo-ttft-ms", "500", "--slo-tpot-ms", "50",
            "--models", "llama-3-8b,qwen3-0.6b", "--hardware", "h100-sxm,a100-80gb,l4,h200,l40s",
            "--tp", "1,2", "--vary", "max_num_seqs=32,64,128,256,512", "--jobs", "2"]
# case -> (target wall s, target peak RSS MB)
TARGETS = {"10k": (0.83, None), "100k": (None, None), "1m-json": (25, 400), "1m-out": (None, 600),
           "10m-out": (360, 1024), "plan-100": (120, None)}


def timed(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMED, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["rc"]:
        raise SystemExit(f"{' '.join(args)} failed ({r['rc']}): {r['stderr']}")
    return r


def run_case(case: str) -> dict:
    if case in ("10k", "100k"):
        if not TRACE.is_file():
            raise SystemExit(f"trace not found: {TRACE}")
        n = 10_000 if case == "10k" else 100_000
        out = subprocess.run([sys.executable, "-c", SIM_ONLY, str(n), str(TRACE)], cwd=ROOT, check=True,
                             capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        return {"requests": n, "wall_s": r["sim_s"], "peak_rss_mb": r["peak_rss_mb"],
                "note": f"simulation only; {r['steps']} steps, {r['completed']} completed"}
    with tempfile.TemporaryDirectory(prefix="servesim-bench-") as tmp:
        if case == "1m-json":
            r = timed(SERVESIM + SIMULATE_1M + ["--json"])
            return {"requests": 1_000_000, "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"], "note": "--json"}
        if case in ("1m-out", "10m-out"):
            args, n = (SIMULATE_1M, 1_000_000) if case == "1m-out" else (SIMULATE_10M, 10_000_000)
            r = timed(SERVESIM + args + ["--out", f"{tmp}/run"])
            files = sorted(p.name for p in Path(tmp, "run").iterdir())
            size_mb = sum(p.stat().st_size for p in Path(tmp, "run").iterdir()) / 2**20
            summary = json.loads(Path(tmp, "run", "summary.json").read_text())
            m = summary["metrics"]
            return {"requests": n, "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"],
                    "note": f"{m['num_steps']} steps, {m['completed']} completed; {', '.join(files)} "
                            f"({size_mb:.0f} MB); ITL: {summary['precision']['itl_ms']}"}
        if case == "plan-100":
            r = timed(SERVESIM + PLAN_100 + ["--store", f"{tmp}/store", "--out", f"{tmp}/plan"])
            doc = json.loads(Path(tmp, "plan", "plan.json").read_text())
            feasible = sum(c["feasible"] for c in doc["candidates"])
            return {"requests": None, "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"],
                    "note": f"{len(doc['candidates'])} candidates, {feasible} feasible"}
    raise SystemExit(f"unknown case {case!r}; allowed: {', '.join(TARGETS)}")


def verdict(value: float, target: float | None) -> str:
    return "" if target is None else ("ok" if value <= target else "MISSED")


def main() -> None:
    cases = sys.argv[1:] or ["10k", "100k", "1m-json", "1m-out", "plan-100"]
    for c in cases:
        if c not in TARGETS:
            raise SystemExit(f"unknown case {c!r}; allowed: {', '.join(TARGETS)}")
    print(f"{'case':<9} {'requests':>10} {'wall s':>8} {'target':>7} {'':>6} {'peak MB':>8} {'target':>7} {'':>6}  note")
    for c in cases:
        r = run_case(c)
        tw, tm = TARGETS[c]
        req = f"{r['requests']:,}" if r["requests"] else "-"
        print(f"{c:<9} {req:>10} {r['wall_s']:>8.2f} {tw if tw else '-':>7} {verdict(r['wall_s'], tw):>6} "
              f"{r['peak_rss_mb']:>8.0f} {tm if tm else '-':>7} {verdict(r['peak_rss_mb'], tm):>6}  {r['note']}",
              flush=True)


if __name__ == "__main__":
    main()
