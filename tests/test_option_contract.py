"""The one-line contract for the newest options (found by a newcomer/fuzz review): an option of a
feature that is off, a combination the model cannot honour, or a size the machine cannot hold
exits 2 with one line naming the field and its value and saying what is allowed; nothing is
silently ignored and nothing ends in a traceback."""
from __future__ import annotations

import pytest

from simulator.cli import main

SIM = ("simulate", "--num-requests", "4")


@pytest.mark.parametrize("argv, fragments", [
    (SIM + ("--prefix-caching-policy", "sglang"), ["prefix_caching_policy='sglang'", "unless enable_prefix_caching"]),
    (SIM + ("--shared-prefix-groups", "4"), ["shared_prefix_groups=4", "unless shared_prefix_tokens"]),
    (SIM + ("--sharegpt-multi-turn",), ["sharegpt_multi_turn=True", "without a ShareGPT trace"]),
    (SIM + ("--trace-arrivals", "rate"), ["trace_arrivals='rate'", "without a trace"]),
    (SIM + ("--pp-microbatches", "4"), ["pp_microbatches=4", "pp=1"]),
    (SIM + ("--model", "llama-3.1-70b", "--pp", "2", "--pp-microbatches", "100000"),
     ["pp_microbatches=100000", "max_num_seqs=256"]),
    (SIM + ("--gpu-link", "pcie4"), ["gpu_link='pcie4'", "pp=1"]),
    (SIM + ("--num-decode-instances", "2"), ["num_decode_instances=2", "without num_prefill_instances"]),
    (SIM + ("--prefill-tp", "2"), ["prefill_tp=2", "without num_prefill_instances"]),
    (SIM + ("--kv-transfer-link", "nvlink4"), ["kv_transfer_link='nvlink4'", "without num_prefill_instances"]),
    (SIM + ("--num-prefill-instances", "1", "--scheduler", "static"), ["scheduler='static'", "vllm, sarathi"]),
    (SIM + ("--model", "qwen3-30b-a3b", "--num-prefill-instances", "1", "--enable-expert-parallel"),
     ["enable_expert_parallel=True", "num_prefill_instances"]),
    (SIM + ("--replicas", "100000"), ["replicas x data_parallel_size=100000", "<= 512"]),
    (SIM + ("--num-prefill-instances", "1000"), ["num_prefill_instances + num_decode_instances=1001", "<= 512"]),
    (SIM + ("--shared-prefix-tokens", "1000000000"), ["shared_prefix_tokens=1000000000", "max_model_len"]),
    (SIM + ("--out", "same.x", "--report", "same.x"), ["--out same.x and --report same.x", "same path"]),
    (SIM + ("--out", "/proc/servesim-out"), ["--out /proc/servesim-out", "cannot write"]),
    (("plan", "--target-rate", "1", "--max-instances", "4"), ["--max-instances 4", "--disaggregated"]),
    (("plan", "--target-rate", "1", "--disaggregated", "--report", "p.html"), ["--report", "--disaggregated"]),
    (("plan", "--target-rate", "1", "--disaggregated", "--max-instances", "100000"), ["--max-instances 100000", "64"]),
])
def test_refused_with_one_line(capsys, tmp_path, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)


def test_choices_are_case_insensitive(capsys, tmp_path):
    assert main([*SIM, "--num-prefill-instances", "1", "--kv-transfer-overlap", "BLOCKING", "--json"]) == 0
    assert '"kv_transfer_overlap": "blocking"' in capsys.readouterr().out
    assert main([*SIM, "--out", str(tmp_path / "o"), "--out-format", "CSV"]) == 0
    assert (tmp_path / "o" / "steps.csv").is_file()


def test_plan_disaggregated_writes_out(capsys, tmp_path):
    out = tmp_path / "pd"
    assert main(["plan", "--target-rate", "2", "--disaggregated", "--model", "qwen3-0.6b", "--hardware", "l4",
                 "--slo-ttft-ms", "2000", "--slo-tpot-ms", "200", "--probe-requests", "40", "--max-instances", "2",
                 "--out", str(out)]) == 0
    assert (out / "disaggregated.json").is_file()
    assert f"wrote {out / 'disaggregated.json'}" in capsys.readouterr().out
