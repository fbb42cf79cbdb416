"""MoE expert fetch time written out by hand (issue 19): expert bytes = params x bytes per
element, over the host link's bandwidth, with every number taken from the model config and the
device sheet, never from the MoELayers object under test.

Mixtral-8x7B (config.json): hidden 4096, moe intermediate 14336, gated (SwiGLU: up and gate
4096 x 14336 each, down 14336 x 4096), 32 MoE layers, 8 experts, top-2, no bias:
  P_e = 3 x 4096 x 14336 = 176,160,768 params per expert.
L4 (hardware/data/l4.toml): PCIe 4 host link 32 GB/s, HBM 300 GB/s, bf16 121 TFLOP/s dense,
fp32 30.3. Formulas: formulas.md, "MoE and expert offloading" (fetch = beta*P_e/BW_link, then
the GPU runs it: max(2*n*P_e/F, beta*(P_e + n*a)/BW_hbm), a = 2h + 2w + w activations/token).
"""
import numpy as np
import pytest

from hardware import load_device, load_host
from simulator.models import load_model
from simulator.moe.cost import ExpertExec, MoELayers
from simulator.moe.placement import StaticPlacement
from simulator.results.summary import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario

P_E = 3 * 4096 * 14336
LINK_BYTES_PER_S = 32e9
HBM_BYTES_PER_S = 300e9
ACT_PER_TOKEN = 2 * 4096 + 2 * 14336 + 14336  # in + out of the layer, up/gate output, down input


class _TwoExpertsPerLayer:
    """Routing stand-in: experts 0 and 1 get one token in each of the 32 layers (batch-1 decode)."""

    name = "scripted"

    def draw(self, rng, tokens):
        counts = np.zeros((32, 8), dtype=np.int64)
        counts[:, :2] = 1
        return counts


@pytest.mark.parametrize("dtype, beta, flops", [("bf16", 2, 121e12), ("fp32", 4, 30.3e12)])
def test_batch1_fetch_step_by_hand(dtype, beta, flops):
    assert P_E == 176_160_768
    m = MoELayers(load_model("mixtral-8x7b"), load_device("l4"), load_host("xeon-8462y"), routing=_TwoExpertsPerLayer(),
                  placement=StaticPlacement(np.ones((32, 8)), 0), exec_policy=ExpertExec(policy="fetch"),
                  rng=np.random.default_rng(0), dtype=dtype)
    fetch_s = beta * P_E / LINK_BYTES_PER_S  # bf16: 352,321,536 B / 32 GB/s = 11.010048 ms
    if dtype == "bf16":
        assert fetch_s == pytest.approx(0.011010048, rel=1e-12)
    gpu_s = max(2 * P_E / flops, beta * (P_E + ACT_PER_TOKEN) / HBM_BYTES_PER_S)  # memory-bound: ~1.17 ms (bf16)
    # one layer: two fetches back to back on the link, then the GPU runs the last one fetched
    layer_s = 2 * fetch_s + gpu_s
    total, exposed, gpu_flops, gpu_bytes = m.step(1, 0.0)
    assert total == pytest.approx(32 * layer_s, rel=1e-12)
    assert exposed == pytest.approx(32 * (layer_s - 2 * gpu_s), rel=1e-12)
    assert gpu_flops == pytest.approx(32 * 2 * 2 * P_E, rel=1e-12)
    assert m.stats["link_bytes"] == 32 * 2 * beta * P_E
    assert m.stats["link_s"] == pytest.approx(32 * 2 * fetch_s, rel=1e-12)


def test_a_run_moves_expert_bytes_at_link_speed():
    """Whole run, LRU with one slot per layer, every miss fetched: each fetch moves one expert's
    bf16 weights (2 x P_E bytes) and holds the 32 GB/s link for bytes / bandwidth."""
    s = Scenario(model="mixtral-8x7b", hardware="l4", engine="ideal", num_requests=2, rate=float("inf"),
                 prompt_tokens="16", output_tokens="4", max_num_batched_tokens=2048, expert_placement="lru",
                 gpu_expert_slots=1, expert_exec="fetch")
    r = simulate(s)
    m = build_summary(r)["metrics"]
    fetched = m["moe_experts_fetched"]
    assert fetched > 0
    assert m["moe_host_link_bytes"] == fetched * 2 * P_E
    assert m["moe_host_link_time_s"] == pytest.approx(fetched * 2 * P_E / LINK_BYTES_PER_S, rel=1e-9)
