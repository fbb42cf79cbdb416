"""Success paths of the CLI that had only error tests (issue 19): `profile --import-vidur` on real
Vidur A100 tables, `fit` from the command line (train, held-out test, saved fit used by
`simulate --profile`), and `simulate --trace` with `--trace-arrivals rate`.

The Vidur tables are read from ../shared/reference/vidur (not copied into the project); a
thinned copy (every 16th shape) is written to tmp_path to keep the tests fast.
"""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main

VIDUR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "vidur" / "compute" / "a100" / "meta-llama"
needs_vidur = pytest.mark.skipif(not VIDUR.is_dir(), reason="Vidur reference tables not present")
NUM_VIDUR_OPS = 10  # ops per Vidur mlp.csv row that the importer maps (tests/test_fit.py: 1044 rows -> 10440)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def thinned(src: Path, dst: Path, every: int = 16) -> int:
    """Copy the header and every `every`-th data row of a Vidur CSV; returns the data rows kept."""
    with src.open(newline="") as fh:
        rows = list(csv.reader(fh))
    kept = rows[1::every]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + kept)
    return len(kept)


@needs_vidur
def test_import_vidur_then_fit_then_simulate_with_the_fit(capsys, tmp_path):
    train_csv = tmp_path / "Llama-2-7b-hf" / "mlp.csv"
    test_csv = tmp_path / "Llama-2-70b-hf" / "mlp.csv"
    n_train = thinned(VIDUR / "Llama-2-7b-hf" / "mlp.csv", train_csv)
    n_test = thinned(VIDUR / "Llama-2-70b-hf" / "mlp.csv", test_csv)
    assert n_train == n_test == math.ceil(1044 / 16)

    # 1. profile --import-vidur: a profile directory the rest of the tools read
    table = tmp_path / "imported"
    code, out, err = run(capsys, "profile", "--import-vidur", train_csv, "--out", table)
    assert code == 0, err
    assert out.strip() == f"imported {n_train * NUM_VIDUR_OPS} rows from {train_csv} -> {table}"
    meta = json.loads((table / "metadata.json").read_text())
    assert meta["device"] == "a100-80gb" and meta["dtype"] == "fp16" and meta["source"] == "vidur"
    with (table / "table.csv").open() as fh:
        assert sum(1 for _ in fh) - 1 == n_train * NUM_VIDUR_OPS

    # 2. fit on the imported 7B table, test on the 70B CSV (held out): Vidur's GEMMs fit within 10%
    fit_json = tmp_path / "fit.json"
    code, out, err = run(capsys, "fit", "--train", table, "--test", test_csv, "--out", fit_json, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["device"], report["dtype"], report["saved"]) == ("a100-80gb", "fp16", str(fit_json))
    overall = report["test_error"]["overall"]
    assert overall["num_rows"] == n_test * NUM_VIDUR_OPS and 0 < overall["median_ape_pct"] < 10
    for op in ("attn_qkv", "attn_out", "mlp_up", "mlp_down"):
        assert 0 < report["fitted"][op]["eta_compute"] <= 1, op  # achieved FLOP/s below the A100's peak
        assert report["test_error"]["per_op"][op]["median_ape_pct"] < 10, op
    code, text, _ = run(capsys, "fit", "--train", table, "--test", test_csv)
    assert code == 0 and any(line.startswith("overall") for line in text.splitlines())

    # 3. the saved fit drives a simulation, and the run says so
    code, out, err = run(capsys, "simulate", "--profile", fit_json, "--model", "llama-2-7b", "--hardware", "a100-80gb",
                         "--dtype", "fp16", "--num-requests", "10", "--json")
    assert code == 0, err
    cm = json.loads(out)["provenance"]["cost_model"]
    assert cm["measured_profile"] == str(fit_json) and cm["fit_test_error"]["overall"] == overall


def test_trace_lengths_with_rate_arrivals(capsys, tmp_path):
    """A length-only trace replayed cyclically in file order at --rate: arrivals from the rate
    (first at 0, exponential gaps of mean 1/rate), lengths from the file."""
    trace = tmp_path / "lengths.csv"
    trace.write_text("num_prefill_tokens,num_decode_tokens\n100,5\n200,6\n300,7\n")
    out_dir = tmp_path / "out"
    n, rate = 300, 5.0
    code, _, err = run(capsys, "simulate", "--model", "qwen3-0.6b", "--engine", "ideal", "--trace", trace,
                       "--trace-arrivals", "rate", "--rate", rate, "--num-requests", n, "--out", out_dir)
    assert code == 0, err
    with (out_dir / "requests.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and all(r["status"] == "finished" for r in rows)
    assert [int(r["prompt_tokens"]) for r in rows] == [100, 200, 300] * (n // 3)
    assert [int(r["output_tokens"]) for r in rows] == [5, 6, 7] * (n // 3)
    arrival = np.array([float(r["arrival_s"]) for r in rows])
    gaps = np.diff(arrival)
    assert arrival[0] == 0 and (gaps >= 0).all()
    assert abs(gaps.mean() - 1 / rate) < 4 * (1 / rate) / math.sqrt(len(gaps))  # 4 standard errors
    # --rate inf: everything at t = 0; without --trace-arrivals rate the file needs timestamps
    code, out, err = run(capsys, "simulate", "--model", "qwen3-0.6b", "--engine", "ideal", "--trace", trace,
                         "--trace-arrivals", "rate", "--rate", "inf", "--num-requests", 4, "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["completed"] == 4
    code, _, err = run(capsys, "simulate", "--trace", trace)
    assert code == 2 and "--trace-arrivals rate" in err
