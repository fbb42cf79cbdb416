"""Import of Vidur's compute profiles (github.com/microsoft/vidur, data/profiling/compute/...).

Owns the mapping of Vidur's `mlp.csv` columns (time_stats.<op>.{min,max,mean,median,std} in
milliseconds per layer per call, plus n_head, n_kv_head, n_embd, n_expanded_embd, vocab_size,
use_gated_mlp, num_tokens, num_tensor_parallel_workers) to profile rows with per-rank shapes:
a tensor-parallel degree p shards heads, KV heads and the MLP width by p, as Vidur's
column/row-parallel layers do. The min and max become p10/p90 (Vidur records no percentiles).
"""
from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

from profiles.table import ProfileError, ProfileRow, make_shape, read_text

# Vidur op -> our kernel op.
VIDUR_OPS = {
    "attn_pre_proj": "attn_qkv", "attn_post_proj": "attn_out", "mlp_up_proj": "mlp_up",
    "mlp_down_proj": "mlp_down", "input_layernorm": "rms_norm", "post_attention_layernorm": "rms_norm",
    "attn_rope": "rotary", "mlp_act": "activation", "add": "residual_add", "emb": "embedding",
}
TP_COLUMNS = ("num_tensor_parallel_workers", "num_tensor_parallel_work")


def _shape(op: str, c: dict, tokens: int, tp: int) -> dict[str, int]:
    h, heads, kv = c["n_embd"], c["n_head"], c["n_kv_head"]
    d = h // heads
    heads_r, kv_r = heads // tp, max(kv // tp, 1)
    width = c["n_expanded_embd"] // tp
    if op == "attn_qkv":
        return make_shape(num_tokens=tokens, in_dim=h, out_dim=(heads_r + 2 * kv_r) * d, num_heads=heads_r,
                          num_kv_heads=kv_r, head_dim=d)
    if op == "attn_out":
        return make_shape(num_tokens=tokens, in_dim=heads_r * d, out_dim=h)
    if op == "mlp_up":
        return make_shape(num_tokens=tokens, in_dim=h, out_dim=width * (2 if c["gated"] else 1))
    if op == "mlp_down":
        return make_shape(num_tokens=tokens, in_dim=width, out_dim=h)
    if op == "activation":
        return make_shape(num_tokens=tokens, out_dim=width)
    if op == "rotary":
        return make_shape(num_tokens=tokens, num_heads=heads_r, num_kv_heads=kv_r, head_dim=d)
    return make_shape(num_tokens=tokens, in_dim=h)  # norms, residual add, embedding


def import_vidur_csv(path: str | Path, *, dtype: str = "fp16") -> list[ProfileRow]:
    """Rows of one Vidur mlp.csv (Vidur profiles in fp16)."""
    path = Path(path)
    with io.StringIO(read_text(path, "Vidur CSV"), newline="") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        tp_col = next((c for c in TP_COLUMNS if c in names), None)
        need = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "num_tokens"]
        missing = [c for c in need if c not in names] + ([] if tp_col else [TP_COLUMNS[0]])
        if missing:
            raise ProfileError(f"{path}: not a Vidur compute profile, missing column(s) {missing}")
        ops = [op for op in VIDUR_OPS if f"time_stats.{op}.median" in names]
        rows, skipped = [], {}
        for line, raw in enumerate(reader, start=2):
            rows += _rows_of(raw, ops, tp_col, dtype, f"{path}:{line}", skipped)
    if skipped:
        # multi-model tables leave an op's cells empty on rows of models without that op (phi-2 has
        # no post_attention_layernorm): those rows are imported without the op
        detail = ", ".join(f"{op} x{n}" for op, n in sorted(skipped.items()))
        warnings.warn(f"{path}: skipped {sum(skipped.values())} empty op cell(s) (rows whose model lacks "
                      f"the op): {detail}", stacklevel=2)
    if not rows:
        raise ProfileError(f"{path}: no rows with a timed op")
    return rows


def _rows_of(raw: dict, ops: list[str], tp_col: str, dtype: str, where: str,
             skipped: dict[str, int] | None = None) -> list[ProfileRow]:
    """One CSV row's profile rows; an op whose time_stats cells are all empty is left out (counted
    in `skipped`); an op with some cells but no median is an error."""
    try:
        c = {k: int(raw[k]) for k in ("n_head", "n_kv_head", "n_embd", "n_expanded_embd")}
        c["gated"] = str(raw.get("use_gated_mlp", "True")).strip().lower() == "true"
        tokens, tp = int(raw["num_tokens"]), int(raw[tp_col])
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{where}: bad shape column: {exc}") from None
    bad = {k: v for k, v in (c | {"num_tokens": tokens, tp_col: tp}).items() if k != "gated" and v < 1}
    if bad:
        raise ProfileError(f"{where}: shape column(s) {bad}; allowed: integers >= 1")
    out = []
    for vop in ops:
        stats = {}
        for stat in ("min", "max", "mean", "median", "std"):
            text = (raw.get(f"time_stats.{vop}.{stat}") or "").strip()
            try:
                stats[stat] = float(text) * 1e3 if text else math.nan  # ms -> us
            except ValueError:
                raise ProfileError(f"{where}: time_stats.{vop}.{stat}={text!r} is not a number") from None
        if all(math.isnan(v) for v in stats.values()):
            if skipped is not None:
                skipped[vop] = skipped.get(vop, 0) + 1
            continue
        if math.isnan(stats["median"]):
            raise ProfileError(f"{where}: time_stats.{vop}.median is missing")
        try:
            out.append(ProfileRow(
                op=VIDUR_OPS[vop], dtype=dtype, shape=_shape(VIDUR_OPS[vop], c, tokens, tp),
                time_median_us=stats["median"], time_p10_us=stats["min"], time_p90_us=stats["max"],
                time_mean_us=stats["mean"], time_std_us=stats["std"],
            ))
        except ValueError as exc:
            raise ProfileError(f"{where}: {vop}: {exc}") from None
    return out


def vidur_metadata(path: str | Path, *, device: str, dtype: str = "fp16") -> dict:
    path = Path(path)
    return {
        "device": device, "dtype": dtype, "source": "vidur", "file": str(path),
        "model": "/".join(path.parts[-3:-1]),
        "timer": "vidur (CUDA events, per layer)", "units": "microseconds (converted from Vidur's ms)",
        "license": "MIT (microsoft/vidur)",
    }


VIDUR_DEVICES = {"a100": "a100-80gb", "h100": "h100-sxm", "a40": "a40"}  # Vidur folder -> catalog device


def vidur_tables(root: str | Path, vidur_device: str) -> dict[str, list[ProfileRow]]:
    """Every compute table of one Vidur device folder (root/compute/<device>/<org>/<model>/mlp.csv),
    by model name."""
    folder = Path(root) / "compute" / vidur_device
    files = sorted(folder.glob("*/*/mlp.csv"))
    if not files:
        raise ProfileError(f"{folder}: no Vidur compute tables (*/*/mlp.csv); Vidur devices: "
                           f"{', '.join(sorted(p.name for p in (Path(root) / 'compute').glob('*')))}")
    return {f"{f.parts[-3]}/{f.parts[-2]}": import_vidur_csv(f) for f in files}


def vidur_all_reduce(root: str | Path, vidur_device: str) -> Path | None:
    """The intra-node (NVSwitch) all-reduce table of a Vidur device, if it has one."""
    path = Path(root) / "network" / f"{vidur_device}_dgx" / "all_reduce.csv"
    return path if path.is_file() else None
