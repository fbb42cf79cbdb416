"""Speculative decoding's bookkeeping by hand (issue 19; gaps found by mutation testing): the
verify / draft step shapes (Leviathan et al. arXiv 2211.17192 sec. 3.4: gamma draft passes + one
target pass over gamma + 1 tokens), how their costs combine, the run counters and their
summary, the speedup over a baseline, and the acceptance-histogram file format.
"""
import json
import math

import numpy as np
import pytest

from simulator.cost import BatchShape
from simulator.cost.step import BOUND_COMPUTE, BOUND_MEMORY, BOUND_OVERHEAD, StepCost
from simulator.errors import ServesimError
from simulator.speculative.acceptance import (
    HistogramAcceptance,
    IidAcceptance,
    PositionalAcceptance,
    load_histogram,
    parse_rates,
)
from simulator.speculative.cost import SpecCostModel, combine, draft_shapes, verify_shape
from simulator.speculative.decode_set import SpecBatchShape
from simulator.speculative.setup import baseline_comparison
from simulator.speculative.speculator import SpecStats


# ---- shapes ---------------------------------------------------------------------------------------
def test_spec_batch_shape_counts_every_verified_token():
    s = SpecBatchShape(((10, 0),), 3, 300, 3 * 5 + 1, 4)
    assert s.num_tokens == 10 + 3 * 5 and s.num_spec_tokens == 4
    assert SpecBatchShape().num_tokens == 0 and SpecBatchShape().decode_context_sum == 0
    assert SpecBatchShape().num_logits == 0 and SpecBatchShape().num_spec_tokens == 0
    assert s == SpecBatchShape(((10, 0),), 3, 300, 16, 4) and s != SpecBatchShape(((10, 0),), 3, 300, 16, 3)
    assert repr(s).endswith(", num_spec_tokens=4)")


def test_verify_and_draft_shapes_by_hand():
    """3 sequences, contexts summing to 300 (each counting its last emitted token), gamma 2, and a
    10-token prefill chunk that finishes this step (num_logits = 3 x 3 + 1)."""
    s = SpecBatchShape(((10, 0),), 3, 300, 10, 2)
    assert verify_shape(s) == BatchShape(((10, 0), (3, 297), (3, 0), (3, 0)), 0, 0, 10)
    assert draft_shapes(s) == [BatchShape(((10, 0),), 3, 300, 4), BatchShape((), 3, 303, 3)]
    # gamma 0: a plain decode for the target, no draft pass unless it prefills
    plain = SpecBatchShape(((10, 0),), 3, 300, 4, 0)
    assert verify_shape(plain) == BatchShape(((10, 0),), 3, 300, 4)
    assert draft_shapes(plain) == [BatchShape(((10, 0),), 0, 0, 1)]
    assert draft_shapes(SpecBatchShape((), 3, 300, 3, 0)) == []
    # a plain BatchShape (no num_spec_tokens) is a gamma-0 step
    b = BatchShape(((7, 0),), 2, 50, 3)
    assert verify_shape(b) == b and draft_shapes(b) == [BatchShape(((7, 0),), 0, 0, 1)]
    # prefill only, gamma set: nothing to verify
    assert verify_shape(SpecBatchShape(((8, 0),), 0, 0, 1, 3)) == BatchShape(((8, 0),), 0, 0, 1)


def sc(compute, memory, comm=0.0, overhead=0.0, source="roofline", flops=0.0, nbytes=0.0):
    return StepCost(compute + memory + comm + overhead, compute, memory, comm, overhead, flops, nbytes,
                    BOUND_MEMORY, source)


