"""The command line: defaults, outputs, and one clear line (exit 2) for every bad input."""
import json
import re
from pathlib import Path

import pytest

from simulator.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_summary_has_vllm_metric_names(capsys):
    code, out, _ = run(capsys, "simulate", "--num-requests", "30", "--json")
    summary = json.loads(out)
    assert code == 0
    for key in ("completed", "duration", "request_throughput", "output_throughput", "total_token_throughput",
                "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms",
                "mean_e2el_ms", "mean_kv_cache_usage", "num_preemptions", "frac_steps_memory_bound"):
        assert key in summary["metrics"], key
    pred = summary["provenance"]["prediction"]  # calibrated by default, and it says so
    assert summary["provenance"]["cost_model"]["kind"] == "calibrated" and pred["calibrated"] and pred["kind"] == "fit"
    assert summary["provenance"]["engine"]["name"] == "vllm" and "held-out published points" in pred["known_error"]
    code, out, _ = run(capsys, "simulate", "--num-requests", "30", "--json", "--engine", "ideal")
    ideal = json.loads(out)
    assert ideal["provenance"]["cost_model"]["source"] == "roofline" and not ideal["provenance"]["prediction"]["calibrated"]


def test_out_dir_writes_all_outputs(capsys, tmp_path):
    code, out, _ = run(capsys, "simulate", "--num-requests", "20", "--out", str(tmp_path), "--chrome-trace")
    assert code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"summary.json", "requests.csv", "steps.csv", "trace.json"}
    assert len((tmp_path / "requests.csv").read_text().splitlines()) == 21
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]


