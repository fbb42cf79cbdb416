"""Speculative decoding, issue 18 item 4: configured vs measured acceptance named apart, the
batch-min advance, adaptive gamma that never drafts, and one acceptance model per scenario."""
import numpy as np
import pytest

from hardware import load_device
from simulator.cli import main
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.results.summary import build_summary
from simulator.results.table import format_summary
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.speculative.acceptance import IidAcceptance, expected_emitted
from simulator.speculative.speculator import SpecStats, Speculator

H100 = load_device("h100-sxm")


def base(**kw):
    return Scenario(model="qwen3-8b", hardware="h100-sxm", scheduler="vllm", rate=float("inf"), seed=3,
                    prompt_tokens="512", output_tokens="64", num_requests=16, max_num_seqs=16, engine="ideal",
                    draft_model="qwen3-0.6b").replace(**kw)


def test_min_advance_counts_what_the_target_accepted_and_what_was_kept():
    """Hand-fed draws: accepted (2, 4, 0) of gamma 4 -> the target accepted 6 of 12; the batch keeps
    its minimum 0 for all three sequences."""
    class Fixed:
        def sample(self, rng, n, gamma):
            return np.array([2, 4, 0])

        def survival(self, j):
            return 0.5**j

    stats = SpecStats(Fixed(), 4, "min")
    spec = Speculator(gamma_max=4, policy="fixed", advance="min", acceptance=Fixed(),
                      rng=np.random.default_rng(0), stats=stats)
    kept = spec.accepted(3, 4)
    assert kept.tolist() == [0, 0, 0]
    spec.record(4, kept, emitted=3)
    d = stats.as_dict()
    assert (d["num_draft_tokens"], d["num_accepted_tokens"], d["num_kept_draft_tokens"]) == (12, 6, 0)
    assert d["draft_acceptance_rate"] == 0.5 and d["kept_draft_fraction"] == 0.0
    assert d["system_efficiency"] == 3 / 15 and d["mean_tokens_per_iteration"] == 1.0


def test_min_advance_run_reports_the_targets_acceptance_near_the_iid_closed_form():
    alpha, gamma = 0.8, 4
    sp = build_summary(simulate(base(spec_advance="min", acceptance_rate=alpha, output_tokens="400",
                                     num_requests=16)))["speculative"]
    per_draft = sum(alpha**j for j in range(1, gamma + 1)) / gamma  # E[accepted] / gamma = 0.5904
    n = sp["num_sequence_iterations"]
    assert abs(sp["draft_acceptance_rate"] - per_draft) < 4 * np.sqrt(2.0 / n)  # loose: sd of a/gamma <= 0.5
    assert sp["kept_draft_fraction"] < 0.5 * sp["draft_acceptance_rate"]
    text = format_summary(build_summary(simulate(base(spec_advance="min", output_tokens="400"))))
    assert "Drafts kept after batch-min advance" in text and "min advance: the target accepted" in text


def test_configured_alpha_and_measured_rate_have_different_names():
    summary = build_summary(simulate(base(acceptance_rate=0.7)))
    sp = summary["speculative"]
    assert "acceptance_rate" not in sp and sp["acceptance"] == {"kind": "iid", "acceptance_rate": 0.7}
    text = format_summary(summary)
    assert "Per-token acceptance alpha (configured):           0.700" in text
    assert f"Draft acceptance rate (measured):{sp['draft_acceptance_rate']:>23.1%}" in text


def test_batch1_cost_coefficient_is_leviathans_c():
    sp = build_summary(simulate(base()))["speculative"]
    b1 = sp["batch1"]
    shape = BatchShape((), 1, 1025, 1)
    c = (RooflineCostModel(load_model("qwen3-0.6b"), H100).step_cost(shape).time_s
         / RooflineCostModel(load_model("qwen3-8b"), H100).step_cost(shape).time_s)
    assert b1["cost_coefficient_c"] == pytest.approx(c, rel=1e-12)
    # Leviathan et al. sec. 3.4: speedup = E(gamma) / (gamma c + 1) when the verify pass costs a decode step
    best = max(expected_emitted(IidAcceptance(0.8), g) / (g * c + 1) for g in range(1, 5))
    assert b1["best_expected_speedup"] == pytest.approx(best, rel=0.02)


def test_adaptive_gamma_that_never_drafts_says_why_not_nan():
    """`--draft-hardware l4 --spec-gamma-policy adaptive`: the L4 draft step costs about the H100
    target's, so no gamma pays and adaptive picks 0 every time."""
    s = Scenario(model="qwen3-8b", draft_model="qwen3-0.6b", draft_hardware="l4", spec_gamma_policy="adaptive",
                 num_requests=40)
    summary = build_summary(simulate(s))
    sp = summary["speculative"]
    assert list(sp["gamma_counts"]) == ["0"] and sp["num_draft_tokens"] == 0
    assert sp["draft_acceptance_rate"] is None and sp["batch1"]["best_expected_speedup"] < 1
    text = format_summary(summary)
    assert "nan" not in text.lower() and "No token was drafted" in text and "gamma chosen (iterations): 0:" in text


@pytest.mark.parametrize("extra", [{"acceptance_position_rates": "0.9,0.8"}, {"acceptance_histogram": "h.csv"}])
def test_two_acceptance_models_are_an_error(extra):
    with pytest.raises(ServesimError, match="are both set; allowed: one acceptance model"):
        base(acceptance_rate=0.8, **extra)
    assert base(acceptance_position_rates="0.9,0.8").acceptance_rate is None  # one model alone is fine


def test_cli_rejects_acceptance_rate_with_position_rates(capsys):
    argv = ["simulate", "--model", "qwen3-8b", "--draft-model", "qwen3-0.6b", "--num-requests", "4",
            "--acceptance-rate", "0.8", "--acceptance-position-rates", "0.9,0.8"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "acceptance_rate=0.8 and acceptance_position_rates='0.9,0.8'" in err[0]
