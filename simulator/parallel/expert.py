"""Expert parallelism with data-parallel attention for MoE models (vLLM `enable_expert_parallel`
with `data_parallel_size`; DeepSeek-V3's deployment, TensorRT-LLM `enable_attention_dp` + `--ep`).

A replica is `dp` attention ranks of `tp` GPUs each (every rank: all non-expert weights, its own
scheduler, KV cache and batch); the routed experts are sharded whole over ep = dp x tp GPUs
(E/ep experts of every MoE layer per GPU). Per MoE layer a token's hidden state goes to the GPUs
of its top-k experts (dispatch) and the expert outputs come back (combine): two all-to-alls.

Owns the all-to-all volume, its time, the routed-expert work on one GPU and
ExpertParallelCostModel, the CostModel wrapper that adds both to a rank's step (the inner model
prices everything but the routed experts: cost/ops.py token_ops_without_experts). Formulas:
  all-to-all bytes one GPU sends per MoE layer and direction (uniform routing: a token's copy
  lands on any of the ep GPUs alike, (ep-1)/ep of them on another GPU; GShard, Lepikhin et al.
  2020, sec. 2.2; DeepSpeed-MoE, Rajbhandari et al. ICML 2022, sec. 5):
      B = (T / tp) x top_k x hidden x bytes_per_element x (ep - 1) / ep
      (T: the rank's tokens, split over its tp GPUs before dispatch; no per-GPU deduplication of a
      token's copies, as vLLM's naive and pplx dispatch send one copy per (token, expert))
  time per all-to-all: latency + B / bandwidth, where bandwidth and latency are the device
      calibration's measured all-reduce bus bandwidth and latency for ep GPUs where it has them
      (NCCL's bus bandwidth is the per-GPU link rate for all-to-all as for all-reduce: NCCL
      tests PERFORMANCE.md), else the link's (hardware/data/links)
  routed copies computed on one GPU: R = T x dp x top_k / ep (DP ranks assumed equally loaded)
  experts touched there: E_l (1 - (1 - 1/E_l)^R), E_l = E / ep
  expert time per layer: the device calibration's "moe_expert" kernel, one call per touched
      expert at R / touched tokens (as cost/profiled.py prices experts without EP); without a
      calibration max(2 R P_e / F, (touched P_e w + R a beta) / BW) at peaks x eta (moe/cost.py's
      GPU expert formula)
DP ranks step in lockstep in a real engine (a rank with no work runs dummy batches); here each
rank's step is priced as if every rank carried the same load. Not here: the memory plan (engine/
memory_plan.py takes ep), expert offloading (moe/).
"""
from __future__ import annotations

from profiles.table import make_shape
from simulator.cost import SOURCE_CODES, SOURCE_NAMES, BatchShape, StepCost


def expert_parallel_size(s) -> int:
    """EP ranks: every GPU of the dp attention ranks (vLLM: EP size = TP x DP)."""
    return s.tp * s.data_parallel_size


def all_to_all_bytes(tokens: float, top_k: int, hidden: int, bytes_per_element: float, ep: int) -> float:
    """Bytes one GPU sends in one dispatch (the combine sends as many back) of one MoE layer, for
    `tokens` tokens on that GPU (module docstring)."""
    if ep < 1:
        raise ValueError(f"ep must be >= 1, got {ep}")
    return tokens * top_k * hidden * bytes_per_element * (ep - 1) / ep


class AllToAll:
    """Seconds of one all-to-all in which each GPU sends `nbytes`: latency + nbytes / bandwidth."""

    def __init__(self, *, latency_s: float, bytes_per_s: float, source: str, what: str):
        self.latency_s, self.bytes_per_s, self.source, self.what = latency_s, bytes_per_s, source, what

    def time_s(self, nbytes: float) -> float:
        return self.latency_s + nbytes / self.bytes_per_s if nbytes > 0 else 0.0

    def describe(self) -> dict:
        return {"latency_us": self.latency_s * 1e6, "bandwidth_gb_per_s": self.bytes_per_s / 1e9,
                "source": self.source, "from": self.what}


def all_to_all_pricer(link, calibration, ep: int) -> AllToAll:
    """From the calibration's measured collectives for `ep` GPUs (nearest measured count:
    "transfer"), else the link (hardware.LinkSpec, "roofline"; also when the scenario names its
    gpu_link: setup.py passes no calibration then)."""
    colls = getattr(calibration, "collectives", None) or {}
    if colls:
        fit = colls.get(ep)
        source = calibration.kind
        if fit is None:
            near = min(colls, key=lambda n: (abs(n - ep), n))
            fit, source = colls[near], "transfer"
        return AllToAll(latency_s=fit.latency_s, bytes_per_s=fit.bus_bytes_per_s, source=source,
                        what=f"measured all-reduce bus bandwidth, {fit.num_gpus} GPUs ({fit.source})")
    return AllToAll(latency_s=link.latency_s, bytes_per_s=link.bytes_per_s, source="roofline",
                    what=f"link {link.name}")


