"""Outputs: nothing lost, nothing mixed (issue 16). Destinations are checked before a run; result
files are written whole (temporary name + os.replace) and a run's directory is swapped in as a
unit; one run_id per run; the sweep store cleans leftovers and survives garbage; plan's workers
die with it on SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import simulator.results.files as files
import simulator.results.tables as tables
from simulator.cli import main
from simulator.studies.sweep_store import SweepStore

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_id_is_shared_by_the_files_of_one_run(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, _ = run(capsys, "simulate", "--num-requests", "20", "--out", str(out), "--chrome-trace")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    run_id = summary["run_id"]
    assert len(run_id) == 32 and int(run_id, 16) >= 0
    assert json.loads((out / "trace.json").read_text())["otherData"]["run_id"] == run_id
    assert (out / "requests.csv").read_text().splitlines()[0].startswith("request_id,replica,status,")
    code, _, _ = run(capsys, "simulate", "--num-requests", "20", "--out", str(out))
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["run_id"] != run_id
    # the second run wrote no trace: the first run's trace.json is gone, not mixed in
    assert sorted(p.name for p in out.iterdir()) == ["requests.csv", "steps.csv", "summary.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_the_previous_run_intact(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(capsys, "simulate", "--num-requests", "20", "--out", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    def failing(rec, path, out_format, run_id):  # steps streamed, requests half-written, then the disk "fills"
        Path(path).write_text("request_id,replica\n0,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write_requests_table", failing)
    code, _, err = run(capsys, "simulate", "--num-requests", "30", "--seed", "7", "--out", str(out))
    assert code == 2 and "No space left" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging directory left


def test_out_pointing_at_a_file_fails_before_simulating(capsys, tmp_path, monkeypatch):
    target = tmp_path / "taken"
    target.write_text("keep me")

    def no_run(*a, **k):
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr("simulator.run.simulate", no_run)
    code, _, err = run(capsys, "simulate", "--num-requests", "20", "--out", str(target))
    assert code == 2 and str(target) in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "keep me"
    code, _, err = run(capsys, "simulate", "--num-requests", "20", "--report", str(tmp_path / "no" / "r.html"))
    assert code == 2 and str(tmp_path / "no") in err


def test_parquet_out_format(capsys, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    out = tmp_path / "pq"
    assert run(capsys, "simulate", "--num-requests", "20", "--out", str(out), "--out-format", "parquet")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["requests.parquet", "steps.parquet", "summary.json"]
    df = pd.read_parquet(out / "requests.parquet")
    assert list(df.columns) == list(tables.REQUEST_COLUMNS) and len(df) == 20


def test_parquet_without_pyarrow_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, _, err = run(capsys, "simulate", "--num-requests", "5", "--out", str(tmp_path / "x"), "--out-format", "parquet")
    assert code == 2 and "pip install 'servesim[parquet]'" in err


def test_store_tmp_files_are_removed_on_open(tmp_path):
    SweepStore(tmp_path).save("ab" * 32, {"x": 1})
    (tmp_path / ".abababab.killed.tmp").write_text('{"half')
    store = SweepStore(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))
    assert store.load("ab" * 32) == {"x": 1}


def test_garbage_store_entry_is_recomputed(capsys, tmp_path):
    from simulator.scenario import Scenario
    from simulator.studies import SearchSettings, Slo, run_sweep
    from simulator.studies.plan.sweep import plan_tasks
    from simulator.studies.sweep_store import config_hash

    tasks = plan_tasks(Scenario(), {"max_num_seqs": [64]}, settings=SearchSettings(probe_requests=40, max_probes=3),
                       slo=Slo(ttft_ms=500, tpot_ms=50), target_rate=5)
    store = SweepStore(tmp_path)
    first, computed, _ = run_sweep(tasks, store, jobs=1)
    assert computed == 1
    entry = store.path(config_hash(tasks[0]))
    entry.write_bytes(os.urandom(256))
    again, computed, reused = run_sweep(tasks, SweepStore(tmp_path), jobs=1)
    err = capsys.readouterr().err
    assert (computed, reused) == (1, 0) and again == first
    assert str(entry) in err and len([line for line in err.splitlines() if "warning" in line]) == 1
    assert json.loads(entry.read_text())["candidate"] == first[0]


def _children(pid: int) -> list[int]:
    """Live descendants of pid (from /proc: each process's ppid)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(d.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        frontier += kids
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigterm_ends_plan_workers(tmp_path):
    cmd = [sys.executable, "-m", "simulator.cli", "plan", "--models", "qwen3-0.6b", "--hardware", "h100-sxm,a100-80gb",
           "--tp", "1", "--target-rate", "5", "--slo-ttft-ms", "500", "--slo-tpot-ms", "50", "--probe-requests",
           "4000", "--max-probes", "50", "--jobs", "2", "--store", str(tmp_path / "store"), "--json"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(max(0.0, 3 - (20 - (deadline - time.monotonic()))))
        kids = _children(proc.pid)
        assert proc.poll() is None and len(kids) >= 2, "plan ended or started no workers"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        assert code == 143
        end = time.monotonic() + 15
        while time.monotonic() < end and any(_is_live(k) for k in kids):
            time.sleep(0.2)
        assert not [k for k in kids if _is_live(k)]
        assert not list((tmp_path / "store").glob("*.tmp"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _is_live(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"
