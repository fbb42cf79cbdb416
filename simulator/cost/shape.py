"""What one engine step computes: the shape handed from the scheduler to the cost model.

Owns the BatchShape record and the KvWork counts it may carry. Schedulers build it; cost models read it. A plain slotted
class (not a dataclass) because one is built per engine step; treat it as immutable.
"""
from __future__ import annotations

from typing import NamedTuple


class BatchShape:
    """One engine step on one replica.

    prefill_chunks: (num_new_tokens, num_context_tokens_before) per prefilling sequence.
    num_decode: sequences generating one token each this step.
    decode_context_sum: tokens attended over all decode sequences (each counts its KV cache
        plus the new token): decode attention FLOPs follow it.
    num_logits: tokens that produce logits (decodes + prefills that finish this step).
    kv_work: the KV policy's eviction bookkeeping (KvWork), None without a policy.
    """

    __slots__ = ("prefill_chunks", "num_decode", "decode_context_sum", "num_logits",
                 "num_prefill_tokens", "num_tokens", "decode_kv_read_sum", "kv_work")

    def __init__(self, prefill_chunks: tuple[tuple[int, int], ...] = (), num_decode: int = 0,
                 decode_context_sum: int = 0, num_logits: int = 0, decode_kv_read_sum: int | None = None,
                 kv_work=None):
        self.prefill_chunks = prefill_chunks
        self.num_decode = num_decode
        self.decode_context_sum = decode_context_sum
        self.num_logits = num_logits
        # distinct KV entries decode attention reads (< decode_context_sum when samples of one
        # prompt share its prefix and a shared-prefix kernel reads it once)
        self.decode_kv_read_sum = decode_context_sum if decode_kv_read_sum is None else decode_kv_read_sum
        self.kv_work = kv_work
        num_prefill_tokens = 0
        for n, _ in prefill_chunks:  # a loop: one BatchShape per engine step, a generator costs more
            num_prefill_tokens += n
        self.num_prefill_tokens = num_prefill_tokens
        self.num_tokens = num_prefill_tokens + num_decode

    def __repr__(self) -> str:
        return (f"BatchShape(prefill_chunks={self.prefill_chunks}, num_decode={self.num_decode}, "
                f"decode_context_sum={self.decode_context_sum}, num_logits={self.num_logits}, "
                f"kv_work={self.kv_work})")

    def __eq__(self, other) -> bool:
        return isinstance(other, BatchShape) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__)


class KvWork(NamedTuple):
    """Eviction bookkeeping of one step, in tokens (summed over sequences; all layers/heads)."""

    score_pairs: float = 0.0  # attention probabilities materialised (query-key pairs)
    score_tokens: float = 0.0  # accumulated-score entries read and written
    scan_tokens: float = 0.0  # score entries scanned to pick victims
    moved_tokens: float = 0.0  # KV tokens copied by gather compaction
    search_keys: float = 0.0  # block_topk: representative keys scored

    def __add__(self, other: "KvWork") -> "KvWork":  # type: ignore[override]
        return KvWork(*(a + b for a, b in zip(self, other)))
