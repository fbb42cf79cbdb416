"""`servesim models`: the built-in models, devices (with the source of their calibration and its
known error), host CPUs (`--host`, for MoE expert offloading) and serving engines."""
from __future__ import annotations

import argparse

from hardware import device_names, host_names, load_device, load_host
from simulator.cost import describe_device, engine_names, load_engine
from simulator.models import ARCHITECTURES, load_model, model_names


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Lines of a plain-text table: each column as wide as its widest cell (header included),
    two spaces apart; `align` has one '<' or '>' per column but the last, which is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [f"{str(c):{a}{w}}" for c, a, w in zip(r[:-1], align, widths)] + [str(r[-1])]
        lines.append("  ".join(cells).rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in model_names():
        m = load_model(name)
        attn = "MLA" if m.attention == "mla" else f"{m.num_heads}/{m.num_kv_heads}"
        notes = ", ".join(x for x in (f"{m.num_window_layers} window layers" if m.num_window_layers else "",
                                      f"{m.num_experts}x top-{m.num_experts_per_tok} experts" if m.is_moe else "",
                                      m.quantization) if x)
        rows.append([name, m.model_type, f"{m.total_params / 1e9:.2f}B", f"{m.active_params_per_token / 1e9:.2f}B",
                     m.num_layers, attn, f"{m.kv_bytes_per_token('bf16') / 1024:.1f}KiB", m.max_position_embeddings,
                     notes])
    print("\n".join(table(["model", "type", "params", "active", "layers", "attention", "KV/token", "context",
                           "notes"], rows, "<<>>><>>")))
    print(f"architectures read (config.json model_type): {', '.join(sorted(ARCHITECTURES))}; bf16 KV per token "
          "(sliding-window layers hold at most their window)")
    print()
    rows = []
    for name in device_names():
        d = load_device(name)
        rows.append([name, f"{d.peak_tflops.get('bf16', 0):.1f}", f"{d.memory_gib:.0f}",
                     f"{d.memory_bandwidth_gb_per_s:.0f}", f"{d.price_usd_per_hour:.2f}", describe_device(d),
                     d.display_name])
    print("\n".join(table(["device", "bf16 TFLOP/s", "GiB", "GB/s", "USD/h", "calibration", "name"], rows,
                          "<>>>><")))
    print()
    rows = []
    for name in host_names():
        h = load_host(name)
        rows.append([name, h.sockets, h.cores, f"{h.peak_flops('fp32') / 1e12:.1f}", f"{h.memory_gib:.0f}",
                     f"{h.memory_bandwidth_gb_per_s:.0f}", h.display_name])
    print("\n".join(table(["host (--host)", "sockets", "cores", "fp32 TFLOP/s", "GiB", "GB/s", "name"], rows,
                          "<>>>>>")))
    print()
    rows = []
    for name in engine_names():
        e = load_engine(name)
        rows.append([name, e.admission, f"{e.step_overhead_ms:.3f}", f"{e.per_seq_us:.2f}", e.display_name])
    print("\n".join(table(["engine", "admission", "step ms", "per seq us", "name"], rows, "<<>>")))
    return 0
