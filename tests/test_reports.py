"""Reports from small real runs: structure, and the numbers on the page equal the result JSON."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("plotly", reason="reports need the `report` extra (plotly)")

from reports import render_report  # noqa: E402
from reports.page import fmt  # noqa: E402
from reports.render import render_html  # noqa: E402
from reports.results import RunData  # noqa: E402
from reports.run_report import HEADLINE, LATENCY_ROWS, LATENCY_STATS  # noqa: E402
from reports.series import binned_mean, binned_rate, binned_sum, ecdf_points, time_edges  # noqa: E402
from simulator.cli import main  # noqa: E402
from tests.report_cases import make_results, scan  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN_CHARTS = ["fig-cdf", "fig-throughput", "fig-batch", "fig-kv", "fig-steps", "fig-roofline", "fig-eflops"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _charts(html_text: str) -> list[str]:
    return [i for i in scan(html_text).ids if i.startswith("fig-")]


def test_run_headline_and_percentiles_equal_summary(results):
    html_text = render_html(results["variants"][1])
    metrics = _summary(results["variants"][1])["metrics"]
    items = scan(html_text).items
    cards = {i["key"]: i for i in items if "card" in i["class"]}
    summary = _summary(results["variants"][1])
    expected = [k for k, *_ in HEADLINE if metrics.get(k) is not None]
    assert list(cards)[: len(expected)] == expected
    assert cards["price.usd_per_million_output_tokens"]["value"] == summary["price"]["usd_per_million_output_tokens"]
    assert cards["energy.j_per_output_token"]["value"] == summary["energy"]["j_per_output_token"]
    kin = summary["kinetics"]["paper_intensity"]["eflops_per_output_token"]
    assert cards["kinetics.paper_intensity.eflops_per_output_token"]["value"] == kin
    for key, _, _, scale in HEADLINE:
        if key in cards:
            assert cards[key]["value"] == metrics[key]  # exact: repr round-trips through JSON
            assert fmt(metrics[key] * scale if scale != 1 else metrics[key]) in cards[key]["text"]
    assert cards["num_preemptions"]["value"] == metrics["num_preemptions"] > 0
    cells = [i for i in items if i["tag"] == "td" and i["key"] in dict(LATENCY_ROWS)]
    assert len(cells) == len(LATENCY_ROWS) * len(LATENCY_STATS)
    for k, (key, _) in enumerate(LATENCY_ROWS):
        row = cells[k * len(LATENCY_STATS):(k + 1) * len(LATENCY_STATS)]
        assert [c["value"] for c in row] == [metrics[f"{s}_{key}"] for s in LATENCY_STATS]
        assert [c["text"] for c in row] == [fmt(metrics[f"{s}_{key}"]) for s in LATENCY_STATS]


def test_run_report_structure_self_contained(results, tmp_path):
    out = render_report([results["base"]], tmp_path / "run.html")
    html_text = out.read_text()
    s = scan(html_text)
    assert _charts(html_text) == RUN_CHARTS
    for sid in ("headline", "provenance", "latency", "throughput", "kv", "steps", "kinetics", "energy", "price"):
        assert sid in s.ids
    assert html_text.count("plotly.js v") == 1 and s.scripts_with_src == 0 and s.links == 0
    prov = _summary(results["base"])["provenance"]
    assert prov["hardware"]["ridge_flops_per_byte"] == pytest.approx(989.4e12 / 3350e9)  # h100-sxm bf16
    shown = {i["value"] for i in s.items if i["tag"] == "td"}
    assert {prov["seed"], prov["hardware"]["peak_flops"], prov["hardware"]["ridge_flops_per_byte"]} <= shown
    assert "preemption count is placed at the time that request finished" not in html_text
    assert "preemptions (cumulative)" in html_text  # exact times from steps.csv


def test_summary_only_and_extra_sections_render():
    """A summary dict with no CSVs: no time series, and kinetics/energy/price sections shown."""
    summary = {"servesim_version": "x", "scenario": {"model": "m"}, "provenance": {},
               "metrics": {"completed": 3, "mean_ttft_ms": 1.5},
               "kinetics": {"paper_intensity": {"eflops_compute": 4.0e15, "eflops_memory": 1.0e15,
                                                "eflops_compute_per_output_token": 2.0e12,
                                                "eflops_memory_per_output_token": 5.0e11}},
               "energy": {"j_per_output_token": 0.25}, "price": {"usd_per_million_output_tokens": 1.75,
                                                                      "usd_per_gpu_hour": 2.69, "source": "list"}}
    html_text = render_html(summary)
    assert _charts(html_text) == ["fig-eflops"]
    cards = {i["key"]: i["value"] for i in scan(html_text).items if "card" in i["class"]}
    assert cards == {"completed": 3, "mean_ttft_ms": 1.5, "price.usd_per_million_output_tokens": 1.75,
                     "energy.j_per_output_token": 0.25}
    assert "No requests / steps table" in html_text and ">list<" in html_text


def test_compare_json_side_by_side_and_deltas(results):
    doc = json.loads(results["compare"].read_text())
    html_text = render_html(results["compare"])
    assert _charts(html_text) == ["fig-cdf", "fig-bars"]
    items = scan(html_text).items
    summaries = [doc["base"]] + [v["summary"] for v in doc["variants"]]
    for key in ("output_throughput", "p99_ttft_ms", "median_tpot_ms", "num_preemptions"):
        values = [i for i in items if i["key"] == key and "delta" not in i["class"]]
        assert [v["value"] for v in values] == [s["metrics"][key] for s in summaries]
        deltas = [i["value"] for i in items if i["key"] == key and "delta" in i["class"]]
        base = summaries[0]["metrics"][key]
        assert deltas == [None if base == 0 else (s["metrics"][key] - base) / abs(base) * 100 for s in summaries[1:]]
    kv = [i for i in items if i["key"] == "mean_kv_cache_usage" and "delta" not in i["class"]]
    assert [i["text"] for i in kv] == [fmt(s["metrics"]["mean_kv_cache_usage"] * 100) for s in summaries]  # in %
    assert "max_num_seqs=16" in html_text and "p50, p90 and p99" in html_text


def test_compare_of_run_dirs_overlays_full_cdfs(results):
    dirs = [results["base"], *results["variants"]]
    html_text = render_html(dirs)
    assert _charts(html_text) == ["fig-cdf", "fig-bars"]
    assert html_text.count('"legendgroup":"variant0"') == 3  # one CDF line per latency panel
    varied = [i["value"] for i in scan(html_text).items if i["tag"] == "td" and not i["key"]]
    assert [16, 256] == sorted({v for v in varied if v in (16, 256)})


def test_plan_report_values(results):
    doc = json.loads(results["plan"].read_text())
    html_text = render_html(doc)
    assert _charts(html_text) == ["fig-pareto", "fig-rates", "fig-probes"]
    cards = {i["key"]: i["value"] for i in scan(html_text).items if "card" in i["class"]}
    best = doc["candidates"][doc["cheapest"]]
    assert cards["target_rate"] == doc["target_rate"] and cards["slo.ttft_ms"] == doc["slo"]["ttft_ms"]
    assert cards["cheapest.price_usd_per_hour"] == best["price_usd_per_hour"]
    assert cards["num_feasible"] == sum(c["feasible"] for c in doc["candidates"])
    cells = [i["value"] for i in scan(html_text).items if i["tag"] == "td"]
    rates = cells[:10 * len(doc["candidates"])][0::10]
    assert rates == [c["max_rate_per_replica"] for c in doc["candidates"]]
    assert "SLO p99 TTFT 500 ms" in html_text and "infeasible" in html_text
    header = html_text[html_text.index("<header>"):html_text.index("</header>")]
    assert "SLO p99 TTFT 500 ms / TPOT 50 ms" in header and "500.0" not in header and "p99.0" not in header


def test_large_run_is_downsampled_but_tables_exact():
    """Synthetic 200k steps / 100k requests: the page stays light, the tables keep their numbers."""
    rng = np.random.default_rng(0)
    n, m = 100_000, 200_000
    arrival = np.sort(rng.uniform(0, 2500, n))
    ttft = rng.exponential(200.0, n)
    req = {"status": np.array(["finished"] * n, dtype=object), "arrival_s": arrival,
           "finish_s": arrival + 5.0, "ttft_ms": ttft, "tpot_ms": rng.normal(14, 1, n), "e2el_ms": ttft + 5e3,
           "num_preemptions": rng.integers(0, 2, n)}
    start = np.linspace(0, 2500, m)
    ones = np.ones(m)
    steps = {"start_s": start, "duration_s": np.full(m, 0.0125), "num_logits": ones * 100,
             "num_prefill_tokens": ones * 512, "num_decode": ones * 99, "num_running": ones * 100,
             "kv_blocks_used": ones * 10, "kv_blocks_total": ones * 100, "compute_s": ones * 0.01,
             "memory_s": ones * 0.0025, "comm_s": 0 * ones, "overhead_s": 0 * ones, "flops": ones * 1e13,
             "bytes": ones * 2e10, "bound": 0 * ones}
    summary = {"metrics": {"p99_ttft_ms": 921.034037197618}, "scenario": {},
               "provenance": {"hardware": {"peak_flops": 989.4e12, "memory_bandwidth_bytes_per_s": 3.35e12}}}
    html_text = render_html(RunData(name="big", summary=summary, requests=req, steps=steps))
    data_bytes = len(html_text.encode()) - html_text.index("</head>")
    assert data_bytes < 600_000, data_bytes  # plotly.js (~4.8 MB) is the rest
    cell = [i for i in scan(html_text).items if i["key"] == "ttft_ms" and i["tag"] == "td"]
    assert cell[3]["value"] == 921.034037197618


def test_series_points_are_exact_samples():
    v = np.arange(10_000, dtype=float)[::-1]
    x, y = ecdf_points(v, max_points=400)
    assert len(x) <= 400 and x[0] == 0 and x[-1] == 9999 and y[-1] == 1.0
    assert np.all(y == (x + 1) / 10_000)  # each point is a sample at its exact ECDF height
    assert np.sum(x >= 9900) >= 90  # the top 1% keeps a quarter of the points
    x, y = ecdf_points(np.array([3.0, 1.0, np.nan, 2.0]))
    assert x.tolist() == [1, 2, 3] and y.tolist() == [1 / 3, 2 / 3, 1]
    edges = time_edges(10.0, 1_000_000)
    assert len(edges) == 301 and edges[-1] == 10.0 and len(time_edges(10.0, 15)) == 21
    t, w = np.array([0.0, 0.5, 9.99, 10.0]), np.array([1.0, 2.0, 3.0, 4.0])
    e = time_edges(10.0, 0)
    assert binned_sum(t, w, e).sum() == 10.0 and binned_sum(t, w, e)[-1] == 7.0
    assert binned_rate(t, w, e)[:2].tolist() == [1.0 / 0.5, 2.0 / 0.5]  # bins are [lo, hi)
    x, d = np.array([2.0, 4.0, 6.0, 8.0]), np.array([1.0, 3.0, 1.0, 3.0])
    assert binned_mean(t, x, d, e)[-1] == (6.0 * 1 + 8.0 * 3) / 4 and np.isnan(binned_mean(t, x, d, e)[5])


def test_cli_report_and_simulate_report(results, tmp_path, capsys):
    assert main(["report", str(results["base"]), "-o", str(tmp_path / "a.html")]) == 0
    assert (tmp_path / "a.html").stat().st_size > 1_000_000
    assert main(["simulate", "--num-requests", "20", "--report", str(tmp_path / "b.html")]) == 0
    assert "b.html" in capsys.readouterr().out and _charts((tmp_path / "b.html").read_text()) == RUN_CHARTS
    assert main(["report", str(results["plan"]), str(results["base"]), "-o", str(tmp_path / "c.html")]) == 2
    assert "reported on its own" in capsys.readouterr().err


def test_cli_names_the_extra_without_plotly(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "plotly", None)
    assert main(["report", str(results["base"]), "-o", str(tmp_path / "a.html")]) == 2
    assert main(["simulate", "--num-requests", "5", "--report", str(tmp_path / "b.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("pip install 'servesim[report]'") == 2 and not (tmp_path / "b.html").exists()


def test_import_direction():
    for path in (ROOT / "reports").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("simulator", "hardware", "profiles"), (path.name, name)
    code = ("import sys, simulator, simulator.cli.main, simulator.cli.simulate, simulator.cli.report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('plotly', 'reports')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compare_and_plan_report_flags(tmp_path, capsys):
    from simulator.cli import main

    assert main(["compare", "--num-requests", "20", "--vary", "max-num-seqs=8,64", "--report",
                 str(tmp_path / "c.html")]) == 0
    assert main(["plan", "--target-rate", "4", "--slo-ttft-ms", "800", "--models", "qwen3-0.6b", "--hardware", "l4",
                 "--probe-requests", "60", "--max-probes", "3", "--store", str(tmp_path / "store"),
                 "--report", str(tmp_path / "p.html")]) == 0
    assert "fig-bars" in (tmp_path / "c.html").read_text()
    assert "fig-pareto" in (tmp_path / "p.html").read_text()
