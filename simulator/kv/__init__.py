"""KV-cache policies: how many tokens a sequence keeps (memory) and attends to (time): dense,
H2O, Scissorhands, top-k and block top-k (policies.py).

Owns the policies and their parameters, as components implementing engine.KvPolicy. Not here:
block ids and phase bookkeeping (engine/), the seconds of eviction work (cost/ops.py).
"""
from simulator.kv.policies import DensePolicy, build_kv_policy

__all__ = ["DensePolicy", "build_kv_policy"]
