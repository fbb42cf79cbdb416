"""Speculative decoding speedup vs batch size, and the best gamma per batch size.

Setting (issue 5): Qwen3-8B target, Qwen3-0.6B draft sharing one H100 SXM (bf16, ideal
roofline: engine "ideal", the pre-calibration model the columns below are derived from), closed batch of `batch` requests (rate=inf, max_num_seqs=batch, vllm scheduler so
every prompt is prefilled before decoding starts), prompt 1024 tokens, output 256 tokens,
i.i.d. acceptance alpha=0.8, ragged advance. Three speedups (without / with speculation):
  decode x  seconds of decode steps per decoded token (the steps speculation changes; prefill
            steps, the draft's included, are left out; tokens emitted by prefills are not counted)
  e2e x     output throughput of the whole closed batch (prefill, re-prefill after preemption)
  tpot x    mean TPOT (per-request decode latency; when the draft's memory caps the running batch
            the speculative run decodes fewer sequences at a time, so this overstates the gain)

Columns explaining the shrinking gain, for gamma=4 at the mean decode context (1024+128) and
n = min(batch, sequences the speculative run's KV cache holds):
  E       expected tokens per sequence-iteration, (1 - alpha^(gamma+1)) / (1 - alpha)
  ver/dec verify-pass time over a plain decode step's time at the same batch (1.0 = free)
  draft   draft passes' time over a plain decode step's time (gamma*c at batch 1)
  bound   what bounds the verify pass (memory at small batch; compute once n*(gamma+1) tokens
          pass the device's critical batch)
  roof    E / (ver/dec + draft): the speedup the cost model implies per iteration
  fit     sequences of 1280 tokens the KV cache holds with / without the draft (its weights and
          KV -- 112 KiB/token for Qwen3-0.6B vs 144 KiB for Qwen3-8B -- shrink the target's cache)
  preempt preemptions with / without the draft
Best gamma: the gamma in 1..8 with the highest decode speedup (and its decode / e2e speedups);
adaptive: spec_gamma_policy=adaptive with gamma <= 8 (gamma 0 allowed), decode speedup.

    python benchmarks/spec_decode.py [--batches 1,2,4] [--gammas 1,2,...] [--alpha 0.8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware import load_device  # noqa: E402
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape  # noqa: E402
from simulator.cost.step import BOUND_NAMES
from simulator.models import load_model  # noqa: E402
from simulator.results.summary import build_summary  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402
from simulator.speculative.acceptance import IidAcceptance, expected_emitted  # noqa: E402
from simulator.speculative.cost import SpecCostModel  # noqa: E402
from simulator.speculative.decode_set import SpecBatchShape  # noqa: E402

PROMPT, OUTPUT = 1024, 256


def scenario(batch: int, alpha: float) -> Scenario:
    return Scenario(model="qwen3-8b", hardware="h100-sxm", scheduler="vllm", num_requests=batch,
                    max_num_seqs=batch, rate=float("inf"), prompt_tokens=str(PROMPT), output_tokens=str(OUTPUT),
                    acceptance_rate=alpha, seed=0, engine="ideal")


def run(s: Scenario) -> dict:
    r = simulate(s)
    summary = build_summary(r)
    m = summary["metrics"]
    steps = r.recorder.step_arrays()
    decode_s = float(steps["duration_s"][steps["num_decode"] > 0].sum())
    decoded = m["total_output_tokens"] - m["completed"] - m["num_preemptions"]  # recompute re-prefills emit one
    m["decode_s_per_token"] = decode_s / decoded
    m["num_gpu_blocks"] = r.memory.num_gpu_blocks
    return summary


def iteration_split(batch: int, gamma: int) -> tuple[float, float, str]:
    """(verify / decode, draft / decode, verify bound) from the cost models at context 1024+128."""
    dev = load_device("h100-sxm")
    target = RooflineCostModel(load_model("qwen3-8b"), dev)
    spec = SpecCostModel(target, RooflineCostModel(load_model("qwen3-0.6b"), dev))
    ctx_sum = batch * (PROMPT + OUTPUT // 2 + 1)
    decode = target.step_cost(BatchShape((), batch, ctx_sum, batch)).time_s
    verify, draft, _ = spec.parts(SpecBatchShape((), batch, ctx_sum, batch * (gamma + 1), gamma))
    return verify.time_s / decode, draft.time_s / decode, BOUND_NAMES[verify.bound]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default=",".join(str(2**i) for i in range(10)))
    ap.add_argument("--gammas", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--gamma", type=int, default=4, help="gamma of the main columns")
    ap.add_argument("--alpha", type=float, default=0.8)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    gammas = [int(g) for g in args.gammas.split(",")]
    E = expected_emitted(IidAcceptance(args.alpha), args.gamma)
    print(f"qwen3-8b + qwen3-0.6b draft on h100-sxm, prompt {PROMPT}, output {OUTPUT}, alpha {args.alpha}, "
          f"gamma {args.gamma} (E = {E:.3f} tokens/iteration)")
    print(f"{'batch':>5} {'decode x':>8} {'e2e x':>6} {'tpot x':>6} {'tok/it':>6} "
          f"{'ver/dec':>7} {'draft':>6} {'bound':>8} {'roof':>6} {'fit':>11} {'preempt':>9} "
          f"{'best g':>6} {'decode x':>8} {'e2e x':>6} {'adaptive':>8}")
    for b in batches:
        base = run(scenario(b, args.alpha))
        m0 = base["metrics"]
        spec = scenario(b, args.alpha).replace(draft_model="qwen3-0.6b")
        speed = {}
        for g in sorted(set(gammas) | {args.gamma}):
            r = run(spec.replace(num_speculative_tokens=g))
            m1 = r["metrics"]
            speed[g] = (m0["decode_s_per_token"] / m1["decode_s_per_token"],
                        m1["output_throughput"] / m0["output_throughput"], m0["mean_tpot_ms"] / m1["mean_tpot_ms"], r)
        ada = run(spec.replace(num_speculative_tokens=max(gammas), spec_gamma_policy="adaptive"))["metrics"]
        dec_x, e2e_x, tpot_x, main_run = speed[args.gamma]
        m1, sp = main_run["metrics"], main_run["speculative"]
        fit = [x["num_gpu_blocks"] * 16 // (PROMPT + OUTPUT) for x in (m1, m0)]
        ver, draft, bound = iteration_split(min(b, fit[0]), args.gamma)
        best = max(gammas, key=lambda g: speed[g][0])
        print(f"{b:>5} {dec_x:>8.3f} {e2e_x:>6.3f} {tpot_x:>6.3f} {sp['mean_tokens_per_iteration']:>6.3f} "
              f"{ver:>7.3f} {draft:>6.3f} {bound:>8} {E / (ver + draft):>6.3f} "
              f"{fit[0]:>5}/{fit[1]:<5} "
              f"{m1['num_preemptions']:>4}/{m0['num_preemptions']:<4} {best:>6} {speed[best][0]:>8.3f} "
              f"{speed[best][1]:>6.3f} {m0['decode_s_per_token'] / ada['decode_s_per_token']:>8.3f}")


if __name__ == "__main__":
    main()
