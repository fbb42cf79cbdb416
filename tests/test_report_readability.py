"""Reports a person can read (issue 18 item 5): log ticks with real values, units on the cost
figures, singular/plural and integer wording, compare pages that keep the base visible, name their
cost model and draw real CDFs, and bounded-memory digests of large tables."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

pytest.importorskip("plotly", reason="reports need the `report` extra (plotly)")

from reports.axes import log_ticks, tick_text  # noqa: E402
from reports.compare_report import render_compare  # noqa: E402
from reports.digest import LatencySketch, digest_requests, digest_steps  # noqa: E402
from reports.plan_report import num, probes_figure, rate_figure, replicas_text  # noqa: E402
from reports.render import render_html  # noqa: E402
from reports.results import RunData  # noqa: E402
from reports.series import time_edges  # noqa: E402
from reports.tables import iter_chunks  # noqa: E402
from tests.report_cases import PLAN_JSON, make_results, scan  # noqa: E402


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


def test_log_ticks_read_as_values_and_carry_the_slo():
    t = log_ticks(8, 70, marks=[50])
    assert t["tickvals"] == [10, 20, 50] and t["ticktext"] == ["10", "20", "50"]
    assert log_ticks(0.3, 2000)["ticktext"] == ["1", "10", "100", "1k"]  # wide: decades only
    assert [tick_text(v) for v in (0.05, 2, 1500, 20000, 3e6)] == ["0.05", "2", "1.5k", "20k", "3M"]


def test_plan_probe_axis_labels_the_50_ms_slo():
    doc = json.loads(PLAN_JSON.read_text())
    fig = probes_figure(doc)
    tpot = fig.layout.yaxis2
    assert tpot.type == "log" and tpot.dtick is None
    assert dict(zip(tpot.tickvals, tpot.ticktext))[doc["slo"]["tpot_ms"]] == "50"


def test_plan_wording():
    assert (replicas_text(1), replicas_text(3), num(99.0), num(500.0), num(12.5)) == (
        "1 replica", "3 replicas", "99", "500", "12.5")
    doc = json.loads(PLAN_JSON.read_text())
    doc["candidates"][0]["replicas_needed"] = 1
    assert "1 replica" in rate_figure(doc).data[0].text


def test_run_cost_part_has_named_figures_with_units(results):
    summary = json.loads((results["base"] / "summary.json").read_text())
    items = scan(render_html(results["base"])).items
    shown = {i["key"]: i for i in items if i["tag"] == "td" and i["key"]}
    m, hw = summary["metrics"], summary["provenance"]["hardware"]
    assert shown["price.usd_per_million_output_tokens"]["value"] == summary["price"]["usd_per_million_output_tokens"]
    assert shown["energy.j_per_output_token"]["value"] == summary["energy"]["j_per_output_token"]
    assert shown["achieved_tflops"]["value"] == pytest.approx(m["achieved_flops_fraction"] * hw["peak_flops"] / 1e12)
    assert shown["achieved_tb_per_s"]["value"] == pytest.approx(
        m["achieved_bandwidth_fraction"] * hw["memory_bandwidth_bytes_per_s"] / 1e12)
    kin = shown["kinetics.paper_intensity.eflops_per_output_token"]["value"]
    assert kin == pytest.approx(summary["kinetics"]["paper_intensity"]["eflops_per_output_token"] / 1e9)
    html_text = render_html(results["base"])
    for unit in ("USD / 1M tokens", "J / token", "TFLOP/s per GPU", "TB/s per GPU", "G eFLOPs / token"):
        assert f">{unit}<" in html_text
    assert "three counts" in html_text and ">c_comp_flops<" not in html_text.split("<details><summary>all fields")[0]


def _arr(v) -> np.ndarray:
    """A trace array as plotly wrote it: a list, or a base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _cdf_traces(html_text: str) -> list[dict]:
    start = html_text.index('Plotly.newPlot(                        "fig-cdf"')
    data = html_text[html_text.index("[", start):]
    return json.JSONDecoder().raw_decode(data)[0]


def test_compare_of_runs_keeps_an_equal_base_visible_and_draws_real_cdfs(results):
    html_text = render_html([results["base"], results["base"], *results["variants"]])  # base twice: equal runs
    traces = [t for t in _cdf_traces(html_text) if t.get("xaxis", "x") in ("x", "x1")]
    base, twin = traces[0], traces[1]
    assert np.array_equal(_arr(base["x"]), _arr(twin["x"])) and base["line"]["dash"] != twin["line"]["dash"]
    assert base["line"]["width"] > twin["line"]["width"] and base["marker"]["symbol"] != twin["marker"]["symbol"]
    n = json.loads((results["base"] / "summary.json").read_text())["metrics"]["completed"]
    assert len(_arr(base["x"])) == n and _arr(base["y"])[-1] == 100.0  # every finished request, not 3 points


def test_compare_json_names_its_cost_model_and_marks_percentiles_as_points(results):
    doc = json.loads(results["compare"].read_text())
    html_text = render_html(results["compare"])
    label = doc["base"]["provenance"]["prediction"]["label"]
    assert "Where the numbers come from" in html_text and label in html_text
    traces = _cdf_traces(html_text)
    assert all(t["mode"] == "markers" for t in traces) and "markers, not lines" in html_text


