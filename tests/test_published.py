"""The published-measurement dataset, its simulation, the engine fit and the known errors every
prediction quotes (simulator/validation/{published,fidelity,engine_fit}.py, cost/known_error.py)."""
import csv
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.cost import load_engine
from simulator.cost.known_error import FIDELITY, prediction_provenance, short_label
from simulator.errors import ServesimError
from simulator.studies.plan.search import capacity_range
from simulator.validation import PUBLISHED_DATA, calibration_points, evaluate, fit_engine, read_points, report
from simulator.validation.fidelity import fidelity_inputs_digest
from simulator.validation.published import METRICS, Point, metric_value, scenario_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measured" / "published_points.csv"
POINTS = read_points()


def test_every_point_has_a_source_and_every_exclusion_a_reason():
    assert len(POINTS) > 250
    for p in POINTS:
        assert p.source.strip(), p.id
        if p.split == "excluded":
            assert p.notes.strip(), p.id
        else:
            assert p.metric in METRICS and p.measured > 0 and p.num_gpus >= p.tp >= 1, p.id
    assert len({p.id for p in POINTS}) == len(POINTS)


def test_held_out_points_outnumber_calibration_points_and_each_calibration_point_says_what_it_fits():
    cal = [p for p in POINTS if p.split == "calibration"]
    held = [p for p in POINTS if p.split == "holdout"]
    assert len(held) > 10 * len(cal)
    for p in cal:
        engine = load_engine(p.engine)
        assert p.notes.startswith(f"calibrates {p.engine}:")
        fitted = set(re.findall(r"[a-z_]+_(?:ms|us|speedup)\b", p.notes.split(";")[0]))
        assert fitted and fitted <= set(engine.fit["bounds"]), p.id
        assert engine.fit["points"] and p.id in engine.fit["points"]


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared not beside the checkout")
def test_the_shared_reference_points_are_all_in_the_dataset():
    mine = {p.id: p for p in POINTS}
    for row in csv.DictReader(open(SHARED)):
        got = [p for pid, p in mine.items() if (pid == row["id"] or pid.startswith(row["id"] + "-"))
               and p.measured == float(row["measured"])]
        assert got and row["source"] in got[0].source, row["id"]


def test_scenarios_reproduce_each_mode():
    base = dict(id="x", split="holdout", regime="serving", model="llama-3.1-8b", gpu="h100-sxm", num_gpus=2, tp=1,
                engine="vllm", dtype="bf16", metric="output_tok_per_s", measured=1.0, unit="tok/s", source="s",
                input_tokens=100, output_tokens=20)
    static = scenario_for(Point(**base, mode="static", batch=8))
    assert static.scheduler == "static" and static.max_num_seqs == 8 and static.replicas == 2
    conc = scenario_for(Point(**base, mode="concurrency", batch=16, num_requests=64))
    assert conc.closed_loop_users == 32 and conc.max_num_seqs == 16 and conc.num_requests == 64
    rate = scenario_for(Point(**base, mode="rate", rate=2.5, num_requests=10), engine="ideal")
    assert rate.rate == 2.5 and rate.engine == "ideal" and rate.max_model_len == 120
    per_gpu = Point(**{**base, "metric": "output_tok_per_s_per_gpu"}, mode="offline")
    assert metric_value(per_gpu, {"metrics": {"output_throughput": 50.0}}) == 25.0


@pytest.mark.parametrize("field, value, message", [
    ("scenario", "bogus=1", "scenario key 'bogus' unknown"),
    ("scenario", "scheduler=foo", "scheduler='foo' is invalid; allowed: static, vllm, sarathi"),
    ("metric", "speed", "metric 'speed' unknown; allowed: "),
    ("num_gpus", "two", "num_gpus is 'two', not a whole number"),
    ("measured", "0", "measured is '0'; it must be > 0"),
    ("input_tokens", "", "input_tokens is empty; a number is required"),
    ("tp", "3", "num_gpus=1 is not a multiple of tp=3"),
    ("gpu", "nope", "gpu 'nope' unknown; allowed: a100-40gb"),
    ("model", "", "model '' is not a catalog model"),
    ("source", " ", "source is empty"),
])
def test_bad_dataset_rows_are_named(tmp_path, field, value, message):
    rows = list(csv.DictReader(open(PUBLISHED_DATA)))
    good = next(r for r in rows if r["id"] == "TRT017-8B-128-128-H200")
    f = tmp_path / "p.csv"
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(good))
        w.writeheader()
        w.writerow({**good, field: value})
    with pytest.raises(ServesimError, match=message) as err:
        read_points(f)
    assert str(err.value).startswith(f"{f}:2: ")
    with pytest.raises(ServesimError, match="published points file not found"):
        read_points(tmp_path / "none.csv")


def test_fidelity_file_matches_the_current_calibrations():
    """profiles/data/fidelity.json (the known errors predictions quote) was written from the current
    dataset, engines, device calibrations and power models: rerun benchmarks/fidelity.py --write."""
    assert json.loads(FIDELITY.read_text())["inputs_sha256"] == fidelity_inputs_digest()


