"""plan prices a candidate by the GPUs one replica really holds: tp x pp x data-parallel ranks, or
a whole P/D set (the newcomer review found pp, EP and P/D candidates priced as tp GPUs)."""
from __future__ import annotations

import pytest

from hardware import load_device
from simulator.scenario import Scenario
from simulator.studies.plan.search import SearchSettings, Slo, search_candidate
from simulator.studies.plan.sweep import plan_tasks

SETTINGS = SearchSettings(probe_requests=60, max_probes=6)


@pytest.mark.parametrize("changes, gpus_per_replica", [
    ({"pp": 2}, 2),
    ({"num_prefill_instances": 1, "num_decode_instances": 2}, 3),
    ({"tp": 2}, 2),
])
def test_price_counts_every_gpu_of_a_replica(changes, gpus_per_replica):
    base = Scenario(model="qwen3-0.6b", hardware="l4", prompt_tokens="uniform:32:128", output_tokens="uniform:8:24",
                    **changes)
    (task,) = plan_tasks(base, {}, settings=SETTINGS, slo=Slo(ttft_ms=2000, tpot_ms=200), target_rate=4.0)
    record = search_candidate(task)
    assert record["feasible"], record["reason"]
    n = record["replicas_needed"]
    assert record["num_gpus"] == n * gpus_per_replica
    assert record["price_usd_per_hour"] == pytest.approx(n * gpus_per_replica * load_device("l4").price_usd_per_hour)