def test_compare_json_with_run_dirs_draws_cdfs_from_the_request_tables(results, tmp_path):
    doc = json.loads(results["compare"].read_text())
    root = results["compare"].parent
    doc["run_dirs"] = [p.name for p in [results["base"], *results["variants"]]]
    html_text = render_compare({**doc, "_source_dir": str(root)})
    traces = _cdf_traces(html_text)
    n = doc["base"]["metrics"]["completed"]
    assert len(_arr(traces[0]["x"])) == n and "Empirical CDFs of finished requests from each" in html_text


def test_overload_warning_in_the_run_report():
    summary = {"metrics": {"completed": 3}, "scenario": {}, "provenance": {},
               "overload": {"applicable": True, "overloaded": True, "offered_request_rate": 8.0,
                            "served_request_rate": 1.0, "sustainable_request_rate": 1.25,
                            "sustainable_rate_is_lower_bound": False, "backlog_growth_rate": 6.75,
                            "first_third_median_ttft_ms": 2e3, "last_third_median_ttft_ms": 9e4, "method": "m"}}
    html_text = render_html(summary)
    assert "overload-warning" in html_text and "8.00 req/s" in html_text and "about 1.25 req/s" in html_text


def test_digest_of_chunks_equals_digest_of_the_whole(tmp_path):
    rng = np.random.default_rng(1)
    n = 30_000
    fin = np.sort(rng.uniform(0, 100, n))
    req = {"status": np.where(rng.random(n) < 0.9, "finished", "failed").astype(object), "finish_s": fin,
           "num_preemptions": rng.integers(0, 3, n), "ttft_ms": rng.lognormal(4, 1, n),
           "tpot_ms": rng.normal(20, 2, n), "e2el_ms": rng.lognormal(8, 1, n)}
    path = tmp_path / "requests.csv"
    cols = list(req)
    with open(path, "w") as fh:
        fh.write(",".join(cols) + "\n")
        for i in range(n):
            fh.write(",".join(req[c][i] if c == "status" else repr(req[c][i].item()) for c in cols) + "\n")
    edges = time_edges(100.0, n)
    whole = digest_requests([req], edges)
    parts = digest_requests(iter_chunks(path, cols, chunk_rows=7_000), edges)
    assert np.array_equal(whole.finished, parts.finished) and np.array_equal(whole.preemptions, parts.preemptions)
    for key in ("ttft_ms", "tpot_ms", "e2el_ms"):
        (x0, y0), (x1, y1) = whole.cdf(key), parts.cdf(key)
        assert np.allclose(x0, x1, rtol=1e-15) and np.array_equal(y0, y1) and len(x0) <= 600


def test_histogram_sketch_quantiles_are_within_one_bin():
    v = np.random.default_rng(2).lognormal(5, 1.5, 200_000)
    sketch = LatencySketch(exact_max=1_000)
    for part in np.array_split(v, 9):
        sketch.add(part)
    x, q = sketch.points()
    assert not sketch.exact and len(x) <= 1000 and q[-1] == 1.0 and x[-1] == v.max()
    true = np.quantile(v, q, method="inverted_cdf")
    assert np.all(np.abs(x / true - 1) <= 10 ** (1 / 400) - 1 + 1e-9)  # one log bin: 0.58%


def test_steps_with_named_bound_and_source_columns():
    m = 6
    steps = {"start_s": np.arange(m, dtype=float), "duration_s": np.ones(m), "num_logits": np.ones(m),
             "num_prefill_tokens": np.zeros(m), "num_decode": np.ones(m), "num_running": np.ones(m),
             "kv_blocks_used": np.ones(m), "kv_blocks_total": np.full(m, 4.0), "flops": np.full(m, 1e12),
             "bytes": np.full(m, 1e9), "compute_s": np.zeros(m), "memory_s": np.ones(m), "comm_s": np.zeros(m),
             "overhead_s": np.zeros(m), "bound": np.array(["memory", "compute", "overhead"] * 2, dtype=object)}
    d = digest_steps([steps], time_edges(6.0, 0))
    assert sorted(d.sample["bound"].tolist()) == [0, 0, 1, 1, 2, 2]
    assert d.totals["duration_s"] == 6.0 and d.maxima["kv_usage_pct"][0] == 25.0


def test_parquet_tables_read_by_row_group(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 5_000
    table = pa.table({"status": ["finished"] * n, "finish_s": np.linspace(0, 10, n), "ttft_ms": np.arange(n) + 1.0,
                      "tpot_ms": np.ones(n), "e2el_ms": np.arange(n) + 2.0, "num_preemptions": np.zeros(n, np.int64),
                      "unused": np.zeros(n)})
    pq.write_table(table, tmp_path / "requests.parquet", row_group_size=1_000)
    chunks = list(iter_chunks(tmp_path / "requests.parquet", ("status", "finish_s", "ttft_ms"), chunk_rows=1_000))
    assert len(chunks) == 5 and set(chunks[0]) == {"status", "finish_s", "ttft_ms"}
    run = RunData(name="p", summary={"metrics": {"duration": 10.0, "submitted": n}},
                  requests_path=tmp_path / "requests.parquet")
    assert "fig-cdf" in render_html(run)