def test_a_few_points_end_to_end_and_the_report():
    pts = [p for p in POINTS if p.id in ("GF1", "MLE-llama-3.1-8b-h100-sxm-n8-tput", "MLE-llama-3.1-8b-b200-n8-tput",
                                         "LMD1")]
    assert len(pts) == 4
    outcomes = evaluate(pts)
    assert all(o.ok for o in outcomes)
    r = report(pts, outcomes)
    assert r["overall"]["simulated"] == 4 and r["holdout"]["simulated"] == 4
    pair = r["cross_device"][0]  # the n8 run on two devices
    assert pair["devices"] == "h100-sxm / b200" and pair["measured_speedup"] == pytest.approx(1069.6 / 1637.3)
    by_id = {o.point.id: o for o in outcomes}
    assert abs(by_id["MLE-llama-3.1-8b-h100-sxm-n8-tput"].error_pct) < 10  # a held-out vLLM point on H100
    ideal = evaluate(pts[:1], engine="ideal")[0]
    assert ideal.cost_model.endswith("engine ideal") and "roofline" in ideal.cost_model or "profile" in ideal.cost_model


def test_engine_fit_recovers_a_known_number():
    """Measurements made by a known engine (2 ms per step) are fitted back from a start of 0."""
    truth = dataclasses.replace(load_engine("kernels"), name="t", step_overhead_ms=2.0)
    base = dict(split="calibration", regime="serving", model="qwen3-0.6b", gpu="h100-sxm", num_gpus=1, tp=1,
                engine="t", dtype="bf16", unit="", source="synthetic", mode="static", input_tokens=64, output_tokens=16)
    pts = [Point(id=f"p{b}", metric="itl_mean_ms", measured=1.0, batch=b, num_requests=b, **base) for b in (1, 8)]
    from simulator.validation.engine_fit import predict

    measured = predict(pts, truth)
    pts = [dataclasses.replace(p, measured=float(m)) for p, m in zip(pts, measured)]
    assert calibration_points(pts, "t") == pts
    got = fit_engine(dataclasses.replace(truth, step_overhead_ms=0.0), {"step_overhead_ms": (0.0, 5.0)}, pts)
    assert got.engine.step_overhead_ms == pytest.approx(2.0, rel=0.02)
    assert max(abs(e) for e in got.errors_after_pct) < 1 < min(abs(e) for e in got.errors_before_pct)
    with pytest.raises(ServesimError, match="cannot determine 2 numbers"):
        fit_engine(truth, {"step_overhead_ms": (0, 5), "per_seq_us": (0, 9)}, pts[:1])


def test_provenance_and_capacity_range():
    p = prediction_provenance({"kind": "calibrated", "calibration": {"device": "h200", "kind": "transfer",
                                                                    "known_error": "k"}},
                              load_engine("vllm").describe(), "h200")
    fid = json.loads(FIDELITY.read_text())["device"]["h200"]
    assert p["calibrated"] and p["kind"] == "transfer" and p["speed_error_p90_pct"] == fid["p90_abs_error_pct"]
    assert "fitted: step_overhead_ms, per_seq_us" in p["engine"]
    assert short_label(p) == f"transfer, p90 err {fid['p90_abs_error_pct']:.0f}%"
    none = prediction_provenance({"kind": "calibrated", "calibration": {"device": "l4", "kind": "transfer"}},
                                 {}, "l4")
    assert "no published points on l4" in none["known_error"]
    cal = {"kind": "calibrated", "calibration": {"device": "h200", "kind": "transfer"}}
    covered = json.loads(FIDELITY.read_text())["architecture"]
    assert "gqa+dense" in covered and "mla+moe" not in covered
    mla = prediction_provenance(cal, {}, "h200", architecture="mla+moe")["known_error"]
    assert "no held-out published point for a mla+moe model" in mla
    assert "no held-out" not in prediction_provenance(cal, {}, "h200", architecture="gqa+dense")["known_error"]
    r = capacity_range(10.0, 35.0, 20.0)  # 10 req/s per replica +- 20%: 8.33..12.5 req/s
    assert r["max_rate_per_replica_range"] == pytest.approx([10 / 1.2, 10 / 0.8])
    assert r["replicas_range"] == [math.ceil(35 / 12.5), math.ceil(35 / (10 / 1.2))] == [3, 5]
    assert capacity_range(10.0, 35.0, None) is None


def test_validate_published_cli(capsys):
    assert main(["validate", "--published", "--only", "GF1"]) == 0
    out = capsys.readouterr().out
    assert "GF1" in out and "held out (never fitted)" in out and "excluded (" in out
    assert main(["validate", "--published", "--only", "no-such-point"]) == 2
    assert "no published point" in capsys.readouterr().err
    assert main(["validate", "--engine", "vllm"]) == 2
    assert "go with --published" in capsys.readouterr().err


def test_simulate_says_it_is_calibrated_and_ideal_is_not(capsys):
    assert main(["simulate", "--num-requests", "20"]) == 0
    out = capsys.readouterr().out
    assert "cost model: calibrated h100-sxm (fitted on measured tables) + engine vllm" in out.replace("\n", " ")
    assert "known error: held-out published points on h100-sxm" in out.replace("\n", " ")
    assert main(["simulate", "--num-requests", "20", "--engine", "ideal"]) == 0
    assert "ideal roofline (uncalibrated)" in capsys.readouterr().out.replace("\n", " ")
