"""Issue 18, a newcomer's first hour with the command line: `--version`, defaults in every help
text, case-insensitive choice values, one-line errors that name the flag or the file, hints with
paths that work from any directory, the `models` listing (aligned columns, hosts listed), `tts`
with the other commands' flags and a note when a budget never binds, and no folders left in the
directory a command runs from."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hardware import device_names, host_names, load_device, load_host
from hardware.catalog import DATA_DIR
from hardware.host import HOSTS_DIR
from simulator.cli import main
from simulator.cli.catalog import table
from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.sweep_store import cache_dir


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- --version and help defaults -----------------------------------------------------------------

def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"servesim {version('servesim')}"


def _help_of(capsys, command: str, flag: str) -> str:
    """The help paragraph of one option, joined onto one line."""
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(flag + " ") or line.strip() == flag)
    para = [lines[start]]
    for line in lines[start + 1:]:
        if line.strip().startswith("-") or not line.startswith(" " * 10):
            break
        para.append(line)
    return " ".join(" ".join(para).split())


@pytest.mark.parametrize("command,flag,default", [
    ("simulate", "--max-num-seqs", str(Scenario().max_num_seqs)),  # a scenario option: the Scenario's default
    ("simulate", "--rate", str(Scenario().rate)),
    ("simulate", "--scheduler", Scenario().scheduler),
    ("simulate", "--dtype", Scenario().dtype),
    ("compare", "--chunk-size", str(Scenario().chunk_size)),
    ("tts", "--samples", "1,4,16"),  # a command's own option: argparse's default
    ("cost", "--samples", "1"),
    ("profile", "--device", "cpu"),
])
def test_help_shows_defaults(capsys, command, flag, default):
    assert f"(default: {default})" in _help_of(capsys, command, flag)


def test_help_shows_no_empty_defaults(capsys):
    for command in ("simulate", "plan", "cost", "tts", "compare"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "(default: None)" not in out and "(default: False)" not in out, command


# --- case-insensitive choices ----------------------------------------------------------------------

def test_choice_values_are_case_insensitive():
    s = Scenario(scheduler="vLLM", dtype="BF16", router="Least_Loaded", kv_policy="H2O", kv_budget=64)
    assert (s.scheduler, s.dtype, s.router, s.kv_policy) == ("vllm", "bf16", "least_loaded", "h2o")
    with pytest.raises(ServesimError, match=r"scheduler='vLLMx' is invalid; allowed: static, vllm, sarathi"):
        Scenario(scheduler="vLLMx")


def test_cli_scheduler_case_insensitive(capsys):
    code, out, err = run(capsys, "simulate", "--scheduler", "vLLM", "--num-requests", "5", "--json")
    assert code == 0, err
    assert json.loads(out)["scenario"]["scheduler"] == "vllm"


def test_device_and_host_names_are_case_insensitive(capsys):
    assert load_device("H100-SXM") == load_device("h100-sxm")
    assert load_host("Xeon-8462Y") == load_host("xeon-8462y")
    runs = []
    for name in ("H100-SXM", "h100-sxm"):
        code, out, err = run(capsys, "simulate", "--hardware", name, "--num-requests", "20", "--json")
        assert code == 0, err
        metrics = json.loads(out)["metrics"]
        metrics.pop("wall_time_s", None)  # the only field that may differ between two equal runs
        runs.append(metrics)
    assert runs[0] == runs[1]


# --- one-line errors naming the flag or the file ----------------------------------------------------

def test_plan_model_and_models_is_an_error(capsys):
    code, out, err = run(capsys, "plan", "--model", "llama-3-8b", "--models", "qwen3-8b", "--target-rate", "1")
    assert code == 2 and out == ""
    assert err == ("servesim plan: error: --model llama-3-8b and --models both name models; list every "
                   "candidate in one option: --models llama-3-8b,qwen3-8b\n")


@pytest.mark.parametrize("extra,message", [
    (["--attention", "topk"], "--attention topk needs --budget N (attended tokens per query)"),
    (["--attention", "block_topk", "--budget", "64"], "--attention block_topk needs --block-size N"),
    (["--budget", "64"], "--budget 64 applies to --attention topk or block_topk only (got --attention dense)"),
    (["--attention", "topk", "--budget", "64", "--block-size", "16"], "--block-size 16 applies to --attention "
                                                                      "block_topk only"),
])
def test_cost_sparse_attention_errors_name_the_flag(capsys, extra, message):
    code, _, err = run(capsys, "cost", "--model", "qwen3-0.6b", "--prompt-tokens", "64", "--output-tokens", "64",
                       *extra)
    assert code == 2 and message in err and err.count("\n") == 1


def test_cost_attention_is_case_insensitive(capsys):
    code, out, err = run(capsys, "cost", "--model", "qwen3-0.6b", "--prompt-tokens", "64", "--output-tokens", "64",
                         "--attention", "TopK", "--budget", "32", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"]["attention"] == "topk"


def test_report_on_a_non_json_file_names_it(capsys, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    code, _, err = run(capsys, "report", str(f), "-o", str(tmp_path / "r.html"))
    assert code == 2 and str(f) in err and "not valid JSON" in err and err.count("\n") == 1


# --- hints that work from any directory --------------------------------------------------------------

def test_unknown_device_and_host_hints_are_absolute_paths():
    with pytest.raises(ValueError) as exc:
        load_device("no-such-gpu")
    hint = str(DATA_DIR / "h100-sxm.toml")
    assert Path(hint).is_absolute() and Path(hint).is_file() and hint in str(exc.value)
    with pytest.raises(ValueError) as exc:
        load_host("no-such-cpu")
    hint = str(HOSTS_DIR / "xeon-8462y.toml")
    assert Path(hint).is_absolute() and Path(hint).is_file() and hint in str(exc.value)


# --- `servesim models` -------------------------------------------------------------------------------

def test_table_columns_fit_the_widest_cell():
    assert table(["a", "bb", "c"], [["xxx", "1", "n"], ["y", "22222", "note"]], "<>") == [
        "a       bb  c",
        "xxx      1  n",
        "y    22222  note",
    ]


def _blocks(out: str) -> list[list[str]]:
    blocks, cur = [], []
    for line in out.splitlines():
        if line.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks + ([cur] if cur else [])


def test_models_rows_align_and_hosts_are_listed(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    blocks = {b[0].split()[0]: b for b in _blocks(out)}
    devices = blocks["device"]
    name_col = devices[0].index("name")
    for line, name in zip(devices[1:], device_names()):  # the last column starts where its header does
        assert line.startswith(name + " ") and line.index(load_device(name).display_name) == name_col, line
    hosts = blocks["host"]
    assert [line.split()[0] for line in hosts[1:]] == host_names()
    name_col = hosts[0].index("name")
    for line, name in zip(hosts[1:], host_names()):
        h = load_host(name)
        assert line.index(h.display_name) == name_col and f" {h.cores} " in line
    models = blocks["model"]
    notes_col = models[0].index("notes")
    assert all(len(line) <= notes_col or line[notes_col - 1] == " " for line in models[1:-1])


# --- tts ------------------------------------------------------------------------------------------

TTS = ["tts", "--samples", "1", "--budgets", "50,200", "--num-requests", "3", "--prompt-tokens", "64",
       "--output-tokens", "100"]


@pytest.mark.parametrize("json_flag", ["--json", "--table-json"])
@pytest.mark.parametrize("model_flag", ["--model", "--models"])
def test_tts_json_and_model_flags(capsys, json_flag, model_flag):
    code, out, err = run(capsys, *TTS, model_flag, "qwen3-0.6b", json_flag)
    assert code == 0, err
    points = json.loads(out)["points"]
    # every output is 100 tokens: budget 50 caps them all (reached), budget 200 never binds
    assert [(p["model"], p["budget"], p["max_output_tokens"], p["budget_reached"]) for p in points] == [
        ("qwen3-0.6b", 50, 50, True), ("qwen3-0.6b", 200, 100, False)]


def test_tts_table_says_when_a_budget_never_binds(capsys):
    code, out, err = run(capsys, *TTS, "--model", "qwen3-0.6b")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("qwen3-0.6b")]
    assert len(rows) == 2
    assert "budget not reached" not in rows[0]
    assert rows[1].endswith("budget not reached (longest output 100 tokens)")
    assert "draw longer outputs with --output-tokens" in out


def test_tts_model_list_and_default_model(capsys):
    code, out, err = run(capsys, *TTS, "--model", "qwen3-0.6b,llama-3.2-1b", "--json")
    assert code == 0, err
    assert [p["model"] for p in json.loads(out)["points"]] == ["qwen3-0.6b"] * 2 + ["llama-3.2-1b"] * 2
    code, out, err = run(capsys, *TTS, "--budgets", "50", "--json")  # no --model: the scenario's
    assert code == 0, err
    assert [p["model"] for p in json.loads(out)["points"]] == [Scenario().model]


# --- nothing left in the working directory -------------------------------------------------------

def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SERVESIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "servesim"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "servesim"
    monkeypatch.setenv("SERVESIM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_plan_store_goes_to_the_cache_not_the_cwd(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("SERVESIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run(capsys, "plan", "--prompt-tokens", "32", "--output-tokens", "8", "--probe-requests", "40",
                         "--max-probes", "2", "--target-rate", "5", "--jobs", "1")
    assert code == 0, err
    assert list(work.iterdir()) == []
    stores = list((tmp_path / "xdg" / "servesim" / "sweeps").iterdir())
    assert len(stores) == 1 and len(list(stores[0].glob("*.json"))) == 1
    assert f"from the store {stores[0]}" in out
    assert os.getcwd() == str(work)
