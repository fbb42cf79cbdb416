"""Prefill/decode disaggregation (DistServe, OSDI'24; Splitwise, ISCA'24; vLLM's P/D connectors):
separate pools of prefill and decode instances, each with its own tp, and the KV cache of every
request moved from its prefill instance to a decode instance over a named link.

Owns the KV transfer time (transfer.py), the decode-side admission of a transferred request
(admission.py) and the composition of a disaggregated run (run.py). Not here: the engine loop,
schedulers and cost models (reused as they are), the planning search (studies/plan/disaggregated.py).
"""
from simulator.disagg.run import RunParts, simulate_disaggregated

__all__ = ["RunParts", "simulate_disaggregated"]
