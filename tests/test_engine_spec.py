"""Serving engines as data (simulator/cost/engine.py): files, sources, the CPU-time formula, the
frontend delay and the two admission rules, each against a closed form or a tiny exact run."""
import dataclasses
import math

import numpy as np
import pytest

from hardware import load_device
from simulator.cost import BatchShape, EngineSpec, RooflineCostModel, engine_names, engine_toml, load_engine
from simulator.cost.build import decode_attention_speedup
from simulator.cost.engine import EngineCostModel
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.run import simulate
from simulator.scenario import Scenario

H100 = load_device("h100-sxm")
SMALL = load_model("qwen3-0.6b")
LABELS = ("name", "display_name", "version", "device_model")


def test_every_shipped_engine_loads_and_sources_every_number_it_sets():
    names = engine_names()
    assert {"vllm", "sglang", "trtllm", "hf", "ideal", "kernels"} <= set(names)
    default = EngineSpec(name="x", display_name="x")
    for name in names:
        e = load_engine(name)
        changed = [f.name for f in dataclasses.fields(e) if f.name not in LABELS + ("sources", "notes", "fit", "origin")
                   and getattr(e, f.name) != getattr(default, f.name)]
        assert not [k for k in changed if k not in e.sources], f"{name}: numbers without a source"
        assert e.notes, name


def test_defaults_and_roundtrip():
    assert load_engine("vllm").admission == "preempt" and load_engine("trtllm").admission == "reserve"
    assert load_engine("ideal").device_model == "ideal" and load_engine("ideal").free
    for name in engine_names():
        e = load_engine(name)
        again = EngineSpec(**{**_toml_dict(engine_toml(e)), "origin": e.origin})
        assert again == e, name


def _toml_dict(text: str) -> dict:
    import tomllib

    raw = tomllib.loads(text)
    sources = raw.pop("sources")
    return {**raw, "notes": sources.pop("notes"), "sources": sources, "fit": raw.pop("fit", {})}


def test_inheritance_overrides_and_says_whence(tmp_path):
    e = load_engine("trtllm-0.5")
    base = load_engine("trtllm")
    assert e.attn_decode_speedup == base.attn_decode_speedup and not e.gqa_kv_shared
    assert e.step_overhead_ms == 0.0 and "step_overhead_ms" not in e.sources  # overridden: not "as trtllm"
    assert e.sources["attn_decode_speedup"].startswith("as trtllm-0.7: as trtllm:")
    loop = tmp_path / "a.toml"
    loop.write_text('name = "a"\ndisplay_name = "a"\ninherits = "' + str(loop) + '"\n')
    with pytest.raises(ServesimError, match="loops"):
        load_engine(str(loop))


@pytest.mark.parametrize("body, message", [
    ('per_seq_us = -1', "per_seq_us must be a finite number >= 0"),
    ('admission = "fifo"', "admission='fifo'; allowed: preempt, reserve"),
    ('bogus = 1', r"unknown field\(s\) \['bogus'\]; allowed: name, display_name, version"),
    ('[sources]\nnotes = "n"\nbogus = "x"', "not engine fields"),
    ('attn_decode_speedup = 9', "attn_decode_speedup must be in"),
    ('per_seq_us = ', "not valid TOML"),
])
def test_bad_engine_files_name_the_file_and_the_problem(tmp_path, body, message):
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\ndisplay_name = "bad"\n' + body + "\n")
    with pytest.raises(ServesimError, match=message) as err:
        load_engine(str(f))
    assert str(f) in str(err.value)
    with pytest.raises(ServesimError, match="unknown engine 'nope'; known engines: .*vllm"):
        load_engine("nope")
    with pytest.raises(ServesimError, match="engine file .*none.toml not found"):
        load_engine(str(tmp_path / "none.toml"))
    (tmp_path / "nameless.toml").write_text('name = "x"\n')
    with pytest.raises(ServesimError, match="display_name missing"):
        load_engine(str(tmp_path / "nameless.toml"))


