"""Run-report sections for what only some runs have: the load verdict (offered vs sustainable
rate, simulator/results/overload.py), speculative decoding, MoE expert offloading, test-time
scaling, prefix caching (with the host KV tier), parallelism beyond TP and P/D disaggregation. Each is "" when its summary section is absent, so a plain run shows none of them.

Owns their labels and units; values are the summary's own (exact in data-value).
"""
from __future__ import annotations

import html

from reports.page import key_values, note, section

WARN_STYLE = "background:#fef3f2;border:1px solid #f04438;border-radius:6px;padding:8px 12px;color:#912018"
SPECULATIVE = (("num_speculative_tokens", "draft tokens per iteration, at most (gamma)"),
               ("gamma_policy", "gamma policy"), ("advance", "advance"),
               ("mean_gamma", "mean gamma (drafted tokens per sequence per iteration)"),
               ("draft_acceptance_rate", "draft acceptance rate, measured (accepted / drafted tokens)"),
               ("kept_draft_fraction", "drafts kept after the batch-minimum advance"),
               ("system_efficiency", "system efficiency (emitted / (gamma + 1) per sequence)"),
               ("mean_tokens_per_iteration", "tokens per iteration, measured"),
               ("expected_tokens_per_iteration", "tokens per iteration, expected (acceptance model)"),
               ("frac_time_draft", "share of time in the draft"), ("frac_time_verify", "share of time in verify"),
               ("speedup_output_throughput", "speedup of output throughput vs no draft"),
               ("speedup_mean_tpot", "speedup of mean TPOT vs no draft"))
MOE = (("moe_expert_hit_rate", "expert hit rate (resident on GPU)"),
       ("moe_experts_fetched", "experts fetched over the host link"), ("moe_experts_on_cpu", "experts run on the CPU"),
       ("moe_host_link_bytes", "host-link traffic (bytes)"), ("moe_host_link_time_s", "host-link busy time (s)"),
       ("moe_gpu_expert_time_s", "expert time on GPU (s)"), ("moe_cpu_expert_time_s", "expert time on CPU (s)"))
PREFIX_CACHE = (("hit_rate", "prefix hit rate (tokens)"), ("block_hit_rate", "prefix hit rate (blocks)"),
                ("gpu_hit_rate", "hit rate from GPU blocks (tokens)"), ("host_hit_rate", "hit rate from host memory (tokens)"),
                ("prefill_tokens_saved", "prefill tokens saved"), ("query_tokens", "prompt tokens looked up"),
                ("evicted_blocks", "cached blocks evicted"), ("host_spilled_blocks", "blocks spilled to host memory"),
                ("host_fetch_s", "host-to-GPU fetch time (s)"))
TTS = (("samples_per_prompt", "samples per prompt (Best-of-N)"), ("output_budget_tokens", "output budget (tokens)"),
       ("questions", "questions"), ("questions_completed", "questions completed"),
       ("mean_time_to_last_sample_ms", "mean time to the last sample (ms)"),
       ("p99_time_to_last_sample_ms", "p99 time to the last sample (ms)"),
       ("output_tokens_per_question", "output tokens per question"), ("joules_per_question", "energy per question (J)"),
       ("usd_per_question", "price per question (USD)"))


def load_section(summary: dict) -> str:
    o = summary.get("overload")
    if not o:
        return ""
    if not o.get("applicable"):
        return section("Load", note(f"Offered vs sustainable rate not judged: {o.get('reason', 'n/a')}."), "load")
    bound = "at least " if o.get("sustainable_rate_is_lower_bound") else "about "
    pairs = [("offered request rate (req/s)", o.get("offered_request_rate")),
             ("served request rate (req/s, completed / duration)", o.get("served_request_rate")),
             (f"sustainable request rate (req/s, {bound.strip()})", o.get("sustainable_request_rate")),
             ("backlog growth (requests/s)", o.get("backlog_growth_rate")),
             ("median TTFT, first third of arrivals (ms)", o.get("first_third_median_ttft_ms")),
             ("median TTFT, last third of arrivals (ms)", o.get("last_third_median_ttft_ms"))]
    verdict = (f'<p class="overload-warning" style="{WARN_STYLE}"><b>Overloaded.</b> Requests arrive at '
               f"{o['offered_request_rate']:.2f} req/s but this configuration sustains about "
               f"{o['sustainable_request_rate']:.2f} req/s: the queue grew for the whole run, so the latencies "
               "on this page describe a queue that never drains and grow with the number of requests sent. "
               f"Offer less than {o['sustainable_request_rate']:.2f} req/s or add replicas.</p>"
               if o.get("overloaded") else note("Stable: the engine kept up with the offered load (sustainable "
                                                f"rate {bound}{o['sustainable_request_rate']:.2f} req/s)."))
    return section("Load: offered vs sustainable rate", verdict + key_values(pairs, cls="load")
                   + note(f"How: {o.get('method', '')}."), "load")