class ExpertParallelCostModel:
    """A DP attention rank's step: `inner` (all but the routed experts) + this GPU's experts +
    dispatch and combine (module docstring). rates: (FLOP/s, bytes/s, source) for expert GEMMs."""

    def __init__(self, inner, model, *, tp: int, dp: int, beta: float, rates: tuple[float, float, str],
                 all_to_all: AllToAll, kernels=None, dtype: str = "bf16"):
        """kernels: a device calibration (profiles DeviceKernels) whose "moe_expert" kernel prices
        the experts (gated models); None: the GEMM roofline at `rates`."""
        self.inner, self.model, self.tp, self.dp = inner, model, tp, dp
        self.kernels = kernels if model.gated_mlp else None
        self.dtype = dtype
        self.ep = tp * dp
        if model.num_experts % self.ep:
            raise ValueError(f"ep={self.ep} does not divide num_experts={model.num_experts}")
        self.local_experts = model.num_experts // self.ep
        self.beta = beta
        self.flops_per_s, self.bytes_per_s, self.rate_source = rates
        self.a2a = all_to_all
        h, width = model.hidden_size, model.moe_intermediate_size
        up_out = 2 * width if model.gated_mlp else width
        self.params_e = h * up_out + width * h  # one whole expert (not tp-sharded under EP)
        self.act_e = 2 * h + up_out + width
        self.wbeta = model.param_bytes_at("experts", beta)
        self._cache: dict[int, tuple] = {}
        self.stats = {"a2a_bytes": 0.0, "a2a_s": 0.0, "expert_s": 0.0, "steps": 0}

    def moe_time(self, tokens: int) -> tuple[float, float, float, float, float]:
        """(expert seconds, all-to-all seconds, flops, bytes, all-to-all bytes sent) of all MoE
        layers for a step of `tokens` tokens on this rank."""
        hit = self._cache.get(tokens)
        if hit is None:
            m, layers = self.model, self.model.num_moe_layers
            routed = tokens * self.dp * m.num_experts_per_tok / self.ep
            touched = self.local_experts * (1.0 - (1.0 - 1.0 / self.local_experts) ** routed)  # formulas.md MoE
            flops = 2.0 * routed * self.params_e
            nbytes = touched * self.params_e * self.wbeta + routed * self.act_e * self.beta
            expert_s = self._experts_s(routed, touched, flops, nbytes) * layers
            sent = all_to_all_bytes(tokens / self.tp, m.num_experts_per_tok, m.hidden_size, self.beta, self.ep)
            a2a_s = 2 * layers * self.a2a.time_s(sent) if self.ep > 1 else 0.0
            hit = self._cache[tokens] = (expert_s, a2a_s, flops * layers, nbytes * layers, 2 * layers * sent)
        return hit

    def _experts_s(self, routed: float, touched: float, flops: float, nbytes: float) -> float:
        """One MoE layer's routed experts on this GPU: the calibration's expert kernel, one call per
        touched expert at the mean tokens per touched expert (as cost/profiled.py prices a gated
        model's experts without EP), else the GEMM roofline max(FLOPs/F, bytes/BW)."""
        if self.kernels is not None and touched > 0:
            per_expert = max(round(routed / touched), 1)
            got = self.kernels.predict("moe_expert", make_shape(num_tokens=per_expert, in_dim=self.model.hidden_size,
                                                                 out_dim=self.model.moe_intermediate_size), self.dtype)
            if got is not None:
                return got[0] * touched
        return max(flops / self.flops_per_s, nbytes / self.bytes_per_s)

    def step_cost(self, shape: BatchShape) -> StepCost:
        c = self.inner.step_cost(shape)
        if not shape.num_tokens or not self.model.num_moe_layers:
            return c
        expert_s, a2a_s, flops, nbytes, sent = self.moe_time(shape.num_tokens)
        st = self.stats
        st["a2a_bytes"] += sent
        st["a2a_s"] += a2a_s
        st["expert_s"] += expert_s
        st["steps"] += 1
        compute_bound = flops / self.flops_per_s >= nbytes / self.bytes_per_s
        compute = c.compute_s + (expert_s if compute_bound else 0.0)
        memory = c.memory_s + (0.0 if compute_bound else expert_s)
        comm = c.comm_s + a2a_s
        split = (compute, memory, comm + c.overhead_s + c.evict_s)
        sources = [c.source, self.rate_source] + ([self.a2a.source] if self.ep > 1 else [])
        source = SOURCE_NAMES[min(SOURCE_CODES[x] for x in sources)]
        return c._replace(time_s=c.time_s + expert_s + a2a_s, compute_s=compute, memory_s=memory, comm_s=comm,
                          flops=c.flops + flops, bytes=c.bytes + nbytes, bound=max(range(3), key=split.__getitem__),
                          source=source)

    def describe(self) -> dict:
        d = dict(self.inner.describe())
        d["expert_parallel"] = {"ep": self.ep, "dp": self.dp, "tp": self.tp, "experts_per_gpu": self.local_experts,
                                "expert_rates": self.rate_source, "all_to_all": self.a2a.describe(),
                                "formula": "bytes per GPU per MoE layer and direction = T/tp x top_k x hidden x "
                                           "bytes x (ep-1)/ep (GShard sec. 2.2)"}
        return d

    def __getattr__(self, name):
        return getattr(self.inner, name)
