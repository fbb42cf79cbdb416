"""Tests for `servesim compare` (simulator/studies/compare/, cli/compare.py): --vary
parsing, the cross product, exact deltas (a variant equal to the base has zero deltas), the
compare.json format, n/a columns and the exit code for bad keys."""
from __future__ import annotations

import json
import math

import pytest

from simulator.cli.main import COMMANDS, main
from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.compare.table import (
    COLUMNS,
    delta,
    format_compare,
    metric,
    table_rows,
)
from simulator.studies.compare.variants import (
    cross_product,
    merge_varies,
    parse_vary,
    run_compare,
)

TINY = ["--num-requests", "50", "--prompt-tokens", "uniform:32:256", "--output-tokens", "uniform:4:32", "--rate", "20"]
TINY_SCENARIO = Scenario(num_requests=50, prompt_tokens="uniform:32:256", output_tokens="uniform:4:32", rate=20.0)


def test_commands_registered():
    assert COMMANDS["compare"][0] == "simulator.cli.compare"
    assert COMMANDS["plan"][0] == "simulator.cli.plan"


def test_parse_vary_types_and_dashed_keys():
    assert parse_vary("max-num-seqs=64,128") == ("max_num_seqs", [64, 128])
    assert parse_vary("--tp=1,2") == ("tp", [1, 2])
    key, vals = parse_vary("rate=2.5,inf")
    assert key == "rate" and vals[0] == 2.5 and math.isinf(vals[1])
    assert parse_vary("max_num_batched_tokens=none,4096") == ("max_num_batched_tokens", [None, 4096])
    assert parse_vary("prompt_tokens=uniform:1:10,128") == ("prompt_tokens", ["uniform:1:10", "128"])
    assert parse_vary("scheduler=vllm, sarathi") == ("scheduler", ["vllm", "sarathi"])


@pytest.mark.parametrize("spec, fragment", [
    ("foo=1", "unknown key 'foo'; valid keys: model, hardware"),
    ("tp=x", "'x' is not a valid int"),
    ("tp", "expected KEY=V1,V2"),
    ("tp=", "no values"),
])
def test_parse_vary_errors(spec, fragment):
    with pytest.raises(ServesimError, match=fragment):
        parse_vary(spec)


def test_merge_varies_rejects_duplicate_key():
    with pytest.raises(ServesimError, match="given twice"):
        merge_varies(["tp=1", "--tp=2"])


