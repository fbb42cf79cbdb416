"""A user's own benchmark files: parsing (vLLM and SGLang formats, bad files), the measured metrics,
the replay, `validate --bench`, and `calibrate` recovering a known device and engine."""
import dataclasses
import json
import math

import numpy as np
import pytest

from hardware import load_device
from simulator.cli import main
from simulator.cost import device_kernels, load_engine
from simulator.errors import ServesimError
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.validation.bench import bench_json, bench_scenario, calibrate, compare, measured_metrics
from simulator.workload.bench_results import read_bench_result
from simulator.workload.traces import detect_format, load_trace

VLLM = {"date": "20261130-120000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "num_prompts": 3,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 2, "duration": 2.0, "completed": 2,
        "input_lens": [100, 200, 300], "output_lens": [3, 1, 0], "ttfts": [0.05, 0.1, None],
        "itls": [[0.01, 0.03], [], []], "errors": ["", "", "timeout"], "mean_ttft_ms": 75.0}


def _write(tmp_path, obj, name="run.json"):
    f = tmp_path / name
    f.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return f


def test_vllm_file_parses_and_failed_requests_are_kept_apart(tmp_path):
    b = read_bench_result(_write(tmp_path, VLLM))
    assert b.tool == "vllm bench serve" and math.isinf(b.request_rate) and b.max_concurrency == 2
    assert list(b.ok) == [True, True, False] and b.num_failed == 1
    assert b.identity["model_id"] == "meta-llama/Llama-3.1-8B" and b.reported["mean_ttft_ms"] == 75.0
    r = b.requests()
    assert list(r.prompt_tokens) == [100, 200] and list(r.output_tokens) == [3, 1] and list(r.arrival_s) == [0, 0]
    assert detect_format(_write(tmp_path, VLLM)) == "bench"
    assert list(load_trace(_write(tmp_path, VLLM)).prompt_tokens) == [100, 200]


def test_measured_metrics_follow_vllm_definitions(tmp_path):
    m = measured_metrics(read_bench_result(_write(tmp_path, VLLM)))
    assert m["completed"] == 2 and m["failed"] == 1 and m["duration"] == 2.0
    assert m["request_throughput"] == 1.0 and m["output_throughput"] == 2.0 and m["total_token_throughput"] == 152.0
    assert m["mean_ttft_ms"] == pytest.approx(75.0)
    assert m["mean_tpot_ms"] == pytest.approx(20.0)  # (0.01 + 0.03) / (3 - 1); the 1-token request has no TPOT
    assert m["mean_itl_ms"] == pytest.approx(20.0) and m["median_itl_ms"] == pytest.approx(20.0)
    assert m["mean_e2el_ms"] == pytest.approx((90 + 100) / 2)


def test_sglang_jsonl_takes_the_last_run_with_details(tmp_path):
    first = {"backend": "sglang", "mean_ttft_ms": 1.0}  # a run written without --output-details
    last = {**VLLM, "backend": "sglang", "request_rate": 4.0, "burstiness": 0.5}
    b = read_bench_result(_write(tmp_path, json.dumps(first) + "\n" + json.dumps(last) + "\n", "run.jsonl"))
    assert b.tool == "sglang bench_serving" and b.request_rate == 4.0 and b.burstiness == 0.5


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    (json.dumps([1, 2]), "top level is a list"),
    (json.dumps({k: v for k, v in VLLM.items() if k != "itls"}), "no per-request itls"),
    (json.dumps({**VLLM, "ttfts": [0.1]}), "ttfts has 1 entries, input_lens has 3"),
    (json.dumps({**VLLM, "input_lens": [100, "x", 3]}), r"input_lens\[1\] is 'x', not a number"),
    (json.dumps({**VLLM, "itls": [[0.1], 5, []]}), r"itls\[1\] is int"),
    (json.dumps({**VLLM, "input_lens": []}), "no requests"),
])
def test_bad_files_say_what_and_where(tmp_path, content, message):
    f = _write(tmp_path, content)
    with pytest.raises(ServesimError, match=message) as err:
        read_bench_result(f)
    assert str(f) in str(err.value)
    with pytest.raises(ServesimError, match="not found"):
        read_bench_result(tmp_path / "missing.json")


def test_replay_scenario_follows_the_file(tmp_path):
    base = Scenario(model="llama-3.1-8b", hardware="h100-sxm")
    s = bench_scenario(read_bench_result(_write(tmp_path, VLLM)), base)
    assert s.closed_loop_users == 2 and s.trace_format == "bench" and s.num_requests == 2 and s.frontend == "server"
    s = bench_scenario(read_bench_result(_write(tmp_path, {**VLLM, "request_rate": 3.0, "burstiness": 0.5})), base)
    assert s.rate == 3.0 and s.arrival == "gamma" and s.burstiness == 0.5 and s.closed_loop_users is None
    s = bench_scenario(read_bench_result(_write(tmp_path, {**VLLM, "start_times": [5.0, 5.5, 6.0]})), base)
    assert s.trace_arrivals == "trace"


