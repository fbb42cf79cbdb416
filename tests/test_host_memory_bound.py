"""Swap space and the prefix-cache offload tier are host memory: (swap + offload) GiB per GPU x tp
must stay within 70% of the host's memory (vLLM's "Too large swap space" bound,
CacheConfig.verify_with_parallel_config). xeon-8462y (the default host) has 512 GiB: 358.4 GiB."""
import pytest

from simulator.cli.main import main
from simulator.engine import check_host_memory
from simulator.errors import ServesimError


@pytest.mark.parametrize("swap, offload, tp, ok", [
    (358.4, 0.0, 1, True), (358.5, 0.0, 1, False),
    (179.0, 0.0, 2, True), (180.0, 0.0, 2, False),  # 358 vs 360 GiB
    (58.4, 300.0, 1, True), (60.0, 300.0, 1, False),  # the two add up
])
def test_bound_is_seventy_percent_of_host_memory(swap, offload, tp, ok):
    kw = dict(swap_space_gib=swap, kv_offloading_size_gib=offload, tp=tp, host_memory_gib=512.0, host_name="h")
    if ok:
        check_host_memory(**kw)
    else:
        with pytest.raises(ServesimError, match=r"<= 70% of host h's 512 GiB = 358.4 GiB"):
            check_host_memory(**kw)


def test_cli_names_both_sizes_tp_and_the_bound(capsys):
    argv = ["simulate", "--enable-prefix-caching", "--kv-offloading-size-gib", "100", "--preemption-mode", "swap",
            "--swap-space-gib", "80", "--tp", "2", "--num-requests", "5", "--json"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("swap_space_gib=80 + kv_offloading_size_gib=100 GiB per GPU x tp=2 = 360 GiB of host memory "
                        "is invalid; allowed: <= 70% of host xeon-8462y's 512 GiB = 358.4 GiB (vLLM refuses a larger "
                        "swap space); use smaller sizes or a --host with more memory")


def test_swap_space_is_not_host_memory_without_swap_preemption(capsys):
    """Recompute preemption (the default) never allocates the swap space (scenario.swap_space_gib
    stays at its 4 GiB default); a scenario file may still carry a large one."""
    from simulator.run import simulate
    from simulator.scenario import Scenario

    simulate(Scenario(swap_space_gib=1000.0, num_requests=3))
