"""Malformed input files (issue 16): every one is one line `servesim CMD: error: ...` naming the file
and what is allowed, exit 2, never a traceback."""
import json

import pytest

from simulator.cli import main

NOT_UTF8 = b"\xff\xfe\x00"
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 512, "vocab_size": 1000,
         "max_position_embeddings": 2048}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(capsys, cmd, *argv):
    code, _, err = run(capsys, cmd, *argv)
    assert code == 2, err
    assert err.startswith(f"servesim {cmd}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ---- 1. multi-model Vidur CSVs -------------------------------------------------------------------
VIDUR_OPS = ("emb", "input_layernorm", "attn_pre_proj", "post_attention_layernorm", "mlp_up_proj", "add")
SHAPE = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp", "num_tokens",
         "num_tensor_parallel_workers")


def _vidur_csv(path, rows):
    header = [f"time_stats.{op}.{s}" for op in VIDUR_OPS for s in ("min", "max", "mean", "median", "std")] + list(SHAPE)
    lines = [",".join(header)]
    for empty_ops, shape in rows:
        cells = []
        for op in VIDUR_OPS:
            cells += [""] * 5 if op in empty_ops else ["0.1", "0.2", "0.15", "0.14", "0.01"]
        lines.append(",".join(cells + [str(v) for v in shape]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_vidur_rows_with_empty_op_cells_are_imported_and_counted(tmp_path, capsys):
    llama = (32, 32, 4096, 11008, 32000, "True", 128, 1)
    phi2 = (32, 32, 2560, 10240, 51200, "False", 128, 1)
    csv = _vidur_csv(tmp_path / "mlp.csv", [((), llama), ({"post_attention_layernorm"}, phi2),
                                            ({"post_attention_layernorm", "add"}, phi2)])
    with pytest.warns(UserWarning, match=r"skipped 3 empty op cell\(s\).*add x1, post_attention_layernorm x2"):
        code, out, err = run(capsys, "profile", "--import-vidur", csv, "--out", tmp_path / "imported")
    assert code == 0, err
    assert "imported 15 rows" in out  # 6 + 5 + 4 ops
    with pytest.warns(UserWarning, match="skipped 3 empty op cell"):
        code, out, err = run(capsys, "fit", "--train", csv)
    assert code == 0, err


def test_vidur_row_with_a_partial_op_is_an_error(tmp_path, capsys):
    csv = _vidur_csv(tmp_path / "mlp.csv", [((), (32, 32, 4096, 11008, 32000, "True", 128, 1))])
    text = csv.read_text().splitlines()
    cells = text[1].split(",")
    cells[3] = ""  # emb.median empty, the other emb cells present
    csv.write_text("\n".join([text[0], ",".join(cells)]) + "\n")
    err = one_line_error(capsys, "profile", "--import-vidur", csv, "--out", tmp_path / "x")
    assert "mlp.csv:2" in err and "time_stats.emb.median" in err


# ---- 2. model config.json ------------------------------------------------------------------------
def _config(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_config_json_list(tmp_path, capsys):
    err = one_line_error(capsys, "simulate", "--model", _config(tmp_path, [LLAMA]), "--num-requests", "3")
    assert "config.json" in err and "must be a JSON object, not a JSON list" in err


@pytest.mark.parametrize("key,value", [("num_attention_heads", 0), ("hidden_size", 0), ("num_hidden_layers", 0),
                                       ("vocab_size", 0), ("hidden_size", -4), ("num_key_value_heads", 0)])
def test_config_zero_or_negative_sizes(tmp_path, capsys, key, value):
    path = _config(tmp_path, LLAMA | {key: value})
    err = one_line_error(capsys, "simulate", "--model", path, "--num-requests", "3")
    assert str(path) in err and key in err and "an integer >= 1" in err


def test_config_null_max_position_embeddings_falls_back_to_the_family_default(tmp_path, capsys):
    path = _config(tmp_path, LLAMA | {"max_position_embeddings": None})
    code, _, err = run(capsys, "simulate", "--model", path, "--num-requests", "3")
    assert code == 0, err
    from simulator.models import load_model

    assert load_model(path).max_position_embeddings == 4096


def test_config_not_utf8(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_bytes(NOT_UTF8)
    err = one_line_error(capsys, "simulate", "--model", path, "--num-requests", "3")
    assert str(path) in err and "not UTF-8 text" in err


# ---- 3. --profile ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [[1, 2], {"a": 1}, {"format": "servesim-fit/1"}])
def test_profile_json_that_is_not_a_fit(tmp_path, capsys, data):
    path = _config(tmp_path, data, "prof.json")
    err = one_line_error(capsys, "simulate", "--profile", path, "--num-requests", "3")
    assert str(path) in err and ("expected" in err)


def test_profile_not_utf8(tmp_path, capsys):
    path = tmp_path / "prof.json"
    path.write_bytes(NOT_UTF8)
    err = one_line_error(capsys, "simulate", "--profile", path, "--num-requests", "3")
    assert str(path) in err and "not UTF-8 text" in err
    table = tmp_path / "table"
    table.mkdir()
    (table / "table.csv").write_bytes(NOT_UTF8)
    (table / "metadata.json").write_text(json.dumps({"device": "h100-sxm", "dtype": "bf16"}))
    err = one_line_error(capsys, "simulate", "--profile", table, "--num-requests", "3")
    assert "table.csv" in err and "not UTF-8 text" in err


# ---- 4. report inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [{"a": 1}, [1], "text", {"kind": "nonsense"}])
def test_report_of_json_that_is_not_a_result(tmp_path, capsys, data):
    pytest.importorskip("plotly")
    path = _config(tmp_path, data, "x.json")
    err = one_line_error(capsys, "report", path, "-o", tmp_path / "r.html")
    assert str(path) in err and ("expected" in err or "is not one of" in err)
    assert not (tmp_path / "r.html").exists()


def test_report_of_run_dir_whose_summary_is_not_a_result(tmp_path, capsys):
    pytest.importorskip("plotly")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text('{"a": 1}')
    err = one_line_error(capsys, "report", run_dir, "-o", tmp_path / "r.html")
    assert "summary.json" in err and "expected" in err


def test_report_not_utf8(tmp_path, capsys):
    pytest.importorskip("plotly")
    path = tmp_path / "x.json"
    path.write_bytes(NOT_UTF8)
    err = one_line_error(capsys, "report", path, "-o", tmp_path / "r.html")
    assert str(path) in err and "not UTF-8 text" in err