def test_scenario_file_and_overrides(capsys, tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('model = "qwen3-0.6b"\nhardware = "l4"\nnum_requests = 10\nrate = "inf"\n')
    code, out, _ = run(capsys, "simulate", "--scenario", str(f), "--num-requests", "12", "--json")
    s = json.loads(out)["scenario"]
    assert code == 0 and s["model"] == "qwen3-0.6b" and s["num_requests"] == 12 and s["rate"] == "inf"


@pytest.mark.parametrize("argv,message", [
    (["--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["--hardware", "tpu"], "unknown device 'tpu'; known devices: "),
    (["--rate", "-1"], "rate=-1.0 is invalid; allowed: requests/s > 0"),
    (["--block-size", "0"], "block_size=0 is invalid; allowed: an integer >= 1"),
    (["--tp", "3"], "tp=3 does not divide num_attention_heads=32"),
    (["--model", "llama-2-70b", "--hardware", "l4"], "does not fit on l4"),
    (["--prompt-tokens", "uniform:9:3"], "prompt_tokens='uniform:9:3'"),
    (["--scheduler", "fifo"], "scheduler='fifo' is invalid; allowed: static, vllm, sarathi"),
    (["--gpu-memory-utilization", "1.5"], "gpu_memory_utilization=1.5 is invalid"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, _, err = run(capsys, "simulate", "--num-requests", "5", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_scenario_key_lists_valid_ones(capsys, tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("modle = 'x'\n")
    code, _, err = run(capsys, "simulate", "--scenario", str(f))
    assert code == 2 and "unknown key(s) modle; valid keys: model, hardware" in err


def test_malformed_trace_row_names_file_and_line(capsys, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n1.0,abc,5\n")
    code, _, err = run(capsys, "simulate", "--trace", str(f))
    assert code == 2 and "t.csv" in err and "line 3" in err


def test_models_lists_catalogs(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "llama-3-8b" in out and "h100-sxm" in out


@pytest.mark.parametrize("argv", [
    # issue 16: Best-of-N groups in a tight KV cache (the siblings' copies of the partial prompt block)
    ["--gpu-memory-utilization", "0.2125", "--samples-per-prompt", "4", "--scheduler", "vllm"],
    ["--gpu-memory-utilization", "0.2125", "--samples-per-prompt", "8", "--scheduler", "sarathi"],
    ["--gpu-memory-utilization", "0.2125", "--samples-per-prompt", "16", "--scheduler", "vllm", "--prompt-tokens", "100"],
    # MoE expert offloading on a device whose cost model is a profile fit
    ["--model", "mixtral-8x7b", "--hardware", "a100-80gb", "--expert-placement", "static"],
    ["--model", "mixtral-8x7b", "--hardware", "a100-80gb", "--expert-placement", "lru", "--tp", "2"],
    ["--model", "mixtral-8x7b", "--hardware", "a100-80gb", "--expert-placement", "static", "--samples-per-prompt", "4"],
])
def test_valid_runs_that_used_to_crash(capsys, argv):
    code, out, err = run(capsys, "simulate", "--num-requests", "20", "--json", *argv)
    assert code == 0, err
    m = json.loads(out)["metrics"]
    n = 20 * int(argv[argv.index("--samples-per-prompt") + 1]) if "--samples-per-prompt" in argv else 20
    assert m["completed"] + m.get("failed", 0) == n


@pytest.mark.parametrize("toml, message", [  # issue 16: typed scenario values, one line naming field and value
    ('seed = "abc"', "seed='abc' is invalid; allowed: an integer"),
    ("seed = 1.5", "seed=1.5 is invalid; allowed: an integer"),
    ("model = 5", "model=5 is invalid; allowed: a non-empty string"),
    ('trace = ""', "trace='' is invalid; allowed: a non-empty string"),
    ("trace = 3", "trace=3 is invalid; allowed: a non-empty string"),
    ("rate = true", "rate=True is invalid; allowed: requests/s > 0"),
    ('gpu_memory_utilization = "0.9"', "gpu_memory_utilization='0.9' is invalid; allowed: a number"),
    ("step_overhead_ms = nan", "step_overhead_ms=nan is invalid; allowed: a finite number"),
    ("profile_mismatch_ok = 1", "profile_mismatch_ok=1 is invalid; allowed: true or false"),
])
def test_scenario_file_values_are_typed(capsys, tmp_path, toml, message):
    f = tmp_path / "s.toml"
    f.write_text(toml + "\n")
    code, _, err = run(capsys, "simulate", "--scenario", str(f), "--num-requests", "5")
    assert code == 2 and f"{f}: {message}" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--kv-policy", "h2o", "--kv-budget", "inf"], "kv_budget=inf is invalid; allowed: a finite number"),
    (["--kv-drop", "inf"], "kv_drop=inf is invalid"),
    (["--prompt-tokens", "lognormal:inf:1"], "prompt_tokens='lognormal:inf:1': parameters must be finite"),
    (["--prompt-tokens", "lognormal:1024:50"], "parameters out of range for lognormal"),
    (["--slo-ttft-ms", "nan"], "slo_ttft_ms=nan is invalid"),
    (["--swap-space-gib", "inf"], "swap_space_gib=inf is invalid"),
    (["--spec-realign-overhead", "inf"], "spec_realign_overhead=inf is invalid"),
    (["--seed", "-1"], "seed=-1 is invalid; allowed: an integer >= 0"),
    (["--burstiness", "inf"], "burstiness=inf is invalid"),
    (["--rate", "-inf"], "rate=-inf is invalid"),
    (["--tp", "abc"], "argument --tp: invalid int value: 'abc'"),
    (["--jobs", "0"], "unrecognized arguments: --jobs 0"),
    (["--trace", ""], "--trace was given an empty value"),
    (["--profile="], "--profile was given an empty value"),
])
def test_bad_values_are_one_line(capsys, argv, message):
    code, _, err = run(capsys, "simulate", "--num-requests", "5", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "usage:" not in err


@pytest.mark.parametrize("argv, message", [  # found by a hostile pass over every subcommand (issue 16)
    (["compare", "--vary", "max_num_seqs=1,,2", "--num-requests", "5"], "empty value"),
    (["compare", "--vary", "scheduler=vllm,vllm", "--num-requests", "5"], "vllm"),
    (["plan", "--target-rate", "1e308", "--slo-ttft-ms", "500", "--slo-tpot-ms", "50"], "requests/s in (0, 1e7]"),
    (["simulate", "--draft-model", "qwen3-0.6b", "--num-speculative-tokens", "1000000"], "num_speculative_tokens"),
    (["simulate", "--hardware", ""], "--hardware was given an empty value"),
])
def test_hostile_inputs_are_one_line(capsys, argv, message):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("line, field", [("bf16 = inf", "bf16"), ("bf16 = nan", "bf16")])
def test_device_files_with_non_finite_numbers_are_refused(capsys, tmp_path, line, field):
    src = (Path(__file__).resolve().parents[1] / "hardware" / "data" / "h100-sxm.toml").read_text()
    f = tmp_path / "d.toml"
    f.write_text(re.sub(r"(?m)^bf16 = .*$", line, src, count=1))
    code = main(["simulate", "--hardware", str(f), "--num-requests", "3"])
    err = capsys.readouterr().err
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1
