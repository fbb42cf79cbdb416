"""The one-line error contract of every subcommand (issue 19): bad input exits 2 with ONE line
`servesim <command>: error: ...` that names the flag / field or file, the value given, and what
is allowed. Each row lists those three parts; every one must appear in the line.
`{tmp}` in an argument is a fresh temporary directory (missing files live there).
"""
import pytest

from simulator.cli import main

SIM = ["simulate", "--num-requests", "5"]
COST = ["cost", "--model", "qwen3-8b", "--prompt-tokens", "10", "--output-tokens", "5"]
PLAN = ["plan", "--target-rate", "5"]
CAL = ["calibrate", "--model", "qwen3-8b", "--hardware", "h100-sxm", "--out", "{tmp}/cal"]

# (argv, [what is named, the value, what is allowed])
CASES = [
    # simulate
    (SIM + ["--burstiness", "0"], ["burstiness", "0.0", "allowed: > 0"]),
    (SIM + ["--arrival", "weibull"], ["arrival", "'weibull'", "allowed: poisson, gamma"]),
    (SIM + ["--num-requests", "0"], ["num_requests", "=0", "allowed: an integer >= 1"]),
    (SIM + ["--chunk-size", "0"], ["chunk_size", "=0", "allowed: an integer >= 1"]),
    (SIM + ["--trace-arrivals", "foo"], ["trace_arrivals", "'foo'", "allowed: trace, rate"]),
    (SIM + ["--trace", "{tmp}/missing.csv"], ["missing.csv", "{tmp}/missing.csv", "trace file not found"]),
    (SIM + ["--output-tokens", "lognormal:100:20"], ["output_tokens", "'lognormal:100:20'", "0 <= SIGMA (lognormal <= 10)"]),
    (SIM + ["--slo-ttft-ms", "-5"], ["slo_ttft_ms", "-5.0", "allowed: > 0 milliseconds"]),
    (SIM + ["--kv-policy", "foo"], ["kv_policy", "'foo'", "allowed: dense, h2o, scissorhands"]),
    (SIM + ["--model", "mixtral-8x7b", "--expert-placement", "foo"], ["expert_placement", "'foo'", "allowed: all_gpu, static, lru"]),
    (SIM + ["--draft-model", "qwen3-0.6b", "--acceptance-rate", "1.5"], ["acceptance_rate", "1.5", "allowed: a probability in [0, 1]"]),
    (SIM + ["--draft-model", "qwen3-0.6b", "--num-speculative-tokens", "100"],
     ["num_speculative_tokens", "100", "allowed: an integer in [1, 64]"]),
    (SIM + ["--draft-model", "qwen3-0.6b", "--spec-gamma-policy", "foo"], ["spec_gamma_policy", "'foo'", "allowed: fixed, adaptive"]),
    # cost
    (COST[:4] + ["0", "--output-tokens", "5"], ["--prompt-tokens", "0 is invalid", "allowed: an integer >= 1"]),
    (COST + ["--samples", "0"], ["--samples", "0 is invalid", "allowed: an integer >= 1"]),
    (COST + ["--intensity", "-1"], ["--intensity", "-1 is invalid", "allowed: a finite number > 0"]),
    (COST + ["--dtype", "int3"], ["dtype", "'int3'", "allowed: fp32, bf16, fp16, fp8, int8, int4"]),
    (COST + ["--hardware", "tpu"], ["device", "'tpu'", "known devices: a100-40gb"]),
    # tts
    (["tts", "--samples", "0"], ["--samples", "'0'", "integers >= 1"]),
    (["tts", "--budgets", "x"], ["--budgets", "'x'", "comma-separated integers"]),
    (["tts", "--accuracy", "{tmp}/acc.csv"], ["accuracy table", "{tmp}/acc.csv", "does not exist"]),
    # report
    (["report", "{tmp}/none.json", "-o", "{tmp}/r.html"], ["result", "{tmp}/none.json", "no such result"]),
    # compare
    (["compare", "--vary", "tp"], ["--vary", "'tp'", "expected KEY=V1,V2"]),
    (["compare", "--vary", "foo=1,2"], ["--vary", "'foo'", "valid keys: model, hardware"]),
    (["compare", "--vary", "tp=1,x"], ["--vary tp", "'x'", "valid int"]),
    (["compare", "--vary", "tp=1,1"], ["--vary tp", "'1'", "list each value once"]),
    (["compare", "--vary", "scheduler=vllm,fifo"], ["scheduler", "'fifo'", "allowed: static, vllm, sarathi"]),
    # plan
    (["plan", "--target-rate", "-1"], ["--target-rate", "-1 is invalid", "allowed: a finite number > 0"]),
    (PLAN + ["--slo-percentile", "0"], ["percentile", "0.0", "allowed: (0, 100]"]),
    (PLAN + ["--probe-requests", "3"], ["probe_requests", "3", "allowed: >= 30"]),
    (PLAN + ["--max-probes", "1"], ["max_probes", "1", "allowed: >= 2"]),
    (PLAN + ["--tp", "0,1"], ["tp", "=0", "allowed: an integer >= 1"]),
    # roofline
    (["roofline", "--model", "gpt-9", "--hardware", "l4"], ["model", "'gpt-9'", "known models: "]),
    (["roofline", "--model", "qwen3-8b", "--hardware", "l4", "--dtype", "int3"], ["dtype", "'int3'", "it lists ['bf16'"]),
    # profile
    (["profile", "--model", "qwen3-8b", "--passes", "0"], ["--passes", "0 is invalid", "allowed: an integer >= 1"]),
    (["profile", "--import-vidur", "{tmp}/mlp.csv"], ["Vidur CSV", "{tmp}/mlp.csv", "not found"]),
    # fit
    (["fit", "--train", "{tmp}/table"], ["table", "{tmp}/table", "does not exist"]),
    (["fit", "--engine-fit", "nosuch"], ["engine", "'nosuch'", "known engines: "]),
    # calibrate
    (CAL + ["--bench", "{tmp}/b.json"], ["benchmark result file", "{tmp}/b.json", "not found"]),
    # validate
    (["validate", "--published", "--only", "zzzz"], ["--only", "'zzzz'", "no published point's id, device, model or engine"]),
    (["validate", "--published", "{tmp}/p.csv"], ["published points file", "{tmp}/p.csv", "not found (the shipped one is"]),
    (["validate", "--bench", "{tmp}/b.json", "--model", "qwen3-8b", "--hardware", "l4"],
     ["benchmark result file", "{tmp}/b.json", "not found"]),
]