def test_combine_adds_parts_and_picks_the_bound_and_the_best_source():
    c = combine([sc(1.0, 2.0, 0.5, 0.25, "profile", 10, 20), sc(3.0, 1.0, 0.0, 0.0, "fit", 1, 2)], 0.5)
    assert (c.time_s, c.compute_s, c.memory_s, c.comm_s, c.overhead_s) == (8.25, 4.0, 3.0, 0.5, 0.75)
    assert (c.flops, c.bytes, c.bound) == (11, 22, BOUND_COMPUTE)
    assert c.source == "fit"  # the least trusted of the parts (SOURCE_NAMES order: roofline < transfer < fit < profile)
    assert combine([sc(1, 1, source="profile"), sc(1, 1, source="transfer")]).source == "transfer"
    assert combine([sc(2.0, 2.0)]).bound == BOUND_COMPUTE  # compute = memory: compute-bound
    assert combine([sc(1.0, 2.0)]).bound == BOUND_MEMORY
    assert combine([sc(1.0, 0.5, 0.5, 0.5)]).bound == BOUND_COMPUTE  # compute = comm + overhead
    assert combine([sc(1.0, 0.5, 1.0, 0.5)]).bound == BOUND_OVERHEAD
    assert combine([sc(0.5, 1.0, 0.5, 0.5)]).bound == BOUND_MEMORY  # memory = comm + overhead
    assert combine([sc(0.5, 1.0, 1.0, 0.5)]).bound == BOUND_OVERHEAD
    assert combine([]).source == "roofline" and combine([]).time_s == 0


class Flat:
    def __init__(self, t, source="roofline"):
        self.t, self.source, self.shapes = t, source, []

    def step_cost(self, shape):
        self.shapes.append(shape)
        return sc(0.0, self.t, source=self.source)

    def describe(self):
        return {"source": self.source}


def test_spec_cost_model_charges_parts_and_realignment():
    stats = SpecStats(IidAcceptance(0.5), 4, "ragged")
    cm = SpecCostModel(Flat(1.0), Flat(0.25), realign_overhead=0.1, stats=stats)
    spec = SpecBatchShape((), 2, 100, 2 * 4, 3)  # 3 draft passes
    assert cm.iteration_s(spec) == pytest.approx((1.0 + 0.75) * 1.1)
    c = cm.step_cost(spec)
    assert c.time_s == pytest.approx(1.925) and c.overhead_s == pytest.approx(0.175)
    prefill = SpecBatchShape(((16, 0),), 0, 0, 1, 3)  # prefill only: one draft pass, no realignment
    assert cm.step_cost(prefill).time_s == pytest.approx(1.25)
    plain = SpecBatchShape((), 2, 100, 2, 0)  # gamma 0 decode: the target alone
    assert cm.step_cost(plain).time_s == pytest.approx(1.0)
    d = stats.as_dict()
    assert (d["verify_time_s"], d["target_prefill_time_s"]) == pytest.approx((2.0, 1.0))
    assert (d["draft_time_s"], d["realign_time_s"]) == pytest.approx((1.0, 0.175))
    assert d["frac_time_realign"] == pytest.approx(0.175 / 4.175)
    with pytest.raises(ValueError) as e:
        SpecCostModel(Flat(1.0), Flat(1.0), realign_overhead=-0.5)
    assert str(e.value) == "realign_overhead must be >= 0, got -0.5"


