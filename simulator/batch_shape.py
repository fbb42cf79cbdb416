"""What one engine step computes: the shape handed from the scheduler to the cost model.

Owns the BatchShape record only. Schedulers build it; cost models read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchShape:
    """One engine step on one replica.

    prefill_chunks: (num_new_tokens, num_context_tokens_before) per prefilling sequence.
    num_decode: sequences generating one token each this step.
    decode_context_sum: tokens attended over all decode sequences (each counts its KV cache
        plus the new token), i.e. the KV entries read by decode attention.
    num_logits: tokens that produce logits (decodes + prefills that finish this step).
    """

    prefill_chunks: tuple[tuple[int, int], ...] = ()
    num_decode: int = 0
    decode_context_sum: int = 0
    num_logits: int = 0

    @property
    def num_prefill_tokens(self) -> int:
        return sum(n for n, _ in self.prefill_chunks)

    @property
    def num_tokens(self) -> int:
        return self.num_prefill_tokens + self.num_decode
