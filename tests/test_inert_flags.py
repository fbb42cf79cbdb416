"""A typed flag that the final scenario never reads is refused with one line naming the flag, its
value, why it does nothing and what would make it count (scenario.INERT_RULES), never silently
ignored; the same flags where they do count run."""
import pytest

from simulator.cli.main import main

TRACE = "../shared/reference/traces/splitwise_conv.csv"
FEW = ["--num-requests", "20"]

REFUSED = [
    (["--rate", "20", "--trace", TRACE], "--rate=20.0", "trace's timestamps", "trace_arrivals='rate'"),
    (["--arrival", "gamma", "--trace", TRACE], "--arrival='gamma'", "trace's timestamps", "trace_arrivals='rate'"),
    (["--rate", "20", "--closed-loop-users", "4"], "--rate=20.0", "closed_loop_users", "closed_loop_users unset"),
    (["--burstiness", "0.5"], "--burstiness=0.5", "only gamma arrivals", "arrival='gamma'"),
    (["--output-tokens", "64", "--trace", TRACE], "--output-tokens='64'", "trace gives every request's lengths",
     "no trace"),
    (["--num-speculative-tokens", "3"], "--num-speculative-tokens=3", "off without draft_model", "a draft_model"),
    (["--acceptance-rate", "0.7"], "--acceptance-rate=0.7", "off without draft_model", "a draft_model"),
    (["--swap-space-gib", "2"], "--swap-space-gib=2.0", "only swap preemption", "preemption_mode='swap'"),
    (["--kv-budget", "100"], "--kv-budget=100.0", "dense KV policy", "a kv_policy other than dense"),
    (["--kv-heavy-fraction", "0.3", "--kv-policy", "scissorhands", "--kv-budget", "0.5"],
     "--kv-heavy-fraction=0.3", "only h2o", "kv_policy='h2o'"),
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
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=[" ".join(a[:2]) + "+" + " ".join(a[2:4]) for a in ACCEPTED])
def test_the_same_flags_run_where_they_count(argv, capsys):
    assert main(["simulate", *argv, *FEW, "--json"]) == 0, capsys.readouterr().err