# ---- calibration on files from a known device and engine ----------------------------------------
TRUTH = {"compute_scale": 0.8, "memory_scale": 0.85, "step_overhead_ms": 1.5}
BASE = Scenario(model="llama-3.1-8b", hardware="h100-sxm", seed=1)
WORKLOADS = {  # batch-1 long prompts; 32 users at long context; a held-out middle load
    "a": dict(num_requests=40, rate=2.0, prompt_tokens="normal:2048:100", output_tokens="normal:64:8"),
    "b": dict(num_requests=96, rate=math.inf, closed_loop_users=32, prompt_tokens="normal:3000:100",
              output_tokens="normal:128:16"),
    "c": dict(num_requests=80, rate=8.0, prompt_tokens="normal:512:50", output_tokens="normal:128:16"),
}


@pytest.fixture(scope="module")
def truth_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cal = device_kernels(load_device("h100-sxm")).scaled(compute=TRUTH["compute_scale"], memory=TRUTH["memory_scale"])
    engine = dataclasses.replace(load_engine("vllm"), step_overhead_ms=TRUTH["step_overhead_ms"])
    files = {}
    for name, kw in WORKLOADS.items():
        r = simulate(BASE.replace(**kw), engine=engine, calibration=cal)
        files[name] = out / f"{name}.json"
        files[name].write_text(json.dumps(bench_json(r, request_rate=kw["rate"],
                                                     max_concurrency=kw.get("closed_loop_users"))))
    return files


def test_calibrate_recovers_a_known_device_and_engine_and_predicts_a_third_file(truth_files, tmp_path):
    benches = [read_bench_result(truth_files[k]) for k in ("a", "b")]
    got = calibrate(benches, BASE, hold_out=False)
    for k, v in TRUTH.items():
        assert got.values[k] == pytest.approx(v, rel=0.05), k
    before = compare(read_bench_result(truth_files["c"]), BASE)
    after = compare(read_bench_result(truth_files["c"]), BASE, engine=got.engine, calibration=got.calibration)
    err = {r["metric"]: r["error_pct"] for r in after["rows"]}
    for k in ("mean_ttft_ms", "mean_tpot_ms", "output_throughput"):
        assert abs(err[k]) < 5, (k, err[k])
    assert abs({r["metric"]: r["error_pct"] for r in before["rows"]}["mean_tpot_ms"]) > 10  # it was off before


def test_calibrate_cli_writes_a_profile_simulate_names(truth_files, tmp_path, capsys):
    out = tmp_path / "cal"
    assert main(["calibrate", "--bench", str(truth_files["a"]), str(truth_files["b"]), "--model", "llama-3.1-8b",
                 "--hardware", "h100-sxm", "--no-hold-out", "--out", str(out)]) == 0
    assert "compute_scale" in capsys.readouterr().out
    record = json.loads((out / "calibration.json").read_text())
    assert record["bench_files"] == [str(truth_files["a"]), str(truth_files["b"])] and record["model"] == "llama-3.1-8b"
    assert main(["validate", "--bench", str(truth_files["c"]), "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                 "--profile", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)[0]
    assert rep["prediction"]["label"].startswith("calibrated on your measurements")
    assert rep["prediction"]["engine"].startswith("vllm-calibrated")
    rows = {r["metric"]: r for r in rep["rows"]}
    assert abs(rows["mean_tpot_ms"]["error_pct"]) < 5


def test_bench_cli_errors(tmp_path, capsys):
    f = _write(tmp_path, VLLM)
    assert main(["validate", "--bench", str(_write(tmp_path, {**VLLM, "model_id": "org/Foo-7B"}, "foo.json")),
                 "--hardware", "h100-sxm"]) == 2
    assert "model_id 'org/Foo-7B' is not a catalog model; pass --model" in capsys.readouterr().err
    assert main(["validate", "--bench", str(f)]) == 2  # its model_id names llama-3.1-8b: the device is missing
    assert "pass --hardware" in capsys.readouterr().err
    assert main(["validate", "--hardware", "h100-sxm"]) == 2
    assert "--hardware go with --bench" in capsys.readouterr().err
    assert main(["calibrate", "--bench", str(f), "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--out",
                 str(tmp_path / "o"), "--bounds", "step_overhead_ms=5:1"]) == 2
    assert "LO must be below HI" in capsys.readouterr().err
    assert main(["calibrate", "--bench", str(f), "--model", "llama-3.1-8b", "--hardware", "cpu", "--out",
                 str(tmp_path / "o"), "--fit", "compute_scale"]) == 2
    assert "is a CPU" in capsys.readouterr().err
    assert np.isfinite(measured_metrics(read_bench_result(f))["mean_ttft_ms"])