def _pairs(data: dict, rows) -> list[tuple[str, object]]:
    return [(label, data[k]) for k, label in rows if k in data]


def speculative_section(summary: dict) -> str:
    spec = summary.get("speculative")
    if not spec:
        return ""
    acc = spec.get("acceptance", {})
    configured = {"iid": f"i.i.d. per-token acceptance alpha = {acc.get('acceptance_rate')} (configured)",
                  "per_position": f"per-position acceptance rates {acc.get('acceptance_position_rates')} (configured)",
                  "histogram": f"accepted-length histogram {acc.get('file', '')}"}.get(acc.get("kind"), str(acc))
    draft = spec.get("draft", {})
    where = draft.get("hardware")
    where = "on the target's GPUs" if where == "shared with target" else f"on {where}"
    body = note(f"Draft {draft.get('model')} {where}; acceptance model: {configured}. The measured "
                "draft acceptance rate counts drafted tokens the target accepted (drafts after a rejection are "
                "discarded), so it differs from the configured per-token rate.")
    pairs = _pairs(spec, SPECULATIVE)
    b1 = spec.get("batch1")
    if b1:
        pairs += [("draft / target decode step cost c, batch 1 (Leviathan et al. sec. 3.4)", b1.get("cost_coefficient_c")),
                  (f"best expected speedup at batch 1 (gamma {b1.get('best_gamma')})", b1.get("best_expected_speedup"))]
    return section("Speculative decoding", body + key_values(pairs, cls="speculative"), "speculative")


def moe_section(summary: dict) -> str:
    moe = summary.get("moe") or {k: v for k, v in summary.get("metrics", {}).items() if k.startswith("moe_")}
    if not moe:
        return ""
    sc = summary.get("scenario", {})
    how = html.escape(f"placement {sc.get('expert_placement')}, execution {sc.get('expert_exec')}")
    return section("MoE experts", note(how) + key_values(_pairs(moe, MOE), cls="moe"), "moe")


def tts_section(summary: dict) -> str:
    tts = summary.get("tts")
    if not tts:
        return ""
    return section("Test-time scaling (per question)", key_values(_pairs(tts, TTS), cls="tts"), "tts")


def prefix_cache_section(summary: dict) -> str:
    pc = summary.get("prefix_cache")
    if not pc:
        return ""
    policy = summary.get("scenario", {}).get("prefix_caching_policy", "vllm")
    how = note(html.escape(f"Automatic prefix caching, {policy} eviction order, block size {pc.get('block_size')} "
                           "tokens; a request's prefill skips its cached prefix (its last token is always computed)."))
    return section("Prefix cache", how + key_values(_pairs(pc, PREFIX_CACHE), cls="prefix-cache"), "prefix-cache")


def parallelism_section(summary: dict) -> str:
    par = summary.get("parallelism")
    if not par:
        return ""
    pairs = [("GPUs", par.get("num_gpus")), ("layout", par.get("layout"))]
    if pipe := par.get("pipeline"):
        pairs += [("pipeline stages x micro-batches", f"{pipe.get('pp')} x {pipe.get('microbatches')}"),
                  ("pipeline bubbles (share of stage time)", pipe.get("bubble_fraction"))]
    if ep := par.get("expert_parallel"):
        pairs += [("expert parallelism (DP x TP)", f"{ep.get('ep')} ({ep.get('dp')} x {ep.get('tp')})"),
                  ("experts per GPU", ep.get("experts_per_gpu")),
                  ("all-to-all priced from", (ep.get("all_to_all") or {}).get("from"))]
    if dis := par.get("disaggregation"):
        kv = dis.get("kv_transfer", {})
        pairs += [("prefill : decode instances", f"{dis.get('num_prefill_instances')} x tp{dis.get('prefill_tp')} : "
                                                 f"{dis.get('num_decode_instances')} x tp{dis.get('decode_tp')}"),
                  ("KV transfer link", (kv.get("link") or {}).get("name")),
                  ("KV transfer overlap", dis.get("kv_transfer_overlap")),
                  ("mean KV transfer (ms)", kv.get("mean_transfer_ms")),
                  ("TTFT includes", dis.get("ttft_includes"))]
    return section("Parallelism and disaggregation", note(html.escape(par.get("text", ""))) +
                   key_values(pairs, cls="parallelism"), "parallelism")
