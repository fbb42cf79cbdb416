"""Multi-turn ShareGPT replay: turn k is sent only once turn k - 1's reply is complete (the
newcomer review found turn 2 answered 1.3 s before turn 1 finished); its arrival, and so its TTFT,
start then. Two conversations of two turns each, every request at t = 0 in the file."""
from __future__ import annotations

import json

import numpy as np

from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.workload import previous_turns


def _trace(tmp_path):
    def conv(h1, r1, h2, r2):
        return {"conversations": [{"from": "human", "value": "a" * h1}, {"from": "gpt", "value": "b" * r1},
                                  {"from": "human", "value": "c" * h2}, {"from": "gpt", "value": "d" * r2}]}

    path = tmp_path / "sg.json"
    path.write_text(json.dumps([conv(160, 400, 120, 20), conv(80, 40, 40, 8)]))
    return str(path)


def test_previous_turns_from_prefix_chunks():
    # rows: conv 0 turn 0, conv 0 turn 1, conv 1 turn 0, conv 1 turn 1, then conv 0 again (a replay cycle)
    prefix = [(((0, 0), 5), ((0, 1), 3)), (((0, 0), 5), ((0, 1), 3), ((0, 2), 4), ((0, 3), 1)),
              (((1, 0), 2), ((1, 1), 2)), (((1, 0), 2), ((1, 1), 2), ((1, 2), 2), ((1, 3), 2)),
              (((0, 0), 5), ((0, 1), 3)), (((0, 0), 5), ((0, 1), 3), ((0, 2), 4), ((0, 3), 1))]
    assert previous_turns(prefix) == [-1, 0, -1, 2, -1, 4]


def test_next_turn_waits_for_the_previous_reply(tmp_path):
    rec = simulate(Scenario(model="llama-2-7b", hardware="a100-80gb", trace=_trace(tmp_path), trace_format="sharegpt",
                            sharegpt_multi_turn=True, enable_prefix_caching=True)).recorder
    assert rec.status.tolist() == [1, 1, 1, 1]
    for first, second in ((0, 1), (2, 3)):
        assert rec.arrival_s[second] == rec.finish_s[first]  # sent when the reply was complete
        assert rec.first_token_s[second] > rec.finish_s[first]
    assert np.all(rec.arrival_s[[0, 2]] == 0.0)  # first turns keep the file's arrival


def test_disaggregation_refuses_multi_turn_rather_than_reorder_turns():
    """The P/D dispatcher sends every turn at its arrival; a turn could finish before the one it
    continues (review: turn 2 at 0.0432 s before turn 1 at 0.0501 s), so the pair is refused."""
    import pytest

    from simulator.errors import ServesimError
    from simulator.scenario import Scenario

    with pytest.raises(ServesimError, match=r"^sharegpt_multi_turn=True is invalid with num_prefill_instances"):
        Scenario(num_prefill_instances=1, sharegpt_multi_turn=True, trace="x.json")
