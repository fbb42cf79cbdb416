"""P/D disaggregation: the KV transfer time for a hand case, and a one-request run whose TTFT is
its prefill step plus the transfer."""
from __future__ import annotations

import pytest

from hardware import LinkSpec, load_device, load_link
from simulator.cost import BatchShape, build_cost_model, resolve_engine
from simulator.disagg.transfer import KvTransfer
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.run import simulate
from simulator.scenario import Scenario


def test_kv_transfer_is_bytes_over_bandwidth_plus_latency():
    """llama-3-8b bf16: 2 (K,V) x 8 KV heads x 128 x 2 bytes x 32 layers = 131072 B/token; 1000
    tokens over 10 GB/s with 5 us latency: 131.072 MB / 10 GB/s + 5 us = 13.112200 ms."""
    model = load_model("llama-3-8b")
    assert model.kv_bytes_per_token("bf16", 1) == 131072
    link = LinkSpec(name="t", display_name="t", bandwidth_gb_per_s=10.0, latency_us=5.0)
    kv = KvTransfer(link, kv_bytes_per_token=131072)
    assert kv.time_s(1000) == pytest.approx(0.0131122, rel=1e-12)
    two = KvTransfer(link, kv_bytes_per_token=131072, lanes=2)  # two GPUs each move half
    assert two.time_s(1000) == pytest.approx(0.0065536 + 5e-6, rel=1e-12)


def test_transfers_from_one_prefill_instance_queue():
    link = LinkSpec(name="t", display_name="t", bandwidth_gb_per_s=1.0, latency_us=0.0)
    kv = KvTransfer(link, kv_bytes_per_token=1000)
    assert kv.reserve(0, 0.0, 1000) == pytest.approx(1e-3)
    assert kv.reserve(0, 0.0, 1000) == pytest.approx(2e-3)  # waits for the first
    assert kv.reserve(1, 0.0, 1000) == pytest.approx(1e-3)  # another instance's link is free


def _one_request(**kw) -> Scenario:
    return Scenario(model="llama-3-8b", hardware="h100-sxm", engine="ideal", profile="none", frontend="offline",
                    num_requests=1, rate=1.0, prompt_tokens="256", output_tokens="4", num_prefill_instances=1,
                    num_decode_instances=1, **kw)


@pytest.mark.parametrize("link", ["nvlink4", "infiniband-ndr"])
def test_ttft_of_a_lone_request_is_its_prefill_plus_the_transfer(link):
    s = _one_request(kv_transfer_link=link)
    model, device = load_model(s.model), load_device(s.hardware)
    prefill_s = build_cost_model(s, model, device, engine=resolve_engine(s, device)).step_cost(
        BatchShape(prefill_chunks=((256, 0),), num_logits=1)).time_s
    lk = load_link(link)
    transfer_s = 256 * 131072 / lk.bytes_per_s + lk.latency_s
    r = simulate(s)
    rec = r.recorder
    assert rec.first_token_s[0] - rec.arrival_s[0] == pytest.approx(prefill_s + transfer_s, rel=1e-9)
    assert r.cost_model["disaggregation"]["kv_transfer"]["num_transfers"] == 1
    assert rec.finish_s[0] > rec.first_token_s[0]  # three more tokens decoded on the decode instance


def test_blocking_transfer_holds_the_decode_step():
    """Request 0 decodes 64 tokens when request 1's KV arrives: a blocking copy stalls its steps."""
    s = _one_request(kv_transfer_overlap="blocking", kv_transfer_link="infiniband-ndr").replace(
        num_requests=2, rate=20.0, output_tokens="64")
    async_ = simulate(s.replace(kv_transfer_overlap="async")).recorder
    blocking = simulate(s).recorder
    assert async_.arrival_s[1] < async_.finish_s[0]  # the second arrives while the first decodes
    assert blocking.first_token_s[0] == pytest.approx(async_.first_token_s[0], rel=1e-9)
    assert blocking.finish_s[0] > async_.finish_s[0]


def test_disaggregation_rejects_replicas():
    with pytest.raises(ServesimError, match="num_prefill_instances"):
        Scenario(num_prefill_instances=1, replicas=2)
