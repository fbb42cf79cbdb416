"""Swap space and the prefix-cache offload tier are host memory: swap GiB per GPU x tp (vLLM's
swap_space) + offload GiB for the whole instance (vLLM's kv_offloading_size, summed over its
ranks) must stay within 70% of the host's memory (vLLM's "Too large swap space" bound,
CacheConfig.verify_with_parallel_config). xeon-8462y (the default host) has 512 GiB: 358.4 GiB."""
import pytest

from simulator.cli.main import main
from simulator.engine import check_host_memory
from simulator.errors import ServesimError

BOUND = r"<= 70% of host h's 512 GiB = 358.4 GiB"


@pytest.mark.parametrize("swap, offload, tp, ok", [
    (358.4, 0.0, 1, True), (358.5, 0.0, 1, False),
    (179.0, 0.0, 2, True), (180.0, 0.0, 2, False),  # swap is per GPU: 358 vs 360 GiB
    (0.0, 358.0, 4, True), (0.0, 359.0, 4, False),  # the offload tier is the instance's total, whatever its tp
    (58.4, 300.0, 1, True), (60.0, 300.0, 1, False),  # the two add up
    (29.0, 300.0, 2, True), (30.0, 300.0, 2, False),
])
def test_bound_is_seventy_percent_of_host_memory(swap, offload, tp, ok):
    kw = dict(swap_space_gib=swap, kv_offloading_size_gib=offload, tp=tp, host_memory_gib=512.0, host_name="h")
    if ok:
        check_host_memory(**kw)
    else:
        with pytest.raises(ServesimError, match=BOUND):
            check_host_memory(**kw)


@pytest.mark.parametrize("argv, head", [
    (["--enable-prefix-caching", "--kv-offloading-size-gib", "200", "--preemption-mode", "swap", "--swap-space-gib",
      "80", "--tp", "2"], "swap_space_gib=80 GiB per GPU x tp=2 + kv_offloading_size_gib=200 GiB = 360 GiB"),
    (["--enable-prefix-caching", "--kv-offloading-size-gib", "400"], "kv_offloading_size_gib=400 GiB = 400 GiB"),
    (["--preemption-mode", "swap", "--swap-space-gib", "100", "--num-prefill-instances", "1",
      "--prefill-tp", "4", "--decode-tp", "4"], "swap_space_gib=100 GiB per GPU x tp=4 = 400 GiB"),  # a P/D pool's tp
])
def test_cli_names_the_sizes_in_use_tp_and_the_bound(argv, head, capsys):
    assert main(["simulate", *argv, "--num-requests", "5", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(f"{head} of host memory is invalid; allowed: <= 70% of host xeon-8462y's 512 GiB = 358.4 GiB "
                        "(vLLM's bound on its swap space, applied to all pinned KV); use smaller sizes or a --host with "
                        "more memory")


def test_swap_space_is_not_host_memory_without_swap_preemption():
    """Recompute preemption (the default) and the static scheduler never allocate the swap space;
    a scenario file may still carry a large one."""
    from simulator.run import simulate
    from simulator.scenario import Scenario

    simulate(Scenario(swap_space_gib=1000.0, num_requests=3))
    simulate(Scenario(swap_space_gib=1000.0, preemption_mode="swap", scheduler="static", num_requests=3))


def test_offload_tier_holds_the_instance_total_in_blocks():
    """kv_offloading_size_gib buys GiB / (one GPU's block bytes x tp) host blocks: the same number
    at tp=1 and tp=2, since tp splits a block's bytes over the GPUs (reading the GiB per GPU, as
    before, gave twice as many at tp=2)."""
    from simulator.engine import HostKvTier
    from simulator.run import simulate
    from simulator.scenario import Scenario

    seen = []
    orig = HostKvTier.__init__

    def spy(self, num_blocks, *a, **k):
        seen.append(num_blocks)
        orig(self, num_blocks, *a, **k)

    HostKvTier.__init__ = spy
    try:
        for tp in (1, 2):
            simulate(Scenario(model="llama-3.1-8b", enable_prefix_caching=True, kv_offloading_size_gib=8.0, tp=tp,
                              num_requests=2))
    finally:
        HostKvTier.__init__ = orig
    # llama-3.1-8b bf16: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 128 KiB per token; 16-token blocks
    block_tp1 = 128 * 1024 * 16
    assert seen == [8 * 2**30 // block_tp1, 8 * 2**30 // ((block_tp1 // 2) * 2)] == [4096, 4096]