# ---- counters -------------------------------------------------------------------------------------
def test_spec_stats_summary_by_hand():
    """Two iterations: gamma 2 over 3 sequences accepting 2, 0, 1 (emitting 6), then gamma 0 over 1
    (emitting 1). i.i.d. alpha 0.5: E[emitted | gamma 2] = 1 + 0.5 + 0.25 = 1.75."""
    st = SpecStats(IidAcceptance(0.5), 3, "ragged")
    st.record(2, np.array([2, 0, 1]), 6)
    st.record(0, np.array([0]), 1)
    st.charge(True, 0.3, 0.2, 0.05)
    st.charge(False, 0.1, 0.0, 0.0)
    st.charge(True, 0.3, 0.2, 0.05)
    d = st.as_dict()
    assert d.pop("gamma_counts") == {"0": 1, "2": 1}
    expect = {
        "num_iterations": 2, "num_sequence_iterations": 4, "num_draft_tokens": 6, "num_accepted_tokens": 3,
        "num_emitted_tokens": 7, "mean_gamma": 6 / 4,
        "mean_accepted_tokens_per_iteration": 3 / 4, "mean_tokens_per_iteration": 7 / 4,
        "expected_tokens_per_iteration": (3 * 1.75 + 1) / 4, "mean_emitted_tokens_per_iteration": 7 / 4,
        "draft_time_s": 0.4, "verify_time_s": 0.6, "target_prefill_time_s": 0.1, "realign_time_s": 0.1,
        "frac_time_draft": 0.4 / 1.2, "frac_time_verify": 0.6 / 1.2, "frac_time_realign": 0.1 / 1.2}
    assert {k: d[k] for k in expect} == pytest.approx(expect)  # (the acceptance-rate keys are another test's)
    empty = SpecStats(IidAcceptance(0.5), 2, "min").as_dict()
    assert empty["num_iterations"] == 0 and empty["gamma_counts"] == {}
    assert all(math.isnan(empty[k]) for k in ("mean_gamma", "mean_tokens_per_iteration", "frac_time_draft"))
    assert (empty["draft_time_s"], empty["verify_time_s"], empty["realign_time_s"]) == (0.0, 0.0, 0.0)
    m = SpecStats(IidAcceptance(0.5), 2, "min")  # min advance: E = sum_j (0.5^j)^n over n = 2 sequences
    assert m.expected(2, 2) == pytest.approx(1 + 0.25 + 0.0625) and m.expected(2, 1) == pytest.approx(1.75)


def test_baseline_comparison_by_hand():
    spec = {"duration": 10.0, "output_throughput": 300.0, "mean_tpot_ms": 20.0, "mean_e2el_ms": 500.0}
    base = {"duration": 15.0, "output_throughput": 200.0, "mean_tpot_ms": 35.0, "mean_e2el_ms": 800.0,
            "median_tpot_ms": 34.0, "mean_ttft_ms": 50.0, "mean_itl_ms": 30.0, "mean_decode_batch_size": 7.0}
    out = baseline_comparison(spec, base)
    assert out["baseline"] == {k: base.get(k) for k in ("duration", "output_throughput", "mean_tpot_ms",
                                                        "median_tpot_ms", "mean_ttft_ms", "mean_e2el_ms",
                                                        "mean_itl_ms", "mean_decode_batch_size")}
    assert out["speedup_output_throughput"] == pytest.approx(1.5)
    assert out["speedup_mean_tpot"] == pytest.approx(1.75) and out["speedup_mean_e2el"] == pytest.approx(1.6)
    for bad in ({"mean_tpot_ms": None}, {"mean_tpot_ms": 0}, {"mean_tpot_ms": float("nan")}):
        assert math.isnan(baseline_comparison({**spec, **bad}, {**base, **bad})["speedup_mean_tpot"])
    assert math.isnan(baseline_comparison({}, base)["speedup_output_throughput"])


# ---- acceptance -----------------------------------------------------------------------------------
def test_acceptance_boundaries():
    assert PositionalAcceptance((0.0, 1.0)).survival(2) == 0.0 and PositionalAcceptance((1.0,)).survival(5) == 1.0
    always = IidAcceptance(1.0).sample(np.random.default_rng(0), 4, 3)
    assert always.tolist() == [3, 3, 3, 3] and always.dtype == np.int64
    never = PositionalAcceptance((0.0,)).sample(np.random.default_rng(0), 5, 3)
    assert never.tolist() == [0] * 5
    sure = PositionalAcceptance((1.0, 1.0)).sample(np.random.default_rng(0), 3, 4)
    assert sure.tolist() == [4, 4, 4]
    assert PositionalAcceptance((0.5,)).sample(np.random.default_rng(0), 3, 0).tolist() == [0, 0, 0]
    assert parse_rates("0.9, 0.8,") == (0.9, 0.8)
    with pytest.raises(ServesimError) as e:
        parse_rates("0.9,x")
    assert str(e.value) == ("acceptance_position_rates='0.9,x' is invalid; allowed: comma-separated probabilities "
                            "such as 0.9,0.8,0.7")


@pytest.mark.parametrize("weights", [[], [[1, 2]], [1, -1], [1, float("inf")], [0, 0], [float("nan")]])
def test_histogram_weights_checked(weights):
    with pytest.raises(ServesimError) as e:
        HistogramAcceptance(weights)
    assert str(e.value).startswith("histogram: accepted-length histogram must be >= 1 non-negative finite weights")


