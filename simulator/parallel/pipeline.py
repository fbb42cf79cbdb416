"""Pipeline parallelism (vLLM `pipeline_parallel_size`): a replica's layers split over `pp`
stages of `tp` GPUs each, a step's sequences split into micro-batches that flow through them.

Owns the micro-batch split of a BatchShape, the GPipe schedule of one step and
PipelineCostModel, the CostModel wrapper that prices a step under it. Formulas:
  stage time of micro-batch j:   t_j = T(micro-batch j) x ceil(L/pp)/L   (T: the inner model's
                                 time for all L layers on one tp group; the largest stage bounds)
  activations to the next stage: a_j = link.transfer_s(tokens_j x 2 x hidden x bytes)
                                 (vLLM sends IntermediateTensors "hidden_states" and "residual",
                                 vllm/model_executor/models/llama.py make_empty_intermediate_tensors)
  completion of j on stage s:    C[s][j] = max(C[s-1][j] + a_j, C[s][j-1]) + t_j
  step time:                     C[pp-1][m-1]  = (m + pp - 1) t  for m equal micro-batches
  bubble fraction:               (pp - 1) / (m + pp - 1)   (GPipe, Huang et al., NeurIPS 2019, sec. 2.2)
Every step fills and drains the pipeline (a GPipe bound: vLLM's virtual engines can overlap the
drain of one step with the next). A micro-batch is a group of whole sequences, so a step with one
sequence has one micro-batch and gains no speed from pp (only memory). Not here: memory per GPU
(engine/memory_plan.py with pp), the scenario fields (scenario.py: pp, pp_microbatches).
"""
from __future__ import annotations

import math

from simulator.cost import SOURCE_CODES, SOURCE_NAMES, BatchShape, StepCost


def bubble_fraction(pp: int, microbatches: int) -> float:
    """Idle share of each stage over one GPipe step of `microbatches` equal micro-batches."""
    if pp < 1 or microbatches < 1:
        raise ValueError(f"pp and microbatches must be >= 1, got {pp}, {microbatches}")
    return (pp - 1) / (microbatches + pp - 1)


def gpipe_step_s(stage_s: list[float], pp: int, send_s: list[float] | None = None) -> float:
    """Seconds from the first micro-batch entering stage 0 to the last leaving stage pp-1:
    stage_s[j] per stage for micro-batch j, send_s[j] between consecutive stages (module docstring)."""
    send_s = send_s or [0.0] * len(stage_s)
    done = [0.0] * len(stage_s)  # completion on the previous stage
    for s in range(pp):
        prev_j = 0.0
        for j, t in enumerate(stage_s):
            arrive = done[j] + (send_s[j] if s else 0.0)
            prev_j = max(arrive, prev_j) + t
            done[j] = prev_j
    return done[-1] if stage_s else 0.0


def _split_int(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (integers that sum to `total`)."""
    w = sum(weights)
    if w == 0:
        return [total] + [0] * (len(weights) - 1)
    out, cum, prev = [], 0, 0
    for x in weights:
        cum += x
        nxt = total * cum // w
        out.append(nxt - prev)
        prev = nxt
    return out


def split_shape(shape: BatchShape, microbatches: int) -> list[BatchShape]:
    """The step's sequences dealt round-robin into at most `microbatches` groups (prefill chunks
    first, then decodes); decode context, KV reads and logits split in proportion to the groups'
    decodes (logits of finishing prefills in proportion to their chunks). KV-policy work rides
    with the first group."""
    chunks, n_dec = shape.prefill_chunks, shape.num_decode
    m = max(1, min(microbatches, len(chunks) + n_dec))
    if m == 1:
        return [shape]
    groups = [[c for i, c in enumerate(chunks) if i % m == j] for j in range(m)]
    k = len(chunks)
    decodes = [sum(1 for d in range(n_dec) if (k + d) % m == j) for j in range(m)]
    ctx = _split_int(shape.decode_context_sum, decodes)
    reads = _split_int(shape.decode_kv_read_sum, decodes)
    finishing = _split_int(shape.num_logits - n_dec, [len(g) for g in groups])
    return [BatchShape(tuple(groups[j]), decodes[j], ctx[j], decodes[j] + finishing[j], reads[j],
                       shape.kv_work if j == 0 else None) for j in range(m)]


class PipelineCostModel:
    """`inner` (all layers on one tp group) priced as `pp` pipeline stages (module docstring).
    link: a hardware.LinkSpec between stages (None: free transfers); activation_bytes_per_token:
    bytes sent per token at each stage boundary."""

    def __init__(self, inner, *, pp: int, microbatches: int, num_layers: int, link=None,
                 activation_bytes_per_token: float = 0.0):
        if pp < 1 or microbatches < 1:
            raise ValueError(f"pp and microbatches must be >= 1, got {pp}, {microbatches}")
        self.inner, self.pp, self.microbatches, self.link = inner, pp, microbatches, link
        self.stage_fraction = math.ceil(num_layers / pp) / num_layers
        self.activation_bytes_per_token = activation_bytes_per_token
        self.bubble_s = 0.0  # run totals: pipeline idle time, and stage-busy time
        self.busy_s = 0.0

    def step_cost(self, shape: BatchShape) -> StepCost:
        parts = split_shape(shape, self.microbatches)
        costs = [self.inner.step_cost(p) for p in parts]
        f = self.stage_fraction
        stage = [c.time_s * f for c in costs]
        send = [self.link.transfer_s(p.num_tokens * self.activation_bytes_per_token) if self.link and self.pp > 1
                else 0.0 for p in parts]
        total = gpipe_step_s(stage, self.pp, send)
        busy = sum(stage) + sum(send) * (self.pp - 1) / self.pp
        bubble = max(total - busy, 0.0)
        self.bubble_s += bubble
        self.busy_s += busy
        compute = sum(c.compute_s for c in costs) * f
        memory = sum(c.memory_s for c in costs) * f
        comm = sum(c.comm_s for c in costs) * f + sum(send) * (self.pp - 1) / self.pp
        evict = sum(c.evict_s for c in costs) * f
        overhead = total - compute - memory - comm - evict
        split = (compute, memory, comm + overhead + evict)
        source = SOURCE_NAMES[min(SOURCE_CODES[c.source] for c in costs)]
        return StepCost(time_s=total, compute_s=compute, memory_s=memory, comm_s=comm, overhead_s=overhead,
                        flops=sum(c.flops for c in costs) * f, bytes=sum(c.bytes for c in costs) * f,
                        bound=max(range(3), key=split.__getitem__), source=source, evict_s=evict)

    def describe(self) -> dict:
        d = dict(self.inner.describe())
        d["pipeline"] = {"pp": self.pp, "microbatches": self.microbatches, "schedule": "gpipe (fill and drain per step)",
                         "link": self.link.name if self.link else None,
                         "bubble_fraction": self.bubble_s / (self.bubble_s + self.busy_s)
                         if self.busy_s else None,
                         "source": "GPipe (Huang et al., NeurIPS 2019) schedule; stages of ceil(L/pp) layers"}
        return d

    def __getattr__(self, name):
        return getattr(self.inner, name)