def test_step_cpu_time_closed_form():
    e = EngineSpec(name="t", display_name="t", step_overhead_ms=1.0, per_seq_us=10.0, per_seq_tp_us=2.0,
                   tp_overhead_ms=0.5, per_prefill_token_us=0.1, per_layer_us=3.0)
    # 1 + 0.5*3 ms + 8*(10 + 2*3) us + 100*0.1 us + 28*3 us (a prefill step launches eagerly)
    assert e.step_cpu_s(8, 100, 28, 4) == pytest.approx(1e-3 + 1.5e-3 + 128e-6 + 10e-6 + 84e-6, rel=1e-12)
    assert e.step_cpu_s(8, 0, 28, 4) == pytest.approx(1e-3 + 1.5e-3 + 128e-6, rel=1e-12)  # decode: CUDA graph
    eager = dataclasses.replace(e, cuda_graphs=False)
    assert eager.step_cpu_s(8, 0, 28, 4) == pytest.approx(1e-3 + 1.5e-3 + 128e-6 + 84e-6, rel=1e-12)


def test_engine_cost_adds_or_overlaps_exactly():
    inner = RooflineCostModel(SMALL, H100)
    shape = BatchShape(prefill_chunks=(), num_decode=4, decode_context_sum=4 * 300, num_logits=4)
    kernels = inner.step_cost(shape)
    serial = EngineSpec(name="s", display_name="s", step_overhead_ms=2.0, per_seq_us=50.0)
    cpu = 2e-3 + 4 * 50e-6
    got = EngineCostModel(inner, serial, tp=1, num_layers=SMALL.num_layers).step_cost(shape)
    assert got.time_s == pytest.approx(kernels.time_s + cpu, rel=1e-12) and got.overhead_s == pytest.approx(cpu)
    over = EngineCostModel(inner, dataclasses.replace(serial, overlap=True), tp=1, num_layers=SMALL.num_layers)
    assert over.step_cost(shape).time_s == pytest.approx(max(kernels.time_s, cpu), rel=1e-12)


def test_decode_attention_speedup_for_engines_without_shared_kv_heads():
    llama70 = load_model("llama-2-70b")  # 64 query heads, 8 KV heads
    assert decode_attention_speedup(load_engine("trtllm-0.7"), llama70) == load_engine("trtllm").attn_decode_speedup
    assert decode_attention_speedup(load_engine("trtllm-0.5"), llama70) == pytest.approx(
        load_engine("trtllm").attn_decode_speedup * 8 / 64)


def _one_request(tmp_path, frontend: str) -> float:
    f = tmp_path / "e.toml"
    f.write_text('name = "e"\ndisplay_name = "e"\nrequest_overhead_ms = 5.0\n[sources]\nnotes = "test"\n'
                 'request_overhead_ms = "test"\n')
    s = Scenario(model="qwen3-0.6b", num_requests=1, rate=math.inf, prompt_tokens="64", output_tokens="4",
                 engine=str(f), frontend=frontend)
    rec = simulate(s).recorder
    return float(rec.first_token_s[0] - rec.arrival_s[0])


def test_served_requests_pay_the_frontend_once(tmp_path):
    assert _one_request(tmp_path, "server") - _one_request(tmp_path, "offline") == pytest.approx(5e-3, abs=1e-12)


def _admission_run(admission: str):
    s = Scenario(model="qwen3-0.6b", num_requests=6, rate=math.inf, prompt_tokens="16", output_tokens="64",
                 block_size=16, max_num_seqs=8, scheduler="vllm", seed=0, engine="kernels")
    return simulate(s, engine=dataclasses.replace(load_engine("kernels"), admission=admission))


def test_reserve_admission_never_preempts_and_preempt_admission_may(monkeypatch):
    from simulator.engine import memory_plan as mp

    # 12 blocks of 16 tokens: a request needs 1 block to start and 5 (16 + 64 tokens) to finish
    real = mp.plan_memory

    def tiny(*a, **k):
        return dataclasses.replace(real(*a, **k), num_gpu_blocks=12)

    monkeypatch.setattr("simulator.run.plan_memory", tiny)
    reserve, preempt = (_admission_run(a) for a in ("reserve", "preempt"))
    rs, ps = reserve.recorder.step_arrays(), preempt.recorder.step_arrays()
    assert int(np.max(rs["num_running"])) == 2 and reserve.recorder.num_preemptions.sum() == 0  # 12 // 5 reserved
    assert int(np.max(ps["num_running"])) > 2 and preempt.recorder.num_preemptions.sum() > 0  # admitted on 1 block
    assert int(np.max(rs["kv_blocks_used"])) <= 12 and int(np.max(ps["kv_blocks_used"])) <= 12
