"""Tests for `servesim plan` (simulator/studies/plan/, studies/sweep_store.py, cli/plan.py):
Pareto/cheapest on hand-made candidates, the plan.json format, the store (atomic files, config
hashes, resume after a kill without recomputing), and the Ray backend against the local one."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.scenario import Scenario
from simulator.studies.plan.search import SearchSettings, Slo
from simulator.studies.plan.sweep import (
    cheapest_index,
    pareto_indices,
    plan_tasks,
    run_sweep,
)
from simulator.studies.sweep_store import SweepStore, canonical_json, config_hash

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--prompt-tokens", "uniform:32:128", "--output-tokens", "uniform:8:24", "--probe-requests", "60",
        "--max-probes", "5", "--target-rate", "50", "--slo-ttft-ms", "200", "--slo-tpot-ms", "30"]
GRID = ["--hardware", "h100-sxm,l4", "--tp", "1,2"]


def cand(price, ttft, tpot, feasible=True):
    return {"feasible": feasible, "price_usd_per_hour": price, "p99_ttft_ms": ttft, "p99_tpot_ms": tpot}


def test_pareto_and_cheapest_hand_made():
    cs = [cand(10, 300, 20), cand(10, 200, 20), cand(20, 100, 10), cand(30, 100, 10),
          cand(5, 1, 1, feasible=False), cand(15, 250, 5), cand(10, 200, 20)]
    # 0 is dominated by 1; 3 by 2; 4 is infeasible; 6 ties 1 exactly (neither dominates)
    assert pareto_indices(cs) == [1, 6, 5, 2]
    assert cheapest_index(cs) == 1
    assert cheapest_index([cand(1, 1, 1, feasible=False)]) is None and pareto_indices([]) == []


def test_config_hash_is_canonical():
    assert config_hash({"b": 1, "a": [1.5, None]}) == config_hash({"a": [1.5, None], "b": 1})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert config_hash({"a": 1}) != config_hash({"a": 1.5})


def test_store_atomic_save_and_load(tmp_path):
    store = SweepStore(tmp_path / "s")
    assert store.load("k") is None
    path = store.save("k", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1} and store.load("k") == {"x": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["k.json"]  # no temp files left
    path.write_text("{truncated")
    assert store.load("k") is None  # unreadable -> recomputed, never trusted


def tiny_tasks(**grid):
    base = Scenario(prompt_tokens="uniform:32:128", output_tokens="uniform:8:24")
    return plan_tasks(base, grid or {"tp": [1, 2]}, settings=SearchSettings(probe_requests=60, max_probes=5),
                      slo=Slo(ttft_ms=200.0, tpot_ms=30.0), target_rate=50.0)


def test_tasks_force_one_replica_and_probe_size():
    tasks = tiny_tasks()
    assert [t["config"] for t in tasks] == [{"tp": 1}, {"tp": 2}]
    assert all(t["scenario"]["replicas"] == 1 and t["scenario"]["num_requests"] == 60 for t in tasks)
    assert len({config_hash(t) for t in tasks}) == 2


def test_run_sweep_reuses_store(tmp_path):
    tasks, store = tiny_tasks(tp=[1, 2], hardware=["h100-sxm"]), SweepStore(tmp_path)
    first, computed, reused = run_sweep(tasks, store, jobs=1)
    assert (computed, reused) == (2, 0)
    again, computed, reused = run_sweep(tasks, store, jobs=1)
    assert (computed, reused) == (0, 2) and again == first
    assert [list(c["config"]) for c in again] == [["tp", "hardware"]] * 2  # grid order, as when fresh


def test_cli_plan_json_format(tmp_path, capsys):
    assert main(["plan", *TINY, *GRID, "--json", "--store", str(tmp_path / "s"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(printed)
    assert (tmp_path / "plan.json").read_text() == printed
    assert set(doc) == {"kind", "servesim_version", "target_rate", "slo", "candidates", "pareto", "cheapest"}
    assert doc["kind"] == "plan" and doc["target_rate"] == 50.0
    assert doc["slo"] == {"ttft_ms": 200.0, "tpot_ms": 30.0, "percentile": 99.0}
    assert [c["config"] for c in doc["candidates"]] == [
        {"hardware": h, "tp": t} for h in ("h100-sxm", "l4") for t in (1, 2)]
    prices = {"h100-sxm": 2.69, "l4": 0.71}
    for c in doc["candidates"]:
        assert set(c) >= {"config", "scenario", "max_rate_per_replica", "replicas_needed", "price_usd_per_hour",
                          "p99_ttft_ms", "p99_tpot_ms", "feasible", "reason", "probes"}
        assert all(set(p) >= {"rate", "ok", "p99_ttft_ms", "p99_tpot_ms"} for p in c["probes"])
        if c["feasible"]:
            assert c["replicas_needed"] >= math.ceil(50.0 / c["max_rate_per_replica"])
            assert c["price_usd_per_hour"] == pytest.approx(
                c["replicas_needed"] * c["config"]["tp"] * prices[c["config"]["hardware"]])
        else:
            assert c["reason"]
    feasible = [i for i, c in enumerate(doc["candidates"]) if c["feasible"]]
    assert doc["cheapest"] == min(feasible, key=lambda i: doc["candidates"][i]["price_usd_per_hour"])
    assert doc["cheapest"] in doc["pareto"]
    assert main(["plan", *TINY, *GRID, "--store", str(tmp_path / "s")]) == 0  # text form, from the store
    text = capsys.readouterr().out
    assert "cheapest: #" in text and "Pareto frontier" in text and "0 computed, 4 from the store" in text


def test_cli_plan_errors(monkeypatch, capsys):
    assert main(["plan", *TINY, "--vary", "bogus=1"]) == 2
    assert main(["plan", *TINY, "--ray-address", "auto"]) == 2
    assert "--ray-address needs --ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["plan", *TINY, "--ray"]) == 2
    assert "pip install 'servesim[ray]'" in capsys.readouterr().err


def _plan_cmd(store: Path) -> list[str]:
    # 6 candidates of ~0.2 s each on one process, so a kill lands between candidates
    return [sys.executable, "-m", "simulator.cli", "plan", "--target-rate", "50", "--slo-ttft-ms", "1000",
            "--probe-requests", "100", "--max-probes", "4", "--output-tokens", "uniform:32:128", "--tp", "1,2",
            "--hardware", "h100-sxm,a100-80gb,l40s", "--jobs", "1", "--store", str(store)]


def _snapshot(store: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.glob("*.json")}


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    store = tmp_path / "store"
    proc = subprocess.Popen(_plan_cmd(store), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(store.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    before = _snapshot(store)
    assert 1 <= len(before) < 6, f"the kill must land mid-sweep, found {len(before)} finished"
    resumed = subprocess.run(_plan_cmd(store) + ["--out", str(tmp_path / "a")], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert f"{6 - len(before)} computed, {len(before)} from the store" in resumed
    after = _snapshot(store)
    assert len(after) == 6 and all(after[name] == before[name] for name in before)  # untouched
    fresh = subprocess.run(_plan_cmd(tmp_path / "fresh") + ["--out", str(tmp_path / "b"), "--jobs", "2"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "6 computed, 0 from the store" in fresh
    assert (tmp_path / "a" / "plan.json").read_text() == (tmp_path / "b" / "plan.json").read_text()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray not installed (pip install 'servesim[ray]')")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", os.environ.get("RAY_AUTH_MODE", "disabled"))  # a throwaway local cluster
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
        yield ray
        ray.shutdown()


def test_ray_backend_matches_local(ray_cluster, tmp_path):
    tasks = tiny_tasks(hardware=["h100-sxm", "l4"], tp=[1, 2])
    local, computed, _ = run_sweep(tasks, SweepStore(tmp_path / "local"), jobs=1)
    assert computed == 4
    on_ray, computed, _ = run_sweep(tasks, SweepStore(tmp_path / "ray"), backend="ray")
    assert computed == 4 and on_ray == local
    assert ray_cluster.is_initialized()  # a cluster we did not start is left running
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())


def test_mixed_cost_models_are_flagged():
    from simulator.cli.plan import mixed_cost_models_note
    from simulator.run import describe_prediction
    from simulator.scenario import Scenario

    def cand(hw, engine=None):
        s = Scenario(model="llama-2-7b", hardware=hw, engine=engine)
        return {"scenario": s.as_dict(), "prediction": describe_prediction(s)}

    note = mixed_cost_models_note({"candidates": [cand("a100-80gb"), cand("h200")]})
    assert "fitted for a100-80gb" in note and "transfer for h200" in note
    assert mixed_cost_models_note({"candidates": [cand("a100-80gb"), cand("h100-sxm")]}) is None  # both fitted
    assert "ideal" in mixed_cost_models_note({"candidates": [cand("a100-80gb", "ideal"), cand("h100-sxm")]})
