"""The KV cache of one request moved from a prefill instance to a decode instance.

Owns the bytes and the time:
    bytes = prompt tokens x KV bytes per token (all layers, all KV heads: the whole cache)
    time  = bytes / (link bandwidth x lanes) + link latency
where lanes = min(prefill tp, decode tp): each GPU of the smaller instance moves its shard over
its own link at once (DistServe, OSDI'24, sec. 3.3 and 4.3: transmission time = KV size /
bandwidth; Splitwise, ISCA'24, sec. IV-C). Transfers leaving one prefill instance share its links
and go one after the other (FIFO), as a single server. The link is data (hardware/data/links).
"""
from __future__ import annotations

from hardware import LinkSpec


class KvTransfer:
    def __init__(self, link: LinkSpec, *, kv_bytes_per_token: int, lanes: int = 1):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.link, self.kv_bytes_per_token, self.lanes = link, kv_bytes_per_token, lanes
        self.free_at_s: dict[int, float] = {}  # prefill instance -> when its links are free
        self.total_bytes = 0.0
        self.total_s = 0.0
        self.total_wait_s = 0.0
        self.count = 0

    def bytes_for(self, tokens: int) -> float:
        return float(tokens) * self.kv_bytes_per_token

    def time_s(self, tokens: int) -> float:
        """Seconds to move `tokens` tokens' KV: bytes / (bandwidth x lanes) + latency."""
        nbytes = self.bytes_for(tokens)
        return nbytes / (self.link.bytes_per_s * self.lanes) + self.link.latency_s if nbytes > 0 else 0.0

    def reserve(self, instance: int, now_s: float, tokens: int) -> float:
        """Book a transfer from prefill `instance` at `now_s`; returns when it completes."""
        t = self.time_s(tokens)
        start = max(now_s, self.free_at_s.get(instance, 0.0))
        self.free_at_s[instance] = start + t
        self.total_bytes += self.bytes_for(tokens)
        self.total_s += t
        self.total_wait_s += start - now_s
        self.count += 1
        return start + t

    def blocking_s(self, tokens: int) -> float:
        """A copy the decode instance waits for (kv_transfer_overlap = "blocking"): its time, counted."""
        t = self.time_s(tokens)
        self.total_bytes += self.bytes_for(tokens)
        self.total_s += t
        self.count += 1
        return t

    def describe(self) -> dict:
        return {"link": self.link.describe(), "lanes": self.lanes, "kv_bytes_per_token": self.kv_bytes_per_token,
                "num_transfers": self.count, "total_bytes": self.total_bytes,
                "mean_transfer_ms": self.total_s / self.count * 1e3 if self.count else None,
                "mean_link_wait_ms": self.total_wait_s / self.count * 1e3 if self.count else None,
                "formula": "bytes / (bandwidth x min(prefill tp, decode tp)) + latency (DistServe sec. 3.3)"}