def test_histogram_files(tmp_path):
    j = tmp_path / "h.json"
    j.write_text(json.dumps([1, 0, 3]))
    h = load_histogram(j)
    assert h.origin == str(j) and h.pmf.tolist() == [0.25, 0.0, 0.75]
    assert h.describe() == {"kind": "histogram", "file": str(j), "pmf": [0.25, 0.0, 0.75]}
    assert [h.survival(k) for k in range(4)] == [1.0, 0.75, 0.75, 0.0]
    assert HistogramAcceptance([1.0]).describe()["file"] == "histogram"
    obj = tmp_path / "o.json"
    obj.write_text(json.dumps({"2": 1, "0": 1}))  # missing lengths count 0
    assert load_histogram(obj).pmf.tolist() == [0.5, 0.0, 0.5]
    c = tmp_path / "h.csv"
    c.write_text("accepted_tokens,count\n0,2\n\n3,6\n,\n")  # blank rows skipped
    assert load_histogram(c).pmf.tolist() == [0.25, 0.0, 0.0, 0.75]
    single = tmp_path / "s.json"
    single.write_text("[0, 5]")
    assert load_histogram(single).pmf.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name, content, message", [
    ("neg.json", '{"-1": 1, "2": 1}', "{p}: accepted token counts must be integers in [0, 4096], got [-1, 2]"),
    ("big.json", '{"4097": 1}', "{p}: accepted token counts must be integers in [0, 4096], got [4097]"),
    ("empty.json", "[]", "{p}: accepted token counts must be integers in [0, 4096], got []"),
    ("bad.csv", "a,b\nx,1\n", "{p}: not an accepted-length histogram (invalid literal for int() with base 10: 'x'); "
                              "expected a JSON list of weights or CSV rows `accepted_tokens,count` after a header"),
])
def test_histogram_file_errors(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(ServesimError) as e:
        load_histogram(p)
    assert str(e.value) == message.format(p=p)


def test_histogram_path_errors(tmp_path):
    with pytest.raises(ServesimError) as e:
        load_histogram(tmp_path)
    assert str(e.value) == f"acceptance_histogram file {str(tmp_path)!r} is a directory; expected a .json or .csv file"
    with pytest.raises(ServesimError) as e:
        load_histogram(tmp_path / "none.json")
    assert str(e.value) == f"acceptance_histogram file {str(tmp_path / 'none.json')!r} does not exist"
    b = tmp_path / "b.csv"
    b.write_bytes(b"\xff\xfe")
    with pytest.raises(ServesimError) as e:
        load_histogram(b)
    assert str(e.value) == (f"{b}: not UTF-8 text (invalid start byte at byte 0); expected a JSON list of weights "
                            "or CSV rows `accepted_tokens,count` after a header")
    ok = tmp_path / "max.json"
    ok.write_text('{"4096": 1}')
    assert len(load_histogram(ok).pmf) == 4097


class Described(Flat):
    def __init__(self, t, desc):
        super().__init__(t)
        self.desc = desc

    def describe(self):
        return self.desc


def test_descriptions():
    target = {"kind": "calibrated", "source": "fit", "known_error": "median 7%"}
    cm = SpecCostModel(Described(1.0, target), Described(1.0, {"kind": "roofline"}), realign_overhead=0.2)
    assert cm.describe() == {"kind": "speculative", "source": "fit", "known_error": "median 7%", "target": target,
                             "draft": {"kind": "roofline"}, "realign_overhead": 0.2}
    bare = SpecCostModel(Described(1.0, {}), Described(1.0, {}))
    assert bare.describe() == {"kind": "speculative", "source": "roofline", "known_error": "", "target": {},
                               "draft": {}, "realign_overhead": 0.0}
    assert PositionalAcceptance((0.9, 0.8)).describe() == {"kind": "per_position",
                                                          "acceptance_position_rates": [0.9, 0.8]}
    assert IidAcceptance(0.7).describe() == {"kind": "iid", "acceptance_rate": 0.7}
