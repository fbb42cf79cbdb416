"""Profiler and validation engine on this CPU (torch needed; CI installs it)."""
import importlib.util
import subprocess
import sys

import pytest

from profiles.grids import ModelDims, kernel_grid
from profiles.table import make_shape
from profiles.timers import TimingPlan

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'servesim[profile]')")
FAST = TimingPlan(warmup=1, min_repeats=2, max_repeats=2, budget_s=0.01)
TINY = ModelDims(name="t", hidden_size=64, num_heads=4, num_kv_heads=2, head_dim=16, intermediate_size=128,
                 vocab_size=256)
TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                   vocab_size=256, num_hidden_layers=2, max_position_embeddings=256)


def test_every_cpu_kernel_runs_and_is_timed():
    from profiles.profiler import run_profile

    grid = kernel_grid(TINY, quick=True, device_kind="cpu", max_tokens=4)
    ops = {op for op, _ in grid}
    assert {"attn_qkv", "mlp_up", "lm_head", "attn_prefill", "attn_decode", "kv_append", "rotary"} <= ops
    grid = [g for i, g in enumerate(grid) if i % 3 == 0 or g[0] in ("attn_prefill", "kv_append")][:40]
    rows, meta = run_profile(grid, dtype="fp32", device="cpu", plan=FAST, num_threads=1)
    assert len(rows) == len(grid) and all(r.time_median_us > 0 for r in rows)
    assert meta["num_threads"] == 1 and meta["timer"] == "perf_counter"
    assert any("NVML" in s or "power" in s for s in meta["not_recorded"])


def test_inputs_are_random_and_rotate():
    from profiles.kernels import build_kernel

    fn = build_kernel(torch, "attn_qkv", make_shape(num_tokens=2, in_dim=8, out_dim=4), "fp32", "cpu",
                      cache_bytes=1024)
    a, b = fn(0), fn(1)
    assert torch.count_nonzero(a) == a.numel()
    assert not torch.equal(a, b)  # another input set
    assert torch.equal(fn(0), a)


def test_prefill_with_context_matches_reference():
    from profiles.kernels import _attention

    s = make_shape(batch_size=1, chunk_tokens=3, context_tokens=2, num_heads=2, num_kv_heads=1, head_dim=4)
    gen = torch.Generator().manual_seed(0)
    make, run = _attention(torch, torch.nn.functional, "attn_prefill", s,
                           lambda *sh, **kw: torch.randn(*sh, generator=gen))
    q, k, v = make()
    out = run(q, k, v)
    kk, vv = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    scores = q @ kk.transpose(-1, -2) / 2.0
    allowed = torch.ones(3, 5, dtype=torch.bool).tril(diagonal=2)  # token j sees ctx (2) + new tokens <= j
    ref = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ vv
    assert torch.allclose(out, ref, atol=1e-5)


def test_cuda_requested_but_absent():
    from profiles.profiler import check_device

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="no CUDA device"):
        check_device(torch, "cuda")


def test_missing_torch_names_the_extra(monkeypatch, capsys):
    from simulator.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["profile", "--model", "tiny-llama-validate", "--quick"]) == 2
    assert "servesim[profile]" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_profile_records_nvml():
    from profiles.profiler import run_profile

    grid = kernel_grid(TINY, quick=True, device_kind="cuda", max_tokens=2)[:12]
    rows, meta = run_profile(grid, dtype="bf16", device="cuda", plan=FAST, num_threads=None)
    assert meta["timer"] == "cuda_events" and all(r.time_median_us > 0 for r in rows)
    if importlib.util.find_spec("pynvml"):
        assert all(r.extra.get("power_mean_w", 0) > 0 for r in rows)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_static_serving_loop_records_every_step():
    from profiles.hf_engine import build_model, serve_static

    model = build_model(TINY_CONFIG)
    run = serve_static(model, num_requests=3, batch_size=2, prompt_tokens=5, output_tokens=4)
    assert len(run.prefill_step_s) == 2 and len(run.decode_step_s) == 2 * 3
    assert run.first_token_s[0] == run.first_token_s[1] < run.finish_s[0] <= run.first_token_s[2]


