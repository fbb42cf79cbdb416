"""Static batching, as Hugging Face `generate`: fixed batches padded to their longest member.

A batch of up to max_num_seqs waiting requests is formed when the engine is idle; its KV cache
is reserved for (longest prompt + longest output) per sequence; one prefill step runs every
prompt padded to the longest; then decode steps run the whole batch until its longest output is
done (finished sequences keep computing padding). Results return when the batch ends, so a
request's finish time is the batch's end (no streaming), while TTFT is the prefill's end.
"""
from __future__ import annotations

from collections import deque

from simulator.batch_shape import BatchShape
from simulator.kv_cache import BlockPool
from simulator.recorder import RunRecorder
from simulator.schedulers import SchedulerLimits
from simulator.seq_pool import StepPlan


class StaticScheduler:
    name = "static"

    def __init__(self, blocks: BlockPool, recorder: RunRecorder, limits: SchedulerLimits):
        self.blocks, self.rec, self.limits = blocks, recorder, limits
        self.waiting: deque[tuple[int, int, int]] = deque()
        self.batch: list[tuple[int, int, int]] = []
        self.batch_blocks: list[int] = []
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

    def _form_batch(self) -> None:
        max_p = max_o = 0
        batch = []
        while self.waiting and len(batch) < self.limits.max_num_seqs:
            req, p, o = self.waiting[0]
            mp, mo = max(max_p, p), max(max_o, o)
            if (len(batch) + 1) * self.blocks.blocks_for(mp + mo) > self.blocks.num_blocks:
                break
            batch.append(self.waiting.popleft())
            max_p, max_o = mp, mo
        self.batch, self.max_prompt, self.max_output, self.step_index = batch, max_p, max_o, 0
        self.batch_blocks = self.blocks.allocate(len(batch) * self.blocks.blocks_for(max_p + max_o))

    def plan(self) -> StepPlan | None:
        if not self.batch:
            if not self.waiting:
                return None
            self._form_batch()
        b, i = len(self.batch), self.step_index
        if i == 0:
            shape = BatchShape(prefill_chunks=((self.max_prompt, 0),) * b, num_logits=b)
            return StepPlan(shape, (), 0)
        shape = BatchShape(num_decode=b, decode_context_sum=b * (self.max_prompt + i), num_logits=b)
        return StepPlan(shape, (), b)

    def commit(self, plan: StepPlan, now: float) -> None:
        i = self.step_index
        if i == 0:
            for req, _, _ in self.batch:
                self.rec.first_token(req, now)
        else:
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

