from pathlib import Path

import pytest

from profiles.fit import FittedProfile, evaluate, fit_op, load_fit, save_fit
from profiles.table import ProfileError, ProfileRow, make_shape
from profiles.work import kernel_work

# ../shared beside the repository (CI, main checkout), or beside the worktrees' parent folder
_SHARED = next((p / "shared" for p in Path(__file__).resolve().parents[2:4] if (p / "shared").is_dir()),
               Path(__file__).resolve().parents[2] / "shared")
VIDUR = _SHARED / "reference" / "vidur" / "compute" / "a100" / "meta-llama"
needs_vidur = pytest.mark.skipif(not (VIDUR / "Llama-2-7b-hf" / "mlp.csv").is_file(),
                                 reason="../shared/reference/vidur is not beside the repository")


def synthetic(op="attn_qkv", fe=1e12, be=1e10, t0=5e-6, tokens=(1, 2, 4, 8, 16, 64, 256, 1024), dims=(512, 1024)):
    rows = []
    for t in tokens:
        shape = make_shape(num_tokens=t, in_dim=dims[0], out_dim=dims[1])
        f, b = kernel_work(op, shape, "fp32")
        rows.append(ProfileRow(op=op, dtype="fp32", shape=shape, time_median_us=(t0 + max(f / fe, b / be)) * 1e6))
    return rows


def test_linear_work_counts():
    f, b = kernel_work("attn_qkv", make_shape(num_tokens=3, in_dim=4, out_dim=5), "bf16")
    assert f == 2 * 3 * 4 * 5 and b == 2 * (4 * 5 + 3 * (4 + 5))


def test_fit_recovers_known_roofline():
    fit = fit_op(synthetic())
    assert fit.train_median_ape < 2.0
    # predicts a different shape (another model) from the same device rates
    other = synthetic(dims=(2048, 4096), tokens=(3, 100, 3000))
    for r in other:
        f, b = kernel_work(r.op, r.shape, r.dtype)
        assert fit.predict_s(f, b) == pytest.approx(r.time_s, rel=0.05)


def test_interpolation_exact_on_grid_and_linear_between():
    rows = synthetic(tokens=(8, 16))
    fp = FittedProfile.from_rows(rows, {"device": "cpu", "dtype": "fp32"})
    t8, t16 = rows[0].time_s, rows[1].time_s
    q = dict(rows[0].shape)
    assert fp.predict("attn_qkv", q, "fp32") == (pytest.approx(t8), "profile")
    q["num_tokens"] = 12
    assert fp.predict("attn_qkv", q, "fp32") == (pytest.approx((t8 + t16) / 2), "profile")
    q["num_tokens"] = 17  # outside the grid -> fitted roofline
    assert fp.predict("attn_qkv", q, "fp32")[1] == "fit"
    q["in_dim"] = 4096  # another signature -> fit
    assert fp.predict("attn_qkv", q, "fp32")[1] == "fit"
    assert fp.predict("mlp_up", q, "fp32") is None  # never measured


def test_two_axis_grid_with_missing_corner():
    rows = []
    for b, c, t in [(1, 16, 10.0), (1, 32, 20.0), (2, 16, 30.0), (2, 32, 40.0), (4, 16, 50.0)]:
        rows.append(ProfileRow(op="attn_decode", dtype="fp32", time_median_us=t,
                               shape=make_shape(batch_size=b, context_tokens=c, num_heads=2, num_kv_heads=1, head_dim=8)))
    fp = FittedProfile.from_rows(rows, {"device": "cpu", "dtype": "fp32"})
    q = dict(rows[0].shape, batch_size=1, context_tokens=24)
    assert fp.predict("attn_decode", q, "fp32")[0] == pytest.approx(15e-6)
    q.update(batch_size=2, context_tokens=24)
    assert fp.predict("attn_decode", q, "fp32")[0] == pytest.approx(35e-6)
    q.update(batch_size=3, context_tokens=24)  # needs (4, 32), never measured
    assert fp.predict("attn_decode", q, "fp32")[1] == "fit"


def test_save_load_round_trip(tmp_path):
    fp = FittedProfile.from_rows(synthetic(), {"device": "cpu", "dtype": "fp32"})
    save_fit(fp, tmp_path / "f.json")
    back = load_fit(tmp_path / "f.json")
    q = make_shape(num_tokens=10, in_dim=512, out_dim=1024)
    assert back.predict("attn_qkv", q, "fp32") == pytest.approx(fp.predict("attn_qkv", q, "fp32"))
    save_fit(fp, tmp_path / "g.json", include_grids=False)
    assert load_fit(tmp_path / "g.json").predict("attn_qkv", q, "fp32")[1] == "fit"


def test_evaluate_reports_per_op():
    fp = FittedProfile.from_rows(synthetic(), {"device": "cpu", "dtype": "fp32"})
    rep = evaluate(fp, synthetic() + synthetic(op="mlp_down"))
    assert rep["per_op"]["attn_qkv"]["median_ape_pct"] == pytest.approx(0.0, abs=1e-9)
    assert rep["unpredicted_ops"] == ["mlp_down"]


@needs_vidur
def test_vidur_import_units_and_per_rank_shapes():
    from profiles.vidur import import_vidur_csv

    rows = import_vidur_csv(VIDUR / "Llama-2-70b-hf" / "mlp.csv")
    assert len(rows) == 1044 * 10
    first = [r for r in rows[:10] if r.op == "attn_qkv"][0]
    assert first.time_median_us == pytest.approx(2872.0)  # 2.872 ms in the CSV
    tp8 = [r for r in rows if r.op == "attn_qkv" and r.shape["out_dim"] == (64 // 8 + 2 * 1) * 128]
    assert len(tp8) == 261
    up = {r.shape["out_dim"] for r in rows if r.op == "mlp_up"}
    assert up == {2 * 28672 // p for p in (1, 2, 4, 8)}


@needs_vidur
def test_vidur_fit_7b_predicts_70b():
    from profiles.vidur import import_vidur_csv

    def thin(rows):  # every 8th token count keeps the test fast
        return [r for r in rows if r.shape["num_tokens"] % 256 == 0 or r.shape["num_tokens"] <= 16]

    train = thin(import_vidur_csv(VIDUR / "Llama-2-7b-hf" / "mlp.csv"))
    test = thin(import_vidur_csv(VIDUR / "Llama-2-70b-hf" / "mlp.csv"))
    fp = FittedProfile.from_rows(train, {"device": "a100-80gb", "dtype": "fp16"})
    rep = evaluate(fp, test)
    assert rep["overall"]["median_ape_pct"] < 10.0
    for op in ("attn_qkv", "attn_out", "mlp_up", "mlp_down"):
        assert rep["per_op"][op]["median_ape_pct"] < 10.0
        assert rep["per_op"][op]["sources"] == {"fit": rep["per_op"][op]["num_rows"]}


def test_vidur_bad_file(tmp_path):
    from profiles.vidur import import_vidur_csv

    p = tmp_path / "mlp.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ProfileError, match="not a Vidur compute profile"):
        import_vidur_csv(p)
