"""Engine overhead: timed whole steps minus the cost model's kernel price, and how steps use it."""
import pytest

from hardware import load_device
from profiles.table import ProfileRow, make_shape, save_profile
from simulator.cost.engine_overhead import (
    MIN_OVERHEAD_US,
    engine_step_shape,
    overhead_rows,
)
from simulator.cost.shape import BatchShape
from simulator.models import load_model
from tests.test_profiled_cost_model import MODEL, US, constant_rows, model_with

# constant_rows' kernels (µs per call), 6 layers: decode step = 6 * 163 + 1 (final norm) + 100 + 7
DECODE_KERNELS_US = 6 * (10 + 20 + 30 + 40 + 2 * 1 + 2 * 2 + 3 + 4 + 50) + 1 + 100 + 7
TOKEN_OPS_US = 6 * (10 + 20 + 30 + 40 + 2 * 1 + 2 * 2 + 3 + 4) + 1  # prefill, without attention


def kernel_rows():
    return constant_rows(tokens=(1, 2, 4, 16, 32, 128), decode=((2, 16), (16, 17)), prefill=((32,), (0,)))


def engine_row(op, time_us, **shape):
    return ProfileRow(op=op, dtype="fp32", time_median_us=time_us, shape=make_shape(num_layers=6, **shape))


def test_engine_steps_become_batch_shapes_as_the_static_scheduler_builds_them():
    d = engine_step_shape(engine_row("engine_decode", 1.0, batch_size=2, context_tokens=16))
    assert (d.num_decode, d.decode_context_sum, d.num_logits, d.num_prefill_tokens) == (2, 34, 2, 0)
    p = engine_row("engine_prefill", 1.0, batch_size=4, chunk_tokens=32)
    assert engine_step_shape(p) == BatchShape(prefill_chunks=((32, 0),) * 4, num_logits=4)
    with pytest.raises(ValueError, match="not an engine step"):
        engine_step_shape(engine_row("mlp_up", 1.0, num_tokens=2))


def test_overhead_is_forward_minus_the_kernel_price():
    engine = [engine_row("engine_decode", 1500.0, batch_size=2, context_tokens=16),
              engine_row("engine_decode", 2000.0, batch_size=16, context_tokens=16),
              engine_row("engine_prefill", 1200.0, batch_size=1, chunk_tokens=32),
              engine_row("engine_prefill", 2000.0, batch_size=4, chunk_tokens=32)]
    rows, records = overhead_rows(kernel_rows(), engine, model=load_model(MODEL), device=load_device("cpu"),
                                  dtype="fp32")
    prefill_1 = TOKEN_OPS_US + 6 * 60 + 100 + 7  # one chunk of attention per layer
    prefill_4 = TOKEN_OPS_US + 6 * 60 * 4 + 100 + 7
    assert [(r.op, r.shape["num_tokens"], r.shape["num_layers"]) for r in rows] == [
        ("step_overhead", 2, 6), ("step_overhead", 16, 6), ("prefill_overhead", 32, 6), ("prefill_overhead", 128, 6)]
    assert [r.time_median_us for r in rows] == pytest.approx(
        [1500 - DECODE_KERNELS_US, 2000 - DECODE_KERNELS_US, 1200 - prefill_1, MIN_OVERHEAD_US])
    assert [rec["kernels_us"] for rec in records] == pytest.approx(
        [DECODE_KERNELS_US, DECODE_KERNELS_US, prefill_1, prefill_4], abs=0.05)
    assert records[3]["overhead_us"] == pytest.approx(2000 - prefill_4, abs=0.05)  # negative: kept in the record
    assert {rec["source"] for rec in records} == {"profile"}


def overhead(op, tokens, us):
    return ProfileRow(op=op, dtype="fp32", time_median_us=us, shape=make_shape(num_tokens=tokens, num_layers=6))