def test_import_simulator_and_profile_tables_without_torch():
    code = ("import sys, simulator, simulator.run, simulator.cost.profiled, simulator.cost.profile_choice, "
            "simulator.cli.fit, simulator.cli.profile, simulator.cli.validate, profiles.fit, profiles.vidur, "
            "profiles.grids, profiles.timers, profiles.nvml; "
            "bad = [m for m in ('torch', 'pynvml', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_engine_steps_are_timed_at_fixed_context():
    from profiles.hf_engine import MIN_FORWARDS, build_model, time_engine_steps

    model = build_model(TINY_CONFIG)
    seen = []
    forward = model.forward

    def spy(*a, **k):
        cache = k["cache"] if "cache" in k else k["past_key_values"]  # transformers' current name, or the old one
        seen.append((k["input_ids"].shape[1], cache.get_seq_length()))
        return forward(*a, **k)

    model.forward = spy
    rows = time_engine_steps(model, decode_points=((2, 5),), prefill_points=((3, 4),), plan=FAST)
    assert [(r.op, r.shape["batch_size"], r.shape["context_tokens"], r.shape["chunk_tokens"], r.shape["num_layers"])
            for r in rows] == [("engine_decode", 2, 5, 0, 2), ("engine_prefill", 3, 0, 4, 2)]
    decode_calls = [s for s in seen if s[0] == 1]
    assert len(decode_calls) == FAST.warmup + MIN_FORWARDS and set(decode_calls) == {(1, 5)}  # cropped every step
    assert all(r.time_median_us > 0 and r.extra["num_repeats"] == MIN_FORWARDS for r in rows)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_validate_interleaves_serving_and_profiling(monkeypatch, capsys, tmp_path):
    import json

    import profiles.grids as grids
    from simulator.cli import main

    monkeypatch.setattr(grids, "ENGINE_DECODE_POINTS", ((2, 4),))
    monkeypatch.setattr(grids, "ENGINE_PREFILL_POINTS", ((1, 4),))
    args = ["validate", "--quick", "--runs", "2", "--batch-sizes", "1,2", "--batches", "1", "--prompt-tokens", "8",
            "--output-tokens", "3", "--out", str(tmp_path / "p"), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"].startswith("measured after each serving round")
    assert (tmp_path / "p" / "round-1" / "table.csv").is_file() and (tmp_path / "p" / "round-2" / "table.csv").is_file()
    assert [r["batch_size"] for r in report["results"]] == [1, 2] and report["runs"] == 2
    meta = json.loads((tmp_path / "p" / "metadata.json").read_text())
    assert [(s["step"], s["batch_size"], s["tokens"]) for s in meta["engine_steps"]] == [("decode", 2, 4),
                                                                                        ("prefill", 1, 4)]
    for r in report["results"]:
        for key in ("mean_ttft_ms", "mean_tpot_ms", "output_throughput"):
            assert r["measured"][key] > 0 and r["predicted"][key] > 0 and r["measured_spread_pct"][key] >= 0
            lo, hi = r["error_range_pct"][key]
            assert lo <= r["error_pct"][key] <= hi
        assert set(r["step_sources"]) <= {"profile", "fit", "roofline"}


def test_split_gemm_layout_matches_fused_math():
    from profiles.kernels import build_kernel

    s = make_shape(num_tokens=3, in_dim=8, out_dim=(4 + 2 * 2) * 2, num_heads=4, num_kv_heads=2, head_dim=2)
    outs = build_kernel(torch, "attn_qkv", s, "fp32", "cpu", cache_bytes=0, gemm_layout="split")(0)
    assert [tuple(o.shape) for o in outs] == [(3, 8), (3, 4), (3, 4)]
    up = build_kernel(torch, "mlp_up", make_shape(num_tokens=3, in_dim=8, out_dim=10), "fp32", "cpu",
                      cache_bytes=0, gemm_layout="split")(0)
    assert [tuple(o.shape) for o in up] == [(3, 5), (3, 5)]
    with pytest.raises(ValueError, match="gemm_layout"):
        build_kernel(torch, "mlp_up", make_shape(num_tokens=1, in_dim=2, out_dim=2), "fp32", "cpu",
                     cache_bytes=0, gemm_layout="zigzag")


def test_passes_keep_each_shapes_middle_median(monkeypatch):
    import profiles.profiler as prof
    from profiles.table import ProfileRow

    medians = iter([5.0, 9.0, 4.0, 12.0, 6.0, 8.0])  # pass 1: a=5, b=9; pass 2: a=4, b=12; pass 3: a=6, b=8

    def fake(torch_, op, shape, *rest):
        return ProfileRow(op=op, dtype="fp32", shape=shape, time_median_us=next(medians))

    monkeypatch.setattr(prof, "_time_one", fake)
    grid = [("a", make_shape(num_tokens=1)), ("b", make_shape(num_tokens=2))]
    rows, meta = prof.run_profile(grid, dtype="fp32", device="cpu", plan=FAST, num_threads=1, passes=3)
    assert [r.time_median_us for r in rows] == [5.0, 9.0] and meta["passes"] == 3
    passes = [[ProfileRow(op=op, dtype="fp32", shape=s, time_median_us=t) for (op, s), t in zip(grid, ts)]
              for ts in ((5.0, 9.0), (4.0, 12.0), (6.0, 8.0))]
    assert [r.time_median_us for r in prof.pick_pass(passes, "fastest")] == [4.0, 8.0]
    assert [r.time_median_us for r in prof.pick_pass(passes[:2], "middle")] == [4.0, 9.0]  # lower middle of 2
    with pytest.raises(ValueError, match="which must be one of"):
        prof.pick_pass(passes, "slowest")
    with pytest.raises(ValueError, match="differ in length"):
        prof.pick_pass([passes[0], passes[1][:1]])