def _id(case):
    argv, _ = case
    return " ".join(argv[:1] + [a for a in argv[1:] if a.startswith("--")][-1:])


@pytest.mark.parametrize("argv, parts", CASES, ids=[f"{i}-{_id(c)}" for i, c in enumerate(CASES)])
def test_bad_input_names_field_value_and_allowed(capsys, tmp_path, argv, parts):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"servesim {argv[0]}: error: "), lines[0]
    for part in parts:
        assert part.replace("{tmp}", str(tmp_path)) in lines[0], (part, lines[0])


def test_every_subcommand_has_a_row():
    import argparse

    from simulator.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    covered = {argv[0] for argv, _ in CASES} | {"models"}  # models takes no input that can be bad
    assert set(sub.choices) == covered


def test_a_reader_that_stops_early_is_not_an_error():
    """`servesim ... | head`: the closed pipe ends the command quietly with 141 (128 + SIGPIPE, as a
    shell reports it), without an error line or a traceback."""
    import subprocess
    import sys

    # `true` exits at once, long before the simulation prints: the first write meets a closed pipe
    cmd = f"{sys.executable} -m simulator.cli simulate --num-requests 50 --json | true"
    got = subprocess.run(["bash", "-c", cmd + "; echo rc=${PIPESTATUS[0]} >&2"], capture_output=True, text=True)
    assert got.stderr == "rc=141\n"


def test_a_broken_pipe_that_is_not_stdouts_is_an_error(monkeypatch, capsys):
    """A BrokenPipeError from elsewhere (a worker's pipe) while stdout is fine: one error line, exit 2."""
    import simulator.cli.simulate as simulate_cmd

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(simulate_cmd, "run", broken)
    assert main(["simulate", "--num-requests", "5"]) == 2
    assert capsys.readouterr().err == "servesim simulate: error: [Errno 32] Broken pipe\n"