def test_steps_add_the_overhead_interpolated_and_flat_beyond_the_measured_range():
    rows = kernel_rows() + [overhead("step_overhead", 2, 400.0), overhead("step_overhead", 16, 1100.0),
                            overhead("prefill_overhead", 32, 50.0), overhead("prefill_overhead", 128, 250.0)]
    cm = model_with(rows)
    mid = cm.step_cost(BatchShape(num_decode=9, decode_context_sum=9 * 17, num_logits=9))
    assert mid.overhead_s == pytest.approx(750 * US) and mid.source == "profile"
    assert mid.time_s == pytest.approx((DECODE_KERNELS_US + 750) * US)
    low = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=17, num_logits=1))
    assert low.overhead_s == pytest.approx(400 * US) and low.source == "fit"  # clamped to batch 2, and said so
    prefill = cm.step_cost(BatchShape(prefill_chunks=((32, 0), (32, 0)), num_logits=2))
    assert prefill.overhead_s == pytest.approx((50 + 200 * 32 / 96) * US)
    mixed = cm.step_cost(BatchShape(prefill_chunks=((32, 0),), num_decode=16, decode_context_sum=16 * 17,
                                    num_logits=17))
    assert mixed.overhead_s == pytest.approx(1100 * US)  # the larger of the two
    listed = {(s["op"], s.get("num_tokens")) for s in cm.describe()["extrapolated_shapes"]}
    assert ("step_overhead", 1) in listed


def test_profiles_without_prefill_overhead_charge_the_decode_overhead_to_prefills():
    cm = model_with(kernel_rows() + [overhead("step_overhead", 1, 300.0), overhead("step_overhead", 16, 900.0)])
    c = cm.step_cost(BatchShape(prefill_chunks=((32, 0),), num_logits=1))
    assert c.overhead_s == pytest.approx(300 * US)


def test_validation_grid_covers_every_kernel_the_workload_prices(tmp_path, capsys):
    import json

    from simulator.cli import main
    from simulator.validation.profiling import model_dims
    from simulator.validation.static_batch import validation_grid

    grid = validation_grid(model_dims(load_model(MODEL), 1), [1, 3, 8], 20, 6)
    rows = [ProfileRow(op=op, dtype="fp32", shape=shape, time_median_us=5.0) for op, shape in grid]
    rows += [overhead("step_overhead", 2, 100.0), overhead("step_overhead", 16, 200.0),
             overhead("prefill_overhead", 32, 100.0), overhead("prefill_overhead", 768, 300.0)]
    save_profile(rows, {"device": "cpu", "dtype": "fp32", "model": MODEL}, tmp_path / "p")
    for b in (1, 3, 8):
        assert main(["simulate", "--model", MODEL, "--hardware", "cpu", "--dtype", "fp32", "--scheduler", "static",
                     "--max-num-seqs", str(b), "--num-requests", str(2 * b), "--rate", "inf", "--prompt-tokens", "20",
                     "--output-tokens", "6", "--max-model-len", "26", "--profile", str(tmp_path / "p"), "--json"]) == 0
        cost = json.loads(capsys.readouterr().out)["provenance"]["cost_model"]
        shapes = {(s["op"], s.get("num_tokens")) for s in cost["extrapolated_shapes"]}
        # kernels all measured; only overheads outside their calibration range, clamped to its ends
        assert shapes <= {("step_overhead", 1), ("prefill_overhead", 20)}, shapes


def test_engine_step_grid_holds_every_kernel_the_steps_are_priced_with():
    from profiles.grids import (
        ENGINE_DECODE_POINTS,
        ENGINE_PREFILL_POINTS,
        engine_step_grid,
    )
    from simulator.validation.profiling import model_dims

    spec = load_model(MODEL)
    kernels = [ProfileRow(op=op, dtype="fp32", shape=shape, time_median_us=5.0)
               for op, shape in engine_step_grid(model_dims(spec, 1))]
    engine = [engine_row("engine_decode", 1e5, batch_size=b, context_tokens=c) for b, c in ENGINE_DECODE_POINTS]
    engine += [engine_row("engine_prefill", 1e6, batch_size=b, chunk_tokens=p) for b, p in ENGINE_PREFILL_POINTS]
    _, records = overhead_rows(kernels, engine, model=spec, device=load_device("cpu"), dtype="fp32")
    assert [r["source"] for r in records] == ["profile"] * len(engine)


def test_completed_grids_have_every_interpolation_corner():
    from profiles.grids import complete_grid

    def prefill(n, c):
        return ("attn_prefill", make_shape(batch_size=1, chunk_tokens=n, context_tokens=c, num_heads=2))

    grid = [prefill(16, 0), prefill(16, 256), prefill(32, 0), ("rms_norm", make_shape(num_tokens=8, in_dim=4)),
            prefill(32, 0), prefill(64, 0), ("rms_norm", make_shape(num_tokens=2, in_dim=4))]
    done = complete_grid(grid)
    assert done[:6] == [prefill(16, 0), prefill(16, 256), prefill(32, 0), grid[3], prefill(64, 0), grid[6]]
    assert sorted(done[6:], key=str) == sorted([prefill(32, 256), prefill(64, 256)], key=str)