def test_cross_product_order():
    assert cross_product({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert cross_product({}) == [{}]


def test_delta_hand_computed():
    assert delta(12.0, 10.0) == (2.0, 20.0)
    assert delta(7.5, 10.0) == (-2.5, -25.0)
    assert delta(None, 1.0) == (None, None)
    assert delta(3.0, 0.0) == (3.0, None)
    assert delta(0.0, 0.0) == (0.0, 0.0)


def test_unknown_vary_key_exits_2(capsys):
    assert main(["compare", "--vary", "no_such_field=1,2", *TINY]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'no_such_field'" in err and "max_num_seqs" in err


def test_invalid_vary_value_exits_2(capsys):
    assert main(["compare", "--vary", "scheduler=fifo", *TINY]) == 2
    assert "scheduler='fifo' is invalid" in capsys.readouterr().err


def test_compare_needs_vary(capsys):
    assert main(["compare", *TINY]) == 2


@pytest.fixture(scope="module")
def doc():
    # variant #1 equals the base (max_num_seqs 256 is the default); #2 differs
    return run_compare(TINY_SCENARIO.replace(slo_ttft_ms=50.0), {"max_num_seqs": [256, 2]}, jobs=1)


def test_compare_document_format(doc):
    assert set(doc) == {"kind", "servesim_version", "base", "variants", "varied_keys"}
    assert doc["kind"] == "compare" and doc["varied_keys"] == ["max_num_seqs"]
    assert [v["vary"] for v in doc["variants"]] == [{"max_num_seqs": 256}, {"max_num_seqs": 2}]
    assert doc["variants"][1]["summary"]["scenario"]["max_num_seqs"] == 2
    assert set(doc["base"]) >= {"servesim_version", "scenario", "provenance", "metrics"}
    assert "wall_time_s" not in doc["base"]  # deterministic documents


def test_identical_variant_has_zero_deltas(doc):
    same = doc["variants"][0]["summary"]
    assert same == doc["base"]
    for _, paths in COLUMNS:
        b = metric(doc["base"], paths)
        assert delta(metric(same, paths), b) == ((None, None) if b is None else (0.0, 0.0))
    header, rows = table_rows(doc)
    delta_row = rows[2]
    assert delta_row[0].strip() == "vs base"
    shown = [c for c in delta_row[2:-1] if c != "n/a"]  # last column: the cost model, no delta
    assert delta_row[-1] == "" and rows[0][-1] == rows[1][-1] != "n/a"
    assert shown and all(c == "+0 (+0.0%)" for c in shown)


def test_differing_variant_deltas_exact(doc):
    base, var = doc["base"]["metrics"], doc["variants"][1]["summary"]["metrics"]
    d, pct = delta(var["p99_ttft_ms"], base["p99_ttft_ms"])
    assert d == var["p99_ttft_ms"] - base["p99_ttft_ms"] and d > 0  # 2 sequences at a time queue up
    assert pct == pytest.approx(100 * d / base["p99_ttft_ms"], rel=1e-12)
    header, rows = table_rows(doc)
    col = header.index("p99 TTFT ms")
    assert rows[4][col] == f"{d:+.4g} ({pct:+.1f}%)"


def test_table_columns_na_when_absent(doc):
    stripped = json.loads(json.dumps(doc))
    for s in [stripped["base"]] + [v["summary"] for v in stripped["variants"]]:
        for section in ("price", "energy", "kinetics"):
            s.pop(section, None)
    header, rows = table_rows(stripped)
    for h in ("USD/Mtok", "J/tok", "eFLOPs/tok"):
        assert all(r[header.index(h)] == "n/a" for r in rows)
    assert "goodput req/s" in header  # an SLO is set
    enriched = json.loads(json.dumps(doc))
    for i, s in enumerate([enriched["base"]] + [v["summary"] for v in enriched["variants"]]):
        s["price"] = {"usd_per_million_output_tokens": 1.5 + i}
        s["energy"] = {"j_per_output_token": 0.25}
        s["kinetics"] = {"paper_intensity": {"eflops_per_output_token": 2e-8}}
    header, rows = table_rows(enriched)
    usd = header.index("USD/Mtok")
    assert [rows[0][usd], rows[1][usd], rows[2][usd], rows[3][usd], rows[4][usd]] == \
        ["1.5", "2.5", "+1 (+66.7%)", "3.5", "+2 (+133.3%)"]
    assert rows[0][header.index("J/tok")] == "0.25" and rows[0][header.index("eFLOPs/tok")] == "2e-08"
    assert "base: llama-3-8b" in format_compare(enriched)


def test_cli_json_out_and_jobs(tmp_path, capsys):
    args = ["compare", *TINY, "--vary", "tp=1,2", "--vary", "chunk-size=256,512"]
    assert main(args + ["--json", "--jobs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(printed)
    assert doc["varied_keys"] == ["tp", "chunk_size"] and len(doc["variants"]) == 4
    assert (tmp_path / "compare.json").read_text() == printed
    assert doc["run_dirs"] == ["runs/base"] + [f"runs/variant-{i}" for i in range(1, 5)]  # --out: the runs' tables
    assert main(args + ["--json", "--jobs", "2"]) == 0  # process pool: same document (no run tables without --out)
    assert json.loads(capsys.readouterr().out) == {k: v for k, v in doc.items() if k != "run_dirs"}
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["run", "tp", "chunk_size"] and "vs base" in text
