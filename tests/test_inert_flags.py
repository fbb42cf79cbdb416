"""A typed flag that the final scenario never reads is refused with one line naming the flag, its
value, why it does nothing and what would make it count (inert_settings.INERT_RULES), never silently
ignored; the same flags where they do count run."""
import pytest

from simulator.cli.main import main

TRACE = "../shared/reference/traces/splitwise_conv.csv"
FEW = ["--num-requests", "20"]

REFUSED = [
    (["--rate", "20", "--trace", TRACE], "--rate=20.0", "the trace sets the arrivals", "trace_arrivals='rate'"),
    (["--arrival", "gamma", "--trace", TRACE], "--arrival='gamma'", "the trace sets the arrivals",
     "trace_arrivals='rate'"),
    (["--burstiness", "0.5", "--rate", "inf"], "--burstiness=0.5", "rate=inf sends every",
     "a finite rate"),
    (["--chunk-size", "256", "--scheduler", "vllm"], "--chunk-size=256", "only the sarathi scheduler",
     "scheduler='sarathi'"),
    (["--router", "least_loaded"], "--router='least_loaded'", "single engine instance", "replicas > 1"),
    (["--swap-space-gib", "2", "--preemption-mode", "swap", "--scheduler", "static"], "--preemption-mode='swap'",
     "the static scheduler", "the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (["--kv-compaction", "gather", "--kv-policy", "topk", "--kv-budget", "0.5"], "--kv-compaction='gather'",
     "only h2o and scissorhands", "kv_policy='h2o' or 'scissorhands'"),
    (["--gpu-expert-slots", "4"], "--gpu-expert-slots=4", "MoE expert offloading is off",
     "an expert_placement or a non-uniform expert_routing"),
    (["--host", "epyc-9354"], "--host='epyc-9354'", "only MoE expert offloading, swap preemption and the KV offload",
     "one of them on"),
    (["--rate", "20", "--closed-loop-users", "4"], "--rate=20.0", "closed_loop_users", "closed_loop_users unset"),
    (["--burstiness", "0.5"], "--burstiness=0.5", "only gamma arrivals", "arrival='gamma'"),
    (["--output-tokens", "64", "--trace", TRACE], "--output-tokens='64'", "trace gives every request's lengths",
     "no trace"),
    (["--num-speculative-tokens", "3"], "--num-speculative-tokens=3", "off without draft_model", "a draft_model"),
    (["--acceptance-rate", "0.7"], "--acceptance-rate=0.7", "off without draft_model", "a draft_model"),
    (["--swap-space-gib", "2"], "--swap-space-gib=2.0", "only swap preemption",
     "preemption_mode='swap' with the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (["--trace-format", "azure"], "--trace-format='azure'", "no trace is replayed", "a trace"),
    (["--swap-space-gib", "2", "--preemption-mode", "swap", "--engine", "trtllm"], "--preemption-mode='swap'",
     "admission 'reserve' (trtllm) never preempt", "the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (["--preemption-mode", "recompute", "--scheduler", "static"], "--preemption-mode='recompute'",
     "the static scheduler", "the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (["--kv-budget", "100"], "--kv-budget=100.0", "dense KV policy", "a kv_policy other than dense"),
    (["--kv-heavy-fraction", "0.3", "--kv-policy", "scissorhands", "--kv-budget", "0.5"],
     "--kv-heavy-fraction=0.3", "only h2o reads it", "kv_policy='h2o'"),
    (["--kv-drop", "0.2", "--kv-policy", "h2o", "--kv-budget", "0.5"], "--kv-drop=0.2", "only scissorhands",
     "kv_policy='scissorhands'"),
    (["--kv-select-block", "8", "--kv-policy", "topk", "--kv-budget", "0.5"], "--kv-select-block=8",
     "only block_topk", "kv_policy='block_topk'"),
]


@pytest.mark.parametrize("argv, flag, why, needs", REFUSED, ids=[r[1] for r in REFUSED])
def test_inert_flag_is_refused_with_the_whole_message(argv, flag, why, needs, capsys):
    assert main(["simulate", *argv, *FEW, "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{flag} has no effect here" in err and why in err and f"allowed: {needs}, or leave {flag.split('=')[0]} unset" in err


ACCEPTED = [
    ["--rate", "20", "--trace", TRACE, "--trace-arrivals", "rate"],
    ["--burstiness", "0.5", "--arrival", "gamma"],
    ["--swap-space-gib", "2", "--preemption-mode", "swap"],
    ["--kv-heavy-fraction", "0.3", "--kv-policy", "h2o", "--kv-budget", "0.5"],
    ["--rate", "20"],
    ["--chunk-size", "256"],
    ["--router", "least_loaded", "--replicas", "2"],
    ["--kv-compaction", "gather", "--kv-policy", "h2o", "--kv-budget", "0.5"],
    ["--host", "epyc-9354", "--preemption-mode", "swap"],
    ["--preemption-mode", "swap", "--swap-space-gib", "2", "--engine", "sglang"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=[" ".join(a[:2]) + "+" + " ".join(a[2:4]) for a in ACCEPTED])
def test_the_same_flags_run_where_they_count(argv, capsys):
    assert main(["simulate", *argv, *FEW, "--json"]) == 0, capsys.readouterr().err


def test_compare_refuses_a_flag_or_varied_key_no_variant_reads(capsys):
    assert main(["compare", "--trace", TRACE, *FEW, "--vary", "rate=2,4", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--vary rate=2.0,4.0 changes nothing: with trace_arrivals='trace' the trace sets the "
                        "arrivals (its timestamps; every request at t=0 in a file without them, e.g. ShareGPT); "
                        "allowed: trace_arrivals='rate', or vary another key")
    assert main(["compare", "--burstiness", "0.5", *FEW, "--vary", "seed=0,1", "--json"]) == 2
    assert "--burstiness=0.5 has no effect here: only gamma arrivals" in capsys.readouterr().err


def test_compare_keeps_a_flag_one_variant_reads(capsys):
    """--burstiness counts in the gamma variant; --num-speculative-tokens in the draft-model one."""
    assert main(["compare", "--burstiness", "0.5", *FEW, "--vary", "arrival=poisson,gamma", "--json"]) == 0
    capsys.readouterr()


def test_plan_refuses_what_its_search_sets(capsys):
    argv = ["plan", "--target-rate", "5", "--slo-ttft-ms", "500", "--slo-tpot-ms", "50", "--json"]
    for flag, value in (("--rate", "3"), ("--replicas", "2"), ("--num-requests", "10"), ("--trace-arrivals", "trace")):
        assert main([*argv, flag, value]) == 2
        assert f"{flag}=" in capsys.readouterr().err
    assert main([*argv, "--burstiness", "3"]) == 2
    assert "--burstiness=3.0 has no effect here" in capsys.readouterr().err


def _scenario_file(tmp_path, text: str, name: str = "scenario.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_scenario_file_keys_its_own_settings_leave_unread_are_refused_in_one_line(tmp_path, capsys):
    path = _scenario_file(tmp_path, 'scheduler = "vllm"\nchunk_size = 256\nburstiness = 0.5\nnum_requests = 20\n')
    assert main(["simulate", "--scenario", path, "--json"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"servesim simulate: error: {path}: chunk_size = 256 (only the sarathi scheduler (chunked prefill) cuts "
        "prompts into chunks; it counts with scheduler='sarathi'); burstiness = 0.5 (only gamma arrivals have a "
        "burstiness; it counts with arrival='gamma'): these keys have no effect here; remove them from the file")
    # typed flags that make the keys count run; so does a typed flag that replaces a key
    assert main(["simulate", "--scenario", path, "--scheduler", "sarathi", "--arrival", "gamma", "--json"]) == 0
    assert main(["simulate", "--scenario", path, "--scheduler", "sarathi", "--burstiness", "1", "--arrival",
                 "gamma", "--chunk-size", "512", "--json"]) == 0
    capsys.readouterr()


def test_a_what_if_flag_that_leaves_a_file_key_unread_is_the_users_choice(tmp_path, capsys):
    """The file's own settings read arrival and burstiness; --rate inf (every request at t=0) makes
    them unread as a what-if, which runs."""
    path = _scenario_file(tmp_path, 'arrival = "gamma"\nburstiness = 0.5\nrate = 12.0\nnum_requests = 20\n')
    assert main(["simulate", "--scenario", path, "--rate", "inf", "--json"]) == 0
    capsys.readouterr()


def test_a_file_that_writes_defaults_out_runs(tmp_path, capsys):
    """A template with every knob at its default asks for nothing the run ignores."""
    path = _scenario_file(tmp_path, 'engine = "trtllm"\npreemption_mode = "recompute"\nswap_space_gib = 4.0\n'
                                    'burstiness = 1.0\nrouter = "round_robin"\nnum_requests = 20\n')
    assert main(["simulate", "--scenario", path, "--json"]) == 0
    capsys.readouterr()


def test_a_scenario_file_key_is_checked_against_what_compare_and_plan_run(tmp_path, capsys):
    path = _scenario_file(tmp_path, "burstiness = 0.5\nnum_requests = 20\n")
    assert main(["compare", "--scenario", path, "--vary", "arrival=poisson,gamma", "--json"]) == 0  # gamma reads it
    assert main(["compare", "--scenario", path, "--vary", "seed=0,1", "--json"]) == 2
    assert "burstiness = 0.5 (only gamma arrivals have a burstiness" in capsys.readouterr().err
    path = _scenario_file(tmp_path, 'rate = 3.0\nrouter = "least_loaded"\n', "plan.toml")
    with pytest.warns(UserWarning) as got:
        assert main(_plan(tmp_path, "--scenario", path)) == 0  # a deployment's file is a fair base for plan
    assert [str(w.message) for w in got] == [
        f"{path}: rate = 3.0 (the search probes rates itself, up to --target-rate); router = 'least_loaded' (each "
        "probe runs one replica; plan multiplies replicas by the rate one sustains): set by this command, the "
        "file's values are not used"]
    capsys.readouterr()


def _plan(tmp_path, *extra: str) -> list[str]:
    return ["plan", "--target-rate", "2", "--slo-ttft-ms", "2000", "--slo-tpot-ms", "200", "--models", "qwen3-0.6b",
            "--hardware", "l4", "--probe-requests", "30", "--max-probes", "2", "--store", str(tmp_path / "store"),
            "--json", *extra]


def test_plan_checks_settings_against_its_candidates(tmp_path, capsys):
    """A setting counts in plan when some candidate reads it (the grid's --scheduler), and is refused
    when none does, typed or in the file."""
    path = _scenario_file(tmp_path, 'scheduler = "vllm"\nchunk_size = 256\n')
    assert main(_plan(tmp_path, "--scenario", path, "--scheduler", "sarathi")) == 0
    assert main(_plan(tmp_path, "--scheduler", "vllm,sarathi", "--chunk-size", "256")) == 0
    capsys.readouterr()
    assert main(_plan(tmp_path, "--scheduler", "static", "--preemption-mode", "swap")) == 2
    assert "--preemption-mode='swap' has no effect here: the static scheduler" in capsys.readouterr().err
    assert main(_plan(tmp_path, "--scenario", path, "--scheduler", "vllm")) == 2
    assert "chunk_size = 256 (only the sarathi scheduler" in capsys.readouterr().err


def test_plan_disaggregated_refuses_what_its_search_sets(tmp_path, capsys):
    argv = ["plan", "--disaggregated", "--target-rate", "5", "--slo-ttft-ms", "500", "--slo-tpot-ms", "50", "--json"]
    assert main([*argv, "--rate", "3"]) == 2
    assert "--rate=3.0 has no effect here: the search probes rates itself" in capsys.readouterr().err
    assert main([*argv, "--chunk-size", "100", "--scheduler", "vllm"]) == 2
    assert "--chunk-size=100 has no effect here" in capsys.readouterr().err


def test_tts_keeps_the_files_rate_and_requests_and_refuses_what_it_sweeps(tmp_path, capsys):
    from simulator.cli.tts import TTS_SETS

    assert set(TTS_SETS) == {"samples_per_prompt", "output_budget_tokens"}
    path = _scenario_file(tmp_path, 'arrival = "gamma"\nburstiness = 0.5\nrate = 12.0\nnum_requests = 3\n'
                                    'model = "qwen3-0.6b"\noutput_tokens = "8"\nprompt_tokens = "8"\n')
    assert main(["tts", "--scenario", path, "--samples", "1", "--budgets", "16", "--json"]) == 0
    capsys.readouterr()
    assert main(["tts", "--scenario", path, "--samples", "1", "--budgets", "16", "--samples-per-prompt", "4"]) == 2
    assert "--samples-per-prompt=4 has no effect here: tts sweeps --samples" in capsys.readouterr().err
    path = _scenario_file(tmp_path, 'samples_per_prompt = 4\nnum_requests = 2\nmodel = "qwen3-0.6b"\n'
                                    'output_tokens = "8"\nprompt_tokens = "8"\n', "tts.toml")
    with pytest.warns(UserWarning, match="samples_per_prompt = 4 \\(tts sweeps --samples\\): set by this command"):
        assert main(["tts", "--scenario", path, "--samples", "1", "--budgets", "16", "--json"]) == 0
