"""H2O in the H2O paper's throughput setting: OPT-6.7B on one A100-80GB, prompt 2048, output
2048 (max_model_len 4096, as the paper runs it), static batching (HF generate style), dense KV
cache vs H2O with a 20% budget (of prompt+output: 820 tokens), at the largest batch each fits
and at equal batch. Prints decode throughput, latency and peak memory for both and the ratios.

The cost model is the default: the a100-80gb device calibration (fitted on Vidur's A100 tables,
attention carried over from published kernels) with the vLLM engine's CPU cost per step; pass
--engine ideal for the pre-calibration model. Ratios are what to read. Accuracy is not modelled.

    python benchmarks/h2o_opt.py [--budget 0.2] [--policy h2o] [--compaction inplace] [--engine NAME]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.results.summary import build_summary  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402

BASE = dict(model="opt-6.7b", hardware="a100-80gb", scheduler="static", max_model_len=4096,
            prompt_tokens="2048", output_tokens="2048", rate=float("inf"), max_num_seqs=4096)


def largest_batch(**kw) -> int:
    """The first static batch formed from a long queue is the largest that fits."""
    res = simulate(Scenario(**{**BASE, **kw, "num_requests": 1000}))
    return int(res.recorder.step_arrays()["num_running"][0])


def measure(batch: int, **kw) -> dict:
    res = simulate(Scenario(**{**BASE, **kw, "num_requests": batch}))
    st = res.recorder.step_arrays()
    m = build_summary(res)["metrics"]
    decode = st["num_decode"] > 0
    return {
        "batch": batch,
        "decode_tok_s": float(st["num_decode"][decode].sum() / st["duration_s"][decode].sum()),
        "decode_step_ms": float(st["duration_s"][decode].mean() * 1e3),
        "prefill_s": float(st["duration_s"][~decode].sum()),
        "latency_s": m["mean_e2el_ms"] / 1e3,
        "peak_gb": m["peak_memory_bytes"] / 1e9,
        "evict": m.get("frac_time_kv_eviction", 0.0),
        "mem_bound": m["frac_time_memory_bound"],
        "cost_model": res.cost_model["source"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.2)
    ap.add_argument("--policy", default="h2o")
    ap.add_argument("--compaction", default="inplace")
    ap.add_argument("--engine", default=None, help="serving engine (default vllm; ideal = pre-calibration model)")
    a = ap.parse_args()
    BASE["engine"] = a.engine
    kv = dict(kv_policy=a.policy, kv_budget=a.budget, kv_compaction=a.compaction)
    b_dense, b_kv = largest_batch(), largest_batch(**kv)
    rows = [("dense", measure(b_dense)), (f"{a.policy} {a.budget:g}", measure(b_kv, **kv)),
            (f"{a.policy} {a.budget:g} @eq", measure(b_dense, **kv))]
    print(f"OPT-6.7B, A100-80GB, bf16, static batch, prompt 2048 + output 2048 (cost model: {rows[0][1]['cost_model']})")
    print(f"{'cache':<16}{'batch':>6}{'decode tok/s':>14}{'step ms':>9}{'prefill s':>10}{'latency s':>10}"
          f"{'peak GB':>9}{'evict':>7}{'mem-bound':>10}")
    for name, r in rows:
        print(f"{name:<16}{r['batch']:>6}{r['decode_tok_s']:>14.1f}{r['decode_step_ms']:>9.2f}{r['prefill_s']:>10.2f}"
              f"{r['latency_s']:>10.2f}{r['peak_gb']:>9.2f}{r['evict']:>7.1%}{r['mem_bound']:>10.1%}")
    d, h, e = (r for _, r in rows)
    print(f"throughput ratio {a.policy}/dense at each one's largest batch: {h['decode_tok_s'] / d['decode_tok_s']:.2f}x")
    print(f"throughput ratio at equal batch {b_dense}: {e['decode_tok_s'] / d['decode_tok_s']:.2f}x; "
          f"latency ratio dense/{a.policy}: {d['latency_s'] / e['latency_s']:.2f}x")


if __name__ == "__main__":
    main()
