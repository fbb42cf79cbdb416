"""The summary's "parallelism" section, and the GPU count behind its price and energy sections
when a replica is more than tp GPUs (pipeline stages, data-parallel attention ranks) or the run
is disaggregated (prefill and decode pools of their own tp).

Owns the GPU count: replicas x tp x pp x data_parallel_size, or num_prefill_instances x
prefill_tp + num_decode_instances x decode_tp. accounting/ prices replicas x tp GPUs; here its
"price" section is scaled to the true count (every figure is linear in it) and, under pp, its
"energy" section by pp (every stage is held for a pipelined step's duration, and a step's power
is per GPU). DP attention ranks are engine instances of their own (their steps already count).
A disaggregated run's energy counts each step at the scenario's tp (stated in the section).
"""
from __future__ import annotations

PRICE_LINEAR = ("usd_per_hour", "usd_total", "usd_per_million_output_tokens")
ENERGY_LINEAR = ("busy_j", "idle_j", "total_j", "kwh", "mean_power_w", "j_per_output_token")


def num_gpus(s) -> int:
    if s.num_prefill_instances is not None:
        return s.num_prefill_instances * (s.prefill_tp or s.tp) + s.num_decode_instances * (s.decode_tp or s.tp)
    return s.replicas * s.tp * s.pp * s.data_parallel_size


def _scaled(section: dict, keys: tuple[str, ...], factor: float, gpus: int) -> dict:
    out = dict(section)
    for k in keys:
        if isinstance(out.get(k), (int, float)):
            out[k] = out[k] * factor
    out["num_gpus"] = gpus
    return out


def parallel_sections(result, summary: dict) -> dict:
    """{"parallelism": ..., "price": ..., "energy": ...} for build_summary to merge; {} for a plain
    tp run (its sections stay exactly as accounting made them)."""
    s = result.scenario
    if s.pp == 1 and s.data_parallel_size == 1 and not s.enable_expert_parallel and s.num_prefill_instances is None:
        return {}
    gpus = num_gpus(s)
    out = {"parallelism": {"num_gpus": gpus, "tp": s.tp, "pp": s.pp, "data_parallel_size": s.data_parallel_size,
                           "enable_expert_parallel": s.enable_expert_parallel,
                           **{k: v for k, v in result.cost_model.items()
                              if k in ("pipeline", "expert_parallel", "disaggregation")}}}
    out["parallelism"]["layout"] = _layout(s)
    out["parallelism"]["text"] = parallel_text(out["parallelism"])
    price = summary.get("price")
    if price and price.get("num_gpus"):
        out["price"] = _scaled(price, PRICE_LINEAR, gpus / price["num_gpus"], gpus)
    energy = summary.get("energy")
    if energy and s.num_prefill_instances is None:
        out["energy"] = _scaled(energy, ENERGY_LINEAR, s.pp, gpus)
    elif energy:
        out["energy"] = dict(energy, num_gpus=gpus)
        out["parallelism"]["energy_note"] = "energy counts every step at the scenario's tp GPUs (pools differ)"
    return out


def parallel_text(par: dict) -> str:
    """One line for the text summary: the GPUs and what the parallelism cost."""
    parts = [f"parallelism: {_plural(par['num_gpus'], 'GPU')}"]
    if pipe := par.get("pipeline"):
        frac = pipe.get("bubble_fraction")
        parts.append(f"pp {pipe['pp']} x {pipe['microbatches']} micro-batches"
                     + (f", pipeline bubbles {frac:.1%} of stage time" if frac is not None else ""))
    if ep := par.get("expert_parallel"):
        parts.append(f"EP {ep['ep']} (DP {ep['dp']} x TP {ep['tp']}), {_plural(ep['experts_per_gpu'], 'expert')} per GPU, "
                     f"all-to-all from {ep['all_to_all']['from']}")
    if dis := par.get("disaggregation"):
        kv = dis["kv_transfer"]
        mean = kv.get("mean_transfer_ms")
        parts.append(f"P/D {dis['num_prefill_instances']}P x tp{dis['prefill_tp']} : {dis['num_decode_instances']}D x "
                     f"tp{dis['decode_tp']}, KV over {kv['link']['name']} ({dis['kv_transfer_overlap']})"
                     + (f", mean transfer {mean:.2f} ms" if mean is not None else ""))
    return "; ".join(parts)



def _plural(n, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _layout(s) -> str:
    """How the GPUs are arranged, for the summary's header line."""
    if s.num_prefill_instances is not None:
        return (f"P/D {s.num_prefill_instances}P x tp{s.prefill_tp or s.tp} + "
                f"{s.num_decode_instances}D x tp{s.decode_tp or s.tp}")
    parts = [f"{s.replicas} replica{'' if s.replicas == 1 else 's'}", f"tp{s.tp}"]
    if s.pp > 1:
        parts.append(f"pp{s.pp}")
    if s.data_parallel_size > 1:
        parts.append(f"dp{s.data_parallel_size}")
    return " x ".join(parts)
