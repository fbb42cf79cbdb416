"""Static batching, as Hugging Face `generate`: fixed batches padded to their longest member.

A batch of up to max_num_seqs waiting requests is formed when the engine is idle; its KV cache
is reserved for (longest prompt + longest output) per sequence; one prefill step runs every
prompt padded to the longest; then decode steps run the whole batch until its longest output is
done (finished sequences keep computing padding). Results return when the batch ends, so a
request's finish time is the batch's end (no streaming), while TTFT is the prefill's end.

With a KV policy (kv_phases.KvPolicy) every sequence of the padded batch follows the same phases
(PhaseCursor), so a sequence's reservation is the policy's decode peak (H2O: its budget). The
prompt is compressed inside the prefill layer by layer, as H2O's Hugging Face implementation
prunes each layer's cache in that layer's forward: the full prompt KV of one layer exists at a
time, charged as ceil(b * blocks(prompt) / num_layers) extra blocks held during the prefill step.
"""
from __future__ import annotations

from collections import deque

from simulator.cost import BatchShape
from simulator.engine.block_pool import BlockPool
from simulator.engine.kv_phases import KvPolicy, PhaseCursor
from simulator.engine.recorder import RunRecorder
from simulator.engine.schedulers import SchedulerLimits
from simulator.engine.sequence_pool import StepPlan


class StaticScheduler:
    name = "static"

    def __init__(self, blocks: BlockPool, recorder: RunRecorder, limits: SchedulerLimits,
                 kv: KvPolicy | None = None, num_layers: int = 1):
        self.blocks, self.rec, self.limits = blocks, recorder, limits
        self.kv, self.num_layers = kv, num_layers  # kv None: dense
        self.cursor: PhaseCursor | None = None
        self.waiting: deque[tuple[int, int, int]] = deque()
        self.batch: list[tuple[int, int, int]] = []
        self.batch_blocks: list[int] = []
        self.transient_blocks: list[int] = []
        self.max_prompt = self.max_output = self.step_index = 0
        self._last_token_s = 0.0

    def max_prefill_tokens(self) -> int:
        return 2**62

    @property
    def num_running(self) -> int:
        return len(self.batch)

    @property
    def num_outstanding(self) -> int:
        return len(self.batch) + len(self.waiting)

    def enqueue(self, req: int, prompt_tokens: int, output_tokens: int,
                siblings: list[tuple[int, int]] | None = None) -> None:
        """Samples of one prompt run as separate rows of a batch (HF generate without sharing)."""
        self.waiting.append((req, prompt_tokens, output_tokens))
        for sibling, sibling_output in siblings or ():
            self.waiting.append((sibling, prompt_tokens, sibling_output))

    def batch_blocks_needed(self, b: int, max_p: int, max_o: int) -> tuple[int, int]:
        """(reserved, prefill-transient) blocks for a padded batch of b sequences."""
        blocks_for = self.blocks.blocks_for
        if self.kv is None:
            return b * blocks_for(max_p + max_o), 0
        budget = self.kv.seq_budget(max_p, max_o)
        reserved = b * blocks_for(self.kv.decode_peak_tokens(max_p, max_o))
        if self.kv.after_prefill(max_p, budget) >= max_p:
            return max(reserved, b * blocks_for(max_p)), 0
        return reserved, -(-b * blocks_for(max_p) // self.num_layers)

    def _form_batch(self) -> None:
        max_p = max_o = 0
        batch = []
        while self.waiting and len(batch) < self.limits.max_num_seqs:
            req, p, o = self.waiting[0]
            mp, mo = max(max_p, p), max(max_o, o)
            if sum(self.batch_blocks_needed(len(batch) + 1, mp, mo)) > self.blocks.num_blocks:
                break
            batch.append(self.waiting.popleft())
            max_p, max_o = mp, mo
        self.batch, self.max_prompt, self.max_output, self.step_index = batch, max_p, max_o, 0
        reserved, transient = self.batch_blocks_needed(len(batch), max_p, max_o)
        self.batch_blocks = self.blocks.allocate(reserved)
        self.transient_blocks = self.blocks.allocate(transient)
        if self.kv is not None:
            budget = self.kv.seq_budget(max_p, max_o)
            self.cursor = PhaseCursor(self.kv, self.kv.after_prefill(max_p, budget), budget)

    def plan(self) -> StepPlan | None:
        if not self.batch:
            if not self.waiting:
                return None
            self._form_batch()
        b, i = len(self.batch), self.step_index
        if i == 0:
            chunks = ((self.max_prompt, 0),) * b
            work = None
            if self.kv is not None:
                kept = self.kv.after_prefill(self.max_prompt, self.cursor.budget)
                work = self.kv.prefill_work(chunks, ((self.max_prompt, kept),) * b)
            return StepPlan(BatchShape(prefill_chunks=chunks, num_logits=b, kv_work=work), (), 0)
        if self.kv is None:
            shape = BatchShape(num_decode=b, decode_context_sum=b * (self.max_prompt + i), num_logits=b)
            return StepPlan(shape, (), b)
        c = self.cursor
        held, kept = (c.held, c.phase.retained_end) if c.compressing else (0, 0)
        work = self.kv.decode_work(b * c.read, b * c.held, b * c.held if c.evicting else 0, b * held, b * kept)
        shape = BatchShape(num_decode=b, decode_context_sum=b * c.read, num_logits=b, kv_work=work)
        return StepPlan(shape, (), b)

    def commit(self, plan: StepPlan, now: float) -> None:
        i = self.step_index
        if i == 0:
            for req, _, _ in self.batch:
                self.rec.first_token(req, now)
            self.blocks.free(self.transient_blocks)
            self.transient_blocks = []
        else:
            if self.cursor is not None:
                self.cursor.advance()
            producing = sum(1 for _, _, o in self.batch if o > i)
            if producing:
                self.rec.itl(now - self._last_token_s, producing)
        self._last_token_s = now
        self.step_index = i + 1
        if self.step_index >= self.max_output:
            for req, _, _ in self.batch:
                self.rec.finish(req, now)
            self.blocks.free(self.batch_blocks)
            self.batch, self.batch_blocks = [], []

