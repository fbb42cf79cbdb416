"""`compare --out` writes each run's requests table beside compare.json, and the compare report
draws real latency CDFs from them (issue 18 item 5)."""
from __future__ import annotations

import json

import pandas as pd

from simulator.cli import main
from simulator.scenario import Scenario
from simulator.studies import run_compare


def test_runs_dir_holds_each_runs_requests(tmp_path):
    doc = run_compare(Scenario(num_requests=30), {"max_num_seqs": [4, 64]}, jobs=1, runs_dir=tmp_path / "runs")
    assert doc["run_dirs"] == ["runs/base", "runs/variant-1", "runs/variant-2"]
    for rel, summary in zip(doc["run_dirs"], [doc["base"]] + [v["summary"] for v in doc["variants"]]):
        req = pd.read_csv(tmp_path / rel / "requests.csv")
        assert len(req) == 30 and (req["status"] == "finished").sum() == summary["metrics"]["completed"]
        assert json.loads((tmp_path / rel / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_compare_report_draws_cdfs_from_the_run_tables(tmp_path, capsys):
    out, html = tmp_path / "cmp", tmp_path / "cmp.html"
    assert main(["compare", "--num-requests", "30", "--vary", "max_num_seqs=4", "--out", str(out),
                 "--report", str(html)]) == 0
    text = html.read_text()
    assert "Empirical CDFs of finished requests" in text
    # a report alone (no --out) reads the tables from a temporary directory
    html2 = tmp_path / "alone.html"
    assert main(["compare", "--num-requests", "30", "--vary", "max_num_seqs=4", "--report", str(html2)]) == 0
    assert "Empirical CDFs of finished requests" in html2.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.html", "cmp", "cmp.html"]
