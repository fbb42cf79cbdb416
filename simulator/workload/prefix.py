"""Prefix identity: which leading tokens of a request hold the same content as another request's.

A request's identity is a tuple of chunks `(chunk_id, num_tokens)`: its token content starts with
those chunks, in order; tokens past the last chunk are its own (shared with no one). Two chunks
with the same id hold the same tokens (ids are ints or tuples of ints, so Python's hash of them is
the same in every process). Sources here: Mooncake's `hash_ids` (one id per 512-token block),
multi-turn ShareGPT conversations (sharegpt.py: each turn's prompt is the history) and a synthetic
shared system prompt (vLLM bench serve's `--random-prefix-len`, `--prefix-repetition-num-prefixes`).

Block keys turn chunks into the engine's block hashes: engine block j (tokens [j*b, (j+1)*b)) gets
key_j = hash((key_{j-1}, segments)) where `segments` are the (chunk_id, start, end) spans of the
chunks it overlaps -- vLLM's chained block hash (hash of the parent block's hash and the block's
token ids; vLLM docs, "Automatic Prefix Caching", design), with chunk spans standing for token ids.
Only full blocks wholly inside the identified chunks get keys. Caching the blocks is engine/'s job
(engine/prefix_cache.py); this module only says what content is shared.
"""
from __future__ import annotations

from simulator.errors import ServesimError
from simulator.workload.requests import RequestArrays

MOONCAKE_BLOCK_TOKENS = 512  # Mooncake traces: one hash id per 512-token block (Mooncake FAST'25 trace README)
SHARED_PREFIX_ID = -1  # chunk ids of synthetic shared prefixes: (SHARED_PREFIX_ID, group)


def mooncake_chunks(hash_ids: list, input_length: int) -> tuple:
    """Chunks of a Mooncake row: hash id i covers tokens [512 i, 512 (i + 1)) of the prompt (the
    last one cut at input_length); ids past the prompt are ignored, prompt tokens past the ids are
    the request's own. ValueError (the reason) when hash_ids is not a list of integers."""
    if not isinstance(hash_ids, list) or any(isinstance(h, bool) or not isinstance(h, int) for h in hash_ids):
        raise ValueError(f"hash_ids must be a list of integers, got {str(hash_ids)[:60]}")
    chunks = []
    for i, h in enumerate(hash_ids):
        start = i * MOONCAKE_BLOCK_TOKENS
        if start >= input_length:
            break
        chunks.append((h, min(MOONCAKE_BLOCK_TOKENS, input_length - start)))
    return tuple(chunks)


def block_keys(chunks: tuple, block_size: int) -> tuple[int, ...]:
    """The chained hash of every full `block_size`-token block inside `chunks` (module docstring).

    Shape: one int per block, len = (sum of chunk tokens) // block_size. Two requests' keys agree
    on block j exactly when their chunk spans agree on tokens [0, (j+1)*block_size)."""
    keys: list[int] = []
    parent, ci, off = 0, 0, 0
    total = sum(n for _, n in chunks)
    for _ in range(total // block_size):
        cid, n = chunks[ci]
        if n - off >= block_size:  # the common case: the block lies inside one chunk
            parent = hash((parent, cid, off))
            off += block_size
            if off == n:
                ci, off = ci + 1, 0
        else:
            need, segs = block_size, []
            while need:
                cid, n = chunks[ci]
                take = min(n - off, need)
                segs.append((cid, off, off + take))
                off += take
                need -= take
                if off == n:
                    ci, off = ci + 1, 0
            parent = hash((parent, tuple(segs)))
        keys.append(parent)
    return tuple(keys)


class RequestBlockKeys:
    """Request index -> its block keys for one block size, computed on first use and kept.

    `prefix`: per request, its chunks (RequestArrays.prefix); None: no request shares anything."""

    def __init__(self, prefix: list | None, block_size: int):
        self.prefix, self.block_size = prefix, block_size
        self._keys: dict[int, tuple[int, ...]] = {}

    def __call__(self, req: int) -> tuple[int, ...]:
        keys = self._keys.get(req)
        if keys is None:
            chunks = self.prefix[req] if self.prefix is not None else ()
            keys = self._keys[req] = block_keys(chunks, self.block_size) if chunks else ()
        return keys

    def forget(self, req: int) -> None:
        """Drop a request's keys once it leaves the engine (they are recomputed if it comes back)."""
        self._keys.pop(req, None)


def with_shared_prefix(reqs: RequestArrays, tokens: int, groups: int) -> RequestArrays:
    """Synthetic shared system prompt: every prompt gains `tokens` leading tokens shared by the
    requests of its group (request i is in group i mod `groups`), as vLLM bench serve's
    `--random-prefix-len` (groups = 1) and prefix_repetition dataset (`--prefix-repetition-num-prefixes`)."""
    if tokens < 0 or groups < 1:
        raise ServesimError(f"shared_prefix_tokens={tokens}, shared_prefix_groups={groups}; allowed: tokens >= 0, "
                            "groups >= 1")
    if tokens == 0:
        return reqs
    prefix = [(((SHARED_PREFIX_ID, i % groups), tokens),) for i in range(len(reqs))]
    return RequestArrays(reqs.arrival_s, reqs.prompt_tokens + tokens, reqs.output_tokens, reqs.group, prefix)
