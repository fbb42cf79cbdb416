"""Real-engine validation by static batching: measured vs simulated runs of one workload.

Owns what `servesim validate` compares: the kernel grid a validation workload needs
(validation_grid), the metrics of a real static-batch run (measured_metrics; both sides are
summarised by results.metrics.summarise_requests), the same workload simulated from a profile
(predicted_metrics), one batch size's medians and error ranges over rounds (compare_rounds) and
the report text. Serving and profiling themselves are profiles/'s (torch is imported there).
"""
from __future__ import annotations

import numpy as np

from simulator.errors import ServesimError
from simulator.results import build_summary, summarise_requests
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.validation.profiling import model_config_file

METRICS = ("mean_ttft_ms", "mean_tpot_ms", "output_throughput", "mean_prefill_step_ms", "mean_decode_step_ms")


def validation_grid(dims, sizes: list[int], prompt: int, output: int) -> list:
    """The kernel shapes this workload's steps run, plus those of the engine calibration steps:
    the prediction then interpolates only between points measured for it, and what validation
    measures is how well kernels plus the engine overhead (measured elsewhere) make whole steps."""
    from profiles.grids import shapes_grid, with_engine_steps

    workload = shapes_grid(dims, tokens={1} | set(sizes) | {b * prompt for b in sizes}, prefill=({prompt}, (0,)),
                           decode=(sizes, {prompt, prompt + output}))
    return with_engine_steps(workload, dims)


def measured_metrics(run, *, prompt: int, output: int) -> dict:
    """vLLM-style metrics of one real static-batch run (profiles.hf_engine.serve_static), summarised
    by the same function as a simulated run, plus its mean prefill and decode step times."""
    n = len(run.first_token_s)
    gaps = np.asarray(run.decode_step_s, dtype=float)
    counts = np.repeat(np.asarray(run.batch_sizes, dtype=np.int64), output - 1)  # each gap: every sequence's token
    m = summarise_requests(arrival_s=np.zeros(n), first_token_s=np.asarray(run.first_token_s),
                           finish_s=np.asarray(run.finish_s), prompt_tokens=np.full(n, prompt),
                           output_tokens=np.full(n, output), ok=np.ones(n, bool), itl_s=gaps,
                           itl_count=counts)
    m["mean_prefill_step_ms"] = float(np.mean(run.prefill_step_s) * 1e3)
    m["mean_decode_step_ms"] = float(np.mean(run.decode_step_s) * 1e3)
    return m


def predicted_metrics(model: str, profile: str, *, batch: int, num_requests: int, prompt: int, output: int,
               device_name: str, dtype: str) -> tuple[dict, dict]:
    """(metrics, cost-model provenance) of the same workload simulated with static batching from
    `profile`."""
    s = Scenario(model=model, hardware=device_name, dtype=dtype, scheduler="static", max_num_seqs=batch,
                 num_requests=num_requests, rate=float("inf"), prompt_tokens=str(prompt),
                 output_tokens=str(output), max_model_len=prompt + output, profile=profile)
    result = simulate(s)
    summary = build_summary(result)
    steps = result.recorder.step_arrays()
    prefill = steps["num_prefill_tokens"] > 0
    m = summary["metrics"]
    m["mean_prefill_step_ms"] = float(steps["duration_s"][prefill].mean() * 1e3)
    m["mean_decode_step_ms"] = float(steps["duration_s"][~prefill].mean() * 1e3)
    return m, summary["provenance"]["cost_model"]


def compare_rounds(b: int, rounds: list[dict], profiles: list[str], *, model: str, batches: int, prompt: int,
                   output: int, device_name: str, dtype: str) -> dict:
    """One batch size: each round's measurement against the prediction from that round's profile
    pass; medians over rounds, and the range of the per-round errors."""
    n = b * batches
    preds, cost = [], {}
    for profile in profiles:
        pred, cost = predicted_metrics(str(model_config_file(model)), profile, batch=b, num_requests=n,
                                      prompt=prompt, output=output, device_name=device_name, dtype=dtype)
        preds.append(pred)
    errors = {k: [(p[k] / m[k] - 1) * 100 for p, m in zip(preds, rounds)] for k in METRICS}
    return {"batch_size": b, "num_requests": n,
            "measured": {k: float(np.median([m[k] for m in rounds])) for k in METRICS},
            "predicted": {k: float(np.median([p[k] for p in preds])) for k in METRICS},
            "error_pct": {k: float(np.median(v)) for k, v in errors.items()},
            "error_range_pct": {k: [float(min(v)), float(max(v))] for k, v in errors.items()},
            "measured_spread_pct": {k: float((max(m[k] for m in rounds) - min(m[k] for m in rounds)) / 2
                                             / np.median([m[k] for m in rounds]) * 100) for k in METRICS},
            "step_sources": cost.get("op_sources")}


def cuda_device_name(torch) -> str:
    """The catalog name of the local GPU (torch.cuda device 0)."""
    name = torch.cuda.get_device_name(0).lower()
    for key, catalog in (("h100", "h100-sxm"), ("h200", "h200"), ("a100", "a100-80gb"), ("l40s", "l40s"),
                         ("l4", "l4"), ("b200", "b200")):
        if key in name:
            return catalog
    from hardware.catalog import DATA_DIR

    raise ServesimError(f"GPU {name!r} has no catalog entry; add one under {DATA_DIR} (see `servesim models`)")


def format_report(r: dict) -> str:
    lines = [(f"validate {r['model']} on {r['device']} ({r['dtype']}, {r['threads']} thread(s)), "
              f"static batching, prompt {r['prompt_tokens']} / output {r['output_tokens']} tokens, "
              f"{r['runs']} rounds"),
             f"profile: {r['profile']}",
             ("medians over rounds; spread: half the measured range, % of the median; error: predicted / "
              "measured - 1 per round (its own profile pass unless --profile), median [min, max]"),
             (f"{'batch':>5} {'metric':<22}{'measured':>11}{'spread %':>9}{'predicted':>11}{'error %':>9}"
              f"{'error range %':>18}")]
    for row in r["results"]:
        for k in METRICS:
            lo, hi = row["error_range_pct"][k]
            lines.append(f"{row['batch_size']:>5} {k:<22}{row['measured'][k]:>11.2f}"
                         f"{row['measured_spread_pct'][k]:>9.1f}{row['predicted'][k]:>11.2f}"
                         f"{row['error_pct'][k]:>+9.1f}{f'[{lo:+.1f}, {hi:+.1f}]':>18}")
    return "\n".join(lines)
