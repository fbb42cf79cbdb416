"""`servesim models`: the built-in models, devices (with the source of their calibration and its
known error) and serving engines."""
from __future__ import annotations

import argparse

from hardware import device_names, load_device
from simulator.cost import describe_device, engine_names, load_engine
from simulator.models import ARCHITECTURES, load_model, model_names


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    width = max(len(n) for n in model_names())
    print(f"{'model':<{width}} {'type':<12} {'params':>9} {'active':>9} {'layers':>6} {'attention':<10} "
          f"{'KV/token':>10} {'context':>8}  notes")
    for name in model_names():
        m = load_model(name)
        attn = "MLA" if m.attention == "mla" else f"{m.num_heads}/{m.num_kv_heads}"
        notes = ", ".join(x for x in (f"{m.num_window_layers} window layers" if m.num_window_layers else "",
                                      f"{m.num_experts}x top-{m.num_experts_per_tok} experts" if m.is_moe else "",
                                      m.quantization) if x)
        print(f"{name:<{width}} {m.model_type:<12} {m.total_params / 1e9:8.2f}B {m.active_params_per_token / 1e9:8.2f}B "
              f"{m.num_layers:>6} {attn:<10} {m.kv_bytes_per_token('bf16') / 1024:7.1f}KiB {m.max_position_embeddings:>8}"
              f"  {notes}")
    print(f"architectures read (config.json model_type): {', '.join(sorted(ARCHITECTURES))}; bf16 KV per token "
          "(sliding-window layers hold at most their window)")
    print()
    print(f"{'device':<10} {'bf16 TFLOP/s':>12} {'GiB':>6} {'GB/s':>7} {'USD/h':>6}  {'calibration':<26} name")
    for name in device_names():
        d = load_device(name)
        print(f"{name:<10} {d.peak_tflops.get('bf16', 0):12.1f} {d.memory_gib:6.0f} "
              f"{d.memory_bandwidth_gb_per_s:7.0f} {d.price_usd_per_hour:6.2f}  {describe_device(d):<26} {d.display_name}")
    print()
    print(f"{'engine':<11} {'admission':<9} {'step ms':>7} {'per seq us':>10}  name")
    for name in engine_names():
        e = load_engine(name)
        print(f"{name:<11} {e.admission:<9} {e.step_overhead_ms:7.3f} {e.per_seq_us:10.2f}  {e.display_name}")
    return 0
